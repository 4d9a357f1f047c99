const { SCOPE, saveToAlbum } = require('../../utils/album.js');
const { fakeWx } = require('../support/fake-wx.js');

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
  await expect(saveToAlbum(wx, 'a.jpg')).resolves.toBe('saved');
  expect(apis(wx)).toEqual(['getSetting', 'saveImageToPhotosAlbum']);
  expect(wx.calls[1].options.filePath).toBe('a.jpg');
});

test('never asked: authorizes, then saves', async () => {
  const wx = albumWx({ setting: undefined, authorize: true });
  await expect(saveToAlbum(wx, 'a.jpg')).resolves.toBe('saved');
  expect(apis(wx)).toEqual(['getSetting', 'authorize', 'saveImageToPhotosAlbum']);
  expect(wx.calls[1].options.scope).toBe('scope.writePhotosAlbum');
});

test('refused before: explains, opens the settings, saves once allowed', async () => {
  const wx = albumWx({ setting: false, modal: true, afterSetting: true });
  await expect(saveToAlbum(wx, 'a.jpg')).resolves.toBe('saved');
  expect(apis(wx)).toEqual(['getSetting', 'showModal', 'openSetting', 'saveImageToPhotosAlbum']);
});

test('refused now and declines the explanation: not saved, no error', async () => {
  const wx = albumWx({ setting: undefined, authorize: false, modal: false });
  await expect(saveToAlbum(wx, 'a.jpg')).resolves.toBe('denied');
  expect(apis(wx)).toEqual(['getSetting', 'authorize', 'showModal']);
});

test('leaves the setting off in the settings page: denied', async () => {
  const wx = albumWx({ setting: false, afterSetting: false });
  await expect(saveToAlbum(wx, 'a.jpg')).resolves.toBe('denied');
});

test('a failing save is an error with a message', async () => {
  const wx = albumWx({ setting: true, save: { fail: { errMsg: 'saveImageToPhotosAlbum:fail file not exists' } } });
  const err = await saveToAlbum(wx, 'a.jpg').catch((e) => e);
  expect(err.kind).toBe('device');
  expect(err.message).toBe('Could not save the photo to the album.');
});

test('a privacy refusal while authorizing is a permission error', async () => {
  const wx = fakeWx({
    getSetting: () => ({ success: { authSetting: {} } }),
    authorize: () => ({ fail: { errMsg: 'authorize:fail privacy permission is not authorized' } }),
  });
  const err = await saveToAlbum(wx, 'a.jpg').catch((e) => e);
  expect(err.kind).toBe('permission');
  expect(err.message).toMatch(/privacy guide/);
});

test('a failing getSetting is an error with a message', async () => {
  const wx = fakeWx({ getSetting: () => ({ fail: { errMsg: 'getSetting:fail' } }) });
  const err = await saveToAlbum(wx, 'a.jpg').catch((e) => e);
  expect(err.kind).toBe('permission');
});
