// The pure parts of the media shell: which codecs a peer offers, and quality from getStats samples.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audioPreferences, videoPreferences } from '../codecs.js';
import { QualityMeter } from '../quality.js';

const h264 = (profile, mode) => ({ mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: `level-asymmetry-allowed=1;packetization-mode=${mode};profile-level-id=${profile}` });

test('video: H.264 constrained baseline with packetization-mode 1, 42e01f first, plus RTX; nothing else', () => {
  const caps = [
    { mimeType: 'video/VP8', clockRate: 90000 },
    { mimeType: 'video/rtx', clockRate: 90000 },
    h264('42001f', 1), h264('42e01f', 0), h264('640c1f', 1), h264('42e01f', 1),
    { mimeType: 'video/red', clockRate: 90000 },
  ];
  assert.deepEqual(videoPreferences(caps), [h264('42e01f', 1), h264('42001f', 1), { mimeType: 'video/rtx', clockRate: 90000 }]);
  assert.equal(videoPreferences([{ mimeType: 'video/VP8' }, h264('42e01f', 0)]), null);
});

test('audio: Opus only', () => {
  const opus = { mimeType: 'audio/opus', clockRate: 48000, channels: 2 };
  assert.deepEqual(audioPreferences([{ mimeType: 'audio/PCMU' }, opus, { mimeType: 'audio/telephone-event' }]), [opus]);
  assert.equal(audioPreferences([{ mimeType: 'audio/PCMU' }]), null);
});

test('publish quality: kbps and loss over the interval, size, fps, rtt', () => {
  const meter = new QualityMeter('publish');
  const sample = (bytes, sent, lost) => [
    { type: 'outbound-rtp', kind: 'video', bytesSent: bytes, packetsSent: sent, framesPerSecond: 30, frameWidth: 640, frameHeight: 360 },
    { type: 'remote-inbound-rtp', kind: 'video', packetsLost: lost, fractionLost: 0.5 },
    { type: 'outbound-rtp', kind: 'audio', bytesSent: bytes / 10, packetsSent: sent / 10 },
    { type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.042 },
  ];
  const first = meter.sample(0, sample(0, 0, 0));
  assert.equal(first.video.videoBitrate, 0);
  assert.equal(first.video.videoPacketsLostRate, 0.5, 'the first sample has only the last report');
  const q = meter.sample(3000, sample(375_000, 1000, 20));
  assert.deepEqual(q, {
    video: { videoBitrate: 1000, videoFPS: 30, frameWidth: 640, frameHeight: 360, videoPacketsLost: 20, videoPacketsLostRate: 0.02 },
    audio: { audioBitrate: 100, audioPacketsLost: 0, audioPacketsLostRate: 0 },
    rtt: 42,
  });
});

test('play quality: kbps, loss, fps and the jitter buffer delay over the interval', () => {
  const meter = new QualityMeter('play');
  const sample = (bytes, got, lost, delay, emitted, decoded) => [
    { type: 'inbound-rtp', kind: 'video', bytesReceived: bytes, packetsReceived: got, packetsLost: lost, jitterBufferDelay: delay, jitterBufferEmittedCount: emitted, framesDecoded: decoded, frameWidth: 1280, frameHeight: 720 },
    { type: 'candidate-pair', state: 'succeeded', currentRoundTripTime: 0.01 },
  ];
  meter.sample(0, sample(0, 0, 0, 0, 0, 0));
  const q = meter.sample(2000, sample(250_000, 990, 10, 4.5, 90, 60));
  assert.equal(q.video.videoBitrate, 1000);
  assert.equal(q.video.videoFPS, 30);
  assert.equal(q.video.videoPacketsLostRate, 0.01);
  assert.equal(q.video.jitterBufferDelay, 50);
  assert.equal(q.jitterBufferDelay, 50);
  assert.equal(q.rtt, 10);
  assert.deepEqual([q.video.frameWidth, q.video.frameHeight], [1280, 720]);
  assert.equal(q.audio.audioBitrate, 0);
});
