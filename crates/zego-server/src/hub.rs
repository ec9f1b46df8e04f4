//! The glue between connections, the room core and the relay.
//!
//! One lock guards the [`Registry`] and the map from sessions to connections. Outputs are queued to connections
//! while that lock is held, so every client sees events in the order the core decided them, its replies included.
//! Queues are bounded: a connection that does not keep up is disconnected instead of slowing anyone else down.
//! Relay calls and relay-session closing happen after the lock is released.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use zego_protocol::cluster::{NodeId, NodeLoad, RoomEvent};
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::message::ServerMessage;
use zego_relay::{Relay, RelayError, StreamKey};

use crate::clock::Now;
use crate::cluster::{Claim, Cluster};
use crate::metrics::{self, SignalingCounters};
use crate::rooms::{
    CloseReason, LoginRequest, Output, PlayGrant, Prepared, PublishGrant, Registry, RelayOutcome,
    RelayRefusal, SessionId,
};

/// One signaling connection, unique for the server's lifetime.
pub type ConnId = u64;

/// How long a publish or play may wait for the relay before it is answered with an internal error.
const RELAY_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection's writer sends.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// A close frame with this code and reason, then the end of the connection.
    Close(u16, &'static str),
}

/// How the hub reaches a connection.
#[derive(Debug, Clone)]
pub struct Link {
    pub conn: ConnId,
    pub tx: mpsc::Sender<Outgoing>,
    /// Ends the connection at once (no close frame): for slow readers and replaced connections.
    pub kill: CancellationToken,
}

impl Link {
    /// Queues a message without waiting; `false` if the connection is gone or too far behind.
    fn offer(&self, out: Outgoing, counters: &SignalingCounters) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.conn,
                    "send queue full: disconnecting a slow reader"
                );
                SignalingCounters::bump(&counters.slow_reader_disconnects);
                self.kill.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

struct State {
    registry: Registry,
    links: HashMap<SessionId, Link>,
}

/// Work left for after the lock.
#[derive(Default)]
struct Effects {
    close_relay: Vec<zego_relay::SessionId>,
    start_play: Vec<PlayGrant>,
}

pub struct Hub {
    state: Mutex<State>,
    relay: Relay,
    /// This node's part of a cluster, if it is in one.
    cluster: Option<Arc<Cluster>>,
    pub counters: SignalingCounters,
}

pub fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("server messages always serialize"))
}

impl Hub {
    pub fn new(mut registry: Registry, relay: Relay, cluster: Option<Arc<Cluster>>) -> Arc<Self> {
        if cluster.is_some() {
            registry.join_cluster();
        }
        Arc::new(Hub {
            state: Mutex::new(State {
                registry,
                links: HashMap::new(),
            }),
            relay,
            cluster,
            counters: SignalingCounters::default(),
        })
    }

    /// Whether this node can serve everything: not in a cluster, or its directory answers (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.is_ready())
    }

    /// Runs a core step that no session asked for (timers, relay and cluster events) and applies its outputs.
    fn step(self: &Arc<Self>, step: impl FnOnce(&mut Registry) -> Vec<Output>) {
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            let outputs = step(&mut state.registry);
            self.apply(&mut state, outputs, &mut effects);
        }
        self.after(effects);
    }

    fn read<T>(&self, read: impl FnOnce(&Registry) -> T) -> T {
        read(&self.state.lock().registry)
    }

    /// An event of another node of the cluster.
    pub fn cluster_event(self: &Arc<Self>, node: &str, event: RoomEvent) {
        self.step(|registry| registry.cluster_event(node, event));
    }

    /// All that another node has placed, as it published when it joined the directory again.
    pub fn node_state(self: &Arc<Self>, state: &zego_protocol::cluster::NodeState) {
        let users = state.users.iter().cloned().collect();
        let streams = state.streams.iter().cloned().collect();
        self.step(|registry| registry.node_state(&state.node, &users, &streams));
    }

    /// A node left the cluster.
    pub fn node_gone(self: &Arc<Self>, node: &str) {
        self.step(|registry| registry.node_gone(node));
    }

    /// The directory as read back after (re)connecting to it.
    pub fn cluster_resync(self: &Arc<Self>, directory: Vec<(NodeId, RoomEvent)>) {
        self.step(|registry| registry.cluster_resync(directory));
    }

    /// What this node has placed in the cluster's rooms.
    pub fn cluster_state(&self) -> Vec<RoomEvent> {
        self.read(Registry::cluster_state)
    }

    pub fn players_of(&self, key: &StreamKey) -> usize {
        self.read(|registry| registry.players_of(key))
    }

    pub fn origin_of(&self, key: &StreamKey) -> Option<NodeId> {
        self.read(|registry| registry.origin_of(key).map(str::to_owned))
    }

    /// Streams of other nodes that players here play.
    pub fn remote_audiences(&self) -> Vec<(StreamKey, NodeId)> {
        self.read(Registry::remote_audiences)
    }

    /// Whether `key` is published (and live) on this node.
    pub fn publishes_here(&self, key: &StreamKey) -> bool {
        self.read(|registry| registry.publishes_here(key))
    }

    /// This node's load now, without sampling egress (which [`Hub::load`] does once per refresh).
    pub fn load_now(&self) -> NodeLoad {
        let sessions = self.read(|registry| registry.census().sessions) as u64;
        NodeLoad {
            sessions,
            viewers: self.relay.metrics().players,
            egress_bps: 0,
        }
    }

    /// This node's load, for the cluster's node registry.
    pub fn load(&self) -> NodeLoad {
        let sessions = self.read(|registry| registry.census().sessions) as u64;
        let relay = self.relay.metrics();
        NodeLoad {
            sessions,
            viewers: relay.players,
            egress_bps: self
                .cluster
                .as_ref()
                .map_or(0, |c| c.egress_bps(relay.bytes_forwarded)),
        }
    }

    /// Applies outputs under the lock; returns what must be done after it.
    fn apply(&self, state: &mut State, outputs: Vec<Output>, effects: &mut Effects) {
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    let text = encode(&msg);
                    for session in to {
                        let Some(link) = state.links.get(&session) else {
                            continue;
                        };
                        if link.offer(Outgoing::Text(text.clone()), &self.counters) {
                            SignalingCounters::bump(&self.counters.messages_sent);
                        } else {
                            state.links.remove(&session);
                        }
                    }
                }
                Output::Detach { session, close } => {
                    if let (Some(link), Some(reason)) = (state.links.remove(&session), close) {
                        link.offer(close_frame(reason), &self.counters);
                    }
                }
                Output::CloseRelay(id) => effects.close_relay.push(id),
                Output::StartPlay(grant) => effects.start_play.push(grant),
                Output::Cluster(event) => {
                    if let Some(cluster) = &self.cluster {
                        cluster.tell(event);
                    }
                }
            }
        }
    }

    fn after(self: &Arc<Self>, effects: Effects) {
        for id in effects.close_relay {
            self.relay.close_session(id);
        }
        for grant in effects.start_play {
            let hub = self.clone();
            tokio::spawn(async move { hub.run_play(grant).await });
        }
    }

    /// Runs a core step on a session this connection owns. `false`: the connection has no such session
    /// (never logged in, logged out, kicked, timed out, or resumed elsewhere).
    pub fn with_session(
        self: &Arc<Self>,
        conn: ConnId,
        session: SessionId,
        step: impl FnOnce(&mut Registry, Now) -> Vec<Output>,
    ) -> bool {
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            if !owns(&state, conn, session) {
                return false;
            }
            let now = Now::system();
            state.registry.touch(session, now);
            let outputs = step(&mut state.registry, now);
            self.apply(&mut state, outputs, &mut effects);
        }
        self.after(effects);
        true
    }

    /// A login: on success the session is linked to this connection before anything is sent to it.
    pub fn login(self: &Arc<Self>, link: &Link, req: LoginRequest) -> Result<SessionId, ErrorCode> {
        let mut effects = Effects::default();
        let result = {
            let mut state = self.state.lock();
            let result = state.registry.login(req, Now::system());
            if let Ok(ok) = &result {
                if let Some(old) = state.links.insert(ok.session, link.clone()) {
                    // A resume while the old connection is still open: that one is over.
                    if old.conn != link.conn {
                        old.offer(
                            Outgoing::Close(1000, "session resumed on another connection"),
                            &self.counters,
                        );
                    }
                }
            }
            match result {
                Ok(ok) => {
                    let session = ok.session;
                    if ok.resumed {
                        SignalingCounters::bump(&self.counters.resumes);
                    }
                    self.apply(&mut state, ok.outputs, &mut effects);
                    Ok(session)
                }
                Err(code) => Err(code),
            }
        };
        self.after(effects);
        if result.is_ok() {
            SignalingCounters::bump(&self.counters.logins);
        } else {
            SignalingCounters::bump(&self.counters.login_failures);
        }
        result
    }

    /// The connection went away: the session stays (the client may resume) until its heartbeat times out.
    pub fn connection_lost(&self, conn: ConnId, session: SessionId) {
        let mut state = self.state.lock();
        if owns(&state, conn, session) {
            state.links.remove(&session);
            tracing::info!(
                conn,
                session,
                "connection lost; the session waits for a resume or its heartbeat timeout"
            );
        }
    }

    pub fn relay_disconnected(self: &Arc<Self>, relay: zego_relay::SessionId) {
        if let Some(cluster) = &self.cluster {
            cluster.relay_session_ended(relay);
        }
        self.step(|registry| registry.relay_disconnected(relay, Now::system()));
    }

    /// The relay lost a peer (nothing arrives from it): a publisher's streams end at once.
    pub fn relay_lost(self: &Arc<Self>, relay: zego_relay::SessionId) {
        if let Some(cluster) = &self.cluster {
            cluster.relay_session_ended(relay);
        }
        self.step(|registry| registry.relay_lost(relay, Now::system()));
    }

    pub fn tick(self: &Arc<Self>, now: Now) {
        self.step(|registry| registry.handle_timeout(now));
    }

    pub async fn publish(
        self: &Arc<Self>,
        conn: ConnId,
        session: SessionId,
        req_id: u64,
        stream_id: &str,
        extra_info: &str,
        sdp: &str,
    ) -> bool {
        let mut grant = None;
        let owned = self.with_session(conn, session, |registry, now| {
            let Prepared { outputs, grant: g } =
                registry.prepare_publish(session, req_id, stream_id, extra_info, sdp, now);
            grant = g;
            outputs
        });
        let Some(grant) = grant else {
            return owned;
        };
        if let Some(cluster) = &self.cluster {
            // A stream id is published once in the whole cluster.
            let refusal = match cluster.claim(&grant.key).await {
                Ok(Claim::Granted) => None,
                Ok(Claim::Taken) => Some((
                    error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED,
                    error::message(error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED).to_owned(),
                )),
                Err(e) => {
                    tracing::warn!(stream_id = %grant.key.stream_id, "publish refused: {e}");
                    Some((error::PUBLISHER_INNER_ERROR, e.to_string()))
                }
            };
            if let Some((code, message)) = refusal {
                SignalingCounters::bump(&self.counters.relay_refusals);
                self.finish_publish(grant, extra_info, Err(RelayRefusal { code, message }));
                return true;
            }
        }
        let outcome = relay_outcome(
            tokio::time::timeout(
                RELAY_CALL_TIMEOUT,
                self.relay.publish(grant.key.clone(), sdp),
            )
            .await,
            error::PUBLISHER_INNER_ERROR,
        );
        let key = grant.key.clone();
        let refused = outcome.is_err();
        self.finish_publish(grant, extra_info, outcome);
        if refused {
            self.release_unless_local(&key).await;
        }
        true
    }

    /// Gives a claimed stream id back unless this node still publishes or is publishing it.
    async fn release_unless_local(&self, key: &StreamKey) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if !self.read(|registry| registry.has_local_stream(key)) {
            cluster.release(key).await;
        }
    }

    fn finish_publish(
        self: &Arc<Self>,
        grant: PublishGrant,
        extra_info: &str,
        outcome: RelayOutcome,
    ) {
        if outcome.is_err() {
            SignalingCounters::bump(&self.counters.relay_refusals);
        }
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            let outputs = state.registry.finish_publish(grant, extra_info, outcome);
            self.apply(&mut state, outputs, &mut effects);
        }
        self.after(effects);
    }

    pub async fn play(
        self: &Arc<Self>,
        conn: ConnId,
        session: SessionId,
        req_id: u64,
        stream_id: &str,
        sdp: &str,
        wait: bool,
    ) -> bool {
        let mut grant = None;
        let owned = self.with_session(conn, session, |registry, now| {
            let Prepared { outputs, grant: g } =
                registry.prepare_play(session, req_id, stream_id, sdp, wait, now);
            grant = g;
            outputs
        });
        if let Some(grant) = grant {
            self.run_play(grant).await;
        }
        owned
    }

    async fn run_play(self: &Arc<Self>, grant: PlayGrant) {
        let pulled = match (&self.cluster, &grant.origin) {
            (Some(cluster), Some(origin)) => {
                // Published on another node: this node's relay pulls it from there first.
                let pull = cluster.ensure_pull(&self.relay, &grant.key, origin);
                match tokio::time::timeout(RELAY_CALL_TIMEOUT, pull).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the stream's node did not answer in time".to_owned()),
                }
            }
            _ => Ok(()),
        };
        let outcome = match pulled {
            Ok(()) => relay_outcome(
                tokio::time::timeout(
                    RELAY_CALL_TIMEOUT,
                    self.relay.play(grant.key.clone(), &grant.offer),
                )
                .await,
                error::PLAYER_INNER_ERROR,
            ),
            Err(why) => {
                tracing::warn!(stream_id = %grant.key.stream_id, "cannot pull the stream: {why}");
                Err(RelayRefusal {
                    code: error::PLAYER_INNER_ERROR,
                    message: format!("cannot reach the stream on its node: {why}"),
                })
            }
        };
        if outcome.is_err() {
            SignalingCounters::bump(&self.counters.relay_refusals);
        }
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            let outputs = state.registry.finish_play(grant, outcome);
            self.apply(&mut state, outputs, &mut effects);
        }
        self.after(effects);
    }

    pub fn metrics_text(&self) -> String {
        let (census, totals) = {
            let state = self.state.lock();
            (state.registry.census(), state.registry.totals())
        };
        metrics::render(census, totals, &self.counters, &self.relay.metrics())
    }

    /// Closes every connection (going away) for a server shutdown.
    pub fn close_all(&self) {
        let mut state = self.state.lock();
        for (_, link) in state.links.drain() {
            link.offer(
                Outgoing::Close(1001, "server shutting down"),
                &self.counters,
            );
        }
    }
}

fn owns(state: &State, conn: ConnId, session: SessionId) -> bool {
    state.links.get(&session).is_some_and(|l| l.conn == conn) && state.registry.has_session(session)
}

fn close_frame(reason: CloseReason) -> Outgoing {
    match reason {
        CloseReason::Kicked => Outgoing::Close(1000, "kicked"),
        CloseReason::HeartbeatTimeout => Outgoing::Close(1000, "heartbeat timeout"),
    }
}

/// The relay's answer as the core sees it. `inner`: the code for failures that are the server's own.
fn relay_outcome(
    result: Result<
        Result<(zego_relay::SessionId, String), RelayError>,
        tokio::time::error::Elapsed,
    >,
    inner: ErrorCode,
) -> RelayOutcome {
    let refusal = |code, message: String| Err(RelayRefusal { code, message });
    match result {
        Ok(Ok(ok)) => Ok(ok),
        Ok(Err(e @ RelayError::BadOffer(_))) => {
            refusal(error::COMMON_INVALID_PARAMETER, e.to_string())
        }
        Ok(Err(RelayError::StreamNotPublished)) => refusal(
            error::PLAYER_STREAM_NOT_EXIST,
            error::message(error::PLAYER_STREAM_NOT_EXIST).to_owned(),
        ),
        Ok(Err(RelayError::AlreadyPublished)) => refusal(
            error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED,
            error::message(error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED).to_owned(),
        ),
        Ok(Err(e)) => {
            // The detail (an I/O error, the relay's state) is the server's own: it stays in the log.
            tracing::error!(error = %e, "relay failure");
            refusal(inner, "media relay failure".to_owned())
        }
        Err(_) => {
            tracing::error!("relay did not answer within {RELAY_CALL_TIMEOUT:?}");
            refusal(inner, "media relay did not answer".to_owned())
        }
    }
}
