// The string tables: the same keys and parameters in zh-CN and en, Chinese first, and no
// user-facing text outside them.
const fs = require('fs');
const path = require('path');

const { STRINGS } = require('../../utils/strings.js');
const { detectLanguage, format, translator } = require('../../utils/i18n.js');

const ROOT = path.join(__dirname, '../..');

function flatten(node, prefix = '', out = {}) {
  for (const [key, value] of Object.entries(node)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object') flatten(value, name, out);
    else out[name] = value;
  }
  return out;
}

const zh = flatten(STRINGS['zh-CN']);
const en = flatten(STRINGS.en);
const params = (text) => [...String(text).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('the app speaks zh-CN and en', () => {
  expect(Object.keys(STRINGS).sort()).toEqual(['en', 'zh-CN']);
});

test('every key exists in both languages, as a non-empty string', () => {
  expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
  for (const [key, value] of [...Object.entries(zh), ...Object.entries(en)]) {
    expect({ key, ok: typeof value === 'string' && value.trim().length > 0 }).toEqual({ key, ok: true });
  }
});

test('both languages take the same parameters', () => {
  for (const key of Object.keys(zh)) {
    expect({ key, params: params(zh[key]) }).toEqual({ key, params: params(en[key]) });
  }
});

test('the Chinese table is Chinese (beyond names like HTTP, JPEG, config.js)', () => {
  const han = /[\u4e00-\u9fff]/;
  const exempt = ['dev.timing', 'dev.decode'];
  for (const [key, value] of Object.entries(zh)) {
    if (exempt.includes(key)) continue;
    expect({ key, chinese: han.test(value) }).toEqual({ key, chinese: true });
  }
  // The words of the original app.
  expect(STRINGS['zh-CN'].app.title).toBe('图像识别');
  expect(STRINGS['zh-CN'].action.camera).toBe('拍照识别');
  // The wording of issue 19.
  expect(STRINGS['zh-CN'].error.retryIn).toMatch(/^请 \{seconds\} 秒后再试/);
  expect(STRINGS['zh-CN'].code.image_too_large).toContain('分辨率太高');
  expect(STRINGS['zh-CN'].result.multiNote).toContain('不一定是 100%');
  expect(STRINGS['zh-CN'].share.friendFound).toMatch(/^朋友认出了/);
  expect(STRINGS['zh-CN'].action.album).toBe('使用相册图片');
  expect(STRINGS['zh-CN'].action.save).toBe('保存到相册');
});

test('developer text (server URL, config.js, domain checks) lives only under dev.*', () => {
  const devOnly = /config(\.local)?\.js|do not verify|不校验|Server:|服务器：|--host|errno|whitelist|合法域名/i;
  for (const table of [zh, en]) {
    for (const [key, value] of Object.entries(table)) {
      if (key.startsWith('dev.')) continue;
      expect({ key, devText: devOnly.test(value) }).toEqual({ key, devText: false });
    }
  }
});

test.each([
  ['zh_CN', 'zh-CN'],
  ['zh_TW', 'zh-CN'],
  ['zh_HK', 'zh-CN'],
  ['en', 'en'],
  ['en_US', 'en'],
  ['ja', 'en'],
])('WeChat language %s gives %s', (language, lang) => {
  expect(detectLanguage({ getAppBaseInfo: () => ({ language }) })).toBe(lang);
});

test('Chinese first: no language information means zh-CN', () => {
  expect(detectLanguage({})).toBe('zh-CN');
  expect(detectLanguage({ getAppBaseInfo: () => ({}) })).toBe('zh-CN');
  expect(detectLanguage({ getAppBaseInfo: () => { throw new Error('old base library'); } })).toBe('zh-CN');
});

test('translator fills parameters and shows a missing key rather than nothing', () => {
  expect(translator('zh-CN')('status.uploading', { percent: 42 })).toBe('上传中 42%');
  expect(translator('en')('status.uploading', { percent: 42 })).toBe('Uploading 42%');
  expect(translator('fr')('action.camera')).toBe('拍照识别');
  expect(translator('en')('no.such.key')).toBe('no.such.key');
  expect(format('{a} and {b}', { a: 1 })).toBe('1 and {b}');
});

/** The text a WXML file shows by itself: everything outside tags, comments and {{bindings}}. */
function literalText(wxml) {
  return wxml
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\{\{[\s\S]*?\}\}/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

test('templates show no literal words: every text comes from a table or from data', () => {
  const files = [
    'pages/index/index.wxml',
    'pages/share/share.wxml',
    'components/prediction-list/prediction-list.wxml',
    'components/share-card/share-card.wxml',
  ];
  for (const file of files) {
    const literal = literalText(fs.readFileSync(path.join(ROOT, file), 'utf8'));
    // Symbols only (arrow, warning sign, percent, middle dot).
    expect({ file, literal: literal.replace(/[▾⚠%·\s]/g, '') }).toEqual({ file, literal: '' });
  }
});

test('every {{t.…}} a template uses exists in both tables', () => {
  const wxml = ['pages/index/index.wxml', 'pages/share/share.wxml']
    .map((file) => fs.readFileSync(path.join(ROOT, file), 'utf8'))
    .join('\n');
  const keys = [...wxml.matchAll(/\bt\.([a-zA-Z]+\.[a-zA-Z]+)/g)].map((m) => m[1]);
  expect(keys.length).toBeGreaterThan(10);
  for (const key of keys) expect({ key, zh: key in zh, en: key in en }).toEqual({ key, zh: true, en: true });
});
