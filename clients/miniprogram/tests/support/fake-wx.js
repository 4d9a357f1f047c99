/**
 * A fake `wx` for unit tests: each API is a plain function answering from a script, and every
 * call is recorded in `calls` (its task in `tasks`). Callbacks run asynchronously, as WeChat's
 * do. Storage and the file system manager have in-memory fakes too.
 */

/**
 * @param {Record<string, (options: object, task: object) => any>} answers per API name: a
 *   function from the call's options (and its task, to report progress) to `{success: res}` or `{fail: err}` (or a promise of one); synchronous APIs
 *   (`getAccountInfoSync`, `showLoading`...) go in `sync` instead
 * @param {Record<string, Function>} [sync] APIs called for their return value, recorded too
 */
function fakeWx(answers = {}, sync = {}) {
  const calls = [];
  const tasks = [];
  const wx = { calls, tasks };
  for (const [name, fn] of Object.entries(sync)) {
    wx[name] = (...args) => {
      calls.push({ api: name, options: args[0] });
      return fn(...args);
    };
  }
  for (const [name, answer] of Object.entries(answers)) {
    wx[name] = (options = {}) => {
      calls.push({ api: name, options });
      const task = fakeTask(name, options);
      tasks.push(task);
      // An answer may be a promise, to hold a call back until the test lets it go.
      Promise.resolve(answer(options, task)).then((outcome = {}) => {
        setTimeout(() => task.settle(outcome), 0);
      });
      return task;
    };
  }
  return wx;
}

/**
 * What wx.uploadFile and friends return: progress listeners and abort(), as WeChat's task.
 * `progress(p)` lets a test report progress; an aborted call fails with `<api>:fail abort` and
 * ignores its scripted outcome.
 */
function fakeTask(api, options) {
  const listeners = [];
  let settled = false;
  const task = {
    aborted: false,
    onProgressUpdate(cb) {
      listeners.push(cb);
    },
    offProgressUpdate(cb) {
      const i = listeners.indexOf(cb);
      if (i >= 0) listeners.splice(i, 1);
    },
    progress(progress, totalBytesExpectedToSend = 100000) {
      const totalBytesSent = Math.round((progress / 100) * totalBytesExpectedToSend);
      for (const cb of [...listeners]) cb({ progress, totalBytesSent, totalBytesExpectedToSend });
    },
    abort() {
      task.aborted = true;
      setTimeout(() => task.settle({ fail: { errMsg: `${api}:fail abort` } }), 0);
    },
    settle(outcome) {
      if (settled) return;
      settled = true;
      if ('fail' in outcome) {
        if (options.fail) options.fail(outcome.fail);
      } else if (options.success) {
        options.success(outcome.success);
      }
      if (options.complete) options.complete();
    },
  };
  return task;
}

/** wx storage in memory: the sync APIs over a Map (`store`), for fakeWx's `sync` argument. */
function memoryStorage(initial = {}) {
  const store = new Map(Object.entries(initial));
  return {
    store,
    getStorageSync: (key) => (store.has(key) ? JSON.parse(JSON.stringify(store.get(key))) : ''),
    setStorageSync: (key, value) => {
      store.set(key, JSON.parse(JSON.stringify(value)));
    },
    removeStorageSync: (key) => {
      store.delete(key);
    },
  };
}

/**
 * A file system manager over a Set of paths (`files`): saveFile and unlink, asynchronous, with
 * unlink failing for a file that is not there (as WeChat's does).
 */
function fakeFs(files = new Set()) {
  const later = (fn) => setTimeout(fn, 0);
  const manager = {
    saveFile({ tempFilePath, filePath, success, fail }) {
      later(() => {
        if (!tempFilePath) {
          if (fail) fail({ errMsg: 'saveFile:fail tempFilePath file not exist' });
          return;
        }
        files.add(filePath);
        if (success) success({ savedFilePath: filePath });
      });
    },
    unlink({ filePath, success, fail }) {
      later(() => {
        if (!files.delete(filePath)) {
          if (fail) fail({ errMsg: `unlink:fail no such file or directory ${filePath}` });
          return;
        }
        if (success) success({});
      });
    },
  };
  return { files, manager };
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
      version: 1,
      output_kind: 'softmax',
      labels_language: 'en',
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
    version: 1,
    output_kind: 'softmax',
    labels_languages: ['en', 'zh-CN'],
    queue_depth: 0,
    default: name === 'ResNet50',
  });
  return { models: [model('MobileNetV2', true), model('ResNet50', false)], default_model: 'ResNet50' };
}

/** An ErrorResponse body. */
function errorBody(code, message, extra = {}) {
  return { code, message, request_id: 'req-err', details: [], retry_after: null, extra: null, ...extra };
}

module.exports = { fakeWx, fakeTask, memoryStorage, fakeFs, answer, predictBody, modelListBody, errorBody };
