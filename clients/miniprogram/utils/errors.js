/**
 * Every failure the user can meet, turned into one `ClientError` that names a string of
 * utils/strings.js (so the page can say it in the user's language) and, for developers, a hint.
 *
 *   ClientError.kind
 *    ├── network      the request never got an answer (offline, DNS, refused, TLS)
 *    ├── timeout      no answer within the timeout
 *    ├── cancelled    the user cancelled the upload (UploadTask.abort): not an error to show
 *    ├── domain       the URL is not on the mini-program's domain whitelist
 *    ├── http         the server answered with a non-200 status (`code` is its ErrorCode)
 *    ├── parse        the server answered with a body we cannot read
 *    ├── permission   camera, album or privacy access refused by the user
 *    ├── config       the mini-program itself is misconfigured (API not in the privacy guide)
 *    └── device       a local API failed (choosing, compressing or saving a photo)
 */
const { STRINGS } = require('./strings.js');
const { translator } = require('./i18n.js');

const english = translator('en');

/** The WeChat errno of "api scope is not declared in the privacy agreement". */
const ERRNO_PRIVACY_UNDECLARED = 112;

class ClientError extends Error {
  /**
   * @param {string} kind one of the kinds in the tree above
   * @param {string} key the strings.js key of what to tell the user
   * @param {object} [info]
   * @param {Record<string, string|number>} [info.params] parameters of `key`
   * @param {string} [info.devKey] a strings.js key of a hint for developers (develop only)
   * @param {Record<string, string|number>} [info.devParams]
   * @param {string} [info.code] the server's ErrorCode, for kind `http`
   * @param {number} [info.status] HTTP status
   * @param {string} [info.detail] the server's own message or the raw errMsg
   * @param {string} [info.requestId] X-Request-ID, to find the request in the server log
   * @param {number} [info.retryAfter] seconds, for 503 answers
   * @param {boolean} [info.settings] true when opening the settings can fix it
   */
  constructor(kind, key, info = {}) {
    const params = info.params || {};
    const retryAfter = info.retryAfter == null ? null : info.retryAfter;
    super(messageOf({ key, params, retryAfter }, english));
    this.name = 'ClientError';
    // A marker, not instanceof: DevTools' ES5 transpiling breaks instanceof on Error subclasses.
    this.isClientError = true;
    this.kind = kind;
    this.key = key;
    this.params = params;
    this.devKey = info.devKey || '';
    this.devParams = info.devParams || {};
    this.code = info.code || null;
    this.status = info.status || null;
    this.detail = info.detail || '';
    this.requestId = info.requestId || null;
    this.retryAfter = retryAfter;
    this.settings = info.settings === true;
  }
}

/**
 * The text for people of an error, in the language of `t`, with "try again in N s" when the
 * server said when.
 * @param {{key: string, params?: object, retryAfter?: number|null}} err
 * @param {(key: string, params?: object) => string} t
 */
function messageOf(err, t) {
  const text = t(err.key, err.params || {});
  if (err.retryAfter == null || !(err.retryAfter > 0)) return text;
  const retry = t('error.retryIn', { seconds: Math.max(1, Math.ceil(err.retryAfter)) });
  // Chinese sentences end in a full-width stop and take no space after it.
  return /[。！？]$/.test(text) ? `${text}${retry}` : `${text} ${retry}`;
}

/**
 * The ClientError for a `fail` callback of wx.request / wx.uploadFile.
 * @param {{errMsg?: string, errno?: number}} err
 * @param {{url: string, timeoutMs?: number}} ctx
 */
function fromWxFail(err, ctx) {
  const errMsg = String((err && err.errMsg) || 'request:fail');
  const lower = errMsg.toLowerCase();
  const origin = originOf(ctx.url);
  if (/:fail abort/.test(lower)) {
    return new ClientError('cancelled', 'toast.cancelled', { detail: errMsg });
  }
  if (lower.includes('timeout') || lower.includes('timed out')) {
    const seconds = ctx.timeoutMs ? Math.round(ctx.timeoutMs / 1000) : 60;
    return new ClientError('timeout', 'error.timeout', { params: { seconds }, detail: errMsg });
  }
  if (lower.includes('domain list') || lower.includes('url not in domain')) {
    return new ClientError('domain', 'error.domain', {
      devKey: 'dev.domain',
      devParams: { origin },
      detail: errMsg,
    });
  }
  if (lower.includes('privacy')) return privacyError(err);
  return new ClientError('network', 'error.network', {
    devKey: 'dev.network',
    devParams: { origin },
    detail: errMsg,
  });
}

/**
 * The ClientError for a non-200 answer, keyed on the server's ErrorResponse `code`.
 * @param {number} status
 * @param {any} body the parsed JSON body, or null when it was not JSON
 * @param {string} [requestId]
 * @param {number|null} [retryAfterHeader] seconds from the Retry-After header
 */
function fromHttpError(status, body, requestId, retryAfterHeader) {
  const isErrorBody = body && typeof body === 'object' && typeof body.code === 'string';
  if (!isErrorBody) {
    return new ClientError('http', 'error.http', { params: { status }, status, requestId });
  }
  const code = body.code;
  const known = Object.prototype.hasOwnProperty.call(STRINGS.en.code, code);
  return new ClientError('http', known ? `code.${code}` : 'error.http', {
    params: { status },
    devKey: code === 'not_found' ? 'dev.notFound' : '',
    code,
    status,
    detail: typeof body.message === 'string' ? body.message : '',
    requestId: body.request_id || requestId,
    retryAfter: numberOr(body.retry_after, retryAfterHeader),
  });
}

function parseError(key, info) {
  return new ClientError('parse', key, info);
}

/**
 * A privacy failure. The user saying no (errno 104, "privacy permission is not authorized") asks
 * for the agreement; an API missing from the privacy guide (errno 112, "api scope is not declared
 * in the privacy agreement") is the developer's to fix, and asking the user to agree cannot help.
 * @param {{errMsg?: string, errno?: number}|string} err
 */
function privacyError(err) {
  const errMsg = typeof err === 'string' ? err : String((err && err.errMsg) || '');
  const errno = err && typeof err === 'object' ? err.errno : undefined;
  if (errno === ERRNO_PRIVACY_UNDECLARED || /not declared|privacy agreement/i.test(errMsg)) {
    return new ClientError('config', 'error.privacyUndeclared', {
      devKey: 'dev.privacyUndeclared',
      detail: errMsg,
    });
  }
  return new ClientError('permission', 'error.privacyRefused', { detail: errMsg });
}

/** Turns anything thrown into a ClientError, so pages never show a raw stack. */
function toClientError(err) {
  if (err && err.isClientError === true) return err;
  const detail = err && (err.errMsg || err.message) ? String(err.errMsg || err.message) : String(err);
  return new ClientError('device', 'error.device', { detail });
}

function originOf(url) {
  const m = /^(https?:\/\/[^/?#]+)/i.exec(String(url || ''));
  return m ? m[1] : String(url || '?');
}

function numberOr(value, fallback) {
  const n = typeof value === 'number' ? value : Number.NaN;
  if (Number.isFinite(n)) return n;
  return fallback == null ? null : fallback;
}

module.exports = {
  ERRNO_PRIVACY_UNDECLARED,
  ClientError,
  messageOf,
  fromWxFail,
  fromHttpError,
  parseError,
  privacyError,
  toClientError,
};
