/**
 * Where the kerasserve server is, per mini-program environment, and the upload settings.
 *
 * `develop` runs in WeChat DevTools (with "do not verify domain" ticked in the local settings) or
 * as a preview on a phone. A phone cannot reach 127.0.0.1 on your computer: put your LAN address
 * in `config.local.js` (git-ignored, never committed), which may set the develop URL only:
 *
 *     module.exports = { developUrl: 'http://<your computer's LAN address>:8000' };
 *
 * `trial` and `release` must be HTTPS domains with an ICP filing, on the uploadFile and request
 * whitelists of the mini-program's admin console (docs/wechat.md); a test fails otherwise.
 */
const BASE_URLS = {
  develop: 'http://127.0.0.1:8000',
  trial: 'https://kerasserve.example.com',
  release: 'https://kerasserve.example.com',
};

/**
 * `urls` with the develop URL of a local override, when it has one. Trial and release builds
 * are never pointed elsewhere by a file that stays on one developer's machine.
 * @param {Record<string, string>} urls
 * @param {{developUrl?: string}|null} local
 */
function applyLocalOverride(urls, local) {
  const developUrl = local && typeof local.developUrl === 'string' ? local.developUrl.trim() : '';
  return developUrl ? { ...urls, develop: developUrl } : { ...urls };
}

function loadLocal() {
  try {
    // Optional: absent on every machine but a developer's own. A literal path, as WeChat needs.
    // @ts-ignore the file may not exist
    return require('./config.local.js');
  } catch (err) {
    return null;
  }
}

module.exports = {
  BASE_URLS: applyLocalOverride(BASE_URLS, loadLocal()),
  TRACKED_BASE_URLS: BASE_URLS,
  applyLocalOverride,
  /** Predictions shown per photo (`top_k` of the API). */
  TOP_K: 5,
  /** wx.uploadFile timeout; WeChat's own maximum is 60 s. */
  UPLOAD_TIMEOUT_MS: 30000,
  /** wx.request timeout for the model list. */
  REQUEST_TIMEOUT_MS: 10000,
  /** Photos are shrunk to this long side before upload: the models need 224 px. */
  MAX_UPLOAD_SIDE: 1024,
  /** Photos bigger than this are recompressed even when their size is unknown. */
  COMPRESS_OVER_BYTES: 1024 * 1024,
  /** JPEG quality for wx.compressImage. */
  COMPRESS_QUALITY: 80,
  /** Past results kept on the phone. */
  HISTORY_LIMIT: 20,
  /** A 503 is retried once by itself when its Retry-After is at most this many seconds. */
  AUTO_RETRY_MAX_WAIT_S: 30,
};
