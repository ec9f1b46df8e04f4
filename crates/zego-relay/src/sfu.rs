//! The relay's core, sans-IO: every session, the routes from publishers to players, keyframe requests and the
//! players' estimates passed to publishers. It is driven with the time given (a datagram, a command, a timeout) and
//! writes datagrams to an [`Outbox`]; `io_loop` owns the socket and the clock.
//!
//! Datagrams go out through the outbox as they are made, without a copy per packet; events queue for
//! [`Sfu::poll_event`]. A relay on several I/O threads runs one core per thread; what they tell each other queues
//! for [`Sfu::poll_shard_message`] and comes in through [`Sfu::handle_shard_message`] (see `shard`).

use std::collections::{HashMap, VecDeque};
use std::mem;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::MediaKind;
use str0m::net::DatagramRecv;

use crate::counters::Counters;
use crate::fec::MediaPacket;
use crate::input_log::InputLog;
use crate::keyframe_cache;
use crate::route::Route;
pub(crate) use crate::session::Outbox;
use crate::session::{self, RoleKind, RtcEnv, Session, SessionOutput};
use crate::shard::{self, KeyframeWant, Placement, ShardId, ShardLoad, ShardMsg};
use crate::{RelayError, RelayEvent, RelayOptions, SessionId, StreamKey};

/// Housekeeping (connect/idle/lost timeouts, keyframe retries) runs at least this often.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(100);
/// Added to the DTLS handshake's duration before a player is started from the cached keyframe.
const SRTP_READY_MARGIN: Duration = Duration::from_millis(5);
/// The longest wait before a player is started from the cached keyframe (a slow handshake is not a long path).
const MAX_SRTP_READY_WAIT: Duration = Duration::from_millis(250);
/// Dropped datagrams and rejected input are logged at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct Sfu {
    options: RelayOptions,
    env: RtcEnv,
    counters: Arc<Counters>,
    place: Placement,
    load: Arc<ShardLoad>,
    /// This shard's publishers, pulls and players, as last added to the shared gauges.
    gauges: (u64, u64, u64),
    sessions: HashMap<SessionId, Session>,
    /// Which session a remote address belongs to, learnt when a session first accepted a datagram from it.
    by_addr: HashMap<SocketAddr, SessionId>,
    /// Addresses whose datagrams belong to another shard's session, learnt from their STUN.
    foreign: HashMap<SocketAddr, ShardId>,
    /// Messages for other shards, oldest first.
    to_shards: VecDeque<(ShardId, ShardMsg)>,
    routes: HashMap<u64, Route>,
    route_ids: HashMap<StreamKey, u64>,
    next_session_id: SessionId,
    next_route_id: u64,
    /// Outputs of sessions waiting to be acted on.
    outputs: Vec<(SessionId, SessionOutput)>,
    /// Players that got media since they were last driven.
    dirty: Vec<SessionId>,
    /// Connected players whose video may start at the given time (once their side of DTLS is surely done).
    video_starts_due: HashMap<SessionId, Instant>,
    events: VecDeque<RelayEvent>,
    last_maintenance: Instant,
    drop_log: DropLog,
    /// The WebRTC stack's warnings about what peers send, counted instead of logged each.
    input_log: InputLog,
}

impl Sfu {
    /// `announced` is the address put in every answer's ICE candidate; `place` is this core's shard.
    pub fn new(
        announced: SocketAddr,
        options: RelayOptions,
        counters: Arc<Counters>,
        place: Placement,
        load: Arc<ShardLoad>,
        now: Instant,
    ) -> Result<Sfu, String> {
        Ok(Sfu {
            options,
            env: RtcEnv::new(announced, place.shard)?,
            counters,
            place,
            load,
            gauges: (0, 0, 0),
            sessions: HashMap::new(),
            by_addr: HashMap::new(),
            foreign: HashMap::new(),
            to_shards: VecDeque::new(),
            routes: HashMap::new(),
            route_ids: HashMap::new(),
            next_session_id: 1,
            next_route_id: 1,
            outputs: Vec::new(),
            dirty: Vec::new(),
            video_starts_due: HashMap::new(),
            events: VecDeque::new(),
            last_maintenance: now,
            drop_log: DropLog::default(),
            input_log: InputLog::new(DROP_LOG_INTERVAL),
        })
    }

    /// Ends a session at the server's request, gracefully (DTLS close_notify).
    pub fn close(&mut self, id: SessionId, now: Instant, outbox: &mut impl Outbox) {
        self.remove_session(id, "closed by the server", true, outbox);
        self.act_on_outputs(now, outbox);
    }

    /// Lets time pass: players that got media transmit it, str0m timeouts run, and housekeeping when it is due.
    pub fn handle_timeout(&mut self, now: Instant, outbox: &mut impl Outbox) {
        self.start_due_videos(now, outbox);
        self.transmit_dirty(now, outbox);
        self.drive_timeouts(now, outbox);
        if now >= self.last_maintenance + MAINTENANCE_INTERVAL {
            self.last_maintenance = now;
            self.maintain(now, outbox);
        }
    }

    /// When [`Sfu::handle_timeout`] must run next.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        self.next_deadline(now)
            .min(self.last_maintenance + MAINTENANCE_INTERVAL)
    }

    /// What happened to sessions (connected, ended, lost), oldest first.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// The next message for another shard, with its shard.
    pub fn poll_shard_message(&mut self) -> Option<(ShardId, ShardMsg)> {
        self.to_shards.pop_front()
    }

    /// Whether the stream has a publisher (asked of its origin shard).
    pub fn is_published(&self, key: &StreamKey) -> bool {
        self.route_ids
            .get(key)
            .and_then(|r| self.routes.get(r))
            .is_some_and(|r| r.origin.is_none() && r.publisher.is_some())
    }

    /// The metrics so far.
    #[cfg(test)]
    pub fn counters_snapshot(&self) -> crate::RelayMetrics {
        self.counters.snapshot()
    }

    /// The number of sessions (publishers and players).
    #[cfg(test)]
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The number of streams with a route on this shard.
    #[cfg(test)]
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub fn publish(
        &mut self,
        key: StreamKey,
        offer: &str,
        now: Instant,
        outbox: &mut impl Outbox,
    ) -> Result<(SessionId, String), RelayError> {
        debug_assert_eq!(self.place.origin_of(&key), self.place.shard);
        let id = self.place.session_id(self.next_session_id);
        let (session, answer) = Session::accept(
            id,
            RoleKind::Publisher,
            &key.stream_id,
            offer,
            &self.env,
            now,
        )?;
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
        self.attach_publisher(&key, session);
        tracing::info!(session = id, ?key, "publisher session created");
        self.act_on_outputs(now, outbox);
        Ok((id, answer))
    }

    /// Opens a pull of a stream from another relay (see `pull`): the stream's publisher here from now on. `local`
    /// is the address of the socket the I/O layer opened for it: what that socket reads goes to
    /// [`Sfu::handle_pull_datagram`], and what the pull sends goes to [`Outbox::send_from`] with it as the source.
    /// The socket is the pull's until the session ends ([`RelayEvent::Disconnected`] or [`RelayEvent::Lost`]).
    /// Returns the session and the offer for the other relay.
    pub fn pull(
        &mut self,
        key: StreamKey,
        local: SocketAddr,
        now: Instant,
        outbox: &mut impl Outbox,
    ) -> Result<(SessionId, String), RelayError> {
        debug_assert_eq!(self.place.origin_of(&key), self.place.shard);
        if self.is_published(&key) {
            return Err(RelayError::AlreadyPublished);
        }
        let id = self.place.session_id(self.next_session_id);
        let (session, offer) = Session::offer_pull(id, &self.env, local, now)?;
        self.next_session_id += 1;
        self.attach_publisher(&key, session);
        tracing::info!(session = id, ?key, "pull session created");
        self.act_on_outputs(now, outbox);
        Ok((id, offer))
    }

    /// Completes a pull with the other relay's answer: ICE starts, over the pull's own socket.
    pub fn complete_pull(
        &mut self,
        id: SessionId,
        answer: &str,
        now: Instant,
        outbox: &mut impl Outbox,
    ) -> Result<(), RelayError> {
        let Some(session) = self.sessions.get_mut(&id).filter(|s| s.is_pull()) else {
            return Err(RelayError::BadOffer(
                "no pull with this session id is open".into(),
            ));
        };
        let origins = session.complete_pull(answer, outbox, &mut self.outputs, &self.counters)?;
        tracing::info!(session = id, ?origins, "pull answered");
        self.act_on_outputs(now, outbox);
        Ok(())
    }

    /// Makes a new session the publisher of its stream (of this shard's route of it, which it makes if need be);
    /// the stream's players wait for its first keyframe.
    fn attach_publisher(&mut self, key: &StreamKey, mut session: Session) {
        let id = session.id;
        // Looked up after any old publisher is gone: a route nobody plays goes with its publisher.
        let route_id = self.route_id(key);
        session.route = route_id;
        let route = self
            .routes
            .entry(route_id)
            .or_insert_with(|| Route::new(self.options.keyframe_request_interval));
        route.publisher = Some(id);
        route.cached.clear();
        for player in &route.players {
            if let Some(player) = self.sessions.get_mut(player) {
                player.restart_video();
            }
        }
        if !route.players.is_empty() || !route.subscribers.is_empty() {
            route.keyframes.want();
        }
        tell_mirrors_the_publisher(route, &mut self.to_shards);
        self.sessions.insert(id, session);
        self.update_gauges();
    }

    pub fn play(
        &mut self,
        key: StreamKey,
        offer: &str,
        now: Instant,
        outbox: &mut impl Outbox,
    ) -> Result<(SessionId, String), RelayError> {
        // A player on another shard than the stream's origin was placed there after the origin said the stream is
        // published (see `Relay::play`).
        let origin = self.place.origin_of(&key);
        if origin == self.place.shard && !self.is_published(&key) {
            return Err(RelayError::StreamNotPublished);
        }
        let id = self.place.session_id(self.next_session_id);
        let (mut session, answer) =
            Session::accept(id, RoleKind::Player, &key.stream_id, offer, &self.env, now)?;
        self.next_session_id += 1;
        let route_id = if origin == self.place.shard {
            self.route_id(&key)
        } else {
            self.mirror_route_id(&key, origin)
        };
        session.route = route_id;
        self.sessions.insert(id, session);
        // Unless the stream's keyframe is cached, asked for now, while the player connects, so that the keyframe
        // usually arrives just after: the encoder needs its next captured frame and an encode. If it passes before
        // the player could receive it, the player asks again on connecting (see `on_connected`), after the short
        // join interval.
        let mut cached = false;
        if let Some(route) = self.routes.get_mut(&route_id) {
            route.players.push(id);
            cached = route.cached_keyframe().is_some();
        }
        if !cached {
            self.want_keyframe(route_id, KeyframeWant::Join, now, outbox);
        }
        self.update_gauges();
        tracing::info!(session = id, ?key, "player session created");
        self.act_on_outputs(now, outbox);
        Ok((id, answer))
    }

    /// The route of players of a stream published on shard `origin`: made, and subscribed to the origin, with the
    /// shard's first player of it.
    fn mirror_route_id(&mut self, key: &StreamKey, origin: ShardId) -> u64 {
        if let Some(&id) = self.route_ids.get(key) {
            return id;
        }
        let id = self.route_id(key);
        if let Some(route) = self.routes.get_mut(&id) {
            route.origin = Some(origin);
        }
        let subscribe = ShardMsg::Subscribe {
            key: key.clone(),
            shard: self.place.shard,
            route: id,
            on: true,
        };
        self.to_shards.push_back((origin, subscribe));
        id
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

    /// A datagram this shard's socket read.
    pub fn handle_datagram(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        now: Instant,
        outbox: &mut impl Outbox,
    ) {
        self.receive(data, source, now, outbox, false);
    }

    /// A datagram the own socket of the pull `id` read (see [`Sfu::pull`]): the pull's, whatever its source.
    pub fn handle_pull_datagram(
        &mut self,
        id: SessionId,
        data: &[u8],
        source: SocketAddr,
        now: Instant,
        outbox: &mut impl Outbox,
    ) {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.drop_datagram(now, source, "not STUN, DTLS or RTP");
            return;
        };
        // A datagram that was on its way when the pull ended has nobody to go to.
        let Some(local) = self.sessions.get(&id).and_then(Session::pull_addr) else {
            return;
        };
        let input = session::receive_input(now, source, local, contents);
        if !self.sessions.get(&id).is_some_and(|s| s.accepts(&input)) {
            self.drop_datagram(now, source, "the pull does not accept it");
            return;
        }
        self.feed(id, data, input, now, outbox);
    }

    /// A datagram of one of this shard's sessions, or one to hand to the shard whose session it is. One handed
    /// over by another shard is never handed on.
    fn receive(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        now: Instant,
        outbox: &mut impl Outbox,
        handed_over: bool,
    ) {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.drop_datagram(now, source, "not STUN, DTLS or RTP");
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
                if !handed_over {
                    if let Some(owner) = self.owner_elsewhere(data, source) {
                        let data = data.to_vec();
                        let message = ShardMsg::Datagram {
                            data,
                            source,
                            at: now,
                        };
                        self.to_shards.push_back((owner, message));
                        return;
                    }
                }
                // A new address: STUN names its session by ICE credentials.
                let Some(session) = self
                    .sessions
                    .values_mut()
                    .find(|s| s.gone.is_none() && s.accepts(&input))
                else {
                    self.drop_datagram(now, source, "no session accepts it");
                    return;
                };
                session.addrs.push(source);
                self.by_addr.insert(source, session.id);
                self.foreign.remove(&source);
                session.id
            }
        };
        self.feed(id, data, input, now, outbox);
    }

    /// Feeds a datagram (`data`, as str0m input) to the session `id`.
    fn feed(
        &mut self,
        id: SessionId,
        data: &[u8],
        input: str0m::Input,
        now: Instant,
        outbox: &mut impl Outbox,
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        // DTLS records start with a content type of 20..=63 (RFC 7983).
        if session.first_dtls_at.is_none() && (20..=63).contains(&data[0]) {
            session.first_dtls_at = Some(now);
        }
        let (outputs, counters) = (&mut self.outputs, &self.counters);
        self.input_log
            .feed(|| session.receive(now, input, outbox, outputs, counters));
        self.act_on_outputs(now, outbox);
        if let Some(reason) = self.sessions.get(&id).and_then(|s| s.gone) {
            self.remove_session(id, reason, false, outbox);
        }
    }

    /// The shard whose session a datagram of an address this shard knows no session of is for: the one its STUN
    /// names, and then the one the address's STUN named.
    fn owner_elsewhere(&mut self, data: &[u8], source: SocketAddr) -> Option<ShardId> {
        if self.place.shards == 1 {
            return None;
        }
        match shard::shard_of_stun(data) {
            Some(owner) if owner == self.place.shard || owner >= self.place.shards => None,
            Some(owner) => {
                self.foreign.insert(source, owner);
                Some(owner)
            }
            None => self.foreign.get(&source).copied(),
        }
    }

    /// What another shard's core says.
    pub fn handle_shard_message(
        &mut self,
        message: ShardMsg,
        now: Instant,
        outbox: &mut impl Outbox,
    ) {
        match message {
            ShardMsg::Datagram { data, source, at } => {
                if now.saturating_duration_since(at) > shard::MAX_HANDOVER_DELAY {
                    Counters::add(&self.counters.overload_drops, 1);
                    return;
                }
                self.receive(&data, source, at.min(now), outbox, true);
                return;
            }
            ShardMsg::Forget { shard, addrs } => {
                // An address a later session on another shard took meanwhile stays with that one.
                for addr in addrs {
                    if self.foreign.get(&addr) == Some(&shard) {
                        self.foreign.remove(&addr);
                    }
                }
            }
            ShardMsg::Subscribe {
                key,
                shard,
                route: mirror,
                on,
            } => self.on_subscribe(key, shard, mirror, on, now),
            ShardMsg::Publisher { route, publisher } => {
                let Some(route) = self.routes.get_mut(&route) else {
                    return;
                };
                route.publisher = publisher;
                route.cached.clear();
                for player in &route.players {
                    if let Some(player) = self.sessions.get_mut(player) {
                        player.restart_video();
                    }
                }
            }
            ShardMsg::Media {
                route,
                from,
                kind,
                packet,
                opens_keyframe,
                at,
            } => {
                if now.saturating_duration_since(at) > shard::MAX_HANDOVER_DELAY {
                    Counters::add(&self.counters.overload_drops, 1);
                    return;
                }
                self.fan_out(route, from, kind, &packet, opens_keyframe, outbox)
            }
            ShardMsg::Keyframe { key, want } => {
                if let Some(&route_id) = self.route_ids.get(&key) {
                    self.want_keyframe(route_id, want, now, outbox);
                }
            }
            ShardMsg::Estimate {
                key,
                player,
                bps,
                at,
            } => {
                let Some(&route_id) = self.route_ids.get(&key) else {
                    return;
                };
                if let Some(route) = self.routes.get_mut(&route_id) {
                    route.remote_estimate(player, bps, at);
                }
                self.pass_receiver_estimate(route_id, now, outbox);
            }
        }
        self.act_on_outputs(now, outbox);
    }

    /// Origin: a mirror has players of the stream now, or none any more. A new mirror is told the publisher and
    /// given the cached keyframe, for its players to start from.
    fn on_subscribe(
        &mut self,
        key: StreamKey,
        shard: ShardId,
        mirror: u64,
        on: bool,
        now: Instant,
    ) {
        if !on {
            let Some(&route_id) = self.route_ids.get(&key) else {
                return;
            };
            if let Some(route) = self.routes.get_mut(&route_id) {
                route.subscribers.retain(|&s| s != (shard, mirror));
                if route.is_empty() {
                    self.forget_route(route_id);
                }
            }
            return;
        }
        let route_id = self.route_id(&key);
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        route.subscribers.push((shard, mirror));
        let publisher = route.publisher;
        self.to_shards.push_back((
            shard,
            ShardMsg::Publisher {
                route: mirror,
                publisher,
            },
        ));
        if let Some((from, keyframe)) = route.cached_keyframe() {
            for (i, packet) in keyframe.iter().enumerate() {
                let media = ShardMsg::Media {
                    route: mirror,
                    from,
                    kind: MediaKind::Video,
                    packet: packet.clone(),
                    opens_keyframe: i == 0,
                    at: now,
                };
                self.to_shards.push_back((shard, media));
            }
        }
    }

    /// Acts on what sessions reported until nothing is left (acting may make more).
    fn act_on_outputs(&mut self, now: Instant, outbox: &mut impl Outbox) {
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
                        self.want_keyframe(route_id, KeyframeWant::Now, now, outbox);
                    }
                    SessionOutput::DownlinkEstimate(bps) => {
                        let Some(session) = self.sessions.get_mut(&id) else {
                            continue;
                        };
                        session.downlink_estimate = Some((bps, now));
                        let route_id = session.route;
                        let origin = self.routes.get(&route_id).and_then(|r| r.origin);
                        match (origin, self.route_key(route_id)) {
                            (Some(origin), Some(key)) => {
                                let message = ShardMsg::Estimate {
                                    key,
                                    player: id,
                                    bps,
                                    at: now,
                                };
                                self.to_shards.push_back((origin, message));
                            }
                            _ => self.pass_receiver_estimate(route_id, now, outbox),
                        }
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

    fn on_connected(&mut self, id: SessionId, now: Instant, outbox: &mut impl Outbox) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        tracing::info!(session = id, "session connected");
        self.events.push_back(RelayEvent::Connected(id));
        let route_id = session.route;
        if session.is_publisher() || !session.waiting_keyframe() {
            return;
        }
        // The relay is the DTLS server: its last flight completes the handshake here, and reaches the player half
        // a round trip later, which then sets up SRTP; media sent before then is dropped there. The handshake (from
        // the ClientHello) took at least a round trip and the player's own work: what comes for the player until
        // that much later is held, and its video starts then (from a live keyframe held meanwhile, else the cached
        // one).
        let handshake = session
            .first_dtls_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let wait = (handshake + SRTP_READY_MARGIN).min(MAX_SRTP_READY_WAIT);
        self.video_starts_due.insert(id, now + wait);
        if let Some(session) = self.sessions.get_mut(&id) {
            session.held = Some(Vec::new());
        }
        let cached = self
            .routes
            .get(&route_id)
            .is_some_and(|r| r.cached_keyframe().is_some());
        if cached {
            return;
        }
        // A keyframe that went by before this player could receive it was lost on it: ask again unless a request
        // is still on its way (its keyframe will reach this player too).
        self.want_keyframe(route_id, KeyframeWant::JoinUnlessInFlight, now, outbox);
    }

    /// Players of a route want a keyframe: on the origin, the throttle decides when the publisher is asked; a
    /// mirror tells the origin.
    fn want_keyframe(
        &mut self,
        route_id: u64,
        want: KeyframeWant,
        now: Instant,
        outbox: &mut impl Outbox,
    ) {
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        if let Some(origin) = route.origin {
            if let Some(key) = self.route_key(route_id) {
                self.to_shards
                    .push_back((origin, ShardMsg::Keyframe { key, want }));
            }
            return;
        }
        let throttle = &mut route.keyframes;
        match want {
            KeyframeWant::Now => throttle.want(),
            KeyframeWant::Join => throttle.want_for_join(),
            KeyframeWant::JoinUnlessInFlight => {
                let retry = throttle.retry_after(self.options.keyframe_retry_after);
                if !throttle.in_flight(now, retry) {
                    throttle.want_for_join();
                }
            }
            KeyframeWant::Retry => {
                let retry = throttle.retry_after(self.options.keyframe_retry_after);
                if throttle.last_sent().is_none_or(|t| now >= t + retry) {
                    throttle.want();
                }
            }
        }
        self.serve_keyframe_request(route_id, now, outbox);
    }

    /// The stream of a route (a lookup for the rare messages that name a stream, not per packet).
    fn route_key(&self, route_id: u64) -> Option<StreamKey> {
        self.route_ids
            .iter()
            .find(|(_, &r)| r == route_id)
            .map(|(key, _)| key.clone())
    }

    /// Shows a player that waits for a keyframe its stream's cached one, and asks the publisher for a fresh one to
    /// go on live from (see `keyframe_cache`). False when no keyframe is cached.
    fn start_from_cache(
        &mut self,
        id: SessionId,
        route_id: u64,
        now: Instant,
        outbox: &mut impl Outbox,
    ) -> bool {
        let Some(route) = self.routes.get_mut(&route_id) else {
            return false;
        };
        let Some((source, keyframe)) = route.cached_keyframe() else {
            return false;
        };
        let Some(player) = self.sessions.get_mut(&id) else {
            return false;
        };
        let mut wrote = false;
        for (i, packet) in keyframe.iter().enumerate() {
            wrote |= player.forward(
                (source, packet.ssrc),
                MediaKind::Video,
                &keyframe_cache::sent_at(packet, now),
                i == 0,
                &self.counters,
            );
        }
        if !wrote {
            return false;
        }
        player.after_cached_keyframe();
        player.drain_after_write(outbox, &mut self.outputs, &self.counters);
        if !player.dirty {
            player.dirty = true;
            self.dirty.push(id);
        }
        tracing::debug!(
            session = id,
            packets = keyframe.len(),
            "player shown the cached keyframe"
        );
        Counters::add(&self.counters.cached_keyframe_starts, 1);
        self.want_keyframe(route_id, KeyframeWant::Join, now, outbox);
        true
    }

    /// Writes what was held for players whose SRTP keys are surely in place now, and starts their video: from a live
    /// keyframe among it, else from the cached keyframe, else from the next live one, asked of the publisher.
    fn start_due_videos(&mut self, now: Instant, outbox: &mut impl Outbox) {
        let due: Vec<SessionId> = self
            .video_starts_due
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.video_starts_due.remove(&id);
            let Some(session) = self.sessions.get_mut(&id) else {
                continue;
            };
            if session.release_held(&self.counters) {
                session.drain_after_write(outbox, &mut self.outputs, &self.counters);
                if !session.dirty {
                    session.dirty = true;
                    self.dirty.push(id);
                }
            }
            if !session.waiting_keyframe() {
                continue;
            }
            let route_id = session.route;
            if !self.start_from_cache(id, route_id, now, outbox) {
                self.want_keyframe(route_id, KeyframeWant::Join, now, outbox);
            }
        }
    }

    /// Writes one publisher packet into every player of its stream: this shard's, and once into each mirror.
    fn forward(
        &mut self,
        from: SessionId,
        kind: MediaKind,
        packet: &MediaPacket,
        now: Instant,
        outbox: &mut impl Outbox,
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
            && route.opens_keyframe(packet.ssrc, packet.seq, packet.timestamp, &packet.payload);
        if opens_keyframe {
            route.keyframes.keyframe_seen(now);
        }
        for &(shard, mirror) in &route.subscribers {
            let media = ShardMsg::Media {
                route: mirror,
                from,
                kind,
                packet: packet.clone(),
                opens_keyframe,
                at: now,
            };
            self.to_shards.push_back((shard, media));
        }
        self.fan_out(route_id, from, kind, packet, opens_keyframe, outbox);
        // A pending keyframe request that could not go out before the publisher's video was known goes now.
        if kind == MediaKind::Video
            && self
                .routes
                .get(&route_id)
                .is_some_and(|r| r.keyframes.is_due(now))
        {
            self.serve_keyframe_request(route_id, now, outbox);
        }
    }

    /// Writes one publisher packet into this shard's players of a route, and keeps it if it is part of the newest
    /// keyframe.
    fn fan_out(
        &mut self,
        route_id: u64,
        from: SessionId,
        kind: MediaKind,
        packet: &MediaPacket,
        opens_keyframe: bool,
        outbox: &mut impl Outbox,
    ) {
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        if route.publisher != Some(from) {
            return;
        }
        if kind == MediaKind::Video {
            route.cached.on_video(from, packet, opens_keyframe);
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
    }

    fn serve_keyframe_request(&mut self, route_id: u64, now: Instant, outbox: &mut impl Outbox) {
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
    fn pass_receiver_estimate(&mut self, route_id: u64, now: Instant, outbox: &mut impl Outbox) {
        let Some(route) = self.routes.get_mut(&route_id) else {
            return;
        };
        let estimates = route
            .players
            .iter()
            .filter_map(|id| self.sessions.get(id)?.downlink_estimate)
            .chain(route.remote_estimates.values().copied());
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
    fn transmit_dirty(&mut self, now: Instant, outbox: &mut impl Outbox) {
        for id in mem::take(&mut self.dirty) {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.timeout(now, outbox, &mut self.outputs, &self.counters);
            }
        }
        self.act_on_outputs(now, outbox);
    }

    fn drive_timeouts(&mut self, now: Instant, outbox: &mut impl Outbox) {
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
    fn maintain(&mut self, now: Instant, outbox: &mut impl Outbox) {
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
            } else if session.connected
                && session.waiting_keyframe()
                && !self.video_starts_due.contains_key(&session.id)
            {
                waiting_routes.push(session.route);
            }
        }
        waiting_routes.sort_unstable();
        waiting_routes.dedup();
        for route_id in waiting_routes {
            self.want_keyframe(route_id, KeyframeWant::Retry, now, outbox);
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
        let cached = self.video_starts_due.values().copied();
        sessions
            .chain(keyframes)
            .chain(cached)
            .min()
            .unwrap_or(now + MAINTENANCE_INTERVAL)
            // A timeout already due was just handled; str0m may still name it (an idle pacer does).
            .max(now + Duration::from_millis(1))
    }

    fn remove_gone(&mut self, outbox: &mut impl Outbox) {
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
        outbox: &mut impl Outbox,
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
        if self.place.shards > 1 && !session.addrs.is_empty() {
            for shard in (0..self.place.shards).filter(|&s| s != self.place.shard) {
                let forget = ShardMsg::Forget {
                    shard: self.place.shard,
                    addrs: session.addrs.clone(),
                };
                self.to_shards.push_back((shard, forget));
            }
        }
        self.video_starts_due.remove(&id);
        if let Some(route) = self.routes.get_mut(&session.route) {
            if route.publisher == Some(id) {
                route.publisher = None;
                route.cached.clear();
                tell_mirrors_the_publisher(route, &mut self.to_shards);
            }
            route.remove_player(id);
            if route.is_empty() {
                self.forget_route(session.route);
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
        self.events.push_back(event);
    }

    /// Forgets a route that serves nobody; a mirror unsubscribes from its origin.
    fn forget_route(&mut self, route_id: u64) {
        let Some(route) = self.routes.remove(&route_id) else {
            return;
        };
        let key = self.route_key(route_id);
        self.route_ids.retain(|_, &mut r| r != route_id);
        if let (Some(origin), Some(key)) = (route.origin, key) {
            let unsubscribe = ShardMsg::Subscribe {
                key,
                shard: self.place.shard,
                route: route_id,
                on: false,
            };
            self.to_shards.push_back((origin, unsubscribe));
        }
    }

    /// Ends every session gracefully (the relay is shutting down).
    pub fn close_all(&mut self, outbox: &mut impl Outbox) {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.remove_session(id, "the relay is shutting down", true, outbox);
        }
    }

    /// This shard's share of the session gauges, and its load for placing players.
    fn update_gauges(&mut self) {
        let (mut publishers, mut pulls) = (0, 0);
        for session in self.sessions.values().filter(|s| s.is_publisher()) {
            if session.is_pull() {
                pulls += 1;
            } else {
                publishers += 1;
            }
        }
        let players = self.sessions.len() as u64 - publishers - pulls;
        let (old_publishers, old_pulls, old_players) =
            mem::replace(&mut self.gauges, (publishers, pulls, players));
        Counters::adjust(&self.counters.publishers, old_publishers, publishers);
        Counters::adjust(&self.counters.pulls, old_pulls, pulls);
        Counters::adjust(&self.counters.players, old_players, players);
        self.load.set(self.place.shard, self.sessions.len() as u64);
    }

    fn drop_datagram(&mut self, now: Instant, source: SocketAddr, why: &str) {
        Counters::add(&self.counters.datagrams_dropped, 1);
        self.drop_log.note(now, source, why);
    }
}

/// Origin: tells every mirror of a route who publishes now (or that nobody does).
fn tell_mirrors_the_publisher(route: &Route, to_shards: &mut VecDeque<(ShardId, ShardMsg)>) {
    for &(shard, mirror) in &route.subscribers {
        let message = ShardMsg::Publisher {
            route: mirror,
            publisher: route.publisher,
        };
        to_shards.push_back((shard, message));
    }
}

/// Logs dropped datagrams occasionally, never once per datagram: a flood must not become a log flood.
#[derive(Default)]
struct DropLog {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl DropLog {
    fn note(&mut self, now: Instant, source: SocketAddr, why: &str) {
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
