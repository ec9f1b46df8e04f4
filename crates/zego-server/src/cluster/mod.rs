//! One node of a cluster: the directory in Redis ([`directory`]), pulling streams published on other nodes
//! ([`pull`]), and answering other nodes' pulls of this node's streams ([`serve_pull`]).
//!
//! A single server (no `[cluster]` configured) has none of this and works as before.

mod directory;
mod pull;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use axum::Router;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use zego_protocol::cluster::{NodeId, NodeInfo, RoomEvent};
use zego_relay::{Relay, StreamKey};

use crate::config::ClusterConfig;
use crate::hub::Hub;

pub use directory::run as run_directory;
pub use pull::run_sweeper;

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the cluster directory is unavailable")]
    Unavailable,
    #[error("the cluster directory failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Whether this node may publish a stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It is this node's now (or already was).
    Granted,
    /// Another node publishes it.
    Taken,
}

/// This node's part of the cluster; shared by the hub, the HTTP handlers and the directory task.
pub struct Cluster {
    pub node: NodeId,
    config: ClusterConfig,
    /// This node as the others see it (its load is filled in at each refresh).
    info: NodeInfo,
    /// The directory connection while Redis answers; `None` while it is away.
    conn: Mutex<Option<MultiplexedConnection>>,
    ready: AtomicBool,
    /// Room events for the other nodes, in the order the rooms decided them.
    events: mpsc::UnboundedSender<RoomEvent>,
    /// The other nodes, as last read from the directory.
    nodes: Mutex<HashMap<NodeId, NodeInfo>>,
    /// Nodes known here that the directory no longer lists, since when.
    missing: Mutex<HashMap<NodeId, Instant>>,
    /// Stream ids this node holds the owner key of: refreshed with the node's lease.
    owned: Mutex<HashSet<StreamKey>>,
    /// Relay sessions serving other nodes' pulls of this node's streams.
    served: Mutex<HashSet<zego_relay::SessionId>>,
    pulls: pull::Pulls,
    /// The relay's forwarded bytes at the last load sample, and when.
    egress: Mutex<Option<(u64, Instant)>>,
}

impl Cluster {
    /// The cluster handle and the receiving end of its room events (for [`run_directory`]).
    pub fn new(
        config: ClusterConfig,
        http: String,
        ws: String,
    ) -> (Arc<Cluster>, mpsc::UnboundedReceiver<RoomEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let info = NodeInfo {
            node: config.node_id.clone(),
            http: config.advertise.clone().unwrap_or(http),
            ws,
            load: Default::default(),
        };
        let cluster = Cluster {
            node: config.node_id.clone(),
            config,
            info,
            conn: Mutex::new(None),
            ready: AtomicBool::new(false),
            events,
            nodes: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashSet::new()),
            served: Mutex::new(HashSet::new()),
            pulls: pull::Pulls::default(),
            egress: Mutex::new(None),
        };
        (Arc::new(cluster), rx)
    }

    /// Whether the directory answers (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Queues a room event for the other nodes (dropped while Redis is away: the node writes its whole state
    /// again when it comes back).
    pub fn tell(&self, event: RoomEvent) {
        let _ = self.events.send(event);
    }

    /// Media sent to players since the last sample, in bits per second; `bytes_forwarded` is the relay's total.
    pub fn egress_bps(&self, bytes_forwarded: u64) -> u64 {
        let now = Instant::now();
        let last = self.egress.lock().replace((bytes_forwarded, now));
        let Some((bytes, at)) = last else {
            return 0;
        };
        let seconds = now.duration_since(at).as_secs_f64();
        if seconds <= 0.0 {
            return 0;
        }
        (bytes_forwarded.saturating_sub(bytes) as f64 * 8.0 / seconds) as u64
    }

    /// The other nodes as just read from the directory (`listed`: the ids it lists; `live`: those with a lease).
    /// A node known here that is no longer listed (Redis restarted empty) stays known for one lease, to register
    /// again; then it is added to `gone`.
    fn update_nodes(
        &self,
        listed: &HashSet<NodeId>,
        mut live: HashMap<NodeId, NodeInfo>,
        gone: &mut Vec<NodeId>,
    ) {
        let now = Instant::now();
        let lease = std::time::Duration::from_millis(zego_protocol::cluster::LEASE_MS);
        let mut nodes = self.nodes.lock();
        let mut missing = self.missing.lock();
        for (known, info) in nodes.iter() {
            if listed.contains(known) {
                continue;
            }
            let since = *missing.entry(known.clone()).or_insert(now);
            if now.duration_since(since) < lease {
                live.insert(known.clone(), info.clone());
            } else {
                gone.push(known.clone());
            }
        }
        missing.retain(|n, _| !listed.contains(n) && live.contains_key(n));
        *nodes = live;
    }

    fn connection(&self) -> Result<MultiplexedConnection, DirectoryError> {
        self.conn.lock().clone().ok_or(DirectoryError::Unavailable)
    }

    /// Takes the stream id for this node if no other node has it.
    pub async fn claim(&self, key: &StreamKey) -> Result<Claim, DirectoryError> {
        let mut conn = self.connection()?;
        let granted = directory::claim(&mut conn, &self.node, key).await?;
        if granted {
            self.owned.lock().insert(key.clone());
            Ok(Claim::Granted)
        } else {
            Ok(Claim::Taken)
        }
    }

    /// Gives a stream id back (its stream ended here, or its publish failed).
    pub async fn release(&self, key: &StreamKey) {
        if !self.owned.lock().remove(key) {
            return;
        }
        if let Ok(mut conn) = self.connection() {
            if let Err(e) = directory::release(&mut conn, &self.node, key).await {
                tracing::warn!(stream_id = %key.stream_id, "cannot release a stream id: {e}");
            }
        }
    }

    /// Makes sure the relay pulls `key` from `origin`, for a player here of a stream published there.
    pub async fn ensure_pull(
        &self,
        relay: &Relay,
        key: &StreamKey,
        origin: &str,
    ) -> Result<(), pull::PullError> {
        let http = self.node_http(origin).await?;
        self.pulls
            .ensure(relay, key, origin, &http, &self.config.secret)
            .await
    }

    /// Where `node` answers HTTP: from the nodes last read, or else read from the directory now (a node that
    /// joined since this one last read the directory already has streams and players).
    async fn node_http(&self, node: &str) -> Result<String, pull::PullError> {
        if let Some(info) = self.nodes.lock().get(node) {
            return Ok(info.http.clone());
        }
        let mut conn = self
            .connection()
            .map_err(|_| pull::PullError::UnknownNode)?;
        match directory::node_info(&mut conn, node).await {
            Ok(Some(info)) => {
                let http = info.http.clone();
                self.nodes.lock().insert(node.to_owned(), info);
                Ok(http)
            }
            Ok(None) => Err(pull::PullError::UnknownNode),
            Err(e) => Err(pull::PullError::Unreachable(format!(
                "the cluster directory cannot be read: {e}"
            ))),
        }
    }

    /// A relay session ended: if it was a pull, the next player opens a new one.
    pub fn relay_session_ended(&self, id: zego_relay::SessionId) {
        self.pulls.ended(id);
        self.served.lock().remove(&id);
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        token.as_bytes().ct_eq(self.config.secret.as_bytes()).into()
    }
}

/// What the HTTP handlers of the cluster work with.
#[derive(Clone)]
pub struct ClusterState {
    pub hub: Arc<Hub>,
    pub cluster: Arc<Cluster>,
    pub relay: Relay,
}

/// `/readyz` and the endpoints other nodes call.
pub fn router<S: Clone + Send + Sync + 'static>(state: ClusterState) -> Router<S> {
    Router::new()
        .route("/cluster/pull/{app_id}/{stream_id}", post(serve_pull))
        .route("/cluster/pull/{session}", delete(end_served_pull))
        .route("/cluster/nodes", get(nodes))
        .with_state(state)
}

/// The running nodes with their signaling URLs and load, the least loaded first: where to send a client.
async fn nodes(State(state): State<ClusterState>) -> Json<Vec<NodeInfo>> {
    let mut this = state.cluster.info.clone();
    this.load = state.hub.load_now();
    let mut nodes: Vec<NodeInfo> = state.cluster.nodes.lock().values().cloned().collect();
    nodes.push(this);
    nodes.sort_by_key(|n| (n.load.viewers, n.load.sessions, n.node.clone()));
    Json(nodes)
}

/// Another node pulls a stream published here: the relay answers its offer as a player's.
async fn serve_pull(
    State(state): State<ClusterState>,
    Path((app_id, stream_id)): Path<(u32, String)>,
    headers: HeaderMap,
    offer: String,
) -> Response {
    if !state.cluster.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "the cluster secret is wrong\n").into_response();
    }
    let key = StreamKey { app_id, stream_id };
    if !state.hub.publishes_here(&key) {
        return (StatusCode::NOT_FOUND, "the stream is not published here\n").into_response();
    }
    match state.relay.play(key, &offer).await {
        Ok((session, answer)) => {
            state.cluster.served.lock().insert(session);
            tracing::info!(relay_session = session, "serving a pull to another node");
            (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_owned()),
                    (header::LOCATION, format!("/cluster/pull/{session}")),
                ],
                answer,
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!("refused another node's pull: {e}");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

async fn end_served_pull(
    State(state): State<ClusterState>,
    Path(session): Path<zego_relay::SessionId>,
    headers: HeaderMap,
) -> Response {
    if !state.cluster.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "the cluster secret is wrong\n").into_response();
    }
    if !state.cluster.served.lock().remove(&session) {
        return (StatusCode::NOT_FOUND, "no such pull\n").into_response();
    }
    state.relay.close_session(session);
    StatusCode::NO_CONTENT.into_response()
}
