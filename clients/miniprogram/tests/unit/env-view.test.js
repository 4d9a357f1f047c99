const { resolveBaseUrl } = require('../../utils/env.js');
const { errorView, prettyLabel, resultView } = require('../../utils/view.js');
const { ClientError } = require('../../utils/errors.js');

const URLS = { develop: 'http://127.0.0.1:8000/', trial: 'https://t.example.com', release: 'https://r.example.com' };
const wxIn = (envVersion) => ({ getAccountInfoSync: () => ({ miniProgram: { envVersion } }) });

test.each([
  ['develop', 'http://127.0.0.1:8000'],
  ['trial', 'https://t.example.com'],
  ['release', 'https://r.example.com'],
  ['unknown', 'http://127.0.0.1:8000'],
])('base URL for %s', (env, url) => {
  expect(resolveBaseUrl(wxIn(env), URLS)).toBe(url);
});

test('base URL without getAccountInfoSync falls back to develop', () => {
  expect(resolveBaseUrl({}, URLS)).toBe('http://127.0.0.1:8000');
  expect(resolveBaseUrl({ getAccountInfoSync: () => { throw new Error('no'); } }, URLS)).toBe('http://127.0.0.1:8000');
});

test('config.js holds a URL for every environment', () => {
  const config = require('../../config.js');
  expect(Object.keys(config.BASE_URLS).sort()).toEqual(['develop', 'release', 'trial']);
  expect(config.BASE_URLS.release).toMatch(/^https:\/\//);
  expect(config.BASE_URLS.trial).toMatch(/^https:\/\//);
  expect(config.UPLOAD_TIMEOUT_MS).toBeLessThanOrEqual(60000);
});

test('labels read as words', () => {
  expect(prettyLabel('golden_retriever')).toBe('golden retriever');
});

test('resultView formats timing and keeps the warning', () => {
  const view = resultView({
    model: 'MobileNetV2',
    weights: { kind: 'random', random: true, warning: 'random weights' },
    runtime: 'keras',
    predictions: [{ label: 'Egyptian_cat', classId: 'n1', index: 285, probability: 0.5, percent: 50 }],
    timing: { batchSize: 2, queueMs: 1.234, inferenceMs: 30.06, decodeMs: null },
    requestId: 'r',
  });
  expect(view.predictions).toEqual([{ index: 285, label: 'Egyptian cat', percent: 50 }]);
  expect(view.timingText).toBe('batch of 2 · queue 1.2 ms · inference 30.1 ms');
  expect(view.weightsWarning).toBe('random weights');
});

test('errorView never leaves the title empty', () => {
  const view = errorView(new ClientError('http', 'busy', { code: 'overloaded', status: 503, requestId: 'r1' }), 'upload');
  expect(view).toEqual({ title: 'busy', detail: '', code: 'overloaded', status: 503, requestId: 'r1', action: 'upload' });
  expect(errorView(new Error('boom'), 'models').title).toBe('Something went wrong on this phone. Try again.');
  expect(errorView(undefined).title.length).toBeGreaterThan(0);
});
