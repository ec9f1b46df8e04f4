// One login to one room over the signaling WebSocket, as a state machine without I/O (the native SDK's room
// session): log in with a token or the app_sign proof, heartbeats, server events as app events, and reconnecting
// with `resume_session` and a snapshot diff when the connection breaks. Its host (EngineCore) does the I/O.

import { ErrorCode as E, PROTOCOL_VERSION } from './codes.js';
import { Backoff } from './backoff.js';
import { RoomSnapshot, reasonForGone } from './snapshot.js';
import {
  roomStateEvents, streamDeleteExtendedData, toBroadcastMessage, toRoomExtraInfo, toStream, toUser, EMPTY_JSON,
} from './wire.js';

/** Refusals worth retrying while reconnecting: the server is busy, not saying no. */
const TRANSIENT = new Set([E.ROOM_RATE_LIMITED_LOGIN, E.ROOM_INNER_ERROR]);

const UPDATE_TYPE = { add: 'ADD', delete: 'DELETE' };

/**
 * Phases: 'login' (first login), 'up' (logged in, connected), 'reconnecting', 'ended' (on its own: login
 * failed, kicked, reconnecting gave up) and 'left' (logged out; connections may still be winding down).
 */
export class RoomSession {
  phase = 'login';
  /** Once set the app hears nothing more from this session. */
  closed = false;
  /** The login in progress: { conn, resume, opened, loginReq, attempts }. */
  attempt = null;
  conn = null;
  sessionID = null;
  snapshot = new RoomSnapshot();
  /** req_id -> { onReply, timer } of requests on the wire. */
  pending = new Map();
  /** Requests waiting for the connection: { build, onReply, timer }. */
  waiting = [];
  /** Messages without a reply worth waiting for (stops), kept for a resumed session while disconnected. */
  deferred = [];
  /** conn -> { logoutReq } of connections being logged out and closed. */
  leaving = new Map();
  connectFailures = 0;
  backoff = new Backoff();
  deadline = 0;

  /**
   * @param core the host (EngineCore)
   * @param {number} id unique among the engine's sessions
   * @param params { server, appID, roomID, user: wire user, token, notifyUsers, maxMemberCount, timing, ticket }
   */
  constructor(core, id, params) {
    this.core = core;
    this.id = id;
    this.server = params.server;
    this.appID = params.appID;
    this.roomID = params.roomID;
    this.user = params.user;
    this.token = params.token;
    this.notifyUsers = params.notifyUsers;
    this.maxMemberCount = params.maxMemberCount;
    this.timing = params.timing;
    this.ticket = params.ticket;
  }

  get me() {
    return this.user.user_id;
  }

  get up() {
    return this.phase === 'up';
  }

  // ----- I/O plumbing -----

  #name(what) {
    return `room${this.id}:${what}`;
  }

  #arm(what, at) {
    this.core.arm(this.#name(what), at, this);
  }

  #cancel(what) {
    this.core.cancel(this.#name(what));
  }

  #emit(events) {
    if (this.closed) return;
    for (const [name, args] of events) this.core.emit(name, args);
  }

  /** The last events of the session; nothing is told after them. */
  #closeWith(events) {
    if (this.closed) return;
    this.#emit(events);
    this.closed = true;
  }

  #send(now, msg) {
    this.core.send(this.conn, msg);
    this.lastSent = now;
  }

  /** Bounds a timeout by the reconnect window while reconnecting. */
  #bound(now, ms) {
    return this.phase === 'reconnecting' ? Math.max(0, Math.min(ms, this.deadline - now)) : ms;
  }

  // ----- the app's calls -----

  start(now) {
    this.#emit(roomStateEvents(this.roomID, 'LOGINING', 0));
    this.#connect(now, null);
  }

  setToken(token) {
    this.token = token;
  }

  /**
   * A request that waits for the connection first, bounded by `timeoutMs` in all. `onReply(now, reply)` gets
   * the server's reply, or `{ failure: 'lost' | 'timeout' }` when the connection broke or time ran out.
   */
  request(now, build, onReply, timeoutMs = this.timing.requestTimeoutMs) {
    if (this.phase === 'ended' || this.phase === 'left') {
      onReply(now, { failure: 'lost' });
      return;
    }
    const entry = { build, onReply, timer: `req${this.core.nextTimerId()}` };
    this.#arm(entry.timer, now + timeoutMs);
    if (this.up) this.#sendRequest(now, entry);
    else this.waiting.push(entry);
  }

  #sendRequest(now, entry) {
    const reqID = this.core.nextReqId();
    this.pending.set(reqID, entry);
    this.#send(now, entry.build(reqID));
  }

  /** Sends now, or keeps it for a resumed session while disconnected, so a stop still reaches the server. */
  sendOrDefer(now, build) {
    if (this.up) this.#send(now, build(this.core.nextReqId()));
    else if (this.phase === 'reconnecting') this.deferred.push(build);
  }

  /** Logs out: the app hears LOGOUT (unless `quiet`) and nothing after; the server is told as far as it can be. */
  logout(now, quiet = false) {
    if (this.phase === 'ended' || this.phase === 'left') return;
    if (quiet) this.closed = true;
    this.#closeWith(roomStateEvents(this.roomID, 'LOGOUT', 0));
    const was = this.phase;
    this.phase = 'left';
    this.#stopTimers();
    this.#failRequests(now);
    if (this.ticket !== undefined) {
      this.core.fail(this.ticket, E.ROOM_DISCONNECTED);
      this.ticket = undefined;
    }
    if (was === 'up') {
      this.#leave(now, this.conn);
      this.conn = null;
      return;
    }
    const attempt = this.attempt;
    this.attempt = null;
    if (attempt && attempt.loginReq !== null) {
      // The server handles a connection's messages in order: this logout ends whatever the login started.
      this.#leave(now, attempt.conn);
      return;
    }
    if (attempt) this.core.closeSocket(attempt.conn);
    if (was === 'reconnecting') this.#resumeAndLeave(now);
  }

  // ----- connecting and logging in -----

  #connect(now, resume) {
    const conn = this.core.openSocket(this, this.server);
    this.attempt = { conn, resume, opened: false, loginReq: null };
    this.#arm('connect', now + this.#bound(now, this.timing.connectTimeoutMs));
  }

  #loginMessage(reqID, credentials, resume) {
    const msg = {
      type: 'login',
      req_id: reqID,
      protocol_version: PROTOCOL_VERSION,
      app_id: this.appID,
      room_id: this.roomID,
      user: this.user,
      credentials,
      is_user_status_notify: this.notifyUsers,
      max_member_count: this.maxMemberCount,
    };
    if (resume) msg.resume_session = resume;
    return msg;
  }

  /** Credentials for a login on `conn`: the token at once, or the app_sign proof from the host (async). */
  #credentials(now, conn) {
    if (this.token) this.#credentialsReady(now, conn, { kind: 'token', token: this.token });
    else this.core.requestSignature(conn, { appID: this.appID, userID: this.me, roomID: this.roomID });
  }

  socketOpened(now, conn) {
    if (this.attempt?.conn === conn) {
      this.attempt.opened = true;
      this.#cancel('connect');
      this.#credentials(now, conn);
    } else if (this.leaving.get(conn)?.resume) {
      this.#credentials(now, conn);
    }
  }

  /** The app_sign proof the host computed for a login on `conn`. */
  signed(now, conn, credentials) {
    this.#credentialsReady(now, conn, credentials);
  }

  #credentialsReady(now, conn, credentials) {
    const attempt = this.attempt;
    if (attempt?.conn === conn && attempt.opened && attempt.loginReq === null) {
      attempt.loginReq = this.core.nextReqId();
      this.core.send(conn, this.#loginMessage(attempt.loginReq, credentials, attempt.resume));
      this.#arm('login', now + this.#bound(now, this.timing.loginTimeoutMs));
      return;
    }
    const leaving = this.leaving.get(conn);
    if (leaving?.resume && leaving.logoutReq === null) {
      // Resume the session the server keeps, then end it at once.
      this.core.send(conn, this.#loginMessage(this.core.nextReqId(), credentials, this.sessionID));
      leaving.logoutReq = this.core.nextReqId();
      this.core.send(conn, { type: 'logout', req_id: leaving.logoutReq });
    }
  }

  socketMessage(now, conn, msg) {
    if (conn === this.conn && this.up) {
      this.lastHeard = now;
      this.#handle(now, msg);
    } else if (this.attempt?.conn === conn) {
      if (msg.type === 'reply' && msg.req_id === this.attempt.loginReq) this.#loginReply(now, msg);
    } else if (this.leaving.has(conn)) {
      if (msg.type === 'reply' && msg.req_id === this.leaving.get(conn).logoutReq) this.#finishLeaving(conn);
    }
  }

  socketClosed(now, conn) {
    if (this.attempt?.conn === conn) this.#attemptFailed(now, 'connect');
    else if (conn === this.conn && this.up) this.#broken(now);
    else if (this.leaving.has(conn)) {
      this.leaving.delete(conn);
      this.#cancel(`leave${conn}`);
    }
  }

  timerFired(now, name) {
    const what = name.slice(this.#name('').length);
    if (what === 'connect') this.#attemptFailed(now, 'connect');
    else if (what === 'login') this.#attemptFailed(now, 'timeout');
    else if (what === 'retry') this.#connect(now, this.sessionID);
    else if (what === 'heartbeat') this.#heartbeat(now);
    else if (what.startsWith('leave')) this.#finishLeaving(Number(what.slice(5)));
    else if (what.startsWith('req')) this.#requestTimedOut(now, what);
  }

  #loginReply(now, msg) {
    if (msg.code === 0 && msg.result?.kind === 'login') this.#loggedIn(now, msg.result);
    else this.#attemptFailed(now, 'refused', msg.code === 0 ? E.ROOM_INNER_ERROR : msg.code);
  }

  /** A login attempt that did not get in: retried, or the end of the session. */
  #attemptFailed(now, why, code) {
    const attempt = this.attempt;
    this.attempt = null;
    this.#cancel('connect');
    this.#cancel('login');
    if (why === 'timeout' && this.phase === 'login' && attempt.loginReq !== null) {
      // A reply that is merely late must not leave a session behind.
      this.#leave(now, attempt.conn);
    } else {
      this.core.closeSocket(attempt.conn);
    }
    if (this.phase === 'login') {
      if (why === 'refused') this.#end(now, 'LOGIN_FAILED', code);
      else if (why === 'timeout') this.#end(now, 'LOGIN_FAILED', E.ROOM_LOGIN_TIMEOUT);
      else if (++this.connectFailures >= this.timing.connectAttempts) {
        this.#end(now, 'LOGIN_FAILED', E.ROOM_CONNECT_FAILED);
      } else {
        this.#arm('retry', now + this.backoff.next());
      }
    } else if (why === 'refused' && !TRANSIENT.has(code)) {
      this.#end(now, 'RECONNECT_FAILED', code);
    } else {
      this.#scheduleRetry(now);
    }
  }

  #loggedIn(now, r) {
    this.#cancel('login');
    const reconnect = this.phase === 'reconnecting';
    const resumed = reconnect && r.session_id === this.sessionID;
    this.conn = this.attempt.conn;
    this.attempt = null;
    this.sessionID = r.session_id;
    this.interval = Math.max(100, r.heartbeat_interval_ms);
    const timeout = Math.max(200, r.heartbeat_timeout_ms);
    // Silence for two heartbeats (and a margin) means the path is dead even if the socket has not said so.
    this.liveness = Math.min(this.interval * 2 + 1000, timeout);
    this.lastHeard = now;
    this.lastSent = now;
    this.tokenExpireTime = r.token_expire_time;
    const next = RoomSnapshot.fromLogin(this.me, r.users, r.streams, r.room_extra_info);
    let events;
    if (reconnect) {
      events = [
        ...roomStateEvents(this.roomID, 'RECONNECTED', 0),
        ...this.snapshot.diff(next, this.roomID, this.notifyUsers, reasonForGone(resumed)),
      ];
    } else {
      events = [
        ...roomStateEvents(this.roomID, 'LOGINED', 0),
        ...next.firstEvents(this.roomID, this.notifyUsers),
        ['roomOnlineUserCountUpdate', [this.roomID, r.online_count]],
      ];
    }
    this.snapshot = next;
    this.phase = 'up';
    this.backoff = new Backoff();
    const deferred = this.deferred;
    this.deferred = [];
    if (resumed) for (const build of deferred) this.#send(now, build(this.core.nextReqId()));
    this.#emit(events);
    if (this.ticket !== undefined) {
      this.core.settle(this.ticket, true);
      this.ticket = undefined;
    }
    this.#arm('heartbeat', now + this.interval);
    const waiting = this.waiting;
    this.waiting = [];
    for (const entry of waiting) this.#sendRequest(now, entry);
    this.core.sessionConnected(now, this, { reconnect, resumed, streams: r.streams ?? [] });
  }

  // ----- serving a connection -----

  #heartbeat(now) {
    if (now - this.lastHeard > this.liveness) {
      this.#broken(now);
      return;
    }
    // Any request counts as a heartbeat.
    if (now - this.lastSent >= this.interval) {
      this.#send(now, { type: 'heartbeat', req_id: this.core.nextReqId() });
      this.#arm('heartbeat', now + this.interval);
    } else {
      this.#arm('heartbeat', this.lastSent + this.interval);
    }
  }

  /** One server message: replies to their waiters, events to the app, plays to the host. */
  #handle(now, msg) {
    const room = this.roomID;
    switch (msg.type) {
      case 'reply': {
        const entry = this.pending.get(msg.req_id);
        if (entry) {
          this.pending.delete(msg.req_id);
          this.#cancel(entry.timer);
          entry.onReply(now, msg);
        }
        break;
      }
      case 'user_update': {
        const users = this.snapshot.applyUsers(this.me, msg.update_type, msg.users);
        if (this.notifyUsers && users.length) {
          this.#emit([['roomUserUpdate', [room, UPDATE_TYPE[msg.update_type], users.map(toUser)]]]);
        }
        break;
      }
      case 'stream_update': {
        const streams = this.snapshot.applyStreams(this.me, msg.update_type, msg.streams);
        if (streams.length) {
          let extended = EMPTY_JSON;
          if (msg.update_type === 'delete') {
            const ids = new Set(streams.map((s) => s.stream_id));
            extended = streamDeleteExtendedData((msg.reasons ?? []).filter((r) => ids.has(r.stream_id)));
          }
          this.#emit([['roomStreamUpdate', [room, UPDATE_TYPE[msg.update_type], streams.map(toStream), extended]]]);
        }
        break;
      }
      case 'stream_extra_info_update': {
        const streams = this.snapshot.applyStreamExtraInfo(this.me, msg.streams);
        if (streams.length) this.#emit([['streamExtraInfoUpdate', [room, streams.map(toStream)]]]);
        break;
      }
      case 'room_extra_info_update':
        this.snapshot.applyRoomExtraInfo(msg.infos);
        this.#emit([['roomExtraInfoUpdate', [room, (msg.infos ?? []).map(toRoomExtraInfo)]]]);
        break;
      case 'broadcast_message':
        this.#emit([['IMRecvBroadcastMessage', [room, (msg.messages ?? []).map(toBroadcastMessage)]]]);
        break;
      case 'custom_command':
        this.#emit([['IMRecvCustomCommand', [room, toUser(msg.from_user), msg.command]]]);
        break;
      case 'online_user_count':
        this.#emit([['roomOnlineUserCountUpdate', [room, msg.count]]]);
        break;
      case 'token_will_expire':
        this.#emit([['tokenWillExpire', [room, msg.remain_seconds]]]);
        break;
      case 'kicked':
        this.core.closeSocket(this.conn);
        this.conn = null;
        this.#end(now, 'KICKOUT', msg.code);
        break;
      case 'play_started':
        this.core.playStarted(now, msg.stream_id, msg.sdp);
        break;
      case 'play_stopped':
        this.core.playStopped(now, msg.stream_id, msg.code);
        break;
      default:
        break; // `error` (a frame the server could not read) and types of later protocol versions
    }
  }

  // ----- breaking, reconnecting, ending -----

  #broken(now) {
    this.core.closeSocket(this.conn);
    this.conn = null;
    this.#cancel('heartbeat');
    this.phase = 'reconnecting';
    this.#failPending(now);
    this.#emit(roomStateEvents(this.roomID, 'RECONNECTING', E.ROOM_CONNECTION_BROKEN_RETRYING));
    this.deadline = now + this.timing.reconnectWindowMs;
    this.backoff = new Backoff();
    this.#scheduleRetry(now);
  }

  #scheduleRetry(now) {
    const delay = this.backoff.next();
    if (now + delay >= this.deadline) this.#end(now, 'RECONNECT_FAILED', E.ROOM_RECONNECT_RETRY_TIMEOUT);
    else this.#arm('retry', now + delay);
  }

  /** The session ended on its own: its last room events, then the host ends its streams. */
  #end(now, reason, code) {
    this.phase = 'ended';
    this.#stopTimers();
    this.#failRequests(now);
    if (this.attempt) {
      this.core.closeSocket(this.attempt.conn);
      this.attempt = null;
    }
    this.#closeWith(roomStateEvents(this.roomID, reason, code));
    if (this.ticket !== undefined) {
      this.core.fail(this.ticket, code);
      this.ticket = undefined;
    }
    this.core.sessionEnded(now, this, code);
  }

  #stopTimers() {
    for (const what of ['connect', 'login', 'retry', 'heartbeat']) this.#cancel(what);
  }

  /** Requests on the wire lose their reply with the connection. */
  #failPending(now) {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) {
      this.#cancel(entry.timer);
      entry.onReply(now, { failure: 'lost' });
    }
  }

  #failRequests(now) {
    this.#failPending(now);
    const waiting = this.waiting;
    this.waiting = [];
    this.deferred = [];
    for (const entry of waiting) {
      this.#cancel(entry.timer);
      entry.onReply(now, { failure: 'lost' });
    }
  }

  #requestTimedOut(now, timer) {
    for (const [reqID, entry] of this.pending) {
      if (entry.timer === timer) {
        this.pending.delete(reqID);
        entry.onReply(now, { failure: 'timeout' });
        return;
      }
    }
    const i = this.waiting.findIndex((e) => e.timer === timer);
    if (i >= 0) this.waiting.splice(i, 1)[0].onReply(now, { failure: 'timeout' });
  }

  // ----- leaving -----

  /** Logs out on a connection whose login was sent, and closes it on the reply or after the logout timeout. */
  #leave(now, conn) {
    const logoutReq = this.core.nextReqId();
    this.core.send(conn, { type: 'logout', req_id: logoutReq });
    this.leaving.set(conn, { logoutReq, resume: false });
    this.#arm(`leave${conn}`, now + this.timing.logoutTimeoutMs);
  }

  /** A logout while reconnecting: the server may keep the session for a resume, so resume it and log out. */
  #resumeAndLeave(now) {
    if (!this.sessionID) return;
    const conn = this.core.openSocket(this, this.server);
    this.leaving.set(conn, { logoutReq: null, resume: true });
    this.#arm(`leave${conn}`, now + this.timing.logoutTimeoutMs);
  }

  #finishLeaving(conn) {
    if (!this.leaving.delete(conn)) return;
    this.#cancel(`leave${conn}`);
    this.core.closeSocket(conn);
  }
}
