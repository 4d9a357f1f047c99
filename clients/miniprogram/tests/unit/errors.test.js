const { ClientError, fromHttpError, fromWxFail, messageOf, toClientError } = require('../../utils/errors.js');
const { LANGUAGES, translator } = require('../../utils/i18n.js');
const { STRINGS } = require('../../utils/strings.js');

const fs = require('fs');
const path = require('path');

// Every ErrorCode of schemas/errors.py (the server's source of truth), read from the file so a
// new server code cannot ship without a message here.
function serverCodes() {
  const py = fs.readFileSync(path.join(__dirname, '../../../../schemas/errors.py'), 'utf8');
  return [...py.matchAll(/^\s+[A-Z_]+ = "([a-z_]+)"/gm)].map((m) => m[1]);
}

test('every server error code has a message for people in every language', () => {
  const codes = serverCodes();
  expect(codes).toEqual(
    expect.arrayContaining(['invalid_image', 'overloaded', 'model_unavailable', 'too_many_models', 'invalid_config']),
  );
  for (const lang of LANGUAGES) {
    for (const code of codes) {
      expect({ lang, code, message: typeof STRINGS[lang].code[code] }).toEqual({ lang, code, message: 'string' });
    }
  }
});

test('no message for a code the server does not have', () => {
  const known = serverCodes();
  for (const lang of LANGUAGES) {
    expect(Object.keys(STRINGS[lang].code).filter((c) => !known.includes(c))).toEqual([]);
  }
});

test('the HTTP error keeps the server message as detail, not as the headline', () => {
  const err = fromHttpError(413, { code: 'image_too_large', message: 'image has 100000000 pixels, limit 40000000' });
  expect(err.message).toBe(STRINGS.en.code.image_too_large);
  expect(messageOf(err, translator('zh-CN'))).toBe('这张照片分辨率太高，请换一张小一些的。');
  expect(err.detail).toBe('image has 100000000 pixels, limit 40000000');
});

test('a 404 not_found points developers at the configured URL', () => {
  const err = fromHttpError(404, { code: 'not_found', message: 'no route' });
  expect(err.devKey).toBe('dev.notFound');
  expect(err.message).not.toMatch(/config\.js/);
});

test('fail without errMsg is still a network error with a message', () => {
  const err = fromWxFail(undefined, { url: 'http://h:1/x' });
  expect(err.kind).toBe('network');
  expect(err.message).toBe(STRINGS.en.error.network);
  expect(err.devParams.origin).toBe('http://h:1');
});

test('privacy refusals are permission errors; an undeclared API is a config error', () => {
  expect(fromWxFail({ errMsg: 'uploadFile:fail privacy permission is not authorized' }, { url: 'u' }).kind).toBe('permission');
  const undeclared = fromWxFail({ errMsg: 'uploadFile:fail api scope is not declared in the privacy agreement', errno: 112 }, { url: 'u' });
  expect(undeclared.kind).toBe('config');
});

test('an aborted upload is cancelled, not a network failure', () => {
  expect(fromWxFail({ errMsg: 'uploadFile:fail abort' }, { url: 'u' }).kind).toBe('cancelled');
});

test('toClientError keeps ClientErrors and wraps anything else without a stack', () => {
  const own = new ClientError('timeout', 'error.timeout', { params: { seconds: 3 } });
  expect(toClientError(own)).toBe(own);
  const wrapped = toClientError(new TypeError('x is undefined'));
  expect(wrapped.kind).toBe('device');
  expect(wrapped.message).toBe('Something went wrong on this phone. Try again.');
  expect(wrapped.detail).toBe('x is undefined');
  expect(toClientError({ errMsg: 'compressImage:fail' }).detail).toBe('compressImage:fail');
});

test('every key an error can name exists in the tables', () => {
  const src = ['errors.js', 'image.js', 'album.js', 'parse.js']
    .map((f) => fs.readFileSync(path.join(__dirname, '../../utils', f), 'utf8'))
    .join('\n');
  const keys = [...src.matchAll(/'((?:error|dev|toast)\.[A-Za-z]+)'/g)].map((m) => m[1]);
  expect(keys.length).toBeGreaterThan(10);
  const t = translator('en');
  for (const key of keys) expect({ key, found: t(key) !== key }).toEqual({ key, found: true });
});
