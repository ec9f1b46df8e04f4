// SEI (app data with a video frame), as the native SDK writes and reads it (docs/protocol.md, "SEI"): one H.264 SEI
// NAL unit per message, placed in the next encoded frame before its first slice; payload type 243 (ZEGO's own) or
// 5 (user_data_unregistered, the data begins with its 16-byte UUID). Pure functions and the outbox; peer.js runs
// them on the encoded frames of a peer connection.

import { ErrorCode as E } from './codes.js';

export const SEI_TYPE_ZEGO_DEFINED = 0;
export const SEI_TYPE_USER_UNREGISTER = 1;
export const PAYLOAD_TYPE_ZEGO = 243;
export const PAYLOAD_TYPE_USER_DATA_UNREGISTERED = 5;
export const UUID_LEN = 16;
export const MAX_SEI_DATA = 4096;
export const MAX_SEI_PER_SECOND = 30;

const NAL_SEI = 6;
const RBSP_STOP = 0x80;

function pushFfCoded(out, value) {
  while (value >= 0xff) {
    out.push(0xff);
    value -= 0xff;
  }
  out.push(value);
}

/** One SEI NAL unit (4-byte start code) holding one message of `payloadType` with `data` (Uint8Array). */
export function seiNalUnit(payloadType, data) {
  const rbsp = [];
  pushFfCoded(rbsp, payloadType);
  pushFfCoded(rbsp, data.length);
  for (const b of data) rbsp.push(b);
  rbsp.push(RBSP_STOP);
  const out = [0, 0, 0, 1, NAL_SEI];
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

/** The NAL units of an Annex B buffer: { at (where the start code begins), header, body (trailing zeros cut) }. */
function nalUnits(au) {
  const starts = [];
  for (let i = 0; i + 2 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      starts.push({ at: i > 0 && au[i - 1] === 0 ? i - 1 : i, header: i + 3 });
      i += 2;
    }
  }
  return starts
    .filter((s) => s.header < au.length)
    .map((s, n) => {
      let end = n + 1 < starts.length ? starts[n + 1].at : au.length;
      while (end > s.header + 1 && au[end - 1] === 0) end--;
      return { at: s.at, header: au[s.header], body: au.subarray(s.header + 1, Math.max(end, s.header + 1)) };
    });
}

/** `au` with `units` placed before its first slice (NAL type 1..5), or at its end when it has none. */
export function insertBeforeFirstSlice(au, units) {
  const slice = nalUnits(au).find((n) => (n.header & 0x1f) >= 1 && (n.header & 0x1f) <= 5);
  const at = slice ? slice.at : au.length;
  const out = new Uint8Array(au.length + units.length);
  out.set(au.subarray(0, at), 0);
  out.set(units, at);
  out.set(au.subarray(at), at + units.length);
  return out;
}

function readFfCoded(bytes, at) {
  let value = 0;
  while (at < bytes.length) {
    const b = bytes[at++];
    value += b;
    if (b !== 0xff) return [value, at];
  }
  return null;
}

/** Every SEI message of an Annex B access unit, in order: [{ payloadType, data }]. */
export function seiMessages(au) {
  const out = [];
  for (const nal of nalUnits(au)) {
    if ((nal.header & 0x1f) !== NAL_SEI) continue;
    const rbsp = [];
    let zeros = 0;
    for (const b of nal.body) {
      if (zeros >= 2 && b === 3) {
        zeros = 0;
        continue;
      }
      rbsp.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    let at = 0;
    while (at < rbsp.length && !(at === rbsp.length - 1 && rbsp[at] === RBSP_STOP)) {
      const type = readFfCoded(rbsp, at);
      if (!type) break;
      const size = readFfCoded(rbsp, type[1]);
      if (!size || size[1] + size[0] > rbsp.length) break;
      out.push({ payloadType: type[0], data: Uint8Array.from(rbsp.slice(size[1], size[1] + size[0])) });
      at = size[1] + size[0];
    }
  }
  return out;
}

/** The app data of an access unit: ZEGO's messages and user-unregistered ones of at least 16 bytes (UUID included). */
export function seiAppData(au) {
  return seiMessages(au)
    .filter((m) => m.payloadType === PAYLOAD_TYPE_ZEGO || (m.payloadType === PAYLOAD_TYPE_USER_DATA_UNREGISTERED && m.data.length >= UUID_LEN))
    .map((m) => m.data);
}

/** The SEI of one published stream waiting for its next encoded frame, with the native SDK's checks and limits. */
export class SeiOutbox {
  #waiting = [];
  #accepted = [];

  /** 0, or the error code: 1003043 empty, 1003044 too long, 1000008 unregistered data shorter than its UUID,
   * 1003045 beyond 30 messages in a second. `now` in ms. */
  push(data, seiType, now) {
    if (!(data instanceof Uint8Array) || data.length === 0) return E.PUBLISHER_SEI_DATA_NULL;
    if (data.length > MAX_SEI_DATA) return E.PUBLISHER_SEI_DATA_TOO_LONG;
    if (seiType === SEI_TYPE_USER_UNREGISTER && data.length < UUID_LEN) return E.COMMON_INVALID_PARAMETER;
    while (this.#accepted.length && now - this.#accepted[0] >= 1000) this.#accepted.shift();
    if (this.#accepted.length >= MAX_SEI_PER_SECOND) return E.PUBLISHER_SEI_TOO_FREQUENT;
    this.#accepted.push(now);
    if (this.#waiting.length >= MAX_SEI_PER_SECOND) this.#waiting.shift();
    const type = seiType === SEI_TYPE_USER_UNREGISTER ? PAYLOAD_TYPE_USER_DATA_UNREGISTERED : PAYLOAD_TYPE_ZEGO;
    this.#waiting.push(seiNalUnit(type, data));
    return 0;
  }

  /** What waits, as one buffer of NAL units, or null. */
  take() {
    if (!this.#waiting.length) return null;
    const units = this.#waiting;
    this.#waiting = [];
    const out = new Uint8Array(units.reduce((n, u) => n + u.length, 0));
    let at = 0;
    for (const u of units) {
      out.set(u, at);
      at += u.length;
    }
    return out;
  }
}
