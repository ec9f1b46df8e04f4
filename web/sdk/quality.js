// Publish and play quality from RTCPeerConnection.getStats, as the original web SDK's stats objects: bitrates
// (kbps) and frame rates over the interval since the last sample, sizes, packet loss (fractions 0..1), the
// round trip (ms) and, for players, the jitter buffer delay (ms).

const round = (v, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

function find(stats, type, kind) {
  return stats.find((s) => s.type === type && (s.kind ?? s.mediaType) === kind);
}

/** The round trip of the transport in use, in ms (0 when unknown). */
function roundTrip(stats) {
  const pair = stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded')
    ?? stats.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded');
  if (pair?.currentRoundTripTime !== undefined) return Math.round(pair.currentRoundTripTime * 1000);
  const remote = stats.find((s) => s.type === 'remote-inbound-rtp' && s.roundTripTime !== undefined);
  return remote ? Math.round(remote.roundTripTime * 1000) : 0;
}

/** How much a cumulative counter grew between two samples. */
const grew = (now, before, key) => Math.max(0, (now?.[key] ?? 0) - (before?.[key] ?? 0));

export class QualityMeter {
  /** The previous sample: { at, video, audio, videoRemote, audioRemote } (raw stats entries). */
  #last = null;

  /** @param {'publish'|'play'} kind */
  constructor(kind) {
    this.kind = kind;
  }

  /** A stats object from one getStats() result (an array of its values) taken at `now` (ms). */
  sample(now, stats) {
    const inOut = this.kind === 'publish' ? 'outbound-rtp' : 'inbound-rtp';
    const cur = {
      at: now,
      video: find(stats, inOut, 'video'),
      audio: find(stats, inOut, 'audio'),
      videoRemote: find(stats, 'remote-inbound-rtp', 'video'),
      audioRemote: find(stats, 'remote-inbound-rtp', 'audio'),
    };
    const last = this.#last;
    const seconds = last ? Math.max(0.001, (now - last.at) / 1000) : 0;
    /** Per second over the interval (0 on the first sample). */
    const rate = (key, field, scale = 1) => (seconds && cur[key]
      ? round((grew(cur[key], last[key], field) * scale) / seconds) : 0);
    const kbps = (key) => rate(key, this.kind === 'publish' ? 'bytesSent' : 'bytesReceived', 8 / 1000);
    const quality = this.kind === 'publish' ? this.#publish(cur, last, rate, kbps) : this.#play(cur, last, rate, kbps);
    quality.rtt = roundTrip(stats);
    this.#last = cur;
    return quality;
  }

  #publish(cur, last, rate, kbps) {
    /** Lost (as the relay's receiver reports say) over sent during the interval. */
    const loss = (key) => {
      const remote = cur[`${key}Remote`];
      if (!last) return remote?.fractionLost ?? 0;
      const sent = grew(cur[key], last[key], 'packetsSent');
      const lost = grew(remote, last[`${key}Remote`], 'packetsLost');
      return sent > 0 ? Math.min(1, round(lost / sent, 4)) : 0;
    };
    return {
      video: {
        videoBitrate: kbps('video'),
        videoFPS: cur.video?.framesPerSecond ?? rate('video', 'framesEncoded'),
        frameWidth: cur.video?.frameWidth ?? 0,
        frameHeight: cur.video?.frameHeight ?? 0,
        videoPacketsLost: cur.videoRemote?.packetsLost ?? 0,
        videoPacketsLostRate: loss('video'),
      },
      audio: {
        audioBitrate: kbps('audio'),
        audioPacketsLost: cur.audioRemote?.packetsLost ?? 0,
        audioPacketsLostRate: loss('audio'),
      },
    };
  }

  #play(cur, last, rate, kbps) {
    /** Lost over expected during the interval. */
    const loss = (key) => {
      const lost = grew(cur[key], last?.[key], 'packetsLost');
      const arrived = grew(cur[key], last?.[key], 'packetsReceived');
      return last && lost + arrived > 0 ? round(lost / (lost + arrived), 4) : 0;
    };
    /** Mean time a sample spent in the jitter buffer during the interval, in ms. */
    const jitterBuffer = (key) => {
      const delay = grew(cur[key], last?.[key], 'jitterBufferDelay');
      const emitted = grew(cur[key], last?.[key], 'jitterBufferEmittedCount');
      return emitted > 0 ? Math.round((delay / emitted) * 1000) : 0;
    };
    const videoJitter = jitterBuffer('video');
    const audioJitter = jitterBuffer('audio');
    return {
      video: {
        videoBitrate: kbps('video'),
        videoFPS: cur.video?.framesPerSecond ?? rate('video', 'framesDecoded'),
        frameWidth: cur.video?.frameWidth ?? 0,
        frameHeight: cur.video?.frameHeight ?? 0,
        videoPacketsLost: cur.video?.packetsLost ?? 0,
        videoPacketsLostRate: loss('video'),
        jitterBufferDelay: videoJitter,
      },
      audio: {
        audioBitrate: kbps('audio'),
        audioPacketsLost: cur.audio?.packetsLost ?? 0,
        audioPacketsLostRate: loss('audio'),
        jitterBufferDelay: audioJitter,
      },
      jitterBufferDelay: cur.video ? videoJitter : audioJitter,
    };
  }
}
