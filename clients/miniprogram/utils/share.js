/**
 * What a share carries: the result (label, probability, model) in the page's query, never the
 * user's photo. The picture of a share is a bundled illustration; the landing page draws the
 * result on it, so nothing the user took is shown to anyone else.
 */

/** Landing page of a share to a chat. */
const SHARE_PAGE = '/pages/share/share';
/** The share picture (5:4, as WeChat crops chat shares): an illustration, not a photo. */
const SHARE_IMAGE = '/images/share-card.png';
/** Moments opens shared pages in single-page mode, with this scene value. */
const SCENE_SINGLE_PAGE = 1154;

const MAX_LABEL = 80;
const MAX_MODEL = 64;

/**
 * The query string of a shared result.
 * @param {{label: string, probability: number, model: string}} top
 */
function shareQuery({ label, probability, model }) {
  const p = Math.min(1, Math.max(0, Number(probability) || 0));
  return [
    `label=${encodeURIComponent(String(label).slice(0, MAX_LABEL))}`,
    `p=${p.toFixed(3)}`,
    `model=${encodeURIComponent(String(model).slice(0, MAX_MODEL))}`,
  ].join('&');
}

function decode(value) {
  try {
    return decodeURIComponent(String(value));
  } catch (err) {
    return String(value);
  }
}

/**
 * The shared result in a landing page's query (as onLoad receives it, values still encoded or
 * not), or null when it carries none or something unreadable.
 * @param {Record<string, string>|undefined} query
 * @returns {{label: string, probability: number, percent: number, model: string}|null}
 */
function readShared(query) {
  if (!query || typeof query.label !== 'string') return null;
  const label = decode(query.label).trim();
  const model = decode(query.model || '').trim();
  const probability = Number(query.p);
  if (!label || label.length > MAX_LABEL || model.length > MAX_MODEL) return null;
  if (!Number.isFinite(probability) || probability < 0 || probability > 1) return null;
  return { label, probability, percent: Math.round(probability * 100), model };
}

/**
 * True when the page runs in Moments' single-page mode (scene 1154), where the camera, the album
 * and login are not available.
 * @param {WechatMiniprogram.Wx} wx
 */
function isSinglePage(wx) {
  try {
    const options =
      typeof wx.getEnterOptionsSync === 'function'
        ? wx.getEnterOptionsSync()
        : typeof wx.getLaunchOptionsSync === 'function'
          ? wx.getLaunchOptionsSync()
          : null;
    return Boolean(options) && Number(options.scene) === SCENE_SINGLE_PAGE;
  } catch (err) {
    return false;
  }
}

module.exports = { SHARE_PAGE, SHARE_IMAGE, SCENE_SINGLE_PAGE, shareQuery, readShared, isSinglePage };
