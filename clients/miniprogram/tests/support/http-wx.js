/**
 * A `wx` whose request and uploadFile really go over HTTP (Node's fetch, FormData and Blob),
 * with WeChat's semantics: `success` for every status with the body as a string, `fail` with an
 * `errMsg` for network errors and timeouts.
 */
const fs = require('fs');
const path = require('path');

const MIME = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.txt': 'text/plain' };

function headersObject(headers) {
  const out = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/**
 * What wx's request and uploadFile return: `abort()` cancels the HTTP request for real (the call
 * then fails with `<api>:fail abort`). Node's fetch reports no upload progress, so
 * onProgressUpdate listeners hear once, when the answer has come (the whole body was sent).
 */
function httpTask() {
  const controller = new AbortController();
  const listeners = [];
  return {
    controller,
    listeners,
    bodySize: 0,
    abort: () => controller.abort(),
    onProgressUpdate: (cb) => listeners.push(cb),
    offProgressUpdate: (cb) => listeners.splice(listeners.indexOf(cb) >>> 0, 1),
  };
}

async function perform(api, url, init, timeoutMs, success, fail, task) {
  let res;
  let data;
  const timeout = AbortSignal.timeout(timeoutMs || 60000);
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.any([timeout, task.controller.signal]) });
    data = await res.text();
  } catch (err) {
    const cause = err && err.cause ? ` ${err.cause.code || err.cause.message}` : '';
    let errMsg = `${api}:fail${cause || ` ${err.message}`}`;
    if (task.controller.signal.aborted) errMsg = `${api}:fail abort`;
    else if (timeout.aborted) errMsg = `${api}:fail timeout`;
    if (fail) fail({ errMsg });
    return;
  }
  const size = task.bodySize;
  for (const cb of task.listeners) cb({ progress: 100, totalBytesSent: size, totalBytesExpectedToSend: size });
  if (success) success({ statusCode: res.status, data, header: headersObject(res.headers) });
}

function httpWx() {
  return {
    uploadFile({ url, filePath, name, formData = {}, header = {}, timeout, success, fail }) {
      const task = httpTask();
      let bytes;
      try {
        bytes = fs.readFileSync(filePath);
      } catch (err) {
        if (fail) setTimeout(() => fail({ errMsg: `uploadFile:fail file not found ${filePath}` }), 0);
        return task;
      }
      task.bodySize = bytes.length;
      const form = new FormData();
      for (const [key, value] of Object.entries(formData)) form.append(key, String(value));
      const type = MIME[path.extname(filePath).toLowerCase()] || 'application/octet-stream';
      form.append(name, new Blob([bytes], { type }), path.basename(filePath));
      // fetch sets multipart/form-data with its boundary, as wx.uploadFile does.
      perform('uploadFile', url, { method: 'POST', headers: header, body: form }, timeout, success, fail, task);
      return task;
    },

    request({ url, method = 'GET', header = {}, data, timeout, dataType = 'json', success, fail }) {
      const body = data === undefined || method === 'GET' ? undefined : JSON.stringify(data);
      const task = httpTask();
      perform('request', url, { method, headers: header, body }, timeout, (res) => {
        if (dataType === 'json') {
          try {
            res.data = JSON.parse(res.data);
          } catch (err) {
            // wx leaves the string as it is when it is not JSON.
          }
        }
        if (success) success(res);
      }, fail, task);
      return task;
    },
  };
}

module.exports = { httpWx };
