//! The session task: first login, serving a connection (events, heartbeats, replies), reconnecting.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::message::{
    ClientMessage, Credentials, ReplyResult, RoomExtraInfo, ServerMessage, StreamInfo, User,
};
use zego_protocol::{signature, PROTOCOL_VERSION};

use super::backoff::Backoff;
use super::connection::{Connection, ConnectionError, Incoming};
use super::events::{self, room_state};
use super::snapshot::{reason_for_gone, RoomSnapshot};
use super::{Phase, Reply, RoomSession, SessionNotice};
use crate::config::RoomStateChangedReason;
use crate::event::Event;

/// What a login reply told us.
struct LoggedIn {
    session_id: String,
    heartbeat_interval: Duration,
    heartbeat_timeout: Duration,
    users: Vec<User>,
    streams: Vec<StreamInfo>,
    room_extra_info: Vec<RoomExtraInfo>,
    online_count: u32,
    /// The position of the login reply among the messages of this session.
    seq: u64,
}

enum LoginError {
    /// The server answered with this code: retrying the same login will not help.
    Refused(ErrorCode),
    /// Connected, but no reply within the login timeout.
    Timeout,
    Connect(ConnectionError),
    /// The app logged out during the attempt. `sent`: the Login was on the wire, and a Logout followed it.
    Stopped {
        sent: bool,
    },
}

/// How serving a connection ended.
enum End {
    LoggedOut,
    Kicked(ErrorCode),
    Broken,
}

/// Refusals worth retrying while reconnecting: the server is busy, not saying no.
fn transient(code: ErrorCode) -> bool {
    matches!(
        code,
        error::ROOM_RATE_LIMITED_LOGIN | error::ROOM_INNER_ERROR
    )
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RoomSession {
    pub(super) async fn run(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        // Counts every server message of this session, so notices and replies can be ordered.
        let mut seq = 0u64;
        let (mut conn, mut login) = match self.first_login(&mut seq, &mut stop).await {
            Ok(Some(ok)) => ok,
            Ok(None) => {
                self.phase.send_replace(Phase::Ended);
                return;
            }
            Err(code) => {
                tracing::warn!(room_id = %self.params.room_id, code, "login failed");
                self.end(RoomStateChangedReason::LoginFailed, code);
                return;
            }
        };
        tracing::info!(room_id = %self.params.room_id, user_id = %self.params.user.user_id, "logged in");
        let me = self.params.user.user_id.clone();
        let mut snapshot =
            RoomSnapshot::from_login(&me, &login.users, &login.streams, &login.room_extra_info);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.link_up(tx, false);
        let mut first_events: Vec<Event> =
            room_state(&self.params.room_id, RoomStateChangedReason::Logined, 0).into();
        first_events.extend(snapshot.first_events(
            &self.params.room_id,
            self.params.config.is_user_status_notify,
        ));
        first_events.push(Event::RoomOnlineUserCountUpdate {
            room_id: self.params.room_id.clone(),
            count: login.online_count,
        });
        self.emit(first_events);
        self.phase.send_replace(Phase::Up);
        self.notify(
            login.seq,
            SessionNotice::Connected {
                reconnect: false,
                resumed: false,
                streams: login.streams.clone(),
            },
        );

        loop {
            match self
                .serve(&mut conn, &mut rx, &login, &mut snapshot, &mut seq)
                .await
            {
                End::LoggedOut => {
                    self.link_down();
                    conn.close().await;
                    break;
                }
                End::Kicked(code) => {
                    tracing::warn!(room_id = %self.params.room_id, code, "kicked out");
                    self.link_down();
                    conn.close().await;
                    self.end(RoomStateChangedReason::KickOut, code);
                    return;
                }
                End::Broken => {
                    self.link_down();
                    self.phase.send_replace(Phase::Down);
                    self.emit(room_state(
                        &self.params.room_id,
                        RoomStateChangedReason::Reconnecting,
                        error::ROOM_CONNECTION_BROKEN_RETRYING,
                    ));
                    let reconnected = self.reconnect(&login.session_id, &mut seq, &mut stop).await;
                    let (new_conn, new_login) = match reconnected {
                        Ok(Some(ok)) => ok,
                        Ok(None) => break,
                        Err(code) => {
                            tracing::warn!(room_id = %self.params.room_id, code, "reconnecting failed");
                            self.end(RoomStateChangedReason::ReconnectFailed, code);
                            return;
                        }
                    };
                    let resumed = new_login.session_id == login.session_id;
                    tracing::info!(room_id = %self.params.room_id, resumed, "reconnected");
                    let next = RoomSnapshot::from_login(
                        &me,
                        &new_login.users,
                        &new_login.streams,
                        &new_login.room_extra_info,
                    );
                    let mut changes: Vec<Event> =
                        room_state(&self.params.room_id, RoomStateChangedReason::Reconnected, 0)
                            .into();
                    changes.extend(snapshot.diff(
                        &next,
                        &self.params.room_id,
                        self.params.config.is_user_status_notify,
                        reason_for_gone(resumed),
                    ));
                    snapshot = next;
                    let (tx, new_rx) = mpsc::unbounded_channel();
                    rx = new_rx;
                    self.link_up(tx, resumed);
                    self.emit(changes);
                    self.phase.send_replace(Phase::Up);
                    self.notify(
                        new_login.seq,
                        SessionNotice::Connected {
                            reconnect: true,
                            resumed,
                            streams: new_login.streams.clone(),
                        },
                    );
                    conn = new_conn;
                    login = new_login;
                }
            }
        }
        self.phase.send_replace(Phase::Ended);
    }

    /// The session ended on its own: last room events, the notice, and the end phase.
    /// The engine learns of the end before the app does, so an app reacting to the event (logging in again)
    /// finds the room gone.
    fn end(&self, reason: RoomStateChangedReason, code: ErrorCode) {
        self.link_down();
        *self.ended_with.lock() = Some(code);
        self.phase.send_replace(Phase::Ended);
        self.close_with(room_state(&self.params.room_id, reason, code));
        self.notify(0, SessionNotice::Ended { code });
    }

    /// The first login; `None` when the app logged out meanwhile (the server was told, if it had heard the login).
    async fn first_login(
        &self,
        seq: &mut u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<(Connection, LoggedIn)>, ErrorCode> {
        let timing = self.params.timing;
        let mut backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .connect_and_login(
                    None,
                    timing.connect_timeout,
                    timing.login_timeout,
                    seq,
                    stop,
                )
                .await
            {
                Ok(ok) => return Ok(Some(ok)),
                Err(LoginError::Stopped { .. }) => return Ok(None),
                Err(LoginError::Refused(code)) => return Err(code),
                Err(LoginError::Timeout) => return Err(error::ROOM_LOGIN_TIMEOUT),
                Err(LoginError::Connect(e)) => {
                    tracing::debug!(attempt, error = %e, server = %self.params.servers.current(), "connecting failed");
                    self.params.servers.advance();
                    if attempt >= timing.connect_attempts {
                        return Err(error::ROOM_CONNECT_FAILED);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = stopped(stop) => return Ok(None),
                    }
                }
            }
        }
    }

    /// Retries with backoff until a login succeeds or the reconnect window closes. `None` when the app logged
    /// out meanwhile: the session the server keeps for a resume is ended too, when the server can be reached.
    async fn reconnect(
        &self,
        session_id: &str,
        seq: &mut u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<(Connection, LoggedIn)>, ErrorCode> {
        let timing = self.params.timing;
        let deadline = Instant::now() + timing.reconnect_window;
        let mut backoff = Backoff::default();
        loop {
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(error::ROOM_RECONNECT_RETRY_TIMEOUT);
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(stop) => {
                    self.resume_and_leave(session_id).await;
                    return Ok(None);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = self.connect_and_login(
                Some(session_id),
                timing.connect_timeout.min(left),
                timing.login_timeout.min(left),
                seq,
                stop,
            );
            match attempt.await {
                Ok(ok) => return Ok(Some(ok)),
                Err(LoginError::Stopped { sent }) => {
                    if !sent {
                        self.resume_and_leave(session_id).await;
                    }
                    return Ok(None);
                }
                Err(LoginError::Refused(code)) if !transient(code) => return Err(code),
                Err(LoginError::Refused(code)) => {
                    tracing::debug!(code, "reconnect refused for now")
                }
                Err(LoginError::Timeout) => {
                    tracing::debug!(server = %self.params.servers.current(), "reconnect login timed out");
                    self.params.servers.advance();
                }
                Err(LoginError::Connect(e)) => {
                    tracing::debug!(error = %e, server = %self.params.servers.current(), "reconnect failed");
                    self.params.servers.advance();
                }
            }
        }
    }

    fn credentials(&self) -> Credentials {
        let token = self.token.lock().clone();
        if !token.is_empty() {
            return Credentials::Token { token };
        }
        let app_sign = self.params.app_sign.unwrap_or_default();
        let timestamp_ms = unix_ms();
        let nonce = format!("{:032x}", rand::random::<u128>());
        let signature = signature::sign(
            &app_sign,
            self.params.app_id,
            &self.params.user.user_id,
            &self.params.room_id,
            timestamp_ms,
            &nonce,
        );
        Credentials::AppSign {
            timestamp_ms,
            nonce,
            signature,
        }
    }

    fn login_message(&self, req_id: u64, resume_session: Option<&str>) -> ClientMessage {
        ClientMessage::Login {
            req_id,
            protocol_version: PROTOCOL_VERSION,
            app_id: self.params.app_id,
            room_id: self.params.room_id.clone(),
            user: self.params.user.clone(),
            credentials: self.credentials(),
            is_user_status_notify: self.params.config.is_user_status_notify,
            max_member_count: self.params.config.max_member_count,
            resume_session: resume_session.map(str::to_owned),
        }
    }

    /// Connects and logs in. A logout before the connection is up drops it (the server has heard nothing); a
    /// logout once the Login is on the wire sends Logout right behind it, so the server never keeps a session
    /// whose client has left.
    async fn connect_and_login(
        &self,
        resume_session: Option<&str>,
        connect_timeout: Duration,
        login_timeout: Duration,
        seq: &mut u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(Connection, LoggedIn), LoginError> {
        let mut conn = tokio::select! {
            conn = Connection::connect(self.params.servers.current(), connect_timeout) => {
                conn.map_err(LoginError::Connect)?
            }
            _ = stopped(stop) => return Err(LoginError::Stopped { sent: false }),
        };
        let req_id = self.next_req_id();
        let login = self.login_message(req_id, resume_session);
        conn.send(&login).await.map_err(LoginError::Connect)?;
        let reply = tokio::time::timeout(login_timeout, async {
            loop {
                let incoming = tokio::select! {
                    biased;
                    _ = stopped(stop) => return Ok(None),
                    incoming = conn.recv() => incoming?,
                };
                if let Incoming::Message(msg) = incoming {
                    *seq += 1;
                    match msg {
                        ServerMessage::Reply {
                            req_id: id,
                            code,
                            result,
                            ..
                        } if id == req_id => {
                            return Ok::<_, ConnectionError>(Some((code, result)));
                        }
                        other => tracing::debug!(?other, "message before the login reply ignored"),
                    }
                }
            }
        })
        .await;
        let reply = match reply {
            Ok(Ok(Some(reply))) => reply,
            Ok(Ok(None)) => {
                leave(conn, self.next_req_id(), self.params.timing.logout_timeout).await;
                return Err(LoginError::Stopped { sent: true });
            }
            Ok(Err(e)) => return Err(LoginError::Connect(e)),
            Err(_) => {
                if resume_session.is_none() {
                    // The login fails; a reply that is merely late must not leave a session behind.
                    let timeout = self.params.timing.logout_timeout;
                    tokio::spawn(leave(conn, self.next_req_id(), timeout));
                }
                return Err(LoginError::Timeout);
            }
        };
        match reply {
            (
                error::SUCCESS,
                Some(ReplyResult::Login {
                    session_id,
                    heartbeat_interval_ms,
                    heartbeat_timeout_ms,
                    users,
                    streams,
                    room_extra_info,
                    online_count,
                    ..
                }),
            ) => Ok((
                conn,
                LoggedIn {
                    session_id,
                    heartbeat_interval: Duration::from_millis(heartbeat_interval_ms.max(100)),
                    heartbeat_timeout: Duration::from_millis(heartbeat_timeout_ms.max(200)),
                    users,
                    streams,
                    room_extra_info,
                    online_count,
                    seq: *seq,
                },
            )),
            (error::SUCCESS, _) => Err(LoginError::Refused(error::ROOM_INNER_ERROR)),
            (code, _) => Err(LoginError::Refused(code)),
        }
    }

    /// A logout while reconnecting: the server may still keep the session for a resume, so resume it and log out
    /// at once. Bounded by the logout timeout; an unreachable server ends the session itself by heartbeat timeout.
    async fn resume_and_leave(&self, session_id: &str) {
        let timeout = self.params.timing.logout_timeout;
        let attempt = async {
            let Ok(mut conn) = Connection::connect(self.params.servers.current(), timeout).await
            else {
                return;
            };
            let login = self.login_message(self.next_req_id(), Some(session_id));
            if conn.send(&login).await.is_ok() {
                leave(conn, self.next_req_id(), timeout).await;
            }
        };
        let _ = tokio::time::timeout(timeout, attempt).await;
    }

    /// Runs one connection until it breaks, the session is kicked, or a logout completes.
    async fn serve(
        &self,
        conn: &mut Connection,
        outgoing: &mut mpsc::UnboundedReceiver<ClientMessage>,
        login: &LoggedIn,
        snapshot: &mut RoomSnapshot,
        seq: &mut u64,
    ) -> End {
        let interval = login.heartbeat_interval;
        // Silence for two heartbeats (and a margin) means the path is dead even if the socket has not said so;
        // never wait longer than the server itself would.
        let liveness = (interval * 2 + Duration::from_secs(1)).min(login.heartbeat_timeout);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut stop = self.stop.subscribe();
        let mut logout: Option<(u64, Instant)> = None;
        loop {
            let logout_deadline = logout.map(|(_, deadline)| deadline);
            tokio::select! {
                biased;
                Some(msg) = outgoing.recv() => {
                    if let Err(e) = conn.send(&msg).await {
                        tracing::warn!(error = %e, "signaling send failed");
                        return if logout.is_some() { End::LoggedOut } else { End::Broken };
                    }
                }
                incoming = conn.recv() => {
                    let msg = match incoming {
                        Ok(Incoming::Message(msg)) => msg,
                        Ok(Incoming::Other) => {
                            last_heard = Instant::now();
                            continue;
                        }
                        Err(e) => {
                            if logout.is_some() {
                                return End::LoggedOut;
                            }
                            tracing::warn!(error = %e, room_id = %self.params.room_id, "signaling connection broke");
                            return End::Broken;
                        }
                    };
                    last_heard = Instant::now();
                    *seq += 1;
                    if let (Some((logout_req, _)), ServerMessage::Reply { req_id, .. }) = (logout, &msg) {
                        if *req_id == logout_req {
                            return End::LoggedOut;
                        }
                    }
                    if let Some(end) = self.handle(msg, snapshot, *seq) {
                        return end;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > liveness {
                        tracing::warn!(silent_ms = last_heard.elapsed().as_millis() as u64, "server went silent");
                        return End::Broken;
                    }
                    let req_id = self.next_req_id();
                    if conn.send(&ClientMessage::Heartbeat { req_id }).await.is_err() {
                        return End::Broken;
                    }
                }
                _ = stopped(&mut stop), if logout.is_none() => {
                    let req_id = self.next_req_id();
                    if conn.send(&ClientMessage::Logout { req_id }).await.is_err() {
                        return End::LoggedOut;
                    }
                    logout = Some((req_id, Instant::now() + self.params.timing.logout_timeout));
                }
                _ = tokio::time::sleep_until(logout_deadline.unwrap_or_else(Instant::now)), if logout.is_some() => {
                    tracing::debug!("no logout reply in time");
                    return End::LoggedOut;
                }
            }
        }
    }

    /// One server message: replies to their waiters, events to the app, notices to the engine.
    fn handle(&self, msg: ServerMessage, snapshot: &mut RoomSnapshot, seq: u64) -> Option<End> {
        let room_id = self.params.room_id.as_str();
        let me = self.params.user.user_id.as_str();
        match msg {
            ServerMessage::Reply {
                req_id,
                code,
                message,
                result,
            } => {
                self.deliver_reply(
                    req_id,
                    Reply {
                        code,
                        message,
                        result,
                        seq,
                    },
                );
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(code, %message, "the server could not read a request");
                self.emit([Event::DebugError {
                    code,
                    func_name: "signaling".into(),
                    info: message,
                }]);
            }
            ServerMessage::UserUpdate {
                update_type, users, ..
            } => {
                let users = snapshot.apply_users(me, update_type, users);
                if self.params.config.is_user_status_notify && !users.is_empty() {
                    self.emit([Event::RoomUserUpdate {
                        room_id: room_id.to_owned(),
                        update_type,
                        users,
                    }]);
                }
            }
            ServerMessage::StreamUpdate {
                update_type,
                streams,
                reasons,
                ..
            } => {
                let streams = snapshot.apply_streams(me, update_type, streams);
                if !streams.is_empty() {
                    self.emit([events::stream_update(
                        room_id,
                        update_type,
                        streams,
                        &reasons,
                    )]);
                }
            }
            ServerMessage::StreamExtraInfoUpdate { streams, .. } => {
                let streams = snapshot.apply_stream_extra_info(me, streams);
                if !streams.is_empty() {
                    self.emit([Event::RoomStreamExtraInfoUpdate {
                        room_id: room_id.to_owned(),
                        streams,
                    }]);
                }
            }
            ServerMessage::RoomExtraInfoUpdate { infos, .. } => {
                snapshot.apply_room_extra_info(&infos);
                self.emit([Event::RoomExtraInfoUpdate {
                    room_id: room_id.to_owned(),
                    infos,
                }]);
            }
            ServerMessage::BroadcastMessage { messages, .. } => {
                self.emit([Event::ImRecvBroadcastMessage {
                    room_id: room_id.to_owned(),
                    messages,
                }]);
            }
            ServerMessage::CustomCommand {
                from_user, command, ..
            } => {
                self.emit([Event::ImRecvCustomCommand {
                    room_id: room_id.to_owned(),
                    from_user,
                    command,
                }]);
            }
            ServerMessage::OnlineUserCount { count, .. } => {
                self.emit([Event::RoomOnlineUserCountUpdate {
                    room_id: room_id.to_owned(),
                    count,
                }]);
            }
            ServerMessage::TokenWillExpire { remain_seconds, .. } => {
                self.emit([Event::RoomTokenWillExpire {
                    room_id: room_id.to_owned(),
                    remain_seconds,
                }]);
            }
            ServerMessage::Kicked { code, .. } => return Some(End::Kicked(code)),
            ServerMessage::PlayStarted { stream_id, sdp } => {
                self.notify(seq, SessionNotice::PlayStarted { stream_id, sdp });
            }
            ServerMessage::PlayStopped { stream_id, code } => {
                self.notify(seq, SessionNotice::PlayStopped { stream_id, code });
            }
        }
        None
    }
}

/// Resolves once logout was asked for. (The watch guard stays inside, so the caller's future remains `Send`.)
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Logs out on a connection whose Login was sent, whether or not its reply came: the server handles the messages
/// of a connection in order, so the Logout ends whatever the Login started. Bounded by `timeout`.
async fn leave(mut conn: Connection, req_id: u64, timeout: Duration) {
    if conn.send(&ClientMessage::Logout { req_id }).await.is_ok() {
        let replied = async {
            loop {
                match conn.recv().await {
                    Ok(Incoming::Message(ServerMessage::Reply { req_id: id, .. }))
                        if id == req_id =>
                    {
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        };
        if tokio::time::timeout(timeout, replied).await.is_err() {
            tracing::debug!("no logout reply in time");
        }
    }
    conn.close().await;
}
