const { STORAGE_KEY, addToHistory, clearHistory, loadHistory } = require('../../utils/history.js');
const { fakeFs, fakeWx, memoryStorage } = require('../support/fake-wx.js');

function historyWx({ storage = memoryStorage(), fs = fakeFs(), compress = true } = {}) {
  let n = 0;
  const wx = fakeWx(
    {
      compressImage: () => {
        n += 1;
        return compress ? { success: { tempFilePath: `wxfile://tmp/thumb-${n}.jpg` } } : { fail: { errMsg: 'compressImage:fail' } };
      },
    },
    {
      getStorageSync: storage.getStorageSync,
      setStorageSync: storage.setStorageSync,
      removeStorageSync: storage.removeStorageSync,
      getFileSystemManager: () => fs.manager,
    },
  );
  wx.env = { USER_DATA_PATH: 'wxfile://usr' };
  return { wx, storage, fs };
}

const item = (label, time) => ({
  photoPath: `wxfile://tmp/${label}.jpg`,
  label,
  probability: 0.8,
  outputKind: 'softmax',
  model: 'MobileNetV2',
  labelsLanguage: 'zh-CN',
  time,
});

test('a result is kept with a thumbnail saved in the user data folder', async () => {
  const { wx, storage, fs } = historyWx();
  const entries = await addToHistory(wx, item('虎斑猫', 1000), { limit: 5 });
  expect(entries).toHaveLength(1);
  const [entry] = entries;
  expect(entry).toMatchObject({ label: '虎斑猫', probability: 0.8, model: 'MobileNetV2', time: 1000, labelsLanguage: 'zh-CN' });
  expect(entry.thumb).toMatch(/^wxfile:\/\/usr\/history-.+\.jpg$/);
  expect([...fs.files]).toEqual([entry.thumb]);
  // The thumbnail is a small copy of the photo, not the photo.
  const compress = wx.calls.find((c) => c.api === 'compressImage').options;
  expect(compress.src).toBe('wxfile://tmp/虎斑猫.jpg');
  expect(compress.compressedWidth).toBeLessThanOrEqual(320);
  expect(storage.store.get(STORAGE_KEY)).toEqual(entries);
  expect(loadHistory(wx)).toEqual(entries);
});

test('newest first, capped: the oldest entries go, and their thumbnails with them', async () => {
  const { wx, fs } = historyWx();
  for (let i = 1; i <= 5; i += 1) await addToHistory(wx, item(`l${i}`, i), { limit: 3 });
  const entries = loadHistory(wx);
  expect(entries.map((e) => e.label)).toEqual(['l5', 'l4', 'l3']);
  expect([...fs.files].sort()).toEqual(entries.map((e) => e.thumb).sort());
});

test('clearing removes every entry and every thumbnail', async () => {
  const { wx, storage, fs } = historyWx();
  await addToHistory(wx, item('a', 1), { limit: 5 });
  await addToHistory(wx, item('b', 2), { limit: 5 });
  expect(fs.files.size).toBe(2);
  await expect(clearHistory(wx)).resolves.toEqual([]);
  expect(fs.files.size).toBe(0);
  expect(storage.store.has(STORAGE_KEY)).toBe(false);
  expect(loadHistory(wx)).toEqual([]);
});

test('a thumbnail that cannot be saved leaves the entry without one', async () => {
  const fs = fakeFs();
  fs.manager.saveFile = ({ fail }) => setTimeout(() => fail({ errMsg: 'saveFile:fail the maximum size of the file storage limit is exceeded' }), 0);
  const { wx } = historyWx({ fs });
  const [entry] = await addToHistory(wx, item('a', 1), { limit: 5 });
  expect(entry.thumb).toBe('');
  expect(entry.label).toBe('a');
});

test('full storage keeps the old list and deletes the new thumbnail', async () => {
  const storage = memoryStorage();
  const { wx, fs } = historyWx({ storage });
  await addToHistory(wx, item('old', 1), { limit: 5 });
  storage.setStorageSync = () => {
    throw new Error('setStorageSync:fail exceed storage max size 10MB');
  };
  wx.setStorageSync = storage.setStorageSync;
  const after = await addToHistory(wx, item('new', 2), { limit: 5 });
  expect(after.map((e) => e.label)).toEqual(['old']);
  expect(fs.files.size).toBe(1);
});

test('storage holding something else reads as no history', () => {
  const storage = memoryStorage({ [STORAGE_KEY]: [{ nonsense: true }, 'x', { id: 'a', label: 'ok', time: 1 }] });
  const { wx } = historyWx({ storage });
  expect(loadHistory(wx).map((e) => e.label)).toEqual(['ok']);
});
