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

async function perform(api, url, init, timeoutMs, success, fail) {
  let res;
  let data;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs || 60000) });
    data = await res.text();
  } catch (err) {
    const timedOut = err && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const cause = err && err.cause ? ` ${err.cause.code || err.cause.message}` : '';
    if (fail) fail({ errMsg: timedOut ? `${api}:fail timeout` : `${api}:fail${cause || ` ${err.message}`}` });
    return;
  }
  if (success) success({ statusCode: res.status, data, header: headersObject(res.headers) });
}

function httpWx() {
  return {
    uploadFile({ url, filePath, name, formData = {}, header = {}, timeout, success, fail }) {
      let bytes;
      try {
        bytes = fs.readFileSync(filePath);
      } catch (err) {
        if (fail) fail({ errMsg: `uploadFile:fail file not found ${filePath}` });
        return;
      }
      const form = new FormData();
      for (const [key, value] of Object.entries(formData)) form.append(key, String(value));
      const type = MIME[path.extname(filePath).toLowerCase()] || 'application/octet-stream';
      form.append(name, new Blob([bytes], { type }), path.basename(filePath));
      // fetch sets multipart/form-data with its boundary, as wx.uploadFile does.
      perform('uploadFile', url, { method: 'POST', headers: header, body: form }, timeout, success, fail);
    },

    request({ url, method = 'GET', header = {}, data, timeout, dataType = 'json', success, fail }) {
      const body = data === undefined || method === 'GET' ? undefined : JSON.stringify(data);
      perform('request', url, { method, headers: header, body }, timeout, (res) => {
        if (dataType === 'json') {
          try {
            res.data = JSON.parse(res.data);
          } catch (err) {
            // wx leaves the string as it is when it is not JSON.
          }
        }
        if (success) success(res);
      }, fail);
    },
  };
}

module.exports = { httpWx };
