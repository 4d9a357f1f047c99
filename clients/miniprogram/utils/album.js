/**
 * Saving a photo to the phone's album with the authorisation flow WeChat asks for:
 * getSetting → authorize when never asked → explain and openSetting when refused → save.
 */
const { ClientError, privacyError } = require('./errors.js');

const SCOPE = 'scope.writePhotosAlbum';

/** Promise over a callback-style wx API. */
function call(wx, name, options = {}) {
  return new Promise((resolve, reject) => {
    wx[name]({ ...options, success: resolve, fail: reject });
  });
}

/**
 * Makes sure the app may write to the album, asking or sending the user to the settings.
 * @param {WechatMiniprogram.Wx} wx
 * @param {(key: string) => string} t the page's translator, for the explanation
 * @returns {Promise<boolean>} true when allowed
 */
async function ensureAlbumPermission(wx, t) {
  const setting = await call(wx, 'getSetting');
  const granted = setting && setting.authSetting ? setting.authSetting[SCOPE] : undefined;
  if (granted === true) return true;
  if (granted === undefined) {
    try {
      await call(wx, 'authorize', { scope: SCOPE });
      return true;
    } catch (err) {
      if (/privacy/i.test(String((err && err.errMsg) || ''))) throw privacyError(err);
      // Refused just now: fall through to the explanation.
    }
  }
  const answer = await call(wx, 'showModal', {
    title: t('album.modalTitle'),
    content: t('album.modalContent'),
    confirmText: t('album.modalConfirm'),
    cancelText: t('album.modalCancel'),
  });
  if (!answer || !answer.confirm) return false;
  const after = await call(wx, 'openSetting');
  return Boolean(after && after.authSetting && after.authSetting[SCOPE]);
}

/**
 * Saves `filePath` to the album.
 * @param {WechatMiniprogram.Wx} wx
 * @param {string} filePath
 * @param {(key: string) => string} t the page's translator
 * @returns {Promise<'saved'|'denied'>} 'denied' when the user kept the permission off
 */
async function saveToAlbum(wx, filePath, t) {
  let allowed;
  try {
    allowed = await ensureAlbumPermission(wx, t);
  } catch (err) {
    if (err && err.isClientError) throw err;
    throw new ClientError('permission', 'error.permissionCheck', {
      detail: String((err && err.errMsg) || err),
    });
  }
  if (!allowed) return 'denied';
  try {
    await call(wx, 'saveImageToPhotosAlbum', { filePath });
  } catch (err) {
    const errMsg = String((err && err.errMsg) || '');
    if (/cancel/i.test(errMsg)) return 'denied';
    if (/privacy/i.test(errMsg)) throw privacyError(err);
    throw new ClientError('device', 'error.saveFailed', { detail: errMsg });
  }
  return 'saved';
}

module.exports = { SCOPE, ensureAlbumPermission, saveToAlbum };
