// kerasserve web page: pick a model, add photos (choose, drop, paste, camera), see each one's answer.
// Plain browser JavaScript modules: no build step and nothing loaded from the internet.

import { UiError, getJson, upload } from './api.js';
import { exportCsv, exportJson } from './export.js';
import { createCard, renderCard } from './gallery.js';
import { PREPARE_PARALLEL, eachLimited, prepare } from './photos.js';
import { LANG, t, translatePage } from './strings.js';
import { setupTeach } from './teach.js';

const PARALLEL_UPLOADS = 3; // the server batches what arrives together; more would only queue there
const TOP_K_MAX = 100; // the server's limit for top_k
const KEY_STORAGE = 'kerasserve.apiKey'; // sessionStorage: gone when the tab closes
const AUTO_RETRIES = 3; // per photo, each after the Retry-After a busy (503) or limiting (429) server gives
const MAX_AUTO_WAIT_S = 60; // a longer Retry-After is shown, and left to "Retry all failed"

translatePage();

const $ = (id) => document.getElementById(id);
const els = {
  model: $('model'),
  modelInfo: $('model-info'),
  modelFailures: $('model-failures'),
  warning: $('weights-warning'),
  topK: $('top-k'),
  topKHelp: $('top-k-help'),
  auth: $('auth'),
  authText: $('auth-text'),
  authForm: $('auth-form'),
  apiKey: $('api-key'),
  keyInUse: $('key-in-use'),
  forgetKey: $('forget-key'),
  drop: $('drop'),
  choose: $('choose'),
  cameraButton: $('camera-button'),
  file: $('file'),
  camera: $('camera'),
  error: $('error'),
  errorTitle: $('error-title'),
  errorDetail: $('error-detail'),
  errorMeta: $('error-meta'),
  reloadModels: $('reload-models'),
  gallery: $('gallery'),
  summary: $('summary'),
  clear: $('clear'),
  retryFailed: $('retry-failed'),
  exportCsv: $('export-csv'),
  exportJson: $('export-json'),
  cards: $('cards'),
  announce: $('announce'),
};

const state = {
  models: [],
  modelsStatus: 'loading', // loading | ready | needs_key | failed
  apiKey: sessionStorage.getItem(KEY_STORAGE) || '',
  topK: 5,
  items: [],
  nextId: 1,
  active: 0,
};

/** The labels' language: the browser's, among those the server ships (zh-CN or English). */
function wantedLanguage(model) {
  const wanted = LANG;
  const offered = model && Array.isArray(model.labels_languages) ? model.labels_languages : null;
  if (!offered || offered.includes(wanted)) return wanted;
  return offered.includes('en') ? 'en' : '';
}

// ---- the page-wide error panel --------------------------------------------------------------

function showError(err, { reload = false } = {}) {
  const e = err instanceof UiError ? err : new UiError(t('error.generic'), { detail: String(err) });
  els.errorTitle.textContent = e.message;
  els.errorDetail.textContent = e.detail;
  const meta = [e.code && `code: ${e.code}`, e.requestId && `request id: ${e.requestId}`].filter(Boolean);
  els.errorMeta.textContent = meta.join(' · ');
  els.error.dataset.code = e.code || '';
  els.reloadModels.hidden = !reload;
  els.error.hidden = false;
}

function clearError() {
  els.error.hidden = true;
  els.error.dataset.code = '';
}

// ---- models ------------------------------------------------------------------------------------

function selectedModel() {
  if (state.modelsStatus !== 'ready') return null;
  return state.models.find((m) => m.name === els.model.value) || null;
}

function showModelInfo() {
  const m = selectedModel();
  if (!m) return;
  const [h, w] = m.input_shape || [];
  const parts = [
    typeof m.version === 'number' ? `${m.family || m.name} v${m.version}` : m.family || m.name,
    `${h}×${w} input`,
    `${m.num_classes} classes`,
    m.output_kind === 'multi_label' ? 'independent labels' : m.output_kind,
    m.runtime && m.runtime.name,
  ].filter(Boolean);
  els.modelInfo.textContent = parts.join(' · ');
  showWeightsWarning(m.weights);
}

function showWeightsWarning(weights) {
  const random = Boolean(weights && weights.random);
  els.warning.hidden = !random;
  const text = (weights && weights.warning) || 'random weights: predictions are meaningless';
  els.warning.textContent = random ? text.charAt(0).toUpperCase() + text.slice(1) : '';
}

async function loadModels() {
  state.modelsStatus = 'loading';
  els.model.disabled = true;
  els.model.replaceChildren(new Option(t('models.loading'), ''));
  updateWaiting();
  let body;
  try {
    ({ body } = await getJson('v1/models', { apiKey: state.apiKey }));
    if (!Array.isArray(body.models) || body.models.length === 0) {
      throw new UiError('The server serves no model.', { code: 'no_models' });
    }
  } catch (err) {
    els.model.replaceChildren(new Option(t('models.none'), ''));
    if (err instanceof UiError && err.status === 401) {
      state.modelsStatus = 'needs_key';
      askForKey();
      updateWaiting();
      return;
    }
    state.modelsStatus = 'failed';
    showError(err, { reload: true });
    updateWaiting();
    return;
  }
  state.models = body.models;
  els.model.replaceChildren(
    ...body.models.map((m) => {
      const notes = [m.weights && m.weights.random && 'random weights', m.state === 'failed' && 'failed'];
      const text = notes.some(Boolean) ? `${m.name} (${notes.filter(Boolean).join(', ')})` : m.name;
      const opt = new Option(text, m.name);
      opt.disabled = m.state === 'failed';
      return opt;
    }),
  );
  const failed = body.models.filter((m) => m.state === 'failed');
  els.modelFailures.textContent = failed.map((m) => `${m.name} failed to load: ${m.error || 'no reason given'}`).join('\n');
  els.modelFailures.hidden = failed.length === 0;
  const usable = body.models.filter((m) => m.state !== 'failed');
  const def = usable.find((m) => m.name === body.default_model) || usable[0];
  if (!def) {
    state.modelsStatus = 'failed';
    const reasons = body.models.map((m) => `${m.name}: ${m.error || 'failed'}`).join('; ');
    showError(new UiError('No model on this server could be loaded.', { detail: reasons, code: 'no_models' }), {
      reload: true,
    });
    updateWaiting();
    return;
  }
  els.model.value = def.name;
  els.model.disabled = false;
  state.modelsStatus = 'ready';
  if (els.error.dataset.code === 'no_models' || !els.reloadModels.hidden) clearError();
  if (state.apiKey) keyAccepted();
  showModelInfo();
  updateWaiting();
}

// ---- the API key ------------------------------------------------------------------------------

function askForKey() {
  const refused = Boolean(state.apiKey);
  sessionStorage.removeItem(KEY_STORAGE); // only a key the server took is kept
  els.authText.textContent = refused
    ? 'The server refused this API key. Check it and enter it again.'
    : 'This server asks for an API key. It stays in this tab only and is sent with each request.';
  els.authText.dataset.refused = String(refused);
  els.authForm.hidden = false;
  els.keyInUse.hidden = true;
  els.auth.hidden = false;
  // Take focus only when nobody is using it: the key is the one thing left to do then.
  if (document.activeElement === document.body || document.activeElement === null) els.apiKey.focus();
}

function keyAccepted() {
  sessionStorage.setItem(KEY_STORAGE, state.apiKey);
  const typing = els.authForm.contains(document.activeElement);
  els.authForm.hidden = true;
  els.keyInUse.hidden = false;
  els.auth.hidden = false;
  if (typing) els.forgetKey.focus(); // the field goes away; keep the keyboard in this panel
}

els.authForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = els.apiKey.value.trim();
  if (!key) {
    els.apiKey.setAttribute('aria-invalid', 'true');
    els.authText.textContent = 'Enter the API key first.';
    els.apiKey.focus();
    return;
  }
  els.apiKey.removeAttribute('aria-invalid');
  els.apiKey.value = '';
  state.apiKey = key; // kept in sessionStorage once the server takes it
  // Photos the server turned away for want of a key go again once the models answer.
  for (const item of state.items) {
    if (item.state === 'failed' && item.error && item.error.status === 401) setState(item, 'waiting');
  }
  loadModels();
});

els.forgetKey.addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  state.apiKey = '';
  els.authText.textContent = 'The key is forgotten. Enter one to send photos again.';
  els.authText.dataset.refused = 'false';
  els.authForm.hidden = false;
  els.keyInUse.hidden = true;
  els.apiKey.focus();
});

// ---- top-k ------------------------------------------------------------------------------------

function readTopK() {
  const raw = els.topK.value.trim();
  const n = Number(raw);
  const ok = raw !== '' && Number.isInteger(n) && n >= 1 && n <= TOP_K_MAX;
  if (ok) els.topK.removeAttribute('aria-invalid');
  else els.topK.setAttribute('aria-invalid', 'true');
  els.topKHelp.textContent = ok
    ? t('topk.help', { max: TOP_K_MAX })
    : t('topk.invalid', { max: TOP_K_MAX, k: state.topK });
  els.topKHelp.classList.toggle('invalid', !ok);
  return ok ? n : null;
}

els.topK.addEventListener('input', readTopK);
els.topK.addEventListener('change', () => {
  const n = readTopK();
  if (n === null || n === state.topK) return;
  state.topK = n;
  // Every answer already holds the server's top TOP_K_MAX: show more or fewer, send nothing.
  for (const item of state.items) {
    item.topK = n;
    renderCard(item);
  }
});

// ---- the queue ----------------------------------------------------------------------------------

function waitingNote() {
  if (state.modelsStatus === 'needs_key') return 'Waiting for an API key…';
  return 'Waiting for the model list…';
}

/** Move an item to `next` and show it; the one place an item's state changes. */
function setState(item, next, fields = {}) {
  Object.assign(item, fields, { state: next, topK: state.topK });
  if (next === 'waiting') item.note = waitingNote();
  renderCard(item);
  updateSummary();
}

/** Photos waiting on the model list go as soon as it is in, or are refused once it failed. */
function updateWaiting() {
  for (const item of state.items) {
    // Refused only for want of a model list: they go once there is one.
    if (state.modelsStatus === 'ready' && item.state === 'failed' && item.error.code === 'no_models') {
      setState(item, 'queued');
      continue;
    }
    if (item.state !== 'waiting') continue;
    if (state.modelsStatus === 'ready') setState(item, 'queued');
    else if (state.modelsStatus === 'failed') {
      setState(item, 'failed', {
        error: new UiError('Not sent: the model list did not load, so there is no model to ask.', {
          detail: 'Reload the model list, then try this photo again.',
          code: 'no_models',
        }),
      });
      announce(`${item.name}: not sent, no model list.`);
    } else setState(item, 'waiting');
  }
  pump();
}

function enqueue(item) {
  if (state.modelsStatus === 'ready') setState(item, 'queued');
  else {
    setState(item, 'waiting');
    if (state.modelsStatus === 'failed') loadModels();
  }
  pump();
}

function pump() {
  while (state.active < PARALLEL_UPLOADS && state.modelsStatus === 'ready') {
    const next = state.items.find((i) => i.state === 'queued');
    if (!next) return;
    send(next);
  }
}

async function send(item) {
  const model = selectedModel();
  const lang = wantedLanguage(model);
  const controller = new AbortController();
  item.controller = controller;
  item.attempt += 1;
  item.requestedLanguage = lang;
  state.active += 1;
  setState(item, 'uploading', { progress: 0 });
  const query = new URLSearchParams({ top_k: String(TOP_K_MAX) });
  if (lang) query.set('lang', lang);
  const path = `v1/models/${encodeURIComponent(model.name)}/predict?${query}`;
  try {
    const { body } = await upload(path, item.prepared.blob, item.prepared.filename, {
      apiKey: state.apiKey,
      signal: controller.signal,
      onProgress: (fraction) => {
        if (item.state === 'uploading') setState(item, 'uploading', { progress: fraction });
      },
      onSent: () => {
        if (item.state === 'uploading') setState(item, 'classifying');
      },
    });
    const result = Array.isArray(body.results) ? body.results[0] : null;
    if (!result || !Array.isArray(result.predictions) || !body.model) {
      throw new UiError('The server sent an answer this page cannot read.', { code: 'unreadable' });
    }
    setState(item, 'done', { answer: { model: body.model, result }, autoRetries: 0 });
    if (body.model.weights && selectedModel() && body.model.name === selectedModel().name) {
      showWeightsWarning(body.model.weights);
    }
    const top = result.predictions[0];
    announce(top ? `${item.name}: ${top.label}, ${(top.probability * 100).toFixed(1)}%.` : `${item.name}: done.`);
  } catch (err) {
    if (err && err.name === 'AbortError') return; // removed, or sent again with other settings
    const error = err instanceof UiError ? err : new UiError(t('error.generic'), { detail: String(err) });
    if (retryLater(item, error)) return;
    setState(item, 'failed', { error });
    announce(`${item.name}: ${error.message}`);
    if (error.status === 401) {
      state.modelsStatus = 'needs_key';
      askForKey();
      for (const other of state.items) if (other.state === 'queued') setState(other, 'waiting');
    }
  } finally {
    state.active -= 1;
    if (item.controller === controller) item.controller = null;
    pump();
  }
}

/** A busy (503) or limiting (429) server said when to come back: go again then, a few times. */
function retryLater(item, error) {
  const wait = error.retryAfter;
  if (![429, 503].includes(error.status) || !(wait > 0) || wait > MAX_AUTO_WAIT_S) return false;
  if (item.autoRetries >= AUTO_RETRIES) return false;
  item.autoRetries += 1;
  setState(item, 'retrying', { error, note: t('status.retryIn', { s: Math.ceil(wait) }) });
  item.retryTimer = setTimeout(() => {
    item.retryTimer = null;
    if (state.items.includes(item) && item.state === 'retrying') enqueue(item);
  }, wait * 1000);
  return true;
}

/** Ask again for every answered or pending photo (the model changed). */
function classifyAgain() {
  for (const item of state.items) {
    if (['done', 'uploading', 'classifying'].includes(item.state)) {
      if (item.controller) item.controller.abort();
      setState(item, 'queued');
    }
  }
  pump();
}

async function addFiles(files) {
  const list = [...files];
  if (list.length === 0) return;
  clearError();
  els.gallery.hidden = false;
  const items = list.map((file) => {
    const item = {
      id: state.nextId++,
      name: file.name || 'photo',
      size: file.size,
      file,
      prepared: null,
      previewUrl: null,
      state: 'preparing',
      note: '',
      progress: null,
      answer: null,
      error: null,
      attempt: 0,
      controller: null,
      requestedLanguage: '',
      autoRetries: 0,
      retryTimer: null,
      topK: state.topK,
    };
    item.card = createCard(item, { onRetry: retry, onRemove: remove });
    state.items.push(item);
    els.cards.append(item.card.root);
    setState(item, 'preparing');
    return item;
  });
  // A few at a time: each decode holds one bitmap at upload size, so 100 phone photos stay small.
  await eachLimited(items, PREPARE_PARALLEL, async (item) => {
    if (!state.items.includes(item)) return;
    item.prepared = await prepare(item.file);
    if (item.prepared.refused) {
      item.file = null;
      const error = new UiError(item.prepared.refused, { detail: t('format.notSent'), code: 'unsupported_format' });
      setState(item, 'failed', { error });
      announce(`${item.name}: ${error.message}`);
      return;
    }
    item.previewUrl = URL.createObjectURL(item.prepared.width === null ? item.file : item.prepared.blob);
    item.file = null; // what is sent, retries included, is `prepared`
    if (state.items.includes(item)) enqueue(item);
  });
}

/** Whether sending `item` again can help (a HEIC this browser cannot read will not change). */
const canRetry = (item) => item.state === 'failed' && !(item.prepared && item.prepared.refused);

function retry(item) {
  item.card.parts.title.focus(); // the button goes away; keep the keyboard on this card
  item.autoRetries = 0;
  enqueue(item);
}

els.retryFailed.addEventListener('click', () => {
  for (const item of state.items.filter(canRetry)) {
    item.autoRetries = 0;
    enqueue(item);
  }
  els.choose.focus();
});
els.exportCsv.addEventListener('click', () => exportCsv(state.items));
els.exportJson.addEventListener('click', () => exportJson(state.items));

function remove(item) {
  const at = state.items.indexOf(item);
  if (at < 0) return;
  if (item.controller) item.controller.abort();
  clearTimeout(item.retryTimer);
  state.items.splice(at, 1);
  item.card.root.remove();
  if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
  const neighbour = state.items[at] || state.items[at - 1];
  if (neighbour) neighbour.card.parts.remove.focus();
  else els.choose.focus();
  if (state.items.length === 0) els.gallery.hidden = true;
  updateSummary();
  pump();
}

els.clear.addEventListener('click', () => {
  for (const item of [...state.items]) {
    if (item.controller) item.controller.abort();
    clearTimeout(item.retryTimer);
    if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
    item.card.root.remove();
  }
  state.items = [];
  els.gallery.hidden = true;
  updateSummary();
  els.choose.focus();
});

function updateSummary() {
  const count = (s) => state.items.filter((i) => i.state === s).length;
  const total = state.items.length;
  const done = count('done');
  const failed = count('failed');
  const pending = total - done - failed;
  const photos = LANG === 'en' && total === 1 ? '1 photo' : t('summary.photos', { n: total });
  const parts = [photos, t('summary.answered', { n: done })];
  if (failed) parts.push(t('summary.failed', { n: failed }));
  if (pending) parts.push(t('summary.pending', { n: pending }));
  els.summary.textContent = parts.join(' · ');
  els.retryFailed.hidden = !state.items.some(canRetry);
  els.exportCsv.disabled = els.exportJson.disabled = done === 0;
}

let announceTimer = null;
function announce(text) {
  // One polite live region for the whole gallery, so a screen reader hears each photo once.
  clearTimeout(announceTimer);
  els.announce.textContent = text;
  announceTimer = setTimeout(() => (els.announce.textContent = ''), 5000);
}

// ---- choosing, taking, dropping, pasting ------------------------------------------------------

els.choose.addEventListener('click', () => els.file.click());
els.cameraButton.addEventListener('click', () => els.camera.click());
for (const input of [els.file, els.camera]) {
  input.addEventListener('change', () => {
    addFiles(input.files);
    input.value = ''; // choosing the same file again still triggers a change
  });
}

// The whole page takes a drop; the drop zone lights up while something is dragged over it.
let dragDepth = 0;
window.addEventListener('dragenter', (e) => {
  e.preventDefault();
  dragDepth += 1;
  els.drop.classList.add('dragging');
});
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) els.drop.classList.remove('dragging');
});
window.addEventListener('drop', (e) => {
  e.preventDefault(); // a file dropped outside a handler would navigate away from the page
  dragDepth = 0;
  els.drop.classList.remove('dragging');
  const files = e.dataTransfer ? e.dataTransfer.files : null;
  if (files && files.length) addFiles(files);
  else showError(new UiError('Nothing to classify: drop image files.', { code: 'no_file' }));
});
document.addEventListener('paste', (e) => {
  const files = e.clipboardData ? e.clipboardData.files : null;
  if (files && files.length) {
    e.preventDefault();
    addFiles(files);
  }
});

els.model.addEventListener('change', () => {
  showModelInfo();
  classifyAgain();
});
els.reloadModels.addEventListener('click', () => {
  clearError();
  loadModels();
});

readTopK();
loadModels();
setupTeach({
  apiKey: () => state.apiKey,
  onTaught: async (name) => {
    await loadModels();
    if (state.models.some((m) => m.name === name)) {
      els.model.value = name;
      showModelInfo();
      classifyAgain();
    }
  },
});
