/**
 * The two calls the mini-program makes to kerasserve, as promises over `wx.request` and
 * `wx.uploadFile`. `wx` is a parameter so Node tests can pass a fake (or a real HTTP one).
 */
const { fromWxFail } = require('./errors.js');
const { parseModelList, parsePredictResponse } = require('./parse.js');
const { trimSlash } = require('./env.js');

/** URL of GET /v1/models. */
function modelsUrl(baseUrl) {
  return `${trimSlash(baseUrl)}/v1/models`;
}

/** URL of POST /v1/models/{model}/predict?top_k=N. */
function predictUrl(baseUrl, model, topK) {
  const query = topK ? `?top_k=${encodeURIComponent(String(topK))}` : '';
  return `${trimSlash(baseUrl)}/v1/models/${encodeURIComponent(model)}/predict${query}`;
}

/**
 * Lists the served models.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string, timeoutMs?: number}} opts
 * @returns {Promise<ReturnType<typeof parseModelList>>}
 */
function fetchModels(wx, { baseUrl, timeoutMs = 10000 }) {
  const url = modelsUrl(baseUrl);
  return new Promise((resolve, reject) => {
    wx.request({
      url,
      method: 'GET',
      // Parse ourselves: wx's own JSON parsing silently leaves a string when it fails.
      dataType: 'text',
      responseType: 'text',
      timeout: timeoutMs,
      header: { Accept: 'application/json' },
      success: (res) => settle(resolve, reject, () => parseModelList(res)),
      fail: (err) => reject(fromWxFail(err, { url, timeoutMs })),
    });
  });
}

/**
 * Uploads one photo (multipart field `image`) and parses the predictions.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string, model: string, filePath: string, topK?: number, timeoutMs?: number}} opts
 * @returns {Promise<ReturnType<typeof parsePredictResponse>>}
 */
function uploadPredict(wx, { baseUrl, model, filePath, topK = 5, timeoutMs = 30000 }) {
  const url = predictUrl(baseUrl, model, topK);
  return new Promise((resolve, reject) => {
    // No Content-Type header: wx.uploadFile writes multipart/form-data with its own boundary.
    wx.uploadFile({
      url,
      filePath,
      name: 'image',
      timeout: timeoutMs,
      header: { Accept: 'application/json' },
      success: (res) => settle(resolve, reject, () => parsePredictResponse(res)),
      fail: (err) => reject(fromWxFail(err, { url, timeoutMs })),
    });
  });
}

function settle(resolve, reject, fn) {
  try {
    resolve(fn());
  } catch (err) {
    reject(err);
  }
}

module.exports = { modelsUrl, predictUrl, fetchModels, uploadPredict };
