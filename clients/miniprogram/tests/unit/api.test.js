const { fetchModels, modelsUrl, predictUrl, startUpload, uploadPredict } = require('../../utils/api.js');
const { STRINGS } = require('../../utils/strings.js');
const { answer, errorBody, fakeWx, modelListBody, predictBody } = require('../support/fake-wx.js');

const BASE = 'http://127.0.0.1:8000/';
const EN = STRINGS.en;

describe('URLs', () => {
  test('predict URL has the model path, top_k, the labels language and no double slash', () => {
    expect(predictUrl(BASE, 'MobileNetV2', 5)).toBe(
      'http://127.0.0.1:8000/v1/models/MobileNetV2/predict?top_k=5',
    );
    expect(predictUrl(BASE, 'MobileNetV2', 5, 'zh-CN')).toBe(
      'http://127.0.0.1:8000/v1/models/MobileNetV2/predict?top_k=5&lang=zh-CN',
    );
    expect(predictUrl(BASE, 'm', 0, 'en')).toBe('http://127.0.0.1:8000/v1/models/m/predict?lang=en');
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
    await uploadPredict(wx, {
      baseUrl: BASE, model: 'MobileNetV2', filePath: 'wxfile://tmp/a.jpg', timeoutMs: 1234, lang: 'zh-CN',
    });
    const { options } = wx.calls[0];
    expect(options.name).toBe('image');
    expect(options.filePath).toBe('wxfile://tmp/a.jpg');
    expect(options.timeout).toBe(1234);
    expect(options.url).toBe('http://127.0.0.1:8000/v1/models/MobileNetV2/predict?top_k=5&lang=zh-CN');
    const headerNames = Object.keys(options.header || {}).map((h) => h.toLowerCase());
    expect(headerNames).not.toContain('content-type');
  });

  test('parses the predictions, timing, version, output kind, labels language and warning', async () => {
    const wx = fakeWx({ uploadFile: () => answer(200, predictBody()) });
    const result = await uploadPredict(wx, { baseUrl: BASE, model: 'MobileNetV2', filePath: 'f' });
    expect(result.model).toBe('MobileNetV2');
    expect(result.version).toBe(1);
    expect(result.outputKind).toBe('softmax');
    expect(result.labelsLanguage).toBe('en');
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

  test('an answer from a server without the new fields reads as softmax, version unknown', async () => {
    const body = predictBody();
    delete body.model.version;
    delete body.model.output_kind;
    delete body.model.labels_language;
    const wx = fakeWx({ uploadFile: () => answer(200, body) });
    const result = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' });
    expect([result.version, result.outputKind, result.labelsLanguage]).toEqual([null, 'softmax', null]);
  });

  test('a multi_label answer keeps its kind and its independent probabilities', async () => {
    const body = predictBody();
    body.model.output_kind = 'multi_label';
    body.results[0].predictions = [
      { index: 3, class_id: 'dog', label: 'dog', probability: 0.91 },
      { index: 7, class_id: 'cat', label: 'cat', probability: 0.88 },
    ];
    const wx = fakeWx({ uploadFile: () => answer(200, body) });
    const result = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' });
    expect(result.outputKind).toBe('multi_label');
    expect(result.predictions.map((p) => p.percent)).toEqual([91, 88]);
  });

  test.each([
    ['image_too_large', 413],
    ['payload_too_large', 413],
    ['invalid_image', 400],
    ['unsupported_media_type', 415],
    ['model_not_found', 404],
    ['model_unavailable', 503],
    ['not_ready', 503],
    ['deadline_exceeded', 504],
  ])('a %s answer (HTTP %i) rejects with its message and the server detail', async (code, status) => {
    const wx = fakeWx({ uploadFile: () => answer(status, errorBody(code, `server says ${code}`)) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('http');
    expect(err.code).toBe(code);
    expect(err.key).toBe(`code.${code}`);
    expect(err.status).toBe(status);
    expect(err.message).toBe(EN.code[code]);
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
    expect(err.message).toBe('The recognition service answered with an error (HTTP 418).');
    expect(err.detail).toBe('short and stout');
  });

  test('a non-JSON error page (a proxy 502) still gives a message', async () => {
    const wx = fakeWx({ uploadFile: () => answer(502, '<html>Bad Gateway</html>', { 'X-Request-ID': 'r9' }) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('http');
    expect(err.status).toBe(502);
    expect(err.code).toBeNull();
    expect(err.message).toBe('The recognition service answered with an error (HTTP 502).');
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
    expect(err.message).toBe(EN.error.parse);
  });

  test('network failure: a message for people, the server for developers', async () => {
    const wx = fakeWx({ uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail connect ECONNREFUSED' } }) });
    const err = await uploadPredict(wx, { baseUrl: 'http://10.0.0.2:8000', model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('network');
    expect(err.message).toBe(EN.error.network);
    expect(err.message).not.toMatch(/10\.0\.0\.2/);
    expect(err.devKey).toBe('dev.network');
    expect(err.devParams).toEqual({ origin: 'http://10.0.0.2:8000' });
    expect(err.detail).toBe('uploadFile:fail connect ECONNREFUSED');
  });

  test('timeout says so, with the limit', async () => {
    const wx = fakeWx({ uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail timeout' } }) });
    const err = await uploadPredict(wx, { baseUrl: BASE, model: 'm', filePath: 'f', timeoutMs: 30000 }).catch((e) => e);
    expect(err.kind).toBe('timeout');
    expect(err.message).toBe('The recognition service did not answer in 30 s. Try again.');
  });

  test('a URL off the domain whitelist: the whitelist is a developer hint, not the headline', async () => {
    const wx = fakeWx({
      uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail url not in domain list' } }),
    });
    const err = await uploadPredict(wx, { baseUrl: 'https://x.example.com', model: 'm', filePath: 'f' }).catch((e) => e);
    expect(err.kind).toBe('domain');
    expect(err.message).not.toMatch(/whitelist|DevTools/);
    expect(err.devKey).toBe('dev.domain');
    expect(err.devParams.origin).toBe('https://x.example.com');
  });
});

describe('startUpload', () => {
  test('reports the upload progress from UploadTask.onProgressUpdate, clamped to whole percents', async () => {
    const seen = [];
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const wx = fakeWx({ uploadFile: () => held.then(() => answer(200, predictBody())) });
    const upload = startUpload(wx, { baseUrl: BASE, model: 'm', filePath: 'f', onProgress: (p) => seen.push(p) });
    const [task] = wx.tasks;
    task.progress(12.4);
    task.progress(57);
    task.progress(140);
    release();
    await upload.promise;
    expect(seen).toEqual([12, 57, 100]);
  });

  test('abort() cancels the upload: the promise rejects as cancelled, the answer is ignored', async () => {
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const wx = fakeWx({ uploadFile: () => held.then(() => answer(200, predictBody())) });
    const upload = startUpload(wx, { baseUrl: BASE, model: 'm', filePath: 'f' });
    upload.abort();
    const err = await upload.promise.catch((e) => e);
    release();
    expect(wx.tasks[0].aborted).toBe(true);
    expect(err.kind).toBe('cancelled');
    expect(err.detail).toBe('uploadFile:fail abort');
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
    expect(list.models.map((m) => [m.name, m.weights.random, m.version, m.outputKind])).toEqual([
      ['MobileNetV2', true, 1, 'softmax'],
      ['ResNet50', false, 1, 'softmax'],
    ]);
    expect(list.models[0].labelsLanguages).toEqual(['en', 'zh-CN']);
    expect(list.models[0].weights.warning).toBe('random weights: predictions are meaningless');
    expect(list.failed).toEqual([]);
  });

  test('failed models are set apart with their error, and never the default', async () => {
    const body = modelListBody();
    Object.assign(body.models[1], { state: 'failed', error: 'weights file missing' });
    const wx = fakeWx({ request: () => answer(200, body) });
    const list = await fetchModels(wx, { baseUrl: BASE });
    expect(list.models.map((m) => m.name)).toEqual(['MobileNetV2']);
    expect(list.failed).toEqual([{ name: 'ResNet50', error: 'weights file missing' }]);
    expect(list.defaultModel).toBe('MobileNetV2');
  });

  test('every model failed: an error saying no model is available', async () => {
    const body = modelListBody();
    for (const m of body.models) Object.assign(m, { state: 'failed', error: 'boom' });
    const wx = fakeWx({ request: () => answer(200, body) });
    const err = await fetchModels(wx, { baseUrl: BASE }).catch((e) => e);
    expect(err.kind).toBe('parse');
    expect(err.key).toBe('error.noModels');
    expect(err.detail).toMatch(/MobileNetV2, ResNet50/);
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
