// kerasserve mini-program: everything happens on pages/index; the server URL is in config.js.
// No privacy prompt at launch: pages/index asks (wx.onNeedPrivacyAuthorization) the first time
// the camera or the album is used, which is when the user can see why.
App({});
