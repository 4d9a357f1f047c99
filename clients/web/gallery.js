// kerasserve web page, the gallery: one card per photo with its preview, progress, answer or error.

import { formatBytes } from './photos.js';
import { t } from './strings.js';

const STATUS_TEXT = {
  preparing: t('status.preparing'),
  queued: t('status.queued'),
  uploading: t('status.uploading'),
  classifying: t('status.classifying'),
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role' || key === 'for') {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  node.append(...children);
  return node;
}

/** A button whose visible words are completed, for screen readers, by which photo it acts on. */
function actionButton(words, photoName, testid) {
  return el(
    'button',
    { type: 'button', class: 'button small', 'data-testid': testid },
    words,
    el('span', { class: 'visually-hidden', text: `: ${photoName}` }),
  );
}

const ms = (v) => (typeof v === 'number' ? `${v.toFixed(1)} ms` : '–');
const prettyLabel = (label) => String(label).replace(/_/g, ' ');
const percent = (p) => `${(Math.max(0, Math.min(1, p)) * 100).toFixed(1)}%`;

/** Build the card of `item`; `onRetry` and `onRemove` are called with the item. */
export function createCard(item, { onRetry, onRemove }) {
  const id = `photo-${item.id}`;
  const parts = {};
  parts.img = el('img', { alt: `Preview of ${item.name}`, 'data-testid': 'photo-preview', hidden: true });
  parts.noPreview = el('span', { class: 'no-preview', text: 'No preview' });
  parts.img.addEventListener('load', () => {
    parts.img.hidden = false;
    parts.noPreview.hidden = true;
  });
  parts.img.addEventListener('error', () => {
    parts.img.hidden = true;
    parts.noPreview.hidden = false;
  });
  parts.title = el('h3', { class: 'card-title', id: `${id}-name`, tabIndex: -1, text: item.name });
  parts.meta = el('p', { class: 'card-meta muted small', 'data-testid': 'photo-meta' });
  parts.status = el('p', { class: 'card-status', id: `${id}-status`, 'data-testid': 'photo-status' });
  parts.progress = el('progress', {
    class: 'upload-progress',
    max: 100,
    value: 0,
    hidden: true,
    'aria-labelledby': `${id}-status`,
    'data-testid': 'photo-progress',
  });
  parts.answer = el('div', { class: 'answer', 'data-testid': 'answer', hidden: true });
  parts.errorBox = el('div', { class: 'card-error', 'data-testid': 'photo-error', hidden: true });
  parts.retry = actionButton(t('card.retry'), item.name, 'retry');
  parts.retry.hidden = true;
  parts.remove = actionButton(t('card.remove'), item.name, 'remove');
  parts.retry.addEventListener('click', () => onRetry(item));
  parts.remove.addEventListener('click', () => onRemove(item));

  const root = el(
    'li',
    { class: 'card', id, 'data-testid': 'photo', 'aria-labelledby': `${id}-name` },
    el('figure', { class: 'thumb' }, parts.img, parts.noPreview),
    el(
      'div',
      { class: 'card-body' },
      parts.title,
      parts.meta,
      parts.status,
      parts.progress,
      parts.answer,
      parts.errorBox,
      el('div', { class: 'card-actions' }, parts.retry, parts.remove),
    ),
  );
  return { root, parts };
}

function describeSize(item) {
  const p = item.prepared;
  if (!p || p.refused) return formatBytes(item.size);
  if (p.width === null) return `${formatBytes(item.size)} · not readable here, sent as it is`;
  if (!p.scaled) return `${p.width}×${p.height} · ${formatBytes(item.size)}`;
  return `${p.sourceWidth}×${p.sourceHeight}, sent at ${p.width}×${p.height} · ${formatBytes(p.blob.size)}`;
}

/** Bring the card in line with its item's state. */
export function renderCard(item) {
  const { root, parts } = item.card;
  root.dataset.state = item.state;
  root.setAttribute(
    'aria-busy',
    String(['preparing', 'queued', 'uploading', 'classifying', 'retrying'].includes(item.state)),
  );
  if (item.previewUrl && parts.img.getAttribute('src') !== item.previewUrl) parts.img.src = item.previewUrl;
  parts.meta.textContent = describeSize(item);

  let status = STATUS_TEXT[item.state] || '';
  if (item.state === 'waiting' || item.state === 'retrying') status = item.note;
  if (item.state === 'uploading' && item.progress !== null) status = `${t('status.uploading')} ${Math.round(item.progress * 100)}%`;
  parts.status.textContent = status;
  parts.status.hidden = !status;
  parts.progress.hidden = item.state !== 'uploading';
  if (item.state === 'uploading') {
    if (item.progress === null) parts.progress.removeAttribute('value');
    else parts.progress.value = Math.round(item.progress * 100);
  }

  parts.answer.hidden = item.state !== 'done';
  // Answers hold the server's top 100; top-k only chooses how many show, so no upload again.
  const rendered = `${item.attempt}:${item.topK}`;
  if (item.state === 'done' && parts.answer.dataset.rendered !== rendered) {
    renderAnswer(parts.answer, item);
    parts.answer.dataset.rendered = rendered;
  }
  parts.errorBox.hidden = item.state !== 'failed';
  if (item.state === 'failed') renderError(parts.errorBox, item.error);
  parts.retry.hidden = item.state !== 'failed';
}

function renderError(box, error) {
  box.dataset.code = error.code || '';
  const meta = [error.code && `code: ${error.code}`, error.requestId && `request id: ${error.requestId}`].filter(Boolean);
  box.replaceChildren(
    el('p', { class: 'error-title', 'data-testid': 'photo-error-title', text: error.message }),
    ...(error.detail ? [el('p', { class: 'error-detail', 'data-testid': 'photo-error-detail', text: error.detail })] : []),
    ...(meta.length ? [el('p', { class: 'muted small', 'data-testid': 'photo-error-meta', text: meta.join(' · ') })] : []),
  );
}

/** How to read the numbers, per `model.output_kind` (the server's words: softmax, logits, binary, multi_label). */
function kindNote(kind, count) {
  if (kind === 'multi_label') {
    return 'Each label judged on its own: how likely it applies to this photo. They need not add up to 100%.';
  }
  if (kind === 'binary') return 'A yes/no model: the two answers share 100%.';
  return `The ${count} most likely of the model’s classes, as shares of 100%.`;
}

function renderAnswer(box, item) {
  const { model, result } = item.answer;
  const kind = model.output_kind || 'softmax';
  const multi = kind === 'multi_label';
  const lang = model.labels_language || item.requestedLanguage || '';
  const id = `photo-${item.id}-${item.attempt}`;
  const rows = result.predictions.slice(0, item.topK || undefined).map((p, i) => {
    const meterId = `${id}-m${i}`;
    const label = el('label', { class: 'label', for: meterId, text: prettyLabel(p.label), title: p.class_id || '' });
    if (lang) label.lang = lang;
    const value = el('span', { class: 'value', text: percent(p.probability) });
    const head = el('div', { class: 'prediction-head' }, label);
    if (multi) {
      const yes = p.probability >= 0.5;
      head.append(el('span', { class: `verdict ${yes ? 'yes' : 'no'}`, text: yes ? 'likely' : 'unlikely' }));
    }
    head.append(value);
    const meter = el('meter', {
      id: meterId,
      min: 0,
      max: 1,
      value: p.probability,
      text: multi ? `${percent(p.probability)} likely` : percent(p.probability),
    });
    return el('li', { class: 'prediction', 'data-testid': 'prediction' }, head, meter);
  });
  const t = result.timing || {};
  const timing = el(
    'dl',
    { class: 'timing', 'data-testid': 'timing' },
    ...[
      ['Batch', String(t.batch_size ?? '–')],
      ['Queue', ms(t.queue_ms)],
      ['Inference', ms(t.inference_ms)],
      ['Decode', ms(t.decode_ms)],
    ].map(([name, v]) => el('div', {}, el('dt', { text: name }), el('dd', { text: v }))),
  );
  const version = typeof model.version === 'number' ? ` v${model.version}` : '';
  box.dataset.kind = kind;
  box.replaceChildren(
    el('p', { class: 'answer-by muted small', 'data-testid': 'answered-by' }, `${model.name}${version}`),
    el('p', { class: 'kind-note small', 'data-testid': 'kind-note', text: kindNote(kind, rows.length) }),
    el('ol', { class: `predictions ${multi ? 'multi' : ''}`, 'data-testid': 'predictions' }, ...rows),
    timing,
  );
}
