// Heartbeats at the login reply's interval, postponed by any other request, and a silent server taken for a
// broken connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, ROOM } from './support.js';

test('heartbeats go out every heartbeat_interval_ms of the login reply', () => {
  const h = new Harness();
  h.login({ heartbeat_interval_ms: 4000 });
  const start = h.now;
  const times = [];
  for (let i = 0; i < 3; i++) {
    h.fire(':heartbeat');
    const hb = h.lastSent('heartbeat');
    times.push(h.now - start);
    h.reply(hb, 0, { kind: 'heartbeat', server_time_ms: 1 });
  }
  assert.deepEqual(times, [4000, 8000, 12000]);
  assert.equal(h.sent(h.log, 'heartbeat').length, 3);
});

test('any request counts as a heartbeat: the next one waits a full interval after it', () => {
  const h = new Harness();
  h.login({ heartbeat_interval_ms: 4000 });
  const start = h.now;
  h.advance(3000);
  h.run((core, now) => core.sendBroadcastMessage(now, 9, ROOM, 'hello'));
  h.reply(h.lastSent('send_broadcast_message'), 0, { kind: 'broadcast_message', message_id: 1 });
  h.fire(':heartbeat');
  assert.equal(h.sent(h.log, 'heartbeat').length, 0, 'no heartbeat 1 s after a request');
  assert.equal(h.timer(':heartbeat').at, start + 7000);
  h.fire(':heartbeat');
  assert.equal(h.sent(h.log, 'heartbeat').length, 1);
  assert.equal(h.now, start + 7000);
});

test('a server silent for two intervals and a second is a broken connection', () => {
  const h = new Harness();
  h.login({ heartbeat_interval_ms: 1000, heartbeat_timeout_ms: 30_000 });
  h.take();
  h.fire(':heartbeat'); // t+1000: sent, no reply
  h.fire(':heartbeat'); // t+2000
  h.fire(':heartbeat'); // t+3000: exactly the liveness bound, still alive
  assert.equal(h.events(h.take(), 'roomStateChanged').length, 0);
  h.fire(':heartbeat'); // t+4000: silent for longer than 2 * 1000 + 1000
  const out = h.take();
  assert.deepEqual(h.events(out, 'roomStateChanged'), [['roomStateChanged', ROOM, 'RECONNECTING', 1002051, '{}']]);
  assert.deepEqual(h.of(out, 'close'), [{ type: 'close', conn: 1 }]);
});

test('the liveness bound never exceeds the server heartbeat timeout', () => {
  const h = new Harness();
  h.login({ heartbeat_interval_ms: 1000, heartbeat_timeout_ms: 1500 });
  h.take();
  h.fire(':heartbeat'); // t+1000: alive
  h.fire(':heartbeat'); // t+2000: silent 2000 > 1500
  assert.equal(h.events(h.take(), 'roomStateChanged')[0][2], 'RECONNECTING');
});
