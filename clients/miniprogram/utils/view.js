/** Turns parsed answers and errors into the plain data the WXML templates render. */
const { toClientError } = require('./errors.js');

/** ImageNet labels come as `golden_retriever`; people read `golden retriever`. */
function prettyLabel(label) {
  return String(label).replace(/_/g, ' ');
}

function ms(value) {
  return `${Math.round(value * 10) / 10} ms`;
}

/**
 * The page data for a successful prediction.
 * @param {ReturnType<import('./parse.js')['parsePredictResponse']>} result
 */
function resultView(result) {
  const t = result.timing;
  const parts = [`batch of ${t.batchSize}`, `queue ${ms(t.queueMs)}`, `inference ${ms(t.inferenceMs)}`];
  if (t.decodeMs != null) parts.push(`decode ${ms(t.decodeMs)}`);
  return {
    predictions: result.predictions.map((p) => ({
      index: p.index,
      label: prettyLabel(p.label),
      percent: p.percent,
    })),
    timingText: parts.join(' · '),
    resultModel: result.model,
    weightsWarning: result.weights.warning,
    requestId: result.requestId || '',
  };
}

/**
 * The page data for an error card: never empty, never a stack trace.
 * @param {unknown} err
 * @param {'upload'|'models'|'save'|'choose'} action what "Try again" should redo
 */
function errorView(err, action) {
  const e = toClientError(err);
  const codeOrKind = e.code || e.kind;
  return {
    title: e.message,
    detail: e.detail ? `${e.detail}` : '',
    code: codeOrKind,
    status: e.status || 0,
    requestId: e.requestId || '',
    action: action || '',
  };
}

module.exports = { prettyLabel, resultView, errorView };
