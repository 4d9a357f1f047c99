// kerasserve web page, the Teach panel: photos under labels in, a classifier served by the server out.

import { UiError, postForm } from './api.js';
import { PREPARE_PARALLEL, eachLimited, prepare } from './photos.js';
import { LANG, t } from './strings.js';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const TEACH_TIMEOUT_MS = 300000; // embedding and fitting take seconds; a busy server longer
const $ = (id) => document.getElementById(id);

let nextRow = 1;

function labelRow(label = '', files = []) {
  const n = nextRow++;
  const row = document.createElement('li');
  row.className = 'teach-row';
  row.dataset.testid = 'teach-label';
  row.setAttribute('data-testid', 'teach-label');
  const name = Object.assign(document.createElement('input'), { type: 'text', id: `teach-label-${n}`, value: label });
  name.setAttribute('data-testid', 'teach-label-name');
  const nameLabel = Object.assign(document.createElement('label'), { htmlFor: name.id, textContent: t('teach.label') });
  const input = Object.assign(document.createElement('input'), { type: 'file', id: `teach-files-${n}`, accept: 'image/*', multiple: true });
  input.setAttribute('data-testid', 'teach-label-files');
  const inputLabel = Object.assign(document.createElement('label'), { htmlFor: input.id, textContent: t('teach.photos') });
  const count = document.createElement('span');
  count.className = 'muted small';
  row.files = [...files];
  const show = () => (count.textContent = t('teach.count', { n: row.files.length }));
  input.addEventListener('change', () => {
    row.files = [...input.files];
    show();
  });
  // Photos dropped on a row go under its label.
  row.addEventListener('dragover', (e) => e.preventDefault());
  row.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation(); // the page's own drop would classify them
    row.files.push(...e.dataTransfer.files);
    show();
  });
  show();
  row.append(nameLabel, name, inputLabel, input, count);
  row.labelInput = name;
  return row;
}

/** {label: files} from a folder chosen with `webkitdirectory`: DATA/<label>/<photo>. */
function byFolder(files) {
  const groups = new Map();
  for (const file of files) {
    const parts = (file.webkitRelativePath || '').split('/');
    if (parts.length < 3 || parts.some((p) => p.startsWith('.'))) continue;
    if (!file.type.startsWith('image/') && !/\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i.test(file.name)) continue;
    const label = parts[parts.length - 2];
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(file);
  }
  return groups;
}

function percent(x) {
  return `${(x * 100).toFixed(1)}%`;
}

/** The answer drawn: accuracy, and per label how often its photos were recognised (leave-one-out). */
function showResult(box, answer) {
  box.replaceChildren();
  const summary = document.createElement('p');
  summary.setAttribute('data-testid', 'teach-accuracy');
  summary.textContent = t('teach.done', {
    name: answer.name,
    v: answer.version,
    acc: percent(answer.accuracy),
    n: answer.examples,
    s: answer.timing.total_s.toFixed(1),
  });
  const caption = document.createElement('p');
  caption.className = 'muted small';
  caption.textContent = t('teach.perLabel');
  const list = document.createElement('ul');
  list.className = 'teach-classes';
  list.setAttribute('data-testid', 'teach-classes');
  for (const c of answer.classes) {
    const li = document.createElement('li');
    const meter = Object.assign(document.createElement('meter'), { min: 0, max: 1, value: c.loo_accuracy });
    meter.id = `teach-m-${c.label}`.replace(/\s+/g, '-');
    const label = Object.assign(document.createElement('label'), {
      htmlFor: meter.id,
      textContent: `${c.label} · ${percent(c.loo_accuracy)} · ${t('teach.count', { n: c.examples })}`,
    });
    li.append(label, meter);
    list.append(li);
  }
  box.append(summary, caption, list);
  if (answer.confusion && answer.confusion.length) box.append(confusionTable(answer));
  box.hidden = false;
}

/** The confusion picture: rows the true label, columns the label given; the diagonal is right. */
function confusionTable(answer) {
  const labels = answer.classes.map((c) => c.label);
  const table = document.createElement('table');
  table.className = 'teach-confusion';
  table.setAttribute('data-testid', 'teach-confusion');
  const caption = Object.assign(document.createElement('caption'), { textContent: t('teach.confusion') });
  const head = document.createElement('tr');
  head.append(document.createElement('th'));
  for (const label of labels) {
    head.append(Object.assign(document.createElement('th'), { scope: 'col', textContent: label }));
  }
  table.append(caption, head);
  answer.confusion.forEach((row, i) => {
    const tr = document.createElement('tr');
    tr.append(Object.assign(document.createElement('th'), { scope: 'row', textContent: labels[i] }));
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const td = Object.assign(document.createElement('td'), { textContent: String(count) });
      if (i === j) td.className = 'right';
      else if (count) td.className = 'wrong';
      td.style.setProperty('--share', String(count / total));
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

/** Wire the Teach panel; `onTaught(name)` selects the new classifier on the page. */
export function setupTeach({ apiKey, onTaught }) {
  const els = {
    form: $('teach-form'),
    name: $('teach-name'),
    base: $('teach-base'),
    key: $('teach-key'),
    rows: $('teach-labels'),
    add: $('teach-add'),
    folder: $('teach-folder'),
    folderButton: $('teach-folder-button'),
    status: $('teach-status'),
    progress: $('teach-progress'),
    result: $('teach-result'),
    submit: $('teach-submit'),
  };
  els.rows.append(labelRow(), labelRow());
  els.add.addEventListener('click', () => {
    const row = labelRow();
    els.rows.append(row);
    row.labelInput.focus();
  });
  els.folderButton.addEventListener('click', () => els.folder.click());
  els.folder.addEventListener('change', () => {
    const groups = byFolder(els.folder.files);
    if (groups.size === 0) return;
    els.rows.replaceChildren(...[...groups].map(([label, files]) => labelRow(label, files)));
  });

  const say = (text, { error = false } = {}) => {
    els.status.textContent = text;
    els.status.classList.toggle('warning', error);
    els.status.hidden = !text;
  };

  els.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = els.name.value.trim();
    if (!NAME.test(name)) {
      els.name.setAttribute('aria-invalid', 'true');
      say(t('teach.needName'), { error: true });
      els.name.focus();
      return;
    }
    els.name.removeAttribute('aria-invalid');
    const rows = [...els.rows.children].filter((r) => r.labelInput.value.trim() && r.files.length);
    if (rows.length < 2 || rows.some((r) => r.files.length < 2)) {
      say(t('teach.needTwo'), { error: true });
      return;
    }
    const examples = rows.flatMap((r) => r.files.map((file) => ({ label: r.labelInput.value.trim(), file })));
    els.submit.disabled = true;
    els.result.hidden = true;
    els.progress.hidden = false;
    els.progress.value = 0;
    try {
      // Shrunk in the browser like photos to classify, a few at a time; refused formats stop here.
      await eachLimited(examples, PREPARE_PARALLEL, async (example) => {
        example.prepared = await prepare(example.file);
      });
      const refused = examples.find((x) => x.prepared.refused);
      if (refused) throw new UiError(`${refused.file.name}: ${refused.prepared.refused}`, { code: 'unsupported_format' });
      const form = new FormData();
      for (const x of examples) form.append('image', x.prepared.blob, x.prepared.filename);
      form.append('labels', JSON.stringify(examples.map((x) => x.label)));
      const query = new URLSearchParams();
      if (els.base.value.trim()) query.set('base', els.base.value.trim());
      if (LANG !== 'en') query.set('lang', LANG);
      say(t('teach.uploading', { n: examples.length, p: 0 }));
      const { body } = await postForm(`v1/classifiers/${encodeURIComponent(name)}?${query}`, form, {
        apiKey: els.key.value.trim() || apiKey(),
        timeoutMs: TEACH_TIMEOUT_MS,
        onProgress: (f) => {
          if (f !== null) {
            els.progress.value = Math.round(f * 100);
            say(t('teach.uploading', { n: examples.length, p: Math.round(f * 100) }));
          }
        },
        onSent: () => {
          els.progress.removeAttribute('value'); // the server's part has no measurable progress
          say(t('teach.fitting', { n: examples.length }));
        },
      });
      say('');
      showResult(els.result, body);
      await onTaught(body.name);
    } catch (err) {
      const error = err instanceof UiError ? err : new UiError(t('error.generic'), { detail: String(err) });
      say([error.message, error.detail].filter(Boolean).join(' '), { error: true });
    } finally {
      els.submit.disabled = false;
      els.progress.hidden = true;
    }
  });
}
