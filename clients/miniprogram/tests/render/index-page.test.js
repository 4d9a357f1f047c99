// The page rendered by miniprogram-simulate, with WeChat's APIs replaced by fakes: what a user
// sees after loading, picking a photo, an upload that works and uploads that fail.
const { attrsOf, load, mount, settle, textOf } = require('../support/simulate.js');
const { answer, errorBody, fakeWx, modelListBody, predictBody } = require('../support/fake-wx.js');

const id = load('pages/index/index');

const PHOTO = { success: { tempFiles: [{ tempFilePath: 'wxfile://tmp/cat.jpg', size: 200000 }] } };

/** Puts a fresh set of fake APIs on simulate's global `wx`; returns the recorded calls. */
function installWx(answers, sync = {}) {
  const fake = fakeWx(
    {
      request: () => answer(200, modelListBody()),
      chooseMedia: () => PHOTO,
      uploadFile: () => answer(200, predictBody()),
      ...answers,
    },
    {
      getAccountInfoSync: () => ({ miniProgram: { envVersion: 'develop' } }),
      showLoading: () => {},
      hideLoading: () => {},
      showToast: () => {},
      ...sync,
    },
  );
  for (const [name, fn] of Object.entries(fake)) if (name !== 'calls') global.wx[name] = fn;
  return fake.calls;
}

async function openPage() {
  const page = mount(id);
  await page.instance.onLoad();
  await settle();
  return page;
}

const text = (page, sel) => {
  const node = page.querySelector(sel);
  return node ? textOf(node) : null;
};

test('loading the page lists the models, picks the default and warns about random weights', async () => {
  installWx({
    request: () =>
      answer(200, { ...modelListBody(), default_model: 'MobileNetV2' }),
  });
  const page = await openPage();
  expect(page.instance.data.modelNames).toEqual(['MobileNetV2', 'ResNet50']);
  expect(text(page, '.picker-value')).toBe('MobileNetV2');
  expect(text(page, '#weights-warning')).toMatch(/random weights: predictions are meaningless/);
  expect(text(page, '.server')).toBe('Server: http://127.0.0.1:8000');
  expect(page.querySelector('#error')).toBeUndefined();
});

test('a model with real weights shows no warning', async () => {
  installWx({});
  const page = await openPage();
  expect(text(page, '.picker-value')).toBe('ResNet50');
  expect(page.querySelector('#weights-warning')).toBeUndefined();
  page.instance.onModelChange({ detail: { value: '0' } });
  await settle();
  expect(text(page, '.picker-value')).toBe('MobileNetV2');
  expect(page.querySelector('#weights-warning')).toBeDefined();
});

test('choosing a photo shows it, a loading state, then the predictions list and timing', async () => {
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  const calls = installWx({ uploadFile: () => held.then(() => answer(200, predictBody())) });
  const page = await openPage();

  const picking = page.instance.onChooseAlbum();
  await settle();
  expect(attrsOf(page, 'photo').src).toBe('wxfile://tmp/cat.jpg');
  expect(text(page, '#loading')).toBe('Classifying…');
  expect(page.querySelector('#predictions')).toBeUndefined();
  expect(calls.map((c) => c.api)).toContain('showLoading');

  release();
  await picking;
  await settle();
  expect(page.querySelector('#loading')).toBeUndefined();
  const list = page.querySelector('#predictions');
  expect(list.querySelectorAll('.row')).toHaveLength(2);
  expect(list.querySelectorAll('.label').map(textOf)).toEqual(['tabby', 'Egyptian cat']);
  expect(list.querySelectorAll('.percent').map(textOf)).toEqual(['83%', '10%']);
  expect(list.querySelector('.bar').dom.getAttribute('style')).toMatch(/width:\s*83%/);
  expect(text(page, '#timing')).toBe('batch of 3 · queue 0.4 ms · inference 31.2 ms · decode 4.1 ms');
  expect(text(page, '.result-model')).toBe('MobileNetV2');

  const upload = calls.find((c) => c.api === 'uploadFile').options;
  expect(upload.url).toBe('http://127.0.0.1:8000/v1/models/ResNet50/predict?top_k=5');
  expect(upload.name).toBe('image');
  expect(calls.map((c) => c.api)).toContain('hideLoading');
  // Album photos are already in the album: no save button.
  expect(page.querySelector('#save-button')).toBeUndefined();
});

test('an error answer shows its message, the server detail, and a retry that works', async () => {
  let attempts = 0;
  const calls = installWx({
    uploadFile: () => {
      attempts += 1;
      return attempts === 1
        ? answer(413, errorBody('image_too_large', 'image has 60000000 pixels; the limit is 50000000'))
        : answer(200, predictBody());
    },
  });
  const page = await openPage();
  await page.instance.onTakePhoto();
  await settle();

  const error = page.querySelector('#error');
  expect(error.dom.getAttribute('data-code')).toBe('image_too_large');
  expect(text(page, '.error-title')).toBe('This photo has too many pixels for the server. Choose a smaller one.');
  expect(text(page, '.error-detail')).toBe('image has 60000000 pixels; the limit is 50000000');
  expect(text(page, '.error-meta')).toBe('Request ID: req-err');
  expect(page.querySelector('#predictions')).toBeUndefined();
  const apis = calls.map((c) => c.api);
  expect(apis.lastIndexOf('hideLoading')).toBeGreaterThan(apis.lastIndexOf('uploadFile'));

  await page.instance.onRetry();
  await settle();
  expect(page.querySelector('#error')).toBeUndefined();
  expect(page.querySelector('#predictions').querySelectorAll('.row')).toHaveLength(2);
  // A camera photo can be saved.
  expect(page.querySelector('#save-button')).toBeDefined();
});

test.each([
  ['network failure', { fail: { errMsg: 'uploadFile:fail connect ECONNREFUSED' } }, 'network', /Cannot reach the server/],
  ['timeout', { fail: { errMsg: 'uploadFile:fail timeout' } }, 'timeout', /did not answer in time/],
  ['unreadable body', answer(200, 'not json'), 'parse', /cannot read/],
  ['overload', answer(503, errorBody('overloaded', 'queue full', { retry_after: 1 })), 'overloaded', /busy.*Try again in 1 s/],
  ['text file', answer(415, errorBody('unsupported_media_type', 'text/plain is not an image')), 'unsupported_media_type', /not an image format/],
])('%s is shown, never silent', async (_what, outcome, code, re) => {
  installWx({ uploadFile: () => outcome });
  const page = await openPage();
  await page.instance.onChooseAlbum();
  await settle();
  expect(page.querySelector('#error').dom.getAttribute('data-code')).toBe(code);
  expect(text(page, '.error-title')).toMatch(re);
  expect(page.instance.data.busy).toBe(false);
});

test('the model list failing says so, and Try again reloads it', async () => {
  let attempts = 0;
  installWx({
    request: () => {
      attempts += 1;
      return attempts === 1 ? { fail: { errMsg: 'request:fail timeout' } } : answer(200, modelListBody());
    },
  });
  const page = await openPage();
  expect(text(page, '.error-title')).toMatch(/did not answer in time/);
  expect(attrsOf(page, 'camera-button').disabled).toBe(true);
  await page.instance.onRetry();
  await settle();
  expect(page.querySelector('#error')).toBeUndefined();
  expect(text(page, '.picker-value')).toBe('ResNet50');
  expect(attrsOf(page, 'camera-button').disabled).toBe(false);
});

test('cancelling the picker changes nothing and uploads nothing', async () => {
  const calls = installWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail cancel' } }) });
  const page = await openPage();
  await page.instance.onTakePhoto();
  await settle();
  expect(page.querySelector('#error')).toBeUndefined();
  expect(page.querySelector('#photo')).toBeUndefined();
  expect(calls.map((c) => c.api)).not.toContain('uploadFile');
});

test('saving a camera photo goes through the album permission and confirms', async () => {
  const calls = installWx({
    getSetting: () => ({ success: { authSetting: {} } }),
    authorize: () => ({ success: {} }),
    saveImageToPhotosAlbum: () => ({ success: {} }),
  });
  const page = await openPage();
  await page.instance.onTakePhoto();
  await settle();
  await page.instance.onSave();
  const apis = calls.map((c) => c.api);
  expect(apis.slice(apis.indexOf('getSetting'))).toEqual([
    'getSetting', 'authorize', 'saveImageToPhotosAlbum', 'showToast',
  ]);
  expect(calls.find((c) => c.api === 'showToast').options.title).toBe('Saved to album');
});
