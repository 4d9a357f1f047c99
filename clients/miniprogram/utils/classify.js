/** One photo from the user's tap to its predictions: shrink it, then upload it with progress. */
const { startUpload } = require('./api.js');
const { withToken } = require('./auth.js');
const { prepareUpload } = require('./image.js');

/**
 * Shrinks and classifies one photo. `onStart` receives the upload's handle (to cancel it) as
 * soon as an upload starts (again after a token renewal); `onProgress` its percentage. With
 * `auth`, the upload carries the login token and a 401 renews it once.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{path: string, size: number}} photo
 * @param {{baseUrl: string, model: string, topK: number, lang: string, uploadTimeoutMs: number,
 *   maxSide: number, compressOverBytes: number, compressQuality: number,
 *   auth?: ReturnType<import('./auth.js')['createAuth']>,
 *   onStart?: (upload: {abort: () => void}) => void, onProgress?: (percent: number) => void}} opts
 * @returns {Promise<{result: any, uploadedPath: string}>}
 */
async function classifyPhoto(wx, photo, opts) {
  const upload = await prepareUpload(wx, photo, {
    maxSide: opts.maxSide,
    overBytes: opts.compressOverBytes,
    quality: opts.compressQuality,
  });
  const send = (token) => {
    const handle = startUpload(wx, {
      baseUrl: opts.baseUrl,
      model: opts.model,
      filePath: upload.path,
      topK: opts.topK,
      lang: opts.lang,
      timeoutMs: opts.uploadTimeoutMs,
      token,
      onProgress: opts.onProgress,
    });
    if (opts.onStart) opts.onStart(handle);
    return handle.promise;
  };
  const result = opts.auth ? await withToken(opts.auth, send) : await send('');
  return { result, uploadedPath: upload.path };
}

module.exports = { classifyPhoto };
