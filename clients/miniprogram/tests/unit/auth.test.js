// utils/auth.js with a fake wx: the login exchange, the kept token, renewal on 401.
const { TOKEN_KEY, createAuth, exchangeCode, withToken } = require('../../utils/auth.js');
const { answer, errorBody, fakeWx, memoryStorage } = require('../support/fake-wx.js');

const BASE = 'https://kerasserve.example.com/';

function wxWith({ auth = () => answer(200, { token: 't1', expires_in: 7200 }), login, storage = memoryStorage() } = {}) {
  let codes = 0;
  const wx = fakeWx(
    {
      login: login || (() => ({ success: { code: `c${(codes += 1)}` } })),
      request: auth,
    },
    storage,
  );
  return { wx, storage };
}

test('exchangeCode posts {"code"} as JSON and reads {"token", "expires_in"}', async () => {
  const { wx } = wxWith();
  await expect(exchangeCode(wx, { baseUrl: BASE, code: 'abc' })).resolves.toEqual({ token: 't1', expiresIn: 7200 });
  const sent = wx.calls.find((c) => c.api === 'request').options;
  expect(sent.url).toBe('https://kerasserve.example.com/v1/auth/wechat');
  expect(sent.method).toBe('POST');
  expect(sent.data).toEqual({ code: 'abc' });
  expect(sent.header['Content-Type']).toBe('application/json');
});

test('a refused code is a ClientError keyed on the server code', async () => {
  const { wx } = wxWith({ auth: () => answer(400, errorBody('wechat_login_failed', 'code been used')) });
  await expect(exchangeCode(wx, { baseUrl: BASE, code: 'old' })).rejects.toMatchObject({
    kind: 'http', status: 400, code: 'wechat_login_failed', key: 'code.wechat_login_failed',
  });
});

test('an answer without a token is a parse error, not an empty login', async () => {
  const { wx } = wxWith({ auth: () => answer(200, { expires_in: 7200 }) });
  await expect(exchangeCode(wx, { baseUrl: BASE, code: 'x' })).rejects.toMatchObject({ kind: 'parse' });
});

test('token() logs in once, keeps the token with its expiry, and shares one login between callers', async () => {
  const { wx, storage } = wxWith();
  const auth = createAuth(wx, { baseUrl: BASE, now: () => 1000 });
  const [a, b] = await Promise.all([auth.token(), auth.token()]);
  expect([a, b]).toEqual(['t1', 't1']);
  expect(wx.calls.filter((c) => c.api === 'login')).toHaveLength(1);
  expect(storage.store.get(TOKEN_KEY)).toEqual({ token: 't1', expiresAt: 1000 + 7200 * 1000 });
  await auth.token();
  expect(wx.calls.filter((c) => c.api === 'login')).toHaveLength(1);
});

test('a token about to expire is renewed before use', async () => {
  const storage = memoryStorage({ [TOKEN_KEY]: { token: 'old', expiresAt: 50000 } });
  const { wx } = wxWith({ storage });
  const auth = createAuth(wx, { baseUrl: BASE, now: () => 20000 });
  await expect(auth.token()).resolves.toBe('t1');
});

test('withToken renews once on 401, then gives up with the second answer', async () => {
  let n = 0;
  const { wx } = wxWith({ auth: () => answer(200, { token: `t${(n += 1)}`, expires_in: 60 }) });
  const auth = createAuth(wx, { baseUrl: BASE });
  const seen = [];
  const refuse = async (token) => {
    seen.push(token);
    const err = Object.assign(new Error('401'), { status: 401 });
    throw err;
  };
  await expect(withToken(auth, refuse)).rejects.toMatchObject({ status: 401 });
  expect(seen).toEqual(['t1', 't2']);
});

test('a failed wx.login does not block the call; a server without login (404) gives no token', async () => {
  const { wx } = wxWith({ login: () => ({ fail: { errMsg: 'login:fail' } }) });
  const auth = createAuth(wx, { baseUrl: BASE });
  await expect(auth.token()).rejects.toMatchObject({ kind: 'login' });
  await expect(withToken(auth, async (token) => `sent with "${token}"`)).resolves.toBe('sent with ""');
  const plain = wxWith({ auth: () => answer(404, errorBody('not_found', 'Not Found')) });
  await expect(createAuth(plain.wx, { baseUrl: BASE }).token()).resolves.toBe('');
  await expect(withToken(null, async (token) => token)).resolves.toBe('');
});
