// The one page: pick a model, take or choose a photo, see its predictions, past results, share.
// Built with Component() (as WeChat allows for pages) so tests can render it; logic is in utils/.
const config = require('../../config.js');
const { resolveBaseUrl, resolveEnv } = require('../../utils/env.js');
const { detectLanguage, labelsQuery, table, translator } = require('../../utils/i18n.js');
const { fetchModels } = require('../../utils/api.js');
const { choosePhoto } = require('../../utils/image.js');
const { classifyPhoto } = require('../../utils/classify.js');
const { saveToAlbum } = require('../../utils/album.js');
const { addToHistory, clearHistory, loadHistory } = require('../../utils/history.js');
const { errorView, historyView, resultView } = require('../../utils/view.js');

const PAGE_PATH = '/pages/index/index';
const PRIVACY_AGREE_BUTTON = 'agree-btn';

/**
 * What a page instance keeps outside its data (nothing the WXML renders): the upload in flight,
 * the pending privacy answer, the last photo source, a cancel tapped before the upload started.
 * @type {WeakMap<object, {upload: {abort: () => void}|null, privacyResolve: Function|null,
 *   lastSource: string, cancelRequested: boolean}>}
 */
const sessions = new WeakMap();

function session(page) {
  let s = sessions.get(page);
  if (!s) {
    s = { upload: null, privacyResolve: null, lastSource: '', cancelRequested: false };
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
};

Component({
  data: {
    lang: 'zh-CN',
    t: table('zh-CN'),
    develop: false,
    baseUrl: '',
    serverText: '',
    models: [],
    modelNames: [],
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
    onLoad() {
      const lang = detectLanguage(wx);
      const t = translator(lang);
      const develop = resolveEnv(wx) === 'develop';
      const baseUrl = resolveBaseUrl(wx);
      this.setData({
        lang,
        t: table(lang),
        develop,
        baseUrl,
        serverText: develop ? t('dev.server', { url: baseUrl }) : '',
        history: historyView(loadHistory(wx)),
      });
      wx.setNavigationBarTitle({ title: t('app.title') });
      if (typeof wx.showShareMenu === 'function') {
        wx.showShareMenu({ menus: ['shareAppMessage', 'shareTimeline'] });
      }
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

    /** The translator of the page's language. */
    t(key, params) {
      return translator(this.data.lang)(key, params);
    },

    async loadModels() {
      this.setData({ loadingModels: true, error: null });
      try {
        const { models, failed, defaultModel } = await fetchModels(wx, {
          baseUrl: this.data.baseUrl,
          timeoutMs: config.REQUEST_TIMEOUT_MS,
        });
        const index = Math.max(0, models.findIndex((m) => m.name === defaultModel));
        const failedList = failed.map((m) => (m.error ? `${m.name} (${m.error})` : m.name)).join(', ');
        this.setData({
          models,
          modelNames: models.map((m) => m.name),
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

    async classify(photo) {
      if (this.data.busy) return;
      session(this).cancelRequested = false;
      this.setData({ busy: true, error: null, ...EMPTY_RESULT, ...this.stage('preparing', 0) });
      try {
        const { result, uploadedPath } = await classifyPhoto(wx, photo, {
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
        this.setData({ busy: false, stage: '' });
        if (err && err.kind === 'cancelled') {
          wx.showToast({ title: this.t('toast.cancelled'), icon: 'none' });
        } else {
          this.showError(err, 'upload');
        }
      }
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
          label: top.label,
          probability: top.probability,
          outputKind: result.outputKind,
          model: result.model,
          labelsLanguage: result.labelsLanguage,
          time: Date.now(),
        },
        { limit: config.HISTORY_LIMIT },
      );
      this.setData({ history: historyView(entries) });
    },

    onCancelUpload() {
      const s = session(this);
      s.cancelRequested = true;
      if (s.upload) s.upload.abort();
    },

    showError(err, action) {
      const view = errorView(err, action, { t: (k, p) => this.t(k, p), develop: this.data.develop });
      const retryable =
        action === 'models' ||
        (action === 'upload' && Boolean(this.data.photo)) ||
        (action === 'choose' && !view.settings && view.code === 'permission');
      this.setData({ error: { ...view, retryable } });
    },

    onRetry() {
      const action = this.data.error && this.data.error.action;
      if (action === 'models') return this.loadModels();
      if (action === 'upload' && this.data.photo) return this.classify(this.data.photo);
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

    shareContent() {
      const top = this.data.predictions[0];
      if (!top) return { title: this.t('share.plain') };
      return { title: this.t('share.found', { label: top.label }), imageUrl: this.data.imagePath };
    },

    onShareAppMessage() {
      return { ...this.shareContent(), path: PAGE_PATH };
    },

    onShareTimeline() {
      return { ...this.shareContent(), query: '' };
    },
  },
});
