// Publisher and player state machines: offer -> request -> answer -> connected, refusals (1003028), retries of
// a broken transport, waiting plays and play_started/play_stopped, and stopping.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { Harness, ROOM } from './support.js';

const states = (h, out) => h.events(out, 'publisherStateUpdate', 'playerStateUpdate').map(([, s]) => [s.state, s.errorCode]);

test('publish: PUBLISH_REQUESTING, a peer, the offer in publish, the answer applied, PUBLISHING when connected', () => {
  const h = new Harness();
  h.login();
  assert.equal(h.run((core, now) => core.startPublishing(now, 'cam', { extraInfo: 'hi' })), 0);
  let out = h.take();
  assert.deepEqual(h.events(out), [['publisherStateUpdate', { state: 'PUBLISH_REQUESTING', streamID: 'cam', errorCode: 0, extendedData: '{}' }]]);
  assert.deepEqual(h.of(out, 'createPeer'), [{ type: 'createPeer', kind: 'publish', streamID: 'cam', serial: 1, attempt: 1 }]);
  h.run((core, now) => core.offerReady(now, 'publish', 'cam', 1, 'v=0 offer'));
  const publish = h.lastSent('publish');
  assert.deepEqual({ ...publish, req_id: 0 }, { type: 'publish', req_id: 0, stream_id: 'cam', extra_info: 'hi', sdp: 'v=0 offer' });
  h.reply(publish, 0, { kind: 'publish', sdp: 'v=0 answer' });
  out = h.take();
  assert.deepEqual(h.of(out, 'applyAnswer'), [{ type: 'applyAnswer', kind: 'publish', streamID: 'cam', serial: 1, attempt: 1, sdp: 'v=0 answer' }]);
  assert.equal(h.events(out).length, 0);
  h.run((core, now) => core.mediaConnected(now, 'publish', 'cam', 1));
  assert.deepEqual(states(h, h.take()), [['PUBLISHING', 0]]);
});

test('a stream published by someone else: NO_PUBLISH with 1003028 and the peer closed', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPublishing(now, 'taken', {}));
  h.run((core, now) => core.offerReady(now, 'publish', 'taken', 1, 'offer'));
  h.take();
  h.reply(h.lastSent('publish'), E.PUBLISHER_STREAM_ID_ALREADY_PUBLISHED);
  const out = h.take();
  assert.deepEqual(states(h, out), [['NO_PUBLISH', E.PUBLISHER_STREAM_ID_ALREADY_PUBLISHED]]);
  assert.deepEqual(h.of(out, 'closePeer'), [{ type: 'closePeer', kind: 'publish', streamID: 'taken', serial: 1 }]);
  assert.deepEqual(h.of(out, 'streamEnded'), [{ type: 'streamEnded', kind: 'publish', streamID: 'taken', serial: 1 }]);
  // It is forgotten: publishing it again is allowed, and its outputs tell the new publish from the old.
  assert.equal(h.run((core, now) => core.startPublishing(now, 'taken', {})), 0);
  assert.deepEqual(h.of(h.take(), 'createPeer').map((o) => o.serial), [2]);
});

test('publishing before login is refused; the same stream twice and a fifth stream are refused', () => {
  const h = new Harness();
  assert.equal(h.run((core, now) => core.startPublishing(now, 'a', {})), E.COMMON_NOT_LOGGED_IN);
  h.login();
  for (const id of ['a', 'b', 'c', 'd']) assert.equal(h.run((core, now) => core.startPublishing(now, id, {})), 0);
  assert.equal(h.run((core, now) => core.startPublishing(now, 'a', {})), E.PUBLISHER_STREAM_ID_ALREADY_PUBLISHED);
  assert.equal(h.run((core, now) => core.startPublishing(now, 'e', {})), E.PUBLISHER_CHANNEL_ALREADY_PUBLISHING);
  assert.equal(h.run((core, now) => core.startPublishing(now, 'bad id', {})), E.COMMON_STREAM_ID_INVALID_CHARACTER);
  assert.equal(h.run((core, now) => core.startPublishing(now, 'f', { extraInfo: 'x'.repeat(1025) })), E.PUBLISHER_EXTRA_INFO_TOO_LONG);
});

test('a publish started during login waits for it, then offers', () => {
  const h = new Harness();
  h.run((core, now) => core.loginRoom(now, 1, ROOM, 't', { userID: 'me' }, {}));
  h.run((core, now) => core.startPublishing(now, 'early', {}));
  assert.equal(h.of(h.take(), 'createPeer').length, 0);
  h.open();
  h.reply(h.lastSent('login'), 0, { kind: 'login', session_id: 's', heartbeat_interval_ms: 10000, heartbeat_timeout_ms: 30000, users: [], streams: [], room_extra_info: [], online_count: 1 });
  assert.deepEqual(h.of(h.take(), 'createPeer').map((o) => o.streamID), ['early']);
});

test('a failed transport is retried with growing delays and given up with 1003021 after five failures', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPublishing(now, 'cam', {}));
  const delays = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    h.run((core, now) => core.offerReady(now, 'publish', 'cam', attempt, `offer-${attempt}`));
    h.reply(h.lastSent('publish'), 0, { kind: 'publish', sdp: 'answer' });
    h.run((core, now) => core.mediaFailed(now, 'publish', 'cam', attempt));
    if (attempt < 5) {
      const before = h.now;
      delays.push(h.fire(':retry').at - before);
    }
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000]);
  const told = states(h, h.take());
  assert.deepEqual(told, [
    ['PUBLISH_REQUESTING', 0],
    ['PUBLISH_REQUESTING', E.PUBLISHER_NETWORK_INTERRUPTED_RETRYING],
    ['NO_PUBLISH', E.PUBLISHER_RETRY_TIMEOUT],
  ]);
  // A failure of an older attempt is ignored.
  h.run((core, now) => core.mediaFailed(now, 'publish', 'cam', 1));
  assert.equal(h.take().length, 0);
});

test('stopPublishingStream sends stop_publish and tells NO_PUBLISH 0; logout ends every stream with 0 first', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPublishing(now, 'a', {}));
  h.run((core, now) => core.startPublishing(now, 'b', {}));
  h.take();
  assert.equal(h.run((core, now) => core.stopPublishing(now, 'a')), 0);
  let out = h.take();
  assert.deepEqual(h.sent(out).map((m) => [m.type, m.stream_id]), [['stop_publish', 'a']]);
  assert.deepEqual(states(h, out), [['NO_PUBLISH', 0]]);
  assert.equal(h.run((core, now) => core.stopPublishing(now, 'a')), 0, 'stopping what is not published is a no-op');
  h.run((core, now) => core.logoutRoom(now));
  out = h.take();
  assert.deepEqual(h.events(out).map(([n, a, b]) => (typeof a === 'object' ? a.state : b)), ['NO_PUBLISH', 'DISCONNECTED', 'LOGOUT']);
});

test('setStreamExtraInfo updates a published stream; other streams are refused with 1003053', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPublishing(now, 'cam', {}));
  assert.equal(h.run((core, now) => core.setStreamExtraInfo(now, 4, 'other', 'x')), E.PUBLISHER_UPDATE_EXTRA_INFO_FAILED);
  assert.equal(h.run((core, now) => core.setStreamExtraInfo(now, 5, 'cam', 'new')), 0);
  const msg = h.lastSent('set_stream_extra_info');
  assert.deepEqual([msg.stream_id, msg.extra_info], ['cam', 'new']);
  h.reply(msg);
  assert.deepEqual(h.of(h.take(), 'settle'), [{ type: 'settle', ticket: 5, value: { errorCode: 0 } }]);
  h.run((core, now) => core.offerReady(now, 'publish', 'cam', 1, 'offer'));
  assert.equal(h.lastSent('publish').extra_info, 'new', 'later publishes carry it');
});

test('play of a stream not published yet waits (1004002), then plays on play_started and settles', () => {
  const h = new Harness();
  h.login();
  assert.equal(h.run((core, now) => core.startPlaying(now, 9, 'later', { video: true, audio: false })), 0);
  let out = h.take();
  assert.deepEqual(states(h, out), [['PLAY_REQUESTING', 0]]);
  assert.deepEqual(h.of(out, 'createPeer'), [{ type: 'createPeer', kind: 'play', streamID: 'later', serial: 1, attempt: 1, video: true, audio: false }]);
  h.run((core, now) => core.offerReady(now, 'play', 'later', 1, 'play-offer'));
  const play = h.lastSent('play');
  assert.deepEqual([play.stream_id, play.sdp, play.wait], ['later', 'play-offer', true]);
  h.reply(play, E.PLAYER_STREAM_NOT_EXIST, { kind: 'play', waiting: true });
  out = h.take();
  assert.deepEqual(states(h, out), [['PLAY_REQUESTING', E.PLAYER_STREAM_NOT_EXIST]]);
  assert.equal(h.of(out, 'settle').length, 0, 'still waiting');
  h.receive({ type: 'play_started', stream_id: 'later', sdp: 'play-answer' });
  out = h.take();
  assert.deepEqual(h.of(out, 'applyAnswer'), [{ type: 'applyAnswer', kind: 'play', streamID: 'later', serial: 1, attempt: 1, sdp: 'play-answer' }]);
  h.run((core, now) => core.mediaConnected(now, 'play', 'later', 1));
  out = h.take();
  assert.deepEqual(states(h, out), [['PLAYING', 0]]);
  assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 9, value: 'later' }]);
});

test('a played stream that stops is waited for again with a fresh peer', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPlaying(now, 9, 's', {}));
  h.run((core, now) => core.offerReady(now, 'play', 's', 1, 'o1'));
  h.reply(h.lastSent('play'), 0, { kind: 'play', sdp: 'a1' });
  h.run((core, now) => core.mediaConnected(now, 'play', 's', 1));
  h.take();
  h.receive({ type: 'play_stopped', stream_id: 's', code: 1 });
  const out = h.take();
  assert.deepEqual(states(h, out), [['PLAY_REQUESTING', E.PLAYER_STREAM_NOT_EXIST]]);
  assert.deepEqual(h.of(out, 'closePeer').map((o) => o.streamID), ['s']);
  assert.deepEqual(h.of(out, 'createPeer').map((o) => o.attempt), [2]);
  h.run((core, now) => core.offerReady(now, 'play', 's', 2, 'o2'));
  assert.equal(h.lastSent('play').sdp, 'o2');
});

test('a play the server refuses ends with its code and rejects the promise', () => {
  const h = new Harness();
  h.login();
  h.run((core, now) => core.startPlaying(now, 3, 's', {}));
  h.run((core, now) => core.offerReady(now, 'play', 's', 1, 'o'));
  h.take();
  h.reply(h.lastSent('play'), E.PLAYER_PLAY_FAILED);
  const out = h.take();
  assert.deepEqual(states(h, out), [['NO_PLAY', E.PLAYER_PLAY_FAILED]]);
  assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 3, error: E.PLAYER_PLAY_FAILED }]);
});

test('stopPlayingStream sends stop_play, tells NO_PLAY 0 and rejects a promise still pending', () => {
  const h = new Harness();
  h.login();
  assert.equal(h.run((core, now) => core.stopPlaying(now, 's')), E.PLAYER_STREAM_NOT_PLAYED);
  h.run((core, now) => core.startPlaying(now, 3, 's', {}));
  h.take();
  assert.equal(h.run((core, now) => core.stopPlaying(now, 's')), 0);
  const out = h.take();
  assert.deepEqual(h.sent(out).map((m) => [m.type, m.stream_id]), [['stop_play', 's']]);
  assert.deepEqual(states(h, out), [['NO_PLAY', 0]]);
  assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 3, error: E.PLAYER_STREAM_NOT_PLAYED }]);
  assert.deepEqual(h.of(out, 'closePeer').map((o) => o.streamID), ['s']);
});

test('startPlaying checks its arguments and state', () => {
  const h = new Harness();
  assert.equal(h.run((core, now) => core.startPlaying(now, 1, 's', {})), E.COMMON_NOT_LOGGED_IN);
  h.login();
  assert.equal(h.run((core, now) => core.startPlaying(now, 1, '', {})), E.COMMON_STREAM_ID_NULL);
  assert.equal(h.run((core, now) => core.startPlaying(now, 1, 's'.repeat(257), {})), E.COMMON_STREAM_ID_TOO_LONG);
  assert.equal(h.run((core, now) => core.startPlaying(now, 1, 's', { video: false, audio: false })), E.COMMON_INVALID_PARAMETER);
});

test('a publish reply lost with the connection is asked again, with a fresh offer, once reconnected', () => {
  const h = new Harness();
  h.login({ session_id: 'same' });
  h.run((core, now) => core.startPublishing(now, 'cam', {}));
  h.run((core, now) => core.offerReady(now, 'publish', 'cam', 1, 'o1'));
  h.closeSocket();
  h.take();
  h.reconnect({ session_id: 'same' });
  const out = h.take();
  assert.deepEqual(h.of(out, 'createPeer').map((o) => o.attempt), [2]);
  h.run((core, now) => core.offerReady(now, 'publish', 'cam', 2, 'o2'));
  assert.equal(h.lastSent('publish').sdp, 'o2');
});
