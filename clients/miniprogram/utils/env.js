/** Picks the server base URL for the environment the mini-program runs in. */
const config = require('../config.js');

/**
 * The base URL for this build: `develop`, `trial` or `release` from wx.getAccountInfoSync().
 * Unknown or unavailable environments fall back to `develop`.
 * @param {WechatMiniprogram.Wx} wx the WeChat API object (a fake one in tests)
 * @param {Record<string, string>} [urls] base URL per environment
 * @returns {string} base URL without a trailing slash
 */
function resolveBaseUrl(wx, urls = config.BASE_URLS) {
  let env = 'develop';
  try {
    const info = wx.getAccountInfoSync && wx.getAccountInfoSync();
    const version = info && info.miniProgram && info.miniProgram.envVersion;
    if (version && urls[version]) env = version;
  } catch (err) {
    // Older base libraries lack getAccountInfoSync; develop is the safe default there.
  }
  return trimSlash(urls[env]);
}

function trimSlash(url) {
  return String(url || '').replace(/\/+$/, '');
}

module.exports = { resolveBaseUrl, trimSlash };
