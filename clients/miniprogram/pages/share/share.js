// Where a share to a chat lands: the friend's result as a read-only card ("朋友认出了…") and a
// button to try it. The query carries the result; no photo of anyone is shown.
const { detectLanguage, table, translator } = require('../../utils/i18n.js');
const { SHARE_IMAGE, SHARE_PAGE, isSinglePage, readShared, shareQuery } = require('../../utils/share.js');

const HOME = '/pages/index/index';

Component({
  data: {
    lang: 'zh-CN',
    t: table('zh-CN'),
    theme: 'light',
    singlePage: false,
    shared: null,
    cardTitle: '',
    meta: '',
  },

  methods: {
    onLoad(query) {
      const lang = detectLanguage(wx);
      const t = translator(lang);
      const shared = readShared(query);
      let theme = 'light';
      try {
        const info = typeof wx.getAppBaseInfo === 'function' ? wx.getAppBaseInfo() : null;
        theme = info && info.theme === 'dark' ? 'dark' : 'light';
      } catch (err) {
        theme = 'light';
      }
      this.setData({
        lang,
        t: table(lang),
        theme,
        singlePage: isSinglePage(wx),
        shared,
        cardTitle: shared ? t('share.friendFound', { label: shared.label }) : t('share.friendEmpty'),
        meta: shared ? t('share.friendMeta', { percent: shared.percent, model: shared.model || '?' }) : '',
      });
      wx.setNavigationBarTitle({ title: t('app.title') });
      if (typeof wx.onThemeChange === 'function') {
        wx.onThemeChange((/** @type {any} */ res) => this.setData({ theme: res && res.theme === 'dark' ? 'dark' : 'light' }));
      }
    },

    /** "Try it": the main page, as a fresh start (the share page is not kept behind it). */
    onTryIt() {
      wx.reLaunch({ url: HOME });
    },

    /** Passing the card on shares the same result, with the same illustration. */
    onShareAppMessage() {
      const shared = this.data.shared;
      const t = translator(this.data.lang);
      if (!shared) return { title: t('share.plain'), path: HOME, imageUrl: SHARE_IMAGE };
      return {
        title: t('share.found', { label: shared.label }),
        path: `${SHARE_PAGE}?${shareQuery(shared)}`,
        imageUrl: SHARE_IMAGE,
      };
    },
  },
});
