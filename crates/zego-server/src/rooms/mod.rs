//! The sans-IO core of the server: apps → rooms → sessions, streams and plays.
//!
//! Every method takes its input and the current time and returns what must happen as a list of [`Output`]s
//! (messages to sessions, connections to close, relay sessions to end, plays to start). No sockets, clocks or
//! tasks live here; the caller ([`crate::hub`]) applies the outputs in order, which is what keeps events to a
//! session in the order they were decided.
//!
//! Talking to the relay takes time, so publish and play are two steps: `prepare_*` checks the request and
//! reserves what it needs, the caller asks the relay, and `finish_*` records the outcome. An `attempt` number
//! ties the two, so an answer that arrives after its request became moot is recognised and its relay session
//! closed.
//!
//! `Registry`'s methods are split by concern: `login`, `timers`, `publish`, `play`, `messages`, and `removal` (a
//! session leaving); `room` holds what a room is made of.

mod cluster;
mod login;
mod messages;
mod play;
mod publish;
mod removal;
mod room;
#[cfg(test)]
mod tests;
mod timers;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use zego_protocol::cluster::{NodeId, RoomEvent};
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::message::{
    stream_delete_reason, BroadcastMessage, Credentials, ReplyResult, RoomExtraInfo, ServerMessage,
    StreamDeleteReason, StreamInfo, UpdateType, User,
};
use zego_protocol::{limits, validate, PROTOCOL_VERSION};
use zego_relay::StreamKey;

use crate::auth::{self, AppKeys, Grant, ReplayGuard};
use crate::clock::Now;
use crate::config::ServerConfig;
use room::{Play, RemoteRoom, Room, Session, Stream, NO_SESSION};

/// A signaling session (one user logged in to one room), unique for the server's lifetime.
pub type SessionId = u64;
pub type RelaySessionId = zego_relay::SessionId;

/// The timers of the core.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub online_count_interval: Duration,
    pub token_expire_notice: Duration,
}

impl Settings {
    pub fn from_config(config: &ServerConfig) -> Self {
        Settings {
            heartbeat_interval: config.heartbeat_interval,
            heartbeat_timeout: config.heartbeat_timeout,
            online_count_interval: config.online_count_interval,
            token_expire_notice: config.token_expire_notice,
        }
    }
}

/// Why a connection is closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// After a [`ServerMessage::Kicked`].
    Kicked,
    /// The session was silent past the heartbeat timeout and is gone.
    HeartbeatTimeout,
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Deliver to the connections of these sessions (a session without a connection misses it).
    Send {
        to: Vec<SessionId>,
        msg: ServerMessage,
    },
    /// The session ended: forget its connection, and close that connection when a reason is given.
    Detach {
        session: SessionId,
        close: Option<CloseReason>,
    },
    /// End a relay session.
    CloseRelay(RelaySessionId),
    /// A waiting play can start: ask the relay, then call [`Registry::finish_play`].
    StartPlay(PlayGrant),
    /// Tell the other nodes of the cluster (only when [`Registry::join_cluster`] was called).
    Cluster(RoomEvent),
}

fn send(to: SessionId, msg: ServerMessage) -> Output {
    Output::Send { to: vec![to], msg }
}

fn reply(to: SessionId, req_id: u64, code: ErrorCode, result: Option<ReplyResult>) -> Output {
    send(to, ServerMessage::reply(req_id, code, result))
}

/// Queues `msg` for the sessions in `to`, unless there are none.
fn tell(outputs: &mut Vec<Output>, to: Vec<SessionId>, msg: ServerMessage) {
    if !to.is_empty() {
        outputs.push(Output::Send { to, msg });
    }
}

/// Answers a request, then lets `then` queue what follows from it for the others: the requester always has its
/// reply before anyone else hears what the request changed.
fn reply_then_tell(answer: Output, then: impl FnOnce(&mut Vec<Output>)) -> Vec<Output> {
    let mut outputs = vec![answer];
    then(&mut outputs);
    outputs
}

/// A login request, as it arrived.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub req_id: u64,
    pub protocol_version: u32,
    pub app_id: u32,
    pub room_id: String,
    pub user: User,
    pub credentials: Credentials,
    pub notify_users: bool,
    pub max_member_count: u32,
    pub resume_session: Option<String>,
}

#[derive(Debug)]
pub struct LoginOk {
    pub session: SessionId,
    /// An existing session moved onto this connection.
    pub resumed: bool,
    pub outputs: Vec<Output>,
}

/// A publish the core accepted; the relay is asked next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishGrant {
    pub session: SessionId,
    pub req_id: u64,
    pub key: StreamKey,
    pub attempt: u64,
}

/// A play the core accepted; the relay is asked next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayGrant {
    pub session: SessionId,
    /// `None` for a play that waited: its outcome is a [`ServerMessage::PlayStarted`] instead of a reply.
    pub req_id: Option<u64>,
    pub key: StreamKey,
    pub offer: String,
    pub attempt: u64,
    /// The node that publishes the stream, when it is not this one: the relay pulls it from there first.
    pub origin: Option<NodeId>,
}

/// The first step of a publish or play: outputs to apply now, and the grant to take to the relay, if any.
#[derive(Debug)]
pub struct Prepared<G> {
    pub outputs: Vec<Output>,
    pub grant: Option<G>,
}

impl<G> Prepared<G> {
    fn refused(outputs: Vec<Output>) -> Self {
        Prepared {
            outputs,
            grant: None,
        }
    }
}

/// How the relay answered, reduced to what the core needs.
pub type RelayOutcome = Result<(RelaySessionId, String), RelayRefusal>;

/// A relay refusal, as the code and text to reply with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRefusal {
    pub code: ErrorCode,
    pub message: String,
}

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    Logout,
    HeartbeatTimeout,
    SameUserLoggedIn,
    TokenExpired,
}

impl Removal {
    fn stream_reason(self) -> u32 {
        match self {
            Removal::Logout => stream_delete_reason::STOPPED,
            Removal::HeartbeatTimeout => stream_delete_reason::HEARTBEAT_TIMEOUT,
            Removal::SameUserLoggedIn => stream_delete_reason::REPEATED_LOGIN,
            Removal::TokenExpired => stream_delete_reason::KICKED_OUT,
        }
    }

    fn kick_code(self) -> Option<ErrorCode> {
        match self {
            Removal::SameUserLoggedIn => Some(error::ROOM_KICKED_OUT_SAME_USER),
            Removal::TokenExpired => Some(error::ROOM_KICKED_OUT_TOKEN_EXPIRED),
            Removal::Logout | Removal::HeartbeatTimeout => None,
        }
    }
}

/// One app's namespace: rooms, user ids and stream ids are unique within it.
#[derive(Debug)]
struct App {
    keys: AppKeys,
    rooms: HashMap<String, Room>,
    users: HashMap<String, SessionId>,
    streams: HashMap<String, Stream>,
    /// Sessions waiting for a stream id to be published.
    waiting: HashMap<String, BTreeSet<SessionId>>,
    replay: ReplayGuard,
    /// The rooms as the other nodes of the cluster make them, by room id.
    remote_rooms: HashMap<String, RemoteRoom>,
}

/// What a request of a session works on: the session, its room and the rest of its app, borrowed together so
/// that nothing found once is looked up again.
struct Seat<'a> {
    id: SessionId,
    session: &'a mut Session,
    room: &'a mut Room,
    keys: &'a AppKeys,
    users: &'a HashMap<String, SessionId>,
    streams: &'a mut HashMap<String, Stream>,
    waiting: &'a mut HashMap<String, BTreeSet<SessionId>>,
}

impl Seat<'_> {
    /// The members of the room other than this session.
    fn others(&self) -> Vec<SessionId> {
        self.room.others(self.id)
    }
}

/// Why a request of a session found no [`Seat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unseated {
    /// The session has ended: nobody is left to answer.
    Gone,
    /// Its app or room is missing, which a consistent state never shows (logged where found).
    Broken,
}

impl Unseated {
    /// What answers the request: nothing for a session that is gone, else `code`, an internal error.
    fn answer(self, id: SessionId, req_id: u64, code: ErrorCode) -> Vec<Output> {
        match self {
            Unseated::Gone => Vec::new(),
            Unseated::Broken => vec![reply(id, req_id, code, None)],
        }
    }
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub rooms: usize,
    pub sessions: usize,
    pub streams: usize,
    pub plays: usize,
    pub waiting_plays: usize,
}

/// Counts of what the timers did, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerTotals {
    pub heartbeat_timeouts: u64,
    pub token_expiries: u64,
    pub same_user_kicks: u64,
}

#[derive(Debug)]
pub struct Registry {
    settings: Settings,
    apps: HashMap<u32, App>,
    sessions: HashMap<SessionId, Session>,
    by_resume_token: HashMap<String, SessionId>,
    last_session: SessionId,
    last_attempt: u64,
    totals: TimerTotals,
    /// Part of a cluster: changes are told to the other nodes ([`Output::Cluster`]).
    clustered: bool,
}

impl Registry {
    pub fn new(settings: Settings, apps: &[AppKeys]) -> Self {
        let apps = apps
            .iter()
            .map(|keys| {
                (
                    keys.app_id,
                    App {
                        keys: keys.clone(),
                        rooms: HashMap::new(),
                        users: HashMap::new(),
                        streams: HashMap::new(),
                        waiting: HashMap::new(),
                        replay: ReplayGuard::default(),
                        remote_rooms: HashMap::new(),
                    },
                )
            })
            .collect();
        Registry {
            settings,
            apps,
            sessions: HashMap::new(),
            by_resume_token: HashMap::new(),
            last_session: 0,
            last_attempt: 0,
            totals: TimerTotals::default(),
            clustered: false,
        }
    }

    pub fn census(&self) -> Census {
        let mut census = Census {
            sessions: self.sessions.len(),
            ..Census::default()
        };
        for app in self.apps.values() {
            census.rooms += app.rooms.len();
            census.streams += app.streams.values().filter(|s| s.relay.is_some()).count();
            census.waiting_plays += app.waiting.values().map(BTreeSet::len).sum::<usize>();
        }
        census.plays = self
            .sessions
            .values()
            .flat_map(|s| s.plays.values())
            .filter(|p| matches!(p, Play::Active { .. }))
            .count();
        census
    }

    pub fn totals(&self) -> TimerTotals {
        self.totals
    }

    pub fn has_session(&self, session: SessionId) -> bool {
        self.sessions.contains_key(&session)
    }

    /// Whether `session` publishes `stream_id` and its media is live (or within its reconnect grace). A WHIP
    /// session, which has no other way to hear that its stream is gone, ends when this turns false.
    pub fn publishes(&self, session: SessionId, stream_id: &str) -> bool {
        let Some(app_id) = self.sessions.get(&session).map(|s| s.app_id) else {
            return false;
        };
        self.apps
            .get(&app_id)
            .and_then(|app| app.streams.get(stream_id))
            .is_some_and(|stream| stream.owner == session && stream.is_live())
    }

    fn next_attempt(&mut self) -> u64 {
        self.last_attempt += 1;
        self.last_attempt
    }

    /// The [`Seat`] of a session.
    fn seat(&mut self, id: SessionId) -> Result<Seat<'_>, Unseated> {
        let session = self.sessions.get_mut(&id).ok_or(Unseated::Gone)?;
        let Some(App {
            keys,
            rooms,
            users,
            streams,
            waiting,
            ..
        }) = self.apps.get_mut(&session.app_id)
        else {
            tracing::error!(
                session = id,
                app_id = session.app_id,
                "session of an unknown app"
            );
            return Err(Unseated::Broken);
        };
        let Some(room) = rooms.get_mut(&session.room_id) else {
            tracing::error!(session = id, room_id = %session.room_id, "session of a closed room");
            return Err(Unseated::Broken);
        };
        Ok(Seat {
            id,
            session,
            room,
            keys,
            users,
            streams,
            waiting,
        })
    }
}

fn apply_grant(session: &mut Session, grant: Grant, now: Now) {
    session.token_expire_at = match &grant {
        Grant::AppSign => None,
        Grant::Token(t) => Some(now.instant_at_unix(t.expire)),
    };
    session.token_warned = false;
    session.grant = grant;
}
