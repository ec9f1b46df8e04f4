//! The relay's I/O thread: owns the UDP socket and every session, demultiplexes datagrams, forwards media.
//!
//! It runs a current-thread tokio runtime of its own so it can wait on the socket, the command channel and the next
//! str0m timeout at once. Each wake-up reads a batch of datagrams, feeds each to its session, writes the media of
//! publishers into their players' send streams, then lets every player that got media transmit it.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::MediaKind;
use str0m::net::DatagramRecv;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::counters::Counters;
use crate::fec::MediaPacket;
use crate::h264;
use crate::input_log::InputLog;
use crate::route::Route;
use crate::session::{self, RoleKind, RtcEnv, Session, SessionOutput};
use crate::thread_cpu::ThreadCpuClock;
use crate::{RelayError, RelayEvent, RelayOptions, SessionId, StreamKey};

type Reply = oneshot::Sender<Result<(SessionId, String), RelayError>>;

pub(crate) enum Command {
    Publish {
        key: StreamKey,
        offer: String,
        reply: Reply,
    },
    Play {
        key: StreamKey,
        offer: String,
        reply: Reply,
    },
    Close(SessionId),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Datagrams read per wake-up before players transmit: batching lets one str0m timeout per player send a burst.
const RECV_BATCH: usize = 64;
/// Larger than any datagram a WebRTC peer sends; anything bigger is garbage anyway.
const RECV_BUFFER: usize = 4096;
/// Datagrams kept while the socket's send buffer is full; beyond this the oldest are dropped.
const MAX_SEND_BACKLOG: usize = 8192;
/// Housekeeping (connect/idle timeouts, keyframe retries) runs at least this often.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(100);
/// Dropped datagrams are logged at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) fn run_thread(
    io_loop: IoLoop,
    socket: std::net::UdpSocket,
    cpu_clock: ThreadCpuClock,
    ready: oneshot::Sender<io::Result<()>>,
) {
    cpu_clock.register_current_thread();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let socket = match UdpSocket::from_std(socket) {
            Ok(socket) => socket,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        io_loop.run(SocketOutbox::new(socket)).await;
    });
    cpu_clock.unregister();
    tracing::info!("media relay stopped");
}

pub(crate) struct IoLoop {
    local_addr: SocketAddr,
    options: RelayOptions,
    env: RtcEnv,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<RelayEvent>,
    counters: Arc<Counters>,
    sessions: HashMap<SessionId, Session>,
    /// Which session a remote address belongs to, learnt when a session first accepted a datagram from it.
    by_addr: HashMap<SocketAddr, SessionId>,
    routes: HashMap<u64, Route>,
    route_ids: HashMap<StreamKey, u64>,
    next_session_id: SessionId,
    next_route_id: u64,
    /// Outputs of sessions waiting to be acted on.
    outputs: Vec<(SessionId, SessionOutput)>,
    /// Players that got media since they were last driven.
    dirty: Vec<SessionId>,
    drop_log: DropLog,
    /// The WebRTC stack's warnings about what peers send, counted instead of logged each.
    input_log: InputLog,
}

enum Flow {
    Continue,
    Stop,
}

impl IoLoop {
    pub fn new(
        local_addr: SocketAddr,
        announced: SocketAddr,
        options: RelayOptions,
        commands: mpsc::UnboundedReceiver<Command>,
        events: broadcast::Sender<RelayEvent>,
        counters: Arc<Counters>,
    ) -> Result<Self, String> {
        Ok(IoLoop {
            local_addr,
            options,
            env: RtcEnv::new(announced)?,
            commands,
            events,
            counters,
            sessions: HashMap::new(),
            by_addr: HashMap::new(),
            routes: HashMap::new(),
            route_ids: HashMap::new(),
            next_session_id: 1,
            next_route_id: 1,
            outputs: Vec::new(),
            dirty: Vec::new(),
            drop_log: DropLog::default(),
            input_log: InputLog::new(DROP_LOG_INTERVAL),
        })
    }

    async fn run(mut self, mut outbox: SocketOutbox) {
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut last_maintenance = Instant::now();
        loop {
            // Commands first, so a stream of media never starves signaling.
            while let Ok(command) = self.commands.try_recv() {
                if let Flow::Stop = self.on_command(command, &mut outbox) {
                    return;
                }
            }

            let mut received = 0;
            while received < RECV_BATCH {
                match outbox.socket.try_recv_from(&mut buf) {
                    Ok((len, source)) => {
                        received += 1;
                        self.on_datagram(&buf[..len], source, Instant::now(), &mut outbox);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!("receive failed: {e}");
                        break;
                    }
                }
            }

            let now = Instant::now();
            self.transmit_dirty(now, &mut outbox);
            self.drive_timeouts(now, &mut outbox);
            if now >= last_maintenance + MAINTENANCE_INTERVAL {
                last_maintenance = now;
                self.maintain(now, &mut outbox);
            }
            outbox.flush();

            if received == RECV_BATCH {
                // More is waiting: read on before sleeping.
                continue;
            }

            let deadline = self
                .next_deadline(now)
                .min(last_maintenance + MAINTENANCE_INTERVAL);
            let backlog = !outbox.backlog.is_empty();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if let Flow::Stop = self.on_command(command, &mut outbox) {
                            return;
                        }
                    }
                    None => {
                        // Every handle is gone: nobody can use the relay any more.
                        self.close_all(&mut outbox);
                        return;
                    }
                },
                _ = outbox.socket.readable() => {}
                _ = outbox.socket.writable(), if backlog => {}
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    fn on_command(&mut self, command: Command, outbox: &mut SocketOutbox) -> Flow {
        let now = Instant::now();
        match command {
            Command::Publish { key, offer, reply } => {
                let result = self.publish(key, &offer, now, outbox);
                let _ = reply.send(result);
            }
            Command::Play { key, offer, reply } => {
                let result = self.play(key, &offer, now, outbox);
                let _ = reply.send(result);
            }
            Command::Close(id) => self.remove_session(id, "closed by the server", true, outbox),
            Command::Shutdown { reply } => {
                self.close_all(outbox);
                let _ = reply.send(());
                return Flow::Stop;
            }
        }
        self.act_on_outputs(now, outbox);
        Flow::Continue
    }

    fn publish(
        &mut self,
        key: StreamKey,
        offer: &str,
        now: Instant,
        outbox: &mut SocketOutbox,
    ) -> Result<(SessionId, String), RelayError> {
        let id = self.next_session_id;
        let (mut session, answer) =
            Session::accept(id, RoleKind::Publisher, offer, &self.env, now)?;
        self.next_session_id += 1;

        let previous = self
            .route_ids
            .get(&key)
            .and_then(|r| self.routes.get(r))
            .and_then(|r| r.publisher);
        if let Some(previous) = previous {
            // The same stream from a new peer connection: the old one is over.
            tracing::info!(
                session = previous,
                replaced_by = id,
                ?key,
                "publisher replaced"
            );
            self.remove_session(previous, "replaced by a new publisher", true, outbox);
        }
        // Looked up after the old publisher is gone: a route nobody plays goes with its publisher.
        let route_id = self.route_id(&key);
        session.route = route_id;
        let route = self
            .routes
            .entry(route_id)
            .or_insert_with(|| Route::new(self.options.keyframe_request_interval));
        route.publisher = Some(id);
        for player in &route.players {
            if let Some(player) = self.sessions.get_mut(player) {
                player.restart_video();
            }
        }
        if !route.players.is_empty() {
            route.keyframes.want();
        }
        self.sessions.insert(id, session);
        self.update_gauges();
        tracing::info!(session = id, ?key, "publisher session created");
        Ok((id, answer))
    }

    fn play(
        &mut self,
        key: StreamKey,
        offer: &str,
        now: Instant,
        outbox: &mut SocketOutbox,
    ) -> Result<(SessionId, String), RelayError> {
        let route_id = *self
            .route_ids
            .get(&key)
            .ok_or(RelayError::StreamNotPublished)?;
        if self
            .routes
            .get(&route_id)
            .is_none_or(|r| r.publisher.is_none())
        {
            return Err(RelayError::StreamNotPublished);
        }
        let id = self.next_session_id;
        let (mut session, answer) = Session::accept(id, RoleKind::Player, offer, &self.env, now)?;
        self.next_session_id += 1;
        session.route = route_id;
        self.sessions.insert(id, session);
        // Asked for now, while the player connects, so that the keyframe usually arrives just after: the encoder
        // needs its next captured frame and an encode. If it passes before the player could receive it, the player
        // asks again on connecting (see `on_connected`), after the short join interval.
        if let Some(route) = self.routes.get_mut(&route_id) {
            route.players.push(id);
            route.keyframes.want_for_join();
        }
        self.serve_keyframe_request(route_id, now, outbox);
        self.update_gauges();
        tracing::info!(session = id, ?key, "player session created");
        Ok((id, answer))
    }

    fn route_id(&mut self, key: &StreamKey) -> u64 {
        if let Some(&id) = self.route_ids.get(key) {
            return id;
        }
        let id = self.next_route_id;
        self.next_route_id += 1;
        self.route_ids.insert(key.clone(), id);
        self.routes
            .insert(id, Route::new(self.options.keyframe_request_interval));
        id
    }

    fn on_datagram(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        now: Instant,
        outbox: &mut SocketOutbox,
    ) {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.drop_datagram(source, "not STUN, DTLS or RTP");
            return;
        };
        let input = session::receive_input(now, source, self.env.announced, contents);

        let known = self
            .by_addr
            .get(&source)
            .copied()
            .filter(|id| self.sessions.get(id).is_some_and(|s| s.accepts(&input)));
        let id = match known {
            Some(id) => id,
            None => {
                // A new address: STUN names its session by ICE credentials.
                let Some(session) = self
                    .sessions
                    .values_mut()
                    .find(|s| s.gone.is_none() && s.accepts(&input))
                else {
                    self.drop_datagram(source, "no session accepts it");
                    return;
                };
                session.addrs.push(source);
                self.by_addr.insert(source, session.id);
                session.id
            }
        };

        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let (outputs, counters) = (&mut self.outputs, &self.counters);
        self.input_log
            .feed(|| session.receive(now, input, outbox, outputs, counters));
        self.act_on_outputs(now, outbox);
        if let Some(reason) = self.sessions.get(&id).and_then(|s| s.gone) {
            self.remove_session(id, reason, false, outbox);
        }
    }

    /// Acts on what sessions reported until nothing is left (acting may make more).
    fn act_on_outputs(&mut self, now: Instant, outbox: &mut SocketOutbox) {
        // Two buffers swapped back and forth keep their capacity: no allocation per packet.
        let mut batch = mem::take(&mut self.outputs);
        loop {
            for (id, output) in batch.drain(..) {
                match output {
                    SessionOutput::Connected => self.on_connected(id, now, outbox),
                    SessionOutput::Media(kind, packet) => {
                        self.forward(id, kind, &packet, now, outbox)
                    }
                    SessionOutput::KeyframeRequest => {
                        let Some(route_id) = self.sessions.get(&id).map(|s| s.route) else {
                            continue;
                        };
                        if let Some(route) = self.routes.get_mut(&route_id) {
                            route.keyframes.want();
                        }
                        self.serve_keyframe_request(route_id, now, outbox);
                    }
                    SessionOutput::DownlinkEstimate(bps) => {
                        let Some(session) = self.sessions.get_mut(&id) else {
                            continue;
                        };
                        session.downlink_estimate = Some((bps, now));
                        let route_id = session.route;
                        self.pass_receiver_estimate(route_id, now, outbox);
                    }
                }
            }
            if self.outputs.is_empty() {
                break;
            }
            mem::swap(&mut batch, &mut self.outputs);
        }
        self.outputs = batch;
    }

    fn on_connected(&mut self, id: SessionId, now: Instant, outbox: &mut SocketOutbox) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        tracing::info!(session = id, "session connected");
        let _ = self.events.send(RelayEvent::Connected(id));
        let route_id = session.route;
        if session.is_publisher() || !session.waiting_keyframe() {
            return;
        }
        // A keyframe that went by before this player could receive it was lost on it: ask again unless a request
        // is still on its way (its keyframe will reach this player too).
        let longest = self.options.keyframe_retry_after;
        if let Some(route) = self.routes.get_mut(&route_id) {
            let retry = route.keyframes.retry_after(longest);
            if !route.keyframes.in_flight(now, retry) {
                route.keyframes.want_for_join();
            }
        }
        self.serve_keyframe_request(route_id, now, outbox);
    }

    /// Writes one publisher packet into every player of its stream.
    fn forward(
        &mut self,
        from: SessionId,
        kind: MediaKind,
        packet: &MediaPacket,
        now: Instant,
        outbox: &mut SocketOutbox,
    ) {
        let Some(route_id) = self.sessions.get(&from).map(|s| s.route) else {
            return;
        };
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        if route.publisher != Some(from) {
            return;
        }
        let opens_keyframe = kind == MediaKind::Video
            && route.starts_access_unit(packet.ssrc, packet.seq, packet.timestamp)
            && h264::starts_keyframe(&packet.payload);
        if opens_keyframe {
            route.keyframes.keyframe_seen(now);
        }
        let source = (from, packet.ssrc);
        for player_id in &route.players {
            let Some(player) = self.sessions.get_mut(player_id) else {
                continue;
            };
            if player.forward(source, kind, packet, opens_keyframe, &self.counters) {
                player.drain_after_write(outbox, &mut self.outputs, &self.counters);
                if !player.dirty {
                    player.dirty = true;
                    self.dirty.push(*player_id);
                }
            }
        }
        // A pending keyframe request that could not go out before the publisher's video was known goes now.
        if kind == MediaKind::Video && route.keyframes.is_due(now) {
            self.serve_keyframe_request(route_id, now, outbox);
        }
    }

    fn serve_keyframe_request(&mut self, route_id: u64, now: Instant, outbox: &mut SocketOutbox) {
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        if !route.keyframes.is_due(now) {
            return;
        }
        let Some(publisher) = route.publisher.and_then(|id| self.sessions.get_mut(&id)) else {
            return;
        };
        if publisher.request_keyframe(now, outbox, &mut self.outputs, &self.counters) {
            route.keyframes.sent(now);
            Counters::add(&self.counters.keyframe_requests, 1);
            tracing::debug!(session = publisher.id, "keyframe requested");
        }
    }

    /// Tells a stream's publisher what its players can receive (see [`Route::estimate_to_send`]): a player behind
    /// a slower link than the publisher's would otherwise get more than its link carries.
    fn pass_receiver_estimate(&mut self, route_id: u64, now: Instant, outbox: &mut SocketOutbox) {
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        let estimates = route
            .players
            .iter()
            .filter_map(|id| self.sessions.get(id)?.downlink_estimate);
        let Some(bps) = route.estimate_to_send(now, estimates) else {
            return;
        };
        let Some(publisher) = route.publisher.and_then(|id| self.sessions.get_mut(&id)) else {
            return;
        };
        if publisher.send_receiver_estimate(bps, now, outbox, &mut self.outputs, &self.counters) {
            route.estimate_sent = Some((bps, now));
            Counters::add(&self.counters.receiver_estimates, 1);
            tracing::debug!(session = publisher.id, bps, "players' estimate sent");
        }
    }

    /// Players that got media send it now (str0m releases queued RTP on a timeout).
    fn transmit_dirty(&mut self, now: Instant, outbox: &mut SocketOutbox) {
        for id in mem::take(&mut self.dirty) {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.timeout(now, outbox, &mut self.outputs, &self.counters);
            }
        }
        self.act_on_outputs(now, outbox);
    }

    fn drive_timeouts(&mut self, now: Instant, outbox: &mut SocketOutbox) {
        for session in self.sessions.values_mut() {
            // Skip sessions driven a moment ago by `transmit_dirty`: they are up to date.
            if session.next_timeout <= now && session.last_driven < now {
                session.timeout(now, outbox, &mut self.outputs, &self.counters);
            }
        }
        self.act_on_outputs(now, outbox);
        self.remove_gone(outbox);
    }

    /// Connect, idle and lost timeouts, players still waiting for a keyframe, and the held-back input warnings.
    fn maintain(&mut self, now: Instant, outbox: &mut SocketOutbox) {
        self.input_log.report(now);
        let options = &self.options;
        let mut waiting_routes = Vec::new();
        for session in self.sessions.values_mut() {
            if session.gone.is_some() {
                continue;
            }
            let silent = now.saturating_duration_since(session.last_rx);
            if !session.connected && now >= session.created_at + options.connect_timeout {
                session.gone = Some("never connected");
            } else if session.connected
                && session.is_publisher()
                && silent >= options.publisher_lost_timeout
            {
                session.gone = Some("publisher lost: nothing arrives from it");
                session.lost = true;
            } else if silent >= options.idle_timeout {
                session.gone = Some("went silent");
                session.lost = session.connected;
            } else if session.connected && session.waiting_keyframe() {
                waiting_routes.push(session.route);
            }
        }
        for route_id in waiting_routes {
            if let Some(route) = self.routes.get_mut(&route_id) {
                let retry = route.keyframes.retry_after(options.keyframe_retry_after);
                if route.keyframes.last_sent().is_none_or(|t| now >= t + retry) {
                    route.keyframes.want();
                }
            }
        }
        let due: Vec<u64> = self
            .routes
            .iter()
            .filter(|(_, r)| r.keyframes.is_due(now))
            .map(|(&id, _)| id)
            .collect();
        for route_id in due {
            self.serve_keyframe_request(route_id, now, outbox);
        }
        self.act_on_outputs(now, outbox);
        self.remove_gone(outbox);
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let sessions = self.sessions.values().map(|s| s.next_timeout);
        let keyframes = self.routes.values().filter_map(|r| r.keyframes.deadline());
        sessions
            .chain(keyframes)
            .min()
            .unwrap_or(now + MAINTENANCE_INTERVAL)
            // A timeout already due was just handled; str0m may still name it (an idle pacer does).
            .max(now + Duration::from_millis(1))
    }

    fn remove_gone(&mut self, outbox: &mut SocketOutbox) {
        let gone: Vec<(SessionId, &'static str)> = self
            .sessions
            .values()
            .filter_map(|s| s.gone.map(|reason| (s.id, reason)))
            .collect();
        for (id, reason) in gone {
            self.remove_session(id, reason, false, outbox);
        }
    }

    /// Forgets a session; `graceful` closes it towards the peer first (DTLS close_notify).
    fn remove_session(
        &mut self,
        id: SessionId,
        reason: &str,
        graceful: bool,
        outbox: &mut SocketOutbox,
    ) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        if graceful {
            session.close(outbox, &self.counters);
        }
        for addr in &session.addrs {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
        if let Some(route) = self.routes.get_mut(&session.route) {
            if route.publisher == Some(id) {
                route.publisher = None;
            }
            route.remove_player(id);
            if route.is_empty() {
                self.routes.remove(&session.route);
                self.route_ids.retain(|_, &mut r| r != session.route);
            }
        }
        self.dirty.retain(|&d| d != id);
        self.update_gauges();
        tracing::info!(session = id, reason, "session ended");
        let event = if session.lost {
            RelayEvent::Lost(id)
        } else {
            RelayEvent::Disconnected(id)
        };
        let _ = self.events.send(event);
    }

    fn close_all(&mut self, outbox: &mut SocketOutbox) {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.remove_session(id, "the relay is shutting down", true, outbox);
        }
        outbox.flush();
        tracing::debug!(addr = %self.local_addr, "all sessions closed");
    }

    fn update_gauges(&self) {
        let publishers = self.sessions.values().filter(|s| s.is_publisher()).count() as u64;
        Counters::set(&self.counters.publishers, publishers);
        Counters::set(
            &self.counters.players,
            self.sessions.len() as u64 - publishers,
        );
    }

    fn drop_datagram(&mut self, source: SocketAddr, why: &str) {
        Counters::add(&self.counters.datagrams_dropped, 1);
        self.drop_log.note(source, why);
    }
}

/// Logs dropped datagrams occasionally, never once per datagram: a flood must not become a log flood.
#[derive(Default)]
struct DropLog {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl DropLog {
    fn note(&mut self, source: SocketAddr, why: &str) {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|t| now < t + DROP_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%source, why, suppressed_since_last_log = self.suppressed, "dropped a datagram");
        self.last_logged = Some(now);
        self.suppressed = 0;
    }
}

/// The socket, with a backlog for the rare moments its send buffer is full.
pub(crate) struct SocketOutbox {
    socket: UdpSocket,
    backlog: VecDeque<(SocketAddr, Vec<u8>)>,
    last_error_log: Option<Instant>,
}

impl SocketOutbox {
    fn new(socket: UdpSocket) -> Self {
        SocketOutbox {
            socket,
            backlog: VecDeque::new(),
            last_error_log: None,
        }
    }

    fn flush(&mut self) {
        while let Some((destination, datagram)) = self.backlog.front() {
            match self.socket.try_send_to(datagram, *destination) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.log_error(&e),
                Ok(_) => {}
            }
            self.backlog.pop_front();
        }
    }

    fn log_error(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now >= t + DROP_LOG_INTERVAL)
        {
            self.last_error_log = Some(now);
            tracing::warn!("send failed: {e}");
        }
    }
}

impl session::Outbox for SocketOutbox {
    fn send(&mut self, destination: SocketAddr, datagram: &[u8]) {
        if self.backlog.is_empty() {
            match self.socket.try_send_to(datagram, destination) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.log_error(&e);
                    return;
                }
            }
        }
        if self.backlog.len() >= MAX_SEND_BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back((destination, datagram.to_vec()));
    }
}
