// The life of one publish, without I/O: offer -> publish -> answer -> PUBLISHING, and publishing again whatever
// breaks it (a new server session, a stream the server no longer lists, the media transport) until it stops.

import { ErrorCode as E } from './codes.js';
import { StreamTask } from './stream.js';

export class Publish extends StreamTask {
  requestingState = 'PUBLISH_REQUESTING';
  stoppedState = 'NO_PUBLISH';
  giveUpCode = E.PUBLISHER_RETRY_TIMEOUT;
  retryingCode = E.PUBLISHER_NETWORK_INTERRUPTED_RETRYING;

  constructor(core, streamID, serial, extraInfo) {
    super(core, 'publish', streamID, serial);
    this.extraInfo = extraInfo;
  }

  start(now) {
    this.tell('PUBLISH_REQUESTING', 0);
    this.begin(now);
  }

  requestMessage(reqID, sdp) {
    return { type: 'publish', req_id: reqID, stream_id: this.streamID, extra_info: this.extraInfo, sdp };
  }

  onReply(now, reply) {
    if (reply.code === 0 && reply.result?.kind === 'publish') this.answer(reply.result.sdp);
    else this.core.endStream(now, this, reply.code === 0 ? E.PUBLISHER_INNER_ERROR : reply.code);
  }

  live() {
    this.tell('PUBLISHING', 0);
  }

  /** Logged in (again). `lost`: a new server session; `listed`: the room still lists the stream. */
  connected(now, { lost, listed }) {
    if (this.phase === 'idle') {
      this.begin(now);
    } else if ((this.phase === 'answering' || this.phase === 'live') && (lost || !listed)) {
      this.tell('PUBLISH_REQUESTING', E.PUBLISHER_NETWORK_INTERRUPTED_RETRYING);
      this.begin(now);
    }
  }
}
