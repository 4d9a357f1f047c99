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
    throw parseError('The server sent an answer this app cannot read.', {
      status,
      requestId,
      detail: String((res && res.data) || '').slice(0, 200),
    });
  }
  return { body: json.value, requestId };
}

function malformed(what, requestId) {
  return parseError('The server sent an answer this app cannot read.', {
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

/** Probability → a whole percentage for the bar width, clamped to 0..100. */
function toPercent(probability) {
  const p = Number(probability);
  if (!Number.isFinite(p)) return 0;
  return Math.min(100, Math.max(0, Math.round(p * 1000) / 10));
}

/**
 * Parses a `PredictResponse` answer for one uploaded photo.
 * @returns {{model: string, weights: {kind: string, random: boolean, warning: string},
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
 * @returns {{models: Array<{name: string, state: string, weights: object, inputSize: number[]}>,
 *   defaultModel: string}}
 */
function parseModelList(res) {
  const { body, requestId } = readAnswer(res);
  if (!body || !Array.isArray(body.models)) throw malformed('no model list', requestId);
  const models = body.models
    .filter((m) => m && typeof m.name === 'string')
    .map((m) => ({
      name: m.name,
      state: typeof m.state === 'string' ? m.state : 'unknown',
      weights: readWeights(m.weights),
      inputShape: Array.isArray(m.input_shape) ? m.input_shape : [],
    }));
  if (models.length === 0) throw malformed('the server serves no model', requestId);
  const named = typeof body.default_model === 'string' ? body.default_model : '';
  const defaultModel = models.some((m) => m.name === named) ? named : models[0].name;
  return { models, defaultModel };
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
  toPercent,
};
