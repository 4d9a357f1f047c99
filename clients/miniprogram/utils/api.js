/**
 * The two calls the mini-program makes to kerasserve, as promises over `wx.request` and
 * `wx.uploadFile`. `wx` is a parameter so Node tests can pass a fake (or a real HTTP one).
 */
const { fromWxFail } = require('./errors.js');
const { parseModelList, parsePredictResponse } = require('./parse.js');
const { trimSlash } = require('./env.js');

/** Request headers: JSON answers, and the login token when there is one. */
function headers(token) {
  return token ? { Accept: 'application/json', Authorization: `Bearer ${token}` } : { Accept: 'application/json' };
}

/** URL of GET /v1/models. */
function modelsUrl(baseUrl) {
  return `${trimSlash(baseUrl)}/v1/models`;
}

/**
 * URL of POST /v1/models/{model}/predict?top_k=N&lang=L. `lang` picks the labels' language
 * (the server falls back, and says so in `model.labels_language`, when it lacks it).
 */
function predictUrl(baseUrl, model, topK, lang) {
  const query = [];
  if (topK) query.push(`top_k=${encodeURIComponent(String(topK))}`);
  if (lang) query.push(`lang=${encodeURIComponent(lang)}`);
  const tail = query.length ? `?${query.join('&')}` : '';
  return `${trimSlash(baseUrl)}/v1/models/${encodeURIComponent(model)}/predict${tail}`;
}

/**
 * Lists the served models.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string, timeoutMs?: number, token?: string}} opts
 * @returns {Promise<ReturnType<typeof parseModelList>>}
 */
function fetchModels(wx, { baseUrl, timeoutMs = 10000, token = '' }) {
  const url = modelsUrl(baseUrl);
  return new Promise((resolve, reject) => {
    wx.request({
      url,
      method: 'GET',
      // Parse ourselves: wx's own JSON parsing silently leaves a string when it fails.
      dataType: 'text',
      responseType: 'text',
      timeout: timeoutMs,
      header: headers(token),
      success: (res) => settle(resolve, reject, () => parseModelList(res)),
      fail: (err) => reject(fromWxFail(err, { url, timeoutMs })),
    });
  });
}

/**
 * Starts uploading one photo (multipart field `image`); the promise gives the parsed predictions.
 * `abort()` cancels it: the promise then rejects with a ClientError of kind `cancelled`.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string, model: string, filePath: string, topK?: number, lang?: string,
 *   timeoutMs?: number, token?: string, onProgress?: (percent: number) => void}} opts
 * @returns {{promise: Promise<ReturnType<typeof parsePredictResponse>>, abort: () => void}}
 */
function startUpload(wx, { baseUrl, model, filePath, topK = 5, lang, timeoutMs = 30000, token = '', onProgress }) {
  const url = predictUrl(baseUrl, model, topK, lang);
  /** @type {WechatMiniprogram.UploadTask|null} */
  let task = null;
  const promise = new Promise((resolve, reject) => {
    // No Content-Type header: wx.uploadFile writes multipart/form-data with its own boundary.
    task = wx.uploadFile({
      url,
      filePath,
      name: 'image',
      timeout: timeoutMs,
      header: headers(token),
      success: (res) => settle(resolve, reject, () => parsePredictResponse(res)),
      fail: (err) => reject(fromWxFail(err, { url, timeoutMs })),
    });
  });
  // The executor above ran synchronously, so `task` is set here (TypeScript cannot tell).
  const started = /** @type {WechatMiniprogram.UploadTask|null} */ (task);
  if (onProgress && started && typeof started.onProgressUpdate === 'function') {
    started.onProgressUpdate((res) => onProgress(clampPercent(res && res.progress)));
  }
  return {
    promise,
    abort: () => {
      if (started && typeof started.abort === 'function') started.abort();
    },
  };
}

/** Uploads one photo and parses the predictions (startUpload without the handle). */
function uploadPredict(wx, opts) {
  return startUpload(wx, opts).promise;
}

function clampPercent(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(100, Math.max(0, Math.round(n))) : 0;
}

function settle(resolve, reject, fn) {
  try {
    resolve(fn());
  } catch (err) {
    reject(err);
  }
}

module.exports = { modelsUrl, predictUrl, fetchModels, startUpload, uploadPredict };
