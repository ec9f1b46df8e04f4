// The zego-server debug page: logs in with the JavaScript SDK served beside it, previews, publishes and plays
// streams, lists the room, logs every callback and measures glass-to-glass latency of stamped streams.

import { ZegoExpressEngine, ZegoError, VERSION } from '/sdk/index.js';
import { drawStamp, nowMicros, readStamp, stripHeight } from './stamp.js';

const EVENTS = [
  'roomStateUpdate', 'roomStateChanged', 'roomUserUpdate', 'roomOnlineUserCountUpdate', 'roomStreamUpdate',
  'streamExtraInfoUpdate', 'roomExtraInfoUpdate', 'IMRecvBroadcastMessage', 'IMRecvCustomCommand',
  'tokenWillExpire', 'publisherStateUpdate', 'playerStateUpdate', 'publishQualityUpdate', 'playQualityUpdate',
  'publisherCapturedVideoFirstFrame', 'playerRecvVideoFirstFrame', 'playerRenderVideoFirstFrame',
  'playerVideoSizeChanged',
];
const QUALITY_EVENTS = new Set(['publishQualityUpdate', 'playQualityUpdate']);
const LOG_MAX = 2000;
const TOKEN_TTL_SECONDS = 3600;
// Latency shown is the median of this many recent frames.
const LATENCY_WINDOW = 30;

const $ = (id) => document.getElementById(id);
const field = {
  appID: $('app-id'), server: $('server'), roomID: $('room-id'), userID: $('user-id'), token: $('token'),
  streamID: $('stream-id'), source: $('source'), playMode: $('play-mode'),
};
const saved = ['appID', 'server', 'roomID', 'userID', 'streamID', 'source', 'playMode'];

let engine = null;
let engineKey = '';
let loggedInRoom = null;
let devAppID = null;
let local = null;         // {stream, source, stop()}
let publishing = null;    // streamID being published
const users = new Map();  // userID -> userName
const streams = new Map(); // streamID -> {user, extraInfo}
const tiles = new Map();  // streamID -> tile

// ---- the log ---------------------------------------------------------------------------------------------

function timestamp() {
  const d = new Date();
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function json(value) {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
}

/** One line: `kind` is 'event' for SDK callbacks, 'page' for what the page did, 'error' for failures. */
function log(name, args, kind = 'event') {
  if (kind === 'event' && QUALITY_EVENTS.has(name) && !$('log-quality').checked) return;
  const list = $('log');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const li = document.createElement('li');
  li.className = `kind-${kind}`;
  const cells = [timestamp(), name, typeof args === 'string' ? args : args.map(json).join(', ')];
  for (const [cls, text] of [['time', cells[0]], ['event', cells[1]], ['args', cells[2]]]) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  list.append(li);
  while (list.childElementCount > LOG_MAX) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function fail(what, error) {
  const text = error instanceof ZegoError ? `${error.code} ${error.msg ?? error.message}` : String(error?.message ?? error);
  log(what, text, 'error');
}

// ---- fields ----------------------------------------------------------------------------------------------

function defaultServer() {
  if (location.protocol !== 'http:' && location.protocol !== 'https:') return 'ws://127.0.0.1:9180/ws';
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

function restoreFields() {
  const params = new URLSearchParams(location.search);
  for (const key of saved) {
    const value = params.get(key) ?? localStorage.getItem(`zego-debug.${key}`);
    if (value !== null && value !== '') field[key].value = value;
  }
  if (!field.server.value) field.server.value = defaultServer();
  if (!field.roomID.value) field.roomID.value = 'room-1';
  if (!field.userID.value) field.userID.value = `web-${Math.random().toString(36).slice(2, 8)}`;
  if (!field.streamID.value) field.streamID.value = `${field.userID.value}-stream`;
  for (const key of saved) {
    field[key].addEventListener('change', () => localStorage.setItem(`zego-debug.${key}`, field[key].value.trim()));
  }
}

function setRoomState(state, text) {
  const badge = $('room-state');
  badge.dataset.state = state;
  badge.textContent = text;
}

function updateButtons() {
  const inRoom = loggedInRoom !== null;
  $('login').disabled = inRoom;
  $('logout').disabled = !inRoom;
  for (const key of ['appID', 'server', 'roomID', 'userID']) field[key].disabled = inRoom;
  $('publish').disabled = !inRoom || publishing !== null;
  $('stop-publish').disabled = publishing === null;
  $('play').disabled = !inRoom;
  $('stop-play').disabled = tiles.size === 0;
}

// ---- the dev app -----------------------------------------------------------------------------------------

async function detectDevApp() {
  const hint = $('mint-hint');
  try {
    const response = await fetch('/dev/app', { cache: 'no-store' });
    if (response.ok) {
      devAppID = (await response.json()).app_id;
      if (!field.appID.value) field.appID.value = String(devAppID);
      hint.textContent = `development app ${devAppID}`;
      $('mint').disabled = false;
      return;
    }
  } catch {
    // Served from elsewhere, or the server is down: no minting.
  }
  devAppID = null;
  $('mint').disabled = true;
  hint.textContent = 'This server does not run the development app: paste a token minted by your backend.';
  field.token.placeholder = 'Token04 minted by your backend with the app\'s server secret';
}

async function mintToken() {
  const body = { app_id: Number(field.appID.value), user_id: field.userID.value.trim(), ttl_seconds: TOKEN_TTL_SECONDS };
  const response = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`dev token refused: ${answer.code ?? response.status} ${answer.message ?? ''}`);
  field.token.value = answer.token;
  log('page: minted dev token', [{ user_id: answer.user_id, expire: new Date(answer.expire * 1000).toISOString() }], 'page');
  return answer.token;
}

// ---- the engine ------------------------------------------------------------------------------------------

/** The engine for the AppID and server in the fields, made anew when they changed. */
function ensureEngine() {
  const appID = Number(field.appID.value);
  const server = field.server.value.trim();
  const key = `${appID} ${server}`;
  if (engine && engineKey === key) return engine;
  if (engine) {
    stopLocal();
    engine.destroyEngine();
  }
  engine = new ZegoExpressEngine(appID, server);
  engineKey = key;
  for (const name of EVENTS) engine.on(name, (...args) => log(name, args));
  engine.on('roomStateUpdate', onRoomState);
  engine.on('roomUserUpdate', onUserUpdate);
  engine.on('roomStreamUpdate', onStreamUpdate);
  engine.on('publisherStateUpdate', onPublisherState);
  engine.on('playerStateUpdate', onPlayerState);
  engine.on('playQualityUpdate', onPlayQuality);
  engine.on('playerVideoSizeChanged', (streamID, width, height) => {
    const tile = tiles.get(streamID);
    if (tile) tile.resolution.textContent = `${width}×${height}`;
  });
  engine.on('tokenWillExpire', async (roomID) => {
    if (devAppID === null || Number(field.appID.value) !== devAppID) return;
    try {
      engine.renewToken(await mintToken(), roomID);
    } catch (error) {
      fail('renewToken', error);
    }
  });
  return engine;
}

function onRoomState(roomID, state, errorCode) {
  const text = { DISCONNECTED: 'logged out', CONNECTING: 'connecting', CONNECTED: `in ${roomID}` }[state] ?? state;
  setRoomState(state, errorCode ? `${text} (${errorCode})` : text);
  if (state === 'DISCONNECTED' && loggedInRoom !== null && errorCode) {
    loggedInRoom = null;
    clearRoom();
    updateButtons();
  }
}

function onUserUpdate(_roomID, updateType, userList) {
  for (const { userID, userName } of userList) {
    if (updateType === 'ADD') users.set(userID, userName);
    else users.delete(userID);
  }
  renderUsers();
}

function onStreamUpdate(_roomID, updateType, streamList) {
  for (const { streamID, user, extraInfo } of streamList) {
    if (updateType === 'ADD') streams.set(streamID, { user, extraInfo });
    else streams.delete(streamID);
  }
  renderStreams();
}

function onPublisherState({ state, streamID, errorCode }) {
  $('local-status').textContent = errorCode ? `${streamID}: ${state} (${errorCode})` : `${streamID}: ${state}`;
  $('local-status').className = `state ${errorCode ? 'error' : state}`;
  if (state === 'NO_PUBLISH' && publishing === streamID) {
    publishing = null;
    updateButtons();
  }
}

function onPlayerState({ state, streamID, errorCode }) {
  const tile = tiles.get(streamID);
  if (!tile) return;
  tile.state.textContent = errorCode ? `${state} (${errorCode})` : state;
  tile.state.className = `state ${errorCode ? 'error' : state}`;
}

function onPlayQuality(streamID, stats) {
  const tile = tiles.get(streamID);
  if (!tile) return;
  const { video, audio } = stats;
  if (video.frameWidth) tile.resolution.textContent = `${video.frameWidth}×${video.frameHeight}`;
  tile.fps.textContent = video.videoFPS ? video.videoFPS.toFixed(1) : '0';
  tile.bitrate.textContent = `${Math.round((video.videoBitrate ?? 0) + (audio.audioBitrate ?? 0))} kbps`;
}

// ---- room lists ------------------------------------------------------------------------------------------

function renderUsers() {
  const list = $('users');
  list.replaceChildren();
  if (loggedInRoom !== null) list.append(listItem(field.userID.value, 'you', 'self'));
  for (const [userID, userName] of [...users].sort(([a], [b]) => a.localeCompare(b))) {
    list.append(listItem(userID, userName !== userID ? userName : ''));
  }
  $('user-count').textContent = String(users.size + (loggedInRoom !== null ? 1 : 0));
}

function renderStreams() {
  const list = $('streams');
  list.replaceChildren();
  for (const [streamID, { user }] of [...streams].sort(([a], [b]) => a.localeCompare(b))) {
    const li = listItem(streamID, user?.userID ?? '');
    li.title = 'Click to fill StreamID';
    li.classList.toggle('selected', field.streamID.value === streamID);
    li.addEventListener('click', () => {
      field.streamID.value = streamID;
      renderStreams();
    });
    const play = document.createElement('button');
    play.type = 'button';
    play.className = 'small';
    play.textContent = '▶';
    play.title = `Play ${streamID}`;
    play.disabled = tiles.has(streamID);
    play.addEventListener('click', (event) => {
      event.stopPropagation();
      startPlaying(streamID);
    });
    li.append(play);
    list.append(li);
  }
  $('stream-count').textContent = String(streams.size);
}

function listItem(name, sub, cls = '') {
  const li = document.createElement('li');
  if (cls) li.className = cls;
  const main = document.createElement('span');
  main.className = 'name';
  main.textContent = name;
  li.append(main);
  if (sub) {
    const small = document.createElement('span');
    small.className = 'sub';
    small.textContent = sub;
    li.append(small);
  }
  return li;
}

function clearRoom() {
  users.clear();
  streams.clear();
  for (const streamID of [...tiles.keys()]) removeTile(streamID);
  publishing = null;
  renderUsers();
  renderStreams();
}

// ---- local media -----------------------------------------------------------------------------------------

/**
 * A moving test pattern with the capture stamp in its top strip, so a player of this stream (another tab, the
 * native SDK) reads glass-to-glass latency off its pixels. Needs no camera.
 */
function testPattern(width = 640, height = 360, frameRate = 30) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  let frame = 0;
  const stop = ticker(1000 / frameRate, () => {
    const t = frame / frameRate;
    ctx.fillStyle = `hsl(${(frame * 2) % 360} 45% 35%)`;
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = '#f9fafb';
    const x = ((Math.sin(t) + 1) / 2) * (width - 60);
    ctx.fillRect(x, height / 2, 60, 60);
    ctx.font = '20px ui-monospace, monospace';
    ctx.fillText(`${field.userID.value}  frame ${frame}`, 16, height - 20);
    drawStamp(ctx, nowMicros(), frame);
    frame += 1;
  });
  return { canvas, frameRate, stop };
}

/**
 * Calls `tick` every `intervalMs` from a worker's timer: a page's own timers run once a second in a background
 * tab, which would publish the pattern at 1 fps while its player is in the foreground tab. Returns the stop.
 */
function ticker(intervalMs, tick) {
  try {
    const url = URL.createObjectURL(
      new Blob([`setInterval(() => postMessage(0), ${intervalMs});`], { type: 'text/javascript' }),
    );
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    worker.onmessage = tick;
    return () => worker.terminate();
  } catch {
    const timer = setInterval(tick, intervalMs);
    return () => clearInterval(timer);
  }
}

async function createLocal() {
  const zg = ensureEngine();
  const source = field.source.value;
  if (local && local.source === source) return local;
  stopLocal();
  let stream;
  let stop = () => {};
  if (source === 'pattern') {
    const pattern = testPattern();
    stream = await zg.createStream({ custom: { source: pattern.canvas, frameRate: pattern.frameRate } });
    stop = pattern.stop;
  } else if (source === 'screen') {
    stream = await zg.createStream({ screen: { video: true, audio: false } });
  } else {
    stream = await zg.createStream({ camera: { video: { width: 640, height: 360, frameRate: 30 }, audio: true } });
  }
  local = { stream, source, stop };
  zg.startPreview(stream, $('local-video'));
  $('local-status').textContent = `previewing ${field.source.selectedOptions[0].textContent.toLowerCase()}`;
  $('local-status').className = 'muted';
  log('page: preview', [{ source, tracks: stream.getTracks().map((t) => t.kind) }], 'page');
  return local;
}

function stopLocal() {
  if (!local) return;
  if (engine) {
    engine.stopPreview($('local-video'));
    engine.destroyStream(local.stream);
  }
  local.stop();
  local = null;
  $('local-status').textContent = 'not previewing';
  $('local-status').className = 'muted';
}

// ---- playing ---------------------------------------------------------------------------------------------

function addTile(streamID) {
  const node = $('tile-template').content.firstElementChild.cloneNode(true);
  const tile = {
    node,
    video: node.querySelector('video'),
    state: node.querySelector('.state'),
    resolution: node.querySelector('.resolution'),
    fps: node.querySelector('.fps'),
    bitrate: node.querySelector('.bitrate'),
    latency: node.querySelector('.latency'),
    samples: [],
    running: true,
  };
  node.querySelector('.stream-name').textContent = streamID;
  node.querySelector('.close').addEventListener('click', () => stopPlaying(streamID));
  tile.state.textContent = 'requesting';
  $('tiles').append(node);
  tiles.set(streamID, tile);
  return tile;
}

function removeTile(streamID) {
  const tile = tiles.get(streamID);
  if (!tile) return;
  tile.running = false;
  tile.video.srcObject = null;
  tile.node.remove();
  tiles.delete(streamID);
}

/** Reads the stamp of every shown frame; the latency shown is the median over the last frames. */
function measureLatency(tile) {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const video = tile.video;
  const perFrame = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
  const next = () => {
    if (!tile.running) return;
    if (perFrame) video.requestVideoFrameCallback(step);
    else requestAnimationFrame(step);
  };
  const step = () => {
    const width = video.videoWidth;
    const strip = stripHeight(width, video.videoHeight);
    if (strip > 0) {
      if (canvas.width !== width || canvas.height !== strip) {
        canvas.width = width;
        canvas.height = strip;
      }
      ctx.drawImage(video, 0, 0, width, strip, 0, 0, width, strip);
      const stamp = readStamp(ctx.getImageData(0, 0, width, strip));
      if (stamp) {
        tile.samples.push((nowMicros() - stamp.captureMicros) / 1000);
        if (tile.samples.length > LATENCY_WINDOW) tile.samples.shift();
        const sorted = [...tile.samples].sort((a, b) => a - b);
        tile.latency.textContent = `${Math.round(sorted[sorted.length >> 1])} ms`;
        tile.latency.title = `frame ${stamp.frame}`;
      } else if (tile.samples.length === 0) {
        tile.latency.textContent = 'no stamp';
      }
    }
    next();
  };
  next();
}

function playOptions() {
  const mode = field.playMode.value;
  return { video: mode !== 'audio', audio: mode !== 'video' };
}

async function startPlaying(streamID) {
  if (!streamID) return log('play', 'StreamID is empty', 'error');
  if (tiles.has(streamID)) return log('play', `${streamID} is already playing`, 'error');
  const tile = addTile(streamID);
  updateButtons();
  renderStreams();
  const options = playOptions();
  log('page: startPlayingStream', [streamID, options], 'page');
  try {
    const remote = await engine.startPlayingStream(streamID, options);
    if (!tile.running) return;
    tile.video.srcObject = remote;
    if (options.video) measureLatency(tile);
    else tile.latency.textContent = 'audio only';
  } catch (error) {
    fail('startPlayingStream', error);
    tile.state.textContent = error instanceof ZegoError ? `failed (${error.code})` : 'failed';
    tile.state.className = 'state error';
  }
}

function stopPlaying(streamID) {
  if (!tiles.has(streamID)) return log('stopPlayingStream', `${streamID} is not playing`, 'error');
  engine?.stopPlayingStream(streamID);
  removeTile(streamID);
  log('page: stopPlayingStream', [streamID], 'page');
  updateButtons();
  renderStreams();
}

// ---- buttons ---------------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  const roomID = field.roomID.value.trim();
  const userID = field.userID.value.trim();
  $('login').disabled = true;
  try {
    const zg = ensureEngine();
    let token = field.token.value.trim();
    if (!token && devAppID !== null && Number(field.appID.value) === devAppID) token = await mintToken();
    log('page: loginRoom', [roomID, { userID }], 'page');
    await zg.loginRoom(roomID, token, { userID, userName: userID }, { userUpdate: true });
    loggedInRoom = roomID;
    renderUsers();
  } catch (error) {
    fail('loginRoom', error);
  }
  updateButtons();
}

function logout() {
  if (engine) {
    if (publishing) engine.stopPublishingStream(publishing);
    engine.logoutRoom(loggedInRoom ?? undefined);
  }
  log('page: logoutRoom', [loggedInRoom], 'page');
  loggedInRoom = null;
  clearRoom();
  stopLocal();
  setRoomState('DISCONNECTED', 'logged out');
  updateButtons();
}

async function publish() {
  const streamID = field.streamID.value.trim();
  try {
    const { stream } = await createLocal();
    log('page: startPublishingStream', [streamID], 'page');
    if (engine.startPublishingStream(streamID, stream)) {
      publishing = streamID;
    } else {
      log('startPublishingStream', `refused at once: see the console`, 'error');
    }
  } catch (error) {
    fail('startPublishingStream', error);
  }
  updateButtons();
}

function stopPublishing() {
  if (!publishing) return;
  engine.stopPublishingStream(publishing);
  log('page: stopPublishingStream', [publishing], 'page');
  publishing = null;
  $('local-status').textContent = 'previewing, not publishing';
  updateButtons();
}

function bind(id, action) {
  $(id).addEventListener('click', async () => {
    try {
      await action();
    } catch (error) {
      fail(id, error);
    }
  });
}

restoreFields();
$('sdk-version').textContent = `SDK ${VERSION}`;
$('session-form').addEventListener('submit', login);
bind('logout', logout);
bind('mint', mintToken);
bind('preview', createLocal);
bind('publish', publish);
bind('stop-publish', stopPublishing);
bind('play', () => startPlaying(field.streamID.value.trim()));
bind('stop-play', () => {
  // The stream in StreamID, or the only one playing.
  const streamID = field.streamID.value.trim();
  stopPlaying(tiles.has(streamID) || tiles.size !== 1 ? streamID : [...tiles.keys()][0]);
});
bind('log-clear', () => $('log').replaceChildren());
field.source.addEventListener('change', () => {
  if (local && !publishing) createLocal().catch((error) => fail('preview', error));
});
updateButtons();
renderUsers();
renderStreams();
detectDevApp();
log('page: ready', [{ server: field.server.value, sdk: VERSION }], 'page');
