/** Reads the server's answers (docs/API.md) into the small shapes the pages render. */
const { fromHttpError, parseError } = require('./errors.js');

/**
 * Case-insensitive header lookup: wx gives headers as the server sent them (HTTP/2 lowercases).
 * @param {Record<string, string>|undefined} headers
 * @param {string} name
 */
function getHeader(headers, name) {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === wanted);
  return key === undefined ? undefined : headers[key];
}

/** JSON body of a wx answer: uploadFile always gives a string; request may give an object. */
function readJson(data) {
  if (data !== null && typeof data === 'object') return { ok: true, value: data };
  if (typeof data !== 'string' || data.trim() === '') return { ok: false };
  try {
    return { ok: true, value: JSON.parse(data) };
  } catch (err) {
    return { ok: false };
  }
}

/**
 * Checks the status and parses the JSON body of a wx.request / wx.uploadFile `success` answer.
 * Throws a ClientError for non-200 statuses and unreadable bodies.
 * @param {{statusCode: number, data: any, header?: Record<string, string>}} res
 * @returns {{body: any, requestId: string|null}}
 */
function readAnswer(res) {
  const status = Number(res && res.statusCode);
  const requestId = getHeader(res && res.header, 'X-Request-ID') || null;
  const json = readJson(res && res.data);
  if (status !== 200) {
    const retryAfter = Number(getHeader(res && res.header, 'Retry-After'));
    throw fromHttpError(
      status || 0,
      json.ok ? json.value : null,
      requestId,
      Number.isFinite(retryAfter) ? retryAfter : null,
    );
  }
  if (!json.ok) {
    throw parseError('error.parse', {
      status,
      requestId,
      detail: String((res && res.data) || '').slice(0, 200),
    });
  }
  return { body: json.value, requestId };
}

function malformed(what, requestId, key = 'error.parse') {
  return parseError(key, {
    status: 200,
    requestId,
    detail: `unexpected response: ${what}`,
  });
}

/** Weights info → what the page needs to warn about random weights. */
function readWeights(weights) {
  const w = weights && typeof weights === 'object' ? weights : {};
  return {
    kind: typeof w.kind === 'string' ? w.kind : 'unknown',
    random: w.random === true,
    warning:
      w.random === true
        ? (typeof w.warning === 'string' && w.warning) || 'random weights: predictions are meaningless'
        : '',
  };
}

const OUTPUT_KINDS = ['softmax', 'logits', 'binary', 'multi_label'];

/** `model.output_kind`; a server from before it existed answered softmax probabilities. */
function readOutputKind(kind) {
  return OUTPUT_KINDS.includes(kind) ? kind : 'softmax';
}

/** Probability → a whole percentage for the bar width, clamped to 0..100. */
function toPercent(probability) {
  const p = Number(probability);
  if (!Number.isFinite(p)) return 0;
  return Math.min(100, Math.max(0, Math.round(p * 1000) / 10));
}

/**
 * Parses a `PredictResponse` answer for one uploaded photo.
 * @returns {{model: string, version: number|null, outputKind: string,
 *   labelsLanguage: string|null, weights: {kind: string, random: boolean, warning: string},
 *   runtime: string, predictions: Array<{label: string, classId: string, index: number,
 *   probability: number, percent: number}>, timing: {batchSize: number, queueMs: number,
 *   inferenceMs: number, decodeMs: number|null}, requestId: string|null}}
 */
function parsePredictResponse(res) {
  const { body, requestId } = readAnswer(res);
  const rid = (body && body.request_id) || requestId;
  if (!body || !Array.isArray(body.results) || body.results.length === 0) {
    throw malformed('no results', rid);
  }
  const result = body.results[0];
  if (!result || !Array.isArray(result.predictions)) throw malformed('no predictions', rid);
  const predictions = result.predictions.map((p) => {
    if (!p || typeof p.label !== 'string' || typeof p.probability !== 'number') {
      throw malformed('a prediction without label or probability', rid);
    }
    return {
      label: p.label,
      classId: typeof p.class_id === 'string' ? p.class_id : '',
      index: typeof p.index === 'number' ? p.index : -1,
      probability: p.probability,
      percent: toPercent(p.probability),
    };
  });
  const t = result.timing || {};
  const model = body.model || {};
  return {
    model: typeof model.name === 'string' ? model.name : '',
    version: typeof model.version === 'number' ? model.version : null,
    outputKind: readOutputKind(model.output_kind),
    labelsLanguage: typeof model.labels_language === 'string' ? model.labels_language : null,
    weights: readWeights(model.weights),
    runtime: model.runtime && typeof model.runtime.name === 'string' ? model.runtime.name : '',
    predictions,
    timing: {
      batchSize: numberOr(t.batch_size, 1),
      queueMs: numberOr(t.queue_ms, 0),
      inferenceMs: numberOr(t.inference_ms, 0),
      decodeMs: typeof t.decode_ms === 'number' ? t.decode_ms : null,
    },
    requestId: rid || null,
  };
}

/**
 * Parses a `ModelList` answer of GET /v1/models.
 * Models whose state is `failed` are listed apart, with their error: they cannot answer.
 * @returns {{models: Array<{name: string, state: string, version: number|null, outputKind: string,
 *   labelsLanguages: string[], weights: object, inputShape: number[]}>,
 *   failed: Array<{name: string, error: string}>, defaultModel: string}}
 */
function parseModelList(res) {
  const { body, requestId } = readAnswer(res);
  if (!body || !Array.isArray(body.models)) throw malformed('no model list', requestId);
  const all = body.models
    .filter((m) => m && typeof m.name === 'string')
    .map((m) => ({
      name: m.name,
      state: typeof m.state === 'string' ? m.state : 'unknown',
      error: typeof m.error === 'string' ? m.error : '',
      version: typeof m.version === 'number' ? m.version : null,
      outputKind: readOutputKind(m.output_kind),
      labelsLanguages: Array.isArray(m.labels_languages)
        ? m.labels_languages.filter((l) => typeof l === 'string')
        : [],
      weights: readWeights(m.weights),
      inputShape: Array.isArray(m.input_shape) ? m.input_shape : [],
    }));
  const failed = all.filter((m) => m.state === 'failed').map((m) => ({ name: m.name, error: m.error }));
  const models = all.filter((m) => m.state !== 'failed');
  if (models.length === 0) {
    const what = failed.length ? `every model failed: ${failed.map((m) => m.name).join(', ')}` : 'no model';
    throw malformed(what, requestId, 'error.noModels');
  }
  const named = typeof body.default_model === 'string' ? body.default_model : '';
  const defaultModel = models.some((m) => m.name === named) ? named : models[0].name;
  return { models, failed, defaultModel };
}

function numberOr(value, fallback) {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

module.exports = {
  getHeader,
  readJson,
  readAnswer,
  parsePredictResponse,
  parseModelList,
  readOutputKind,
  toPercent,
};
