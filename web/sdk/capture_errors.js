// Why a capture failed, from the DOMException of getUserMedia or getDisplayMedia, as a ZegoError with the error
// table's code (codes.js) and a message that says what happened: a pure function, so Node tests it with stand-ins.
//
// The code table has no capture-specific codes, so the codes are the closest it has: 1003001 (no media data to
// publish) for a device that was refused, missing, busy or stopped, 1000008 (invalid parameter) for constraints
// no device can meet or that are malformed, 1000006 (unsupported) where this page or browser cannot capture at
// all. The browser's own error is the ZegoError's `cause`, and its name and message end `msg`.

import { ErrorCode as E } from './codes.js';
import { ZegoError } from './errors.js';

/** What was asked for, in words: 'camera', 'microphone', 'camera or microphone', 'screen'. */
function deviceWords({ source = 'camera', video = true, audio = true } = {}) {
  if (source === 'screen') return 'screen';
  if (video && !audio) return 'camera';
  if (audio && !video) return 'microphone';
  return 'camera or microphone';
}

/** The error's name, also for the names of older browsers (Chrome before 64, Firefox before 59). */
function errorName(e) {
  const name = typeof e?.name === 'string' ? e.name : '';
  const legacy = {
    PermissionDeniedError: 'NotAllowedError',
    PermissionDismissedError: 'NotAllowedError',
    DevicesNotFoundError: 'NotFoundError',
    TrackStartError: 'NotReadableError',
    ConstraintNotSatisfiedError: 'OverconstrainedError',
  };
  return legacy[name] ?? name;
}

/** [code, what happened] for an error name, given what was asked for. */
function classify(name, e, what) {
  const screen = what === 'screen';
  switch (name) {
    case 'NotAllowedError':
      return [E.PUBLISHER_NO_DATA, screen
        ? 'screen sharing was not allowed: the picker was cancelled, or the browser or the system refused it'
        : `permission to use the ${what} was denied by the user, the browser or the system`];
    case 'SecurityError':
      return [E.COMMON_UNSUPPORTED,
        `capturing the ${what} is disabled for this page (its permissions policy, or not a secure context)`];
    case 'NotFoundError':
      return [E.PUBLISHER_NO_DATA, screen ? 'no screen, window or tab is available to share' : `no ${what} was found`];
    case 'NotReadableError':
      return [E.PUBLISHER_NO_DATA,
        `the ${what} could not be started: another application may be using it, or the system or hardware refused`];
    case 'AbortError':
      return [E.PUBLISHER_NO_DATA, `capturing the ${what} was aborted before it started`];
    case 'InvalidStateError':
      return [E.PUBLISHER_NO_DATA,
        `capturing the ${what} needs an active page: call it from a user gesture in a visible, focused page`];
    case 'OverconstrainedError': {
      const named = e?.constraint || e?.constraintName; // constraintName: Chrome before 64
      const constraint = named ? ` '${named}'` : '';
      return [E.COMMON_INVALID_PARAMETER, `no ${what} can satisfy the constraint${constraint} asked for`];
    }
    case 'TypeError':
      return [E.COMMON_INVALID_PARAMETER, `the ${what} capture constraints are invalid`];
    case 'NotSupportedError':
      return [E.COMMON_UNSUPPORTED, `this browser cannot capture the ${what} as asked`];
    default:
      return [E.PUBLISHER_NO_DATA, `capturing the ${what} failed`];
  }
}

/**
 * The ZegoError for a failed getUserMedia or getDisplayMedia.
 *
 * @param {unknown} e what the browser threw or rejected with (a DOMException, an OverconstrainedError, a TypeError)
 * @param {{source?: 'camera' | 'screen', video?: boolean, audio?: boolean}} [asked] what was being captured
 * @returns {ZegoError} with the browser's error as `cause`
 */
export function captureError(e, asked) {
  const name = errorName(e);
  const [code, what] = classify(name, e, deviceWords(asked));
  const detail = e?.message ? `${e.name || 'Error'}: ${e.message}` : e?.name || (e === undefined ? '' : String(e));
  const error = new ZegoError(code, detail ? `${what} (${detail})` : what);
  error.cause = e;
  return error;
}
