/**
 * Every failure the user can meet, turned into one `ClientError` with a message for people.
 *
 *   ClientError.kind
 *    ├── network      the request never got an answer (offline, DNS, refused, TLS)
 *    ├── timeout      no answer within the timeout
 *    ├── domain       the URL is not on the mini-program's domain whitelist
 *    ├── http         the server answered with a non-200 status (`code` is its ErrorCode)
 *    ├── parse        the server answered with a body we cannot read
 *    ├── permission   camera, album or privacy access refused
 *    └── device       a local API failed (choosing, compressing or saving a photo)
 */

/** What to tell the user for each server `ErrorCode` (docs/API.md). */
const CODE_MESSAGES = {
  invalid_image: 'This file could not be read as an image. Try another photo.',
  empty_file: 'The photo was empty. Take or choose it again.',
  unsupported_media_type: 'This is not an image format the server reads. Use a JPEG, PNG or WebP photo.',
  image_too_large: 'This photo has too many pixels for the server. Choose a smaller one.',
  payload_too_large: 'This photo is too large to upload. Choose a smaller one.',
  too_many_images: 'Too many photos in one request. Send one at a time.',
  missing_image: 'No photo reached the server. Try again.',
  invalid_request: 'The server rejected the request as malformed.',
  features_too_large: 'The requested features are too large to send back. Ask for pooled features.',
  unauthorized: 'The server refused access: this app is not authorised to use it.',
  model_not_found: 'The server does not serve this model. Pick another one.',
  layer_not_found: 'The server does not have this layer.',
  not_found: 'The server has no such address. Check the server URL in config.js.',
  method_not_allowed: 'The server does not accept this request method.',
  request_timeout: 'The upload was too slow to reach the server. Try again on a better connection.',
  client_closed_request: 'The request was cancelled before the server answered. Try again.',
  overloaded: 'The server is busy right now.',
  not_ready: 'The server is still starting up. Try again in a moment.',
  shutting_down: 'The server is restarting. Try again in a moment.',
  deadline_exceeded: 'The server took too long to classify the photo. Try again.',
  inference_failed: 'The model failed on this photo. Try another one.',
  internal_error: 'The server hit an internal error.',
};

class ClientError extends Error {
  /**
   * @param {string} kind one of the kinds in the tree above
   * @param {string} message what to tell the user
   * @param {object} [info]
   * @param {string} [info.code] the server's ErrorCode, for kind `http`
   * @param {number} [info.status] HTTP status
   * @param {string} [info.detail] the server's own message or the raw errMsg
   * @param {string} [info.requestId] X-Request-ID, to find the request in the server log
   * @param {number} [info.retryAfter] seconds, for 503 answers
   */
  constructor(kind, message, info = {}) {
    super(message);
    this.name = 'ClientError';
    // A marker, not instanceof: DevTools' ES5 transpiling breaks instanceof on Error subclasses.
    this.isClientError = true;
    this.kind = kind;
    this.code = info.code || null;
    this.status = info.status || null;
    this.detail = info.detail || '';
    this.requestId = info.requestId || null;
    this.retryAfter = info.retryAfter == null ? null : info.retryAfter;
  }
}

/**
 * The ClientError for a `fail` callback of wx.request / wx.uploadFile.
 * @param {{errMsg?: string, errno?: number}} err
 * @param {{url: string, timeoutMs?: number}} ctx
 */
function fromWxFail(err, ctx) {
  const errMsg = String((err && err.errMsg) || 'request:fail');
  const lower = errMsg.toLowerCase();
  if (lower.includes('timeout') || lower.includes('timed out')) {
    const secs = ctx.timeoutMs ? ` (${Math.round(ctx.timeoutMs / 1000)} s)` : '';
    return new ClientError('timeout', `The server did not answer in time${secs}. Try again.`, {
      detail: errMsg,
    });
  }
  if (lower.includes('domain list') || lower.includes('url not in domain')) {
    return new ClientError(
      'domain',
      `${originOf(ctx.url)} is not on this mini-program's domain whitelist. ` +
        'Add it in the admin console, or tick "do not verify domain" in DevTools.',
      { detail: errMsg },
    );
  }
  if (lower.includes('privacy')) {
    return privacyError(errMsg);
  }
  return new ClientError(
    'network',
    `Cannot reach the server at ${originOf(ctx.url)}. Check your connection and that the server is running.`,
    { detail: errMsg },
  );
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
    return new ClientError('http', `The server answered with an error (HTTP ${status}).`, {
      status,
      requestId,
    });
  }
  const code = body.code;
  const retryAfter = numberOr(body.retry_after, retryAfterHeader);
  let message = CODE_MESSAGES[code] || `The server answered with an error (HTTP ${status}).`;
  if (retryAfter != null && retryAfter > 0) {
    message += ` Try again in ${Math.max(1, Math.ceil(retryAfter))} s.`;
  }
  return new ClientError('http', message, {
    code,
    status,
    detail: typeof body.message === 'string' ? body.message : '',
    requestId: body.request_id || requestId,
    retryAfter,
  });
}

function parseError(message, info) {
  return new ClientError('parse', message, info);
}

function privacyError(errMsg) {
  return new ClientError(
    'permission',
    'Please agree to the privacy guide first: the app needs it to use the camera and your album.',
    { detail: errMsg },
  );
}

/** Turns anything thrown into a ClientError, so pages never show a raw stack. */
function toClientError(err) {
  if (err && err.isClientError === true) return err;
  const detail = err && (err.errMsg || err.message) ? String(err.errMsg || err.message) : String(err);
  return new ClientError('device', 'Something went wrong on this phone. Try again.', { detail });
}

function originOf(url) {
  const m = /^(https?:\/\/[^/?#]+)/i.exec(String(url || ''));
  return m ? m[1] : String(url || 'the server');
}

function numberOr(value, fallback) {
  const n = typeof value === 'number' ? value : Number.NaN;
  if (Number.isFinite(n)) return n;
  return fallback == null ? null : fallback;
}

module.exports = {
  CODE_MESSAGES,
  ClientError,
  fromWxFail,
  fromHttpError,
  parseError,
  privacyError,
  toClientError,
};
