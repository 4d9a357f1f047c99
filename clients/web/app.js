// kerasserve web page: pick a model, choose/drop/paste/take a photo, show the top predictions.
// Plain browser JavaScript, no build step and nothing loaded from the internet. URLs are relative
// to the page, so it works on any host and under a path prefix.
'use strict';

(() => {
  const TOP_K = 5;
  const TIMEOUT_MS = 60000;

  // A message for people per server error code (docs/API.md); the server's own text goes below it.
  const CODE_MESSAGES = {
    invalid_image: 'This file could not be read as an image.',
    empty_file: 'The file is empty.',
    unsupported_media_type: 'This is not an image format the server reads. Use a JPEG, PNG or WebP photo.',
    image_too_large: 'This photo has too many pixels for the server. Choose a smaller one.',
    payload_too_large: 'This file is too large to upload. Choose a smaller one.',
    too_many_images: 'Too many photos in one request.',
    missing_image: 'No photo reached the server.',
    invalid_request: 'The server rejected the request as malformed.',
    unauthorized: 'The server requires an API key.',
    model_not_found: 'The server does not serve this model.',
    not_found: 'The server has no such address.',
    method_not_allowed: 'The server does not accept this request method.',
    request_timeout: 'The upload was too slow to reach the server.',
    client_closed_request: 'The request was cancelled.',
    overloaded: 'The server is busy right now.',
    not_ready: 'The server is still starting up. Try again in a moment.',
    shutting_down: 'The server is restarting. Try again in a moment.',
    deadline_exceeded: 'The server took too long to classify the photo.',
    inference_failed: 'The model failed on this photo.',
    internal_error: 'The server hit an internal error.',
  };

  const $ = (id) => document.getElementById(id);
  const els = {
    model: $('model'),
    modelInfo: $('model-info'),
    warning: $('weights-warning'),
    drop: $('drop'),
    file: $('file'),
    camera: $('camera'),
    error: $('error'),
    errorTitle: $('error-title'),
    errorDetail: $('error-detail'),
    errorMeta: $('error-meta'),
    result: $('result'),
    preview: $('preview'),
    filename: $('filename'),
    resultModel: $('result-model'),
    status: $('status'),
    predictions: $('predictions'),
    timing: $('timing'),
  };

  const state = { models: [], file: null, previewUrl: null, inFlight: null };

  class UiError extends Error {
    constructor(title, { detail = '', code = '', requestId = '' } = {}) {
      super(title);
      this.detail = detail;
      this.code = code;
      this.requestId = requestId;
    }
  }

  const url = (path) => new URL(path, document.baseURI).toString();

  /** fetch with a timeout, JSON parsing and every failure turned into a UiError. */
  async function call(path, init = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException('timeout', 'TimeoutError')), TIMEOUT_MS);
    if (init.signal) init.signal.addEventListener('abort', () => controller.abort(init.signal.reason));
    let res;
    let text;
    try {
      res = await fetch(url(path), { ...init, signal: controller.signal, headers: { Accept: 'application/json' } });
      text = await res.text();
    } catch (err) {
      if (init.signal && init.signal.aborted) throw err; // superseded by a newer request
      if (controller.signal.aborted) {
        throw new UiError(`The server did not answer within ${TIMEOUT_MS / 1000} s.`, { code: 'timeout' });
      }
      throw new UiError('Cannot reach the server. Check your connection and that kerasserve is running.', {
        detail: String(err && err.message ? err.message : err),
        code: 'network',
      });
    } finally {
      clearTimeout(timer);
    }
    const requestId = res.headers.get('X-Request-ID') || '';
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (err) {
      body = null;
    }
    if (!res.ok) {
      if (body && typeof body.code === 'string') {
        let title = CODE_MESSAGES[body.code] || `The server answered with an error (HTTP ${res.status}).`;
        const retry = typeof body.retry_after === 'number' ? body.retry_after : Number(res.headers.get('Retry-After'));
        if (retry > 0) title += ` Try again in ${Math.ceil(retry)} s.`;
        throw new UiError(title, { detail: body.message || '', code: body.code, requestId: body.request_id || requestId });
      }
      throw new UiError(`The server answered with an error (HTTP ${res.status}).`, { code: `http_${res.status}`, requestId });
    }
    if (body === null || typeof body !== 'object') {
      throw new UiError('The server sent an answer this page cannot read.', { code: 'unreadable', requestId });
    }
    return { body, requestId };
  }

  function showError(err) {
    const e = err instanceof UiError ? err : new UiError('Something went wrong in this page.', { detail: String(err) });
    els.errorTitle.textContent = e.message;
    els.errorDetail.textContent = e.detail;
    els.errorDetail.hidden = !e.detail;
    const meta = [e.code && `code: ${e.code}`, e.requestId && `request id: ${e.requestId}`].filter(Boolean);
    els.errorMeta.textContent = meta.join(' · ');
    els.error.dataset.code = e.code || '';
    els.error.hidden = false;
  }

  function clearError() {
    els.error.hidden = true;
    els.error.dataset.code = '';
  }

  function selectedModel() {
    return state.models.find((m) => m.name === els.model.value);
  }

  function showModelInfo() {
    const m = selectedModel();
    if (!m) return;
    const [h, w] = m.input_shape || [];
    els.modelInfo.textContent = `${m.family || m.name} · ${h}×${w} input · ${m.num_classes} classes · ${m.runtime ? m.runtime.name : ''}`;
    showWeightsWarning(m.weights);
  }

  function showWeightsWarning(weights) {
    const random = Boolean(weights && weights.random);
    els.warning.hidden = !random;
    const text = (weights && weights.warning) || 'random weights: predictions are meaningless';
    els.warning.textContent = random ? text.charAt(0).toUpperCase() + text.slice(1) : '';
  }

  async function loadModels() {
    try {
      const { body } = await call('v1/models');
      if (!Array.isArray(body.models) || body.models.length === 0) {
        throw new UiError('The server serves no model.', { code: 'no_models' });
      }
      state.models = body.models;
      els.model.replaceChildren(
        ...body.models.map((m) => {
          const opt = document.createElement('option');
          opt.value = m.name;
          opt.textContent = m.weights && m.weights.random ? `${m.name} (random weights)` : m.name;
          return opt;
        }),
      );
      const def = body.models.some((m) => m.name === body.default_model) ? body.default_model : body.models[0].name;
      els.model.value = def;
      els.model.disabled = false;
      showModelInfo();
    } catch (err) {
      els.model.replaceChildren(new Option('No models', ''));
      showError(err);
    }
  }

  function showPreview(file) {
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(file);
    els.preview.src = state.previewUrl;
    els.filename.textContent = `${file.name || 'photo'} · ${formatBytes(file.size)}`;
    els.result.hidden = false;
  }

  function formatBytes(n) {
    if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
    if (n >= 1024) return `${Math.round(n / 1024)} KB`;
    return `${n} B`;
  }

  const ms = (v) => (typeof v === 'number' ? `${v.toFixed(1)} ms` : '–');
  const prettyLabel = (label) => String(label).replace(/_/g, ' ');

  function renderPredictions(result) {
    const items = result.predictions.map((p) => {
      const pct = Math.max(0, Math.min(100, p.probability * 100));
      const li = document.createElement('li');
      li.className = 'prediction';
      li.dataset.testid = 'prediction';
      const head = document.createElement('div');
      head.className = 'prediction-head';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = prettyLabel(p.label);
      label.title = p.class_id || '';
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = `${pct.toFixed(1)}%`;
      head.append(label, value);
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.setAttribute('role', 'progressbar');
      bar.setAttribute('aria-label', prettyLabel(p.label));
      bar.setAttribute('aria-valuemin', '0');
      bar.setAttribute('aria-valuemax', '100');
      bar.setAttribute('aria-valuenow', pct.toFixed(1));
      const fill = document.createElement('span');
      fill.style.width = `${pct}%`;
      bar.append(fill);
      li.append(head, bar);
      return li;
    });
    els.predictions.replaceChildren(...items);
    const t = result.timing || {};
    $('t-batch').textContent = String(t.batch_size ?? '–');
    $('t-queue').textContent = ms(t.queue_ms);
    $('t-inference').textContent = ms(t.inference_ms);
    $('t-decode').textContent = ms(t.decode_ms);
    els.timing.hidden = false;
  }

  async function classify() {
    const file = state.file;
    const model = els.model.value;
    if (!file) return;
    if (!model) {
      showError(new UiError('No model to ask: the model list did not load.', { code: 'no_models' }));
      return;
    }
    if (state.inFlight) state.inFlight.abort();
    const controller = new AbortController();
    state.inFlight = controller;

    clearError();
    showPreview(file);
    els.predictions.replaceChildren();
    els.timing.hidden = true;
    els.resultModel.textContent = model;
    els.result.setAttribute('aria-busy', 'true');
    els.status.textContent = 'Classifying…';
    els.status.hidden = false;

    const form = new FormData();
    form.append('image', file, file.name || 'photo');
    try {
      const path = `v1/models/${encodeURIComponent(model)}/predict?top_k=${TOP_K}`;
      const { body } = await call(path, { method: 'POST', body: form, signal: controller.signal });
      const result = Array.isArray(body.results) ? body.results[0] : null;
      if (!result || !Array.isArray(result.predictions)) {
        throw new UiError('The server sent an answer this page cannot read.', { code: 'unreadable' });
      }
      if (controller !== state.inFlight) return;
      els.status.hidden = true;
      els.resultModel.textContent = body.model && body.model.name ? body.model.name : model;
      if (body.model) showWeightsWarning(body.model.weights);
      renderPredictions(result);
    } catch (err) {
      if (controller !== state.inFlight) return; // a newer photo replaced this one
      els.status.hidden = true;
      els.result.hidden = true;
      showError(err);
    } finally {
      if (controller === state.inFlight) {
        state.inFlight = null;
        els.result.removeAttribute('aria-busy');
      }
    }
  }

  function useFile(file) {
    if (!file) return;
    state.file = file;
    classify();
  }

  // Choosing, taking, dropping, pasting.
  els.file.addEventListener('change', () => {
    useFile(els.file.files[0]);
    els.file.value = ''; // choosing the same file again still triggers a change
  });
  els.camera.addEventListener('change', () => {
    useFile(els.camera.files[0]);
    els.camera.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    els.drop.addEventListener(type, (e) => {
      e.preventDefault();
      els.drop.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    els.drop.addEventListener(type, () => els.drop.classList.remove('dragging'));
  }
  els.drop.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = e.dataTransfer ? e.dataTransfer.files : null;
    if (files && files.length) useFile(files[0]);
    else showError(new UiError('Nothing to classify: drop an image file.', { code: 'no_file' }));
  });
  // Dropping a file anywhere else would navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData ? e.clipboardData.files : [])][0];
    if (item) useFile(item);
  });
  els.model.addEventListener('change', () => {
    showModelInfo();
    if (state.file) classify();
  });

  loadModels();
})();
