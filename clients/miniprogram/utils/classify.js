/** One photo from the user's tap to its predictions: choose, compress when large, upload. */
const { uploadPredict } = require('./api.js');
const { compressIfLarge } = require('./image.js');

/**
 * Compresses (when large) and classifies one photo.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{path: string, size: number}} photo
 * @param {{baseUrl: string, model: string, topK: number, uploadTimeoutMs: number,
 *   compressOverBytes: number, compressQuality: number}} opts
 */
async function classifyPhoto(wx, photo, opts) {
  const upload = await compressIfLarge(wx, photo, {
    overBytes: opts.compressOverBytes,
    quality: opts.compressQuality,
  });
  return uploadPredict(wx, {
    baseUrl: opts.baseUrl,
    model: opts.model,
    filePath: upload.path,
    topK: opts.topK,
    timeoutMs: opts.uploadTimeoutMs,
  });
}

module.exports = { classifyPhoto };
