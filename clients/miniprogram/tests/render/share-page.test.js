// Where a share to a chat lands: pages/share rendered by miniprogram-simulate with a fake wx.
const { attrsOf, load, mount, settle, textOf } = require('../support/simulate.js');
const { fakeWx } = require('../support/fake-wx.js');
const { STRINGS } = require('../../utils/strings.js');

const id = load('pages/share/share');
const ZH = STRINGS['zh-CN'];

function installWx({ language = 'zh_CN', scene = 1007, theme = 'light' } = {}) {
  const fake = fakeWx(
    {},
    {
      getAppBaseInfo: () => ({ language, theme }),
      getEnterOptionsSync: () => ({ scene, query: {} }),
      setNavigationBarTitle: () => {},
      onThemeChange: () => {},
      reLaunch: () => {},
    },
  );
  for (const [name, fn] of Object.entries(fake)) if (!['calls', 'tasks'].includes(name)) global.wx[name] = fn;
  return fake.calls;
}

async function openShare(query) {
  const page = mount(id);
  page.instance.onLoad(query);
  await settle();
  return page;
}

const text = (page, sel) => {
  const node = page.querySelector(sel);
  return node ? textOf(node) : null;
};
/** Text inside the card component (its nodes are in its own tree). */
const cardText = (page, sel) => text(page.querySelector('#shared-card'), sel);

test('a shared result lands on a read-only "朋友认出了…" card with the illustration and a try button', async () => {
  const calls = installWx();
  // The query as WeChat hands it to onLoad: the values still URL-encoded.
  const page = await openShare({ label: encodeURIComponent('虎斑猫'), p: '0.830', model: 'MobileNetV2' });
  const card = page.querySelector('#shared-card');
  expect(text(card, '#share-title')).toBe('朋友认出了：虎斑猫');
  expect(text(card, '#share-meta')).toBe('可能性 83% · 模型 MobileNetV2');
  expect(text(card, '#share-note')).toBe(ZH.share.noPhoto);
  const image = attrsOf(card, 'share-image');
  expect(image.src).toBe('/images/share-card.png');
  expect(image.ariaLabel).toBe(ZH.aria.card);
  // Read-only: nothing to upload, no camera, no album on this page.
  expect(page.querySelector('#camera-button')).toBeUndefined();
  expect(text(page, '#try-button')).toBe('我也试试');
  page.querySelector('#try-button').dispatchEvent('tap');
  await settle();
  expect(calls.find((c) => c.api === 'reLaunch').options.url).toBe('/pages/index/index');
});

test('passing the card on shares the same result and the same illustration', async () => {
  installWx();
  const page = await openShare({ label: 'tabby', p: '0.830', model: 'MobileNetV2' });
  expect(page.instance.onShareAppMessage()).toEqual({
    title: '图像识别认出了：tabby',
    path: '/pages/share/share?label=tabby&p=0.830&model=MobileNetV2',
    imageUrl: '/images/share-card.png',
  });
});

test.each([
  ['no result', {}],
  ['a probability out of range', { label: 'tabby', p: '7', model: 'm' }],
  ['a probability that is no number', { label: 'tabby', p: 'x', model: 'm' }],
  ['a label too long', { label: 'x'.repeat(200), p: '0.5', model: 'm' }],
])('%s lands on a plain invitation, not a broken card', async (_what, query) => {
  installWx();
  const page = await openShare(query);
  expect(cardText(page, '#share-title')).toBe(ZH.share.friendEmpty);
  expect(page.querySelector('#shared-card').querySelector('#share-meta')).toBeUndefined();
  expect(page.querySelector('#try-button')).toBeDefined();
});

test('in English, and dark', async () => {
  installWx({ language: 'en', theme: 'dark' });
  const page = await openShare({ label: 'tabby', p: '0.5', model: 'ResNet50' });
  expect(cardText(page, '#share-title')).toBe('A friend found: tabby');
  expect(page.querySelector('#page').dom.getAttribute('data-theme')).toBe('dark');
});

test('in Moments single-page mode the try button gives way to why it cannot work there', async () => {
  installWx({ scene: 1154 });
  const page = await openShare({ label: 'tabby', p: '0.5', model: 'ResNet50' });
  expect(page.querySelector('#try-button')).toBeUndefined();
  expect(text(page, '#single-page-note')).toBe(ZH.single.note);
});
