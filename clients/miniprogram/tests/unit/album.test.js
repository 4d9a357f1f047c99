const { SCOPE, saveToAlbum } = require('../../utils/album.js');
const { translator } = require('../../utils/i18n.js');
const { fakeWx } = require('../support/fake-wx.js');

const zh = translator('zh-CN');

function albumWx({ setting, authorize, modal = true, afterSetting = true, save = {} }) {
  return fakeWx({
    getSetting: () => ({ success: { authSetting: setting === undefined ? {} : { [SCOPE]: setting } } }),
    authorize: () => (authorize ? { success: {} } : { fail: { errMsg: 'authorize:fail auth deny' } }),
    showModal: () => ({ success: { confirm: modal, cancel: !modal } }),
    openSetting: () => ({ success: { authSetting: { [SCOPE]: afterSetting } } }),
    saveImageToPhotosAlbum: () => save,
  });
}
const apis = (wx) => wx.calls.map((c) => c.api);

test('already allowed: saves straight away', async () => {
  const wx = albumWx({ setting: true });
  await expect(saveToAlbum(wx, 'a.jpg', zh)).resolves.toBe('saved');
  expect(apis(wx)).toEqual(['getSetting', 'saveImageToPhotosAlbum']);
  expect(wx.calls[1].options.filePath).toBe('a.jpg');
});

test('never asked: authorizes, then saves', async () => {
  const wx = albumWx({ setting: undefined, authorize: true });
  await expect(saveToAlbum(wx, 'a.jpg', zh)).resolves.toBe('saved');
  expect(apis(wx)).toEqual(['getSetting', 'authorize', 'saveImageToPhotosAlbum']);
  expect(wx.calls[1].options.scope).toBe('scope.writePhotosAlbum');
});

test('refused before: explains, opens the settings, saves once allowed', async () => {
  const wx = albumWx({ setting: false, modal: true, afterSetting: true });
  await expect(saveToAlbum(wx, 'a.jpg', zh)).resolves.toBe('saved');
  expect(apis(wx)).toEqual(['getSetting', 'showModal', 'openSetting', 'saveImageToPhotosAlbum']);
  // The explanation speaks the page's language.
  expect(wx.calls[1].options).toMatchObject({
    title: '允许保存照片',
    content: '要保存照片，请在设置中打开“添加到相册”。',
    confirmText: '去设置',
    cancelText: '暂不',
  });
});

test('refused now and declines the explanation: not saved, no error', async () => {
  const wx = albumWx({ setting: undefined, authorize: false, modal: false });
  await expect(saveToAlbum(wx, 'a.jpg', zh)).resolves.toBe('denied');
  expect(apis(wx)).toEqual(['getSetting', 'authorize', 'showModal']);
});

test('leaves the setting off in the settings page: denied', async () => {
  const wx = albumWx({ setting: false, afterSetting: false });
  await expect(saveToAlbum(wx, 'a.jpg', zh)).resolves.toBe('denied');
});

test('a failing save is an error with a message', async () => {
  const wx = albumWx({ setting: true, save: { fail: { errMsg: 'saveImageToPhotosAlbum:fail file not exists' } } });
  const err = await saveToAlbum(wx, 'a.jpg', zh).catch((e) => e);
  expect(err.kind).toBe('device');
  expect(err.key).toBe('error.saveFailed');
  expect(err.message).toBe('Could not save the photo to the album.');
});

test('a privacy refusal while authorizing is a permission error', async () => {
  const wx = fakeWx({
    getSetting: () => ({ success: { authSetting: {} } }),
    authorize: () => ({ fail: { errMsg: 'authorize:fail privacy permission is not authorized' } }),
  });
  const err = await saveToAlbum(wx, 'a.jpg', zh).catch((e) => e);
  expect(err.kind).toBe('permission');
  expect(err.key).toBe('error.privacyRefused');
});

test('an album API missing from the privacy guide is a configuration error, not "please agree"', async () => {
  const wx = albumWx({
    setting: true,
    save: { fail: { errMsg: 'saveImageToPhotosAlbum:fail api scope is not declared in the privacy agreement', errno: 112 } },
  });
  const err = await saveToAlbum(wx, 'a.jpg', zh).catch((e) => e);
  expect(err.kind).toBe('config');
  expect(err.key).toBe('error.privacyUndeclared');
  expect(err.devKey).toBe('dev.privacyUndeclared');
});

test('a failing getSetting is an error with a message', async () => {
  const wx = fakeWx({ getSetting: () => ({ fail: { errMsg: 'getSetting:fail' } }) });
  const err = await saveToAlbum(wx, 'a.jpg', zh).catch((e) => e);
  expect(err.kind).toBe('permission');
});
