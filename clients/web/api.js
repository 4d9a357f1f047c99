// kerasserve web page, talking to the server: JSON reads, uploads with progress, errors as UiError.
// URLs are relative to the page, so the page works on any host and under a path prefix.

export const TIMEOUT_MS = 60000;

// A message for people per server error code (docs/API.md); the server's own text goes below it.
export const CODE_MESSAGES = {
  invalid_image: 'This file could not be read as an image.',
  empty_file: 'The file is empty.',
  unsupported_media_type: 'This is not an image format the server reads. Use a JPEG, PNG or WebP photo.',
  image_too_large: 'This photo has too many pixels for the server. Choose a smaller one.',
  payload_too_large: 'This file is too large to upload. Choose a smaller one.',
  too_many_images: 'Too many photos in one request.',
  missing_image: 'No photo reached the server.',
  invalid_request: 'The server rejected the request as malformed.',
  unauthorized: 'The server requires an API key.',
  model_not_found: 'The server does not serve this model.',
  model_unavailable: 'This model is not available right now. Choose another one or try again later.',
  too_many_models: 'The server cannot load more models right now.',
  invalid_config: 'The server’s model configuration is invalid. Tell whoever runs it.',
  not_found: 'The server has no such address.',
  method_not_allowed: 'The server does not accept this request method.',
  request_timeout: 'The upload was too slow to reach the server.',
  client_closed_request: 'The request was cancelled.',
  overloaded: 'The server is busy right now.',
  not_ready: 'The server is still starting up. Try again in a moment.',
  shutting_down: 'The server is restarting. Try again in a moment.',
  deadline_exceeded: 'The server took too long to classify the photo.',
  inference_failed: 'The model failed on this photo.',
  internal_error: 'The server hit an internal error.',
};

/** A failure told in words for people, with the machine details kept beside it. */
export class UiError extends Error {
  constructor(title, { detail = '', code = '', requestId = '', status = 0 } = {}) {
    super(title);
    this.detail = detail;
    this.code = code;
    this.requestId = requestId;
    this.status = status;
  }
}

export const url = (path) => new URL(path, document.baseURI).toString();

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch (err) {
    return null;
  }
}

/** Turn an HTTP answer (status, header getter, body text) into its JSON body or a UiError. */
function interpret(status, header, text) {
  const requestId = header('X-Request-ID') || '';
  const body = parseJson(text);
  if (status < 200 || status >= 300) {
    if (body && typeof body.code === 'string') {
      let title = CODE_MESSAGES[body.code] || `The server answered with an error (HTTP ${status}).`;
      const retry = typeof body.retry_after === 'number' ? body.retry_after : Number(header('Retry-After'));
      if (retry > 0) title += ` Try again in ${Math.ceil(retry)} s.`;
      throw new UiError(title, {
        detail: body.message || '',
        code: body.code,
        requestId: body.request_id || requestId,
        status,
      });
    }
    throw new UiError(`The server answered with an error (HTTP ${status}).`, {
      code: `http_${status}`,
      requestId,
      status,
    });
  }
  if (body === null || typeof body !== 'object') {
    throw new UiError('The server sent an answer this page cannot read.', { code: 'unreadable', requestId, status });
  }
  return { body, requestId };
}

const unreachable = (detail) =>
  new UiError('Cannot reach the server. Check your connection and that kerasserve is running.', {
    detail,
    code: 'network',
  });
const tooSlow = () => new UiError(`The server did not answer within ${TIMEOUT_MS / 1000} s.`, { code: 'timeout' });

function authHeaders(apiKey) {
  return apiKey ? { 'X-API-Key': apiKey } : {};
}

/** GET a JSON document; every failure becomes a UiError. */
export async function getJson(path, { apiKey = '' } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let res;
  let text;
  try {
    res = await fetch(url(path), {
      signal: controller.signal,
      headers: { Accept: 'application/json', ...authHeaders(apiKey) },
    });
    text = await res.text();
  } catch (err) {
    if (controller.signal.aborted) throw tooSlow();
    throw unreachable(String(err && err.message ? err.message : err));
  } finally {
    clearTimeout(timer);
  }
  return interpret(res.status, (name) => res.headers.get(name), text);
}

/**
 * POST one image as the multipart field `image` with XMLHttpRequest, for its upload progress.
 * `onProgress(fraction | null)` follows the upload, `onSent()` fires once the body is out.
 * Resolves to `{body, requestId}`; rejects with a UiError, or an AbortError when `signal` aborts.
 */
export function upload(path, blob, filename, { apiKey = '', signal, onProgress, onSent } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url(path));
    xhr.timeout = TIMEOUT_MS;
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [name, value] of Object.entries(authHeaders(apiKey))) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.lengthComputable ? e.loaded / e.total : null);
    xhr.upload.onload = () => onSent && onSent();
    xhr.onload = () => {
      try {
        resolve(interpret(xhr.status, (name) => xhr.getResponseHeader(name), xhr.responseText));
      } catch (err) {
        reject(err);
      }
    };
    xhr.onerror = () => reject(unreachable('The connection failed before an answer came.'));
    xhr.ontimeout = () => reject(tooSlow());
    xhr.onabort = () => reject(new DOMException('superseded', 'AbortError'));
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException('superseded', 'AbortError'));
        return;
      }
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    const form = new FormData();
    form.append('image', blob, filename);
    xhr.send(form);
  });
}
