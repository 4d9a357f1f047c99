const { choosePhoto, compressIfLarge } = require('../../utils/image.js');
const { classifyPhoto } = require('../../utils/classify.js');
const { answer, fakeWx, predictBody } = require('../support/fake-wx.js');

const photoAnswer = { success: { type: 'image', tempFiles: [{ tempFilePath: 'wxfile://a.jpg', size: 5e6, fileType: 'image' }] } };

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

test('a refused camera says how to allow it', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail auth deny' } }) });
  const err = await choosePhoto(wx, 'camera').catch((e) => e);
  expect(err.kind).toBe('permission');
  expect(err.message).toMatch(/may not use the camera/);
});

test('a refused privacy agreement says so', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ fail: { errMsg: 'chooseMedia:fail privacy permission is not authorized', errno: 104 } }) });
  const err = await choosePhoto(wx, 'album').catch((e) => e);
  expect(err.kind).toBe('permission');
  expect(err.message).toMatch(/privacy guide/);
});

test('an empty answer from the picker is an error', async () => {
  const wx = fakeWx({ chooseMedia: () => ({ success: { tempFiles: [] } }) });
  const err = await choosePhoto(wx, 'album').catch((e) => e);
  expect(err.kind).toBe('device');
});

test('small photos are not recompressed', async () => {
  const wx = fakeWx({ compressImage: () => ({ success: { tempFilePath: 'small.jpg' } }) });
  const out = await compressIfLarge(wx, { path: 'a.jpg', size: 100 }, { overBytes: 1000, quality: 80 });
  expect(out).toEqual({ path: 'a.jpg', compressed: false });
  expect(wx.calls).toHaveLength(0);
});

test('large photos are recompressed at the configured quality', async () => {
  const wx = fakeWx({ compressImage: () => ({ success: { tempFilePath: 'small.jpg' } }) });
  const out = await compressIfLarge(wx, { path: 'a.jpg', size: 5000 }, { overBytes: 1000, quality: 70 });
  expect(out).toEqual({ path: 'small.jpg', compressed: true });
  expect(wx.calls[0].options).toMatchObject({ src: 'a.jpg', quality: 70 });
});

test('a failed compression uploads the original', async () => {
  const wx = fakeWx({ compressImage: () => ({ fail: { errMsg: 'compressImage:fail' } }) });
  const out = await compressIfLarge(wx, { path: 'a.jpg', size: 5000 }, { overBytes: 1000, quality: 80 });
  expect(out).toEqual({ path: 'a.jpg', compressed: false });
});

test('classifyPhoto uploads the compressed file to the chosen model', async () => {
  const wx = fakeWx({
    compressImage: () => ({ success: { tempFilePath: 'small.jpg' } }),
    uploadFile: () => answer(200, predictBody()),
  });
  const result = await classifyPhoto(wx, { path: 'big.jpg', size: 5e6 }, {
    baseUrl: 'https://h', model: 'ResNet50', topK: 3, uploadTimeoutMs: 1000,
    compressOverBytes: 1e6, compressQuality: 80,
  });
  expect(result.predictions[0].label).toBe('tabby');
  const upload = wx.calls.find((c) => c.api === 'uploadFile').options;
  expect(upload.filePath).toBe('small.jpg');
  expect(upload.url).toBe('https://h/v1/models/ResNet50/predict?top_k=3');
});
