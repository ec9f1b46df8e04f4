// Type declarations of zego-express-web: the ZEGO Express web SDK's API for a self-hosted zego-server.
// Written by hand to match index.js; the error codes and limits mirror the generated codes.js.

export declare const VERSION: string;
/** The signaling protocol version a login announces. */
export declare const PROTOCOL_VERSION: number;
/** Error codes by constant name (e.g. `ErrorCode.PUBLISHER_STREAM_ID_ALREADY_PUBLISHED === 1003028`); 0 is success. */
export declare const ErrorCode: Readonly<Record<string, number>>;
/** The message of each error code. */
export declare const ERROR_MESSAGES: Readonly<Record<number, string>>;
/** Limits in bytes of UTF-8 (ROOM_ID_MAX, USER_ID_MAX, STREAM_ID_MAX, ...); durations end in _MS. */
export declare const LIMITS: Readonly<Record<string, number>>;

/** The message of a code, or a generic text for unknown codes. */
export declare function errorMessage(code: number): string;

/** What a rejected promise carries. */
export declare class ZegoError extends Error {
  constructor(code: number, msg?: string);
  readonly code: number;
  readonly msg: string;
  /** For a capture failure of createStream: what the browser threw (a DOMException; `cause.name` tells the case). */
  cause?: unknown;
}

export interface ZegoUser {
  userID: string;
  /** Defaults to userID. */
  userName?: string;
}

export interface ZegoEngineOptions {
  /** 64 hex characters; development only: logins with an empty token prove it with an HMAC-SHA256. */
  appSign?: string;
  /** How long a broken connection is retried before RECONNECT_FAILED (1002053); default 20 minutes, at least 1000. */
  reconnectWindowMs?: number;
}

export interface ZegoRoomConfig {
  /** Whether to receive roomUserUpdate. Default false. */
  userUpdate?: boolean;
  /** The room's member limit, set by the login that creates it; 0 = none. */
  maxMemberCount?: number;
}

export interface ZegoVideoCaptureConfig {
  width?: number;
  height?: number;
  frameRate?: number;
  /** kbps; used when the stream is published without a videoBitrate. */
  bitrate?: number;
}

export interface ZegoCaptureConfig {
  video?: boolean | ZegoVideoCaptureConfig;
  audio?: boolean;
}

export type ZegoStreamSource =
  | { camera: ZegoCaptureConfig }
  | { screen: ZegoCaptureConfig | true }
  | { custom: { source: HTMLCanvasElement | HTMLVideoElement | MediaStream; frameRate?: number } };

export interface ZegoPublishConfig {
  extraInfo?: string;
  /** kbps. */
  videoBitrate?: number;
  /** Lets sendSEI put data into this stream's video (the browser must give access to encoded frames). */
  isSEIStart?: boolean;
}

export interface ZegoPlayOptions {
  /** Default true. */
  video?: boolean;
  /** Default true. */
  audio?: boolean;
  /** Reports the SEI the publisher sends with its frames as playerRecvSEI. */
  isSEIStart?: boolean;
}

export interface ZegoStreamInfo {
  streamID: string;
  user: Required<ZegoUser>;
  extraInfo: string;
}

export interface ZegoRoomExtraInfo {
  key: string;
  value: string;
  updateUser: Required<ZegoUser>;
  /** Unix ms of the server's clock. */
  updateTime: number;
}

export interface ZegoBroadcastMessageInfo {
  messageID: number;
  message: string;
  /** Unix ms of the server's clock. */
  sendTime: number;
  fromUser: Required<ZegoUser>;
}

export interface ZegoServerResponse {
  errorCode: number;
}

export interface ZegoBroadcastResponse extends ZegoServerResponse {
  messageID: number;
}

export type ZegoRoomState = 'DISCONNECTED' | 'CONNECTING' | 'CONNECTED';
export type ZegoRoomStateChangedReason =
  | 'LOGINING' | 'LOGINED' | 'LOGIN_FAILED' | 'RECONNECTING' | 'RECONNECTED' | 'RECONNECT_FAILED'
  | 'KICKOUT' | 'LOGOUT' | 'LOGOUT_FAILED';
export type ZegoUpdateType = 'ADD' | 'DELETE';

export interface ZegoPublisherState {
  state: 'NO_PUBLISH' | 'PUBLISH_REQUESTING' | 'PUBLISHING';
  streamID: string;
  errorCode: number;
  extendedData: string;
}

export interface ZegoPlayerState {
  state: 'NO_PLAY' | 'PLAY_REQUESTING' | 'PLAYING';
  streamID: string;
  errorCode: number;
  extendedData: string;
}

/** Rates over the last interval; loss rates are fractions 0..1. */
export interface ZegoPublishStats {
  video: {
    videoBitrate: number;
    videoFPS: number;
    frameWidth: number;
    frameHeight: number;
    videoPacketsLost: number;
    videoPacketsLostRate: number;
  };
  audio: { audioBitrate: number; audioPacketsLost: number; audioPacketsLostRate: number };
  /** Round trip to the relay, ms. */
  rtt: number;
}

export interface ZegoPlayStats {
  video: {
    videoBitrate: number;
    videoFPS: number;
    frameWidth: number;
    frameHeight: number;
    videoPacketsLost: number;
    videoPacketsLostRate: number;
    /** Mean jitter buffer delay over the interval, ms. */
    jitterBufferDelay: number;
  };
  audio: { audioBitrate: number; audioPacketsLost: number; audioPacketsLostRate: number; jitterBufferDelay: number };
  /** The video's jitter buffer delay (the audio's for audio-only plays), ms. */
  jitterBufferDelay: number;
  rtt: number;
}

export interface ZegoEvents {
  roomStateUpdate: (roomID: string, state: ZegoRoomState, errorCode: number, extendedData: string) => void;
  roomStateChanged: (roomID: string, reason: ZegoRoomStateChangedReason, errorCode: number, extendedData: string) => void;
  roomUserUpdate: (roomID: string, updateType: ZegoUpdateType, userList: Required<ZegoUser>[]) => void;
  roomOnlineUserCountUpdate: (roomID: string, count: number) => void;
  /** extendedData of a DELETE: `{"stream_delete_reason":[{"code":N,"stream_id":"..."}]}`. */
  roomStreamUpdate: (roomID: string, updateType: ZegoUpdateType, streamList: ZegoStreamInfo[], extendedData: string) => void;
  streamExtraInfoUpdate: (roomID: string, streamList: ZegoStreamInfo[]) => void;
  roomExtraInfoUpdate: (roomID: string, roomExtraInfoList: ZegoRoomExtraInfo[]) => void;
  IMRecvBroadcastMessage: (roomID: string, chatData: ZegoBroadcastMessageInfo[]) => void;
  IMRecvCustomCommand: (roomID: string, fromUser: Required<ZegoUser>, command: string) => void;
  tokenWillExpire: (roomID: string, remainSeconds: number) => void;
  /**
   * An asynchronous failure no other event reports, as the native SDK's onDebugError. funcName 'renewToken': the
   * server refused the renewed token (1002074..1002080, 1002082) or, while connected, did not answer in time
   * (1002052); info is the server's message.
   */
  debugError: (errorCode: number, funcName: string, info: string) => void;
  publisherStateUpdate: (result: ZegoPublisherState) => void;
  playerStateUpdate: (result: ZegoPlayerState) => void;
  publishQualityUpdate: (streamID: string, stats: ZegoPublishStats) => void;
  playQualityUpdate: (streamID: string, stats: ZegoPlayStats) => void;
  publisherCapturedVideoFirstFrame: (streamID: string) => void;
  playerRecvVideoFirstFrame: (streamID: string) => void;
  playerRenderVideoFirstFrame: (streamID: string) => void;
  playerVideoSizeChanged: (streamID: string, width: number, height: number) => void;
  /** SEI of a stream played with isSEIStart, as its video frame arrives: ZEGO-defined data as sent, user-unregistered
   * data with its 16-byte UUID first. */
  playerRecvSEI: (streamID: string, data: Uint8Array) => void;
}

export declare class ZegoExpressEngine {
  /**
   * @param server the signaling URL, `ws://host:port/ws` (wss:// behind a TLS proxy)
   * @throws ZegoError 1001004 (appID), 1001005 (appSign), 1001006 (server), 1000008 (reconnectWindowMs)
   */
  constructor(appID: number, server: string, options?: ZegoEngineOptions);

  on<K extends keyof ZegoEvents>(event: K, handler: ZegoEvents[K]): boolean;
  /** Removes `handler`, or every handler of `event` when none is given. */
  off<K extends keyof ZegoEvents>(event: K, handler?: ZegoEvents[K]): boolean;

  /** Resolves true once logged in; rejects with a ZegoError otherwise. */
  loginRoom(roomID: string, token: string, user: ZegoUser, config?: ZegoRoomConfig): Promise<boolean>;
  logoutRoom(roomID?: string): boolean;
  /**
   * Sends the new token and keeps it for later (re)logins. False for a token that cannot be a Token04 or a room not
   * logged in; the server's refusal arrives as `debugError` with funcName 'renewToken'.
   */
  renewToken(token: string, roomID?: string): boolean;
  setRoomExtraInfo(roomID: string, key: string, value: string): Promise<ZegoServerResponse>;
  sendBroadcastMessage(roomID: string, message: string): Promise<ZegoBroadcastResponse>;
  /** To the listed users, or everyone else in the room when the list is empty. */
  sendCustomCommand(roomID: string, command: string, toUserIDs: string[]): Promise<ZegoServerResponse>;

  /**
   * Rejects with a ZegoError when capture fails: 1003001 (permission denied, no device, device busy, aborted),
   * 1000008 (constraints no device meets, or malformed), 1000006 (capture unavailable to this page); `msg` says
   * which, and `cause` is the browser's error.
   */
  createStream(source?: ZegoStreamSource): Promise<MediaStream>;
  destroyStream(stream: MediaStream): void;
  startPreview(stream: MediaStream, videoElement: HTMLVideoElement): boolean;
  stopPreview(videoElement: HTMLVideoElement): boolean;

  /** Checks at once; the result arrives as publisherStateUpdate. */
  startPublishingStream(streamID: string, stream: MediaStream, config?: ZegoPublishConfig): boolean;
  stopPublishingStream(streamID: string): boolean;
  /** SEIType 0: ZEGO's payload type 243 (default); 1: user_data_unregistered (data begins with a 16-byte UUID). */
  setSEIConfig(config: { SEIType: 0 | 1 }): boolean;
  /** Up to 4096 bytes with the next video frame of a stream published with isSEIStart, at most 30 a second. */
  sendSEI(streamID: string, data: Uint8Array): boolean;
  setStreamExtraInfo(streamID: string, extraInfo: string): Promise<ZegoServerResponse>;

  /** One MediaStream holding the played tracks, resolved once PLAYING (a stream not published yet is waited for). */
  startPlayingStream(streamID: string, options?: ZegoPlayOptions): Promise<MediaStream>;
  stopPlayingStream(streamID: string): boolean;

  getVersion(): string;
  destroyEngine(): void;
}
