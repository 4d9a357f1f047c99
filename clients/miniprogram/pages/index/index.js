// The main page: pick a model, take or choose a photo, see its predictions, past results, share.
// Built with Component() (as WeChat allows for pages) so tests can render it; logic is in utils/.
// Opened from Moments (single-page mode, scene 1154) it shows the shared result and no camera.
const config = require('../../config.js');
const { resolveBaseUrl, resolveEnv } = require('../../utils/env.js');
const { detectLanguage, labelsQuery, table, translator } = require('../../utils/i18n.js');
const { fetchModels } = require('../../utils/api.js');
const { createAuth, withToken } = require('../../utils/auth.js');
const { SHARE_IMAGE, SHARE_PAGE, isSinglePage, readShared, shareQuery } = require('../../utils/share.js');
const { choosePhoto } = require('../../utils/image.js');
const { classifyPhoto } = require('../../utils/classify.js');
const { saveToAlbum } = require('../../utils/album.js');
const { addToHistory, clearHistory, loadHistory } = require('../../utils/history.js');
const { entryResult, errorView, historyView, resultView, shortTime } = require('../../utils/view.js');

const PRIVACY_AGREE_BUTTON = 'agree-btn';

/**
 * What a page instance keeps outside its data (nothing the WXML renders): the upload in flight,
 * the pending privacy answer, the last photo source, a cancel tapped before the upload started,
 * the login, the wait before an automatic retry, the network listener armed after a failure.
 * @type {WeakMap<object, {upload: {abort: () => void}|null, privacyResolve: Function|null,
 *   lastSource: string, cancelRequested: boolean, auth: any, stopWait: Function|null,
 *   networkListener: Function|null}>}
 */
const sessions = new WeakMap();

function session(page) {
  let s = sessions.get(page);
  if (!s) {
    s = {
      upload: null,
      privacyResolve: null,
      lastSource: '',
      cancelRequested: false,
      auth: null,
      stopWait: null,
      networkListener: null,
    };
    sessions.set(page, s);
  }
  return s;
}

const EMPTY_RESULT = {
  predictions: [],
  multiLabel: false,
  resultTitle: '',
  resultNote: '',
  labelsNote: '',
  labelsLatin: true,
  timingText: '',
  resultModel: '',
  requestId: '',
  historyText: '',
};

/** WeChat's theme ('light' or 'dark'); light where the base library does not say. */
function currentTheme() {
  try {
    const info = typeof wx.getAppBaseInfo === 'function' ? wx.getAppBaseInfo() : null;
    return info && info.theme === 'dark' ? 'dark' : 'light';
  } catch (err) {
    return 'light';
  }
}

Component({
  data: {
    lang: 'zh-CN',
    t: table('zh-CN'),
    theme: 'light',
    singlePage: false,
    shared: null,
    pickerAria: '',
    develop: false,
    baseUrl: '',
    serverText: '',
    models: [],
    modelNames: [],
    manyModels: false,
    modelIndex: 0,
    model: '',
    loadingModels: false,
    weightsWarning: '',
    failedModelsText: '',
    photo: null,
    imagePath: '',
    fromCamera: false,
    busy: false,
    stage: '',
    progress: 0,
    statusText: '',
    ...EMPTY_RESULT,
    error: null,
    history: [],
    privacyVisible: false,
  },

  methods: {
    onLoad(query) {
      const lang = detectLanguage(wx);
      const t = translator(lang);
      const develop = resolveEnv(wx) === 'develop';
      const baseUrl = resolveBaseUrl(wx);
      const singlePage = isSinglePage(wx);
      const shared = readShared(query);
      this.setData({
        lang,
        t: table(lang),
        theme: currentTheme(),
        singlePage,
        shared: shared && this.sharedView(shared),
        develop,
        baseUrl,
        serverText: develop ? t('dev.server', { url: baseUrl }) : '',
        history: singlePage ? [] : this.historyData(loadHistory(wx)),
      });
      wx.setNavigationBarTitle({ title: t('app.title') });
      if (typeof wx.onThemeChange === 'function') {
        wx.onThemeChange((/** @type {any} */ res) => this.setData({ theme: res && res.theme === 'dark' ? 'dark' : 'light' }));
      }
      // Moments' single-page mode has no camera, album or login: show the shared result only.
      if (singlePage) return undefined;
      if (typeof wx.showShareMenu === 'function') {
        wx.showShareMenu({ menus: ['shareAppMessage', 'shareTimeline'] });
      }
      session(this).auth = createAuth(wx, { baseUrl, timeoutMs: config.REQUEST_TIMEOUT_MS });
      // Privacy at first use: WeChat calls this when chooseMedia (or saving) needs the
      // agreement; our own sheet asks, and the pending call goes on or fails with the answer.
      if (typeof wx.onNeedPrivacyAuthorization === 'function') {
        wx.onNeedPrivacyAuthorization((/** @type {any} */ resolve) => {
          session(this).privacyResolve = resolve;
          this.setData({ privacyVisible: true });
          resolve({ event: 'exposureAuthorization' });
        });
      }
      return this.loadModels();
    },

    onUnload() {
      const s = session(this);
      if (s.stopWait) s.stopWait();
      this.disarmNetworkRetry();
    },

    /** The texts of a shared result's card. */
    sharedView(shared) {
      return {
        title: this.t('share.friendFound', { label: shared.label }),
        meta: this.t('share.friendMeta', { percent: shared.percent, model: shared.model || '?' }),
      };
    },

    /** History rows with their accessible names. */
    historyData(entries) {
      return historyView(entries).map((row) => ({
        ...row,
        aria: this.t('aria.historyItem', { label: row.label, percent: row.percentText }),
        thumbAria: this.t('aria.thumb', { label: row.label }),
      }));
    },

    /** The translator of the page's language. */
    t(key, params) {
      return translator(this.data.lang)(key, params);
    },

    async loadModels() {
      this.setData({ loadingModels: true, error: null });
      try {
        // The first call logs in (wx.login, then POST /v1/auth/wechat) and keeps the token.
        const { models, failed, defaultModel } = await withToken(session(this).auth, (token) =>
          fetchModels(wx, { baseUrl: this.data.baseUrl, timeoutMs: config.REQUEST_TIMEOUT_MS, token }),
        );
        const index = Math.max(0, models.findIndex((m) => m.name === defaultModel));
        const failedList = failed.map((m) => (m.error ? `${m.name} (${m.error})` : m.name)).join(', ');
        this.setData({
          models,
          modelNames: models.map((m) => m.name),
          // One served model: nothing to choose, so the picker is hidden.
          manyModels: models.length > 1,
          loadingModels: false,
          failedModelsText: failed.length ? this.t('dev.failedModels', { list: failedList }) : '',
        });
        this.selectModel(index);
      } catch (err) {
        this.showError(err, 'models');
        this.setData({ loadingModels: false });
      }
    },

    selectModel(index) {
      const chosen = this.data.models[index];
      if (!chosen) return;
      this.setData({
        modelIndex: index,
        model: chosen.name,
        weightsWarning: chosen.weights.random ? this.t('warn.randomWeights') : '',
        pickerAria: this.t('aria.picker', { model: chosen.name }),
      });
    },

    onModelChange(event) {
      this.selectModel(Number(event.detail.value));
      // Predictions of another model would now be misleading next to the new name.
      if (this.data.photo) return this.classify(this.data.photo);
      return undefined;
    },

    onTakePhoto() {
      return this.pick('camera');
    },

    onChooseAlbum() {
      return this.pick('album');
    },

    async pick(source) {
      if (this.data.busy) return;
      session(this).lastSource = source;
      let photo;
      try {
        photo = await choosePhoto(wx, source);
      } catch (err) {
        this.showError(err, 'choose');
        return;
      }
      if (!photo) return; // the user cancelled: nothing to say
      this.setData({ photo, imagePath: photo.path, fromCamera: source === 'camera' });
      await this.classify(photo);
    },

    /**
     * Classifies `photo`. An overloaded server (503 with Retry-After) is asked once more after the
     * wait it named; `auto` marks that second try (and a retry when the network came back).
     */
    async classify(photo, auto = false) {
      if (this.data.busy) return;
      session(this).cancelRequested = false;
      this.disarmNetworkRetry();
      this.setData({ busy: true, error: null, ...EMPTY_RESULT, ...this.stage('preparing', 0) });
      try {
        const { result, uploadedPath } = await classifyPhoto(wx, photo, {
          auth: session(this).auth,
          baseUrl: this.data.baseUrl,
          model: this.data.model,
          topK: config.TOP_K,
          lang: labelsQuery(this.data.lang),
          uploadTimeoutMs: config.UPLOAD_TIMEOUT_MS,
          maxSide: config.MAX_UPLOAD_SIDE,
          compressOverBytes: config.COMPRESS_OVER_BYTES,
          compressQuality: config.COMPRESS_QUALITY,
          onStart: (upload) => {
            session(this).upload = upload;
            if (session(this).cancelRequested) upload.abort();
            else this.setData(this.stage('uploading', 0));
          },
          onProgress: (percent) => {
            if (this.data.busy) this.setData(this.stage(percent >= 100 ? 'classifying' : 'uploading', percent));
          },
        });
        const view = resultView(result, { t: (k, p) => this.t(k, p), lang: this.data.lang, develop: this.data.develop });
        session(this).upload = null;
        this.setData({
          busy: false,
          stage: '',
          ...view,
          weightsWarning: view.weightsWarning || this.data.weightsWarning,
        });
        await this.remember(result, uploadedPath);
      } catch (err) {
        session(this).upload = null;
        if (err && err.kind === 'cancelled') {
          this.setData({ busy: false, stage: '' });
          wx.showToast({ title: this.t('toast.cancelled'), icon: 'none' });
          return;
        }
        if (!auto && this.waitable(err)) {
          const waited = await this.waitToRetry(err.retryAfter);
          this.setData({ busy: false, stage: '' });
          if (waited) await this.classify(photo, true);
          else wx.showToast({ title: this.t('toast.cancelled'), icon: 'none' });
          return;
        }
        this.setData({ busy: false, stage: '' });
        this.showError(err, 'upload');
      }
    },

    /** True for a 503 whose Retry-After is short enough to wait for with the page open. */
    waitable(err) {
      const after = err && err.status === 503 ? Number(err.retryAfter) : NaN;
      return Number.isFinite(after) && after > 0 && after <= config.AUTO_RETRY_MAX_WAIT_S;
    },

    /** Waits `seconds` with a countdown; false when the user cancelled the wait. */
    waitToRetry(seconds) {
      const s = session(this);
      return new Promise((resolve) => {
        let left = Math.ceil(seconds);
        const show = () => this.setData({ stage: 'waiting', progress: 0, statusText: this.t('status.waiting', { seconds: left }) });
        show();
        const timer = setInterval(() => {
          left -= 1;
          if (left > 0) {
            show();
            return;
          }
          finish(true);
        }, 1000);
        const finish = (waited) => {
          clearInterval(timer);
          s.stopWait = null;
          resolve(waited);
        };
        s.stopWait = () => finish(false);
      });
    },

    stage(stage, progress) {
      const key = { preparing: 'status.preparing', uploading: 'status.uploading', classifying: 'status.classifying' }[stage];
      return { stage, progress, statusText: this.t(key, { percent: progress }) };
    },

    async remember(result, uploadedPath) {
      const top = result.predictions[0];
      if (!top) return;
      const entries = await addToHistory(
        wx,
        {
          photoPath: uploadedPath,
          predictions: result.predictions,
          label: top.label,
          probability: top.probability,
          outputKind: result.outputKind,
          model: result.model,
          labelsLanguage: result.labelsLanguage,
          time: Date.now(),
        },
        { limit: config.HISTORY_LIMIT },
      );
      this.setData({ history: this.historyData(entries) });
    },

    /** Tapping a history entry shows its result again (from the phone; nothing is uploaded). */
    onOpenHistory(event) {
      if (this.data.busy) return;
      const wanted = event && event.currentTarget && event.currentTarget.dataset.id;
      const entry = loadHistory(wx).find((e) => e.id === wanted);
      if (!entry) return;
      const view = resultView(entryResult(entry), { t: (k, p) => this.t(k, p), lang: this.data.lang, develop: false });
      this.setData({
        error: null,
        photo: null,
        imagePath: entry.thumb || '',
        fromCamera: false,
        ...view,
        resultModel: entry.model,
        historyText: this.t('history.savedAt', { time: shortTime(entry.time) }),
      });
      if (typeof wx.pageScrollTo === 'function') wx.pageScrollTo({ scrollTop: 0, duration: 200 });
    },

    onCancelUpload() {
      const s = session(this);
      s.cancelRequested = true;
      if (s.stopWait) s.stopWait();
      if (s.upload) s.upload.abort();
    },

    showError(err, action) {
      const view = errorView(err, action, { t: (k, p) => this.t(k, p), develop: this.data.develop });
      const retryable =
        action === 'models' ||
        (action === 'upload' && Boolean(this.data.photo)) ||
        (action === 'choose' && !view.settings && view.code === 'permission');
      const offline = retryable && (view.code === 'network' || view.code === 'timeout') && action !== 'choose';
      this.setData({ error: { ...view, retryable, networkText: offline ? this.t('error.networkBack') : '' } });
      if (offline) this.armNetworkRetry();
    },

    /** After a network failure, tries once more by itself when WeChat reports the network back. */
    armNetworkRetry() {
      if (typeof wx.onNetworkStatusChange !== 'function') return;
      this.disarmNetworkRetry();
      const listener = (/** @type {any} */ res) => {
        if (!res || !res.isConnected) return;
        this.disarmNetworkRetry();
        if (this.data.error && this.data.error.retryable && !this.data.busy) this.onRetry(true);
      };
      session(this).networkListener = listener;
      wx.onNetworkStatusChange(listener);
    },

    disarmNetworkRetry() {
      const s = session(this);
      if (!s.networkListener) return;
      if (typeof wx.offNetworkStatusChange === 'function') wx.offNetworkStatusChange(/** @type {any} */ (s.networkListener));
      s.networkListener = null;
    },

    onRetry(auto = false) {
      const action = this.data.error && this.data.error.action;
      if (action === 'models') return this.loadModels();
      if (action === 'upload' && this.data.photo) return this.classify(this.data.photo, auto === true);
      const { lastSource } = session(this);
      if (action === 'choose' && lastSource) {
        this.setData({ error: null });
        return this.pick(lastSource);
      }
      this.setData({ error: null });
      return undefined;
    },

    onOpenSetting() {
      return new Promise((resolve) => {
        wx.openSetting({
          success: () => {
            // Whatever they changed, the next tap tries again with the new settings.
            this.setData({ error: null });
            resolve(true);
          },
          fail: () => resolve(false),
        });
      });
    },

    async onSave() {
      if (!this.data.imagePath) return;
      try {
        const outcome = await saveToAlbum(wx, this.data.imagePath, (k) => this.t(k));
        const key = outcome === 'saved' ? 'toast.saved' : 'toast.notSaved';
        wx.showToast({ title: this.t(key), icon: outcome === 'saved' ? 'success' : 'none' });
      } catch (err) {
        this.showError(err, 'save');
      }
    },

    onClearHistory() {
      const count = this.data.history.length;
      if (!count) return Promise.resolve(false);
      return new Promise((resolve) => {
        wx.showModal({
          title: this.t('history.confirmTitle'),
          content: this.t('history.confirmContent', { count }),
          confirmText: this.t('history.confirm'),
          cancelText: this.t('history.cancel'),
          success: async (res) => {
            if (!res || !res.confirm) {
              resolve(false);
              return;
            }
            await clearHistory(wx);
            this.setData({ history: [] });
            resolve(true);
          },
          fail: () => resolve(false),
        });
      });
    },

    onAgreePrivacy() {
      this.answerPrivacy({ buttonId: PRIVACY_AGREE_BUTTON, event: 'agree' });
    },

    onDisagreePrivacy() {
      this.answerPrivacy({ event: 'disagree' });
    },

    answerPrivacy(answer) {
      const s = session(this);
      const resolve = s.privacyResolve;
      s.privacyResolve = null;
      this.setData({ privacyVisible: false });
      if (resolve) resolve(answer);
    },

    onOpenPrivacyContract() {
      if (typeof wx.openPrivacyContract === 'function') wx.openPrivacyContract({});
    },

    /**
     * The shared result: its label, probability and model travel in the query; the picture is the
     * bundled illustration, never the user's photo (no user content is shown to others).
     */
    shareContent() {
      const top = this.data.predictions[0];
      if (!top) return { title: this.t('share.plain'), query: '', imageUrl: SHARE_IMAGE };
      const query = shareQuery({ label: top.label, probability: top.percent / 100, model: this.data.resultModel.replace(/ v\d+$/, '') });
      return { title: this.t('share.found', { label: top.label }), query, imageUrl: SHARE_IMAGE };
    },

    onShareAppMessage() {
      const { title, query, imageUrl } = this.shareContent();
      return { title, path: query ? `${SHARE_PAGE}?${query}` : SHARE_PAGE, imageUrl };
    },

    /** Moments opens this page in single-page mode with the query: it shows the shared card. */
    onShareTimeline() {
      return this.shareContent();
    },
  },
});
