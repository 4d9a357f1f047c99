// The top predictions of one photo: a label, its probability and a bar per row.
Component({
  properties: {
    /** [{index, label, percent}] from utils/view.js resultView(). */
    predictions: { type: Array, value: [] },
  },
});
