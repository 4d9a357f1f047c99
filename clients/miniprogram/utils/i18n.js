/** Which language the app speaks (Chinese first), and looking strings up in utils/strings.js. */
const { STRINGS } = require('./strings.js');

const LANGUAGES = Object.keys(STRINGS);
const DEFAULT_LANGUAGE = 'zh-CN';

/**
 * The app's language from WeChat's own: any Chinese setting gives zh-CN, anything else en.
 * Without `wx.getAppBaseInfo` (base library < 2.25.3) the app stays Chinese.
 * @param {WechatMiniprogram.Wx} wx
 * @returns {'zh-CN'|'en'}
 */
function detectLanguage(wx) {
  let language = '';
  try {
    const info = typeof wx.getAppBaseInfo === 'function' ? wx.getAppBaseInfo() : null;
    language = String((info && info.language) || '');
  } catch (err) {
    language = '';
  }
  if (language === '' || /^zh/i.test(language)) return 'zh-CN';
  return 'en';
}

/** The string table of `lang` (zh-CN for a language the app does not have). */
function table(lang) {
  return STRINGS[lang] || STRINGS[DEFAULT_LANGUAGE];
}

/** Looks `key` (`group.name`) up in `strings`; undefined when missing. */
function lookup(strings, key) {
  return String(key)
    .split('.')
    .reduce((node, part) => (node && typeof node === 'object' ? node[part] : undefined), strings);
}

/** `{name}` placeholders replaced by `params[name]`. */
function format(template, params = {}) {
  return String(template).replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/**
 * A `t(key, params)` for `lang`. A key missing from the table is a bug the strings test
 * catches; at run time it shows the key rather than nothing.
 * @param {string} lang
 * @returns {(key: string, params?: Record<string, string|number>) => string}
 */
function translator(lang) {
  const strings = table(lang);
  return (key, params) => {
    const template = lookup(strings, key);
    return typeof template === 'string' ? format(template, params) : key;
  };
}

/** What to send as `?lang=` so the server answers with labels in the app's language. */
function labelsQuery(lang) {
  return lang === 'zh-CN' ? 'zh-CN' : 'en';
}

/** The name of a labels language (`model.labels_language`) in the app's language, or ''. */
function languageName(t, labelsLanguage) {
  const code = String(labelsLanguage || '');
  if (/^zh/i.test(code)) return t('language.zhCN');
  if (/^en/i.test(code)) return t('language.en');
  return code;
}

/** True when labels in `labelsLanguage` read as the app's language `lang`. */
function sameLanguage(lang, labelsLanguage) {
  const primary = (code) => String(code || '').toLowerCase().split(/[-_]/)[0];
  return primary(lang) === primary(labelsLanguage);
}

module.exports = {
  LANGUAGES,
  DEFAULT_LANGUAGE,
  detectLanguage,
  table,
  lookup,
  format,
  translator,
  labelsQuery,
  languageName,
  sameLanguage,
};
