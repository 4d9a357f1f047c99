// kerasserve web page, photos before upload: decoded at the size sent (long side 1024 px), a few at a time.

import { t } from './strings.js';

export const MAX_SIDE = 1024;
export const PREPARE_PARALLEL = 3; // photos decoded at once: each holds at most one 1024 px bitmap
const JPEG_QUALITY = 0.9;
// What the server decodes as it is; anything else is converted here or refused before upload.
const SERVER_READS = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/bmp', 'image/tiff']);

/** 'HEIC' or 'AVIF' when the file is one (by its bytes, else its type or name), else ''. */
export async function containerFormat(file) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const brand = head.length >= 12 ? String.fromCharCode(...head.slice(4, 12)) : '';
  if (brand.startsWith('ftyp')) {
    const kind = brand.slice(4);
    if (/^avi[fs]$/.test(kind)) return 'AVIF';
    if (/^(hei[cxms]|hev[cxms]|mif1|msf1)$/.test(kind)) return 'HEIC';
  }
  const type = (file.type || '').toLowerCase();
  const name = (file.name || '').toLowerCase();
  if (type === 'image/avif' || name.endsWith('.avif')) return 'AVIF';
  if (/image\/hei[cf]/.test(type) || /\.hei[cf]$/.test(name)) return 'HEIC';
  return '';
}

/** The photo's displayed size (EXIF orientation applied) without decoding its pixels, or null. */
function displayedSize(file) {
  return new Promise((resolve) => {
    const img = new Image();
    const src = URL.createObjectURL(file);
    const done = (size) => {
      URL.revokeObjectURL(src);
      img.removeAttribute('src');
      resolve(size);
    };
    img.onload = () => done(img.naturalWidth ? { width: img.naturalWidth, height: img.naturalHeight } : null);
    img.onerror = () => done(null);
    img.src = src;
  });
}

/**
 * What to upload for `file`: `{blob, filename, width, height, sourceWidth, sourceHeight, scaled}`,
 * or `{refused: message}` for a HEIC/AVIF photo this browser cannot convert.
 *
 * A photo larger than MAX_SIDE is decoded straight at its upload size (`createImageBitmap` with
 * `resizeWidth`/`resizeHeight`), so a 12-megapixel photo never needs its 48 MB of full-size pixels;
 * smaller ones go as they are. HEIC and AVIF are always converted to JPEG (the server reads neither).
 * Any other file the browser cannot decode goes as it is: the server names what is wrong with it.
 */
export async function prepare(file) {
  const filename = file.name || 'photo';
  const format = await containerFormat(file);
  const asIs = { blob: file, filename, width: null, height: null, sourceWidth: null, sourceHeight: null, scaled: false };
  const size = await displayedSize(file);
  if (!size) {
    if (format) return { refused: t('format.unsupported', { format }), format };
    return asIs;
  }
  const { width: sourceWidth, height: sourceHeight } = size;
  const scale = Math.min(1, MAX_SIDE / Math.max(sourceWidth, sourceHeight));
  const convert = Boolean(format) || !SERVER_READS.has((file.type || 'image/jpeg').toLowerCase());
  if (scale === 1 && !convert) {
    return { blob: file, filename, width: sourceWidth, height: sourceHeight, sourceWidth, sourceHeight, scaled: false };
  }
  const width = Math.max(1, Math.round(sourceWidth * scale));
  const height = Math.max(1, Math.round(sourceHeight * scale));
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {
      imageOrientation: 'from-image',
      resizeWidth: width,
      resizeHeight: height,
      resizeQuality: 'high',
    });
  } catch (err) {
    if (format) return { refused: t('format.unsupported', { format }), format };
    return { ...asIs, sourceWidth, sourceHeight };
  }
  try {
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff'; // JPEG has no transparency: put see-through PNGs on white, not black
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
    canvas.width = canvas.height = 0; // free the backing store now, not at the next collection
    if (!blob) {
      if (format) return { refused: t('format.unsupported', { format }), format };
      return { ...asIs, sourceWidth, sourceHeight };
    }
    const jpegName = filename.replace(/\.[^.]*$/, '') + '.jpg';
    return { blob, filename: jpegName, width: bitmap.width, height: bitmap.height, sourceWidth, sourceHeight, scaled: scale < 1 };
  } finally {
    bitmap.close();
  }
}

/** Run `work(item)` for every item, at most `limit` at once; resolves when all have settled. */
export async function eachLimited(items, limit, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (err) {
        console.error(err); // one photo's failure must not stop the others
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} B`;
}
