// One RTCPeerConnection to the server's relay for one published or played stream: send-only (publish) or
// receive-only (play) H.264 + Opus, ICE gathered in full before the offer leaves (the relay does not trickle),
// the answer applied, and the connection watched until it connects or fails.

import { ErrorCode as E } from './codes.js';
import { audioPreferences, videoPreferences } from './codecs.js';
import { insertBeforeFirstSlice, seiAppData } from './sei.js';

/** The longest wait for ICE gathering; the candidates found by then go in the offer. */
const ICE_GATHER_TIMEOUT_MS = 3000;
/** From the answer to a connected transport. */
const CONNECT_TIMEOUT_MS = 10_000;
/** A transport 'disconnected' this long is taken for failed. */
const DISCONNECTED_GRACE_MS = 5000;

function capabilities(side, kind) {
  const api = side === 'send' ? globalThis.RTCRtpSender : globalThis.RTCRtpReceiver;
  return api?.getCapabilities?.(kind)?.codecs ?? null;
}

/** Restricts a transceiver to the relay's codec; false when the browser has none of it. */
function preferCodecs(transceiver, side, kind) {
  const codecs = capabilities(side, kind);
  if (!codecs || typeof transceiver.setCodecPreferences !== 'function') return true; // the relay picks from the offer
  const preferred = kind === 'video' ? videoPreferences(codecs) : audioPreferences(codecs);
  if (!preferred) return false;
  transceiver.setCodecPreferences(preferred);
  return true;
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      pc.removeEventListener('icecandidate', last);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    function last(e) {
      if (!e.candidate) done();
    }
    pc.addEventListener('icegatheringstatechange', check);
    pc.addEventListener('icecandidate', last);
  });
}

export class PeerLink {
  closed = false;
  connected = false;
  #timer = null;

  /**
   * @param {object} o { kind: 'publish'|'play', stream (publish), videoBitrate (kbps, publish), video, audio (play) }
   * @param {object} on { offer(sdp), offerFailed(code, msg), connected(), failed(), track(track) }
   */
  constructor(o, on) {
    this.kind = o.kind;
    this.on = on;
    this.options = o;
  }

  async start() {
    try {
      // SEI needs the encoded frames: every sender and receiver of the connection then passes through a transform.
      const encoded = Boolean(this.options.sei || this.options.onSei);
      if (encoded && typeof globalThis.RTCRtpSender?.prototype?.createEncodedStreams !== 'function') {
        this.on.offerFailed(E.COMMON_UNSUPPORTED, 'this browser does not give access to encoded frames (SEI)');
        return;
      }
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', ...(encoded ? { encodedInsertableStreams: true } : {}) });
      this.pc = pc;
      pc.addEventListener('connectionstatechange', () => this.#state(pc.connectionState));
      pc.addEventListener('iceconnectionstatechange', () => {
        if (pc.connectionState === undefined) this.#state(pc.iceConnectionState);
      });
      pc.addEventListener('track', (e) => {
        if (encoded) this.#readSei(e.receiver, e.track.kind);
        if (!this.closed) this.on.track?.(e.track);
      });
      const problem = this.kind === 'publish' ? this.#addSenders(pc) : this.#addReceivers(pc);
      if (problem) {
        this.on.offerFailed(...problem);
        return;
      }
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (!this.closed) this.on.offer(pc.localDescription.sdp);
    } catch (e) {
      if (!this.closed) this.on.offerFailed(this.kind === 'publish' ? E.PUBLISHER_INNER_ERROR : E.PLAYER_INNER_ERROR, String(e));
    }
  }

  #addSenders(pc) {
    const { stream, videoBitrate } = this.options;
    const [video] = stream.getVideoTracks();
    const [audio] = stream.getAudioTracks();
    if (!video && !audio) return [E.PUBLISHER_NO_DATA, 'the stream has no tracks'];
    if (video) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (videoBitrate > 0) init.sendEncodings = [{ maxBitrate: Math.round(videoBitrate * 1000) }];
      const transceiver = pc.addTransceiver(video, init);
      if (!preferCodecs(transceiver, 'send', 'video')) {
        return [E.COMMON_UNSUPPORTED, 'this browser cannot send H.264 (packetization-mode 1)'];
      }
      if (this.options.sei) this.#writeSei(transceiver.sender, 'video');
    }
    if (audio) {
      const transceiver = pc.addTransceiver(audio, { direction: 'sendonly', streams: [stream] });
      if (!preferCodecs(transceiver, 'send', 'audio')) return [E.COMMON_UNSUPPORTED, 'this browser cannot send Opus'];
      if (this.options.sei) this.#writeSei(transceiver.sender, 'audio');
    }
    return null;
  }

  /** Video frames leave with the SEI waiting in the outbox; audio passes as it is. */
  #writeSei(sender, kind) {
    const { readable, writable } = sender.createEncodedStreams();
    const outbox = this.options.sei;
    const transform = new TransformStream({
      transform(frame, out) {
        const units = kind === 'video' ? outbox.take() : null;
        if (units) frame.data = insertBeforeFirstSlice(new Uint8Array(frame.data), units).buffer;
        out.enqueue(frame);
      },
    });
    readable.pipeThrough(transform).pipeTo(writable).catch(() => {});
  }

  /** The SEI of each video frame as it arrives, before the frame goes on to the decoder; audio passes as it is. */
  #readSei(receiver, kind) {
    const { readable, writable } = receiver.createEncodedStreams();
    const onSei = this.options.onSei;
    const transform = new TransformStream({
      transform: (frame, out) => {
        if (kind === 'video' && !this.closed) {
          for (const data of seiAppData(new Uint8Array(frame.data))) onSei(data);
        }
        out.enqueue(frame);
      },
    });
    readable.pipeThrough(transform).pipeTo(writable).catch(() => {});
  }

  #addReceivers(pc) {
    const { video, audio } = this.options;
    if (video && !preferCodecs(pc.addTransceiver('video', { direction: 'recvonly' }), 'receive', 'video')) {
      return [E.COMMON_UNSUPPORTED, 'this browser cannot receive H.264 (packetization-mode 1)'];
    }
    if (audio && !preferCodecs(pc.addTransceiver('audio', { direction: 'recvonly' }), 'receive', 'audio')) {
      return [E.COMMON_UNSUPPORTED, 'this browser cannot receive Opus'];
    }
    return null;
  }

  async applyAnswer(sdp) {
    if (this.closed) return;
    this.#arm(CONNECT_TIMEOUT_MS);
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
    } catch {
      this.#fail();
    }
  }

  #arm(ms) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fail(), ms);
  }

  #state(state) {
    if (this.closed) return;
    if (state === 'connected' || state === 'completed') {
      clearTimeout(this.#timer);
      if (!this.connected) {
        this.connected = true;
        this.on.connected();
      }
    } else if (state === 'failed' || state === 'closed') {
      this.#fail();
    } else if (state === 'disconnected' && this.connected) {
      this.#arm(DISCONNECTED_GRACE_MS);
    }
  }

  #fail() {
    if (this.closed || this.failedOnce) return;
    this.failedOnce = true;
    clearTimeout(this.#timer);
    this.on.failed();
  }

  /** The values of getStats(), or [] when closed. */
  async stats() {
    if (this.closed || !this.pc) return [];
    return [...(await this.pc.getStats()).values()];
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#timer);
    this.pc?.close();
  }
}
