/** Turns parsed answers, errors and history into the plain data the WXML templates render. */
const { messageOf, toClientError } = require('./errors.js');
const { languageName, sameLanguage } = require('./i18n.js');
const { toPercent } = require('./parse.js');

/** ImageNet labels come as `golden_retriever`; people read `golden retriever`. */
function prettyLabel(label) {
  return String(label).replace(/_/g, ' ');
}

function ms(value) {
  return Math.round(value * 10) / 10;
}

/**
 * The page data for a successful prediction.
 * Multi-label answers are independent yes/no likelihoods, one per label: each row says whether
 * the label is likely, and the note says the percentages are not shares of one whole.
 * @param {ReturnType<import('./parse.js')['parsePredictResponse']>} result
 * @param {{t: (key: string, params?: object) => string, lang: string, develop: boolean}} ctx
 */
function resultView(result, { t, lang, develop }) {
  const multi = result.outputKind === 'multi_label';
  const tm = result.timing;
  let timingText = '';
  if (develop) {
    timingText = t('dev.timing', { batch: tm.batchSize, queue: ms(tm.queueMs), inference: ms(tm.inferenceMs) });
    if (tm.decodeMs != null) timingText += ` · ${t('dev.decode', { decode: ms(tm.decodeMs) })}`;
  }
  const labelsLanguage = result.labelsLanguage || '';
  const foreign = labelsLanguage !== '' && !sameLanguage(lang, labelsLanguage);
  return {
    predictions: result.predictions.map((p) => ({
      index: p.index,
      label: prettyLabel(p.label),
      percent: p.percent,
      likely: multi ? p.probability >= 0.5 : false,
    })),
    outputKind: result.outputKind,
    multiLabel: multi,
    resultTitle: multi ? t('result.titleMulti') : t('result.title'),
    resultNote: multi ? t('result.multiNote') : '',
    labelsNote: foreign ? t('result.labelsIn', { language: languageName(t, labelsLanguage) }) : '',
    labelsLatin: /^en/i.test(labelsLanguage) || labelsLanguage === '',
    timingText,
    resultModel: result.version != null ? `${result.model} v${result.version}` : result.model,
    weightsWarning: result.weights.random ? t('warn.randomWeights') : '',
    requestId: result.requestId || '',
  };
}

/**
 * The page data for an error card: never empty, never a stack trace. The server's own message,
 * the raw errMsg and developer hints are for the develop environment only.
 * @param {unknown} err
 * @param {'upload'|'models'|'save'|'choose'} action what "Try again" should redo
 * @param {{t: (key: string, params?: object) => string, develop: boolean}} ctx
 */
function errorView(err, action, { t, develop }) {
  const e = toClientError(err);
  return {
    title: messageOf(e, t),
    devHint: develop && e.devKey ? t(e.devKey, e.devParams) : '',
    detail: develop && e.detail ? `${e.detail}` : '',
    code: e.code || e.kind,
    status: e.status || 0,
    requestId: e.requestId || '',
    requestIdText: e.requestId ? t('error.requestId', { id: e.requestId }) : '',
    settings: e.settings,
    action: action || '',
  };
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** `MM-DD HH:mm` in the phone's time zone. */
function shortTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * The page data for the history list.
 * @param {Array<{id: string, thumb: string, label: string, probability: number,
 *   outputKind: string, model: string, time: number}>} entries
 */
function historyView(entries) {
  return entries.map((e) => ({
    id: e.id,
    thumb: e.thumb,
    label: prettyLabel(e.label),
    percentText: `${Math.round(Math.min(1, Math.max(0, Number(e.probability) || 0)) * 100)}%`,
    model: e.model,
    timeText: shortTime(e.time),
  }));
}

/**
 * A history entry as a parsed answer, for resultView: its kept rows (or its top label alone, for
 * entries stored before the rows were), its model, no timing.
 * @param {{label: string, probability: number, outputKind?: string, model: string,
 *   labelsLanguage?: string, predictions?: Array<{index: number, label: string, probability: number}>}} entry
 */
function entryResult(entry) {
  const rows =
    Array.isArray(entry.predictions) && entry.predictions.length
      ? entry.predictions
      : [{ index: -1, label: entry.label, probability: entry.probability }];
  return {
    model: entry.model,
    version: null,
    outputKind: entry.outputKind || 'softmax',
    labelsLanguage: entry.labelsLanguage || null,
    weights: { kind: 'unknown', random: false, warning: '' },
    runtime: '',
    predictions: rows.map((p) => ({
      label: p.label,
      classId: '',
      index: p.index,
      probability: p.probability,
      percent: toPercent(p.probability),
    })),
    timing: { batchSize: 1, queueMs: 0, inferenceMs: 0, decodeMs: null },
    requestId: null,
  };
}

module.exports = { prettyLabel, resultView, errorView, historyView, entryResult, shortTime };
