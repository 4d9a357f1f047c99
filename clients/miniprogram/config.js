/**
 * Where the kerasserve server is, per mini-program environment. The only file to edit to point
 * the app at another server.
 *
 * `develop` runs in WeChat DevTools (with "do not verify domain" ticked in the local settings) or
 * a preview on a phone in the same network; `trial` and `release` must be HTTPS domains on the
 * uploadFile and request whitelists of the mini-program's admin console (see README.md).
 */
const BASE_URLS = {
  develop: 'http://127.0.0.1:8000',
  trial: 'https://kerasserve.example.com',
  release: 'https://kerasserve.example.com',
};

module.exports = {
  BASE_URLS,
  /** Predictions shown per photo (`top_k` of the API). */
  TOP_K: 5,
  /** wx.uploadFile timeout; WeChat's own maximum is 60 s. */
  UPLOAD_TIMEOUT_MS: 30000,
  /** wx.request timeout for the model list. */
  REQUEST_TIMEOUT_MS: 10000,
  /** Photos bigger than this are recompressed before upload (camera JPEGs are often 3-8 MB). */
  COMPRESS_OVER_BYTES: 1024 * 1024,
  /** JPEG quality for wx.compressImage. */
  COMPRESS_QUALITY: 80,
};
