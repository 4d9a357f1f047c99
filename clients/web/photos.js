// kerasserve web page, photos before upload: decode in the browser and shrink the long side to 1024 px.

export const MAX_SIDE = 1024;
const JPEG_QUALITY = 0.9;

/**
 * What to upload for `file`: `{blob, filename, width, height, sourceWidth, sourceHeight, scaled}`.
 *
 * Photos the browser decodes are shrunk to MAX_SIDE on their long side (EXIF orientation applied,
 * re-encoded as JPEG); smaller ones go as they are. A file the browser cannot decode also goes
 * as it is, with no size (`width` null): the server is the judge of what it reads, and its answer
 * names what is wrong with the file.
 */
export async function prepare(file) {
  const filename = file.name || 'photo';
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch (err) {
    return { blob: file, filename, width: null, height: null, sourceWidth: null, sourceHeight: null, scaled: false };
  }
  try {
    const sourceWidth = bitmap.width;
    const sourceHeight = bitmap.height;
    const scale = Math.min(1, MAX_SIDE / Math.max(sourceWidth, sourceHeight));
    if (scale === 1) {
      return { blob: file, filename, width: sourceWidth, height: sourceHeight, sourceWidth, sourceHeight, scaled: false };
    }
    const width = Math.max(1, Math.round(sourceWidth * scale));
    const height = Math.max(1, Math.round(sourceHeight * scale));
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff'; // JPEG has no transparency: put see-through PNGs on white, not black
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, width, height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
    if (!blob) {
      return { blob: file, filename, width: sourceWidth, height: sourceHeight, sourceWidth, sourceHeight, scaled: false };
    }
    const jpegName = filename.replace(/\.[^.]*$/, '') + '.jpg';
    return { blob, filename: jpegName, width, height, sourceWidth, sourceHeight, scaled: true };
  } finally {
    bitmap.close();
  }
}

export function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} B`;
}
