// ZegoError: what a rejected promise carries, with the code and message of the one error table (codes.js), so a
// failure reads the same here as in the native SDK and in the server's replies.

import { ERROR_MESSAGES } from './codes.js';

/** The message of a code, or a generic text for codes this build does not know. */
export function errorMessage(code) {
  return ERROR_MESSAGES[code] ?? 'Unknown error code.';
}

export class ZegoError extends Error {
  /**
   * @param {number} code an error code of ErrorCode
   * @param {string} [msg] defaults to the code's message
   */
  constructor(code, msg) {
    const text = msg || errorMessage(code);
    super(`${code}: ${text}`);
    this.name = 'ZegoError';
    this.code = code;
    this.msg = text;
  }
}
