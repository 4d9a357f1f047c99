/** One photo from the user's tap to its predictions: shrink it, then upload it with progress. */
const { startUpload } = require('./api.js');
const { prepareUpload } = require('./image.js');

/**
 * Shrinks and classifies one photo. `onStart` receives the upload's handle (to cancel it) as
 * soon as the upload starts; `onProgress` its percentage.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{path: string, size: number}} photo
 * @param {{baseUrl: string, model: string, topK: number, lang: string, uploadTimeoutMs: number,
 *   maxSide: number, compressOverBytes: number, compressQuality: number,
 *   onStart?: (upload: {abort: () => void}) => void, onProgress?: (percent: number) => void}} opts
 * @returns {Promise<{result: any, uploadedPath: string}>}
 */
async function classifyPhoto(wx, photo, opts) {
  const upload = await prepareUpload(wx, photo, {
    maxSide: opts.maxSide,
    overBytes: opts.compressOverBytes,
    quality: opts.compressQuality,
  });
  const handle = startUpload(wx, {
    baseUrl: opts.baseUrl,
    model: opts.model,
    filePath: upload.path,
    topK: opts.topK,
    lang: opts.lang,
    timeoutMs: opts.uploadTimeoutMs,
    onProgress: opts.onProgress,
  });
  if (opts.onStart) opts.onStart(handle);
  const result = await handle.promise;
  return { result, uploadedPath: upload.path };
}

module.exports = { classifyPhoto };
