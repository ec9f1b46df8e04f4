// The shell around the core: ZegoExpressEngine with a scripted WebSocket and real timers, so the wiring of
// sockets, timers, signing, promises and events is exercised without a browser.

import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ZegoExpressEngine, ZegoError, ErrorCode as E, VERSION } from '../index.js';
import { sign } from '../signature.js';

const APP_SIGN = '0123456789abcdef'.repeat(4);
const sockets = [];

/** A WebSocket whose server side the test plays. */
class FakeWebSocket {
  readyState = 0;
  sent = [];
  constructor(url) {
    this.url = url;
    sockets.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
    this.closedByClient = true;
  }
  /** Server side. */
  deliver(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  last(type) {
    return this.sent.filter((m) => m.type === type).at(-1);
  }
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what, f, ms = 2000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(5);
  }
}

function loginReply(req, over = {}) {
  return {
    type: 'reply', req_id: req.req_id, code: 0, message: 'Success.',
    result: { kind: 'login', session_id: 'sess', heartbeat_interval_ms: 60_000, heartbeat_timeout_ms: 180_000, server_time_ms: 1, users: [], streams: [], room_extra_info: [], online_count: 1, ...over },
  };
}

let engine;
beforeEach(() => {
  sockets.length = 0;
  globalThis.WebSocket = FakeWebSocket;
});
afterEach(() => {
  engine?.destroyEngine();
  engine = undefined;
  delete globalThis.WebSocket;
});

test('the constructor refuses a bad app ID, app_sign or server with their codes', () => {
  const code = (f) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ZegoError);
      return e.code;
    }
    return 0;
  };
  assert.equal(code(() => new ZegoExpressEngine(0, 'ws://h:1/ws')), E.ENGINE_APP_ID_INCORRECT);
  assert.equal(code(() => new ZegoExpressEngine(1, 'ws://h:1/ws', { appSign: 'abc' })), E.ENGINE_APP_SIGN_INCORRECT);
  assert.equal(code(() => new ZegoExpressEngine(1, 'http://h:1/ws')), E.ENGINE_SERVER_ADDRESS_INVALID);
  assert.equal(code(() => new ZegoExpressEngine(1, 'ws://h:1/ws', { reconnectWindowMs: 10 })), E.COMMON_INVALID_PARAMETER);
  assert.equal(code(() => new ZegoExpressEngine(1, 'wss://h/ws', { appSign: APP_SIGN })), 0);
});

test('getVersion is the package version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url)));
  assert.equal(VERSION, pkg.version);
  assert.equal(new ZegoExpressEngine(1, 'ws://h:1/ws').getVersion(), pkg.version);
});

test('loginRoom with the app_sign resolves true, with the events in order and a valid proof', async () => {
  engine = new ZegoExpressEngine(1234567890, 'ws://sfu.test/ws', { appSign: APP_SIGN });
  const heard = [];
  engine.on('roomStateChanged', (roomID, reason, code) => heard.push([roomID, reason, code]));
  const counts = [];
  const count = (roomID, n) => counts.push(n);
  engine.on('roomOnlineUserCountUpdate', count);
  const login = engine.loginRoom('r1', '', { userID: 'u1', userName: 'U1' }, { userUpdate: true });
  assert.deepEqual(heard, [['r1', 'LOGINING', 0]]);
  const ws = sockets[0];
  assert.equal(ws.url, 'ws://sfu.test/ws');
  const msg = await until('login', () => ws.last('login'));
  const c = msg.credentials;
  assert.equal(c.kind, 'app_sign');
  assert.ok(Math.abs(c.timestamp_ms - Date.now()) < 5000);
  assert.equal(c.signature, await sign(APP_SIGN, 1234567890, 'u1', 'r1', c.timestamp_ms, c.nonce));
  ws.deliver(loginReply(msg, { online_count: 4 }));
  assert.equal(await login, true);
  assert.deepEqual(heard.at(-1), ['r1', 'LOGINED', 0]);
  assert.deepEqual(counts, [4]);
  engine.off('roomOnlineUserCountUpdate', count);
  ws.deliver({ type: 'online_user_count', room_id: 'r1', count: 5 });
  assert.deepEqual(counts, [4], 'off() removed the handler');
});

test('a refused login rejects with a ZegoError carrying the server code', async () => {
  engine = new ZegoExpressEngine(1, 'ws://sfu.test/ws');
  const login = engine.loginRoom('r1', 'token', { userID: 'u1' });
  const ws = sockets[0];
  const msg = await until('login', () => ws.last('login'));
  ws.deliver({ type: 'reply', req_id: msg.req_id, code: E.ROOM_TOKEN_EXPIRED, message: 'Token expired.' });
  await assert.rejects(login, (e) => e instanceof ZegoError && e.code === E.ROOM_TOKEN_EXPIRED && e.msg === 'Token expired.');
  assert.ok(ws.closedByClient);
});

test('bad arguments reject (login) or resolve with the code (IM) without touching the network', async () => {
  engine = new ZegoExpressEngine(1, 'ws://sfu.test/ws');
  await assert.rejects(engine.loginRoom('', 'token', { userID: 'u1' }), (e) => e.code === E.ROOM_ROOM_ID_NULL);
  await assert.rejects(engine.loginRoom('r', '', { userID: 'u1' }), (e) => e.code === E.ROOM_NO_TOKEN_NO_APP_SIGN);
  assert.deepEqual(await engine.sendBroadcastMessage('r', ''), { errorCode: E.IM_CONTENT_NULL, messageID: 0 });
  assert.deepEqual(await engine.sendCustomCommand('r', 'x', []), { errorCode: E.IM_WRONG_ROOM });
  assert.equal(sockets.length, 0);
});

test('IM requests resolve with the reply; a broken socket reconnects through the real timers', async () => {
  engine = new ZegoExpressEngine(1, 'ws://sfu.test/ws');
  const reasons = [];
  engine.on('roomStateChanged', (roomID, reason) => reasons.push(reason));
  const login = engine.loginRoom('r1', 'token', { userID: 'u1' });
  let ws = sockets[0];
  ws.deliver(loginReply(await until('login', () => ws.last('login'))));
  await login;
  const sent = engine.sendBroadcastMessage('r1', 'hello');
  const req = ws.last('send_broadcast_message');
  assert.equal(req.message, 'hello');
  ws.deliver({ type: 'reply', req_id: req.req_id, code: 0, message: '', result: { kind: 'broadcast_message', message_id: 77 } });
  assert.deepEqual(await sent, { errorCode: 0, messageID: 77 });

  ws.drop();
  assert.equal(reasons.at(-1), 'RECONNECTING');
  ws = await until('a reconnect', () => sockets[1]);
  const again = await until('the resume login', () => ws.last('login'));
  assert.equal(again.resume_session, 'sess');
  ws.deliver(loginReply(again));
  assert.equal(reasons.at(-1), 'RECONNECTED');
});

test('destroyEngine logs out quietly and later calls fail with 1000001', async () => {
  engine = new ZegoExpressEngine(1, 'ws://sfu.test/ws');
  const login = engine.loginRoom('r1', 'token', { userID: 'u1' });
  const ws = sockets[0];
  ws.deliver(loginReply(await until('login', () => ws.last('login'))));
  await login;
  let heard = 0;
  engine.on('roomStateChanged', () => heard++);
  engine.destroyEngine();
  assert.ok(ws.last('logout'));
  assert.equal(heard, 0);
  await assert.rejects(engine.loginRoom('r1', 'token', { userID: 'u1' }), (e) => e.code === E.COMMON_ENGINE_NOT_CREATED);
  // The logout's reply closes the socket.
  ws.deliver({ type: 'reply', req_id: ws.last('logout').req_id, code: 0, message: '' });
  assert.ok(ws.closedByClient);
});

test('an event handler that calls the engine is served after the current output', async () => {
  engine = new ZegoExpressEngine(1, 'ws://sfu.test/ws');
  engine.on('roomStateChanged', (roomID, reason) => {
    if (reason === 'LOGINED') engine.sendBroadcastMessage(roomID, 'from a handler');
  });
  const login = engine.loginRoom('r1', 'token', { userID: 'u1' });
  const ws = sockets[0];
  ws.deliver(loginReply(await until('login', () => ws.last('login'))));
  await login;
  assert.deepEqual(ws.sent.map((m) => m.type), ['login', 'send_broadcast_message']);
});
