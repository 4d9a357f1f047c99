/**
 * A fake `wx` for unit tests: each API is a plain function answering from a script, and every
 * call is recorded in `calls`. Callbacks run asynchronously, as WeChat's do.
 */

/**
 * @param {Record<string, (options: object) => any>} answers per API name: a function from the
 *   call's options to `{success: res}` or `{fail: err}` (or a promise of one); synchronous APIs
 *   (`getAccountInfoSync`, `showLoading`...) go in `sync` instead
 * @param {Record<string, Function>} [sync] APIs called for their return value, recorded too
 */
function fakeWx(answers = {}, sync = {}) {
  const calls = [];
  const wx = { calls };
  for (const [name, fn] of Object.entries(sync)) {
    wx[name] = (...args) => {
      calls.push({ api: name, options: args[0] });
      return fn(...args);
    };
  }
  for (const [name, answer] of Object.entries(answers)) {
    wx[name] = (options = {}) => {
      calls.push({ api: name, options });
      // An answer may be a promise, to hold a call back until the test lets it go.
      Promise.resolve(answer(options)).then((outcome = {}) => {
        setTimeout(() => {
          if ('fail' in outcome) {
            if (options.fail) options.fail(outcome.fail);
          } else if (options.success) {
            options.success(outcome.success);
          }
          if (options.complete) options.complete();
        }, 0);
      });
    };
  }
  return wx;
}

/** A wx.uploadFile / wx.request `success` answer, with the body as the string wx gives. */
function answer(statusCode, body, header = {}) {
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  return { success: { statusCode, data, header: { 'Content-Type': 'application/json', ...header } } };
}

/** A PredictResponse body as docs/API.md shows it. */
function predictBody(overrides = {}) {
  return {
    model: {
      name: 'MobileNetV2',
      weights: {
        kind: 'random',
        path: null,
        random: true,
        warning: 'random weights: predictions are meaningless',
      },
      runtime: { name: 'keras', detail: 'keras 3', max_abs_diff: null },
    },
    results: [
      {
        filename: 'cat.jpg',
        predictions: [
          { index: 281, class_id: 'n02123045', label: 'tabby', probability: 0.83 },
          { index: 285, class_id: 'n02124075', label: 'Egyptian_cat', probability: 0.1 },
        ],
        timing: { queue_ms: 0.4, inference_ms: 31.2, batch_size: 3, decode_ms: 4.1 },
      },
    ],
    request_id: 'req-123',
    ...overrides,
  };
}

/** A ModelList body. */
function modelListBody() {
  const model = (name, random) => ({
    name,
    aliases: [],
    family: name,
    input_shape: [224, 224, 3],
    preprocessing: { mode: 'tf', module: null, input_size: [224, 224] },
    weights: random
      ? { kind: 'random', path: null, random: true, warning: 'random weights: predictions are meaningless' }
      : { kind: 'imagenet', path: null, random: false, warning: null },
    num_classes: 1000,
    runtime: { name: 'keras', detail: null, max_abs_diff: null },
    batching: { max_batch_size: 4, max_wait_ms: 5, max_queue: 64, timeout_s: 30, buckets: [1, 2, 4] },
    state: 'ready',
    queue_depth: 0,
    default: name === 'ResNet50',
  });
  return { models: [model('MobileNetV2', true), model('ResNet50', false)], default_model: 'ResNet50' };
}

/** An ErrorResponse body. */
function errorBody(code, message, extra = {}) {
  return { code, message, request_id: 'req-err', details: [], retry_after: null, extra: null, ...extra };
}

module.exports = { fakeWx, answer, predictBody, modelListBody, errorBody };
