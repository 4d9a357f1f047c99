/**
 * WeChat login: `wx.login` gives a one-time code, POST /v1/auth/wechat trades it for a short-lived
 * token bound to the user, kept in wx storage and sent as `Authorization: Bearer <token>`.
 * The mini-program holds no secret of its own: the server holds the WeChat appsecret.
 */
const { ClientError, fromWxFail } = require('./errors.js');
const { readAnswer } = require('./parse.js');
const { trimSlash } = require('./env.js');

const TOKEN_KEY = 'kerasserve.auth.v1';

/** A token this close to its expiry is renewed before use rather than sent to fail. */
const EXPIRY_MARGIN_MS = 60000;

/** URL of POST /v1/auth/wechat. */
function loginUrl(baseUrl) {
  return `${trimSlash(baseUrl)}/v1/auth/wechat`;
}

/**
 * The one-time code of wx.login.
 * @param {WechatMiniprogram.Wx} wx
 * @returns {Promise<string>}
 */
function wxLoginCode(wx) {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => {
        if (res && typeof res.code === 'string' && res.code) resolve(res.code);
        else reject(new ClientError('login', 'error.login', { detail: 'wx.login gave no code' }));
      },
      fail: (err) => reject(new ClientError('login', 'error.login', { detail: String((err && err.errMsg) || err) })),
    });
  });
}

/**
 * Trades a wx.login code for a token: `{"code"}` in, `{"token", "expires_in"}` out.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string, code: string, timeoutMs?: number}} opts
 * @returns {Promise<{token: string, expiresIn: number}>}
 */
function exchangeCode(wx, { baseUrl, code, timeoutMs = 10000 }) {
  const url = loginUrl(baseUrl);
  return new Promise((resolve, reject) => {
    wx.request({
      url,
      method: 'POST',
      // An object with a JSON Content-Type: wx.request sends it as JSON.
      data: { code },
      dataType: 'text',
      responseType: 'text',
      timeout: timeoutMs,
      header: { Accept: 'application/json', 'Content-Type': 'application/json' },
      success: (res) => {
        try {
          const { body, requestId } = readAnswer(res);
          if (!body || typeof body.token !== 'string' || !body.token) {
            throw new ClientError('parse', 'error.parse', { requestId, detail: 'login answer without a token' });
          }
          const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 0;
          resolve({ token: body.token, expiresIn });
        } catch (err) {
          reject(err);
        }
      },
      fail: (err) => reject(fromWxFail(err, { url, timeoutMs })),
    });
  });
}

/**
 * The token kept on the phone, while it is still good for `EXPIRY_MARGIN_MS`; '' otherwise.
 * @param {WechatMiniprogram.Wx} wx
 * @param {number} now
 */
function storedToken(wx, now) {
  try {
    const kept = wx.getStorageSync(TOKEN_KEY);
    if (kept && typeof kept.token === 'string' && typeof kept.expiresAt === 'number') {
      if (kept.expiresAt - EXPIRY_MARGIN_MS > now) return kept.token;
    }
  } catch (err) {
    // Unreadable storage: log in again.
  }
  return '';
}

/**
 * Login state of one page: `token()` gives a usable token (logging in when none is kept), `renew()`
 * forgets it and logs in again (after a 401). Concurrent callers share one login. A server that has
 * no WeChat login (404 on /v1/auth/wechat) gets no token, and requests go without one.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string, timeoutMs?: number, now?: () => number}} opts
 */
function createAuth(wx, { baseUrl, timeoutMs = 10000, now = Date.now }) {
  /** @type {Promise<string>|null} */
  let inFlight = null;

  async function login() {
    const code = await wxLoginCode(wx);
    try {
      const { token, expiresIn } = await exchangeCode(wx, { baseUrl, code, timeoutMs });
      // Without an expires_in, keep it for the server's documented lifetime of two hours.
      const expiresAt = now() + (expiresIn || 7200) * 1000;
      wx.setStorageSync(TOKEN_KEY, { token, expiresAt });
      return token;
    } catch (err) {
      if (err && err.status === 404) return ''; // this server has no WeChat login
      throw err;
    }
  }

  function shared() {
    if (!inFlight) {
      inFlight = login().finally(() => {
        inFlight = null;
      });
    }
    return inFlight;
  }

  return {
    /** @returns {Promise<string>} a token ('' where the server has no login) */
    token() {
      const kept = storedToken(wx, now());
      return kept ? Promise.resolve(kept) : shared();
    },
    /** @returns {Promise<string>} a new token, after the server refused the old one */
    renew() {
      forgetToken(wx);
      return shared();
    },
  };
}

/** Drops the kept token. */
function forgetToken(wx) {
  try {
    wx.removeStorageSync(TOKEN_KEY);
  } catch (err) {
    wx.setStorageSync(TOKEN_KEY, '');
  }
}

/**
 * Runs `call(token)` with a token; when the server answers 401, renews the token once and runs it
 * again. A login that fails before the first call is not fatal: the call goes without a token (a
 * server without login accepts it), and a 401 then tries the login again.
 * @template T
 * @param {ReturnType<typeof createAuth>|null} auth none where login is unavailable (Moments' single-page mode)
 * @param {(token: string) => Promise<T>} call
 * @returns {Promise<T>}
 */
async function withToken(auth, call) {
  if (!auth) return call('');
  let token = '';
  try {
    token = await auth.token();
  } catch (err) {
    token = '';
  }
  try {
    return await call(token);
  } catch (err) {
    if (!err || err.status !== 401) throw err;
    const renewed = await auth.renew();
    return call(renewed);
  }
}

module.exports = { TOKEN_KEY, EXPIRY_MARGIN_MS, loginUrl, exchangeCode, createAuth, forgetToken, withToken };
