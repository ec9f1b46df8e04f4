//! One signaling WebSocket: read frames, check them, hand requests to the hub; a writer task sends what the hub
//! and this connection queue.
//!
//! Bad input never ends the session of a well-formed client: each bad frame gets its error code (a Reply when its
//! `req_id` can be read, an Error otherwise) and a warning, at most one per connection per
//! [`WARN_PERIOD`]. Only frames the WebSocket layer itself cannot read (invalid UTF-8, beyond
//! [`FRAME_HARD_MAX`], or beyond [`limits::PRE_LOGIN_MESSAGE_MAX`] before login) end the connection, after the
//! error is sent. Every frame counts toward the request rate, readable or not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::limits;
use zego_protocol::message::{ClientMessage, ServerMessage};

use crate::frame_limit::{self, FrameCap, FrameLimited};
use crate::hub::{encode, ConnId, Hub, Link, Outgoing};
use crate::metrics::SignalingCounters;
use crate::rate::{RateLimit, WarnLimiter};
use crate::rooms::{LoginRequest, SessionId};

/// Frames up to this size are read and refused with 1002092 when above [`limits::MESSAGE_MAX`]; larger ones
/// cannot be read at all and end the connection.
pub const FRAME_HARD_MAX: usize = 8 * limits::MESSAGE_MAX;
/// At most one warning per connection per period reaches the log.
pub const WARN_PERIOD: Duration = Duration::from_secs(10);
/// A write that does not finish in this time means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued messages written before one flush.
const WRITE_BATCH: usize = 64;

/// An upgraded signaling connection, its incoming frames under a [`FrameCap`].
pub type Socket = WebSocketStream<FrameLimited<TokioIo<hyper::upgrade::Upgraded>>>;

/// The `type` of every [`ClientMessage`], to tell an unknown type from a known one with bad fields.
pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "login",
    "logout",
    "heartbeat",
    "renew_token",
    "set_room_extra_info",
    "send_broadcast_message",
    "send_custom_command",
    "publish",
    "stop_publish",
    "set_stream_extra_info",
    "play",
    "stop_play",
];

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// Messages queued for the writer before the connection counts as a slow reader.
    pub queue_capacity: usize,
    /// A connection without a session (not logged in yet, or logged out) is closed after this long.
    pub login_timeout: Duration,
}

/// Serves one upgraded WebSocket until it closes, is closed by the server, or the server shuts down.
pub async fn serve(
    socket: Socket,
    cap: Arc<FrameCap>,
    hub: Arc<Hub>,
    conn: ConnId,
    settings: ConnectionSettings,
    shutdown: CancellationToken,
) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(settings.queue_capacity);
    let kill = CancellationToken::new();
    let writer = tokio::spawn(write_loop(sink, rx, kill.clone()));
    SignalingCounters::bump(&hub.counters.connections_opened);
    tracing::debug!(conn, "connection opened");

    let mut connection = Connection {
        hub: hub.clone(),
        link: Link {
            conn,
            tx,
            kill: kill.clone(),
        },
        session: None,
        requests: RateLimit::per_second(limits::REQUESTS_PER_SECOND),
        warnings: WarnLimiter::new(WARN_PERIOD),
    };
    let mut idle_since = tokio::time::Instant::now();
    loop {
        let anonymous = connection.session.is_none();
        let frame = tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            _ = shutdown.cancelled() => {
                connection.queue(Outgoing::Close(1001, "server shutting down"));
                break;
            }
            _ = tokio::time::sleep_until(idle_since + settings.login_timeout), if anonymous => {
                tracing::debug!(conn, "closing a connection that did not log in");
                connection.queue(Outgoing::Close(1008, "no login"));
                break;
            }
            frame = stream.next() => frame,
        };
        match frame {
            None | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Text(text))) => connection.on_text(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => {
                if connection.within_rate() {
                    connection.refuse(
                        None,
                        error::PROTOCOL_MALFORMED_MESSAGE,
                        "binary frame: signaling is JSON text",
                    );
                } else {
                    connection.refuse_rate_limited(None);
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(e)) => {
                connection.on_unreadable(e);
                break;
            }
        }
        if connection.session.is_none() && !anonymous {
            // Logged out: the wait for a login starts again, and so does the small frame cap.
            idle_since = tokio::time::Instant::now();
            cap.set(Some(limits::PRE_LOGIN_MESSAGE_MAX));
        } else if connection.session.is_some() && anonymous {
            cap.set(None);
        }
    }

    if let Some(session) = connection.session {
        hub.connection_lost(conn, session);
    }
    drop(connection);
    // The writer ends when the queue is drained and every sender is gone, or when killed.
    if tokio::time::timeout(WRITE_TIMEOUT, writer).await.is_err() {
        kill.cancel();
    }
    SignalingCounters::bump(&hub.counters.connections_closed);
    tracing::debug!(conn, "connection closed");
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Socket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    kill: CancellationToken,
) {
    'outer: loop {
        let first = tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            out = rx.recv() => out,
        };
        let Some(mut out) = first else {
            let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
            break;
        };
        let mut batch = 0;
        loop {
            let (message, last) = match out {
                Outgoing::Text(text) => (Message::Text(text), false),
                Outgoing::Close(code, reason) => (
                    Message::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    })),
                    true,
                ),
            };
            if !matches!(
                tokio::time::timeout(WRITE_TIMEOUT, sink.feed(message)).await,
                Ok(Ok(()))
            ) {
                break 'outer;
            }
            batch += 1;
            if last {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await;
                break 'outer;
            }
            match (batch < WRITE_BATCH).then(|| rx.try_recv().ok()).flatten() {
                Some(next) => out = next,
                None => break,
            }
        }
        if !matches!(
            tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await,
            Ok(Ok(()))
        ) {
            break;
        }
    }
    // Whatever ended the writer ends the reader too.
    kill.cancel();
}

struct Connection {
    hub: Arc<Hub>,
    link: Link,
    session: Option<SessionId>,
    requests: RateLimit,
    warnings: WarnLimiter,
}

impl Connection {
    fn queue(&self, out: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.link.tx.try_send(out) {
            tracing::warn!(
                conn = self.link.conn,
                "send queue full: disconnecting a slow reader"
            );
            SignalingCounters::bump(&self.hub.counters.slow_reader_disconnects);
            self.link.kill.cancel();
        }
    }

    fn send(&self, msg: &ServerMessage) {
        SignalingCounters::bump(&self.hub.counters.messages_sent);
        self.queue(Outgoing::Text(encode(msg)));
    }

    fn reply(&self, req_id: u64, code: ErrorCode) {
        self.send(&ServerMessage::reply(req_id, code, None));
    }

    fn warn(&mut self, what: &str, code: ErrorCode, detail: &str) {
        if let Some(suppressed) = self.warnings.allow(Instant::now()) {
            tracing::warn!(
                conn = self.link.conn,
                session = self.session,
                code,
                suppressed,
                "{what}: {detail}"
            );
        }
    }

    /// A frame that is not a request: its code in a Reply when the `req_id` was readable, else in an Error.
    fn refuse(&mut self, req_id: Option<u64>, code: ErrorCode, detail: &str) {
        SignalingCounters::bump(&self.hub.counters.bad_messages);
        self.warn("bad signaling frame", code, detail);
        let message = format!("{} ({detail})", error::message(code));
        match req_id {
            Some(req_id) => self.send(&ServerMessage::Reply {
                req_id,
                code,
                message,
                result: None,
            }),
            None => self.send(&ServerMessage::Error { code, message }),
        }
    }

    /// The WebSocket layer could not read a frame; the stream is over, but the client is told why.
    fn on_unreadable(&mut self, e: tungstenite::Error) {
        match e {
            tungstenite::Error::Utf8(_) => {
                self.refuse(
                    None,
                    error::PROTOCOL_MALFORMED_MESSAGE,
                    "text frame is not UTF-8",
                );
                self.queue(Outgoing::Close(1007, "invalid UTF-8"));
            }
            tungstenite::Error::Capacity(e) => {
                self.refuse(None, error::PROTOCOL_MESSAGE_TOO_LARGE, &e.to_string());
                self.queue(Outgoing::Close(1009, "message too large"));
            }
            tungstenite::Error::Io(e) if frame_limit::is_over_cap(&e) => {
                self.refuse(None, error::PROTOCOL_MESSAGE_TOO_LARGE, &e.to_string());
                self.queue(Outgoing::Close(1009, "message too large"));
            }
            tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => {
                tracing::debug!(
                    conn = self.link.conn,
                    "connection reset without a close frame"
                );
            }
            tungstenite::Error::Protocol(e) => {
                self.warn(
                    "WebSocket protocol violation",
                    error::PROTOCOL_MALFORMED_MESSAGE,
                    &e.to_string(),
                );
            }
            e => tracing::debug!(conn = self.link.conn, error = %e, "connection error"),
        }
    }

    async fn on_text(&mut self, text: &str) {
        SignalingCounters::bump(&self.hub.counters.messages_received);
        if !self.within_rate() {
            // Still answered by req_id when it can be read, so that a client can tell which request was dropped.
            let req_id = (text.len() <= limits::MESSAGE_MAX)
                .then(|| serde_json::from_str::<RequestId>(text).ok())
                .flatten()
                .map(|r| r.req_id);
            self.refuse_rate_limited(req_id);
            return;
        }
        if text.len() > limits::MESSAGE_MAX {
            let detail = format!("{} bytes, at most {}", text.len(), limits::MESSAGE_MAX);
            self.refuse(None, error::PROTOCOL_MESSAGE_TOO_LARGE, &detail);
            return;
        }
        let msg = match serde_json::from_str::<ClientMessage>(text) {
            Ok(msg) => msg,
            Err(e) => {
                let (req_id, code) = classify(text);
                self.refuse(req_id, code, &e.to_string());
                return;
            }
        };
        self.handle(msg).await;
    }

    /// Counts a frame toward the request rate: every frame counts, readable or not.
    fn within_rate(&mut self) -> bool {
        self.requests.try_take(Instant::now())
    }

    fn refuse_rate_limited(&mut self, req_id: Option<u64>) {
        SignalingCounters::bump(&self.hub.counters.rate_limited);
        self.warn(
            "request rate limited",
            error::ROOM_RATE_LIMITED_REQUEST,
            "too many requests",
        );
        let code = error::ROOM_RATE_LIMITED_REQUEST;
        match req_id {
            Some(req_id) => self.reply(req_id, code),
            None => self.send(&ServerMessage::Error {
                code,
                message: error::message(code).to_owned(),
            }),
        }
    }

    async fn handle(&mut self, msg: ClientMessage) {
        let req_id = msg.req_id();
        let Some(session) = self.session else {
            match msg {
                ClientMessage::Login {
                    req_id,
                    protocol_version,
                    app_id,
                    room_id,
                    user,
                    credentials,
                    is_user_status_notify,
                    max_member_count,
                    resume_session,
                } => {
                    let req = LoginRequest {
                        req_id,
                        protocol_version,
                        app_id,
                        room_id,
                        user,
                        credentials,
                        notify_users: is_user_status_notify,
                        max_member_count,
                        resume_session,
                    };
                    let who = format!(
                        "app {} user {:?} room {:?}",
                        req.app_id, req.user.user_id, req.room_id
                    );
                    match self.hub.login(&self.link, req) {
                        Ok(session) => self.session = Some(session),
                        Err(code) => {
                            self.warn("login refused", code, &who);
                            self.reply(req_id, code);
                        }
                    }
                }
                _ => {
                    SignalingCounters::bump(&self.hub.counters.bad_messages);
                    self.warn(
                        "request before login",
                        error::COMMON_NOT_LOGGED_IN,
                        "login must come first",
                    );
                    self.reply(req_id, error::COMMON_NOT_LOGGED_IN);
                }
            }
            return;
        };
        let hub = self.hub.clone();
        let conn = self.link.conn;
        let owned = match msg {
            ClientMessage::Login { .. } => {
                self.reply(req_id, error::ROOM_COUNT_EXCEED);
                true
            }
            ClientMessage::Logout { req_id } => {
                let owned =
                    hub.with_session(conn, session, |r, now| r.logout(session, req_id, now));
                self.session = None;
                owned
            }
            ClientMessage::Heartbeat { req_id } => {
                hub.with_session(conn, session, |r, now| r.heartbeat(session, req_id, now))
            }
            ClientMessage::RenewToken { req_id, token } => {
                hub.with_session(conn, session, |r, now| {
                    r.renew_token(session, req_id, &token, now)
                })
            }
            ClientMessage::SetRoomExtraInfo { req_id, key, value } => {
                hub.with_session(conn, session, |r, now| {
                    r.set_room_extra_info(session, req_id, &key, &value, now)
                })
            }
            ClientMessage::SendBroadcastMessage { req_id, message } => {
                hub.with_session(conn, session, |r, now| {
                    r.broadcast(session, req_id, &message, now)
                })
            }
            ClientMessage::SendCustomCommand {
                req_id,
                command,
                to_user_ids,
            } => hub.with_session(conn, session, |r, now| {
                r.custom_command(session, req_id, &command, &to_user_ids, now)
            }),
            ClientMessage::Publish {
                req_id,
                stream_id,
                extra_info,
                sdp,
            } => {
                hub.publish(conn, session, req_id, &stream_id, &extra_info, &sdp)
                    .await
            }
            ClientMessage::StopPublish { req_id, stream_id } => {
                hub.with_session(conn, session, |r, now| {
                    r.stop_publish(session, req_id, &stream_id, now)
                })
            }
            ClientMessage::SetStreamExtraInfo {
                req_id,
                stream_id,
                extra_info,
            } => hub.with_session(conn, session, |r, now| {
                r.set_stream_extra_info(session, req_id, &stream_id, &extra_info, now)
            }),
            ClientMessage::Play {
                req_id,
                stream_id,
                sdp,
                wait,
            } => {
                hub.play(conn, session, req_id, &stream_id, &sdp, wait)
                    .await
            }
            ClientMessage::StopPlay { req_id, stream_id } => {
                hub.with_session(conn, session, |r, now| {
                    r.stop_play(session, req_id, &stream_id, now)
                })
            }
        };
        if !owned {
            // The session ended without this connection knowing yet (kicked, timed out, resumed elsewhere).
            self.session = None;
            self.reply(req_id, error::COMMON_NOT_LOGGED_IN);
        }
    }
}

/// Just the `req_id` of a frame, to answer a request that is not handled.
#[derive(serde::Deserialize)]
struct RequestId {
    req_id: u64,
}

/// Why a text frame is not a request: unknown `type` (1002091) or anything else (1002090), with its `req_id`
/// when one can be read.
pub(crate) fn classify(text: &str) -> (Option<u64>, ErrorCode) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return (None, error::PROTOCOL_MALFORMED_MESSAGE);
    };
    let req_id = map.get("req_id").and_then(serde_json::Value::as_u64);
    let code = match map.get("type").and_then(serde_json::Value::as_str) {
        Some(t) if !CLIENT_MESSAGE_TYPES.contains(&t) => error::PROTOCOL_UNKNOWN_MESSAGE,
        _ => error::PROTOCOL_MALFORMED_MESSAGE,
    };
    (req_id, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zego_protocol::message::{Credentials, User};

    #[test]
    fn every_client_message_type_is_known() {
        let user = User {
            user_id: "u".into(),
            user_name: "u".into(),
        };
        let all = vec![
            ClientMessage::Login {
                req_id: 1,
                protocol_version: 1,
                app_id: 1,
                room_id: "r".into(),
                user,
                credentials: Credentials::Token { token: "t".into() },
                is_user_status_notify: false,
                max_member_count: 0,
                resume_session: None,
            },
            ClientMessage::Logout { req_id: 1 },
            ClientMessage::Heartbeat { req_id: 1 },
            ClientMessage::RenewToken {
                req_id: 1,
                token: "t".into(),
            },
            ClientMessage::SetRoomExtraInfo {
                req_id: 1,
                key: "k".into(),
                value: "v".into(),
            },
            ClientMessage::SendBroadcastMessage {
                req_id: 1,
                message: "m".into(),
            },
            ClientMessage::SendCustomCommand {
                req_id: 1,
                command: "c".into(),
                to_user_ids: vec![],
            },
            ClientMessage::Publish {
                req_id: 1,
                stream_id: "s".into(),
                extra_info: String::new(),
                sdp: "v=0".into(),
            },
            ClientMessage::StopPublish {
                req_id: 1,
                stream_id: "s".into(),
            },
            ClientMessage::SetStreamExtraInfo {
                req_id: 1,
                stream_id: "s".into(),
                extra_info: String::new(),
            },
            ClientMessage::Play {
                req_id: 1,
                stream_id: "s".into(),
                sdp: "v=0".into(),
                wait: false,
            },
            ClientMessage::StopPlay {
                req_id: 1,
                stream_id: "s".into(),
            },
        ];
        assert_eq!(all.len(), CLIENT_MESSAGE_TYPES.len());
        for msg in all {
            let json = serde_json::to_value(&msg).unwrap();
            let t = json["type"].as_str().unwrap();
            assert!(CLIENT_MESSAGE_TYPES.contains(&t), "{t}");
        }
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(
            classify("not json"),
            (None, error::PROTOCOL_MALFORMED_MESSAGE)
        );
        assert_eq!(classify("[1,2]"), (None, error::PROTOCOL_MALFORMED_MESSAGE));
        assert_eq!(
            classify(r#"{"type":"fly","req_id":4}"#),
            (Some(4), error::PROTOCOL_UNKNOWN_MESSAGE)
        );
        assert_eq!(
            classify(r#"{"type":"login","req_id":5}"#),
            (Some(5), error::PROTOCOL_MALFORMED_MESSAGE)
        );
        assert_eq!(
            classify(r#"{"req_id":"x"}"#),
            (None, error::PROTOCOL_MALFORMED_MESSAGE)
        );
    }
}
