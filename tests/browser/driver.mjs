#!/usr/bin/env node
// Drives headless Chromium through one scenario against a running zego-server, for tests/browser.rs and
// zego-bench's browser scenarios.
//
//   node tests/browser/driver.mjs <scenario> '<json args>'
//
// The page is a document on the server's origin (`/healthz`), so `/sdk/index.js` and `/debug/stamp.js` are
// same-origin and the page is a secure context; the SDK is the one the server serves. Every line on stdout is one JSON
// object: `{"step": name, ...}` as the scenario goes, `{"done": scenario, ...}` at the end, or
// `{"error": message}` before a non-zero exit. Lines on stdin, `{"go": name, ...}`, let the other side say when
// its part of a step is done (`waitGo`). The whole run is bounded by args.timeoutMs (default 50 s).
//
// Common args: origin (http://127.0.0.1:PORT of the server), ws (the signaling URL the page uses, maybe through
// a proxy), appID, appSign (or token), room, userID.

import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { scenarios } from './scenarios.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const [name, rawArgs = '{}'] = process.argv.slice(2);
const args = JSON.parse(rawArgs);
const timeoutMs = args.timeoutMs ?? 50_000;

function print(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

let browser = null;
let profileDir = null;

async function cleanup() {
  try {
    await browser?.close();
  } catch {}
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}

async function fail(message) {
  print({ error: message });
  await cleanup();
  process.exit(1);
}

const hardTimeout = setTimeout(() => fail(`${name}: timed out after ${timeoutMs} ms`), timeoutMs);

/** Lines from stdin, `{"go": name, ...}`; `waitGo(name)` resolves with the first such line not yet taken. */
const gos = [];
const goWaiters = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const msg = JSON.parse(line);
  gos.push(msg);
  for (const w of goWaiters.splice(0)) w();
});
async function waitGo(goName) {
  for (;;) {
    const i = gos.findIndex((m) => m.go === goName);
    if (i >= 0) return gos.splice(i, 1)[0];
    await new Promise((resolve) => goWaiters.push(resolve));
  }
}

/** The engine's events as the page forwards them: `{name, args, at}` (at = ms since the driver started). */
const started = Date.now();
const events = [];
const eventWaiters = [];
function onEvent(eventName, eventArgs) {
  events.push({ name: eventName, args: eventArgs, at: Date.now() - started });
  for (const w of eventWaiters.splice(0)) w();
}

/** The first event (from the start, or from index `from`) matching `pred`, waiting at most `ms`. */
async function waitEvent(what, pred, { from = 0, ms = 20_000 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = events.slice(from).find((e) => pred(e.name, ...e.args));
    if (found) return found;
    const left = deadline - Date.now();
    if (left <= 0) {
      const recent = events.slice(-20).map((e) => `${e.name} ${JSON.stringify(e.args)}`);
      throw new Error(`timed out after ${ms} ms waiting for ${what}; recent events:\n  ${recent.join('\n  ')}`);
    }
    await new Promise((resolve) => {
      const t = setTimeout(resolve, left);
      eventWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** Polls `fn` in the page until it returns a truthy value. */
async function waitPage(page, what, fn, arg, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await page.evaluate(fn, arg);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main() {
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`unknown scenario ${JSON.stringify(name)}; known: ${Object.keys(scenarios).join(', ')}`);
  const { chromium } = await import('playwright-core');
  profileDir = mkdtempSync(join(tmpdir(), 'zego-browser-'));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('pageerror', (e) => print({ pageError: String(e) }));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning' || args.verbose) print({ console: m.type(), text: m.text() });
  });
  await page.exposeFunction('__zegoEvent', onEvent);
  // Every peer connection the SDK makes, so the page can read its stats (framesDecoded, jitterBufferDelay).
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__peers = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...a) {
        super(...a);
        window.__peers.push(this);
      }
    };
  });
  // A document the server itself serves: a page Chromium did not get from the network (a routed one) counts as
  // public, and Local Network Access then blocks its WebSocket to 127.0.0.1.
  await page.goto(`${args.origin}/healthz`);
  await page.evaluate(async ({ origin, page: helpers }) => {
    window.zego = await import(`${origin}/sdk/index.js`);
    // eslint-disable-next-line no-new-func
    window.T = new Function(`return (${helpers})`)()();
  }, { origin: args.origin, page: pageHelpers.toString() });

  const ctx = { page, args, print, waitGo, waitEvent, waitPage, events };
  const result = await scenario(ctx);
  print({ done: name, ...result });
}

/**
 * What runs in the page (as `window.T`): the engine with every event forwarded, and watchers of played video.
 * Serialized with toString, so it must not close over anything.
 */
function pageHelpers() {
  const EVENTS = [
    'roomStateUpdate', 'roomStateChanged', 'roomUserUpdate', 'roomStreamUpdate', 'tokenWillExpire',
    'publisherStateUpdate', 'playerStateUpdate', 'playerRecvVideoFirstFrame', 'playerRenderVideoFirstFrame',
    'playerVideoSizeChanged', 'publisherCapturedVideoFirstFrame', 'IMRecvBroadcastMessage', 'IMRecvCustomCommand',
  ];
  const wallMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
  const T = {
    engine: null,
    videos: new Map(),
    wallMicros,
    createEngine(appID, ws, options) {
      T.engine = new window.zego.ZegoExpressEngine(appID, ws, options);
      for (const name of EVENTS) {
        T.engine.on(name, (...a) => window.__zegoEvent(name, JSON.parse(JSON.stringify(a))));
      }
    },
    /** Shows a played stream in a <video> and counts its frames (requestVideoFrameCallback); with `readStamp`,
     * reads the capture stamp of every frame and keeps (wall-clock time it is expected on screen - capture time). */
    watch(streamID, stream, readStamp) {
      const video = document.createElement('video');
      video.muted = true;
      video.playsInline = true;
      video.autoplay = true;
      document.body.append(video);
      const w = { video, frames: 0, width: 0, height: 0, firstFrameAt: 0, latenciesMs: [], toReceivedMs: [], receivedToShownMs: [], stamped: 0, unreadable: 0 };
      T.videos.set(streamID, w);
      let canvas = null;
      let ctx2d = null;
      const onFrame = (_now, meta) => {
        // When the frame is expected on screen (the compositor's time for it), not when this callback runs.
        const at = meta.expectedDisplayTime ? (performance.timeOrigin + meta.expectedDisplayTime) * 1000 : wallMicros();
        w.frames += 1;
        if (!w.firstFrameAt) w.firstFrameAt = performance.now();
        w.width = meta.width;
        w.height = meta.height;
        if (readStamp && meta.width > 0) {
          if (!canvas || canvas.width !== meta.width || canvas.height !== meta.height) {
            canvas = new OffscreenCanvas(meta.width, meta.height);
            ctx2d = canvas.getContext('2d', { willReadFrequently: true });
          }
          ctx2d.drawImage(video, 0, 0, meta.width, meta.height);
          const strip = Math.min(meta.height, Math.ceil(meta.width / 40) * 3 + 4);
          const stamp = readStamp(ctx2d.getImageData(0, 0, meta.width, strip));
          if (stamp) {
            w.stamped += 1;
            w.latenciesMs.push((at - stamp.captureMicros) / 1000);
            // Where the time went: capture -> last packet received, and received -> this callback.
            if (meta.receiveTime) {
              const received = (performance.timeOrigin + meta.receiveTime) * 1000;
              w.toReceivedMs.push((received - stamp.captureMicros) / 1000);
              w.receivedToShownMs.push((at - received) / 1000);
            }
          } else {
            w.unreadable += 1;
          }
        }
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      video.srcObject = stream;
      video.play().catch(() => {});
      return w;
    },
    /** A WHIP or WHEP exchange (`kind` names it in errors): the peer connection's offer POSTed with the token, the
     * 201's answer applied. Resolves with the response and its session's resource URL. */
    async negotiateHttp(kind, pc, url, token) {
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
      const body = await res.text();
      if (res.status !== 201) throw new Error(`${kind} POST answered ${res.status}: ${body}`);
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
      return { res, resource: new URL(res.headers.get('Location'), url).href };
    },
    /** Inbound stats summed over every receiving peer connection, by kind. */
    async inbound() {
      const out = {
        video: { framesDecoded: 0, framesReceived: 0, jitterBufferDelay: 0, jitterBufferEmittedCount: 0, totalDecodeTime: 0, totalProcessingDelay: 0, frameWidth: 0, frameHeight: 0, packetsReceived: 0 },
        audio: { packetsReceived: 0, totalSamplesReceived: 0, jitterBufferDelay: 0, jitterBufferEmittedCount: 0 },
      };
      for (const pc of window.__peers) {
        if (pc.connectionState === 'closed') continue;
        const report = await pc.getStats();
        report.forEach((s) => {
          if (s.type !== 'inbound-rtp' || !out[s.kind]) return;
          for (const k of Object.keys(out[s.kind])) {
            if (k === 'frameWidth' || k === 'frameHeight') out[s.kind][k] = s[k] ?? out[s.kind][k];
            else out[s.kind][k] += s[k] ?? 0;
          }
        });
      }
      return out;
    },
  };
  return T;
}

main()
  .then(async () => {
    clearTimeout(hardTimeout);
    await cleanup();
    process.exit(0);
  })
  .catch((e) => fail(`${name}: ${e?.stack ?? e}`));
