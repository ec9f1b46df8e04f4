// Input checks with the limits and codes of zego-protocol (validate.rs), run before anything goes on the wire so
// the browser refuses the same inputs with the same codes as the native SDK and the server.

import { ErrorCode as E, LIMITS, USER_NAME_FORMAT_RANGES } from './codes.js';

const encoder = new TextEncoder();

/** Length in bytes of UTF-8, as the server measures. */
export function utf8Length(value) {
  return encoder.encode(value).length;
}

function isPrintableAsciiWithoutSpaces(value) {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** IDs (room, user, stream): non-empty, within the limit, printable ASCII without spaces. 0 when valid. */
function id(value, max, nullCode, tooLong, bad) {
  if (typeof value !== 'string' || value === '') return nullCode;
  if (utf8Length(value) > max) return tooLong;
  if (!isPrintableAsciiWithoutSpaces(value)) return bad;
  return 0;
}

export function roomID(value) {
  return id(value, LIMITS.ROOM_ID_MAX, E.ROOM_ROOM_ID_NULL, E.ROOM_ROOM_ID_TOO_LONG,
    E.ROOM_ROOM_ID_INVALID_CHARACTER);
}

export function userID(value) {
  return id(value, LIMITS.USER_ID_MAX, E.ROOM_USER_ID_NULL, E.ROOM_USER_ID_TOO_LONG,
    E.ROOM_USER_ID_INVALID_CHARACTER);
}

export function streamID(value) {
  return id(value, LIMITS.STREAM_ID_MAX, E.COMMON_STREAM_ID_NULL, E.COMMON_STREAM_ID_TOO_LONG,
    E.COMMON_STREAM_ID_INVALID_CHARACTER);
}

function isFormat(cp) {
  let lo = 0;
  let hi = USER_NAME_FORMAT_RANGES.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [first, last] = USER_NAME_FORMAT_RANGES[mid];
    if (last < cp) lo = mid + 1;
    else if (first > cp) hi = mid - 1;
    else return true;
  }
  return false;
}

/** Control characters (Unicode category Cc). */
function isControl(cp) {
  return cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
}

/** User names are display text: any UTF-8 without control or invisible formatting characters. */
export function userName(value) {
  if (typeof value !== 'string' || value === '') return E.ROOM_USER_NAME_NULL;
  if (utf8Length(value) > LIMITS.USER_NAME_MAX) return E.ROOM_USER_NAME_TOO_LONG;
  for (const ch of value) {
    const cp = ch.codePointAt(0);
    if (isControl(cp) || isFormat(cp)) return E.ROOM_USER_NAME_INVALID_CHARACTER;
  }
  return 0;
}

/** Stream extra info may be empty (it clears the info). */
export function streamExtraInfo(value) {
  if (typeof value !== 'string') return E.COMMON_INVALID_PARAMETER;
  return utf8Length(value) > LIMITS.STREAM_EXTRA_INFO_MAX ? E.PUBLISHER_EXTRA_INFO_TOO_LONG : 0;
}

function content(value, max) {
  if (typeof value !== 'string' || value === '') return E.IM_CONTENT_NULL;
  return utf8Length(value) > max ? E.IM_CONTENT_TOO_LONG : 0;
}

export function broadcastMessage(value) {
  return content(value, LIMITS.BROADCAST_MESSAGE_MAX);
}

export function customCommand(value) {
  return content(value, LIMITS.CUSTOM_COMMAND_MAX);
}

export function roomExtraInfo(key, value) {
  if (typeof key !== 'string' || key === '' || utf8Length(key) > LIMITS.ROOM_EXTRA_INFO_KEY_MAX) {
    return E.ROOM_EXTRA_INFO_KEY_TOO_LONG;
  }
  if (typeof value !== 'string') return E.COMMON_INVALID_PARAMETER;
  return utf8Length(value) > LIMITS.ROOM_EXTRA_INFO_VALUE_MAX ? E.ROOM_EXTRA_INFO_VALUE_TOO_LONG : 0;
}

/** A login token may be empty (the app_sign proof is used then). */
export function token(value) {
  if (typeof value !== 'string') return E.ROOM_TOKEN_FORMAT_ERROR;
  return utf8Length(value) > LIMITS.TOKEN_MAX ? E.ROOM_TOKEN_FORMAT_ERROR : 0;
}

/** An app_sign: exactly 64 hex characters (32 bytes). */
export function appSign(value) {
  return typeof value === 'string' && value.length === LIMITS.APP_SIGN_HEX_LEN && /^[0-9a-fA-F]*$/.test(value)
    ? 0
    : E.ENGINE_APP_SIGN_INCORRECT;
}

/** An app ID is an unsigned 32-bit number other than 0. */
export function appID(value) {
  return Number.isInteger(value) && value > 0 && value <= 0xffffffff ? 0 : E.ENGINE_APP_ID_INCORRECT;
}
