// The scenarios driver.mjs runs, by name. Each takes the driver's context and returns what the run found (printed
// as the `done` line); a thrown error fails the run. They do the browser's half; tests/browser.rs (or zego-bench)
// does the native half and checks what both saw.

/** Creates the engine (appSign login unless args.token is given) and logs in to args.room. */
async function login(ctx, extra = {}) {
  const { page, args, waitEvent } = ctx;
  const options = args.token ? {} : { appSign: args.appSign };
  await page.evaluate(
    ({ appID, ws, options, room, userID, token }) => {
      window.T.createEngine(appID, ws, options);
      // The outcome arrives as roomStateChanged; a rejection is reported by it too.
      window.T.engine.loginRoom(room, token, { userID, userName: `${userID} name` }, { userUpdate: true }).catch(() => {});
    },
    { appID: args.appID, ws: args.ws, options, room: args.room, userID: args.userID, token: args.token ?? '', ...extra },
  );
  const outcome = await waitEvent('the login', (n, _room, reason) => n === 'roomStateChanged' && (reason === 'LOGINED' || reason === 'LOGIN_FAILED'));
  if (outcome.args[1] !== 'LOGINED') throw new Error(`login failed: ${JSON.stringify(outcome.args)}`);
  ctx.print({ step: 'logged-in' });
}

/** Publishes the fake camera and microphone as `streamID`; resolves with the first terminal publisher state. */
async function publishCamera(ctx, streamID, { width = 640, height = 360, isSEIStart = false } = {}) {
  const { page, waitEvent, events } = ctx;
  const from = events.length;
  const started = await page.evaluate(
    async ({ streamID, width, height, isSEIStart }) => {
      const stream = await window.T.engine.createStream({ camera: { video: { width, height, frameRate: 15 }, audio: true } });
      window.T.published = stream;
      return window.T.engine.startPublishingStream(streamID, stream, { isSEIStart });
    },
    { streamID, width, height, isSEIStart },
  );
  if (!started) throw new Error(`startPublishingStream(${streamID}) refused`);
  return waitEvent(
    `PUBLISHING or NO_PUBLISH of ${streamID}`,
    (n, r) => n === 'publisherStateUpdate' && r.streamID === streamID && (r.state === 'PUBLISHING' || r.state === 'NO_PUBLISH'),
    { from },
  );
}

/** Plays `streamID` into a <video>; resolves with the tracks of the one MediaStream startPlayingStream gave. */
async function play(ctx, streamID, { readStamps = false, audio = true, isSEIStart = false } = {}) {
  return ctx.page.evaluate(
    async ({ streamID, origin, readStamps, audio, isSEIStart }) => {
      const readStamp = readStamps ? (await import(`${origin}/debug/stamp.js`)).readStamp : null;
      const started = performance.now();
      const stream = await window.T.engine.startPlayingStream(streamID, { audio, isSEIStart });
      const w = window.T.watch(streamID, stream, readStamp);
      w.started = started;
      w.video.muted = false; // plays the audio too (autoplay is allowed by the launch flags)
      return { audioTracks: stream.getAudioTracks().length, videoTracks: stream.getVideoTracks().length, resolvedMs: performance.now() - started };
    },
    { streamID, origin: ctx.args.origin, readStamps, audio, isSEIStart },
  );
}

/** The WHIP or WHEP endpoint of a stream, for a user of its own (a WHIP/WHEP session is a user in the room). */
function httpEndpoint(args, kind, streamID) {
  const q = new URLSearchParams({ user_id: `${args.userID}-${kind}`, room_id: args.room });
  return `${args.origin}/${kind}/${args.appID}/${encodeURIComponent(streamID)}?${q}`;
}

/**
 * Plays `streamID` over WHEP with nothing of the SDK: an RTCPeerConnection with two receive-only transceivers, its
 * offer POSTed with the token, the answer applied. Shows it in a watched <video> like play().
 */
async function playWhep(ctx, streamID, { readStamps = false } = {}) {
  return ctx.page.evaluate(
    async ({ origin, url, token, streamID, readStamps }) => {
      const readStamp = readStamps ? (await import(`${origin}/debug/stamp.js`)).readStamp : null;
      const started = performance.now();
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const streams = new Set();
      pc.ontrack = (e) => e.streams.forEach((s) => streams.add(s));
      const { res, resource } = await window.T.negotiateHttp('WHEP', pc, url, token);
      const stream = [...streams][0] ?? new MediaStream(pc.getReceivers().map((r) => r.track));
      const w = window.T.watch(streamID, stream, readStamp);
      Object.assign(w, { started, pc, resource });
      w.video.muted = false;
      return {
        status: res.status,
        contentType: res.headers.get('Content-Type'),
        etag: res.headers.get('ETag'),
        streams: streams.size,
        audioTracks: stream.getAudioTracks().length,
        videoTracks: stream.getVideoTracks().length,
        resolvedMs: performance.now() - started,
      };
    },
    { origin: ctx.args.origin, url: httpEndpoint(ctx.args, 'whep', streamID), token: ctx.args.token, streamID, readStamps },
  );
}

/** Ends a WHEP or WHIP session of the page: DELETE of its resource, and its peer connection closed. */
function endHttpSession(ctx, streamID) {
  return ctx.page.evaluate(async (id) => {
    const w = window.T.videos.get(id) ?? window.T.whip;
    const res = await fetch(w.resource, { method: 'DELETE' });
    w.pc.close();
    if (w.video) {
      w.video.srcObject = null;
      w.video.remove();
      window.T.videos.delete(id);
    }
    return res.status;
  }, streamID);
}

/** Waits until at least `count` frames of `streamID` were shown, counted by requestVideoFrameCallback. */
function framesShown(ctx, streamID, count, ms = 20_000) {
  return ctx.waitPage(
    ctx.page,
    `${count} frames of ${streamID}`,
    ({ streamID, count }) => {
      const w = window.T.videos.get(streamID);
      return w && w.frames >= count ? { frames: w.frames, width: w.width, height: w.height } : null;
    },
    { streamID, count },
    ms,
  );
}

/** Inbound stats once audio was decoded too (it comes from the same MediaStream: the jitter buffer gave out
 * samples). */
function decodedAudio(ctx) {
  return ctx.waitPage(
    ctx.page,
    'decoded audio',
    async () => {
      const s = await window.T.inbound();
      return s.audio.totalSamplesReceived > 0 && s.video.framesDecoded > 0 ? s : null;
    },
    undefined,
  );
}

function frameCount(ctx, streamID) {
  return ctx.page.evaluate((streamID) => window.T.videos.get(streamID)?.frames ?? 0, streamID);
}

function reasons(events) {
  return events.filter((e) => e.name === 'roomStateChanged').map((e) => [e.args[1], e.args[2]]);
}

const isUser = (type, userID) => (n, _room, t, list) => n === 'roomUserUpdate' && t === type && list.some((u) => u.userID === userID);
const isStream = (type, streamID) => (n, _room, t, list) => n === 'roomStreamUpdate' && t === type && list.some((s) => s.streamID === streamID);

export const scenarios = {
  /**
   * SEI both ways: the page publishes args.streamID and plays args.nativeStreamID, both with isSEIStart; told
   * `send`, it sends args.messages messages [i, 0, 0, 3, 'w', 'e', 'b'] 100 ms apart, then returns the SEI it
   * received once it has args.expect.
   */
  async sei(ctx) {
    const { page, args, print, waitGo, events } = ctx;
    await login(ctx);
    await page.evaluate(() => {
      window.T.engine.on('playerRecvSEI', (id, data) => window.__zegoEvent('playerRecvSEI', [id, Array.from(data)]));
    });
    const state = await publishCamera(ctx, args.streamID, { isSEIStart: true });
    if (state.args[0].state !== 'PUBLISHING') throw new Error(`not publishing: ${JSON.stringify(state.args[0])}`);
    await play(ctx, args.nativeStreamID, { isSEIStart: true });
    await framesShown(ctx, args.nativeStreamID, 5);
    print({ step: 'ready' });
    await waitGo('send');
    const sent = await page.evaluate(async ({ streamID, count }) => {
      const results = [];
      for (let i = 0; i < count; i++) {
        results.push(window.T.engine.sendSEI(streamID, Uint8Array.from([i, 0, 0, 3, 119, 101, 98])));
        await new Promise((r) => setTimeout(r, 100));
      }
      return results;
    }, { streamID: args.streamID, count: args.messages });
    if (!sent.every(Boolean)) throw new Error(`sendSEI refused: ${JSON.stringify(sent)}`);
    const refused = await page.evaluate((id) => [window.T.engine.sendSEI(id, new Uint8Array(4097)), window.T.engine.sendSEI('not-published', Uint8Array.from([1]))], args.streamID);
    const received = () => events.filter((e) => e.name === 'playerRecvSEI').map((e) => e.args);
    const deadline = Date.now() + 20_000;
    while (received().length < args.expect) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${args.expect} SEI messages: ${JSON.stringify(received())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { received: received(), refused };
  },

  /** The page publishes Chromium's fake camera and microphone until the other side says `stop`. */
  async 'publish-camera'(ctx) {
    const { page, args, print, waitGo, waitEvent, events } = ctx;
    await login(ctx);
    const state = await publishCamera(ctx, args.streamID, args);
    if (state.args[0].state !== 'PUBLISHING') throw new Error(`not publishing: ${JSON.stringify(state.args[0])}`);
    print({ step: 'publishing' });
    await waitGo('stop');
    const from = events.length;
    await page.evaluate((id) => window.T.engine.stopPublishingStream(id), args.streamID);
    await waitEvent('NO_PUBLISH', (n, r) => n === 'publisherStateUpdate' && r.state === 'NO_PUBLISH', { from });
    await page.evaluate((room) => window.T.engine.logoutRoom(room), args.room);
    return {};
  },

  /** The page plays args.streamID until args.frames frames were shown, then reports what it played. */
  async play(ctx) {
    const { args, page } = ctx;
    await login(ctx);
    const tracks = await play(ctx, args.streamID);
    const shown = await framesShown(ctx, args.streamID, args.frames ?? 30);
    const stats = await decodedAudio(ctx);
    const live = await page.evaluate((id) => {
      const v = window.T.videos.get(id).video;
      return v.srcObject.getTracks().map((t) => ({ kind: t.kind, readyState: t.readyState }));
    }, args.streamID);
    return { ...tracks, ...shown, stats, live };
  },

  /** A WHEP player (no SDK on the page) plays args.streamID until args.frames frames were shown, then DELETEs its
   * session when the other side says `delete`. */
  async 'whep-play'(ctx) {
    const { args, print, waitGo } = ctx;
    const post = await playWhep(ctx, args.streamID);
    const shown = await framesShown(ctx, args.streamID, args.frames ?? 30);
    const stats = await decodedAudio(ctx);
    print({ step: 'playing' });
    await waitGo('delete');
    const deleteStatus = await endHttpSession(ctx, args.streamID);
    return { post, ...shown, stats, deleteStatus };
  },

  /** Room events both ways: the native side logs in and publishes, the page does, then each leaves. */
  async events(ctx) {
    const { page, args, print, waitGo, waitEvent, events } = ctx;
    await login(ctx);
    const native = args.nativeUserID;
    await waitEvent('the native user ADD', isUser('ADD', native));
    await waitEvent('the native stream ADD', isStream('ADD', args.nativeStreamID));
    print({ step: 'saw-native' });
    const state = await publishCamera(ctx, args.streamID);
    if (state.args[0].state !== 'PUBLISHING') throw new Error(`not publishing: ${JSON.stringify(state.args[0])}`);
    print({ step: 'publishing' });
    await waitGo('stop-publishing');
    await page.evaluate((id) => window.T.engine.stopPublishingStream(id), args.streamID);
    print({ step: 'stopped-publishing' });
    // The native side stops its stream and logs out.
    const streamGone = await waitEvent('the native stream DELETE', isStream('DELETE', args.nativeStreamID));
    await waitEvent('the native user DELETE', isUser('DELETE', native));
    print({ step: 'saw-native-leave' });
    // The native side logs in again to watch this page leave.
    await waitGo('logout');
    await page.evaluate((room) => window.T.engine.logoutRoom(room), args.room);
    return { streamDeleteExtendedData: streamGone.args[3], reasons: reasons(events) };
  },

  /** Plays args.streamID through a signaling proxy the other side cuts; the session must resume. */
  async reconnect(ctx) {
    const { args, print, waitEvent, events } = ctx;
    await login(ctx);
    await play(ctx, args.streamID);
    await framesShown(ctx, args.streamID, 10);
    const from = events.length;
    print({ step: 'playing' });
    await waitEvent('RECONNECTING', (n, _r, reason) => n === 'roomStateChanged' && reason === 'RECONNECTING', { from });
    const back = await waitEvent('RECONNECTED', (n, _r, reason) => n === 'roomStateChanged' && reason === 'RECONNECTED', { from });
    const framesAtReconnect = await frameCount(ctx, args.streamID);
    const after = await framesShown(ctx, args.streamID, framesAtReconnect + 30);
    print({ step: 'resumed' });
    // Events that came with or after the resume (a DELETE of the played stream would mean the session was lost).
    const sinceResume = events.filter((e) => e.at >= back.at).map((e) => [e.name, ...e.args]);
    return { reasons: reasons(events.slice(from)), framesAtReconnect, framesAfter: after.frames, sinceResume };
  },

  /** Once the browser is up, the other side mints the tokens (`go token` with token, renewToken and firstExpire, unix
   * seconds): logs in with the short-lived one, renews on tokenWillExpire and stays in the room past its expiry. */
  async token(ctx) {
    const { page, print, waitGo, waitEvent, events } = ctx;
    print({ step: 'ready' });
    const tokens = await waitGo('token');
    ctx.args.token = tokens.token;
    await login(ctx);
    const warned = await waitEvent('tokenWillExpire', (n) => n === 'tokenWillExpire');
    const renewed = await page.evaluate((token) => window.T.engine.renewToken(token), tokens.renewToken);
    print({ step: 'renewed', remainSeconds: warned.args[1], renewed });
    const wait = tokens.firstExpire * 1000 + 2500 - Date.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait))); // the expiry itself is what is waited for
    const broadcast = await page.evaluate((room) => window.T.engine.sendBroadcastMessage(room, 'after the first token expired'), ctx.args.room);
    const kicked = events.filter((e) => e.name === 'roomStateChanged' && (e.args[1] === 'KICKOUT' || e.args[1] === 'RECONNECTING'));
    return { remainSeconds: warned.args[1], renewed, broadcast, kicked: kicked.map((e) => e.args), now: Math.floor(Date.now() / 1000) };
  },

  /** Publishes args.streamID, which the native side already publishes: the page must be refused. */
  async 'duplicate-publish'(ctx) {
    const { args } = ctx;
    await login(ctx);
    const state = await publishCamera(ctx, args.streamID);
    const states = ctx.events.filter((e) => e.name === 'publisherStateUpdate').map((e) => e.args[0]);
    return { state: state.args[0].state, errorCode: state.args[0].errorCode, states };
  },

  /** zego-bench native-to-browser: plays args.streamID for args.seconds, reading the capture stamp of every shown
   * frame; then args.trials first-frame trials (startPlayingStream -> first frame shown). */
  async 'bench-play'(ctx) {
    const { page, args, print } = ctx;
    // With args.whep, over WHEP (no SDK, no room login of the page's own).
    if (!args.whep) await login(ctx);
    const audio = args.audio ?? true;
    const start = (readStamps) => (args.whep ? playWhep(ctx, args.streamID, { readStamps }) : play(ctx, args.streamID, { readStamps, audio }));
    await start(true);
    await framesShown(ctx, args.streamID, 1);
    const firstFrameMs = [await page.evaluate((id) => { const w = window.T.videos.get(id); return w.firstFrameAt - w.started; }, args.streamID)];
    await new Promise((resolve) => setTimeout(resolve, (args.warmupSeconds ?? 2) * 1000));
    const before = await page.evaluate(async (id) => {
      const w = window.T.videos.get(id);
      w.latenciesMs = [];
      w.toReceivedMs = [];
      w.receivedToShownMs = [];
      w.stamped = 0;
      w.unreadable = 0;
      w.windowFrames = w.frames;
      return window.T.inbound();
    }, args.streamID);
    print({ step: 'measuring' });
    await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000));
    const window_ = await page.evaluate(async (id) => {
      const w = window.T.videos.get(id);
      return { latenciesMs: w.latenciesMs, toReceivedMs: w.toReceivedMs, receivedToShownMs: w.receivedToShownMs, stamped: w.stamped, unreadable: w.unreadable, frames: w.frames - w.windowFrames, width: w.width, height: w.height, stats: await window.T.inbound() };
    }, args.streamID);
    const after = window_.stats;
    const jb = (kind) => {
      const emitted = after[kind].jitterBufferEmittedCount - before[kind].jitterBufferEmittedCount;
      return emitted > 0 ? ((after[kind].jitterBufferDelay - before[kind].jitterBufferDelay) / emitted) * 1000 : null;
    };
    const perFrame = (key) => {
      const frames = after.video.framesDecoded - before.video.framesDecoded;
      return frames > 0 ? ((after.video[key] - before.video[key]) / frames) * 1000 : null;
    };
    for (let i = 1; i < (args.trials ?? 5); i++) {
      if (args.whep) {
        const status = await endHttpSession(ctx, args.streamID);
        if (status !== 200) throw new Error(`WHEP DELETE answered ${status}`);
      } else {
        await page.evaluate((id) => {
          const w = window.T.videos.get(id);
          w.video.srcObject = null;
          w.video.remove();
          window.T.videos.delete(id);
          window.T.engine.stopPlayingStream(id);
        }, args.streamID);
      }
      await start(false);
      await framesShown(ctx, args.streamID, 1);
      firstFrameMs.push(await page.evaluate((id) => { const w = window.T.videos.get(id); return w.firstFrameAt - w.started; }, args.streamID));
    }
    return {
      audio,
      latenciesMs: window_.latenciesMs,
      toReceivedMs: window_.toReceivedMs,
      receivedToShownMs: window_.receivedToShownMs,
      stamped: window_.stamped,
      unreadable: window_.unreadable,
      frames: window_.frames,
      width: window_.width,
      height: window_.height,
      jitterBufferDelayMs: { video: jb('video'), audio: jb('audio') },
      // Per decoded frame: decoding alone, and first packet received -> decoded (jitter buffer and decode).
      decodeMs: perFrame('totalDecodeTime'),
      processingDelayMs: perFrame('totalProcessingDelay'),
      framesDecoded: after.video.framesDecoded - before.video.framesDecoded,
      firstFrameMs,
    };
  },

  /** zego-bench browser-to-native: publishes a canvas with the capture stamp drawn on every frame (args.width x
   * args.height at args.fps) until the other side says `stop`. */
  async 'bench-publish'(ctx) {
    const { page, args, print, waitGo, waitEvent } = ctx;
    // With args.whip, over WHIP (no SDK, no room login of the page's own).
    if (!args.whip) await login(ctx);
    const started = await page.evaluate(
      async ({ origin, streamID, width, height, fps, bitrate, whip, token }) => {
        const { drawStamp } = await import(`${origin}/debug/stamp.js`);
        const canvas = document.createElement('canvas');
        canvas.width = width;
        canvas.height = height;
        document.body.append(canvas);
        const c = canvas.getContext('2d');
        let frame = 0;
        window.T.drawn = 0;
        window.T.drawTimer = setInterval(() => {
          // Something that moves under the stamp, so the encoder has real work.
          c.fillStyle = '#406080';
          c.fillRect(0, 0, width, height);
          c.fillStyle = '#e0c040';
          c.fillRect((frame * 8) % width, height / 2, width / 8, height / 4);
          drawStamp(c, window.T.wallMicros(), frame);
          frame += 1;
          window.T.drawn = frame;
        }, 1000 / fps);
        if (whip) {
          // A plain WHIP client: the canvas's track on a send-only transceiver, the offer POSTed with the token.
          const pc = new RTCPeerConnection();
          const track = canvas.captureStream(fps).getVideoTracks()[0];
          const { sender } = pc.addTransceiver(track, { direction: 'sendonly' });
          const { resource } = await window.T.negotiateHttp('WHIP', pc, whip, token);
          const params = sender.getParameters();
          params.encodings[0].maxBitrate = bitrate * 1000;
          await sender.setParameters(params);
          window.T.whip = { pc, resource };
          return true;
        }
        const stream = await window.T.engine.createStream({ custom: { source: canvas, frameRate: fps } });
        return window.T.engine.startPublishingStream(streamID, stream, { videoBitrate: bitrate });
      },
      {
        origin: args.origin,
        streamID: args.streamID,
        width: args.width,
        height: args.height,
        fps: args.fps,
        bitrate: args.bitrateKbps,
        whip: args.whip ? httpEndpoint(args, 'whip', args.streamID) : null,
        token: args.token,
      },
    );
    if (!started) throw new Error('startPublishingStream refused');
    if (!args.whip) {
      const state = await waitEvent('PUBLISHING', (n, r) => n === 'publisherStateUpdate' && (r.state === 'PUBLISHING' || r.state === 'NO_PUBLISH'));
      if (state.args[0].state !== 'PUBLISHING') throw new Error(`not publishing: ${JSON.stringify(state.args[0])}`);
    }
    print({ step: 'publishing' });
    await waitGo('stop');
    const drawn = await page.evaluate(() => {
      clearInterval(window.T.drawTimer);
      return window.T.drawn;
    });
    return { drawn };
  },
};
