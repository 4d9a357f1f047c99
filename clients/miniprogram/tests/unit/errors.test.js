const { CODE_MESSAGES, ClientError, fromHttpError, fromWxFail, toClientError } = require('../../utils/errors.js');

const fs = require('fs');
const path = require('path');

// Every ErrorCode of schemas/errors.py (the server's source of truth), read from the file so a
// new server code cannot ship without a message here.
function serverCodes() {
  const py = fs.readFileSync(path.join(__dirname, '../../../../schemas/errors.py'), 'utf8');
  return [...py.matchAll(/^\s+[A-Z_]+ = "([a-z_]+)"/gm)].map((m) => m[1]);
}

test('every server error code has a message for people', () => {
  const codes = serverCodes();
  expect(codes).toEqual(expect.arrayContaining(['invalid_image', 'overloaded', 'image_too_large']));
  for (const code of codes) {
    expect({ code, message: typeof CODE_MESSAGES[code] }).toEqual({ code, message: 'string' });
  }
});

test('no message for a code the server does not have', () => {
  expect(Object.keys(CODE_MESSAGES).filter((c) => !serverCodes().includes(c))).toEqual([]);
});

test('the HTTP error keeps the server message as detail, not as the headline', () => {
  const err = fromHttpError(413, { code: 'image_too_large', message: 'image has 100000000 pixels, limit 40000000' });
  expect(err.message).toBe(CODE_MESSAGES.image_too_large);
  expect(err.detail).toBe('image has 100000000 pixels, limit 40000000');
});

test('fail without errMsg is still a network error with a message', () => {
  const err = fromWxFail(undefined, { url: 'http://h:1/x' });
  expect(err.kind).toBe('network');
  expect(err.message).toMatch(/http:\/\/h:1/);
});

test('privacy refusals are permission errors', () => {
  const err = fromWxFail({ errMsg: 'uploadFile:fail privacy permission is not authorized' }, { url: 'u' });
  expect(err.kind).toBe('permission');
});

test('toClientError keeps ClientErrors and wraps anything else without a stack', () => {
  const own = new ClientError('timeout', 'late');
  expect(toClientError(own)).toBe(own);
  const wrapped = toClientError(new TypeError('x is undefined'));
  expect(wrapped.kind).toBe('device');
  expect(wrapped.message).toBe('Something went wrong on this phone. Try again.');
  expect(wrapped.detail).toBe('x is undefined');
  expect(toClientError({ errMsg: 'compressImage:fail' }).detail).toBe('compressImage:fail');
});
