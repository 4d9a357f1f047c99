const { resolveBaseUrl, resolveEnv } = require('../../utils/env.js');
const { errorView, historyView, prettyLabel, resultView, shortTime } = require('../../utils/view.js');
const { ClientError, fromWxFail, privacyError } = require('../../utils/errors.js');
const { translator } = require('../../utils/i18n.js');

const URLS = { develop: 'http://127.0.0.1:8000/', trial: 'https://t.example.com', release: 'https://r.example.com' };
const wxIn = (envVersion) => ({ getAccountInfoSync: () => ({ miniProgram: { envVersion } }) });
const zh = translator('zh-CN');
const en = translator('en');

test.each([
  ['develop', 'http://127.0.0.1:8000'],
  ['trial', 'https://t.example.com'],
  ['release', 'https://r.example.com'],
  ['unknown', 'http://127.0.0.1:8000'],
])('base URL for %s', (env, url) => {
  expect(resolveBaseUrl(wxIn(env), URLS)).toBe(url);
});

test('environment without getAccountInfoSync falls back to develop', () => {
  expect(resolveEnv({})).toBe('develop');
  expect(resolveEnv({ getAccountInfoSync: () => { throw new Error('no'); } })).toBe('develop');
  expect(resolveBaseUrl({}, URLS)).toBe('http://127.0.0.1:8000');
});

test('labels read as words', () => {
  expect(prettyLabel('golden_retriever')).toBe('golden retriever');
  expect(prettyLabel('金毛寻回犬')).toBe('金毛寻回犬');
});

function result(overrides = {}) {
  return {
    model: 'MobileNetV2',
    version: 3,
    outputKind: 'softmax',
    labelsLanguage: 'zh-CN',
    weights: { kind: 'random', random: true, warning: 'random weights' },
    runtime: 'keras',
    predictions: [{ label: '埃及猫', classId: 'n1', index: 285, probability: 0.5, percent: 50 }],
    timing: { batchSize: 2, queueMs: 1.234, inferenceMs: 30.06, decodeMs: null },
    requestId: 'r',
    ...overrides,
  };
}

test('resultView: the model with its version, the warning in the app language, timing in develop only', () => {
  const dev = resultView(result(), { t: zh, lang: 'zh-CN', develop: true });
  expect(dev.predictions).toEqual([{ index: 285, label: '埃及猫', percent: 50, likely: false }]);
  expect(dev.resultModel).toBe('MobileNetV2 v3');
  expect(dev.resultTitle).toBe('识别结果');
  expect(dev.timingText).toBe('批大小 2 · 排队 1.2 ms · 推理 30.1 ms');
  expect(dev.weightsWarning).toBe('这个模型使用随机权重，识别结果没有意义（仅供测试）。');
  expect(dev.labelsNote).toBe('');
  expect(dev.labelsLatin).toBe(false);
  const release = resultView(result(), { t: zh, lang: 'zh-CN', develop: false });
  expect(release.timingText).toBe('');
});

test('resultView says when the labels are not in the app language', () => {
  const view = resultView(result({ labelsLanguage: 'en' }), { t: zh, lang: 'zh-CN', develop: false });
  expect(view.labelsNote).toBe('标签语言：英文');
  expect(view.labelsLatin).toBe(true);
  const english = resultView(result({ labelsLanguage: 'zh-CN' }), { t: en, lang: 'en', develop: false });
  expect(english.labelsNote).toBe('Labels in Chinese');
  expect(resultView(result({ labelsLanguage: 'en' }), { t: en, lang: 'en', develop: false }).labelsNote).toBe('');
});

test('resultView of a multi_label answer: independent verdicts and a note, not a distribution', () => {
  const view = resultView(
    result({
      outputKind: 'multi_label',
      predictions: [
        { label: 'dog', index: 1, probability: 0.91, percent: 91 },
        { label: 'cat', index: 2, probability: 0.5, percent: 50 },
        { label: 'car', index: 3, probability: 0.2, percent: 20 },
      ],
    }),
    { t: en, lang: 'en', develop: false },
  );
  expect(view.multiLabel).toBe(true);
  expect(view.predictions.map((p) => p.likely)).toEqual([true, true, false]);
  expect(view.resultTitle).toBe('What may be in the photo');
  expect(view.resultNote).toBe('Each label is judged on its own: the percentages need not add up to 100%.');
});

test('resultView of a binary answer is shown as the two labels it has', () => {
  const view = resultView(
    result({
      outputKind: 'binary',
      predictions: [
        { label: 'hotdog', index: 1, probability: 0.7, percent: 70 },
        { label: 'not hotdog', index: 0, probability: 0.3, percent: 30 },
      ],
    }),
    { t: en, lang: 'en', develop: false },
  );
  expect(view.multiLabel).toBe(false);
  expect(view.predictions.map((p) => p.percent)).toEqual([70, 30]);
  expect(view.resultNote).toBe('');
});

test('errorView never leaves the title empty and keeps developer text to develop', () => {
  const err = new ClientError('http', 'code.overloaded', { code: 'overloaded', status: 503, requestId: 'r1', detail: 'queue full', retryAfter: 2 });
  expect(errorView(err, 'upload', { t: zh, develop: false })).toEqual({
    title: '识别服务正忙。请 2 秒后再试。',
    devHint: '',
    detail: '',
    code: 'overloaded',
    status: 503,
    requestId: 'r1',
    requestIdText: '请求编号：r1',
    settings: false,
    action: 'upload',
  });
  expect(errorView(err, 'upload', { t: en, develop: true }).title).toBe('The server is busy right now. Try again in 2 s.');
  expect(errorView(err, 'upload', { t: en, develop: true }).detail).toBe('queue full');
  expect(errorView(new Error('boom'), 'models', { t: zh, develop: false }).title).toBe('手机上出了点问题，请重试。');
  expect(errorView(undefined, 'models', { t: en, develop: false }).title.length).toBeGreaterThan(0);
});

test('whitelist and server-address hints appear in develop only', () => {
  const domain = fromWxFail({ errMsg: 'uploadFile:fail url not in domain list' }, { url: 'https://a.example.com/v1' });
  const release = errorView(domain, 'upload', { t: zh, develop: false });
  expect(release.title).toBe('暂时无法连接识别服务，请稍后再试。');
  expect(release.devHint).toBe('');
  const dev = errorView(domain, 'upload', { t: zh, develop: true });
  expect(dev.devHint).toMatch(/^https:\/\/a\.example\.com 不在 uploadFile \/ request 合法域名中/);
  expect(dev.devHint).toMatch(/不校验合法域名/);
});

test('a privacy guide missing the API never asks the user to agree', () => {
  const err = privacyError({ errMsg: 'chooseMedia:fail api scope is not declared in the privacy agreement', errno: 112 });
  const release = errorView(err, 'choose', { t: zh, develop: false });
  expect(release.title).toBe('暂时无法使用相机和相册。');
  expect(release.title).not.toMatch(/同意/);
  expect(release.devHint).toBe('');
  expect(errorView(err, 'choose', { t: en, develop: true }).devHint).toMatch(/errno 112/);
});

test('history entries show label, percent, model and a short local time', () => {
  const time = new Date(2025, 0, 5, 9, 7).getTime();
  expect(shortTime(time)).toBe('01-05 09:07');
  expect(
    historyView([{ id: 'a', thumb: 'wxfile://usr/h.jpg', label: 'Egyptian_cat', probability: 0.834, outputKind: 'softmax', model: 'MobileNetV2', time }]),
  ).toEqual([{ id: 'a', thumb: 'wxfile://usr/h.jpg', label: 'Egyptian cat', percentText: '83%', model: 'MobileNetV2', timeText: '01-05 09:07' }]);
});
