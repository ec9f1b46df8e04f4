// Drives an EngineCore the way a host would, with a fake clock and a scripted server, so tests read as
// "the server says X, the app hears Y, the core sends Z".

import { EngineCore } from '../core.js';

export const ROOM = 'room-1';
export const ME = { userID: 'me', userName: 'Me' };

export const user = (id) => ({ user_id: id, user_name: id.toUpperCase() });
export const stream = (id, owner, extra = '') => ({ user: user(owner), stream_id: id, extra_info: extra });

/** A login reply's result. */
export function loginResult(over = {}) {
  return {
    kind: 'login',
    session_id: 'sess-1',
    heartbeat_interval_ms: 10_000,
    heartbeat_timeout_ms: 30_000,
    server_time_ms: 1_764_028_800_000,
    users: [user('me')],
    streams: [],
    room_extra_info: [],
    online_count: 1,
    ...over,
  };
}

/** A well-formed Token04 (GCM layout) with nothing real inside. */
export function fakeToken() {
  const bytes = [0, 0, 0, 0, 0x70, 0, 0, 0, 0, 12, ...new Array(12).fill(7), 0, 4, 1, 2, 3, 4, 1];
  return `04${Buffer.from(bytes).toString('base64')}`;
}

export class Harness {
  now = 1000;
  /** Every output so far, in order; `take()` hands out the ones not yet looked at. */
  log = [];
  #seen = 0;

  constructor({ hasAppSign = false, timing = {} } = {}) {
    this.core = new EngineCore({ appID: 1234567890, server: 'ws://sfu.test:8080/ws', hasAppSign, timing });
  }

  #collect() {
    this.log.push(...this.core.drain());
  }

  /** Runs `f(core, now)` and returns the outputs it produced. */
  run(f) {
    const result = f(this.core, this.now);
    this.#collect();
    return result;
  }

  /** The outputs since the last take(). */
  take() {
    this.#collect();
    const fresh = this.log.slice(this.#seen);
    this.#seen = this.log.length;
    return fresh;
  }

  events(outputs, ...names) {
    return outputs.filter((o) => o.type === 'event' && (!names.length || names.includes(o.name)))
      .map((o) => [o.name, ...o.args]);
  }

  sent(outputs, type) {
    return outputs.filter((o) => o.type === 'send' && (!type || o.message.type === type)).map((o) => o.message);
  }

  of(outputs, type) {
    return outputs.filter((o) => o.type === type);
  }

  /** The timers armed and not cancelled or fired since, by name. */
  timers() {
    this.#collect();
    const armed = new Map();
    for (const o of this.log) {
      if (o.type === 'arm') armed.set(o.name, o.at);
      if (o.type === 'cancel' || o.type === 'fired') armed.delete(o.name);
    }
    return armed;
  }

  timer(suffix) {
    for (const [name, at] of this.timers()) if (name.endsWith(suffix)) return { name, at };
    return undefined;
  }

  /** Moves the clock to the earliest timer ending in `suffix` and fires it. */
  fire(suffix) {
    const t = this.timer(suffix);
    if (!t) throw new Error(`no timer ${suffix} armed; armed: ${[...this.timers().keys()].join(', ')}`);
    this.now = Math.max(this.now, t.at);
    this.log.push({ type: 'fired', name: t.name });
    this.run((core, now) => core.timerFired(now, t.name));
    return t;
  }

  advance(ms) {
    this.now += ms;
  }

  /** The last connection the core opened. */
  lastConn() {
    const c = this.log.filter((o) => o.type === 'connect').at(-1);
    return c?.conn;
  }

  open(conn = this.lastConn()) {
    this.run((core, now) => core.socketOpened(now, conn));
  }

  receive(message, conn = this.lastConn()) {
    this.run((core, now) => core.socketMessage(now, conn, JSON.stringify(message)));
  }

  closeSocket(conn = this.lastConn()) {
    this.run((core, now) => core.socketClosed(now, conn));
  }

  /** The last message of `type` sent on any connection. */
  lastSent(type) {
    this.#collect();
    return this.log.filter((o) => o.type === 'send' && o.message.type === type).at(-1)?.message;
  }

  reply(req, code = 0, result = undefined, conn = this.lastConn()) {
    const msg = { type: 'reply', req_id: req.req_id, code, message: '' };
    if (result) msg.result = result;
    this.receive(msg, conn);
  }

  /** Logs in with a token up to LOGINED, with `result` overriding the login reply. */
  login(result = {}, { config = { userUpdate: true }, ticket = 1 } = {}) {
    const code = this.run((core, now) => core.loginRoom(now, ticket, ROOM, 'token-1', ME, config));
    if (code) throw new Error(`loginRoom refused: ${code}`);
    this.open();
    this.reply(this.lastSent('login'), 0, loginResult(result));
    return this.take();
  }

  /** Breaks the connection and reconnects with `result` as the new login reply. */
  reconnect(result = {}) {
    this.closeSocket();
    this.fire(':retry');
    this.open();
    const login = this.lastSent('login');
    this.reply(login, 0, loginResult(result));
    return login;
  }
}
