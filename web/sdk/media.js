// Local media: camera and microphone (getUserMedia), screen (getDisplayMedia) or a canvas, video element or
// MediaStream of the app's own (captureStream), and local preview in a <video> element.

import { ErrorCode as E } from './codes.js';
import { captureError } from './capture_errors.js';
import { ZegoError } from './errors.js';

/** The bitrate (kbps) asked for at capture, used when the stream is published without one. */
const bitrates = new WeakMap();

export function captureBitrate(stream) {
  return bitrates.get(stream);
}

/** MediaTrackConstraints from `true` or {width, height, frameRate}. */
function videoConstraints(video) {
  if (video === true || video === undefined) return true;
  if (!video) return false;
  const c = {};
  if (video.width) c.width = { ideal: video.width };
  if (video.height) c.height = { ideal: video.height };
  if (video.frameRate) c.frameRate = { ideal: video.frameRate };
  return Object.keys(c).length ? c : true;
}

/**
 * A MediaStream from `{camera: {video, audio}}` (the default), `{screen: {video, audio}}` or
 * `{custom: {source, frameRate}}`.
 */
export async function createStream(source = { camera: {} }) {
  let stream;
  let video;
  if (source.custom) {
    const { source: from, frameRate } = source.custom;
    if (typeof MediaStream !== 'undefined' && from instanceof MediaStream) stream = from;
    else if (from && typeof from.captureStream === 'function') stream = from.captureStream(frameRate);
    else if (from && typeof from.mozCaptureStream === 'function') stream = from.mozCaptureStream(frameRate);
    else throw new ZegoError(E.COMMON_INVALID_PARAMETER, 'custom.source must be a canvas, a video element or a MediaStream');
  } else if (source.screen) {
    const screen = source.screen === true ? {} : source.screen;
    video = screen.video;
    if (!navigator.mediaDevices?.getDisplayMedia) throw new ZegoError(E.COMMON_UNSUPPORTED, 'getDisplayMedia is not available');
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: videoConstraints(video), audio: screen.audio === true });
    } catch (e) {
      throw captureError(e, { source: 'screen' });
    }
  } else if (source.camera) {
    const camera = source.camera === true ? {} : source.camera;
    video = camera.video;
    const constraints = { video: videoConstraints(video), audio: camera.audio !== false };
    if (!constraints.video && !constraints.audio) {
      throw new ZegoError(E.COMMON_INVALID_PARAMETER, 'camera: video and audio are both off');
    }
    if (!navigator.mediaDevices?.getUserMedia) throw new ZegoError(E.COMMON_UNSUPPORTED, 'getUserMedia is not available (a secure context is needed)');
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (e) {
      throw captureError(e, { source: 'camera', video: Boolean(constraints.video), audio: constraints.audio });
    }
  } else {
    throw new ZegoError(E.COMMON_INVALID_PARAMETER, 'source must name camera, screen or custom');
  }
  if (video && typeof video === 'object' && video.bitrate) bitrates.set(stream, video.bitrate);
  return stream;
}

/** Stops every track of the stream (releases the camera, microphone or screen). */
export function destroyStream(stream) {
  for (const track of stream?.getTracks?.() ?? []) track.stop();
}

export function startPreview(stream, videoElement) {
  if (!videoElement || !stream) return false;
  videoElement.muted = true; // your own microphone would echo
  videoElement.playsInline = true;
  videoElement.autoplay = true;
  videoElement.srcObject = stream;
  videoElement.play?.()?.catch?.(() => {});
  return true;
}

export function stopPreview(videoElement) {
  if (!videoElement) return false;
  videoElement.srcObject = null;
  return true;
}
