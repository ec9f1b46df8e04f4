// Capture failures as ZegoErrors: each getUserMedia/getDisplayMedia error name maps to the most specific code of
// the error table with a message saying what happened, checked with DOMExceptions and DOMException-like stand-ins,
// and createStream rejects with them.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { captureError } from '../capture_errors.js';
import { ZegoError } from '../errors.js';
import { ZegoExpressEngine } from '../index.js';

const domException = (name, message = '') => new DOMException(message, name);
const CAMERA = { source: 'camera', video: true, audio: true };

const cases = [
  ['NotAllowedError', E.PUBLISHER_NO_DATA, /permission to use the camera or microphone was denied/],
  ['NotFoundError', E.PUBLISHER_NO_DATA, /no camera or microphone was found/],
  ['NotReadableError', E.PUBLISHER_NO_DATA, /could not be started: another application may be using it/],
  ['AbortError', E.PUBLISHER_NO_DATA, /was aborted/],
  ['InvalidStateError', E.PUBLISHER_NO_DATA, /needs an active page/],
  ['SecurityError', E.COMMON_UNSUPPORTED, /disabled for this page/],
  ['NotSupportedError', E.COMMON_UNSUPPORTED, /cannot capture/],
  ['OverconstrainedError', E.COMMON_INVALID_PARAMETER, /no camera or microphone can satisfy the constraint/],
];

for (const [name, code, says] of cases) {
  test(`${name} becomes ZegoError ${code} that says what happened`, () => {
    const cause = domException(name, 'the browser says why');
    const error = captureError(cause, CAMERA);
    assert.ok(error instanceof ZegoError);
    assert.equal(error.code, code);
    assert.match(error.msg, says);
    assert.match(error.msg, new RegExp(`\\(${name}: the browser says why\\)$`));
    assert.equal(error.message, `${code}: ${error.msg}`);
    assert.equal(error.cause, cause);
  });
}

test('OverconstrainedError names the constraint no device satisfies', () => {
  const cause = { name: 'OverconstrainedError', message: '', constraint: 'width' };
  const error = captureError(cause, { source: 'camera', video: true, audio: false });
  assert.equal(error.code, E.COMMON_INVALID_PARAMETER);
  assert.equal(error.msg, "no camera can satisfy the constraint 'width' asked for (OverconstrainedError)");
});

test('a TypeError (malformed constraints) is an invalid parameter', () => {
  const error = captureError(new TypeError('At least one of audio and video must be requested'), { source: 'camera', video: false, audio: true });
  assert.equal(error.code, E.COMMON_INVALID_PARAMETER);
  assert.equal(error.msg, 'the microphone capture constraints are invalid (TypeError: At least one of audio and video must be requested)');
});

test('the names of older browsers map like the standard ones', () => {
  assert.equal(captureError({ name: 'PermissionDeniedError', message: '' }, CAMERA).code, E.PUBLISHER_NO_DATA);
  assert.match(captureError({ name: 'PermissionDeniedError' }, CAMERA).msg, /permission .* was denied/);
  assert.match(captureError({ name: 'DevicesNotFoundError' }, CAMERA).msg, /no camera or microphone was found/);
  assert.match(captureError({ name: 'TrackStartError' }, CAMERA).msg, /could not be started/);
  const legacy = captureError({ name: 'ConstraintNotSatisfiedError', constraintName: 'height' }, CAMERA);
  assert.equal(legacy.code, E.COMMON_INVALID_PARAMETER);
  assert.match(legacy.msg, /the constraint 'height'/);
});

test('screen sharing: a cancelled picker and no source say so', () => {
  const cancelled = captureError(domException('NotAllowedError', 'Permission denied'), { source: 'screen' });
  assert.equal(cancelled.code, E.PUBLISHER_NO_DATA);
  assert.match(cancelled.msg, /^screen sharing was not allowed: the picker was cancelled/);
  assert.match(captureError(domException('NotFoundError'), { source: 'screen' }).msg, /^no screen, window or tab is available to share/);
});

test('anything else is 1003001 "capturing ... failed", with what was thrown', () => {
  assert.deepEqual([captureError(new Error('boom'), CAMERA).code, captureError(new Error('boom'), CAMERA).msg],
    [E.PUBLISHER_NO_DATA, 'capturing the camera or microphone failed (Error: boom)']);
  assert.equal(captureError('weird', CAMERA).msg, 'capturing the camera or microphone failed (weird)');
  assert.equal(captureError(undefined).msg, 'capturing the camera or microphone failed');
});

// ----- createStream with a scripted navigator.mediaDevices -----

const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');

function fakeNavigator(mediaDevices) {
  Object.defineProperty(globalThis, 'navigator', { value: { mediaDevices }, configurable: true, writable: true });
}

afterEach(() => {
  if (saved) Object.defineProperty(globalThis, 'navigator', saved);
  else delete globalThis.navigator;
});

test('createStream rejects with the mapped ZegoError when getUserMedia fails', async () => {
  let asked;
  fakeNavigator({
    getUserMedia: async (constraints) => {
      asked = constraints;
      throw domException('NotReadableError', 'Could not start video source');
    },
  });
  const zg = new ZegoExpressEngine(1234567890, 'ws://sfu.test:8080/ws');
  await assert.rejects(zg.createStream({ camera: { video: true, audio: false } }), (error) => {
    assert.ok(error instanceof ZegoError);
    assert.equal(error.code, E.PUBLISHER_NO_DATA);
    assert.equal(error.msg, 'the camera could not be started: another application may be using it, or the system or hardware refused (NotReadableError: Could not start video source)');
    return true;
  });
  assert.deepEqual(asked, { video: true, audio: false });
});

test('createStream rejects with the mapped ZegoError when getDisplayMedia fails', async () => {
  fakeNavigator({ getDisplayMedia: async () => { throw domException('NotAllowedError', 'Permission denied'); } });
  const zg = new ZegoExpressEngine(1234567890, 'ws://sfu.test:8080/ws');
  await assert.rejects(zg.createStream({ screen: {} }), (error) => {
    assert.equal(error.code, E.PUBLISHER_NO_DATA);
    assert.match(error.msg, /^screen sharing was not allowed/);
    assert.equal(error.cause.name, 'NotAllowedError');
    return true;
  });
});

test('createStream without the capture API rejects with 1000006', async () => {
  fakeNavigator(undefined);
  const zg = new ZegoExpressEngine(1234567890, 'ws://sfu.test:8080/ws');
  await assert.rejects(zg.createStream(), (error) => error.code === E.COMMON_UNSUPPORTED);
});
