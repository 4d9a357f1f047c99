// A shared result as a card: the bundled illustration with the result written over it. It
// never shows a photo: shares carry the label, the likelihood and the model, nothing the user took.
const { SHARE_IMAGE } = require('../../utils/share.js');

Component({
  properties: {
    cardTitle: { type: String, value: '' },
    meta: { type: String, value: '' },
    note: { type: String, value: '' },
    imageAria: { type: String, value: '' },
  },
  data: {
    image: SHARE_IMAGE,
  },
});
