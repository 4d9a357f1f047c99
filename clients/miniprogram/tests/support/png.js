/** Writes real PNG files from Node alone (zlib), so the contract tests need no image fixtures. */
const zlib = require('zlib');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A PNG of `width`×`height`; `pixel(x, y)` gives [r, g, b] (or a gray level when `gray`).
 * @returns {Buffer}
 */
function png(width, height, pixel, { gray = false } = {}) {
  const channels = gray ? 1 : 3;
  const stride = width * channels + 1;
  const raw = Buffer.alloc(stride * height);
  if (pixel) {
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const value = pixel(x, y);
        const at = y * stride + 1 + x * channels;
        if (gray) raw[at] = value;
        else [raw[at], raw[at + 1], raw[at + 2]] = value;
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = gray ? 0 : 2; // colour type
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A colourful 320×240 test picture: a gradient with a disc in the middle. */
function testPicture() {
  return png(320, 240, (x, y) => {
    const inDisc = (x - 160) ** 2 + (y - 120) ** 2 < 60 ** 2;
    return inDisc ? [230, 120, 30] : [Math.round((x / 320) * 255), Math.round((y / 240) * 255), 128];
  });
}

module.exports = { png, testPicture, crc32 };
