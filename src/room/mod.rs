//! The signaling session: one WebSocket to the server for one login to one room.
//!
//! A [`RoomSession`] logs in (app_sign proof or token), keeps the connection alive with heartbeats, turns server
//! events into app [`Event`]s, and survives broken connections: it reconnects with backoff, resumes the server
//! session when the server still has it, and tells the app what changed meanwhile. Requests get a `req_id` and
//! a [`PendingReply`]; what the engine must act on (plays that started or stopped, reconnections, the end of the
//! session) arrives as [`Notice`]s, numbered in the order the server sent them so they can be ordered against
//! replies.

mod backoff;
mod connection;
mod events;
mod session;
mod snapshot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use zego_protocol::error::ErrorCode;
use zego_protocol::limits;
use zego_protocol::message::{ClientMessage, ReplyResult, StreamInfo, User};

use crate::config::{RoomConfig, RoomStateChangedReason};
use crate::event::{Event, EventSender};
use crate::server_url::Servers;

pub(crate) use events::EMPTY_JSON;

/// The timers of a session. Defaults are the product's; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTiming {
    /// Connection attempts of the first login before it fails with 1002030.
    pub connect_attempts: u32,
    /// One TCP + WebSocket handshake.
    pub connect_timeout: Duration,
    /// From sending Login to its reply; past it the first login fails with 1002031.
    pub login_timeout: Duration,
    /// How long a broken connection is retried before reconnect_failed (the original's `room_retry_time`).
    pub reconnect_window: Duration,
    /// How long a logout waits for the server's reply.
    pub logout_timeout: Duration,
}

impl Default for SessionTiming {
    fn default() -> Self {
        SessionTiming {
            connect_attempts: 4,
            connect_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(10),
            reconnect_window: limits::RECONNECT_WINDOW,
            logout_timeout: Duration::from_secs(1),
        }
    }
}

/// Everything a login needs.
#[derive(Clone)]
pub(crate) struct LoginParams {
    /// The server's addresses (the nodes of a cluster), tried in turn.
    pub servers: Arc<Servers>,
    pub app_id: u32,
    /// The 32 app_sign bytes, when the engine has one; used when the room config has no token.
    pub app_sign: Option<[u8; 32]>,
    pub room_id: String,
    pub user: User,
    pub config: RoomConfig,
    pub timing: SessionTiming,
}

/// What the engine must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionNotice {
    /// Logged in (first time or again). `resumed`: the server kept the session, with its streams and plays;
    /// otherwise this is a new session and whatever was published or played must be set up again.
    /// `streams`: every stream the room has now, this user's included.
    Connected {
        reconnect: bool,
        resumed: bool,
        streams: Vec<StreamInfo>,
    },
    /// A play that waited for its stream: the stream is published now and this is the SDP answer.
    PlayStarted { stream_id: String, sdp: String },
    /// A played stream stopped being published (a stream delete reason).
    PlayStopped { stream_id: String, code: u32 },
    /// The session is over without a logout: login failed, reconnecting gave up, or kicked out (the code says
    /// which). The room events were already sent.
    Ended { code: ErrorCode },
}

#[derive(Debug, Clone)]
pub(crate) struct Notice {
    /// Which [`RoomSession`] (its `id`).
    pub session: u64,
    /// The position of the server message behind it among all messages this session received.
    pub seq: u64,
    pub kind: SessionNotice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("not connected to the server")]
    NotConnected,
    #[error("the connection broke before the reply")]
    ConnectionLost,
    #[error("no reply in time")]
    TimedOut,
}

/// The server's answer to one request.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub code: ErrorCode,
    pub message: String,
    pub result: Option<ReplyResult>,
    /// The position of this reply among all messages the session received (see [`Notice::seq`]).
    pub seq: u64,
}

/// A request on the wire, waiting for its reply.
pub(crate) struct PendingReply {
    rx: oneshot::Receiver<Reply>,
}

impl PendingReply {
    pub async fn wait(self, timeout: Duration) -> Result<Reply, RequestError> {
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(RequestError::ConnectionLost),
            Err(_) => Err(RequestError::TimedOut),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Up,
    Down,
    Ended,
}

/// The current connection as requests see it.
#[derive(Default)]
struct Link {
    /// Messages for the connection's writer; `None` while disconnected.
    tx: Option<mpsc::UnboundedSender<ClientMessage>>,
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    /// Messages that must reach the server eventually (stops), sent when a resumed session comes back.
    deferred: Vec<ClientMessage>,
}

pub(crate) struct RoomSession {
    id: u64,
    params: LoginParams,
    /// The token of the next (re)login: renew_token replaces it.
    token: Mutex<String>,
    events: EventSender,
    notices: mpsc::UnboundedSender<Notice>,
    /// Once set, the session tells the app nothing more (the app logged out, or the session ended). Events are
    /// sent under this lock, so nothing slips out after the closing events.
    closed: Mutex<bool>,
    link: Mutex<Link>,
    phase: watch::Sender<Phase>,
    /// Set by logout: the session sends Logout (when connected) and ends.
    stop: watch::Sender<bool>,
    next_req_id: AtomicU64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when the session ended on its own (login failed, kicked out, reconnecting gave up), with the code.
    ended_with: Mutex<Option<ErrorCode>>,
}

impl RoomSession {
    /// Starts logging in on `runtime`. Progress is reported as room events (Logining first) and notices.
    pub fn start(
        id: u64,
        params: LoginParams,
        events: EventSender,
        notices: mpsc::UnboundedSender<Notice>,
        runtime: &tokio::runtime::Handle,
    ) -> Arc<RoomSession> {
        let session = Arc::new(RoomSession {
            id,
            token: Mutex::new(params.config.token.clone()),
            params,
            events,
            notices,
            closed: Mutex::new(false),
            link: Mutex::new(Link::default()),
            phase: watch::channel(Phase::Connecting).0,
            stop: watch::channel(false).0,
            next_req_id: AtomicU64::new(1),
            task: Mutex::new(None),
            ended_with: Mutex::new(None),
        });
        session.emit(events::room_state(
            &session.params.room_id,
            RoomStateChangedReason::Logining,
            0,
        ));
        let task = runtime.spawn(session.clone().run());
        *session.task.lock() = Some(task);
        session
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn room_id(&self) -> &str {
        &self.params.room_id
    }

    /// The code the session ended with on its own, once it has.
    pub fn ended_with(&self) -> Option<ErrorCode> {
        *self.ended_with.lock()
    }

    pub fn user_id(&self) -> &str {
        &self.params.user.user_id
    }

    /// The token later logins use.
    pub fn set_token(&self, token: &str) {
        *self.token.lock() = token.to_owned();
    }

    fn next_req_id(&self) -> u64 {
        self.next_req_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts a request on the wire now, or fails at once when disconnected. Messages leave in call order.
    pub fn try_request(
        &self,
        build: impl FnOnce(u64) -> ClientMessage,
    ) -> Result<PendingReply, RequestError> {
        let mut link = self.link.lock();
        let Some(tx) = link.tx.clone() else {
            return Err(RequestError::NotConnected);
        };
        let req_id = self.next_req_id();
        let (reply_tx, rx) = oneshot::channel();
        tx.send(build(req_id))
            .map_err(|_| RequestError::NotConnected)?;
        link.pending.insert(req_id, reply_tx);
        Ok(PendingReply { rx })
    }

    /// Sends a message whose reply nobody waits for, keeping it for a resumed session when disconnected, so a
    /// stop issued while the connection was down still reaches the server.
    pub fn send_or_defer(&self, build: impl FnOnce(u64) -> ClientMessage) {
        let msg = build(self.next_req_id());
        let mut link = self.link.lock();
        match &link.tx {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => link.deferred.push(msg),
        }
    }

    /// Waits until logged in and connected. `false` when the session is over.
    pub async fn wait_connected(&self) -> bool {
        let mut phase = self.phase.subscribe();
        let reached = phase
            .wait_for(|p| matches!(p, Phase::Up | Phase::Ended))
            .await
            .map(|p| *p);
        matches!(reached, Ok(Phase::Up))
    }

    /// A request that waits for the connection first; the whole exchange is bounded by `timeout`.
    pub async fn request(
        &self,
        build: impl FnOnce(u64) -> ClientMessage,
        timeout: Duration,
    ) -> Result<Reply, RequestError> {
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, self.wait_connected()).await {
            Ok(true) => {}
            Ok(false) => return Err(RequestError::ConnectionLost),
            Err(_) => return Err(RequestError::TimedOut),
        }
        let pending = self.try_request(build)?;
        pending
            .wait(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
    }

    /// Logs out: the app hears Logout now and nothing after it; the server is told in the background.
    pub fn logout(&self) {
        self.close_with(events::room_state(
            &self.params.room_id,
            RoomStateChangedReason::Logout,
            0,
        ));
        self.stop.send_replace(true);
    }

    /// Logs out without telling the app (engine destroy).
    pub fn logout_quietly(&self) {
        *self.closed.lock() = true;
        self.stop.send_replace(true);
    }

    /// Waits (bounded) for the session's task to end, e.g. after [`RoomSession::logout`].
    pub async fn finished(&self, timeout: Duration) {
        let task = self.task.lock().take();
        if let Some(mut task) = task {
            if tokio::time::timeout(timeout, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    // ----- for the session task -----

    /// Sends events unless the session is closed.
    fn emit(&self, events: impl IntoIterator<Item = Event>) {
        let closed = self.closed.lock();
        if !*closed {
            for event in events {
                self.events.send(event);
            }
        }
    }

    /// Sends the last events of the session and closes it.
    fn close_with(&self, events: impl IntoIterator<Item = Event>) {
        let mut closed = self.closed.lock();
        if !*closed {
            *closed = true;
            for event in events {
                self.events.send(event);
            }
        }
    }

    fn notify(&self, seq: u64, kind: SessionNotice) {
        let _ = self.notices.send(Notice {
            session: self.id,
            seq,
            kind,
        });
    }

    /// The connection is usable: queued stops go first when the server kept the session.
    fn link_up(&self, tx: mpsc::UnboundedSender<ClientMessage>, resumed: bool) {
        let mut link = self.link.lock();
        let deferred = std::mem::take(&mut link.deferred);
        if resumed {
            for msg in deferred {
                let _ = tx.send(msg);
            }
        }
        link.tx = Some(tx);
    }

    /// The connection is gone: waiting requests fail with ConnectionLost.
    fn link_down(&self) {
        let mut link = self.link.lock();
        link.tx = None;
        link.pending.clear();
    }

    fn deliver_reply(&self, req_id: u64, reply: Reply) {
        let waiter = self.link.lock().pending.remove(&req_id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(reply);
        }
    }
}
