// The one page: pick a model, take or choose a photo, see its top predictions.
// Built with Component() (as WeChat allows for pages) so tests can render it; logic is in utils/.
const config = require('../../config.js');
const { resolveBaseUrl } = require('../../utils/env.js');
const { fetchModels } = require('../../utils/api.js');
const { choosePhoto } = require('../../utils/image.js');
const { classifyPhoto } = require('../../utils/classify.js');
const { saveToAlbum } = require('../../utils/album.js');
const { resultView, errorView } = require('../../utils/view.js');

Component({
  data: {
    baseUrl: '',
    models: [],
    modelNames: [],
    modelIndex: 0,
    model: '',
    loadingModels: false,
    weightsWarning: '',
    photo: null,
    imagePath: '',
    fromCamera: false,
    busy: false,
    predictions: [],
    timingText: '',
    resultModel: '',
    requestId: '',
    error: null,
  },

  methods: {
    onLoad() {
      this.setData({ baseUrl: resolveBaseUrl(wx) });
      return this.loadModels();
    },

    async loadModels() {
      this.setData({ loadingModels: true, error: null });
      try {
        const { models, defaultModel } = await fetchModels(wx, {
          baseUrl: this.data.baseUrl,
          timeoutMs: config.REQUEST_TIMEOUT_MS,
        });
        const index = Math.max(0, models.findIndex((m) => m.name === defaultModel));
        this.setData({ models, modelNames: models.map((m) => m.name), loadingModels: false });
        this.selectModel(index);
      } catch (err) {
        this.setData({ loadingModels: false, error: errorView(err, 'models') });
      }
    },

    selectModel(index) {
      const chosen = this.data.models[index];
      if (!chosen) return;
      this.setData({ modelIndex: index, model: chosen.name, weightsWarning: chosen.weights.warning });
    },

    onModelChange(event) {
      this.selectModel(Number(event.detail.value));
      // Predictions of another model would now be misleading next to the new name.
      if (this.data.photo) this.classify(this.data.photo);
    },

    onTakePhoto() {
      return this.pick('camera');
    },

    onChooseAlbum() {
      return this.pick('album');
    },

    async pick(source) {
      if (this.data.busy) return;
      let photo;
      try {
        photo = await choosePhoto(wx, source);
      } catch (err) {
        this.setData({ error: errorView(err, 'choose') });
        return;
      }
      if (!photo) return; // the user cancelled: nothing to say
      this.setData({ photo, imagePath: photo.path, fromCamera: source === 'camera' });
      await this.classify(photo);
    },

    async classify(photo) {
      if (this.data.busy) return;
      this.setData({ busy: true, error: null, predictions: [], timingText: '', requestId: '' });
      wx.showLoading({ title: 'Classifying…', mask: true });
      try {
        const result = await classifyPhoto(wx, photo, {
          baseUrl: this.data.baseUrl,
          model: this.data.model,
          topK: config.TOP_K,
          uploadTimeoutMs: config.UPLOAD_TIMEOUT_MS,
          compressOverBytes: config.COMPRESS_OVER_BYTES,
          compressQuality: config.COMPRESS_QUALITY,
        });
        const view = resultView(result);
        wx.hideLoading();
        this.setData({
          busy: false,
          ...view,
          weightsWarning: view.weightsWarning || this.data.weightsWarning,
        });
      } catch (err) {
        // hideLoading also closes toasts, so it goes first.
        wx.hideLoading();
        this.setData({ busy: false, error: errorView(err, 'upload') });
      }
    },

    onRetry() {
      const action = this.data.error && this.data.error.action;
      if (action === 'models') return this.loadModels();
      if (action === 'upload' && this.data.photo) return this.classify(this.data.photo);
      this.setData({ error: null });
      return undefined;
    },

    async onSave() {
      if (!this.data.imagePath) return;
      try {
        const outcome = await saveToAlbum(wx, this.data.imagePath);
        if (outcome === 'saved') wx.showToast({ title: 'Saved to album', icon: 'success' });
        else wx.showToast({ title: 'Not saved: no album permission', icon: 'none' });
      } catch (err) {
        this.setData({ error: errorView(err, 'save') });
      }
    },

    onShareAppMessage() {
      return { title: 'What is in this photo?', path: '/pages/index/index' };
    },
  },
});
