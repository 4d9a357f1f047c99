// The predictions of one photo: a label, its probability and a bar per row. For a multi-label
// model each row is its own yes/no likelihood (a verdict and a bar with its 50% mark).
Component({
  properties: {
    /** [{index, label, percent, likely}] from utils/view.js resultView(). */
    predictions: { type: Array, value: [] },
    /** True for `multi_label` answers: independent probabilities, not shares of one whole. */
    multi: { type: Boolean, value: false },
    /** Latin-script labels are capitalised; Chinese ones are left as they are. */
    latin: { type: Boolean, value: true },
    /** The verdict words, in the page's language. */
    likelyText: { type: String, value: '' },
    unlikelyText: { type: String, value: '' },
  },
});
