// zego-express-web: the ZEGO Express web SDK's API for a self-hosted zego-server. Plain ES modules with relative
// imports, so a browser loads them straight from a URL such as /sdk/index.js.

export { ZegoExpressEngine, VERSION } from './engine.js';
export { ZegoError, errorMessage } from './errors.js';
export { ErrorCode, ERROR_MESSAGES, LIMITS, PROTOCOL_VERSION } from './codes.js';
