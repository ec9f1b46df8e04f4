// The signaling protocol's objects (snake_case, docs/protocol.md) as the web SDK's event arguments
// (camelCase, the original web SDK's shapes), and the app's user back to the wire.

export const toUser = (u) => ({ userID: u.user_id, userName: u.user_name });

export const fromUser = (u) => ({ user_id: u.userID, user_name: u.userName });

export const toStream = (s) => ({ streamID: s.stream_id, user: toUser(s.user), extraInfo: s.extra_info ?? '' });

export const toRoomExtraInfo = (i) => ({
  key: i.key,
  value: i.value,
  updateUser: toUser(i.update_user),
  updateTime: i.update_time_ms,
});

export const toBroadcastMessage = (m) => ({
  messageID: m.message_id,
  message: m.message,
  sendTime: m.send_time_ms,
  fromUser: toUser(m.from_user),
});

/** Extended data with nothing to say. */
export const EMPTY_JSON = '{}';

/** The extended data of a stream DELETE, as the native SDK writes it: `{"stream_delete_reason":[{"code":N,"stream_id":".."}]}`. */
export function streamDeleteExtendedData(reasons) {
  return JSON.stringify({
    stream_delete_reason: reasons.map((r) => ({ code: r.code, stream_id: r.stream_id })),
  });
}

/** The room state the original reports with each reason. */
const STATE_OF = {
  LOGINING: 'CONNECTING',
  RECONNECTING: 'CONNECTING',
  LOGINED: 'CONNECTED',
  RECONNECTED: 'CONNECTED',
  LOGIN_FAILED: 'DISCONNECTED',
  RECONNECT_FAILED: 'DISCONNECTED',
  KICKOUT: 'DISCONNECTED',
  LOGOUT: 'DISCONNECTED',
  LOGOUT_FAILED: 'DISCONNECTED',
};

/** roomStateUpdate then roomStateChanged for one transition, as [name, args] pairs. */
export function roomStateEvents(roomID, reason, errorCode) {
  return [
    ['roomStateUpdate', [roomID, STATE_OF[reason], errorCode, EMPTY_JSON]],
    ['roomStateChanged', [roomID, reason, errorCode, EMPTY_JSON]],
  ];
}
