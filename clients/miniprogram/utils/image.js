/** Getting a photo: camera or album through wx.chooseMedia, then shrinking it for the upload. */
const { ClientError, privacyError } = require('./errors.js');

/**
 * Lets the user take or pick one photo.
 * @param {WechatMiniprogram.Wx} wx
 * @param {'camera'|'album'} source
 * @returns {Promise<{path: string, size: number}|null>} null when the user cancelled
 */
function choosePhoto(wx, source) {
  return new Promise((resolve, reject) => {
    wx.chooseMedia({
      count: 1,
      mediaType: ['image'],
      sourceType: [source],
      sizeType: ['compressed'],
      camera: 'back',
      success: (res) => {
        const file = res && Array.isArray(res.tempFiles) ? res.tempFiles[0] : null;
        if (!file || !file.tempFilePath) {
          reject(new ClientError('device', 'error.noPhoto', { detail: 'empty tempFiles' }));
          return;
        }
        resolve({ path: file.tempFilePath, size: Number(file.size) || 0 });
      },
      fail: (/** @type {{errMsg?: string, errno?: number}} */ err) => {
        const errMsg = String((err && err.errMsg) || '');
        if (/cancel/i.test(errMsg)) {
          resolve(null);
        } else if (/privacy/i.test(errMsg) || (err && err.errno === 112)) {
          reject(privacyError(err));
        } else if (/auth|permission|deny|denied/i.test(errMsg)) {
          const key = source === 'camera' ? 'error.cameraDenied' : 'error.albumDenied';
          // The user refused once: WeChat will not ask again, only the settings page can undo it.
          reject(new ClientError('permission', key, { detail: errMsg, settings: true }));
        } else {
          reject(new ClientError('device', 'error.chooseFailed', { detail: errMsg }));
        }
      },
    });
  });
}

const QUARTER_TURNS = ['left', 'right', 'left-mirrored', 'right-mirrored'];

/**
 * How to shrink a photo so that its long side is at most `maxSide`: the one compressImage
 * dimension to set (the other follows the aspect ratio, so nothing is ever stretched), or null
 * when it is small enough already. EXIF orientation is applied first: a portrait phone photo is
 * stored landscape with orientation `right`.
 * @param {{width: number, height: number, orientation?: string}} info from wx.getImageInfo
 * @param {number} maxSide
 * @returns {{compressedWidth: number}|{compressedHeight: number}|null}
 */
function downscaleTarget(info, maxSide) {
  let width = Number(info && info.width) || 0;
  let height = Number(info && info.height) || 0;
  if (QUARTER_TURNS.includes(String(info && info.orientation))) [width, height] = [height, width];
  if (width <= 0 || height <= 0 || Math.max(width, height) <= maxSide) return null;
  return width >= height ? { compressedWidth: maxSide } : { compressedHeight: maxSide };
}

/** wx.getImageInfo as a promise of its answer, or null when it fails. */
function imageInfo(wx, src) {
  return new Promise((resolve) => {
    if (typeof wx.getImageInfo !== 'function') {
      resolve(null);
      return;
    }
    wx.getImageInfo({ src, success: resolve, fail: () => resolve(null) });
  });
}

/**
 * The file to upload for `photo`: shrunk to a long side of `maxSide` (the model needs 224 px,
 * a phone photo has 4000) and recompressed when it is larger than that or than `overBytes`.
 * A failing compression falls back to the original: the server then decides, with a message.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{path: string, size: number}} photo
 * @param {{maxSide: number, overBytes: number, quality: number}} opts
 * @returns {Promise<{path: string, compressed: boolean}>}
 */
async function prepareUpload(wx, photo, { maxSide, overBytes, quality }) {
  const original = { path: photo.path, compressed: false };
  if (typeof wx.compressImage !== 'function') return original;
  const info = await imageInfo(wx, photo.path);
  const target = info ? downscaleTarget(info, maxSide) : null;
  // Without the size we cannot tell: a large file is recompressed all the same.
  if (!target && !(photo.size > overBytes)) return original;
  return new Promise((resolve) => {
    wx.compressImage({
      src: photo.path,
      quality,
      ...(target || {}),
      success: (res) => resolve({ path: res.tempFilePath, compressed: true }),
      fail: () => resolve(original),
    });
  });
}

/**
 * A small thumbnail of `path` (for the history), or the path itself when compressing fails.
 * @param {WechatMiniprogram.Wx} wx
 * @returns {Promise<string>}
 */
function thumbnail(wx, path, side = 240) {
  return new Promise((resolve) => {
    if (typeof wx.compressImage !== 'function') {
      resolve(path);
      return;
    }
    wx.compressImage({
      src: path,
      quality: 60,
      compressedWidth: side,
      success: (res) => resolve(res.tempFilePath),
      fail: () => resolve(path),
    });
  });
}

module.exports = { choosePhoto, downscaleTarget, prepareUpload, thumbnail };
