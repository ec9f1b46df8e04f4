//! Every signaling message, client → server and server → client.
//!
//! Framing: one JSON object per WebSocket text frame, internally tagged by `"type"` (snake_case). Requests carry a
//! client-chosen `req_id`; the server answers each with exactly one [`ServerMessage::Reply`] bearing the same
//! `req_id` (code 0 on success, otherwise an [`crate::error`] code). Everything else the server sends is an event.
//! `docs/protocol.md` describes the exchange in full.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// Bumped when a message changes incompatibly. A login with another version is refused with
/// [`crate::error::PROTOCOL_VERSION_UNSUPPORTED`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket path of the signaling endpoint.
pub const SIGNALING_PATH: &str = "/ws";

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub user_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub user: User,
    pub stream_id: String,
    #[serde(default)]
    pub extra_info: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomExtraInfo {
    pub key: String,
    pub value: String,
    pub update_user: User,
    /// Unix milliseconds of the server's clock.
    pub update_time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastMessage {
    /// Increases per room.
    pub message_id: u64,
    pub message: String,
    /// Unix milliseconds of the server's clock.
    pub send_time_ms: u64,
    pub from_user: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateType {
    Add,
    Delete,
}

impl UpdateType {
    /// The ZEGO enum value (0 add, 1 delete).
    pub fn zego_value(self) -> i32 {
        match self {
            UpdateType::Add => 0,
            UpdateType::Delete => 1,
        }
    }
}

/// Why a stream was deleted, as carried in `stream_delete_reason`.
pub mod stream_delete_reason {
    pub const STOPPED: u32 = 1;
    pub const HEARTBEAT_TIMEOUT: u32 = 2;
    pub const REPEATED_LOGIN: u32 = 3;
    pub const KICKED_OUT: u32 = 4;
    pub const DISCONNECTED: u32 = 5;
    pub const REMOVED_BY_SERVER: u32 = 6;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDeleteReason {
    pub stream_id: String,
    /// One of [`stream_delete_reason`].
    pub code: u32,
}

/// How a login proves it may enter the app. Its Debug form hides the token and the signature.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// A Token04 minted by the app's backend with the server secret.
    Token { token: String },
    /// Proof of the app_sign without sending it: hex HMAC-SHA256 (see [`crate::signature`]).
    AppSign {
        timestamp_ms: u64,
        nonce: String,
        signature: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::REDACTED;
        match self {
            Credentials::Token { .. } => f
                .debug_struct("Token")
                .field("token", &format_args!("{REDACTED}"))
                .finish(),
            Credentials::AppSign {
                timestamp_ms,
                nonce,
                ..
            } => f
                .debug_struct("AppSign")
                .field("timestamp_ms", timestamp_ms)
                .field("nonce", nonce)
                .field("signature", &format_args!("{REDACTED}"))
                .finish(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message of a connection. Creates the room if it does not exist.
    Login {
        req_id: u64,
        protocol_version: u32,
        app_id: u32,
        room_id: String,
        user: User,
        credentials: Credentials,
        /// Whether this client wants user Add/Delete events (and the user list in the login reply).
        #[serde(default)]
        is_user_status_notify: bool,
        /// 0 = no limit. Only the login that creates the room sets it.
        #[serde(default)]
        max_member_count: u32,
        /// The `session_id` of an earlier login of this user in this room whose connection broke: the server
        /// moves that session (its streams and plays) onto this connection instead of treating it as new.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_session: Option<String>,
    },
    Logout {
        req_id: u64,
    },
    /// Keeps the session alive; send every `heartbeat_interval_ms` of the login reply.
    Heartbeat {
        req_id: u64,
    },
    RenewToken {
        req_id: u64,
        token: String,
    },
    SetRoomExtraInfo {
        req_id: u64,
        key: String,
        value: String,
    },
    SendBroadcastMessage {
        req_id: u64,
        message: String,
    },
    /// To the listed users of the room, or to everyone else in it when the list is empty.
    SendCustomCommand {
        req_id: u64,
        command: String,
        #[serde(default)]
        to_user_ids: Vec<String>,
    },
    /// Publish a stream: `sdp` is a WebRTC offer with send-only H.264 video and Opus audio.
    Publish {
        req_id: u64,
        stream_id: String,
        #[serde(default)]
        extra_info: String,
        sdp: String,
    },
    StopPublish {
        req_id: u64,
        stream_id: String,
    },
    SetStreamExtraInfo {
        req_id: u64,
        stream_id: String,
        extra_info: String,
    },
    /// Play a stream of this app: `sdp` is a WebRTC offer with receive-only video and audio. With `wait`, a stream
    /// that does not exist yet is answered with code 1004002 and `waiting: true`, and [`ServerMessage::PlayStarted`]
    /// follows when it is published.
    Play {
        req_id: u64,
        stream_id: String,
        sdp: String,
        #[serde(default)]
        wait: bool,
    },
    StopPlay {
        req_id: u64,
        stream_id: String,
    },
}

impl ClientMessage {
    pub fn req_id(&self) -> u64 {
        match self {
            ClientMessage::Login { req_id, .. }
            | ClientMessage::Logout { req_id }
            | ClientMessage::Heartbeat { req_id }
            | ClientMessage::RenewToken { req_id, .. }
            | ClientMessage::SetRoomExtraInfo { req_id, .. }
            | ClientMessage::SendBroadcastMessage { req_id, .. }
            | ClientMessage::SendCustomCommand { req_id, .. }
            | ClientMessage::Publish { req_id, .. }
            | ClientMessage::StopPublish { req_id, .. }
            | ClientMessage::SetStreamExtraInfo { req_id, .. }
            | ClientMessage::Play { req_id, .. }
            | ClientMessage::StopPlay { req_id, .. } => *req_id,
        }
    }
}

/// What a successful (or waiting) request returns, tagged by `"kind"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyResult {
    Login {
        /// Give it back as `resume_session` when logging in again after a broken connection.
        session_id: String,
        heartbeat_interval_ms: u64,
        heartbeat_timeout_ms: u64,
        server_time_ms: u64,
        /// Unix seconds at which the login token expires, when the login used a token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_expire_time: Option<u64>,
        /// Everyone in the room, this user included; empty unless `is_user_status_notify`.
        users: Vec<User>,
        /// Every stream published in the room.
        streams: Vec<StreamInfo>,
        room_extra_info: Vec<RoomExtraInfo>,
        online_count: u32,
    },
    Heartbeat {
        server_time_ms: u64,
    },
    RenewToken {
        token_expire_time: u64,
    },
    BroadcastMessage {
        message_id: u64,
    },
    /// The SDP answer of the relay, with its single ICE candidate.
    Publish {
        sdp: String,
    },
    /// The SDP answer, or `waiting` for a stream that does not exist yet.
    Play {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
        #[serde(default)]
        waiting: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to the request with this `req_id`.
    Reply {
        req_id: u64,
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<ReplyResult>,
    },
    /// A message the server could not read as a request (so it has no `req_id`). The connection stays open.
    Error {
        code: ErrorCode,
        message: String,
    },
    UserUpdate {
        room_id: String,
        update_type: UpdateType,
        users: Vec<User>,
    },
    StreamUpdate {
        room_id: String,
        update_type: UpdateType,
        streams: Vec<StreamInfo>,
        /// For deletes: why each stream went away.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reasons: Vec<StreamDeleteReason>,
    },
    StreamExtraInfoUpdate {
        room_id: String,
        streams: Vec<StreamInfo>,
    },
    RoomExtraInfoUpdate {
        room_id: String,
        infos: Vec<RoomExtraInfo>,
    },
    BroadcastMessage {
        room_id: String,
        messages: Vec<BroadcastMessage>,
    },
    CustomCommand {
        room_id: String,
        from_user: User,
        command: String,
    },
    OnlineUserCount {
        room_id: String,
        count: u32,
    },
    TokenWillExpire {
        room_id: String,
        remain_seconds: u32,
    },
    /// The session is over (1002050 same user elsewhere, 1002055 by server, 1002056 token expired); the server
    /// closes the connection after it.
    Kicked {
        room_id: String,
        code: ErrorCode,
    },
    /// A play that was waiting for its stream: the stream is published now and this is the SDP answer.
    PlayStarted {
        stream_id: String,
        sdp: String,
    },
    /// A stream this client plays stopped being published (code: a [`stream_delete_reason`]); the play is over.
    PlayStopped {
        stream_id: String,
        code: u32,
    },
}

impl ServerMessage {
    pub fn reply(req_id: u64, code: ErrorCode, result: Option<ReplyResult>) -> Self {
        ServerMessage::Reply {
            req_id,
            code,
            message: crate::error::message(code).to_owned(),
            result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_tagged_snake_case() {
        let msg = ClientMessage::Play {
            req_id: 7,
            stream_id: "s1".into(),
            sdp: "v=0".into(),
            wait: true,
        };
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["type"], "play");
        assert_eq!(json["req_id"], 7);
        let back: ClientMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);

        let reply = ServerMessage::reply(
            7,
            crate::error::PLAYER_STREAM_NOT_EXIST,
            Some(ReplyResult::Play {
                sdp: None,
                waiting: true,
            }),
        );
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["type"], "reply");
        assert_eq!(json["code"], 1004002);
        assert_eq!(json["result"]["kind"], "play");
        assert_eq!(json["result"]["waiting"], true);
    }

    #[test]
    fn login_parses_from_hand_written_json() {
        let text = r#"{"type":"login","req_id":1,"protocol_version":1,"app_id":1,"room_id":"r",
            "user":{"user_id":"u","user_name":"U"},
            "credentials":{"kind":"token","token":"04abc"}}"#;
        let msg: ClientMessage = serde_json::from_str(text).unwrap();
        match msg {
            ClientMessage::Login {
                is_user_status_notify,
                resume_session,
                credentials,
                ..
            } => {
                assert!(!is_user_status_notify);
                assert_eq!(resume_session, None);
                assert_eq!(
                    credentials,
                    Credentials::Token {
                        token: "04abc".into()
                    }
                );
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"fly","req_id":1}"#).is_err());
    }
}
