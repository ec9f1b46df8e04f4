// The engine as a state machine without I/O (sans-IO, like the native cores): API calls, socket events, fired
// timers and peer-connection progress go in with the time; commands for the host (engine.js) come out. It runs
// under Node as it does in the browser, so the tests drive it directly.

import { ErrorCode as E, LIMITS } from './codes.js';
import { errorMessage } from './errors.js';
import * as check from './validate.js';
import { checkFormat } from './token.js';
import { RoomSession } from './session.js';
import { Publish } from './publishing.js';
import { Play } from './playing.js';

/** The timers of a session; tests shorten them. */
export const DEFAULT_TIMING = Object.freeze({
  /** Connection attempts of the first login before it fails with 1002030. */
  connectAttempts: 4,
  connectTimeoutMs: 5000,
  /** From sending login to its reply; past it the first login fails with 1002031. */
  loginTimeoutMs: 10_000,
  /** How long a broken connection is retried before RECONNECT_FAILED (1002053). */
  reconnectWindowMs: LIMITS.RECONNECT_WINDOW_MS,
  /** How long a logout waits for the server's reply before closing. */
  logoutTimeoutMs: 1000,
  /** Room and IM requests wait this long for the connection and the reply. */
  requestTimeoutMs: 10_000,
});

/**
 * What the app hears of a renew_token request that did not succeed: `{code, info}`, or null when nothing is worth
 * telling. A request lost with the connection, or timed out while it was down, says nothing: the resuming login
 * carries the new token and is checked itself.
 * @param reply the server's reply, or `{failure: 'lost' | 'timeout'}`
 * @param {boolean} connected whether the session is up now
 */
export function renewalRefusal(reply, connected) {
  if (reply.failure === 'lost' || (reply.failure && !connected)) return null;
  if (reply.failure) {
    return { code: E.ROOM_DISCONNECTED, info: 'renew_token got no reply from the server in time' };
  }
  if (reply.code === 0) return null;
  return { code: reply.code, info: reply.message || errorMessage(reply.code) };
}

/**
 * Inputs are its methods, each taking `now` (ms, monotonic); API calls return 0 or an error code at once and
 * settle their promise later through a `ticket`. Outputs, taken with next() or drain(), are `{type, ...}`:
 *
 *   event {name, args}                  emit an app event
 *   connect {conn, url} / close {conn}  open / close a WebSocket, known by its number
 *   send {conn, message}                send one JSON message
 *   arm {name, at} / cancel {name}      (re)arm a one-shot timer for `at`, or drop it; it fires as timerFired(name)
 *   sign {conn, appID, userID, roomID}  make the app_sign proof for a login on conn; answer with signed()
 *   settle {ticket, value} / settle {ticket, error}   resolve or reject the promise of an API call
 *   createPeer {kind, streamID, serial, attempt, video?, audio?}  a new peer connection; answer with offerReady()
 *   applyAnswer {kind, streamID, serial, attempt, sdp}  apply it; answer with mediaConnected() or mediaFailed()
 *   closePeer {kind, streamID, serial}  close the stream's peer connection
 *   streamEnded {kind, streamID, serial}  a publish or play is over (the next one of that stream ID has another serial)
 */
export class EngineCore {
  #queue = [];
  #nextReq = 1;
  #nextConn = 1;
  #nextSession = 1;
  #nextSerial = 1;
  #nextTimer = 1;
  /** conn -> the session it belongs to. */
  #sockets = new Map();
  /** timer name -> its owner (a session or a stream), which gets timerFired. */
  #timers = new Map();
  room = null;
  /** streamID -> Publish / Play. */
  publishes = new Map();
  plays = new Map();
  destroyed = false;

  /**
   * @param {{appID: number, server: string, hasAppSign: boolean, timing?: object}} config
   */
  constructor({ appID, server, hasAppSign, timing = {} }) {
    this.appID = appID;
    this.server = server;
    this.hasAppSign = hasAppSign;
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  // ----- outputs -----

  /** The next output, or undefined. */
  next() {
    return this.#queue.shift();
  }

  /** Every output so far. */
  drain() {
    return this.#queue.splice(0);
  }

  out(output) {
    this.#queue.push(output);
  }

  emit(name, args) {
    if (!this.destroyed) this.out({ type: 'event', name, args });
  }

  settle(ticket, value) {
    this.out({ type: 'settle', ticket, value });
  }

  fail(ticket, code) {
    this.out({ type: 'settle', ticket, error: code });
  }

  // ----- for sessions and streams -----

  nextReqId() {
    return this.#nextReq++;
  }

  nextTimerId() {
    return this.#nextTimer++;
  }

  openSocket(session, url) {
    const conn = this.#nextConn++;
    this.#sockets.set(conn, session);
    this.out({ type: 'connect', conn, url });
    return conn;
  }

  closeSocket(conn) {
    if (this.#sockets.delete(conn)) this.out({ type: 'close', conn });
  }

  send(conn, message) {
    this.out({ type: 'send', conn, message });
  }

  requestSignature(conn, fields) {
    this.out({ type: 'sign', conn, ...fields });
  }

  arm(name, at, owner) {
    this.#timers.set(name, owner);
    this.out({ type: 'arm', name, at });
  }

  cancel(name) {
    if (this.#timers.delete(name)) this.out({ type: 'cancel', name });
  }

  roomUp() {
    return this.room?.up === true;
  }

  /** Logged in (first time or again): each stream decides whether to (re)start. */
  sessionConnected(now, session, { reconnect, resumed, streams }) {
    if (session !== this.room) return;
    const lost = reconnect && !resumed;
    const listed = new Set(streams.map((s) => s.stream_id));
    for (const task of [...this.publishes.values(), ...this.plays.values()]) {
      if (!task.ended) task.connected(now, { lost, listed: listed.has(task.streamID) });
    }
    if (resumed) {
      // Streams stopped while the connection was down whose stop did not get through.
      for (const s of streams) {
        if (s.user.user_id === session.me && !this.publishes.has(s.stream_id)) {
          session.sendOrDefer(now, (reqID) => ({ type: 'stop_publish', req_id: reqID, stream_id: s.stream_id }));
        }
      }
    }
  }

  /** The room went away without a logout (login failed, kicked, reconnecting gave up): its streams end too. */
  sessionEnded(now, session, code) {
    if (session !== this.room) return;
    this.room = null;
    this.#endAll(now, code);
  }

  playStarted(now, streamID, sdp) {
    this.plays.get(streamID)?.started(now, sdp);
  }

  playStopped(now, streamID) {
    this.plays.get(streamID)?.stopped(now);
  }

  /** Ends a publish or play with `code` and forgets it. */
  endStream(now, task, code, quiet = false) {
    if (task.ended) return;
    task.end(now, code, quiet);
    const map = task.kind === 'publish' ? this.publishes : this.plays;
    if (map.get(task.streamID) === task) map.delete(task.streamID);
    this.out({ type: 'streamEnded', kind: task.kind, streamID: task.streamID, serial: task.serial });
  }

  #endAll(now, code, quiet = false) {
    for (const task of [...this.publishes.values(), ...this.plays.values()]) this.endStream(now, task, code, quiet);
  }

  // ----- I/O inputs -----

  socketOpened(now, conn) {
    this.#sockets.get(conn)?.socketOpened(now, conn);
  }

  /** A text frame; what is not a JSON object is ignored. */
  socketMessage(now, conn, text) {
    const session = this.#sockets.get(conn);
    if (!session) return;
    let msg;
    try {
      msg = typeof text === 'string' ? JSON.parse(text) : text;
    } catch {
      return;
    }
    if (msg && typeof msg === 'object') session.socketMessage(now, conn, msg);
  }

  socketClosed(now, conn) {
    const session = this.#sockets.get(conn);
    if (!session) return;
    this.#sockets.delete(conn);
    session.socketClosed(now, conn);
  }

  signed(now, conn, credentials) {
    this.#sockets.get(conn)?.signed(now, conn, credentials);
  }

  timerFired(now, name) {
    const owner = this.#timers.get(name);
    if (!owner) return;
    this.#timers.delete(name);
    owner.timerFired(now, name);
  }

  #task(kind, streamID) {
    return (kind === 'publish' ? this.publishes : this.plays).get(streamID);
  }

  offerReady(now, kind, streamID, attempt, sdp) {
    this.#task(kind, streamID)?.offerReady(now, attempt, sdp);
  }

  /** The host could not make an offer (no such codec, capture gone): the stream ends with `code`. */
  offerFailed(now, kind, streamID, attempt, code) {
    this.#task(kind, streamID)?.offerFailed(now, attempt, code);
  }

  mediaConnected(now, kind, streamID, attempt) {
    this.#task(kind, streamID)?.mediaConnected(now, attempt);
  }

  mediaFailed(now, kind, streamID, attempt) {
    this.#task(kind, streamID)?.mediaFailed(now, attempt);
  }

  /** The serial of the current publish or play of a stream ID (see the outputs), or undefined. */
  serialOf(kind, streamID) {
    return this.#task(kind, streamID)?.serial;
  }

  // ----- API calls: each returns 0 or an error code at once; promises settle through `ticket` -----

  loginRoom(now, ticket, roomID, token, user, config = {}) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const userID = user?.userID;
    const userName = user?.userName === undefined || user?.userName === '' ? userID : user.userName;
    const code = check.roomID(roomID) || check.userID(userID) || check.userName(userName)
      || check.token(token ?? '');
    if (code) return code;
    const max = config.maxMemberCount ?? 0;
    if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) return E.COMMON_INVALID_PARAMETER;
    if (!token && !this.hasAppSign) return E.ROOM_NO_TOKEN_NO_APP_SIGN;
    if (this.room) return E.ROOM_COUNT_EXCEED;
    this.room = new RoomSession(this, this.#nextSession++, {
      server: this.server,
      appID: this.appID,
      roomID,
      user: { user_id: userID, user_name: userName },
      token: token ?? '',
      notifyUsers: config.userUpdate === true,
      maxMemberCount: max,
      timing: this.timing,
      ticket,
    });
    this.room.start(now);
    return 0;
  }

  /** Logs out of the room (any room when `roomID` is undefined), ending this engine's publishing and playing. */
  logoutRoom(now, roomID) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const room = this.room;
    if (!room) return roomID === undefined ? 0 : E.ROOM_NOT_LOGGED_IN_THAT_ROOM;
    if (roomID !== undefined && roomID !== room.roomID) return E.ROOM_NOT_LOGGED_IN_THAT_ROOM;
    // The server ends the session's streams and plays with the logout itself.
    this.room = null;
    this.#endAll(now, 0);
    room.logout(now);
    return 0;
  }

  /**
   * Replaces the room's token, for the server now and for later (re)logins (the old one again if the server
   * refuses the new one). A token that cannot be a Token04 is refused at once; the server's refusal
   * (1002074..1002080, 1002082) comes later as `debugError` with funcName 'renewToken', as the native SDK reports
   * it, and so does a request the connected server left without a reply (1002052).
   */
  renewToken(now, token, roomID) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.token(token) || (token === '' ? E.ROOM_TOKEN_FORMAT_ERROR : checkFormat(token));
    if (code) return code;
    const room = this.#roomNamed(roomID);
    if (!room) return E.ROOM_NOT_LOGGED_IN_THAT_ROOM;
    const previous = room.token;
    room.setToken(token);
    room.request(now, (reqID) => ({ type: 'renew_token', req_id: reqID, token }), (t, reply) => {
      if (!reply.failure && reply.code === 0) {
        if (reply.result?.token_expire_time !== undefined) room.tokenExpireTime = reply.result.token_expire_time;
        return;
      }
      // Refused: the server keeps the old token, and so do later (re)logins, unless renewed again since.
      if (!reply.failure && room.token === token) room.setToken(previous);
      const refusal = renewalRefusal(reply, room.up);
      if (refusal && this.room === room && !room.closed) {
        this.emit('debugError', [refusal.code, 'renewToken', refusal.info]);
      }
    });
    return 0;
  }

  #roomNamed(roomID) {
    const room = this.room;
    return room && (roomID === undefined || roomID === room.roomID) ? room : null;
  }

  /** A room request whose promise resolves with `{errorCode, ...}` built by `result(reply)`. */
  #roomRequest(now, room, ticket, build, result = () => ({})) {
    room.request(now, build, (t, reply) => {
      if (reply.failure) this.settle(ticket, { errorCode: E.ROOM_DISCONNECTED, ...result(null) });
      else this.settle(ticket, { errorCode: reply.code, ...result(reply) });
    });
  }

  sendBroadcastMessage(now, ticket, roomID, message) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.broadcastMessage(message);
    if (code) return code;
    const room = this.#roomNamed(roomID ?? null);
    if (!room) return E.IM_WRONG_ROOM;
    this.#roomRequest(now, room, ticket, (reqID) => ({ type: 'send_broadcast_message', req_id: reqID, message }),
      (reply) => ({ messageID: reply?.result?.message_id ?? 0 }));
    return 0;
  }

  sendCustomCommand(now, ticket, roomID, command, toUserIDs = []) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    if (!Array.isArray(toUserIDs)) return E.COMMON_INVALID_PARAMETER;
    let code = check.customCommand(command);
    for (const id of toUserIDs) code ||= check.userID(id);
    if (code) return code;
    const room = this.#roomNamed(roomID ?? null);
    if (!room) return E.IM_WRONG_ROOM;
    const to = [...toUserIDs];
    this.#roomRequest(now, room, ticket,
      (reqID) => ({ type: 'send_custom_command', req_id: reqID, command, to_user_ids: to }));
    return 0;
  }

  setRoomExtraInfo(now, ticket, roomID, key, value) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.roomExtraInfo(key, value);
    if (code) return code;
    const room = this.#roomNamed(roomID ?? null);
    if (!room) return E.ROOM_NOT_LOGGED_IN_THAT_ROOM;
    this.#roomRequest(now, room, ticket, (reqID) => ({ type: 'set_room_extra_info', req_id: reqID, key, value }));
    return 0;
  }

  startPublishing(now, streamID, { extraInfo = '' } = {}) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.streamID(streamID) || check.streamExtraInfo(extraInfo);
    if (code) return code;
    if (!this.room) return E.COMMON_NOT_LOGGED_IN;
    // Publishing it again would replace this engine's own publish of it.
    if (this.publishes.has(streamID)) return E.PUBLISHER_STREAM_ID_ALREADY_PUBLISHED;
    if (this.publishes.size >= LIMITS.STREAMS_PER_SESSION_MAX) return E.PUBLISHER_CHANNEL_ALREADY_PUBLISHING;
    const task = new Publish(this, streamID, this.#nextSerial++, extraInfo);
    this.publishes.set(streamID, task);
    task.start(now);
    return 0;
  }

  stopPublishing(now, streamID) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.streamID(streamID);
    if (code) return code;
    const task = this.publishes.get(streamID);
    if (!task) return 0;
    this.room?.sendOrDefer(now, (reqID) => ({ type: 'stop_publish', req_id: reqID, stream_id: streamID }));
    this.endStream(now, task, 0);
    return 0;
  }

  setStreamExtraInfo(now, ticket, streamID, extraInfo) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.streamID(streamID) || check.streamExtraInfo(extraInfo);
    if (code) return code;
    if (!this.room) return E.COMMON_NOT_LOGGED_IN;
    const task = this.publishes.get(streamID);
    if (!task) return E.PUBLISHER_UPDATE_EXTRA_INFO_FAILED;
    task.extraInfo = extraInfo; // later publishes of this stream carry it
    this.#roomRequest(now, this.room, ticket,
      (reqID) => ({ type: 'set_stream_extra_info', req_id: reqID, stream_id: streamID, extra_info: extraInfo }));
    return 0;
  }

  /** Settles `ticket` with the streamID once PLAYING, or rejects it when the play ends before. */
  startPlaying(now, ticket, streamID, { video = true, audio = true } = {}) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.streamID(streamID);
    if (code) return code;
    if (typeof video !== 'boolean' || typeof audio !== 'boolean' || (!video && !audio)) {
      return E.COMMON_INVALID_PARAMETER;
    }
    if (!this.room) return E.COMMON_NOT_LOGGED_IN;
    if (this.plays.has(streamID)) return E.PLAYER_PLAY_FAILED; // the host answers with the play it has
    const task = new Play(this, streamID, this.#nextSerial++, { video, audio }, ticket);
    this.plays.set(streamID, task);
    task.start(now);
    return 0;
  }

  stopPlaying(now, streamID) {
    if (this.destroyed) return E.COMMON_ENGINE_NOT_CREATED;
    const code = check.streamID(streamID);
    if (code) return code;
    const task = this.plays.get(streamID);
    if (!task) return E.PLAYER_STREAM_NOT_PLAYED;
    this.room?.sendOrDefer(now, (reqID) => ({ type: 'stop_play', req_id: reqID, stream_id: streamID }));
    this.endStream(now, task, 0);
    return 0;
  }

  /** Stops everything without telling the app; the server still hears the logout. */
  destroy(now) {
    if (this.destroyed) return;
    if (this.room?.ticket !== undefined) {
      this.fail(this.room.ticket, E.COMMON_ENGINE_NOT_CREATED);
      this.room.ticket = undefined;
    }
    for (const task of [...this.publishes.values(), ...this.plays.values()]) {
      if (task.ticket !== undefined) {
        this.fail(task.ticket, E.COMMON_ENGINE_NOT_CREATED);
        task.ticket = undefined;
      }
    }
    this.#endAll(now, 0, true);
    const room = this.room;
    this.room = null;
    room?.logout(now, true);
    this.destroyed = true;
  }
}
