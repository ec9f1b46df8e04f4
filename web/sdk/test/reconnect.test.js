// A broken connection: RECONNECTING, retries with backoff and resume_session, RECONNECTED with the snapshot
// diff, RECONNECT_FAILED after the reconnect window, and streams set up again when the server forgot the session.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { Harness, ROOM, stream, user } from './support.js';

const A = { userID: 'a', userName: 'A' };

test('a broken connection reports RECONNECTING 1002051 and retries with backoff, resuming the session', () => {
  const h = new Harness();
  h.login({ session_id: 'sess-1' });
  h.closeSocket();
  const out = h.take();
  assert.deepEqual(h.events(out), [
    ['roomStateUpdate', ROOM, 'CONNECTING', E.ROOM_CONNECTION_BROKEN_RETRYING, '{}'],
    ['roomStateChanged', ROOM, 'RECONNECTING', E.ROOM_CONNECTION_BROKEN_RETRYING, '{}'],
  ]);
  const brokeAt = h.now;
  assert.equal(h.timer(':retry').at, brokeAt + 100);
  h.fire(':retry');
  h.closeSocket(); // the server is still away
  assert.equal(h.timer(':retry').at, h.now + 200);
  h.fire(':retry');
  h.open();
  const login = h.lastSent('login');
  assert.equal(login.resume_session, 'sess-1');
  assert.equal(login.credentials.kind, 'token');
});

test('RECONNECTED reports what changed meanwhile as ADD/DELETE increments', () => {
  const h = new Harness();
  h.login({
    users: [user('me'), user('a'), user('b')],
    streams: [stream('s1', 'a', 'x'), stream('s2', 'b')],
  });
  h.reconnect({
    session_id: 'sess-1',
    users: [user('me'), user('a'), user('c')],
    streams: [stream('s1', 'a', 'y'), stream('s3', 'c')],
    online_count: 9,
  });
  assert.deepEqual(h.events(h.take()).slice(2), [
    ['roomStateUpdate', ROOM, 'CONNECTED', 0, '{}'],
    ['roomStateChanged', ROOM, 'RECONNECTED', 0, '{}'],
    ['roomUserUpdate', ROOM, 'DELETE', [{ userID: 'b', userName: 'B' }]],
    ['roomUserUpdate', ROOM, 'ADD', [{ userID: 'c', userName: 'C' }]],
    ['roomStreamUpdate', ROOM, 'DELETE', [{ streamID: 's2', user: { userID: 'b', userName: 'B' }, extraInfo: '' }],
      '{"stream_delete_reason":[{"code":1,"stream_id":"s2"}]}'],
    ['roomStreamUpdate', ROOM, 'ADD', [{ streamID: 's3', user: { userID: 'c', userName: 'C' }, extraInfo: '' }], '{}'],
    ['streamExtraInfoUpdate', ROOM, [{ streamID: 's1', user: A, extraInfo: 'y' }]],
  ]);
  // The new snapshot is what later increments apply to.
  h.receive({ type: 'stream_update', room_id: ROOM, update_type: 'delete', streams: [stream('s3', 'c')], reasons: [] });
  assert.equal(h.events(h.take(), 'roomStreamUpdate').length, 1);
});

test('streams gone with a session the server forgot are deleted as disconnected (5)', () => {
  const h = new Harness();
  h.login({ session_id: 'old', streams: [stream('s1', 'a')] });
  h.reconnect({ session_id: 'new', streams: [] });
  const [, , , , del] = h.events(h.take());
  assert.deepEqual(del.slice(0, 2), ['roomStreamUpdate', ROOM]);
  assert.equal(del[4], '{"stream_delete_reason":[{"code":5,"stream_id":"s1"}]}');
});

test('reconnecting gives up with RECONNECT_FAILED 1002053 when the reconnect window closes', () => {
  const h = new Harness({ timing: { reconnectWindowMs: 3000 } });
  h.login();
  h.run((core, now) => core.startPublishing(now, 'pub', {}));
  h.closeSocket();
  const brokeAt = h.now;
  let attempts = 0;
  while (h.timer(':retry')) {
    h.fire(':retry');
    attempts++;
    h.closeSocket();
  }
  assert.ok(h.now < brokeAt + 3000, 'no attempt starts past the window');
  assert.equal(attempts, 5); // at 100, 300, 700, 1500 and 2500; one more at 3500 would be past the window
  const out = h.take();
  assert.deepEqual(h.events(out, 'roomStateChanged').at(-1), ['roomStateChanged', ROOM, 'RECONNECT_FAILED', E.ROOM_RECONNECT_RETRY_TIMEOUT, '{}']);
  assert.deepEqual(h.events(out, 'publisherStateUpdate').at(-1)[1].state, 'NO_PUBLISH');
  assert.deepEqual(h.events(out, 'publisherStateUpdate').at(-1)[1].errorCode, E.ROOM_RECONNECT_RETRY_TIMEOUT);
  assert.equal(h.timers().size, 0);
});

test('a reconnect the server refuses for good ends the session with its code; a busy server is retried', () => {
  const h = new Harness();
  h.login();
  h.closeSocket();
  h.fire(':retry');
  h.open();
  h.reply(h.lastSent('login'), E.ROOM_RATE_LIMITED_LOGIN);
  assert.ok(h.timer(':retry'), 'rate limited: retried');
  h.fire(':retry');
  h.open();
  h.take();
  h.reply(h.lastSent('login'), E.ROOM_TOKEN_EXPIRED);
  assert.deepEqual(h.events(h.take(), 'roomStateChanged'), [['roomStateChanged', ROOM, 'RECONNECT_FAILED', E.ROOM_TOKEN_EXPIRED, '{}']]);
});

test('requests on the wire when the connection breaks resolve with 1002052; requests made while down wait', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.sendBroadcastMessage(now, 21, ROOM, 'lost'));
  h.closeSocket();
  assert.deepEqual(h.of(h.take(), 'settle'), [{ type: 'settle', ticket: 21, value: { errorCode: E.ROOM_DISCONNECTED, messageID: 0 } }]);
  h.run((core, now) => core.sendBroadcastMessage(now, 22, ROOM, 'queued'));
  assert.equal(h.sent(h.take()).length, 0);
  h.fire(':retry');
  h.open();
  h.reply(h.lastSent('login'), 0, { kind: 'login', session_id: 'sess-1', heartbeat_interval_ms: 10000, heartbeat_timeout_ms: 30000, users: [], streams: [], room_extra_info: [], online_count: 1 });
  const queued = h.lastSent('send_broadcast_message');
  assert.equal(queued.message, 'queued');
  h.reply(queued, 0, { kind: 'broadcast_message', message_id: 3 });
  assert.deepEqual(h.of(h.take(), 'settle'), [{ type: 'settle', ticket: 22, value: { errorCode: 0, messageID: 3 } }]);
});

test('a stop made while down reaches a resumed session; a stream of mine still listed is stopped too', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPlaying(now, 30, 'p1', {}));
  h.closeSocket();
  h.run((core, now) => core.stopPlaying(now, 'p1'));
  h.take();
  h.reconnect({ session_id: 'sess-1', streams: [stream('forgotten', 'me')] });
  const sent = h.sent(h.take());
  assert.deepEqual(sent.filter((m) => m.type !== 'login').map((m) => [m.type, m.stream_id]), [
    ['stop_play', 'p1'],
    ['stop_publish', 'forgotten'],
  ]);
});

test('a stop made while down is dropped when the server forgot the session (nothing left to stop)', () => {
  const h = new Harness();
  h.login({ session_id: 'old' });
  h.run((core, now) => core.startPlaying(now, 30, 'p1', {}));
  h.closeSocket();
  h.run((core, now) => core.stopPlaying(now, 'p1'));
  h.take();
  h.reconnect({ session_id: 'new' });
  assert.deepEqual(h.sent(h.take()).filter((m) => m.type !== 'login'), []);
});

test('a new session (the server forgot us) publishes and plays again what was active', () => {
  const h = new Harness();
  h.login({ session_id: 'old' });
  h.run((core, now) => core.startPublishing(now, 'pub', {}));
  h.run((core, now) => core.offerReady(now, 'publish', 'pub', 1, 'offer-1'));
  h.reply(h.lastSent('publish'), 0, { kind: 'publish', sdp: 'answer-1' });
  h.run((core, now) => core.mediaConnected(now, 'publish', 'pub', 1));
  h.run((core, now) => core.startPlaying(now, 40, 'other', {}));
  h.run((core, now) => core.offerReady(now, 'play', 'other', 1, 'play-offer-1'));
  h.reply(h.lastSent('play'), 0, { kind: 'play', sdp: 'play-answer-1' });
  h.run((core, now) => core.mediaConnected(now, 'play', 'other', 1));
  h.take();

  h.reconnect({ session_id: 'new', streams: [stream('other', 'x')] });
  const out = h.take();
  assert.deepEqual(h.events(out, 'publisherStateUpdate', 'playerStateUpdate').map(([n, s]) => [n, s.state, s.errorCode]), [
    ['publisherStateUpdate', 'PUBLISH_REQUESTING', E.PUBLISHER_NETWORK_INTERRUPTED_RETRYING],
    ['playerStateUpdate', 'PLAY_REQUESTING', E.PLAYER_NETWORK_INTERRUPTED],
  ]);
  assert.deepEqual(h.of(out, 'createPeer').map((o) => [o.kind, o.streamID, o.attempt]), [['publish', 'pub', 2], ['play', 'other', 2]]);
  assert.deepEqual(h.of(out, 'closePeer').map((o) => o.streamID), ['pub', 'other']);
});

test('a resumed session keeps streams that are still listed as they are', () => {
  const h = new Harness();
  h.login({ session_id: 'same' });
  h.run((core, now) => core.startPublishing(now, 'pub', {}));
  h.run((core, now) => core.offerReady(now, 'publish', 'pub', 1, 'offer-1'));
  h.reply(h.lastSent('publish'), 0, { kind: 'publish', sdp: 'answer-1' });
  h.run((core, now) => core.mediaConnected(now, 'publish', 'pub', 1));
  h.take();
  h.reconnect({ session_id: 'same', streams: [stream('pub', 'me')] });
  const out = h.take();
  assert.equal(h.events(out, 'publisherStateUpdate').length, 0);
  assert.equal(h.of(out, 'createPeer').length, 0);
});

test('logout while reconnecting resumes the kept session on a new connection and logs out at once', () => {
  const h = new Harness();
  h.login({ session_id: 'keep' });
  h.closeSocket();
  h.take();
  h.run((core, now) => core.logoutRoom(now));
  let out = h.take();
  assert.deepEqual(h.events(out, 'roomStateChanged'), [['roomStateChanged', ROOM, 'LOGOUT', 0, '{}']]);
  const conn = h.of(out, 'connect')[0].conn;
  h.open(conn);
  out = h.take();
  assert.deepEqual(h.sent(out).map((m) => [m.type, m.resume_session]), [['login', 'keep'], ['logout', undefined]]);
  h.reply(h.lastSent('logout'), 0, undefined, conn);
  out = h.take();
  assert.deepEqual(h.of(out, 'close'), [{ type: 'close', conn }]);
  assert.equal(h.events(out).length, 0);
  assert.equal(h.timers().size, 0);
});
