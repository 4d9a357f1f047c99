/** Which environment the mini-program runs in (develop, trial, release), and its server URL. */
const config = require('../config.js');

const ENVIRONMENTS = ['develop', 'trial', 'release'];

/**
 * `develop`, `trial` or `release` from wx.getAccountInfoSync(); unknown or unavailable
 * environments count as `develop`.
 * @param {WechatMiniprogram.Wx} wx the WeChat API object (a fake one in tests)
 * @returns {'develop'|'trial'|'release'}
 */
function resolveEnv(wx) {
  try {
    const info = wx.getAccountInfoSync && wx.getAccountInfoSync();
    const version = info && info.miniProgram && info.miniProgram.envVersion;
    if (version === 'develop' || version === 'trial' || version === 'release') return version;
  } catch (err) {
    // Older base libraries lack getAccountInfoSync; develop is the safe default there.
  }
  return 'develop';
}

/**
 * The base URL for this build.
 * @param {WechatMiniprogram.Wx} wx
 * @param {Record<string, string>} [urls] base URL per environment
 * @returns {string} base URL without a trailing slash
 */
function resolveBaseUrl(wx, urls = config.BASE_URLS) {
  const env = resolveEnv(wx);
  return trimSlash(urls[env] || urls.develop);
}

function trimSlash(url) {
  return String(url || '').replace(/\/+$/, '');
}

module.exports = { ENVIRONMENTS, resolveEnv, resolveBaseUrl, trimSlash };
