// The life of one play, without I/O: offer -> play with `wait` (PLAY_REQUESTING 1004002 while the stream does
// not exist, play_started when it does) -> answer -> PLAYING, and again with a fresh peer whenever the stream
// goes away, the server forgets the play, or the transport breaks, until the app stops playing.

import { ErrorCode as E } from './codes.js';
import { StreamTask } from './stream.js';

export class Play extends StreamTask {
  requestingState = 'PLAY_REQUESTING';
  stoppedState = 'NO_PLAY';
  giveUpCode = E.PLAYER_NETWORK_INTERRUPTED;
  retryingCode = E.PLAYER_NETWORK_INTERRUPTED;

  /** `ticket`: the startPlayingStream promise, settled when first PLAYING or when the play ends before. */
  constructor(core, streamID, serial, { video, audio }, ticket) {
    super(core, 'play', streamID, serial);
    this.video = video;
    this.audio = audio;
    this.ticket = ticket;
  }

  peerOptions() {
    return { video: this.video, audio: this.audio };
  }

  start(now) {
    this.tell('PLAY_REQUESTING', 0);
    this.begin(now);
  }

  requestMessage(reqID, sdp) {
    return { type: 'play', req_id: reqID, stream_id: this.streamID, sdp, wait: true };
  }

  onReply(now, reply) {
    if (reply.code === 0 && typeof reply.result?.sdp === 'string') {
      this.answer(reply.result.sdp);
    } else if (reply.code === E.PLAYER_STREAM_NOT_EXIST && reply.result?.waiting) {
      this.tell('PLAY_REQUESTING', E.PLAYER_STREAM_NOT_EXIST);
      this.phase = 'waiting';
    } else {
      this.core.endStream(now, this, reply.code === 0 ? E.PLAYER_INNER_ERROR : reply.code);
    }
  }

  live() {
    this.tell('PLAYING', 0);
    if (this.ticket !== undefined) {
      this.core.settle(this.ticket, this.streamID);
      this.ticket = undefined;
    }
  }

  /** The stream a waiting play asked for is published now; `sdp` answers that play's offer. */
  started(now, sdp) {
    if (this.phase === 'waiting') this.answer(sdp);
  }

  /** The stream stopped being published (or its start was refused): wait for it again. */
  stopped(now) {
    if (this.phase === 'waiting') {
      this.begin(now);
    } else if (this.phase === 'answering' || this.phase === 'live') {
      this.tell('PLAY_REQUESTING', E.PLAYER_STREAM_NOT_EXIST);
      this.begin(now);
    }
  }

  /** Logged in (again). A new session has no play; a waiting play may have missed its start meanwhile. */
  connected(now, { lost, listed }) {
    if (this.phase === 'idle' || this.phase === 'waiting') {
      this.begin(now);
    } else if ((this.phase === 'answering' || this.phase === 'live') && (lost || !listed)) {
      this.tell('PLAY_REQUESTING', listed ? E.PLAYER_NETWORK_INTERRUPTED : E.PLAYER_STREAM_NOT_EXIST);
      this.begin(now);
    }
  }

  end(now, code, quiet = false) {
    if (this.ended) return;
    super.end(now, code, quiet);
    if (this.ticket !== undefined) {
      this.core.fail(this.ticket, code || E.PLAYER_STREAM_NOT_PLAYED);
      this.ticket = undefined;
    }
  }
}
