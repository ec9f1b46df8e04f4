// The shell's media wiring with scripted stand-ins for RTCPeerConnection, MediaStream and the WebSocket: codec
// preferences, the bitrate cap, offers after ICE gathering, answers applied, tracks gathered into one
// MediaStream, and a restart of a stream from inside an event handler.

import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ZegoExpressEngine } from '../index.js';

const sockets = [];
const pcs = [];

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
  }
  deliver(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  all(type) {
    return this.sent.filter((m) => m.type === type);
  }
}

class FakeTrack {
  muted = false;
  constructor(kind) {
    this.kind = kind;
  }
  addEventListener() {}
}

class FakeMediaStream {
  #tracks;
  constructor(tracks = []) {
    this.#tracks = [...tracks];
  }
  getTracks() {
    return [...this.#tracks];
  }
  getVideoTracks() {
    return this.#tracks.filter((t) => t.kind === 'video');
  }
  getAudioTracks() {
    return this.#tracks.filter((t) => t.kind === 'audio');
  }
  addTrack(t) {
    this.#tracks.push(t);
  }
  removeTrack(t) {
    this.#tracks = this.#tracks.filter((x) => x !== t);
  }
}

const CAPS = {
  video: [
    { mimeType: 'video/VP8', clockRate: 90000 },
    { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'packetization-mode=1;profile-level-id=42e01f' },
  ],
  audio: [{ mimeType: 'audio/opus', clockRate: 48000, channels: 2 }],
};

class FakePeerConnection {
  iceGatheringState = 'new';
  connectionState = 'new';
  transceivers = [];
  #listeners = {};
  constructor(config) {
    this.config = config;
    pcs.push(this);
  }
  addEventListener(name, f) {
    (this.#listeners[name] ??= []).push(f);
  }
  removeEventListener(name, f) {
    this.#listeners[name] = (this.#listeners[name] ?? []).filter((x) => x !== f);
  }
  #fire(name, event = {}) {
    for (const f of [...(this.#listeners[name] ?? [])]) f(event);
  }
  addTransceiver(trackOrKind, init) {
    const t = { trackOrKind, init, setCodecPreferences(codecs) { this.codecs = codecs; } };
    this.transceivers.push(t);
    return t;
  }
  async createOffer() {
    return { type: 'offer', sdp: `offer with ${this.transceivers.length} m-lines` };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
    setTimeout(() => {
      this.iceGatheringState = 'complete';
      this.#fire('icegatheringstatechange');
    }, 1);
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
    for (const t of this.transceivers) {
      if (t.init.direction === 'recvonly') this.#fire('track', { track: new FakeTrack(t.trackOrKind) });
    }
  }
  connect() {
    this.connectionState = 'connected';
    this.#fire('connectionstatechange');
  }
  close() {
    this.closed = true;
  }
  async getStats() {
    return new Map();
  }
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(what, f, ms = 2000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(2);
  }
}

let engine;
let ws;
beforeEach(async () => {
  sockets.length = 0;
  pcs.length = 0;
  Object.assign(globalThis, {
    WebSocket: FakeWebSocket,
    MediaStream: FakeMediaStream,
    RTCPeerConnection: FakePeerConnection,
    RTCRtpSender: { getCapabilities: (kind) => ({ codecs: CAPS[kind] }) },
    RTCRtpReceiver: { getCapabilities: (kind) => ({ codecs: CAPS[kind] }) },
  });
  engine = new ZegoExpressEngine(1, 'ws://sfu.test/ws');
  const login = engine.loginRoom('r1', 'token', { userID: 'u1' });
  ws = await until('a socket', () => sockets[0]);
  const msg = await until('login', () => ws.all('login')[0]);
  ws.deliver({ type: 'reply', req_id: msg.req_id, code: 0, message: '', result: { kind: 'login', session_id: 's', heartbeat_interval_ms: 60000, heartbeat_timeout_ms: 180000, users: [], streams: [], room_extra_info: [], online_count: 1 } });
  await login;
});
afterEach(() => {
  engine.destroyEngine();
  for (const k of ['WebSocket', 'MediaStream', 'RTCPeerConnection', 'RTCRtpSender', 'RTCRtpReceiver']) delete globalThis[k];
});

test('publish: H.264 and Opus only, the bitrate cap, the offer after ICE gathering, PUBLISHING once connected', async () => {
  const states = [];
  engine.on('publisherStateUpdate', (r) => states.push([r.state, r.errorCode]));
  const stream = new FakeMediaStream([new FakeTrack('video'), new FakeTrack('audio')]);
  assert.equal(engine.startPublishingStream('cam', stream, { videoBitrate: 500, extraInfo: 'e' }), true);
  const publish = await until('publish', () => ws.all('publish')[0]);
  const pc = pcs[0];
  assert.equal(pc.config.bundlePolicy, 'max-bundle');
  assert.equal(pc.iceGatheringState, 'complete', 'the offer leaves once gathering completed');
  assert.deepEqual([publish.stream_id, publish.extra_info, publish.sdp], ['cam', 'e', 'offer with 2 m-lines']);
  const [video, audio] = pc.transceivers;
  assert.equal(video.init.direction, 'sendonly');
  assert.deepEqual(video.init.sendEncodings, [{ maxBitrate: 500_000 }]);
  assert.deepEqual(video.codecs.map((c) => c.mimeType), ['video/H264']);
  assert.deepEqual(audio.codecs.map((c) => c.mimeType), ['audio/opus']);
  ws.deliver({ type: 'reply', req_id: publish.req_id, code: 0, message: '', result: { kind: 'publish', sdp: 'answer' } });
  await until('the answer', () => pc.remoteDescription);
  assert.deepEqual(pc.remoteDescription, { type: 'answer', sdp: 'answer' });
  pc.connect();
  assert.deepEqual(states, [['PUBLISH_REQUESTING', 0], ['PUBLISHING', 0]]);
});

test('play: one MediaStream with both received tracks, resolved once connected', async () => {
  const heard = [];
  engine.on('playerRecvVideoFirstFrame', (id) => heard.push(id));
  const playing = engine.startPlayingStream('remote');
  assert.equal(engine.startPlayingStream('remote'), playing, 'playing again answers with the same promise');
  const play = await until('play', () => ws.all('play')[0]);
  assert.equal(play.wait, true);
  ws.deliver({ type: 'reply', req_id: play.req_id, code: 1004002, message: '', result: { kind: 'play', waiting: true } });
  ws.deliver({ type: 'play_started', stream_id: 'remote', sdp: 'answer' });
  const pc = pcs[0];
  assert.deepEqual(pc.transceivers.map((t) => [t.trackOrKind, t.init.direction]), [['video', 'recvonly'], ['audio', 'recvonly']]);
  await until('the answer', () => pc.remoteDescription);
  pc.connect();
  const stream = await playing;
  assert.ok(stream instanceof FakeMediaStream);
  assert.deepEqual(stream.getTracks().map((t) => t.kind).sort(), ['audio', 'video']);
  assert.deepEqual(heard, ['remote']);
});

test('video-only play offers video alone', async () => {
  engine.startPlayingStream('v', { video: true, audio: false }).catch(() => {}); // rejected by destroyEngine
  await until('play', () => ws.all('play')[0]);
  assert.deepEqual(pcs[0].transceivers.map((t) => t.trackOrKind), ['video']);
});

test('a stream stopped and started again from an event handler publishes again', async () => {
  const stream = new FakeMediaStream([new FakeTrack('video')]);
  let restarted = false;
  engine.on('publisherStateUpdate', (r) => {
    if (r.state === 'PUBLISHING' && !restarted) {
      restarted = true;
      engine.stopPublishingStream('cam');
      engine.startPublishingStream('cam', stream);
    }
  });
  engine.startPublishingStream('cam', stream);
  const first = await until('publish', () => ws.all('publish')[0]);
  ws.deliver({ type: 'reply', req_id: first.req_id, code: 0, message: '', result: { kind: 'publish', sdp: 'a1' } });
  await until('the answer', () => pcs[0].remoteDescription);
  pcs[0].connect();
  await until('the second publish', () => ws.all('publish')[1]);
  assert.ok(pcs[0].closed, 'the first peer connection is closed');
  assert.equal(pcs.length, 2);
  assert.deepEqual(ws.sent.map((m) => m.type).slice(1), ['publish', 'stop_publish', 'publish']);
});
