// First login: the login message, the events of success and of each failure, the app_sign proof, and logging
// out while the login is still under way.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E, PROTOCOL_VERSION } from '../codes.js';
import { Harness, ME, ROOM, stream, user } from './support.js';

test('a login sends the protocol login and reports LOGINING, LOGINED, then the room as first ADDs', () => {
  const h = new Harness();
  const code = h.run((core, now) => core.loginRoom(now, 7, ROOM, 'token-1', ME, { userUpdate: true, maxMemberCount: 5 }));
  assert.equal(code, 0);
  let out = h.take();
  assert.deepEqual(h.events(out), [
    ['roomStateUpdate', ROOM, 'CONNECTING', 0, '{}'],
    ['roomStateChanged', ROOM, 'LOGINING', 0, '{}'],
  ]);
  assert.deepEqual(h.of(out, 'connect'), [{ type: 'connect', conn: 1, url: 'ws://sfu.test:8080/ws' }]);
  assert.equal(h.sent(out).length, 0, 'nothing is sent before the socket opens');

  h.open();
  const login = h.lastSent('login');
  assert.deepEqual({ ...login, req_id: 0 }, {
    type: 'login', req_id: 0, protocol_version: PROTOCOL_VERSION, app_id: 1234567890, room_id: ROOM,
    user: { user_id: 'me', user_name: 'Me' }, credentials: { kind: 'token', token: 'token-1' },
    is_user_status_notify: true, max_member_count: 5,
  });
  h.take();
  h.reply(login, 0, {
    kind: 'login', session_id: 's', heartbeat_interval_ms: 10000, heartbeat_timeout_ms: 30000, server_time_ms: 1,
    users: [user('me'), user('b'), user('a')],
    streams: [stream('mine', 'me'), stream('s1', 'a', 'x')],
    room_extra_info: [{ key: 'k', value: 'v', update_user: user('a'), update_time_ms: 5 }],
    online_count: 3,
  });
  out = h.take();
  assert.deepEqual(h.events(out), [
    ['roomStateUpdate', ROOM, 'CONNECTED', 0, '{}'],
    ['roomStateChanged', ROOM, 'LOGINED', 0, '{}'],
    ['roomUserUpdate', ROOM, 'ADD', [{ userID: 'a', userName: 'A' }, { userID: 'b', userName: 'B' }]],
    ['roomStreamUpdate', ROOM, 'ADD', [{ streamID: 's1', user: { userID: 'a', userName: 'A' }, extraInfo: 'x' }], '{}'],
    ['roomExtraInfoUpdate', ROOM, [{ key: 'k', value: 'v', updateUser: { userID: 'a', userName: 'A' }, updateTime: 5 }]],
    ['roomOnlineUserCountUpdate', ROOM, 3],
  ]);
  assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 7, value: true }]);
});

test('without userUpdate the login reports no users', () => {
  const h = new Harness();
  const out = h.login({ users: [user('me'), user('a')] }, { config: {} });
  assert.equal(h.events(out, 'roomUserUpdate').length, 0);
  assert.equal(h.sent(h.log, 'login')[0].is_user_status_notify, false);
});

for (const code of [E.ROOM_AUTHENTICATION_FAILED, E.ROOM_TOKEN_EXPIRED, E.ROOM_MAX_MEMBER_COUNT, E.ENGINE_APP_ID_INCORRECT]) {
  test(`a login the server refuses with ${code} fails with that code`, () => {
    const h = new Harness();
    h.run((core, now) => core.loginRoom(now, 3, ROOM, 'token-1', ME, {}));
    h.open();
    h.take();
    h.reply(h.lastSent('login'), code);
    const out = h.take();
    assert.deepEqual(h.events(out), [
      ['roomStateUpdate', ROOM, 'DISCONNECTED', code, '{}'],
      ['roomStateChanged', ROOM, 'LOGIN_FAILED', code, '{}'],
    ]);
    assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 3, error: code }]);
    assert.deepEqual(h.of(out, 'close'), [{ type: 'close', conn: 1 }]);
    // The room is free again.
    assert.equal(h.run((core, now) => core.loginRoom(now, 4, ROOM, 'token-1', ME, {})), 0);
  });
}

test('a server that cannot be reached fails the login with 1002030 after four attempts with backoff', () => {
  const h = new Harness();
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 'token-1', ME, {}));
  const delays = [];
  for (let i = 0; i < 3; i++) {
    h.closeSocket();
    const before = h.now;
    const t = h.fire(':retry');
    delays.push(t.at - before);
  }
  assert.deepEqual(delays, [100, 200, 400]);
  assert.equal(h.of(h.log, 'connect').length, 4);
  h.take();
  h.closeSocket();
  const out = h.take();
  assert.deepEqual(h.events(out, 'roomStateChanged'), [['roomStateChanged', ROOM, 'LOGIN_FAILED', E.ROOM_CONNECT_FAILED, '{}']]);
  assert.equal(h.timer(':retry'), undefined);
});

test('a connection that does not open in time counts as a failed attempt', () => {
  const h = new Harness();
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 'token-1', ME, {}));
  const t = h.fire(':connect');
  assert.equal(t.at, 1000 + 5000);
  assert.ok(h.of(h.take(), 'close').length === 1);
  assert.ok(h.timer(':retry'), 'retried after the backoff');
});

test('no login reply in time fails with 1002031 and logs out behind the login', () => {
  const h = new Harness();
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 'token-1', ME, {}));
  h.open();
  h.take();
  const t = h.fire(':login');
  assert.equal(t.at, 1000 + 10_000);
  const out = h.take();
  assert.deepEqual(h.sent(out).map((m) => m.type), ['logout']);
  assert.deepEqual(h.events(out, 'roomStateChanged'), [['roomStateChanged', ROOM, 'LOGIN_FAILED', E.ROOM_LOGIN_TIMEOUT, '{}']]);
  // The connection closes on the logout's reply.
  h.reply(h.lastSent('logout'));
  assert.deepEqual(h.of(h.take(), 'close'), [{ type: 'close', conn: 1 }]);
});

test('without a token the login proves the app_sign: the host signs, then the login carries the proof', () => {
  const h = new Harness({ hasAppSign: true });
  h.run((core, now) => core.loginRoom(now, 1, ROOM, '', ME, {}));
  h.open();
  const out = h.take();
  assert.deepEqual(h.of(out, 'sign'), [{ type: 'sign', conn: 1, appID: 1234567890, userID: 'me', roomID: ROOM }]);
  assert.equal(h.sent(out).length, 0);
  const proof = { kind: 'app_sign', timestamp_ms: 1, nonce: 'n', signature: 'ab'.repeat(32) };
  h.run((core, now) => core.signed(now, 1, proof));
  assert.deepEqual(h.lastSent('login').credentials, proof);
});

test('without a token or an app_sign the login is refused with 1002067', () => {
  const h = new Harness({ hasAppSign: false });
  assert.equal(h.run((core, now) => core.loginRoom(now, 1, ROOM, '', ME, {})), E.ROOM_NO_TOKEN_NO_APP_SIGN);
  assert.equal(h.take().length, 0);
});

test('a second login while in a room is refused with 1002001', () => {
  const h = new Harness();
  h.login();
  assert.equal(h.run((core, now) => core.loginRoom(now, 2, 'other', 'token-1', ME, {})), E.ROOM_COUNT_EXCEED);
});

test('logout before the socket opens closes it: the server heard nothing, the app hears LOGOUT only', () => {
  const h = new Harness();
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 'token-1', ME, {}));
  h.take();
  assert.equal(h.run((core, now) => core.logoutRoom(now, ROOM)), 0);
  const out = h.take();
  assert.deepEqual(h.events(out), [
    ['roomStateUpdate', ROOM, 'DISCONNECTED', 0, '{}'],
    ['roomStateChanged', ROOM, 'LOGOUT', 0, '{}'],
  ]);
  assert.deepEqual(h.of(out, 'close'), [{ type: 'close', conn: 1 }]);
  assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 1, error: E.ROOM_DISCONNECTED }]);
  assert.equal(h.sent(out).length, 0);
  assert.equal(h.timers().size, 0, 'no timer left');
});

test('logout once the login is on the wire sends logout right behind it, and a late reply tells nothing', () => {
  const h = new Harness();
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 'token-1', ME, {}));
  h.open();
  const login = h.lastSent('login');
  h.take();
  h.run((core, now) => core.logoutRoom(now));
  let out = h.take();
  assert.deepEqual(h.sent(out).map((m) => m.type), ['logout']);
  assert.equal(h.of(out, 'close').length, 0, 'closed only after the logout reply');
  h.reply(login, 0, { kind: 'login', session_id: 's', heartbeat_interval_ms: 1, heartbeat_timeout_ms: 1, users: [], streams: [], room_extra_info: [], online_count: 1 });
  out = h.take();
  assert.equal(h.events(out).length, 0, 'nothing after LOGOUT');
  h.reply(h.lastSent('logout'));
  assert.deepEqual(h.of(h.take(), 'close'), [{ type: 'close', conn: 1 }]);
});

test('a logout the server does not answer closes after the logout timeout', () => {
  const h = new Harness();
  h.login();
  h.advance(500);
  const at = h.now;
  h.run((core, now) => core.logoutRoom(now, ROOM));
  assert.ok(h.lastSent('logout'));
  const t = h.fire(':leave1');
  assert.equal(t.at, at + 1000);
  assert.deepEqual(h.of(h.take(), 'close'), [{ type: 'close', conn: 1 }]);
});

test('logout of another room is refused with 1002002; without a room and without a room ID it is a no-op', () => {
  const h = new Harness();
  assert.equal(h.run((core, now) => core.logoutRoom(now)), 0);
  assert.equal(h.run((core, now) => core.logoutRoom(now, 'x')), E.ROOM_NOT_LOGGED_IN_THAT_ROOM);
  h.login();
  assert.equal(h.run((core, now) => core.logoutRoom(now, 'x')), E.ROOM_NOT_LOGGED_IN_THAT_ROOM);
});
