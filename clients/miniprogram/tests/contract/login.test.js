// The mini-program's login code (utils/auth.js, utils/api.js) against a real kerasserve server
// with WeChat login on, its jscode2session pointed at a stand-in on 127.0.0.1 (as WeChat answers:
// JSON sent as text/plain; a code works once).
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const { fetchModels, uploadPredict } = require('../../utils/api.js');
const { TOKEN_KEY, createAuth, exchangeCode, withToken } = require('../../utils/auth.js');
const { memoryStorage } = require('../support/fake-wx.js');
const { httpWx } = require('../support/http-wx.js');
const { testPicture } = require('../support/png.js');
const { startServer } = require('../support/server.js');

jest.setTimeout(60000);

const APPID = 'wx0123456789abcdef';
const SECRET = 'contract-app-secret';
const CI = /^(1|true|yes)$/i.test(process.env.CI || '');
// A server at KERASSERVE_URL has its own login settings: these tests need this file's own.
const EXTERNAL = Boolean(process.env.KERASSERVE_URL);
const describeOwn = EXTERNAL && !CI ? describe.skip : describe;

describeOwn('WeChat login against a real server', () => {
  let standIn;
  let server;
  let dir;
  let photo;
  let codes = 0;
  const used = new Set();
  const storage = memoryStorage();
  const wx = {
    ...httpWx(),
    ...storage,
    login: ({ success }) => setTimeout(() => success({ code: `ok-user${(codes += 1)}`, errMsg: 'login:ok' }), 0),
  };

  beforeAll(async () => {
    if (CI && EXTERNAL) throw new Error('under CI the contract tests start their own server: unset KERASSERVE_URL');
    standIn = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://127.0.0.1');
      const q = url.searchParams;
      let body;
      if (url.pathname !== '/sns/jscode2session' || q.get('appid') !== APPID || q.get('secret') !== SECRET) {
        body = { errcode: 40125, errmsg: 'invalid appsecret' };
      } else if (!q.get('js_code').startsWith('ok-')) {
        body = { errcode: 40029, errmsg: 'invalid code' };
      } else if (used.has(q.get('js_code'))) {
        body = { errcode: 40163, errmsg: 'code been used' };
      } else {
        used.add(q.get('js_code'));
        body = { openid: q.get('js_code').slice(3), session_key: 'never-to-be-seen' };
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(JSON.stringify(body));
    });
    await new Promise((resolve) => standIn.listen(0, '127.0.0.1', resolve));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kerasserve-mp-login-'));
    photo = path.join(dir, 'picture.png');
    fs.writeFileSync(photo, testPicture());
    server = await startServer(
      ['--model', 'MobileNetV2', '--weights', 'none', '--wechat-appid', APPID, '--wechat-api-base', `http://127.0.0.1:${standIn.address().port}`],
      240000,
      { KERASSERVE_WECHAT_SECRET: SECRET, KERASSERVE_TOKEN_SECRET: 'contract-token-secret-0123456789abcdef' },
    );
  }, 300000);

  afterAll(async () => {
    if (server) await server.stop();
    if (standIn) await new Promise((resolve) => standIn.close(resolve));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);

  const upload = (token) =>
    uploadPredict(wx, { baseUrl: server.baseUrl, model: 'MobileNetV2', filePath: photo, topK: 3, timeoutMs: 30000, token });

  test('without a token the server refuses the model list and uploads with 401 unauthorized', async () => {
    await expect(fetchModels(wx, { baseUrl: server.baseUrl })).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    await expect(upload('')).rejects.toMatchObject({ status: 401, code: 'unauthorized', key: 'code.unauthorized' });
  });

  test('wx.login, the code posted, a token kept: the model list and an upload go through with it', async () => {
    const auth = createAuth(wx, { baseUrl: server.baseUrl });
    const token = await auth.token();
    expect(token.split('.')).toHaveLength(3);
    expect(storage.store.get(TOKEN_KEY).token).toBe(token);
    const list = await withToken(auth, (t) => fetchModels(wx, { baseUrl: server.baseUrl, token: t }));
    expect(list.models.map((m) => m.name)).toContain('MobileNetV2');
    const result = await withToken(auth, upload);
    expect(result.predictions).toHaveLength(3);
  });

  test('a code used twice gets a clear 400 the app has words for', async () => {
    await exchangeCode(wx, { baseUrl: server.baseUrl, code: 'ok-twice' });
    await expect(exchangeCode(wx, { baseUrl: server.baseUrl, code: 'ok-twice' })).rejects.toMatchObject({
      status: 400,
      code: 'wechat_login_failed',
      key: 'code.wechat_login_failed',
    });
  });

  test('a token the server no longer takes is renewed once on 401, and the upload goes through', async () => {
    storage.setStorageSync(TOKEN_KEY, { token: 'a.stale.token', expiresAt: Date.now() + 3600 * 1000 });
    const before = codes;
    const auth = createAuth(wx, { baseUrl: server.baseUrl });
    const result = await withToken(auth, upload);
    expect(result.predictions).toHaveLength(3);
    expect(codes).toBe(before + 1);
    expect(storage.store.get(TOKEN_KEY).token).not.toBe('a.stale.token');
  });
});
