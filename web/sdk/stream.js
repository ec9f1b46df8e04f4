// What a publish and a play share as state machines without I/O: attempts, each with its own peer connection
// (created, offered and answered by the host), the state told to the app without repeats, and retrying a
// broken media transport with growing delays until too many failures in a row.

/** Failed attempts in a row before the stream gives up. */
export const MAX_FAILURES = 5;
/** This long without trouble forgets earlier failures. */
export const STABLE_MS = 10_000;
/** How long the server may take to answer a publish or play (it asks the relay first). */
export const REPLY_TIMEOUT_MS = 10_000;

export function retryDelay(failures) {
  return 250 * 2 ** Math.min(failures, 4);
}

/**
 * Phases: 'idle' (waiting for the room's connection), 'offering' (the host builds an offer), 'requesting'
 * (publish/play sent), 'waiting' (a play waits for its stream), 'answering' (the host applies the answer and
 * connects), 'live', 'retrying' (a delay before the next attempt) and 'ended'.
 */
export class StreamTask {
  phase = 'idle';
  attempt = 0;
  failures = 0;
  since = 0;
  peerOpen = false;
  /** The last [state, code] told to the app. */
  last = null;

  constructor(core, kind, streamID, serial) {
    this.core = core;
    this.kind = kind;
    this.streamID = streamID;
    /** Tells this publish or play from an earlier or later one of the same stream ID. */
    this.serial = serial;
    this.timer = `${kind}${serial}:retry`;
  }

  get ended() {
    return this.phase === 'ended';
  }

  /** Tells the app a state change, unless it repeats the last one. */
  tell(state, code) {
    if (this.last && this.last[0] === state && this.last[1] === code) return;
    this.last = [state, code];
    const name = this.kind === 'publish' ? 'publisherStateUpdate' : 'playerStateUpdate';
    this.core.emit(name, [{ state, streamID: this.streamID, errorCode: code, extendedData: '{}' }]);
  }

  closePeer() {
    if (this.peerOpen) {
      this.core.out({ type: 'closePeer', kind: this.kind, streamID: this.streamID, serial: this.serial });
      this.peerOpen = false;
    }
  }

  /** A fresh attempt: a new peer connection whose offer the host reports with offerReady. */
  begin(now) {
    if (!this.core.roomUp()) {
      this.phase = 'idle';
      return;
    }
    this.closePeer();
    this.attempt += 1;
    this.phase = 'offering';
    this.peerOpen = true;
    this.core.out({ type: 'createPeer', kind: this.kind, streamID: this.streamID, serial: this.serial,
      attempt: this.attempt, ...this.peerOptions() });
  }

  peerOptions() {
    return {};
  }

  /** The request carrying `sdp` for this attempt; its reply goes to onReply. */
  offerReady(now, attempt, sdp) {
    if (attempt !== this.attempt || this.phase !== 'offering') return;
    if (!this.core.roomUp()) {
      this.phase = 'idle'; // asked again with a fresh offer once connected
      return;
    }
    this.phase = 'requesting';
    this.core.room.request(now, (reqID) => this.requestMessage(reqID, sdp),
      (t, reply) => this.#replied(t, attempt, reply), REPLY_TIMEOUT_MS);
  }

  #replied(now, attempt, reply) {
    if (this.ended || attempt !== this.attempt || this.phase !== 'requesting') return;
    if (reply.failure === 'lost') this.phase = 'idle'; // asked again once connected
    else if (reply.failure === 'timeout') this.failed(now);
    else this.onReply(now, reply);
  }

  answer(sdp) {
    this.phase = 'answering';
    this.core.out({ type: 'applyAnswer', kind: this.kind, streamID: this.streamID, serial: this.serial,
      attempt: this.attempt, sdp });
  }

  /** The host could not build an offer at all: nothing to retry. */
  offerFailed(now, attempt, code) {
    if (attempt === this.attempt && !this.ended) this.core.endStream(now, this, code);
  }

  mediaConnected(now, attempt) {
    if (attempt !== this.attempt || this.phase !== 'answering') return;
    this.phase = 'live';
    this.since = now;
    this.live(now);
  }

  mediaFailed(now, attempt) {
    if (attempt !== this.attempt || (this.phase !== 'answering' && this.phase !== 'live')) return;
    if (this.phase === 'live' && now - this.since > STABLE_MS) this.failures = 0;
    this.failed(now);
  }

  /** Counts a failed attempt: retried after a delay, or the end with the give-up code. */
  failed(now) {
    this.failures += 1;
    if (this.failures >= MAX_FAILURES) {
      this.core.endStream(now, this, this.giveUpCode);
      return;
    }
    this.tell(this.requestingState, this.retryingCode);
    this.closePeer();
    this.phase = 'retrying';
    this.core.arm(this.timer, now + retryDelay(this.failures), this);
  }

  timerFired(now) {
    if (this.phase === 'retrying') this.begin(now);
  }

  /** Stops: NO_PUBLISH/NO_PLAY with `code` (told unless `quiet`), the peer closed. */
  end(now, code, quiet = false) {
    if (this.ended) return;
    if (!quiet) this.tell(this.stoppedState, code);
    this.phase = 'ended';
    this.core.cancel(this.timer);
    this.closePeer();
  }
}
