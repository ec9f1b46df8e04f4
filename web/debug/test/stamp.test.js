// stamp.js against the format of crates/zego-media/src/stamp.rs: the vector its Rust test pins down, a
// round trip through a canvas-like context, and the damage the Rust reader rejects.
import test from 'node:test';
import assert from 'node:assert/strict';

import {
  blockSize, crc16, decodePayload, drawStamp, encodePayload, readStamp, readStampLuma, stripHeight,
} from '../stamp.js';

// The same stamp and bytes as a_fixed_stamp_has_the_payload_and_top_row_the_web_page_expects in stamp.rs.
const CAPTURE = 1_700_000_000_123_456n;
const FRAME = 4_000_000_123;
const PAYLOAD_HEX = 'a500060a2418202240ee6b287b410d';
const DARK = 16;
const BRIGHT = 235;

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const bitOf = (payload, bit) => (payload[bit >> 3] & (0x80 >> (bit % 8))) !== 0;

/** A luma plane drawn the way stamp.rs draws it. */
function rustLuma(width, height, payload) {
  const block = blockSize(width, height);
  const luma = new Uint8Array(width * height).fill(DARK);
  for (let y = 0; y < block * 3; y++) {
    for (let x = 0; x < Math.min(width, block * 40); x++) {
      const bit = Math.floor(y / block) * 40 + Math.floor(x / block);
      luma[y * width + x] = bitOf(payload, bit) ? BRIGHT : DARK;
    }
  }
  return luma;
}

/** Enough of a CanvasRenderingContext2D for drawStamp: fillRect with '#rrggbb' into an RGBA buffer. */
function fakeContext(width, height) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  const ctx = {
    canvas: { width, height },
    fillStyle: '#808080',
    fillRect(x, y, w, h) {
      const n = parseInt(this.fillStyle.slice(1), 16);
      for (let py = y; py < Math.min(height, y + h); py++) {
        for (let px = x; px < Math.min(width, x + w); px++) {
          const i = (py * width + px) * 4;
          data[i] = n >> 16;
          data[i + 1] = (n >> 8) & 255;
          data[i + 2] = n & 255;
        }
      }
    },
  };
  return { ctx, image: { width, height, data } };
}

test('crc16 is CRC-16/CCITT-FALSE', () => {
  assert.equal(crc16(new TextEncoder().encode('123456789')), 0x29b1);
});

test('the payload of a fixed stamp matches the Rust vector', () => {
  const payload = encodePayload(CAPTURE, FRAME);
  assert.equal(hex(payload), PAYLOAD_HEX);
  assert.equal(hex(encodePayload(Number(CAPTURE), FRAME)), PAYLOAD_HEX);
  const stamp = decodePayload(payload);
  assert.equal(stamp.captureMicrosBig, CAPTURE);
  assert.equal(stamp.captureMicros, Number(CAPTURE));
  assert.equal(stamp.frame, FRAME);
});

test('a luma plane drawn like the Rust code reads back, at many sizes', () => {
  const payload = Buffer.from(PAYLOAD_HEX, 'hex');
  for (const [w, h] of [[160, 90], [320, 180], [640, 360], [1280, 720], [333, 241]]) {
    const stamp = readStampLuma(rustLuma(w, h, payload), w, h);
    assert.ok(stamp, `${w}x${h}`);
    assert.equal(stamp.captureMicrosBig, CAPTURE);
    assert.equal(stamp.frame, FRAME);
  }
});

test('drawStamp paints the top row the Rust test expects', () => {
  const { ctx, image } = fakeContext(160, 90);
  assert.equal(drawStamp(ctx, CAPTURE, FRAME), true);
  const payload = Buffer.from(PAYLOAD_HEX, 'hex');
  for (let x = 0; x < 160; x++) {
    assert.equal(image.data[x * 4], bitOf(payload, Math.floor(x / 4)) ? 255 : 0, `x=${x}`);
  }
  assert.equal(ctx.fillStyle, '#808080', 'fillStyle is restored');
});

test('drawStamp then readStamp round-trips on RGBA pixels', () => {
  for (const [w, h] of [[160, 90], [640, 360], [1280, 720], [333, 241]]) {
    const { ctx, image } = fakeContext(w, h);
    drawStamp(ctx, 1_733_500_000_000_001, 7 + w);
    const stamp = readStamp(image);
    assert.deepEqual(
      { captureMicros: stamp.captureMicros, frame: stamp.frame },
      { captureMicros: 1_733_500_000_000_001, frame: 7 + w },
      `${w}x${h}`,
    );
    // The strip alone is enough, as long as it has the frame's width.
    const strip = stripHeight(w, h);
    const top = { width: w, height: strip, data: image.data.subarray(0, w * strip * 4) };
    assert.equal(readStamp(top).frame, 7 + w);
  }
});

test('only the low 32 bits of the frame number are carried', () => {
  const { ctx, image } = fakeContext(320, 180);
  drawStamp(ctx, 1, 2 ** 32 + 5);
  assert.equal(readStamp(image).frame, 5);
});

test('no stamp, a flipped block or a grey block read as null', () => {
  const w = 640;
  const h = 360;
  assert.equal(readStampLuma(new Uint8Array(w * h).fill(DARK), w, h), null);
  assert.equal(readStampLuma(new Uint8Array(w * h).fill(BRIGHT), w, h), null);
  assert.equal(blockSize(100, 100), null);
  assert.equal(readStampLuma(new Uint8Array(100 * 100), 100, 100), null);

  const payload = encodePayload(42, 7);
  const good = rustLuma(w, h, payload);
  assert.equal(readStampLuma(good, w, h).frame, 7);
  const block = blockSize(w, h);
  const [bx, by] = [50 % 40, Math.floor(50 / 40)];
  const flipped = good.slice();
  const grey = good.slice();
  for (let y = by * block; y < (by + 1) * block; y++) {
    for (let x = bx * block; x < (bx + 1) * block; x++) {
      flipped[y * w + x] = flipped[y * w + x] === BRIGHT ? DARK : BRIGHT;
      grey[y * w + x] = 128;
    }
  }
  assert.equal(readStampLuma(flipped, w, h), null);
  assert.equal(readStampLuma(grey, w, h), null);
});

test('decoded RGB of a limited-range stamp reads with the Rust thresholds', () => {
  // A decoder maps luma 16 -> 0 and 235 -> 255; a block at luma 95 (RGB 92) is neither dark nor bright.
  const w = 320;
  const h = 180;
  const { ctx, image } = fakeContext(w, h);
  drawStamp(ctx, 99, 3);
  assert.equal(readStamp(image).frame, 3);
  const block = blockSize(w, h);
  for (let y = 0; y < block; y++) {
    for (let x = 0; x < block; x++) image.data.fill(92, (y * w + x) * 4, (y * w + x) * 4 + 3);
  }
  assert.equal(readStamp(image), null);
});
