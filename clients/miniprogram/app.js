// kerasserve mini-program: everything happens on pages/index; the server URL is in config.js.
App({
  onLaunch() {
    // Ask for the privacy agreement early when the base library supports it, so the first tap
    // on "Take a photo" opens the camera rather than the agreement.
    if (typeof wx.requirePrivacyAuthorize === 'function') {
      wx.requirePrivacyAuthorize({ fail: () => {} });
    }
  },
});
