// The page rendered by miniprogram-simulate, with WeChat's APIs replaced by fakes, driven the way
// a user drives it: taps on the buttons and changes of the picker dispatched on the WXML nodes
// (a handler renamed in the WXML or the page fails these tests).
const { attrsOf, load, mount, settle, textOf } = require('../support/simulate.js');
const {
  answer, errorBody, fakeFs, fakeWx, memoryStorage, modelListBody, predictBody,
} = require('../support/fake-wx.js');
const { STORAGE_KEY } = require('../../utils/history.js');
const { STRINGS } = require('../../utils/strings.js');

const id = load('pages/index/index');

const ZH = STRINGS['zh-CN'];
const EN = STRINGS.en;
const PHOTO = { success: { tempFiles: [{ tempFilePath: 'wxfile://tmp/cat.jpg', size: 200000 }] } };

/**
 * Puts a fresh set of fake APIs on simulate's global `wx`.
 * @returns {{calls: Array, tasks: Array, storage: object, fs: object}}
 */
function installWx(answers = {}, sync = {}, { language = 'zh_CN', env = 'develop', storage = memoryStorage(), fs = fakeFs() } = {}) {
  const { auth = () => answer(200, { token: 'token-1', expires_in: 7200 }), request = () => answer(200, modelListBody()), ...rest } = answers;
  const fake = fakeWx(
    {
      // POST /v1/auth/wechat answers from `auth`, every other request from `request`.
      request: (o, task) => (/\/v1\/auth\/wechat$/.test(o.url) ? auth(o, task) : request(o, task)),
      login: () => ({ success: { code: `code-${Math.random().toString(36).slice(2, 6)}`, errMsg: 'login:ok' } }),
      chooseMedia: () => PHOTO,
      getImageInfo: () => ({ success: { width: 640, height: 480, orientation: 'up' } }),
      compressImage: (o) => ({ success: { tempFilePath: `${o.src}.small.jpg` } }),
      uploadFile: () => answer(200, predictBody()),
      openSetting: () => ({ success: { authSetting: { 'scope.camera': true } } }),
      showModal: () => ({ success: { confirm: true, cancel: false } }),
      ...rest,
    },
    {
      getAccountInfoSync: () => ({ miniProgram: { envVersion: env } }),
      getAppBaseInfo: () => ({ language }),
      setNavigationBarTitle: () => {},
      showShareMenu: () => {},
      showToast: () => {},
      getStorageSync: storage.getStorageSync,
      setStorageSync: storage.setStorageSync,
      removeStorageSync: storage.removeStorageSync,
      getFileSystemManager: () => fs.manager,
      onNeedPrivacyAuthorization: () => {},
      openPrivacyContract: () => {},
      onThemeChange: () => {},
      onNetworkStatusChange: () => {},
      offNetworkStatusChange: () => {},
      pageScrollTo: () => {},
      reLaunch: () => {},
      getEnterOptionsSync: () => ({ scene: 1001, query: {} }),
      ...sync,
    },
  );
  for (const [name, fn] of Object.entries(fake)) if (!['calls', 'tasks'].includes(name)) global.wx[name] = fn;
  global.wx.env = { USER_DATA_PATH: 'wxfile://usr' };
  return { calls: fake.calls, tasks: fake.tasks, storage, fs };
}

async function openPage() {
  const page = mount(id);
  await page.instance.onLoad();
  await settle();
  return page;
}

/** A real tap on the node with `selector`, then time for the handler's promises. */
async function tap(page, selector) {
  const node = page.querySelector(selector);
  if (!node) throw new Error(`nothing to tap at ${selector}`);
  node.dispatchEvent('tap');
  await settle();
  await settle();
}

const text = (page, sel) => {
  const node = page.querySelector(sel);
  return node ? textOf(node) : null;
};
const apis = (calls) => calls.map((c) => c.api);
const held = () => {
  let release;
  const promise = new Promise((resolve) => {
    release = resolve;
  });
  return { promise, release };
};

test('loading in Chinese: the title, the buttons, the models, the default, the random-weights warning', async () => {
  const { calls } = installWx({ request: () => answer(200, { ...modelListBody(), default_model: 'MobileNetV2' }) });
  const page = await openPage();
  expect(calls.find((c) => c.api === 'setNavigationBarTitle').options.title).toBe('图像识别');
  expect(text(page, '#camera-button')).toBe('拍照识别');
  expect(text(page, '#album-button')).toBe('使用相册图片');
  expect(page.instance.data.modelNames).toEqual(['MobileNetV2', 'ResNet50']);
  expect(text(page, '.picker-label')).toBe('模型');
  expect(text(page, '.picker-value')).toBe('MobileNetV2');
  expect(text(page, '#weights-warning')).toBe(`⚠ ${ZH.warn.randomWeights}`);
  expect(text(page, '#server')).toBe('服务器：http://127.0.0.1:8000');
  expect(text(page, '.hint')).toBe(ZH.hint.empty);
  expect(page.querySelector('#error')).toBeUndefined();
  expect(calls.find((c) => c.api === 'showShareMenu').options.menus).toEqual(['shareAppMessage', 'shareTimeline']);
});

test('an English WeChat gets English words and English labels', async () => {
  const { calls } = installWx({}, {}, { language: 'en' });
  const page = await openPage();
  expect(calls.find((c) => c.api === 'setNavigationBarTitle').options.title).toBe('Image recognition');
  expect(text(page, '#camera-button')).toBe('Take a photo');
  expect(text(page, '#server')).toBe('Server: http://127.0.0.1:8000');
  await tap(page, '#album-button');
  expect(calls.find((c) => c.api === 'uploadFile').options.url).toBe(
    'http://127.0.0.1:8000/v1/models/ResNet50/predict?top_k=5&lang=en',
  );
  expect(text(page, '.result-title')).toBe('Top predictions');
  expect(page.querySelector('#labels-note')).toBeUndefined();
});

test('a release build shows no developer text: no server URL, no timing, no whitelist hint', async () => {
  installWx(
    { uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail url not in domain list' } }) },
    { getAccountInfoSync: () => ({ miniProgram: { envVersion: 'release' } }) },
  );
  const page = await openPage();
  expect(page.querySelector('#server')).toBeUndefined();
  await tap(page, '#album-button');
  expect(text(page, '.error-title')).toBe(ZH.error.domain);
  expect(page.querySelector('.error-dev')).toBeUndefined();
  expect(page.querySelector('.error-detail')).toBeUndefined();
  expect(textOf(page)).not.toMatch(/config\.js|合法域名|127\.0\.0\.1|Server/);
});

test('the same failure in develop explains the whitelist to the developer', async () => {
  installWx({ uploadFile: () => ({ fail: { errMsg: 'uploadFile:fail url not in domain list' } }) });
  const page = await openPage();
  await tap(page, '#album-button');
  expect(text(page, '.error-title')).toBe(ZH.error.domain);
  expect(text(page, '.error-dev')).toMatch(/^http:\/\/127\.0\.0\.1:8000 不在 uploadFile \/ request 合法域名中/);
  expect(text(page, '.error-detail')).toBe('uploadFile:fail url not in domain list');
});

test('tapping the album button: shrink, upload with a progress bar, then results and a history entry', async () => {
  const gate = held();
  const { calls, tasks, storage, fs } = installWx({
    getImageInfo: () => ({ success: { width: 4032, height: 3024, orientation: 'up' } }),
    uploadFile: () => gate.promise.then(() => answer(200, predictBody())),
  });
  const page = await openPage();
  await tap(page, '#album-button');

  expect(attrsOf(page, 'photo').src).toBe('wxfile://tmp/cat.jpg');
  expect(text(page, '#status')).toBe('上传中 0%');
  const upload = tasks[tasks.length - 1];
  upload.progress(40);
  await settle();
  expect(text(page, '#status')).toBe('上传中 40%');
  expect(Number(attrsOf(page, 'upload-progress').percent)).toBe(40);
  expect(text(page, '#cancel-button')).toBe('取消上传');
  expect(attrsOf(page, 'camera-button').disabled).toBe(true);
  upload.progress(100);
  await settle();
  expect(text(page, '#status')).toBe('识别中…');
  expect(page.querySelector('#cancel-button')).toBeUndefined();

  gate.release();
  await settle();
  await settle();
  expect(page.querySelector('#loading')).toBeUndefined();
  const sent = calls.find((c) => c.api === 'uploadFile').options;
  expect(sent.url).toBe('http://127.0.0.1:8000/v1/models/ResNet50/predict?top_k=5&lang=zh-CN');
  expect(sent.filePath).toBe('wxfile://tmp/cat.jpg.small.jpg');
  expect(sent.name).toBe('image');
  const shrink = calls.find((c) => c.api === 'compressImage' && c.options.src === 'wxfile://tmp/cat.jpg').options;
  expect(shrink.compressedWidth).toBe(1024);

  expect(page.querySelector('#result').dom.getAttribute('data-kind')).toBe('single');
  expect(text(page, '.result-title')).toBe('识别结果');
  expect(text(page, '.result-model')).toBe('MobileNetV2 v1');
  const list = page.querySelector('#predictions');
  expect(list.querySelectorAll('.label').map(textOf)).toEqual(['tabby', 'Egyptian cat']);
  expect(list.querySelectorAll('.percent').map(textOf)).toEqual(['83%', '10%']);
  expect(list.querySelector('.bar').dom.getAttribute('style')).toMatch(/width:\s*83%/);
  expect(list.querySelectorAll('.verdict')).toHaveLength(0);
  // The server answered English labels to a Chinese app: say so.
  expect(text(page, '#labels-note')).toBe('标签语言：英文');
  expect(text(page, '#timing')).toBe('批大小 3 · 排队 0.4 ms · 推理 31.2 ms · 解码 4.1 ms');
  // Album photos are already in the album: no save button.
  expect(page.querySelector('#save-button')).toBeUndefined();

  const [entry] = storage.store.get(STORAGE_KEY);
  expect(entry).toMatchObject({ label: 'tabby', model: 'MobileNetV2', probability: 0.83 });
  // The whole answer is kept, so the entry can open it again.
  expect(entry.predictions).toEqual([
    { index: 281, label: 'tabby', probability: 0.83 },
    { index: 285, label: 'Egyptian_cat', probability: 0.1 },
  ]);
  expect(fs.files.has(entry.thumb)).toBe(true);
  expect(page.querySelectorAll('.history-item')).toHaveLength(1);
  expect(text(page, '.history-label')).toBe('tabby');
  expect(text(page, '.history-meta')).toMatch(/^83% · MobileNetV2 · \d\d-\d\d \d\d:\d\d$/);
});

test('zh-CN labels from the server are shown as they are, with no language note', async () => {
  const body = predictBody();
  body.model.labels_language = 'zh-CN';
  body.results[0].predictions = [{ index: 281, class_id: 'n02123045', label: '虎斑猫', probability: 0.83 }];
  installWx({ uploadFile: () => answer(200, body) });
  const page = await openPage();
  await tap(page, '#album-button');
  expect(page.querySelector('#predictions').querySelectorAll('.label').map(textOf)).toEqual(['虎斑猫']);
  expect(page.querySelector('#labels-note')).toBeUndefined();
});

test('tapping cancel aborts the upload: a toast, no error card, the buttons back', async () => {
  const gate = held();
  const { calls, tasks } = installWx({ uploadFile: () => gate.promise.then(() => answer(200, predictBody())) });
  const page = await openPage();
  await tap(page, '#album-button');
  expect(page.querySelector('#cancel-button')).toBeDefined();
  await tap(page, '#cancel-button');
  expect(tasks[tasks.length - 1].aborted).toBe(true);
  expect(page.querySelector('#loading')).toBeUndefined();
  expect(page.querySelector('#error')).toBeUndefined();
  expect(page.querySelector('#predictions')).toBeUndefined();
  expect(calls.filter((c) => c.api === 'showToast').map((c) => c.options.title)).toEqual(['已取消上传']);
  expect(attrsOf(page, 'album-button').disabled).toBe(false);
  gate.release();
  await settle();
  expect(page.querySelector('#predictions')).toBeUndefined();
});

test('changing the picker switches the model and classifies the photo again with it', async () => {
  const { calls } = installWx();
  const page = await openPage();
  expect(text(page, '.picker-value')).toBe('ResNet50');
  expect(page.querySelector('#weights-warning')).toBeUndefined();
  await tap(page, '#album-button');
  page.querySelector('#model-picker').dispatchEvent('change', { detail: { value: 0 } });
  await settle();
  await settle();
  expect(text(page, '.picker-value')).toBe('MobileNetV2');
  expect(page.querySelector('#weights-warning')).toBeDefined();
  const urls = calls.filter((c) => c.api === 'uploadFile').map((c) => c.options.url);
  expect(urls).toEqual([
    'http://127.0.0.1:8000/v1/models/ResNet50/predict?top_k=5&lang=zh-CN',
    'http://127.0.0.1:8000/v1/models/MobileNetV2/predict?top_k=5&lang=zh-CN',
  ]);
});

test('an error answer shows its message and request id; tapping Try again works; a camera photo can be saved', async () => {
  let attempts = 0;
  const { calls } = installWx(
    {
      uploadFile: () => {
        attempts += 1;
        return attempts === 1
          ? answer(413, errorBody('image_too_large', 'image has 60000000 pixels; the limit is 50000000'))
          : answer(200, predictBody());
      },
      getSetting: () => ({ success: { authSetting: {} } }),
      authorize: () => ({ success: {} }),
      saveImageToPhotosAlbum: () => ({ success: {} }),
    },
  );
  const page = await openPage();
  await tap(page, '#camera-button');
  expect(calls.find((c) => c.api === 'chooseMedia').options.sourceType).toEqual(['camera']);
  expect(page.querySelector('#error').dom.getAttribute('data-code')).toBe('image_too_large');
  expect(text(page, '.error-title')).toBe(ZH.code.image_too_large);
  expect(text(page, '.error-detail')).toBe('image has 60000000 pixels; the limit is 50000000');
  expect(text(page, '.error-meta')).toBe('请求编号：req-err');
  expect(text(page, '#retry-button')).toBe('重试');
  expect(page.querySelector('#predictions')).toBeUndefined();

  await tap(page, '#retry-button');
  expect(page.querySelector('#error')).toBeUndefined();
  expect(page.querySelector('#predictions').querySelectorAll('.row')).toHaveLength(2);

  expect(text(page, '#save-button')).toBe('保存到相册');
  await tap(page, '#save-button');
  const list = apis(calls);
  expect(list.slice(list.indexOf('getSetting'))).toEqual(['getSetting', 'authorize', 'saveImageToPhotosAlbum', 'showToast']);
  expect(calls.find((c) => c.api === 'saveImageToPhotosAlbum').options.filePath).toBe('wxfile://tmp/cat.jpg');
  expect(calls.find((c) => c.api === 'showToast').options.title).toBe('已保存到相册');
});

test.each([
  ['network failure', { fail: { errMsg: 'uploadFile:fail connect ECONNREFUSED' } }, 'network', ZH.error.network],
  ['timeout', { fail: { errMsg: 'uploadFile:fail timeout' } }, 'timeout', '识别服务 30 秒内没有响应，请重试。'],
  ['unreadable body', answer(200, 'not json'), 'parse', ZH.error.parse],
  // A Retry-After past AUTO_RETRY_MAX_WAIT_S is not waited for: the card says when to try.
  ['overload', answer(503, errorBody('overloaded', 'queue full', { retry_after: 120 })), 'overloaded', '识别服务正忙。请 120 秒后再试。'],
  ['unavailable model', answer(503, errorBody('model_unavailable', 'failed to load')), 'model_unavailable', ZH.code.model_unavailable],
  ['text file', answer(415, errorBody('unsupported_media_type', 'text/plain is not an image')), 'unsupported_media_type', ZH.code.unsupported_media_type],
])('%s is shown, never silent', async (_what, outcome, code, message) => {
  installWx({ uploadFile: () => outcome });
  const page = await openPage();
  await tap(page, '#album-button');
  expect(page.querySelector('#error').dom.getAttribute('data-code')).toBe(code);
  expect(text(page, '.error-title')).toBe(message);
  expect(page.instance.data.busy).toBe(false);
});

test('the model list failing says so, and tapping Try again reloads it', async () => {
  let attempts = 0;
  installWx({
    request: () => {
      attempts += 1;
      return attempts === 1 ? { fail: { errMsg: 'request:fail timeout' } } : answer(200, modelListBody());
    },
  });
  const page = await openPage();
  expect(text(page, '.error-title')).toBe('识别服务 10 秒内没有响应，请重试。');
  expect(attrsOf(page, 'camera-button').disabled).toBe(true);
  await tap(page, '#retry-button');
  expect(page.querySelector('#error')).toBeUndefined();
  expect(text(page, '.picker-value')).toBe('ResNet50');
  expect(attrsOf(page, 'camera-button').disabled).toBe(false);
});

test('failed models stay out of the picker; developers see why', async () => {
  const body = modelListBody();
  Object.assign(body.models[1], { state: 'failed', error: 'no weights file' });
  installWx({ request: () => answer(200, body) });
  const page = await openPage();
  expect(page.instance.data.modelNames).toEqual(['MobileNetV2']);
  expect(text(page, '#failed-models')).toBe('加载失败的模型：ResNet50 (no weights file)');
  installWx({ request: () => answer(200, body) }, { getAccountInfoSync: () => ({ miniProgram: { envVersion: 'trial' } }) });
  const release = await openPage();
  expect(release.querySelector('#failed-models')).toBeUndefined();
});

test('cancelling the picker changes nothing and uploads nothing', async () => {
  const { calls } = installWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail cancel' } }) });
  const page = await openPage();
  await tap(page, '#camera-button');
  expect(page.querySelector('#error')).toBeUndefined();
  expect(page.querySelector('#photo')).toBeUndefined();
  expect(apis(calls)).not.toContain('uploadFile');
});

test('a refused camera offers a button that opens the settings', async () => {
  const { calls } = installWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail auth deny' } }) });
  const page = await openPage();
  await tap(page, '#camera-button');
  expect(text(page, '.error-title')).toBe(ZH.error.cameraDenied);
  expect(text(page, '#settings-button')).toBe('去设置');
  expect(page.querySelector('#retry-button')).toBeUndefined();
  await tap(page, '#settings-button');
  expect(apis(calls)).toContain('openSetting');
  expect(page.querySelector('#error')).toBeUndefined();
});

/** chooseMedia that needs the privacy agreement: it calls the page's listener and waits. */
function privacyGatedWx(extra = {}) {
  const answers = [];
  let listener = null;
  const env = installWx(
    {
      chooseMedia: () =>
        new Promise((resolveCall) => {
          listener((answerPrivacy) => {
            answers.push(answerPrivacy);
            if (answerPrivacy.event === 'agree') resolveCall(PHOTO);
            if (answerPrivacy.event === 'disagree') {
              resolveCall({ fail: { errMsg: 'chooseMedia:fail privacy permission is not authorized', errno: 104 } });
            }
          }, { referrer: 'chooseMedia' });
        }),
    },
    {
      onNeedPrivacyAuthorization: (fn) => {
        listener = fn;
      },
      ...extra,
    },
  );
  return { ...env, answers };
}

test('privacy at first use: our sheet appears on the first tap; agreeing lets chooseMedia go on', async () => {
  const { calls, answers } = privacyGatedWx();
  const page = await openPage();
  expect(page.querySelector('#privacy-sheet')).toBeUndefined();
  await tap(page, '#album-button');
  expect(page.querySelector('#privacy-sheet')).toBeDefined();
  expect(text(page, '.sheet-title')).toBe('隐私保护提示');
  expect(answers).toEqual([{ event: 'exposureAuthorization' }]);
  expect(apis(calls)).not.toContain('uploadFile');

  await tap(page, '#privacy-contract');
  expect(apis(calls)).toContain('openPrivacyContract');

  expect(attrsOf(page, 'agree-btn').openType).toBe('agreePrivacyAuthorization');
  // What WeChat fires on the button with open-type="agreePrivacyAuthorization" once tapped.
  page.querySelector('#agree-btn').dispatchEvent('agreeprivacyauthorization');
  await settle();
  await settle();
  expect(answers[1]).toEqual({ buttonId: 'agree-btn', event: 'agree' });
  expect(page.querySelector('#privacy-sheet')).toBeUndefined();
  expect(apis(calls)).toContain('uploadFile');
  expect(page.querySelector('#predictions')).toBeDefined();
});

test('declining the privacy sheet explains why, and Try again asks again', async () => {
  const { answers } = privacyGatedWx();
  const page = await openPage();
  await tap(page, '#camera-button');
  await tap(page, '#privacy-disagree');
  expect(answers[1]).toEqual({ event: 'disagree' });
  expect(page.querySelector('#privacy-sheet')).toBeUndefined();
  expect(text(page, '.error-title')).toBe(ZH.error.privacyRefused);
  await tap(page, '#retry-button');
  expect(page.querySelector('#privacy-sheet')).toBeDefined();
});

test('an API missing from the privacy guide (errno 112) is not shown as "please agree"', async () => {
  const undeclared = { fail: { errMsg: 'chooseMedia:fail api scope is not declared in the privacy agreement', errno: 112 } };
  installWx({ chooseMedia: () => undeclared }, { getAccountInfoSync: () => ({ miniProgram: { envVersion: 'release' } }) });
  const page = await openPage();
  await tap(page, '#camera-button');
  expect(text(page, '.error-title')).toBe(ZH.error.privacyUndeclared);
  expect(text(page, '.error-title')).not.toMatch(/同意/);
  expect(page.querySelector('#retry-button')).toBeUndefined();
  expect(page.querySelector('#privacy-sheet')).toBeUndefined();
  expect(page.querySelector('.error-dev')).toBeUndefined();
});

test('a multi-label answer shows independent likelihoods, not one distribution', async () => {
  const body = predictBody();
  body.model.output_kind = 'multi_label';
  body.results[0].predictions = [
    { index: 3, class_id: 'dog', label: 'dog', probability: 0.91 },
    { index: 7, class_id: 'cat', label: 'cat', probability: 0.88 },
    { index: 9, class_id: 'car', label: 'car', probability: 0.12 },
  ];
  installWx({ uploadFile: () => answer(200, body) });
  const page = await openPage();
  await tap(page, '#album-button');
  expect(page.querySelector('#result').dom.getAttribute('data-kind')).toBe('multi_label');
  expect(text(page, '.result-title')).toBe('可能包含的内容');
  expect(text(page, '#result-note')).toBe(ZH.result.multiNote);
  const list = page.querySelector('#predictions');
  expect(list.querySelectorAll('.percent').map(textOf)).toEqual(['91%', '88%', '12%']);
  expect(list.querySelectorAll('.verdict').map(textOf)).toEqual(['可能有', '可能有', '可能没有']);
  expect(list.querySelectorAll('.midline')).toHaveLength(3);
});

test('history from earlier visits is shown; tapping Clear (and confirming) empties it', async () => {
  const storage = memoryStorage({
    [STORAGE_KEY]: [
      { id: 'b', thumb: 'wxfile://usr/history-b.jpg', label: 'goldfish', probability: 0.7, outputKind: 'softmax', model: 'ResNet50', time: new Date(2025, 4, 2, 8, 30).getTime() },
      { id: 'a', thumb: 'wxfile://usr/history-a.jpg', label: 'tabby', probability: 0.9, outputKind: 'softmax', model: 'ResNet50', time: new Date(2025, 4, 1, 20, 5).getTime() },
    ],
  });
  const fs = fakeFs(new Set(['wxfile://usr/history-a.jpg', 'wxfile://usr/history-b.jpg']));
  const { calls } = installWx({}, {}, { storage, fs });
  const page = await openPage();
  expect(text(page, '#history .result-title')).toBe('历史记录');
  expect(page.querySelectorAll('.history-label').map(textOf)).toEqual(['goldfish', 'tabby']);
  expect(page.querySelectorAll('.history-meta').map(textOf)).toEqual(['70% · ResNet50 · 05-02 08:30', '90% · ResNet50 · 05-01 20:05']);

  await tap(page, '#clear-history');
  const modal = calls.find((c) => c.api === 'showModal').options;
  expect(modal.title).toBe('清空历史记录？');
  expect(modal.content).toBe('将删除这台手机上保存的 2 条记录。');
  await settle();
  expect(page.querySelector('#history')).toBeUndefined();
  expect(storage.store.has(STORAGE_KEY)).toBe(false);
  expect(fs.files.size).toBe(0);
});

test('declining the Clear confirmation keeps the history', async () => {
  const storage = memoryStorage({ [STORAGE_KEY]: [{ id: 'a', thumb: '', label: 'tabby', probability: 0.9, outputKind: 'softmax', model: 'm', time: 1 }] });
  installWx({ showModal: () => ({ success: { confirm: false, cancel: true } }) }, {}, { storage });
  const page = await openPage();
  await tap(page, '#clear-history');
  expect(page.querySelectorAll('.history-item')).toHaveLength(1);
  expect(storage.store.get(STORAGE_KEY)).toHaveLength(1);
});

test('sharing carries the result in the path and an illustration, never the photo', async () => {
  installWx();
  const page = await openPage();
  expect(page.instance.onShareAppMessage()).toEqual({ title: ZH.share.plain, path: '/pages/share/share', imageUrl: '/images/share-card.png' });
  await tap(page, '#album-button');
  const chat = page.instance.onShareAppMessage();
  expect(chat).toEqual({
    title: '图像识别认出了：tabby',
    path: '/pages/share/share?label=tabby&p=0.830&model=MobileNetV2',
    imageUrl: '/images/share-card.png',
  });
  const moments = page.instance.onShareTimeline();
  expect(moments).toEqual({ title: '图像识别认出了：tabby', query: 'label=tabby&p=0.830&model=MobileNetV2', imageUrl: '/images/share-card.png' });
  expect(JSON.stringify([chat, moments])).not.toContain('cat.jpg');
});

const { TOKEN_KEY } = require('../../utils/auth.js');

const uploads = (calls) => calls.filter((c) => c.api === 'uploadFile');
const logins = (calls) => calls.filter((c) => c.api === 'request' && /\/v1\/auth\/wechat$/.test(c.options.url));

describe('login', () => {
  test('at start: wx.login, its code posted to /v1/auth/wechat, the token kept and sent as a Bearer', async () => {
    const { calls, storage } = installWx();
    const page = await openPage();
    const list = apis(calls);
    expect(list.indexOf('login')).toBeGreaterThanOrEqual(0);
    const [login] = logins(calls);
    expect(login.options.method).toBe('POST');
    expect(login.options.header['Content-Type']).toBe('application/json');
    const { code } = login.options.data;
    expect(code).toMatch(/^code-/);
    expect(storage.store.get(TOKEN_KEY)).toMatchObject({ token: 'token-1' });
    expect(storage.store.get(TOKEN_KEY).expiresAt).toBeGreaterThan(Date.now() + 7000 * 1000);
    const models = calls.find((c) => c.api === 'request' && /\/v1\/models$/.test(c.options.url));
    expect(models.options.header.Authorization).toBe('Bearer token-1');
    await tap(page, '#album-button');
    expect(uploads(calls)[0].options.header.Authorization).toBe('Bearer token-1');
    expect(page.querySelector('#predictions')).toBeDefined();
  });

  test('a token kept from an earlier start is used without logging in again', async () => {
    const storage = memoryStorage({ [TOKEN_KEY]: { token: 'kept', expiresAt: Date.now() + 3600 * 1000 } });
    const { calls } = installWx({}, {}, { storage });
    const page = await openPage();
    expect(apis(calls)).not.toContain('login');
    await tap(page, '#album-button');
    expect(uploads(calls)[0].options.header.Authorization).toBe('Bearer kept');
  });

  test('a 401 renews the token once and the upload goes again with the new one', async () => {
    let issued = 0;
    let attempts = 0;
    const { calls, storage } = installWx({
      auth: () => {
        issued += 1;
        return answer(200, { token: `token-${issued}`, expires_in: 7200 });
      },
      uploadFile: () => {
        attempts += 1;
        return attempts === 1 ? answer(401, errorBody('unauthorized', 'token expired')) : answer(200, predictBody());
      },
    });
    const page = await openPage();
    await tap(page, '#album-button');
    await settle();
    expect(uploads(calls).map((c) => c.options.header.Authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
    expect(apis(calls).filter((a) => a === 'login')).toHaveLength(2);
    expect(storage.store.get(TOKEN_KEY).token).toBe('token-2');
    expect(page.querySelector('#error')).toBeUndefined();
    expect(page.querySelector('#predictions').querySelectorAll('.row')).toHaveLength(2);
  });

  test('a second 401 after renewing is shown, not retried for ever', async () => {
    const { calls } = installWx({ uploadFile: () => answer(401, errorBody('unauthorized', 'bad token')) });
    const page = await openPage();
    await tap(page, '#album-button');
    await settle();
    expect(uploads(calls)).toHaveLength(2);
    expect(page.querySelector('#error').dom.getAttribute('data-code')).toBe('unauthorized');
  });

  test('a server without WeChat login (404) is used without a token', async () => {
    const { calls } = installWx({ auth: () => answer(404, errorBody('not_found', 'no route')) });
    const page = await openPage();
    await tap(page, '#album-button');
    expect(uploads(calls)[0].options.header.Authorization).toBeUndefined();
    expect(page.querySelector('#predictions')).toBeDefined();
  });
});

describe('automatic retries', () => {
  test('a 503 with Retry-After is tried again once by itself after the wait', async () => {
    let attempts = 0;
    const { calls } = installWx({
      uploadFile: () => {
        attempts += 1;
        return attempts === 1
          ? answer(503, errorBody('overloaded', 'queue full', { retry_after: 1 }), { 'Retry-After': '1' })
          : answer(200, predictBody());
      },
    });
    const page = await openPage();
    await tap(page, '#album-button');
    expect(text(page, '#status')).toBe('识别服务正忙，1 秒后自动重试…');
    expect(page.querySelector('#error')).toBeUndefined();
    expect(uploads(calls)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await settle();
    await settle();
    expect(uploads(calls)).toHaveLength(2);
    expect(page.querySelector('#error')).toBeUndefined();
    expect(page.querySelector('#predictions').querySelectorAll('.row')).toHaveLength(2);
  });

  test('a second 503 is shown with its wait, not retried again', async () => {
    const { calls } = installWx({ uploadFile: () => answer(503, errorBody('overloaded', 'queue full', { retry_after: 1 })) });
    const page = await openPage();
    await tap(page, '#album-button');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await settle();
    await settle();
    expect(uploads(calls)).toHaveLength(2);
    expect(text(page, '.error-title')).toBe('识别服务正忙。请 1 秒后再试。');
  });

  test('a network failure is tried again when WeChat reports the network back', async () => {
    let attempts = 0;
    const listeners = [];
    const { calls } = installWx(
      {
        uploadFile: () => {
          attempts += 1;
          return attempts === 1 ? { fail: { errMsg: 'uploadFile:fail connect ECONNREFUSED' } } : answer(200, predictBody());
        },
      },
      {
        onNetworkStatusChange: (fn) => listeners.push(fn),
        offNetworkStatusChange: (fn) => listeners.splice(listeners.indexOf(fn), 1),
      },
    );
    const page = await openPage();
    await tap(page, '#album-button');
    expect(text(page, '.error-title')).toBe(ZH.error.network);
    expect(text(page, '#network-note')).toBe(ZH.error.networkBack);
    expect(listeners).toHaveLength(1);
    listeners[0]({ isConnected: false, networkType: 'none' });
    await settle();
    expect(uploads(calls)).toHaveLength(1);
    listeners[0]({ isConnected: true, networkType: 'wifi' });
    await settle();
    await settle();
    expect(uploads(calls)).toHaveLength(2);
    expect(listeners).toHaveLength(0);
    expect(page.querySelector('#error')).toBeUndefined();
    expect(page.querySelector('#predictions')).toBeDefined();
  });
});

test('one served model: no picker, and uploads go to it', async () => {
  const body = modelListBody();
  body.models = [body.models[1]];
  const { calls } = installWx({ request: () => answer(200, body) }, {}, { env: 'release' });
  const page = await openPage();
  expect(page.querySelector('#model-picker')).toBeUndefined();
  expect(page.querySelector('.model-card')).toBeUndefined();
  expect(attrsOf(page, 'camera-button').disabled).toBe(false);
  await tap(page, '#album-button');
  expect(uploads(calls)[0].options.url).toMatch(/\/v1\/models\/ResNet50\/predict/);
});

test('two served models: the picker is there, with its accessible name', async () => {
  installWx();
  const page = await openPage();
  expect(page.querySelector('#model-picker')).toBeDefined();
  expect(attrsOf(page, 'model-picker').ariaLabel).toBe('选择模型，当前：ResNet50');
});

test('dark mode: the page follows WeChat\'s theme and its changes', async () => {
  let onTheme = null;
  installWx({}, { getAppBaseInfo: () => ({ language: 'zh_CN', theme: 'dark' }), onThemeChange: (fn) => { onTheme = fn; } });
  const page = await openPage();
  const root = () => page.querySelector('#page').dom;
  expect(root().getAttribute('data-theme')).toBe('dark');
  expect(root().className).toMatch(/theme-dark/);
  onTheme({ theme: 'light' });
  await settle();
  expect(root().getAttribute('data-theme')).toBe('light');
  expect(root().className).toMatch(/theme-light/);
});

test('Moments single-page mode (scene 1154): the shared result, no camera or album, and why', async () => {
  const { calls } = installWx({}, { getEnterOptionsSync: () => ({ scene: 1154, query: {} }) });
  const page = mount(id);
  await page.instance.onLoad({ label: encodeURIComponent('虎斑猫'), p: '0.830', model: 'MobileNetV2' });
  await settle();
  expect(page.querySelector('#camera-button')).toBeUndefined();
  expect(page.querySelector('#album-button')).toBeUndefined();
  expect(text(page, '#single-page-note')).toBe(ZH.single.note);
  const card = page.querySelector('#shared-card');
  expect(textOf(card)).toContain('朋友认出了：虎斑猫');
  expect(textOf(card)).toContain('83%');
  // No login (unavailable there) and no upload.
  expect(apis(calls)).not.toContain('login');
  expect(apis(calls)).not.toContain('uploadFile');
});

test('a history entry opens its result', async () => {
  const storage = memoryStorage({
    [STORAGE_KEY]: [
      {
        id: 'a', thumb: 'wxfile://usr/history-a.jpg', label: 'tabby', probability: 0.9, outputKind: 'softmax', model: 'ResNet50',
        labelsLanguage: 'en', time: new Date(2025, 4, 1, 20, 5).getTime(),
        predictions: [{ index: 281, label: 'tabby', probability: 0.9 }, { index: 282, label: 'tiger_cat', probability: 0.05 }],
      },
    ],
  });
  const { calls } = installWx({}, {}, { storage, language: 'en' });
  const page = await openPage();
  expect(page.querySelector('#result')).toBeUndefined();
  expect(attrsOf(page, 'history').id).toBe('history');
  await tap(page, '.history-item');
  const list = page.querySelector('#predictions');
  expect(list.querySelectorAll('.label').map(textOf)).toEqual(['tabby', 'tiger cat']);
  expect(list.querySelectorAll('.percent').map(textOf)).toEqual(['90%', '5%']);
  expect(text(page, '.result-model')).toBe('ResNet50');
  expect(text(page, '#history-note')).toBe('From the history · 05-01 20:05');
  expect(attrsOf(page, 'photo').src).toBe('wxfile://usr/history-a.jpg');
  expect(apis(calls)).not.toContain('uploadFile');
});
