// kerasserve web page, talking to the server: JSON reads, uploads with progress, errors as UiError.
// URLs are relative to the page, so the page works on any host and under a path prefix.

import { has, t } from './strings.js';

export const TIMEOUT_MS = 60000;

/** A message for people per server error code (docs/API.md), in the page's language. */
export const codeMessage = (code, status) => (has(`code.${code}`) ? t(`code.${code}`) : t('error.http', { status }));

/** A failure told in words for people, with the machine details kept beside it. */
export class UiError extends Error {
  constructor(title, { detail = '', code = '', requestId = '', status = 0, retryAfter = 0 } = {}) {
    super(title);
    this.retryAfter = retryAfter; // seconds the server asked us to wait (503, 429), 0 when none
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
      let title = codeMessage(body.code, status);
      const retry = typeof body.retry_after === 'number' ? body.retry_after : Number(header('Retry-After'));
      if (retry > 0) title += t('error.retryIn', { s: Math.ceil(retry) });
      throw new UiError(title, {
        detail: body.message || '',
        code: body.code,
        requestId: body.request_id || requestId,
        status,
        retryAfter: retry > 0 ? retry : 0,
      });
    }
    const retry = Number(header('Retry-After'));
    throw new UiError(t('error.http', { status }), {
      code: `http_${status}`,
      requestId,
      status,
      retryAfter: retry > 0 ? retry : 0,
    });
  }
  if (body === null || typeof body !== 'object') {
    throw new UiError(t('error.unreadable'), { code: 'unreadable', requestId, status });
  }
  return { body, requestId };
}

const unreachable = (detail) =>
  new UiError(t('error.unreachable'), {
    detail,
    code: 'network',
  });
const tooSlow = () => new UiError(t('error.timeout', { s: TIMEOUT_MS / 1000 }), { code: 'timeout' });

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
export function upload(path, blob, filename, options = {}) {
  const form = new FormData();
  form.append('image', blob, filename);
  return postForm(path, form, options);
}

/** POST a FormData with XMLHttpRequest (upload progress), as `upload` does. */
export function postForm(path, form, { apiKey = '', signal, onProgress, onSent, timeoutMs = TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url(path));
    xhr.timeout = timeoutMs;
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
    xhr.send(form);
  });
}
