// kerasserve web page, results out: the gallery's answers and errors as a CSV or a JSON download.

const CSV_COLUMNS = ['file', 'model', 'version', 'rank', 'label', 'class_id', 'probability', 'error_code', 'error'];

/** One record per photo: its answer (the classes shown) or its error; photos still pending are left out. */
export function records(items) {
  return items
    .filter((item) => item.state === 'done' || item.state === 'failed')
    .map((item) => {
      if (item.state === 'failed') {
        return { file: item.name, ok: false, error: { code: item.error.code || '', message: item.error.message } };
      }
      const { model, result } = item.answer;
      return {
        file: item.name,
        ok: true,
        model: { name: model.name, version: model.version ?? null, labels_language: model.labels_language || null },
        predictions: result.predictions.slice(0, item.topK).map((p) => ({
          label: p.label,
          class_id: p.class_id ?? null,
          probability: p.probability,
        })),
      };
    });
}

const quote = (value) => {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** CSV text: one row per class shown, one per failed photo; a BOM so spreadsheets read Chinese. */
export function toCsv(items) {
  const rows = [CSV_COLUMNS];
  for (const r of records(items)) {
    if (!r.ok) {
      rows.push([r.file, '', '', '', '', '', '', r.error.code, r.error.message]);
      continue;
    }
    r.predictions.forEach((p, i) => {
      rows.push([r.file, r.model.name, r.model.version, i + 1, p.label, p.class_id, p.probability, '', '']);
    });
  }
  return '\ufeff' + rows.map((row) => row.map(quote).join(',')).join('\r\n') + '\r\n';
}

function download(text, type, filename) {
  const href = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

const stamp = () => new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');

export const exportCsv = (items) => download(toCsv(items), 'text/csv;charset=utf-8', `kerasserve-${stamp()}.csv`);
export const exportJson = (items) =>
  download(JSON.stringify(records(items), null, 2) + '\n', 'application/json', `kerasserve-${stamp()}.json`);
