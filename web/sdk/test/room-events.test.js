// Server events as the original web SDK's events: user and stream increments (never about yourself), delete
// reasons as extended data, extra info, IM, online count; replies to room requests as resolved results.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { Harness, ROOM, stream, user } from './support.js';

const A = { userID: 'a', userName: 'A' };

test('user and stream increments are reported, without the local user and its own streams', () => {
  const h = new Harness();
  h.login();
  h.receive({ type: 'user_update', room_id: ROOM, update_type: 'add', users: [user('a'), user('me')] });
  h.receive({ type: 'stream_update', room_id: ROOM, update_type: 'add', streams: [stream('s1', 'a', 'e'), stream('mine', 'me')] });
  h.receive({
    type: 'stream_update', room_id: ROOM, update_type: 'delete', streams: [stream('s1', 'a', 'e')],
    reasons: [{ stream_id: 's1', code: 2 }],
  });
  h.receive({ type: 'user_update', room_id: ROOM, update_type: 'delete', users: [user('a')] });
  h.receive({ type: 'user_update', room_id: ROOM, update_type: 'add', users: [user('me')] });
  assert.deepEqual(h.events(h.take()), [
    ['roomUserUpdate', ROOM, 'ADD', [A]],
    ['roomStreamUpdate', ROOM, 'ADD', [{ streamID: 's1', user: A, extraInfo: 'e' }], '{}'],
    ['roomStreamUpdate', ROOM, 'DELETE', [{ streamID: 's1', user: A, extraInfo: 'e' }],
      '{"stream_delete_reason":[{"code":2,"stream_id":"s1"}]}'],
    ['roomUserUpdate', ROOM, 'DELETE', [A]],
  ]);
});

test('extra info, IM, online count and token expiry become their events', () => {
  const h = new Harness();
  h.login();
  h.receive({ type: 'stream_extra_info_update', room_id: ROOM, streams: [stream('s1', 'a', 'new')] });
  h.receive({ type: 'room_extra_info_update', room_id: ROOM, infos: [{ key: 'k', value: 'v', update_user: user('a'), update_time_ms: 9 }] });
  h.receive({ type: 'broadcast_message', room_id: ROOM, messages: [{ message_id: 4, message: 'hi', send_time_ms: 8, from_user: user('a') }] });
  h.receive({ type: 'custom_command', room_id: ROOM, from_user: user('a'), command: 'go' });
  h.receive({ type: 'online_user_count', room_id: ROOM, count: 12 });
  h.receive({ type: 'token_will_expire', room_id: ROOM, remain_seconds: 30 });
  h.receive({ type: 'error', code: E.PROTOCOL_MALFORMED_MESSAGE, message: 'x' });
  assert.deepEqual(h.events(h.take()), [
    ['streamExtraInfoUpdate', ROOM, [{ streamID: 's1', user: A, extraInfo: 'new' }]],
    ['roomExtraInfoUpdate', ROOM, [{ key: 'k', value: 'v', updateUser: A, updateTime: 9 }]],
    ['IMRecvBroadcastMessage', ROOM, [{ messageID: 4, message: 'hi', sendTime: 8, fromUser: A }]],
    ['IMRecvCustomCommand', ROOM, A, 'go'],
    ['roomOnlineUserCountUpdate', ROOM, 12],
    ['tokenWillExpire', ROOM, 30],
  ]);
});

test('room requests resolve with the server reply code and results', () => {
  const h = new Harness();
  h.login();
  h.take();
  assert.equal(h.run((core, now) => core.sendBroadcastMessage(now, 11, ROOM, 'hello')), 0);
  h.reply(h.lastSent('send_broadcast_message'), 0, { kind: 'broadcast_message', message_id: 42 });
  assert.equal(h.run((core, now) => core.sendCustomCommand(now, 12, ROOM, 'cmd', ['a', 'b'])), 0);
  const command = h.lastSent('send_custom_command');
  assert.deepEqual(command.to_user_ids, ['a', 'b']);
  h.reply(command, E.ROOM_RATE_LIMITED_REQUEST);
  assert.equal(h.run((core, now) => core.setRoomExtraInfo(now, 13, ROOM, 'k', 'v')), 0);
  assert.deepEqual(h.lastSent('set_room_extra_info').key, 'k');
  h.reply(h.lastSent('set_room_extra_info'));
  assert.deepEqual(h.of(h.take(), 'settle'), [
    { type: 'settle', ticket: 11, value: { errorCode: 0, messageID: 42 } },
    { type: 'settle', ticket: 12, value: { errorCode: E.ROOM_RATE_LIMITED_REQUEST } },
    { type: 'settle', ticket: 13, value: { errorCode: 0 } },
  ]);
});

test('a room request without a reply resolves with 1002052 after the request timeout', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.sendBroadcastMessage(now, 5, ROOM, 'hello'));
  const t = h.fire(':req1');
  assert.equal(t.at, 1000 + 10_000);
  assert.deepEqual(h.of(h.take(), 'settle'), [{ type: 'settle', ticket: 5, value: { errorCode: E.ROOM_DISCONNECTED, messageID: 0 } }]);
});

test('requests for another room are refused with the original codes', () => {
  const h = new Harness();
  assert.equal(h.run((core, now) => core.sendBroadcastMessage(now, 1, ROOM, 'x')), E.IM_WRONG_ROOM);
  h.login();
  assert.equal(h.run((core, now) => core.sendBroadcastMessage(now, 1, 'other', 'x')), E.IM_WRONG_ROOM);
  assert.equal(h.run((core, now) => core.sendCustomCommand(now, 1, 'other', 'x', [])), E.IM_WRONG_ROOM);
  assert.equal(h.run((core, now) => core.setRoomExtraInfo(now, 1, 'other', 'k', 'v')), E.ROOM_NOT_LOGGED_IN_THAT_ROOM);
  assert.equal(h.run((core, now) => core.renewToken(now, '04', 'other')), E.ROOM_TOKEN_FORMAT_ERROR);
});
