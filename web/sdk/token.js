// The shape of a Token04 ("04" + base64 of expire, IV, ciphertext and, for GCM, a mode byte), checked without
// its secret, so a token that cannot be one is refused at once with the code the server would give.

import { ErrorCode as E } from './codes.js';

const GCM_MODE_BYTE = 1;
const GCM_NONCE_LEN = 12;
const CBC_IV_LEN = 16;

/** Strict standard base64 with padding, as the server decodes it; null when it is not. */
function decodeBase64(text) {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

/** 0 when `token` is shaped like a Token04, else 1002079 (version), 1002075 (format) or 1002080 (nonce). */
export function checkFormat(token) {
  if (!token.startsWith('04')) return E.ROOM_TOKEN_VERSION_ERROR;
  const bytes = decodeBase64(token.slice(2));
  if (!bytes) return E.ROOM_TOKEN_FORMAT_ERROR;
  let at = 0;
  const take = (n) => {
    if (bytes.length - at < n) return null;
    const part = bytes.subarray(at, at + n);
    at += n;
    return part;
  };
  const u16 = () => {
    const b = take(2);
    return b ? (b[0] << 8) | b[1] : null;
  };
  if (!take(8)) return E.ROOM_TOKEN_FORMAT_ERROR;
  const ivLen = u16();
  const iv = ivLen === null ? null : take(ivLen);
  if (!iv) return E.ROOM_TOKEN_FORMAT_ERROR;
  const sealedLen = u16();
  const sealed = sealedLen === null ? null : take(sealedLen);
  if (!sealed) return E.ROOM_TOKEN_FORMAT_ERROR;
  const trailer = bytes.subarray(at);
  let expected;
  if (trailer.length === 0) expected = CBC_IV_LEN;
  else if (trailer.length === 1 && trailer[0] === GCM_MODE_BYTE) expected = GCM_NONCE_LEN;
  else return E.ROOM_TOKEN_FORMAT_ERROR;
  if (iv.length !== expected) return E.ROOM_TOKEN_NONCE_ERROR;
  if (sealed.length === 0) return E.ROOM_TOKEN_FORMAT_ERROR;
  return 0;
}
