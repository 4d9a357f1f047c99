/** Getting a photo: camera or album through wx.chooseMedia, then compressing it when large. */
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
          reject(new ClientError('device', 'No photo came back. Try again.', { detail: 'empty tempFiles' }));
          return;
        }
        resolve({ path: file.tempFilePath, size: Number(file.size) || 0 });
      },
      fail: (err) => {
        const errMsg = String((err && err.errMsg) || '');
        if (/cancel/i.test(errMsg)) {
          resolve(null);
        } else if (/privacy/i.test(errMsg)) {
          reject(privacyError(errMsg));
        } else if (/auth|permission|deny|denied/i.test(errMsg)) {
          const what = source === 'camera' ? 'the camera' : 'your photos';
          reject(
            new ClientError(
              'permission',
              `The app may not use ${what}. Allow it in the settings (··· › Settings) and try again.`,
              { detail: errMsg },
            ),
          );
        } else {
          reject(new ClientError('device', 'Could not get the photo. Try again.', { detail: errMsg }));
        }
      },
    });
  });
}

/**
 * Recompresses a photo over `overBytes`; returns the path to upload. A failed compression falls
 * back to the original file (the server still decides whether it is too large, with a message).
 * @param {WechatMiniprogram.Wx} wx
 * @param {{path: string, size: number}} photo
 * @param {{overBytes: number, quality: number}} opts
 * @returns {Promise<{path: string, compressed: boolean}>}
 */
function compressIfLarge(wx, photo, { overBytes, quality }) {
  if (!(photo.size > overBytes) || typeof wx.compressImage !== 'function') {
    return Promise.resolve({ path: photo.path, compressed: false });
  }
  return new Promise((resolve) => {
    wx.compressImage({
      src: photo.path,
      quality,
      success: (res) => resolve({ path: res.tempFilePath, compressed: true }),
      fail: () => resolve({ path: photo.path, compressed: false }),
    });
  });
}

module.exports = { choosePhoto, compressIfLarge };
