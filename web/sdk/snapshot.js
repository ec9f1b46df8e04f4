// What this client knows of its room: the other users, the others' streams and the room extra info. The login
// reply is the first snapshot and events update it; after a reconnect the new login reply is diffed against it
// so the app hears exactly what changed meanwhile. The local user and its own streams are never part of it.

import { streamDeleteExtendedData, toRoomExtraInfo, toStream, toUser, EMPTY_JSON } from './wire.js';

export const STREAM_DELETE_REASON = Object.freeze({
  STOPPED: 1,
  HEARTBEAT_TIMEOUT: 2,
  REPEATED_LOGIN: 3,
  KICKED_OUT: 4,
  DISCONNECTED: 5,
  REMOVED_BY_SERVER: 6,
});

/**
 * The delete reason of streams that vanished while the connection was down: "stopped" when the server kept the
 * session (the room went on without us), "disconnected" when it did not (the room was rebuilt without them).
 */
export function reasonForGone(resumed) {
  return resumed ? STREAM_DELETE_REASON.STOPPED : STREAM_DELETE_REASON.DISCONNECTED;
}

const byKey = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** The values of a map in key order (the native SDK reports in that order too). */
function sorted(map) {
  return [...map.keys()].sort(byKey).map((k) => map.get(k));
}

function sameExtraInfo(a, b) {
  return a.value === b.value && a.update_time_ms === b.update_time_ms
    && a.update_user.user_id === b.update_user.user_id && a.update_user.user_name === b.update_user.user_name;
}

export class RoomSnapshot {
  /** user_id -> wire user; stream_id -> wire stream; key -> wire room extra info. */
  users = new Map();
  streams = new Map();
  extraInfo = new Map();

  /** The snapshot of a login reply, as `me` sees it. */
  static fromLogin(me, users = [], streams = [], extraInfo = []) {
    const snap = new RoomSnapshot();
    for (const u of users) if (u.user_id !== me) snap.users.set(u.user_id, u);
    for (const s of streams) if (s.user.user_id !== me) snap.streams.set(s.stream_id, s);
    for (const i of extraInfo) snap.extraInfo.set(i.key, i);
    return snap;
  }

  /** The events of a first login: everyone and everything present, as one ADD each. */
  firstEvents(roomID, notifyUsers) {
    return new RoomSnapshot().diff(this, roomID, notifyUsers, STREAM_DELETE_REASON.STOPPED);
  }

  /** The events ([name, args] pairs) that turn this snapshot into `next`; vanished streams get `goneReason`. */
  diff(next, roomID, notifyUsers, goneReason) {
    const out = [];
    if (notifyUsers) {
      const gone = sorted(this.users).filter((u) => !next.users.has(u.user_id));
      const added = sorted(next.users).filter((u) => !this.users.has(u.user_id));
      if (gone.length) out.push(['roomUserUpdate', [roomID, 'DELETE', gone.map(toUser)]]);
      if (added.length) out.push(['roomUserUpdate', [roomID, 'ADD', added.map(toUser)]]);
    }
    const gone = sorted(this.streams).filter((s) => !next.streams.has(s.stream_id));
    if (gone.length) {
      const reasons = gone.map((s) => ({ stream_id: s.stream_id, code: goneReason }));
      out.push(['roomStreamUpdate', [roomID, 'DELETE', gone.map(toStream), streamDeleteExtendedData(reasons)]]);
    }
    const added = sorted(next.streams).filter((s) => !this.streams.has(s.stream_id));
    if (added.length) out.push(['roomStreamUpdate', [roomID, 'ADD', added.map(toStream), EMPTY_JSON]]);
    const changed = sorted(next.streams).filter((s) => {
      const old = this.streams.get(s.stream_id);
      return old && (old.extra_info ?? '') !== (s.extra_info ?? '');
    });
    if (changed.length) out.push(['streamExtraInfoUpdate', [roomID, changed.map(toStream)]]);
    const infos = sorted(next.extraInfo).filter((i) => {
      const old = this.extraInfo.get(i.key);
      return !old || !sameExtraInfo(old, i);
    });
    if (infos.length) out.push(['roomExtraInfoUpdate', [roomID, infos.map(toRoomExtraInfo)]]);
    return out;
  }

  /** Applies a user update ('add'/'delete'); returns the users worth reporting (never `me`). */
  applyUsers(me, updateType, users = []) {
    const others = users.filter((u) => u.user_id !== me);
    for (const u of others) {
      if (updateType === 'add') this.users.set(u.user_id, u);
      else this.users.delete(u.user_id);
    }
    return others;
  }

  /** Applies a stream update; returns the streams worth reporting (never `me`'s own). */
  applyStreams(me, updateType, streams = []) {
    const others = streams.filter((s) => s.user.user_id !== me);
    for (const s of others) {
      if (updateType === 'add') this.streams.set(s.stream_id, s);
      else this.streams.delete(s.stream_id);
    }
    return others;
  }

  applyStreamExtraInfo(me, streams = []) {
    const others = streams.filter((s) => s.user.user_id !== me);
    for (const s of others) this.streams.set(s.stream_id, s);
    return others;
  }

  applyRoomExtraInfo(infos = []) {
    for (const i of infos) this.extraInfo.set(i.key, i);
  }
}
