// Client-side checks with zego-protocol's limits and codes, the generated table they come from, the Token04
// shape check, and the app_sign proof against an HMAC-SHA256 computed elsewhere.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E, ERROR_MESSAGES, LIMITS, USER_NAME_FORMAT_RANGES } from '../codes.js';
import * as check from '../validate.js';
import { checkFormat } from '../token.js';
import { sign, appSignCredentials } from '../signature.js';
import { ZegoError } from '../errors.js';
import { Harness, ROOM } from './support.js';

test('IDs: empty, too long (bytes) and bad characters get the codes of each kind', () => {
  assert.equal(check.roomID('room-1'), 0);
  assert.equal(check.roomID(''), E.ROOM_ROOM_ID_NULL);
  assert.equal(check.roomID(undefined), E.ROOM_ROOM_ID_NULL);
  assert.equal(check.roomID('a b'), E.ROOM_ROOM_ID_INVALID_CHARACTER);
  assert.equal(check.roomID('é'), E.ROOM_ROOM_ID_INVALID_CHARACTER);
  assert.equal(check.roomID('r'.repeat(128)), 0);
  assert.equal(check.roomID('r'.repeat(129)), E.ROOM_ROOM_ID_TOO_LONG);
  assert.equal(check.roomID('é'.repeat(65)), E.ROOM_ROOM_ID_TOO_LONG, 'the limit counts UTF-8 bytes');
  assert.equal(check.userID('u'.repeat(65)), E.ROOM_USER_ID_TOO_LONG);
  assert.equal(check.userID('u\t1'), E.ROOM_USER_ID_INVALID_CHARACTER);
  assert.equal(check.streamID(''), E.COMMON_STREAM_ID_NULL);
  assert.equal(check.streamID('s'.repeat(257)), E.COMMON_STREAM_ID_TOO_LONG);
  assert.equal(check.streamID('s\u007f'), E.COMMON_STREAM_ID_INVALID_CHARACTER);
});

test('user names: any script and emoji, but no control or format characters', () => {
  for (const name of ['Zoë 李', 'مرحبا', 'שלום', '🙂 smile', 'a\uFE0F']) assert.equal(check.userName(name), 0, name);
  for (const name of ['a\nb', 'x\u0085', 'evil\u202Egpj.exe', 'a\u200Bb', '\u2066x\u2069', 'soft\u00ADhyphen',
    'bom\uFEFF', 'line\u2028break', 'tag\u{E0041}', 'egypt\u{1343F}']) {
    assert.equal(check.userName(name), E.ROOM_USER_NAME_INVALID_CHARACTER, JSON.stringify(name));
  }
  assert.equal(check.userName(''), E.ROOM_USER_NAME_NULL);
  assert.equal(check.userName('n'.repeat(257)), E.ROOM_USER_NAME_TOO_LONG);
  assert.equal(check.userName('李'.repeat(86)), E.ROOM_USER_NAME_TOO_LONG);
});

test('contents and extra info have the IM and publisher codes', () => {
  assert.equal(check.broadcastMessage(''), E.IM_CONTENT_NULL);
  assert.equal(check.broadcastMessage('m'.repeat(1024)), 0);
  assert.equal(check.broadcastMessage('m'.repeat(1025)), E.IM_CONTENT_TOO_LONG);
  assert.equal(check.customCommand('c'.repeat(1025)), E.IM_CONTENT_TOO_LONG);
  assert.equal(check.streamExtraInfo(''), 0);
  assert.equal(check.streamExtraInfo('x'.repeat(1025)), E.PUBLISHER_EXTRA_INFO_TOO_LONG);
  assert.equal(check.roomExtraInfo('', 'v'), E.ROOM_EXTRA_INFO_KEY_TOO_LONG);
  assert.equal(check.roomExtraInfo('k'.repeat(129), 'v'), E.ROOM_EXTRA_INFO_KEY_TOO_LONG);
  assert.equal(check.roomExtraInfo('k', 'v'.repeat(4097)), E.ROOM_EXTRA_INFO_VALUE_TOO_LONG);
  assert.equal(check.token('t'.repeat(2049)), E.ROOM_TOKEN_FORMAT_ERROR);
  assert.equal(check.appSign('0123456789abcdef'.repeat(4)), 0);
  assert.equal(check.appSign('0123456789abcdef'.repeat(4).slice(1)), E.ENGINE_APP_SIGN_INCORRECT);
  assert.equal(check.appSign('zz'.repeat(32)), E.ENGINE_APP_SIGN_INCORRECT);
  assert.equal(check.appID(0), E.ENGINE_APP_ID_INCORRECT);
  assert.equal(check.appID(2 ** 32), E.ENGINE_APP_ID_INCORRECT);
  assert.equal(check.appID('1'), E.ENGINE_APP_ID_INCORRECT);
});

test('the engine checks a login before anything goes on the wire', () => {
  const cases = [
    [['', 't', { userID: 'u' }], E.ROOM_ROOM_ID_NULL],
    [['r r', 't', { userID: 'u' }], E.ROOM_ROOM_ID_INVALID_CHARACTER],
    [[ROOM, 't', { userID: '' }], E.ROOM_USER_ID_NULL],
    [[ROOM, 't', undefined], E.ROOM_USER_ID_NULL],
    [[ROOM, 't', { userID: 'u'.repeat(65) }], E.ROOM_USER_ID_TOO_LONG],
    [[ROOM, 't', { userID: 'u', userName: 'a\u202Eb' }], E.ROOM_USER_NAME_INVALID_CHARACTER],
    [[ROOM, 't'.repeat(2049), { userID: 'u' }], E.ROOM_TOKEN_FORMAT_ERROR],
  ];
  for (const [args, code] of cases) {
    const h = new Harness();
    assert.equal(h.run((core, now) => core.loginRoom(now, 1, ...args, {})), code, JSON.stringify(args));
    assert.equal(h.take().length, 0);
  }
  const h = new Harness();
  assert.equal(h.run((core, now) => core.loginRoom(now, 1, ROOM, 't', { userID: 'u' }, { maxMemberCount: -1 })), E.COMMON_INVALID_PARAMETER);
  // A user without a name is named by its ID.
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 't', { userID: 'u' }, {}));
  h.open();
  assert.deepEqual(h.lastSent('login').user, { user_id: 'u', user_name: 'u' });
});

test('room and IM calls check their contents', () => {
  const h = new Harness();
  h.login();
  assert.equal(h.run((core, now) => core.sendBroadcastMessage(now, 1, ROOM, '')), E.IM_CONTENT_NULL);
  assert.equal(h.run((core, now) => core.sendCustomCommand(now, 1, ROOM, 'c', ['ok', 'not ok'])), E.ROOM_USER_ID_INVALID_CHARACTER);
  assert.equal(h.run((core, now) => core.setRoomExtraInfo(now, 1, ROOM, 'k', 'v'.repeat(4097))), E.ROOM_EXTRA_INFO_VALUE_TOO_LONG);
  assert.equal(h.sent(h.take()).length, 0);
});

test('the generated table: every code has a message, limits are zego-protocol\'s, ranges ascend', () => {
  assert.equal(E.PUBLISHER_STREAM_ID_ALREADY_PUBLISHED, 1003028);
  assert.equal(ERROR_MESSAGES[1003028], 'The same stream_id is already published by another user.');
  for (const [name, code] of Object.entries(E)) assert.ok(ERROR_MESSAGES[code], name);
  assert.equal(LIMITS.ROOM_ID_MAX, 128);
  assert.equal(LIMITS.RECONNECT_WINDOW_MS, 20 * 60 * 1000);
  for (let i = 1; i < USER_NAME_FORMAT_RANGES.length; i++) {
    assert.ok(USER_NAME_FORMAT_RANGES[i - 1][1] < USER_NAME_FORMAT_RANGES[i][0]);
  }
  const err = new ZegoError(E.ROOM_TOKEN_EXPIRED);
  assert.deepEqual([err.code, err.msg], [1002078, 'Token expired.']);
});

test('Token04 shape: version, base64, layout and nonce length', () => {
  const token = (ivLen, trailer) => `04${Buffer.from([0, 0, 0, 0, 0, 0, 0, 9, 0, ivLen, ...new Array(ivLen).fill(3), 0, 2, 5, 6, ...trailer]).toString('base64')}`;
  assert.equal(checkFormat(token(12, [1])), 0);
  assert.equal(checkFormat(token(16, [])), 0);
  assert.equal(checkFormat(token(16, [1])), E.ROOM_TOKEN_NONCE_ERROR);
  assert.equal(checkFormat(token(12, [2])), E.ROOM_TOKEN_FORMAT_ERROR);
  assert.equal(checkFormat('03' + token(12, [1]).slice(2)), E.ROOM_TOKEN_VERSION_ERROR);
  assert.equal(checkFormat(token(12, [1]).slice(0, -4)), E.ROOM_TOKEN_FORMAT_ERROR);
  assert.equal(checkFormat('04abc'), E.ROOM_TOKEN_FORMAT_ERROR);
});

test('the app_sign proof is HMAC-SHA256 over the NUL-joined login fields', async () => {
  const appSign = '0123456789abcdef'.repeat(4);
  // python3: hmac.new(bytes.fromhex(appSign), b'1234567\0u1\0r1\01764028800123\0n0nce\0', sha256).hexdigest()
  assert.equal(await sign(appSign, 1234567, 'u1', 'r1', 1764028800123, 'n0nce'),
    'ef58f5b2dabe1f0104228fb5a508a674f9199a36fc7baa880c278b0d7ea50464');
  const a = await appSignCredentials(appSign, 1, 'u', 'r');
  const b = await appSignCredentials(appSign, 1, 'u', 'r');
  assert.equal(a.kind, 'app_sign');
  assert.match(a.nonce, /^[0-9a-f]{32}$/);
  assert.notEqual(a.nonce, b.nonce, 'a fresh nonce each time');
  assert.equal(a.signature, await sign(appSign, 1, 'u', 'r', a.timestamp_ms, a.nonce));
});
