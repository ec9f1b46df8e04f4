// Which codecs a peer connection offers, in order, for the relay: H.264 constrained baseline with
// packetization-mode 1 (profile-level-id 42e01f first) plus its retransmission codec, and Opus.

function fmtp(codec) {
  const out = {};
  for (const part of (codec.sdpFmtpLine ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k) out[k.toLowerCase()] = (v ?? '').toLowerCase();
  }
  return out;
}

const mime = (codec) => (codec.mimeType ?? '').toLowerCase();

/**
 * The video codecs to prefer, from RTCRtpSender/RTCRtpReceiver.getCapabilities('video').codecs; null when there
 * is no H.264 with packetization-mode 1 at all.
 */
export function videoPreferences(codecs) {
  const h264 = codecs.filter((c) => mime(c) === 'video/h264' && fmtp(c)['packetization-mode'] === '1');
  const rank = (c) => {
    const profile = fmtp(c)['profile-level-id'] ?? '';
    if (profile === '42e01f') return 0;
    if (profile.startsWith('42e0')) return 1;
    if (profile.startsWith('42')) return 2;
    return 3;
  };
  const baseline = h264.filter((c) => rank(c) < 3).sort((a, b) => rank(a) - rank(b));
  if (!baseline.length) return null;
  return [...baseline, ...codecs.filter((c) => mime(c) === 'video/rtx')];
}

/** The audio codecs to prefer: Opus only; null when there is none. */
export function audioPreferences(codecs) {
  const opus = codecs.filter((c) => mime(c) === 'audio/opus');
  return opus.length ? opus : null;
}
