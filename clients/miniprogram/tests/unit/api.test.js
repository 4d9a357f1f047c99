const { fetchModels, modelsUrl, predictUrl, uploadPredict } = require('../../utils/api.js');
const { answer, errorBody, fakeWx, modelListBody, predictBody } = require('../support/fake-wx.js');

const BASE = 'http://127.0.0.1:8000/';

describe('URLs', () => {
  test('predict URL has the model path, top_k and no double slash', () => {
    expect(predictUrl(BASE, 'MobileNetV2', 5)).toBe(
      'http://127.0.0.1:8000/v1/models/MobileNetV2/predict?top_k=5',
    );
  });

  test('model names are escaped in the path', () => {
    expect(predictUrl('https://h', 'a/b c', 3)).toBe('https://h/v1/models/a%2Fb%20c/predict?top_k=3');
  });

  test('models URL', () => {
    expect(modelsUrl('https://h//')).toBe('https://h/v1/models');
  });
});

describe('uploadPredict', () => {
  test('sends the file as multipart field `image` without its own Content-Type', async () => {
    const wx = fakeWx({ uploadFile: () => answer(200, predictBody()) });
    await uploadPredict(wx, { baseUrl: BASE, model: 'MobileNetV2', filePath: 'wxfile://tmp/a.jpg', timeoutMs: 1234 });
    const { options } = wx.calls[0];
    expect(options.name).toBe('image');
    expect(options.filePath).toBe('wxfile://tmp/a.jpg');
    expect(options.timeout).toBe(1234);
    expect(options.url).toBe('http://127.0.0.1:8000/v1/models/MobileNetV2/predict?top_k=5');
    const headerNames = Object.keys(options.header || {}).map((h) => h.toLowerCase());
    expect(headerNames).not.toContain('content-type');
  });

  test('parses the predictions, timing and the random-weights warning', async () => {
    const wx = fakeWx({ uploadFile: () => answer(200, predictBody()) });
    const result = await uploadPredict(wx, { baseUrl: BASE, model: 'MobileNetV2', filePath: 'f' });
    expect(result.model).toBe('MobileNetV2');
    expect(result.weights).toEqual({
      kind: 'random',
      random: true,
      warning: 'random weights: predictions are meaningless',
    });
    expect(result.predictions[0]).toEqual({
      label: 'tabby',
      classId: 'n02123045',
      index: 281,
      probability: 0.83,
      percent: 83,
    });
    expect(result.timing).toEqual({ batchSize: 3, queueMs: 0.4, inferenceMs: 31.2, decodeMs: 4.1 });
    expect(result.requestId).toBe('req-123');
  });

  test.each([
    ['image_too_large', 413, /too many pixels/],
    ['payload_too_large', 413, /too large to upload/],
    ['invalid_image', 400, /could not be read as an image/],
    ['unsupported_media_type', 415, /not an image format/],
    ['model_not_found', 404, /does not serve this model/],
    ['not_ready', 503, /still starting/],
    ['deadline_exceeded', 504, /took too long/],
  ])('a %s answer (HTTP %i) rejects with its message and the server detail', async (code, status, re) => {
    const wx = fakeWx({ uploadFile: () => answer(status, errorBody(code, `server says ${code}`)) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('http');
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toMatch(re);
    expect(err.detail).toBe(`server says ${code}`);
    expect(err.requestId).toBe('req-err');
  });

  test('overloaded says when to retry, from the body or the Retry-After header', async () => {
    const fromBody = fakeWx({
      uploadFile: () => answer(503, errorBody('overloaded', 'queue full', { retry_after: 2.2 })),
    });
    const e1 = await uploadPredict(fromBody, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(e1.message).toBe('The server is busy right now. Try again in 3 s.');
    expect(e1.retryAfter).toBe(2.2);

    const fromHeader = fakeWx({
      uploadFile: () => answer(503, errorBody('overloaded', 'queue full'), { 'retry-after': '4' }),
    });
    const e2 = await uploadPredict(fromHeader, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(e2.message).toBe('The server is busy right now. Try again in 4 s.');
  });

  test('an unknown error code still gives a message with the status', async () => {
    const wx = fakeWx({ uploadFile: () => answer(418, errorBody('teapot', 'short and stout')) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.message).toBe('The server answered with an error (HTTP 418).');
    expect(err.detail).toBe('short and stout');
  });

  test('a non-JSON error page (a proxy 502) still gives a message', async () => {
    const wx = fakeWx({ uploadFile: () => answer(502, '<html>Bad Gateway</html>', { 'X-Request-ID': 'r9' }) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('http');
    expect(err.status).toBe(502);
    expect(err.code).toBeNull();
    expect(err.message).toBe('The server answered with an error (HTTP 502).');
    expect(err.requestId).toBe('r9');
  });

  test.each([
    ['not JSON', 'Internal oops'],
    ['an empty body', ''],
    ['JSON null', 'null'],
    ['no results', JSON.stringify({ model: {}, results: [] })],
    ['a prediction without a label', JSON.stringify(predictBody({ results: [{ predictions: [{ probability: 1 }], timing: {} }] }))],
  ])('a 200 with %s rejects as unreadable', async (_what, body) => {
    const wx = fakeWx({ uploadFile: () => answer(200, body) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('parse');
    expect(err.message).toBe('The server sent an answer this app cannot read.');
  });

  test('network failure names the server', async () => {
    const wx = fakeWx({ uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail connect ECONNREFUSED' } }) });
    const err = await uploadPredict(wx, { baseUrl: 'http://10.0.0.2:8000', model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('network');
    expect(err.message).toMatch(/Cannot reach the server at http:\/\/10\.0\.0\.2:8000/);
    expect(err.detail).toBe('uploadFile:fail connect ECONNREFUSED');
  });

  test('timeout says so, with the limit', async () => {
    const wx = fakeWx({ uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail timeout' } }) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f', timeoutMs: 30000 }).catch((e) => e);
    expect(err.kind).toBe('timeout');
    expect(err.message).toBe('The server did not answer in time (30 s). Try again.');
  });

  test('a URL off the domain whitelist explains the whitelist', async () => {
    const wx = fakeWx({
      uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail url not in domain list' } }),
    });
    const err = await uploadPredict(wx, { baseUrl: 'https://x.example.com', model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('domain');
    expect(err.message).toMatch(/https:\/\/x\.example\.com is not on this mini-program's domain whitelist/);
  });
});

describe('fetchModels', () => {
  test('GETs /v1/models, parses text itself and picks the default model', async () => {
    const wx = fakeWx({ request: () => answer(200, modelListBody()) });
    const list = await fetchModels(wx, { baseUrl: BASE, timeoutMs: 5000 });
    const { options } = wx.calls[0];
    expect(options.url).toBe('http://127.0.0.1:8000/v1/models');
    expect(options.method).toBe('GET');
    expect(options.dataType).not.toBe('json');
    expect(options.timeout).toBe(5000);
    expect(list.defaultModel).toBe('ResNet50');
    expect(list.models.map((m) => [m.name, m.weights.random])).toEqual([
      ['MobileNetV2', true],
      ['ResNet50', false],
    ]);
    expect(list.models[0].weights.warning).toBe('random weights: predictions are meaningless');
  });

  test('accepts a body wx already parsed', async () => {
    const wx = fakeWx({ request: () => ({ success: { statusCode: 200, data: modelListBody(), header: {} } }) });
    const list = await fetchModels(wx, { baseUrl: BASE });
    expect(list.models).toHaveLength(2);
  });

  test('falls back to the first model when the default is missing', async () => {
    const body = { ...modelListBody(), default_model: null };
    const wx = fakeWx({ request: () => answer(200, body) });
    expect((await fetchModels(wx, { baseUrl: BASE })).defaultModel).toBe('MobileNetV2');
  });

  test('an empty model list is an error, not an empty picker', async () => {
    const wx = fakeWx({ request: () => answer(200, { models: [], default_model: null }) });
    const err = await fetchModels(wx, { baseUrl: BASE }).catch((e) => e);
    expect(err.kind).toBe('parse');
  });

  test('network failure of the list', async () => {
    const wx = fakeWx({ request: () => ({ fail: { errMsg: 'request:fail ' } }) });
    const err = await fetchModels(wx, { baseUrl: BASE }).catch((e) => e);
    expect(err.kind).toBe('network');
  });
});
