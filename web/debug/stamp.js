// The capture stamp drawn into video pixels: a port of crates/zego-media/src/stamp.rs, so a page can read the
// stamp of the SDK's synthetic camera off a <video> and stamp a canvas it publishes itself.
//
// Layout: a strip across the top of the frame, 3 rows of 40 square blocks, each block one bit (luma 16 = 0,
// 235 = 1). The 120 bits are the magic byte 0xA5, the 64-bit capture time (wall-clock unix microseconds), the
// low 32 bits of the frame number and a CRC-16/CCITT-FALSE over those 13 bytes, all big-endian. A block is a
// fortieth of the width rounded down to a multiple of 4 (at least 4). Reading averages the block interiors
// (a quarter block in from each edge); a mean that is neither clearly dark (<= 90) nor clearly bright
// (>= 160), a wrong magic byte or a CRC mismatch reads as no stamp.
//
// Browsers hand out RGB, not luma: readStamp converts each pixel to BT.601 limited-range luma
// (16 + 219 * Y'/255), the inverse of what a decoder's YUV -> RGB does, so the thresholds are the Rust ones.
// drawStamp paints black and white, which an encoder turns back into luma 16 and 235.

export const COLUMNS = 40;
export const ROWS = 3;
export const MIN_BLOCK = 4;
export const MAGIC = 0xa5;
const BITS = COLUMNS * ROWS;
const BYTES = BITS / 8;
const MAX_DARK = 90;
const MIN_BRIGHT = 160;

/** Side in pixels of one block for a frame size, or null if the frame is too small to carry a stamp. */
export function blockSize(width, height) {
  const block = Math.floor(width / COLUMNS) & ~3;
  return block >= MIN_BLOCK && height >= block * ROWS ? block : null;
}

/** Height in pixels of the stamp strip (0 if none fits). */
export function stripHeight(width, height) {
  const block = blockSize(width, height);
  return block === null ? 0 : block * ROWS;
}

/** CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF). */
export function crc16(bytes) {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The 15 payload bytes of a stamp. `captureMicros` is a Number or a BigInt; only the low 32 bits of `frame` count. */
export function encodePayload(captureMicros, frame) {
  const bytes = new Uint8Array(BYTES);
  const view = new DataView(bytes.buffer);
  bytes[0] = MAGIC;
  view.setBigUint64(1, BigInt.asUintN(64, BigInt(captureMicros)));
  view.setUint32(9, Number(BigInt.asUintN(32, BigInt(frame))));
  view.setUint16(13, crc16(bytes.subarray(0, 13)));
  return bytes;
}

/**
 * The stamp in 15 payload bytes, or null for a wrong magic byte or CRC. `captureMicros` is a Number (exact up to
 * 2^53 µs, the year 2255), `captureMicrosBig` the same as a BigInt.
 */
export function decodePayload(bytes) {
  if (bytes.length !== BYTES || bytes[0] !== MAGIC) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (crc16(bytes.subarray(0, 13)) !== view.getUint16(13)) return null;
  const captureMicrosBig = view.getBigUint64(1);
  return { captureMicros: Number(captureMicrosBig), captureMicrosBig, frame: view.getUint32(9) };
}

/**
 * Reads a stamp from a luma plane (one byte per pixel, `stride` bytes per row) of a frame `width` by `height`:
 * exactly the reading of stamp.rs. Null if there is none or it is damaged.
 */
export function readStampLuma(luma, width, height, stride = width) {
  return readBits(width, height, (x, y) => luma[y * stride + x]);
}

/**
 * Reads the stamp from an ImageData (or anything with `width`, `height` and RGBA `data`), for instance
 * `ctx.getImageData(0, 0, video.videoWidth, stripHeight(...))` after drawing a video frame: the strip is all it
 * needs, but the width must be the frame's. Returns {captureMicros, captureMicrosBig, frame} or null.
 */
export function readStamp(imageData) {
  const { width, height, data } = imageData;
  return readBits(width, height, (x, y) => {
    const i = (y * width + x) * 4;
    return rgbToLuma(data[i], data[i + 1], data[i + 2]);
  });
}

/** BT.601 limited-range luma of a full-range RGB pixel. */
export function rgbToLuma(r, g, b) {
  return 16 + (219 * (0.299 * r + 0.587 * g + 0.114 * b)) / 255;
}

function readBits(width, height, lumaAt) {
  const block = blockSize(width, height);
  if (block === null) return null;
  const inset = Math.floor(block / 4);
  const inner = block - 2 * inset;
  const payload = new Uint8Array(BYTES);
  for (let bit = 0; bit < BITS; bit++) {
    const x0 = (bit % COLUMNS) * block + inset;
    const y0 = Math.floor(bit / COLUMNS) * block + inset;
    let sum = 0;
    for (let y = y0; y < y0 + inner; y++) {
      for (let x = x0; x < x0 + inner; x++) sum += lumaAt(x, y);
    }
    const mean = Math.floor(sum / (inner * inner));
    if (mean >= MIN_BRIGHT) payload[bit >> 3] |= 0x80 >> (bit % 8);
    else if (mean > MAX_DARK) return null;
  }
  return decodePayload(payload);
}

/**
 * Draws a stamp into the top strip of a 2D canvas context, over the whole width: blocks black (0) or white (1),
 * black to the right of the 40th block. Returns false (and draws nothing) if the canvas is too small.
 */
export function drawStamp(ctx, captureMicros, frame) {
  const { width, height } = ctx.canvas;
  const block = blockSize(width, height);
  if (block === null) return false;
  const payload = encodePayload(captureMicros, frame);
  const saved = ctx.fillStyle;
  ctx.fillStyle = '#000000';
  ctx.fillRect(0, 0, width, block * ROWS);
  ctx.fillStyle = '#ffffff';
  for (let bit = 0; bit < BITS; bit++) {
    if (payload[bit >> 3] & (0x80 >> (bit % 8))) {
      ctx.fillRect((bit % COLUMNS) * block, Math.floor(bit / COLUMNS) * block, block, block);
    }
  }
  ctx.fillStyle = saved;
  return true;
}

/** Wall-clock unix microseconds now, on the clock stamps are written with. */
export function nowMicros() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
