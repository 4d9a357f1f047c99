/**
 * Past results kept on the phone: a thumbnail, the top result, the model and the time, newest
 * first, at most `limit`, in wx storage (entries) and the user data folder (thumbnails, since
 * the photo's temporary file is gone after a restart). Clearing removes both.
 */
const { thumbnail } = require('./image.js');

const STORAGE_KEY = 'kerasserve.history.v1';

/** A promise over one callback-style call of the file system manager; false when it fails. */
function fsCall(fs, name, options) {
  return new Promise((resolve) => {
    if (!fs || typeof fs[name] !== 'function') {
      resolve(false);
      return;
    }
    fs[name]({ ...options, success: () => resolve(true), fail: () => resolve(false) });
  });
}

function fileSystem(wx) {
  try {
    return typeof wx.getFileSystemManager === 'function' ? wx.getFileSystemManager() : null;
  } catch (err) {
    return null;
  }
}

function isEntry(e) {
  return (
    e && typeof e === 'object' && typeof e.id === 'string' && typeof e.label === 'string' &&
    typeof e.time === 'number'
  );
}

/** Rows worth keeping of an answer: index, label and probability (at most 10). */
function compactPredictions(predictions) {
  if (!Array.isArray(predictions)) return [];
  return predictions
    .filter((p) => p && typeof p.label === 'string' && typeof p.probability === 'number')
    .slice(0, 10)
    .map((p) => ({ index: typeof p.index === 'number' ? p.index : -1, label: p.label, probability: p.probability }));
}

/**
 * The stored entries, newest first; [] when there are none or storage holds something else.
 * @param {WechatMiniprogram.Wx} wx
 */
function loadHistory(wx) {
  try {
    const stored = wx.getStorageSync(STORAGE_KEY);
    return Array.isArray(stored) ? stored.filter(isEntry) : [];
  } catch (err) {
    return [];
  }
}

/**
 * Records one result: makes and keeps a thumbnail, drops (and deletes) entries past `limit`.
 * A thumbnail that cannot be kept leaves the entry without one; a full storage keeps the old list.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{photoPath: string, label: string, probability: number, outputKind: string,
 *   model: string, labelsLanguage: string|null, time: number,
 *   predictions?: Array<{index: number, label: string, probability: number}>}} item
 * @param {{limit: number}} opts
 * @returns {Promise<Array<object>>} the entries now stored
 */
async function addToHistory(wx, item, { limit }) {
  const id = `${item.time.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const fs = fileSystem(wx);
  const userData = wx.env && wx.env.USER_DATA_PATH;
  let thumb = '';
  if (fs && userData) {
    const small = await thumbnail(wx, item.photoPath);
    const target = `${userData}/history-${id}.jpg`;
    if (await fsCall(fs, 'saveFile', { tempFilePath: small, filePath: target })) thumb = target;
  }
  const entry = {
    id,
    thumb,
    label: item.label,
    probability: item.probability,
    outputKind: item.outputKind,
    model: item.model,
    labelsLanguage: item.labelsLanguage || '',
    // The whole answer (top-k rows), so that tapping the entry opens its result again.
    predictions: compactPredictions(item.predictions),
    time: item.time,
  };
  const before = loadHistory(wx);
  const all = [entry, ...before];
  const kept = all.slice(0, limit);
  try {
    wx.setStorageSync(STORAGE_KEY, kept);
  } catch (err) {
    // Storage full (10 MB per mini-program): keep what was there, drop the new thumbnail.
    if (thumb) await fsCall(fs, 'unlink', { filePath: thumb });
    return before;
  }
  for (const old of all.slice(limit)) {
    if (old.thumb) await fsCall(fs, 'unlink', { filePath: old.thumb });
  }
  return kept;
}

/**
 * Deletes every entry and its thumbnail.
 * @param {WechatMiniprogram.Wx} wx
 */
async function clearHistory(wx) {
  const fs = fileSystem(wx);
  for (const entry of loadHistory(wx)) {
    if (entry.thumb) await fsCall(fs, 'unlink', { filePath: entry.thumb });
  }
  try {
    wx.removeStorageSync(STORAGE_KEY);
  } catch (err) {
    wx.setStorageSync(STORAGE_KEY, []);
  }
  return [];
}

module.exports = { STORAGE_KEY, loadHistory, addToHistory, clearHistory };
