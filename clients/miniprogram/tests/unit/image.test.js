const { choosePhoto, downscaleTarget, prepareUpload } = require('../../utils/image.js');
const { classifyPhoto } = require('../../utils/classify.js');
const { answer, fakeWx, predictBody } = require('../support/fake-wx.js');

const photoAnswer = { success: { type: 'image', tempFiles: [{ tempFilePath: 'wxfile://a.jpg', size: 5e6, fileType: 'image' }] } };
const OPTS = { maxSide: 1024, overBytes: 1024 * 1024, quality: 80 };

test('chooseMedia asks for one image from the given source, compressed, back camera', async () => {
  const wx = fakeWx({ chooseMedia: () => photoAnswer });
  const photo = await choosePhoto(wx, 'camera');
  expect(photo).toEqual({ path: 'wxfile://a.jpg', size: 5e6 });
  expect(wx.calls[0].options).toMatchObject({
    count: 1,
    mediaType: ['image'],
    sourceType: ['camera'],
    sizeType: ['compressed'],
    camera: 'back',
  });
});

test('cancelling the picker is not an error', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail cancel' } }) });
  await expect(choosePhoto(wx, 'album')).resolves.toBeNull();
});

test('a refused camera says so and offers the settings page', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail auth deny' } }) });
  const err = await choosePhoto(wx, 'camera').catch((e) => e);
  expect(err.kind).toBe('permission');
  expect(err.key).toBe('error.cameraDenied');
  expect(err.settings).toBe(true);
  expect(err.message).toMatch(/may not use the camera/);
});

test('a refused album names the photos', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail auth denied' } }) });
  const err = await choosePhoto(wx, 'album').catch((e) => e);
  expect(err.key).toBe('error.albumDenied');
  expect(err.settings).toBe(true);
});

test('a refused privacy agreement (errno 104) asks for the agreement', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail privacy permission is not authorized', errno: 104 } }) });
  const err = await choosePhoto(wx, 'album').catch((e) => e);
  expect(err.kind).toBe('permission');
  expect(err.key).toBe('error.privacyRefused');
  expect(err.settings).toBe(false);
});

test.each([
  ['errno 112', { errMsg: 'chooseMedia:fail api scope is not declared in the privacy agreement', errno: 112 }],
  ['the message alone', { errMsg: 'chooseMedia:fail api scope is not declared in the privacy agreement' }],
  ['errno 112 with a bare message', { errMsg: 'chooseMedia:fail', errno: 112 }],
])('an API missing from the privacy guide (%s) is not shown as "please agree"', async (_what, fail) => {
  const wx = fakeWx({ chooseMedia: () => ({ fail }) });
  const err = await choosePhoto(wx, 'camera').catch((e) => e);
  expect(err.kind).toBe('config');
  expect(err.key).toBe('error.privacyUndeclared');
  expect(err.message).not.toMatch(/agree/i);
  expect(err.devKey).toBe('dev.privacyUndeclared');
});

test('an empty answer from the picker is an error', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ success: { tempFiles: [] } }) });
  const err = await choosePhoto(wx, 'album').catch((e) => e);
  expect(err.kind).toBe('device');
});

describe('downscaleTarget', () => {
  test.each([
    [{ width: 4032, height: 3024 }, { compressedWidth: 1024 }],
    [{ width: 3024, height: 4032 }, { compressedHeight: 1024 }],
    // A portrait photo stored landscape: its long side on screen is the stored height.
    [{ width: 4032, height: 3024, orientation: 'right' }, { compressedHeight: 1024 }],
    [{ width: 4032, height: 3024, orientation: 'left-mirrored' }, { compressedHeight: 1024 }],
    [{ width: 4032, height: 3024, orientation: 'down' }, { compressedWidth: 1024 }],
    [{ width: 2000, height: 2000 }, { compressedWidth: 1024 }],
    [{ width: 1024, height: 700 }, null],
    [{ width: 640, height: 480 }, null],
    [{ width: 0, height: 0 }, null],
  ])('%o -> %o', (info, target) => {
    expect(downscaleTarget(info, 1024)).toEqual(target);
  });
});

function imageWx(info, compress = { success: { tempFilePath: 'small.jpg' } }) {
  return fakeWx({
    getImageInfo: () => (info ? { success: info } : { fail: { errMsg: 'getImageInfo:fail' } }),
    compressImage: () => compress,
  });
}

test('a big phone photo is shrunk to a long side of 1024 px before upload', async () => {
  const wx = imageWx({ width: 4032, height: 3024, orientation: 'up' });
  const out = await prepareUpload(wx, { path: 'a.jpg', size: 3e6 }, OPTS);
  expect(out).toEqual({ path: 'small.jpg', compressed: true });
  const compress = wx.calls.find((c) => c.api === 'compressImage').options;
  expect(compress).toMatchObject({ src: 'a.jpg', quality: 80, compressedWidth: 1024 });
  expect(compress).not.toHaveProperty('compressedHeight');
});

test('a photo already small in pixels and bytes is uploaded as it is', async () => {
  const wx = imageWx({ width: 800, height: 600 });
  const out = await prepareUpload(wx, { path: 'a.jpg', size: 90000 }, OPTS);
  expect(out).toEqual({ path: 'a.jpg', compressed: false });
  expect(wx.calls.map((c) => c.api)).toEqual(['getImageInfo']);
});

test('small in pixels but heavy in bytes: recompressed without resizing', async () => {
  const wx = imageWx({ width: 1000, height: 800 });
  await prepareUpload(wx, { path: 'a.jpg', size: 5e6 }, OPTS);
  const compress = wx.calls.find((c) => c.api === 'compressImage').options;
  expect(compress).not.toHaveProperty('compressedWidth');
  expect(compress).not.toHaveProperty('compressedHeight');
});

test('unknown dimensions: a large file is still recompressed, a small one is not', async () => {
  const big = imageWx(null);
  expect(await prepareUpload(big, { path: 'a.jpg', size: 5e6 }, OPTS)).toEqual({ path: 'small.jpg', compressed: true });
  const small = imageWx(null);
  expect(await prepareUpload(small, { path: 'a.jpg', size: 5e4 }, OPTS)).toEqual({ path: 'a.jpg', compressed: false });
});

test('a failed compression uploads the original', async () => {
  const wx = imageWx({ width: 4000, height: 3000 }, { fail: { errMsg: 'compressImage:fail' } });
  const out = await prepareUpload(wx, { path: 'a.jpg', size: 5000 }, OPTS);
  expect(out).toEqual({ path: 'a.jpg', compressed: false });
});

test('classifyPhoto uploads the shrunk file to the chosen model, in the asked language', async () => {
  const wx = fakeWx({
    getImageInfo: () => ({ success: { width: 3000, height: 4000 } }),
    compressImage: () => ({ success: { tempFilePath: 'small.jpg' } }),
    uploadFile: () => answer(200, predictBody()),
  });
  let handle = null;
  const { result, uploadedPath } = await classifyPhoto(wx, { path: 'big.jpg', size: 5e6 }, {
    baseUrl: 'https://h', model: 'ResNet50', topK: 3, lang: 'zh-CN', uploadTimeoutMs: 1000,
    maxSide: 1024, compressOverBytes: 1e6, compressQuality: 80,
    onStart: (h) => {
      handle = h;
    },
  });
  expect(result.predictions[0].label).toBe('tabby');
  expect(uploadedPath).toBe('small.jpg');
  expect(typeof handle.abort).toBe('function');
  const upload = wx.calls.find((c) => c.api === 'uploadFile').options;
  expect(upload.filePath).toBe('small.jpg');
  expect(upload.url).toBe('https://h/v1/models/ResNet50/predict?top_k=3&lang=zh-CN');
  expect(wx.calls.find((c) => c.api === 'compressImage').options.compressedHeight).toBe(1024);
});
