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

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

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
use crate::room::{Play, Room, Session, Stream};

/// A signaling session (one user logged in to one room), unique for the server's lifetime.
pub type SessionId = u64;
pub type RelaySessionId = zego_relay::SessionId;

/// Streams one session may publish at once: the four publish channels of the SDK.
pub const STREAMS_PER_SESSION_MAX: usize = 4;
/// Streams one session may play (or wait for) at once.
pub const PLAYS_PER_SESSION_MAX: usize = 64;

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
}

fn send(to: SessionId, msg: ServerMessage) -> Output {
    Output::Send { to: vec![to], msg }
}

fn reply(to: SessionId, req_id: u64, code: ErrorCode, result: Option<ReplyResult>) -> Output {
    send(to, ServerMessage::reply(req_id, code, result))
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
        }
    }

    pub fn census(&self) -> Census {
        let mut census = Census {
            sessions: self.sessions.len(),
            ..Census::default()
        };
        for app in self.apps.values() {
            census.rooms += app.rooms.len();
            census.streams += app.streams.values().filter(|s| s.is_live()).count();
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

    fn next_attempt(&mut self) -> u64 {
        self.last_attempt += 1;
        self.last_attempt
    }

    // ── login / logout ──────────────────────────────────────────────────────────────────────────────────────

    /// A login: checks the request and its credentials, resumes or creates the session, and announces it.
    /// On `Err` nothing changed and the caller replies with the code.
    pub fn login(&mut self, req: LoginRequest, now: Now) -> Result<LoginOk, ErrorCode> {
        if req.protocol_version != PROTOCOL_VERSION {
            return Err(error::PROTOCOL_VERSION_UNSUPPORTED);
        }
        validate::room_id(&req.room_id)?;
        validate::user_id(&req.user.user_id)?;
        validate::user_name(&req.user.user_name)?;
        let app = self
            .apps
            .get_mut(&req.app_id)
            .ok_or(error::ENGINE_APP_ID_INCORRECT)?;
        let grant = auth::check_login(
            &app.keys,
            &req.credentials,
            &req.user.user_id,
            &req.room_id,
            now,
            &app.replay,
        )?;

        if let Some(session) = self.resumable(&req) {
            self.spend_proof(&req, now);
            return Ok(self.resume(session, req, grant, now));
        }

        // Capacity, counting the slot a same-user session in this room is about to free.
        let app = &self.apps[&req.app_id];
        let previous = app.users.get(&req.user.user_id).copied();
        if let Some(room) = app.rooms.get(&req.room_id) {
            let mut members = room.members.len();
            if previous.is_some_and(|p| room.members.contains(&p)) {
                members -= 1;
            }
            if room.max_member_count > 0 && members >= room.max_member_count as usize {
                return Err(error::ROOM_MAX_MEMBER_COUNT);
            }
        }

        self.spend_proof(&req, now);
        let mut outputs = Vec::new();
        if let Some(previous) = previous {
            self.totals.same_user_kicks += 1;
            self.remove_session(previous, Removal::SameUserLoggedIn, &mut outputs);
        }

        self.last_session += 1;
        let id = self.last_session;
        let resume_token = format!("{:032x}", rand::random::<u128>());
        let mut session = Session::new(
            req.app_id,
            req.room_id.clone(),
            req.user.clone(),
            req.notify_users,
            resume_token.clone(),
            now.mono,
        );
        apply_grant(&mut session, grant, now);

        let app = self.apps.get_mut(&req.app_id).expect("checked above");
        let online_interval = self.settings.online_count_interval;
        let room = app
            .rooms
            .entry(req.room_id.clone())
            .or_insert_with(|| Room::new(req.max_member_count, now.mono + online_interval));
        let others: Vec<SessionId> = room
            .members
            .iter()
            .copied()
            .filter(|m| self.sessions.get(m).is_some_and(|s| s.notify_users))
            .collect();
        room.members.insert(id);
        app.users.insert(req.user.user_id.clone(), id);
        self.sessions.insert(id, session);
        self.by_resume_token.insert(resume_token, id);

        outputs.push(send(id, self.login_reply(id, req.req_id, now)));
        if !others.is_empty() {
            outputs.push(Output::Send {
                to: others,
                msg: ServerMessage::UserUpdate {
                    room_id: req.room_id.clone(),
                    update_type: UpdateType::Add,
                    users: vec![req.user.clone()],
                },
            });
        }
        tracing::info!(
            session = id,
            app_id = req.app_id,
            room_id = %req.room_id,
            user_id = %req.user.user_id,
            "logged in"
        );
        Ok(LoginOk {
            session: id,
            resumed: false,
            outputs,
        })
    }

    /// A login is going through: its app_sign proof cannot be used again (a refused login spends nothing).
    fn spend_proof(&mut self, req: &LoginRequest, now: Now) {
        if let Some(app) = self.apps.get_mut(&req.app_id) {
            app.replay.spend(&req.credentials, &req.user.user_id, now);
        }
    }

    /// The session a login names in `resume_session`, if it is the same app, room and user.
    fn resumable(&self, req: &LoginRequest) -> Option<SessionId> {
        let id = *self.by_resume_token.get(req.resume_session.as_deref()?)?;
        let session = self.sessions.get(&id)?;
        (session.app_id == req.app_id
            && session.room_id == req.room_id
            && session.user.user_id == req.user.user_id)
            .then_some(id)
    }

    /// Moves an existing session onto a new connection (the caller closes the old one): nobody else hears of it.
    fn resume(&mut self, id: SessionId, req: LoginRequest, grant: Grant, now: Now) -> LoginOk {
        let session = self.sessions.get_mut(&id).expect("resumable checked it");
        session.last_seen = now.mono;
        session.notify_users = req.notify_users;
        session.user.user_name = req.user.user_name.clone();
        if let Grant::Token(_) = grant {
            apply_grant(session, grant, now);
        }
        tracing::info!(session = id, user_id = %req.user.user_id, "session resumed");
        LoginOk {
            session: id,
            resumed: true,
            outputs: vec![send(id, self.login_reply(id, req.req_id, now))],
        }
    }

    /// The snapshot a login reply carries: it is the first "Add" of everyone and everything present.
    fn login_reply(&self, id: SessionId, req_id: u64, now: Now) -> ServerMessage {
        let session = &self.sessions[&id];
        let app = &self.apps[&session.app_id];
        let room = &app.rooms[&session.room_id];
        let users = if session.notify_users {
            room.members
                .iter()
                .map(|m| self.sessions[m].user.clone())
                .collect()
        } else {
            Vec::new()
        };
        let streams = room
            .streams
            .iter()
            .filter_map(|sid| {
                app.streams
                    .get(sid)
                    .filter(|s| s.is_live())
                    .map(|s| s.info(sid))
            })
            .collect();
        ServerMessage::reply(
            req_id,
            error::SUCCESS,
            Some(ReplyResult::Login {
                session_id: session.resume_token.clone(),
                heartbeat_interval_ms: self.settings.heartbeat_interval.as_millis() as u64,
                heartbeat_timeout_ms: self.settings.heartbeat_timeout.as_millis() as u64,
                server_time_ms: now.unix_ms,
                token_expire_time: session.grant.token_expire(),
                users,
                streams,
                room_extra_info: room.extra_info.values().cloned().collect(),
                online_count: room.members.len() as u32,
            }),
        )
    }

    pub fn logout(&mut self, id: SessionId, req_id: u64, _now: Now) -> Vec<Output> {
        let mut outputs = Vec::new();
        if !self.sessions.contains_key(&id) {
            return outputs;
        }
        outputs.push(reply(id, req_id, error::SUCCESS, None));
        self.remove_session(id, Removal::Logout, &mut outputs);
        outputs
    }

    /// Takes a session out of everything: its plays, its streams (with `removal`'s reason), its room.
    fn remove_session(&mut self, id: SessionId, removal: Removal, outputs: &mut Vec<Output>) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let app_id = session.app_id;
        let room_id = session.room_id.clone();
        let user = session.user.clone();
        tracing::info!(session = id, app_id, room_id = %room_id, user_id = %user.user_id, ?removal, "session ends");

        if let Some(code) = removal.kick_code() {
            outputs.push(send(
                id,
                ServerMessage::Kicked {
                    room_id: room_id.clone(),
                    code,
                },
            ));
        }
        outputs.push(Output::Detach {
            session: id,
            close: match removal {
                Removal::Logout => None,
                Removal::HeartbeatTimeout => Some(CloseReason::HeartbeatTimeout),
                Removal::SameUserLoggedIn | Removal::TokenExpired => Some(CloseReason::Kicked),
            },
        });

        let plays: Vec<String> = self.sessions[&id].plays.keys().cloned().collect();
        for stream_id in plays {
            self.end_play(id, &stream_id, outputs);
        }
        let published: Vec<String> = self.sessions[&id].publishing.iter().cloned().collect();
        self.delete_streams(app_id, &published, removal.stream_reason(), outputs);

        let session = self.sessions.remove(&id).expect("present above");
        self.by_resume_token.remove(&session.resume_token);
        let app = self
            .apps
            .get_mut(&app_id)
            .expect("sessions belong to known apps");
        if app.users.get(&user.user_id) == Some(&id) {
            app.users.remove(&user.user_id);
        }
        let Some(room) = app.rooms.get_mut(&room_id) else {
            return;
        };
        room.members.remove(&id);
        let notify: Vec<SessionId> = room
            .members
            .iter()
            .copied()
            .filter(|m| self.sessions.get(m).is_some_and(|s| s.notify_users))
            .collect();
        if !notify.is_empty() {
            outputs.push(Output::Send {
                to: notify,
                msg: ServerMessage::UserUpdate {
                    room_id: room_id.clone(),
                    update_type: UpdateType::Delete,
                    users: vec![user],
                },
            });
        }
        if room.members.is_empty() {
            app.rooms.remove(&room_id);
            tracing::debug!(app_id, room_id = %room_id, "room closed");
        }
    }

    /// Ends one play of a session, whatever its state.
    fn end_play(&mut self, id: SessionId, stream_id: &str, outputs: &mut Vec<Output>) -> bool {
        let Some(session) = self.sessions.get_mut(&id) else {
            return false;
        };
        let Some(play) = session.plays.remove(stream_id) else {
            return false;
        };
        let app = self.apps.get_mut(&session.app_id).expect("known app");
        match play {
            Play::Waiting { .. } => {
                if let Some(waiters) = app.waiting.get_mut(stream_id) {
                    waiters.remove(&id);
                    if waiters.is_empty() {
                        app.waiting.remove(stream_id);
                    }
                }
            }
            Play::Starting { .. } => {
                if let Some(stream) = app.streams.get_mut(stream_id) {
                    stream.players.remove(&id);
                }
            }
            Play::Active { relay } => {
                if let Some(stream) = app.streams.get_mut(stream_id) {
                    stream.players.remove(&id);
                }
                outputs.push(Output::CloseRelay(relay));
            }
        }
        true
    }

    /// Deletes streams of one app (all of one owner): players are stopped, the room hears one Delete.
    fn delete_streams(
        &mut self,
        app_id: u32,
        stream_ids: &[String],
        reason: u32,
        outputs: &mut Vec<Output>,
    ) {
        let app = self.apps.get_mut(&app_id).expect("known app");
        let mut deleted: Vec<(String, StreamInfo)> = Vec::new();
        let mut owner = None;
        for stream_id in stream_ids {
            let Some(stream) = app.streams.remove(stream_id) else {
                continue;
            };
            owner = Some(stream.owner);
            if let Some(room) = app.rooms.get_mut(&stream.room_id) {
                room.streams.remove(stream_id);
            }
            if let Some(session) = self.sessions.get_mut(&stream.owner) {
                session.publishing.remove(stream_id);
            }
            let Some(publisher) = stream.relay else {
                // Never visible: the publish still in flight finds the stream gone and closes its relay session.
                continue;
            };
            outputs.push(Output::CloseRelay(publisher));
            for player in &stream.players {
                let Some(session) = self.sessions.get_mut(player) else {
                    continue;
                };
                match session.plays.remove(stream_id) {
                    Some(Play::Active { relay }) => outputs.push(Output::CloseRelay(relay)),
                    // Its request is still unanswered: the relay's answer finds the play gone and replies.
                    Some(Play::Starting { direct: true, .. }) => continue,
                    _ => {}
                }
                outputs.push(send(
                    *player,
                    ServerMessage::PlayStopped {
                        stream_id: stream_id.clone(),
                        code: reason,
                    },
                ));
            }
            deleted.push((stream.room_id.clone(), stream.info(stream_id)));
        }
        let Some(owner) = owner else { return };
        // One owner means one room.
        let Some((room_id, _)) = deleted.first() else {
            return;
        };
        let room_id = room_id.clone();
        let to: Vec<SessionId> = app
            .rooms
            .get(&room_id)
            .map(|r| r.members.iter().copied().filter(|m| *m != owner).collect())
            .unwrap_or_default();
        if to.is_empty() {
            return;
        }
        let (reasons, streams) = deleted
            .into_iter()
            .map(|(_, info)| {
                (
                    StreamDeleteReason {
                        stream_id: info.stream_id.clone(),
                        code: reason,
                    },
                    info,
                )
            })
            .unzip();
        outputs.push(Output::Send {
            to,
            msg: ServerMessage::StreamUpdate {
                room_id,
                update_type: UpdateType::Delete,
                streams,
                reasons,
            },
        });
    }

    // ── keepalive and tokens ────────────────────────────────────────────────────────────────────────────────

    /// Any request proves the session is alive.
    pub fn touch(&mut self, id: SessionId, now: Now) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.last_seen = now.mono;
        }
    }

    pub fn heartbeat(&mut self, id: SessionId, req_id: u64, now: Now) -> Vec<Output> {
        self.touch(id, now);
        vec![reply(
            id,
            req_id,
            error::SUCCESS,
            Some(ReplyResult::Heartbeat {
                server_time_ms: now.unix_ms,
            }),
        )]
    }

    /// A new token for the session: same checks as at login, and it must allow every stream being published.
    pub fn renew_token(
        &mut self,
        id: SessionId,
        req_id: u64,
        token: &str,
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get(&id) else {
            return Vec::new();
        };
        let keys = &self.apps[&session.app_id].keys;
        let checked = auth::check_token(keys, token, &session.user.user_id, &session.room_id, now)
            .and_then(|t| {
                let grant = Grant::Token(t);
                for stream_id in &session.publishing {
                    grant
                        .may_publish(&session.room_id, stream_id)
                        .map_err(|_| error::ROOM_RENEWED_TOKEN_NO_PUBLISH_PRIVILEGE)?;
                }
                Ok(grant)
            });
        match checked {
            Ok(grant) => {
                let session = self.sessions.get_mut(&id).expect("present above");
                apply_grant(session, grant, now);
                let expire = session.grant.token_expire().unwrap_or(0);
                vec![reply(
                    id,
                    req_id,
                    error::SUCCESS,
                    Some(ReplyResult::RenewToken {
                        token_expire_time: expire,
                    }),
                )]
            }
            Err(code) => vec![reply(id, req_id, code, None)],
        }
    }

    /// Runs the timers due at `now`: heartbeat timeouts, token warnings and expiries, online counts.
    pub fn handle_timeout(&mut self, now: Now) -> Vec<Output> {
        let mut outputs = Vec::new();
        let timeout = self.settings.heartbeat_timeout;
        let notice = self.settings.token_expire_notice;
        let mut silent = Vec::new();
        let mut expired = Vec::new();
        let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let session = self.sessions.get_mut(&id).expect("listed");
            if now.mono.saturating_duration_since(session.last_seen) >= timeout {
                silent.push(id);
                continue;
            }
            let Some(expire_at) = session.token_expire_at else {
                continue;
            };
            if now.mono >= expire_at {
                expired.push(id);
            } else if !session.token_warned && now.mono + notice >= expire_at {
                session.token_warned = true;
                let remain = session
                    .grant
                    .token_expire()
                    .unwrap_or(0)
                    .saturating_sub(now.unix_ms / 1000);
                outputs.push(send(
                    id,
                    ServerMessage::TokenWillExpire {
                        room_id: session.room_id.clone(),
                        remain_seconds: remain.min(u32::MAX as u64) as u32,
                    },
                ));
            }
        }
        for id in silent {
            self.totals.heartbeat_timeouts += 1;
            self.remove_session(id, Removal::HeartbeatTimeout, &mut outputs);
        }
        for id in expired {
            self.totals.token_expiries += 1;
            self.remove_session(id, Removal::TokenExpired, &mut outputs);
        }

        // Streams whose media ended at the relay and were not published again in time.
        let grace = self.settings.heartbeat_timeout;
        let mut lost: Vec<(u32, String)> = Vec::new();
        for app in self.apps.values() {
            for (stream_id, stream) in &app.streams {
                if stream
                    .media_lost_at
                    .is_some_and(|at| now.mono.saturating_duration_since(at) >= grace)
                {
                    lost.push((app.keys.app_id, stream_id.clone()));
                }
            }
        }
        lost.sort();
        for (app_id, stream_id) in lost {
            tracing::info!(
                app_id,
                stream_id,
                "stream deleted: its media did not come back"
            );
            self.delete_streams(
                app_id,
                &[stream_id],
                stream_delete_reason::DISCONNECTED,
                &mut outputs,
            );
        }

        let interval = self.settings.online_count_interval;
        let mut apps: Vec<&mut App> = self.apps.values_mut().collect();
        apps.sort_unstable_by_key(|a| a.keys.app_id);
        for app in apps {
            for (room_id, room) in &mut app.rooms {
                if now.mono < room.next_online_count {
                    continue;
                }
                room.next_online_count += interval;
                if room.next_online_count <= now.mono {
                    room.next_online_count = now.mono + interval;
                }
                outputs.push(Output::Send {
                    to: room.members.iter().copied().collect(),
                    msg: ServerMessage::OnlineUserCount {
                        room_id: room_id.clone(),
                        count: room.members.len() as u32,
                    },
                });
            }
        }
        outputs
    }

    /// The relay ended a session on its own (ICE or DTLS failed, the peer went silent). Sessions the server
    /// closed or replaced are no longer known here and are ignored.
    ///
    /// A publisher gets the grace of one heartbeat timeout to publish again (the SDK restoring its media keeps
    /// the players); after it the stream is deleted with reason 5. A player's play is over: PlayStopped (5).
    pub fn relay_disconnected(&mut self, relay: RelaySessionId, now: Now) -> Vec<Output> {
        let mut outputs = Vec::new();
        for app in self.apps.values_mut() {
            for (stream_id, stream) in &mut app.streams {
                if stream.relay == Some(relay) && stream.media_lost_at.is_none() {
                    tracing::info!(
                        relay_session = relay,
                        stream_id,
                        "publisher media lost; waiting for it to return"
                    );
                    stream.media_lost_at = Some(now.mono);
                    return outputs;
                }
            }
        }
        let player = self.sessions.iter().find_map(|(id, s)| {
            s.plays
                .iter()
                .find(|(_, p)| **p == Play::Active { relay })
                .map(|(stream_id, _)| (*id, stream_id.clone()))
        });
        if let Some((session, stream_id)) = player {
            tracing::info!(
                relay_session = relay,
                session,
                stream_id,
                "player media lost"
            );
            self.end_play(session, &stream_id, &mut outputs);
            // The relay already forgot the session.
            outputs.retain(|o| *o != Output::CloseRelay(relay));
            outputs.push(send(
                session,
                ServerMessage::PlayStopped {
                    stream_id,
                    code: stream_delete_reason::DISCONNECTED,
                },
            ));
        }
        outputs
    }

    /// The relay lost a peer: nothing came from it for a few seconds after it had connected, as when its process
    /// was killed. A publisher's streams are deleted at once with reason 2, like a session whose heartbeat timed
    /// out, and their players are stopped. A player's play ends as in [`Registry::relay_disconnected`].
    pub fn relay_lost(&mut self, relay: RelaySessionId, now: Now) -> Vec<Output> {
        let published = self.apps.iter().find_map(|(&app_id, app)| {
            app.streams
                .iter()
                .find(|(_, s)| s.relay == Some(relay))
                .map(|(stream_id, _)| (app_id, stream_id.clone()))
        });
        let Some((app_id, stream_id)) = published else {
            return self.relay_disconnected(relay, now);
        };
        tracing::info!(
            relay_session = relay,
            app_id,
            stream_id,
            "stream deleted: its publisher's media is lost"
        );
        let mut outputs = Vec::new();
        self.delete_streams(
            app_id,
            &[stream_id],
            stream_delete_reason::HEARTBEAT_TIMEOUT,
            &mut outputs,
        );
        // The relay already forgot the session.
        outputs.retain(|o| *o != Output::CloseRelay(relay));
        outputs
    }

    // ── room extra info, messages ───────────────────────────────────────────────────────────────────────────

    pub fn set_room_extra_info(
        &mut self,
        id: SessionId,
        req_id: u64,
        key: &str,
        value: &str,
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::room_extra_info(key, value) {
            return vec![reply(id, req_id, code, None)];
        }
        let app = self.apps.get_mut(&session.app_id).expect("known app");
        let room = app
            .rooms
            .get_mut(&session.room_id)
            .expect("a session's room exists");
        if !room.extra_info.contains_key(key)
            && room.extra_info.len() >= limits::ROOM_EXTRA_INFO_KEYS_MAX
        {
            return vec![reply(
                id,
                req_id,
                error::ROOM_EXTRA_INFO_KEY_COUNT_EXCEEDED,
                None,
            )];
        }
        if !session.room_info_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::ROOM_RATE_LIMITED_EXTRA_INFO, None)];
        }
        let info = RoomExtraInfo {
            key: key.to_owned(),
            value: value.to_owned(),
            update_user: session.user.clone(),
            update_time_ms: now.unix_ms,
        };
        room.extra_info.insert(key.to_owned(), info.clone());
        let to: Vec<SessionId> = room.members.iter().copied().filter(|m| *m != id).collect();
        let mut outputs = vec![reply(id, req_id, error::SUCCESS, None)];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::RoomExtraInfoUpdate {
                    room_id: session.room_id.clone(),
                    infos: vec![info],
                },
            });
        }
        outputs
    }

    pub fn broadcast(
        &mut self,
        id: SessionId,
        req_id: u64,
        message: &str,
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::broadcast_message(message) {
            return vec![reply(id, req_id, code, None)];
        }
        if !session.broadcast_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::IM_BROADCAST_RATE_EXCEEDED, None)];
        }
        let app = self.apps.get_mut(&session.app_id).expect("known app");
        let room = app
            .rooms
            .get_mut(&session.room_id)
            .expect("a session's room exists");
        room.last_message_id += 1;
        let message_id = room.last_message_id;
        let to: Vec<SessionId> = room.members.iter().copied().filter(|m| *m != id).collect();
        let mut outputs = vec![reply(
            id,
            req_id,
            error::SUCCESS,
            Some(ReplyResult::BroadcastMessage { message_id }),
        )];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::BroadcastMessage {
                    room_id: session.room_id.clone(),
                    messages: vec![BroadcastMessage {
                        message_id,
                        message: message.to_owned(),
                        send_time_ms: now.unix_ms,
                        from_user: session.user.clone(),
                    }],
                },
            });
        }
        outputs
    }

    /// To the listed users of the sender's room (others are ignored), or to everyone else in it.
    pub fn custom_command(
        &mut self,
        id: SessionId,
        req_id: u64,
        command: &str,
        to_user_ids: &[String],
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::custom_command(command) {
            return vec![reply(id, req_id, code, None)];
        }
        if !session.command_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::ROOM_RATE_LIMITED_REQUEST, None)];
        }
        let app = &self.apps[&session.app_id];
        let room = &app.rooms[&session.room_id];
        let to: Vec<SessionId> = if to_user_ids.is_empty() {
            room.members.iter().copied().filter(|m| *m != id).collect()
        } else {
            let mut to: Vec<SessionId> = to_user_ids
                .iter()
                .filter_map(|u| app.users.get(u).copied())
                .filter(|m| *m != id && room.members.contains(m))
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        };
        let mut outputs = vec![reply(id, req_id, error::SUCCESS, None)];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::CustomCommand {
                    room_id: session.room_id.clone(),
                    from_user: session.user.clone(),
                    command: command.to_owned(),
                },
            });
        }
        outputs
    }

    // ── publishing ──────────────────────────────────────────────────────────────────────────────────────────

    /// Checks a publish and reserves the stream id. A stream this session already publishes may be published
    /// again (the client restoring its media): the relay replaces the publisher and the players stay.
    pub fn prepare_publish(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        extra_info: &str,
        offer: &str,
        _now: Now,
    ) -> Prepared<PublishGrant> {
        let refuse = |code| Prepared::refused(vec![reply(id, req_id, code, None)]);
        let Some(session) = self.sessions.get(&id) else {
            return Prepared::refused(Vec::new());
        };
        if let Err(code) = validate::stream_id(stream_id) {
            return refuse(code);
        }
        if let Err(code) = validate::stream_extra_info(extra_info) {
            return refuse(code);
        }
        if offer.is_empty() || offer.len() > limits::SDP_MAX {
            return refuse(error::COMMON_INVALID_PARAMETER);
        }
        if let Err(code) = session.grant.may_publish(&session.room_id, stream_id) {
            return refuse(code);
        }
        let already_mine = session.publishing.contains(stream_id);
        if !already_mine && session.publishing.len() >= STREAMS_PER_SESSION_MAX {
            return refuse(error::PUBLISHER_CHANNEL_ALREADY_PUBLISHING);
        }
        let app_id = session.app_id;
        let room_id = session.room_id.clone();
        let user = session.user.clone();
        let attempt = self.next_attempt();
        let app = self.apps.get_mut(&app_id).expect("known app");
        match app.streams.get_mut(stream_id) {
            Some(stream) if stream.owner != id => {
                return refuse(error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED)
            }
            Some(stream) => stream.attempt = Some(attempt),
            None => {
                app.streams.insert(
                    stream_id.to_owned(),
                    Stream {
                        room_id: room_id.clone(),
                        owner: id,
                        user,
                        extra_info: extra_info.to_owned(),
                        relay: None,
                        attempt: Some(attempt),
                        players: BTreeSet::new(),
                        media_lost_at: None,
                    },
                );
                app.rooms
                    .get_mut(&room_id)
                    .expect("a session's room exists")
                    .streams
                    .insert(stream_id.to_owned());
                self.sessions
                    .get_mut(&id)
                    .expect("present above")
                    .publishing
                    .insert(stream_id.to_owned());
            }
        }
        Prepared {
            outputs: Vec::new(),
            grant: Some(PublishGrant {
                session: id,
                req_id,
                key: StreamKey {
                    app_id,
                    stream_id: stream_id.to_owned(),
                },
                attempt,
            }),
        }
    }

    /// Records the relay's answer to a publish: the publisher gets its SDP answer, the room its stream Add,
    /// and plays waiting for the stream start.
    pub fn finish_publish(
        &mut self,
        grant: PublishGrant,
        extra_info: &str,
        outcome: RelayOutcome,
    ) -> Vec<Output> {
        let mut outputs = Vec::new();
        let id = grant.session;
        let stream_id = grant.key.stream_id.as_str();
        let current = self
            .apps
            .get(&grant.key.app_id)
            .and_then(|a| a.streams.get(stream_id))
            .is_some_and(|s| s.owner == id && s.attempt == Some(grant.attempt));
        if !current {
            // The session left or stopped the stream while the relay worked.
            if let Ok((relay, _)) = outcome {
                outputs.push(Output::CloseRelay(relay));
            }
            if self.sessions.contains_key(&id) {
                outputs.push(reply(id, grant.req_id, error::PUBLISHER_INNER_ERROR, None));
            }
            return outputs;
        }
        let app = self.apps.get_mut(&grant.key.app_id).expect("checked");
        let stream = app.streams.get_mut(stream_id).expect("checked");
        stream.attempt = None;
        let (relay, answer) = match outcome {
            Ok(ok) => ok,
            Err(refusal) => {
                if !stream.is_live() {
                    let room_id = stream.room_id.clone();
                    app.streams.remove(stream_id);
                    if let Some(room) = app.rooms.get_mut(&room_id) {
                        room.streams.remove(stream_id);
                    }
                    if let Some(session) = self.sessions.get_mut(&id) {
                        session.publishing.remove(stream_id);
                    }
                }
                outputs.push(send(
                    id,
                    ServerMessage::Reply {
                        req_id: grant.req_id,
                        code: refusal.code,
                        message: refusal.message,
                        result: None,
                    },
                ));
                return outputs;
            }
        };
        let was_live = stream.relay.replace(relay).is_some();
        stream.media_lost_at = None;
        let extra_changed = stream.extra_info != extra_info;
        stream.extra_info = extra_info.to_owned();
        let info = stream.info(stream_id);
        let room_id = stream.room_id.clone();
        outputs.push(reply(
            id,
            grant.req_id,
            error::SUCCESS,
            Some(ReplyResult::Publish { sdp: answer }),
        ));
        let others: Vec<SessionId> = app
            .rooms
            .get(&room_id)
            .map(|r| r.members.iter().copied().filter(|m| *m != id).collect())
            .unwrap_or_default();
        if was_live {
            tracing::info!(session = id, stream_id, "stream publisher replaced");
            if extra_changed && !others.is_empty() {
                outputs.push(Output::Send {
                    to: others,
                    msg: ServerMessage::StreamExtraInfoUpdate {
                        room_id,
                        streams: vec![info],
                    },
                });
            }
            return outputs;
        }
        tracing::info!(
            session = id,
            app_id = grant.key.app_id,
            stream_id,
            "stream published"
        );
        if !others.is_empty() {
            outputs.push(Output::Send {
                to: others,
                msg: ServerMessage::StreamUpdate {
                    room_id,
                    update_type: UpdateType::Add,
                    streams: vec![info],
                    reasons: Vec::new(),
                },
            });
        }
        self.start_waiting_plays(&grant.key, &mut outputs);
        outputs
    }

    /// Turns the plays waiting for a stream that just appeared into starting plays.
    fn start_waiting_plays(&mut self, key: &StreamKey, outputs: &mut Vec<Output>) {
        let Some(waiters) = self
            .apps
            .get_mut(&key.app_id)
            .and_then(|a| a.waiting.remove(&key.stream_id))
        else {
            return;
        };
        for waiter in waiters {
            let attempt = self.next_attempt();
            let Some(session) = self.sessions.get_mut(&waiter) else {
                continue;
            };
            let Some(play) = session.plays.get_mut(&key.stream_id) else {
                continue;
            };
            let Play::Waiting { offer } = std::mem::replace(
                play,
                Play::Starting {
                    attempt,
                    direct: false,
                },
            ) else {
                continue;
            };
            if let Some(stream) = self
                .apps
                .get_mut(&key.app_id)
                .and_then(|a| a.streams.get_mut(&key.stream_id))
            {
                stream.players.insert(waiter);
            }
            outputs.push(Output::StartPlay(PlayGrant {
                session: waiter,
                req_id: None,
                key: key.clone(),
                offer,
                attempt,
            }));
        }
    }

    pub fn stop_publish(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        _now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::stream_id(stream_id) {
            return vec![reply(id, req_id, code, None)];
        }
        let mut outputs = Vec::new();
        if !session.publishing.contains(stream_id) {
            // Stopping what is not published is not an error: the end state is the one asked for.
            outputs.push(reply(id, req_id, error::SUCCESS, None));
            return outputs;
        }
        let app_id = session.app_id;
        outputs.push(reply(id, req_id, error::SUCCESS, None));
        self.delete_streams(
            app_id,
            &[stream_id.to_owned()],
            stream_delete_reason::STOPPED,
            &mut outputs,
        );
        tracing::info!(session = id, stream_id, "stream stopped");
        outputs
    }

    pub fn set_stream_extra_info(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        extra_info: &str,
        _now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get(&id) else {
            return Vec::new();
        };
        if let Err(code) =
            validate::stream_id(stream_id).and_then(|_| validate::stream_extra_info(extra_info))
        {
            return vec![reply(id, req_id, code, None)];
        }
        let app = self.apps.get_mut(&session.app_id).expect("known app");
        let Some(stream) = app
            .streams
            .get_mut(stream_id)
            .filter(|s| s.owner == id && s.is_live())
        else {
            return vec![reply(
                id,
                req_id,
                error::PUBLISHER_UPDATE_EXTRA_INFO_FAILED,
                None,
            )];
        };
        stream.extra_info = extra_info.to_owned();
        let info = stream.info(stream_id);
        let room = &app.rooms[&session.room_id];
        let to: Vec<SessionId> = room.members.iter().copied().filter(|m| *m != id).collect();
        let mut outputs = vec![reply(id, req_id, error::SUCCESS, None)];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::StreamExtraInfoUpdate {
                    room_id: session.room_id.clone(),
                    streams: vec![info],
                },
            });
        }
        outputs
    }

    // ── playing ─────────────────────────────────────────────────────────────────────────────────────────────

    /// Checks a play. A live stream (of any room of the app) is granted; a missing one is refused with 1004002,
    /// or with `wait` the offer is kept and the reply says `waiting`. Playing a stream again replaces the play.
    pub fn prepare_play(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        offer: &str,
        wait: bool,
        _now: Now,
    ) -> Prepared<PlayGrant> {
        let refuse = |code| Prepared::refused(vec![reply(id, req_id, code, None)]);
        let Some(session) = self.sessions.get(&id) else {
            return Prepared::refused(Vec::new());
        };
        if let Err(code) = validate::stream_id(stream_id) {
            return refuse(code);
        }
        if offer.is_empty() || offer.len() > limits::SDP_MAX {
            return refuse(error::COMMON_INVALID_PARAMETER);
        }
        if !session.plays.contains_key(stream_id) && session.plays.len() >= PLAYS_PER_SESSION_MAX {
            return refuse(error::PLAYER_PLAY_FAILED);
        }
        let app_id = session.app_id;
        let mut outputs = Vec::new();
        self.end_play(id, stream_id, &mut outputs);

        let attempt = self.next_attempt();
        let app = self.apps.get_mut(&app_id).expect("known app");
        let session = self.sessions.get_mut(&id).expect("present above");
        match app.streams.get_mut(stream_id).filter(|s| s.is_live()) {
            Some(stream) => {
                stream.players.insert(id);
                session.plays.insert(
                    stream_id.to_owned(),
                    Play::Starting {
                        attempt,
                        direct: true,
                    },
                );
                Prepared {
                    // Closing a play this one replaces.
                    outputs,
                    grant: Some(PlayGrant {
                        session: id,
                        req_id: Some(req_id),
                        key: StreamKey {
                            app_id,
                            stream_id: stream_id.to_owned(),
                        },
                        offer: offer.to_owned(),
                        attempt,
                    }),
                }
            }
            None if wait => {
                session.plays.insert(
                    stream_id.to_owned(),
                    Play::Waiting {
                        offer: offer.to_owned(),
                    },
                );
                app.waiting
                    .entry(stream_id.to_owned())
                    .or_default()
                    .insert(id);
                outputs.push(reply(
                    id,
                    req_id,
                    error::PLAYER_STREAM_NOT_EXIST,
                    Some(ReplyResult::Play {
                        sdp: None,
                        waiting: true,
                    }),
                ));
                Prepared::refused(outputs)
            }
            None => {
                outputs.push(reply(id, req_id, error::PLAYER_STREAM_NOT_EXIST, None));
                Prepared::refused(outputs)
            }
        }
    }

    /// Records the relay's answer to a play: a reply for a direct play, [`ServerMessage::PlayStarted`] for one
    /// that waited (or [`ServerMessage::PlayStopped`] if the relay refused it).
    pub fn finish_play(&mut self, grant: PlayGrant, outcome: RelayOutcome) -> Vec<Output> {
        let mut outputs = Vec::new();
        let id = grant.session;
        let stream_id = grant.key.stream_id.as_str();
        let current = self
            .sessions
            .get(&id)
            .and_then(|s| s.plays.get(stream_id))
            .is_some_and(
                |p| matches!(p, Play::Starting { attempt, .. } if *attempt == grant.attempt),
            );
        if !current {
            // The play was stopped, replaced, or its stream or session went away meanwhile. A waited play was
            // told by whoever ended it; a direct play still owes its request a reply.
            if let Ok((relay, _)) = outcome {
                outputs.push(Output::CloseRelay(relay));
            }
            if let (Some(req_id), true) = (grant.req_id, self.sessions.contains_key(&id)) {
                outputs.push(reply(id, req_id, error::PLAYER_STREAM_NOT_EXIST, None));
            }
            return outputs;
        }
        let session = self.sessions.get_mut(&id).expect("checked");
        match outcome {
            Ok((relay, answer)) => {
                session
                    .plays
                    .insert(stream_id.to_owned(), Play::Active { relay });
                tracing::info!(
                    session = id,
                    app_id = grant.key.app_id,
                    stream_id,
                    "play started"
                );
                outputs.push(match grant.req_id {
                    Some(req_id) => reply(
                        id,
                        req_id,
                        error::SUCCESS,
                        Some(ReplyResult::Play {
                            sdp: Some(answer),
                            waiting: false,
                        }),
                    ),
                    None => send(
                        id,
                        ServerMessage::PlayStarted {
                            stream_id: stream_id.to_owned(),
                            sdp: answer,
                        },
                    ),
                });
            }
            Err(refusal) => {
                session.plays.remove(stream_id);
                if let Some(stream) = self
                    .apps
                    .get_mut(&grant.key.app_id)
                    .and_then(|a| a.streams.get_mut(stream_id))
                {
                    stream.players.remove(&id);
                }
                tracing::warn!(session = id, stream_id, code = refusal.code, reason = %refusal.message, "play refused by the relay");
                outputs.push(match grant.req_id {
                    Some(req_id) => send(
                        id,
                        ServerMessage::Reply {
                            req_id,
                            code: refusal.code,
                            message: refusal.message,
                            result: None,
                        },
                    ),
                    None => send(
                        id,
                        ServerMessage::PlayStopped {
                            stream_id: stream_id.to_owned(),
                            code: stream_delete_reason::REMOVED_BY_SERVER,
                        },
                    ),
                });
            }
        }
        outputs
    }

    pub fn stop_play(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        _now: Now,
    ) -> Vec<Output> {
        if !self.sessions.contains_key(&id) {
            return Vec::new();
        }
        if let Err(code) = validate::stream_id(stream_id) {
            return vec![reply(id, req_id, code, None)];
        }
        let mut outputs = Vec::new();
        let code = if self.end_play(id, stream_id, &mut outputs) {
            error::SUCCESS
        } else {
            error::PLAYER_STREAM_NOT_PLAYED
        };
        outputs.push(reply(id, req_id, code, None));
        outputs
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

#[cfg(test)]
mod tests;
