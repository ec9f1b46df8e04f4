// ZegoExpressEngine, the public class: the original web SDK's API over the sans-IO EngineCore, which this shell
// drives with the browser's WebSocket, timers, WebCrypto and RTCPeerConnection, turning the core's outputs into
// I/O and the I/O's progress back into the core's inputs.

import { ErrorCode as E } from './codes.js';
import { EngineCore } from './core.js';
import { Emitter } from './emitter.js';
import { ZegoError } from './errors.js';
import { FrameWatcher } from './frames.js';
import * as media from './media.js';
import { PeerLink } from './peer.js';
import { QualityMeter } from './quality.js';
import { SEI_TYPE_USER_UNREGISTER, SEI_TYPE_ZEGO_DEFINED, SeiOutbox } from './sei.js';
import { appSignCredentials } from './signature.js';
import * as check from './validate.js';

/** The SDK's version (package.json's). */
export const VERSION = '0.1.0';

/** Quality events come this often while a stream is connected. */
const QUALITY_INTERVAL_MS = 3000;

const now = () => globalThis.performance?.now?.() ?? Date.now();

export class ZegoExpressEngine {
  #core;
  #appSign;
  #emitter = new Emitter();
  #pumping = false;
  #sockets = new Map();
  #timers = new Map();
  #tickets = new Map();
  #nextTicket = 1;
  /** streamID -> { stream, videoBitrate, link, meter, watcher } */
  #publishing = new Map();
  /** streamID -> { stream, promise, link, meter, watcher } */
  #playing = new Map();
  /** How sendSEI writes data (setSEIConfig). */
  #seiType = SEI_TYPE_ZEGO_DEFINED;
  #qualityTimer = null;
  #destroyed = false;

  /**
   * @param {number} appID
   * @param {string} server the signaling URL, `ws://host:port/ws` (or wss:// behind a TLS proxy)
   * @param {{appSign?: string, reconnectWindowMs?: number}} [options] appSign (64 hex characters) is for
   *   development only: logins without a token then prove it with an HMAC. reconnectWindowMs: how long a broken
   *   connection is retried (default 20 minutes, at least 1000).
   */
  constructor(appID, server, options = {}) {
    let code = check.appID(appID);
    if (!code && options.appSign) code = check.appSign(options.appSign);
    if (!code && (typeof server !== 'string' || !/^wss?:\/\/[^/\s]+/i.test(server))) {
      code = E.ENGINE_SERVER_ADDRESS_INVALID;
    }
    const window = options.reconnectWindowMs;
    if (!code && window !== undefined && !(Number.isFinite(window) && window >= 1000)) {
      code = E.COMMON_INVALID_PARAMETER;
    }
    if (code) throw new ZegoError(code);
    this.#appSign = options.appSign || '';
    this.#core = new EngineCore({
      appID,
      server,
      hasAppSign: this.#appSign !== '',
      timing: window === undefined ? {} : { reconnectWindowMs: window },
    });
  }

  // ----- events -----

  on(event, handler) {
    return this.#emitter.on(event, handler);
  }

  off(event, handler) {
    return this.#emitter.off(event, handler);
  }

  // ----- room -----

  /** Resolves true once logged in; rejects with a ZegoError (the server's or the SDK's code) otherwise. */
  loginRoom(roomID, token, user, config = {}) {
    const [ticket, promise] = this.#ticket();
    const code = this.#core.loginRoom(now(), ticket, roomID, token, user, config ?? {});
    return this.#started(ticket, promise, code, () => Promise.reject(new ZegoError(code)));
  }

  logoutRoom(roomID) {
    return this.#result('logoutRoom', this.#core.logoutRoom(now(), roomID));
  }

  /** Replaces the room's token (for the next reconnect too). False for a token that cannot be one. */
  renewToken(token, roomID) {
    return this.#result('renewToken', this.#core.renewToken(now(), token, roomID));
  }

  setRoomExtraInfo(roomID, key, value) {
    const [ticket, promise] = this.#ticket();
    const code = this.#core.setRoomExtraInfo(now(), ticket, roomID, key, value);
    return this.#started(ticket, promise, code, () => Promise.resolve({ errorCode: code }));
  }

  sendBroadcastMessage(roomID, message) {
    const [ticket, promise] = this.#ticket();
    const code = this.#core.sendBroadcastMessage(now(), ticket, roomID, message);
    return this.#started(ticket, promise, code, () => Promise.resolve({ errorCode: code, messageID: 0 }));
  }

  /** To the listed users of the room, or to everyone else in it when the list is empty. */
  sendCustomCommand(roomID, command, toUserIDs = []) {
    const [ticket, promise] = this.#ticket();
    const code = this.#core.sendCustomCommand(now(), ticket, roomID, command, toUserIDs ?? []);
    return this.#started(ticket, promise, code, () => Promise.resolve({ errorCode: code }));
  }

  // ----- local media -----

  createStream(source) {
    return media.createStream(source);
  }

  destroyStream(stream) {
    media.destroyStream(stream);
  }

  startPreview(stream, videoElement) {
    return media.startPreview(stream, videoElement);
  }

  stopPreview(videoElement) {
    return media.stopPreview(videoElement);
  }

  // ----- publishing -----

  /** Checks at once (false on bad arguments or state); progress and result arrive as publisherStateUpdate. */
  startPublishingStream(streamID, stream, config = {}) {
    if (!stream || typeof stream.getTracks !== 'function') return this.#result('startPublishingStream', E.COMMON_INVALID_PARAMETER);
    const bitrate = config?.videoBitrate ?? media.captureBitrate(stream);
    if (bitrate !== undefined && !(Number.isFinite(bitrate) && bitrate > 0)) {
      return this.#result('startPublishingStream', E.COMMON_INVALID_PARAMETER);
    }
    const code = this.#core.startPublishing(now(), streamID, { extraInfo: config?.extraInfo ?? '' });
    if (!code) {
      this.#drop(this.#publishing, streamID); // an ended publish whose end is still queued
      const serial = this.#core.serialOf('publish', streamID);
      const sei = config?.isSEIStart ? new SeiOutbox() : null;
      const entry = { serial, stream, videoBitrate: bitrate, sei, link: null, meter: null, watcher: null };
      const [video] = stream.getVideoTracks?.() ?? [];
      if (video) {
        entry.watcher = new FrameWatcher(video, {
          firstFrame: () => this.#emit('publisherCapturedVideoFirstFrame', streamID),
        });
      }
      this.#publishing.set(streamID, entry);
    }
    return this.#result('startPublishingStream', code);
  }

  /** How sendSEI writes data: SEIType 0 (ZEGO's payload type 243, the default) or 1 (user_data_unregistered:
   * the data begins with a 16-byte UUID). */
  setSEIConfig(config) {
    const type = config?.SEIType;
    if (type !== SEI_TYPE_ZEGO_DEFINED && type !== SEI_TYPE_USER_UNREGISTER) return this.#result('setSEIConfig', E.COMMON_INVALID_PARAMETER);
    this.#seiType = type;
    return true;
  }

  /**
   * Sends `data` (a Uint8Array, at most 4096 bytes, at most 30 a second) with the next video frame of a stream
   * published with `isSEIStart`; players receive it as playerRecvSEI. False with a warning otherwise: 1003001 the
   * stream is not published, 1000006 it was published without isSEIStart, 1003043/1003044/1003045 as the native SDK.
   */
  sendSEI(streamID, data) {
    const entry = this.#publishing.get(streamID);
    if (!entry) return this.#result('sendSEI', E.PUBLISHER_NO_DATA);
    if (!entry.sei) return this.#result('sendSEI', E.COMMON_UNSUPPORTED);
    return this.#result('sendSEI', entry.sei.push(data, this.#seiType, now()));
  }

  stopPublishingStream(streamID) {
    return this.#result('stopPublishingStream', this.#core.stopPublishing(now(), streamID));
  }

  setStreamExtraInfo(streamID, extraInfo) {
    const [ticket, promise] = this.#ticket();
    const code = this.#core.setStreamExtraInfo(now(), ticket, streamID, extraInfo);
    return this.#started(ticket, promise, code, () => Promise.resolve({ errorCode: code }));
  }

  // ----- playing -----

  /**
   * One MediaStream with the stream's video and audio tracks (only the one asked for in video-only or
   * audio-only mode), resolved once playing. A stream not published yet is waited for (playerStateUpdate
   * PLAY_REQUESTING 1004002); the same MediaStream gets the new tracks whenever the play is set up again.
   */
  startPlayingStream(streamID, options = {}) {
    const existing = this.#playing.get(streamID);
    if (existing && existing.serial === this.#core.serialOf('play', streamID)) return existing.promise;
    const [ticket, promise] = this.#ticket();
    const code = this.#core.startPlaying(now(), ticket, streamID, {
      video: options?.video ?? true,
      audio: options?.audio ?? true,
    });
    if (!code) {
      this.#drop(this.#playing, streamID);
      const serial = this.#core.serialOf('play', streamID);
      const onSei = options?.isSEIStart ? (data) => this.#emit('playerRecvSEI', streamID, data) : null;
      this.#playing.set(streamID, { serial, stream: new MediaStream(), promise, onSei, link: null, meter: null, watcher: null });
    }
    return this.#started(ticket, promise, code, () => Promise.reject(new ZegoError(code)));
  }

  stopPlayingStream(streamID) {
    return this.#result('stopPlayingStream', this.#core.stopPlaying(now(), streamID));
  }

  // ----- engine -----

  getVersion() {
    return VERSION;
  }

  /** Stops publishing and playing and logs out without further events; the engine is unusable afterwards. */
  destroyEngine() {
    if (this.#destroyed) return;
    this.#core.destroy(now());
    this.#pump();
    this.#destroyed = true;
    for (const streamID of [...this.#publishing.keys()]) this.#drop(this.#publishing, streamID);
    for (const streamID of [...this.#playing.keys()]) this.#drop(this.#playing, streamID);
    clearInterval(this.#qualityTimer);
    this.#qualityTimer = null;
    this.#emitter.clear();
  }

  // ----- driving the core -----

  #ticket() {
    const ticket = this.#nextTicket++;
    const promise = new Promise((resolve, reject) => this.#tickets.set(ticket, { resolve, reject }));
    return [ticket, promise];
  }

  /** The promise of a call the core took (code 0), or what `refused()` makes of its code. */
  #started(ticket, promise, code, refused) {
    if (code) {
      this.#tickets.delete(ticket);
      return refused();
    }
    this.#pump();
    return promise;
  }

  /** A synchronous call's boolean result; a refusal is reported on the console as the original does. */
  #result(method, code) {
    this.#pump();
    if (code) console.warn(`zego-express-web: ${method}: ${new ZegoError(code).message}`);
    return code === 0;
  }

  #emit(name, ...args) {
    if (!this.#destroyed) this.#emitter.emit(name, ...args);
  }

  /** Feeds one input to the core and carries out what follows. */
  #input(feed) {
    feed(this.#core, now());
    this.#pump();
  }

  /** Carries out the core's outputs in order; calls made from event handlers queue behind the current one. */
  #pump() {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (let o = this.#core.next(); o; o = this.#core.next()) this.#apply(o);
    } finally {
      this.#pumping = false;
    }
  }

  #apply(o) {
    switch (o.type) {
      case 'event':
        this.#emit(o.name, ...o.args);
        break;
      case 'connect':
        this.#connect(o.conn, o.url);
        break;
      case 'close':
        this.#close(o.conn);
        break;
      case 'send': {
        const ws = this.#sockets.get(o.conn);
        if (ws?.readyState === 1) ws.send(JSON.stringify(o.message));
        break;
      }
      case 'arm':
        clearTimeout(this.#timers.get(o.name));
        this.#timers.set(o.name, setTimeout(() => {
          this.#timers.delete(o.name);
          this.#input((core, t) => core.timerFired(t, o.name));
        }, Math.max(0, o.at - now())));
        break;
      case 'cancel':
        clearTimeout(this.#timers.get(o.name));
        this.#timers.delete(o.name);
        break;
      case 'sign':
        appSignCredentials(this.#appSign, o.appID, o.userID, o.roomID)
          .then((credentials) => this.#input((core, t) => core.signed(t, o.conn, credentials)))
          .catch(() => {
            this.#close(o.conn);
            this.#input((core, t) => core.socketClosed(t, o.conn));
          });
        break;
      case 'settle':
        this.#settle(o);
        break;
      case 'createPeer':
        this.#createPeer(o);
        break;
      case 'applyAnswer': {
        const entry = this.#entry(o);
        if (entry?.attempt === o.attempt) entry.link.applyAnswer(o.sdp);
        break;
      }
      case 'closePeer': {
        const entry = this.#entry(o);
        if (entry) this.#closeLink(entry, o.kind);
        break;
      }
      case 'streamEnded':
        if (this.#entry(o)) this.#drop(o.kind === 'publish' ? this.#publishing : this.#playing, o.streamID);
        break;
      default:
        break;
    }
  }

  #settle({ ticket, value, error }) {
    const waiter = this.#tickets.get(ticket);
    if (!waiter) return;
    this.#tickets.delete(ticket);
    if (error !== undefined) waiter.reject(new ZegoError(error));
    else if (typeof value === 'string') waiter.resolve(this.#playing.get(value)?.stream); // a play's streamID
    else waiter.resolve(value);
  }

  #connect(conn, url) {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      queueMicrotask(() => this.#input((core, t) => core.socketClosed(t, conn)));
      return;
    }
    this.#sockets.set(conn, ws);
    ws.onopen = () => this.#input((core, t) => core.socketOpened(t, conn));
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') this.#input((core, t) => core.socketMessage(t, conn, e.data));
    };
    ws.onclose = () => {
      if (this.#sockets.get(conn) !== ws) return;
      this.#sockets.delete(conn);
      this.#input((core, t) => core.socketClosed(t, conn));
    };
  }

  #close(conn) {
    const ws = this.#sockets.get(conn);
    if (!ws) return;
    this.#sockets.delete(conn);
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
  }

  // ----- media -----

  /** The shell's side of the publish or play an output is about; undefined when it is an earlier one's. */
  #entry({ kind, streamID, serial }) {
    const entry = (kind === 'publish' ? this.#publishing : this.#playing).get(streamID);
    return entry?.serial === serial ? entry : undefined;
  }

  #createPeer({ kind, streamID, serial, attempt, video, audio }) {
    const entry = this.#entry({ kind, streamID, serial });
    if (!entry) return;
    this.#closeLink(entry, kind);
    const input = (feed) => () => {
      if (entry.link === link) this.#input(feed);
    };
    const options = { kind, stream: entry.stream, videoBitrate: entry.videoBitrate, video, audio, sei: entry.sei, onSei: entry.onSei };
    const link = new PeerLink(options, {
      offer: (sdp) => input((core, t) => core.offerReady(t, kind, streamID, attempt, sdp))(),
      offerFailed: (code) => input((core, t) => core.offerFailed(t, kind, streamID, attempt, code))(),
      connected: () => {
        input((core, t) => core.mediaConnected(t, kind, streamID, attempt))();
        this.#startQuality();
      },
      failed: input((core, t) => core.mediaFailed(t, kind, streamID, attempt)),
      track: (track) => {
        if (entry.link === link) this.#addPlayTrack(streamID, entry, track);
      },
    });
    entry.link = link;
    entry.attempt = attempt;
    entry.meter = new QualityMeter(kind);
    link.start();
  }

  /** Closes the current peer connection; a play's video watcher goes with it (a publish's watches the capture). */
  #closeLink(entry, kind) {
    entry.link?.close();
    entry.link = null;
    if (kind === 'play') {
      entry.watcher?.close();
      entry.watcher = null;
    }
  }

  /** A track of a play's current attempt joins the play's one MediaStream in place of its kind's old one. */
  #addPlayTrack(streamID, entry, track) {
    for (const old of entry.stream.getTracks()) if (old.kind === track.kind) entry.stream.removeTrack(old);
    entry.stream.addTrack(track);
    if (track.kind === 'video') {
      // A remote track is muted until its first packets arrive.
      const received = () => {
        if (entry.link && !entry.link.closed) this.#emit('playerRecvVideoFirstFrame', streamID);
      };
      if (track.muted) track.addEventListener('unmute', received, { once: true });
      else received();
      entry.watcher?.close();
      entry.watcher = new FrameWatcher(track, {
        firstFrame: () => this.#emit('playerRenderVideoFirstFrame', streamID),
        sizeChanged: (width, height) => this.#emit('playerVideoSizeChanged', streamID, width, height),
      });
    }
  }

  #startQuality() {
    if (this.#qualityTimer !== null || this.#destroyed) return;
    this.#qualityTimer = setInterval(() => this.#sampleQuality(), QUALITY_INTERVAL_MS);
  }

  #sampleQuality() {
    const live = [
      ...[...this.#publishing].map(([id, e]) => ['publishQualityUpdate', id, e]),
      ...[...this.#playing].map(([id, e]) => ['playQualityUpdate', id, e]),
    ].filter(([, , e]) => e.link?.connected && !e.link.closed);
    if (!live.length && !this.#publishing.size && !this.#playing.size) {
      clearInterval(this.#qualityTimer);
      this.#qualityTimer = null;
      return;
    }
    for (const [name, streamID, entry] of live) {
      const { link, meter } = entry;
      link.stats().then((stats) => {
        if (entry.link === link && stats.length) this.#emit(name, streamID, meter.sample(now(), stats));
      }, () => {});
    }
  }

  #drop(map, streamID) {
    const entry = map.get(streamID);
    if (!entry) return;
    map.delete(streamID);
    entry.link?.close();
    entry.watcher?.close();
  }
}
