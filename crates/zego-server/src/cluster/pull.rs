//! Streams published on other nodes, pulled for the players of this one: one relay-to-relay session per stream,
//! opened for the first player and closed a little after the last one left (or when the stream ends).
//!
//! The relay makes the pull's offer ([`Relay::pull`]); the offer goes to the owner node's
//! [`zego_protocol::cluster::pull_path`] over HTTP and its answer back to the relay ([`Relay::complete_pull`]).
//! Repair (NACK) and keyframe requests then pass hop by hop, and this relay's keyframe cache serves its players.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use zego_protocol::cluster::{pull_path, NodeId};
use zego_relay::{Relay, RelayError, SessionId, StreamKey};

use super::Cluster;
use crate::hub::Hub;

/// A pull with no player left is closed after this long (a player switching streams or rejoining keeps it).
const IDLE_LINGER: Duration = Duration::from_secs(3);
/// How long the owner node has to answer a pull.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// A stream whose pull failed is not pulled again by the sweeper before this long (a new player still tries).
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How often pulls are checked against their audience.
const SWEEP_PERIOD: Duration = Duration::from_millis(500);
/// The largest SDP answer taken from another node.
const ANSWER_MAX: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("the stream's node is not in the cluster directory")]
    UnknownNode,
    #[error("the stream's node cannot be reached: {0}")]
    Unreachable(String),
    #[error("the stream's node refused the pull ({0})")]
    Refused(StatusCode),
    #[error(transparent)]
    Relay(#[from] RelayError),
}

struct Pull {
    relay: SessionId,
    origin: NodeId,
    /// The owner node's URL of this pull, to end it there.
    location: String,
    idle_since: Option<Instant>,
}

/// The open pulls, by stream.
#[derive(Default)]
pub struct Pulls {
    open: Mutex<HashMap<StreamKey, Pull>>,
    /// One exchange at a time per stream, so that players arriving together open one pull (and a slow node
    /// delays only the pulls of its own streams).
    opening: Mutex<HashMap<StreamKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Streams whose last pull failed, and when: the sweeper does not try them again before [`RETRY_AFTER`].
    failed: Mutex<HashMap<StreamKey, Instant>>,
}

impl Pulls {
    pub async fn ensure(
        &self,
        relay: &Relay,
        key: &StreamKey,
        origin: &str,
        http: &str,
        secret: &str,
    ) -> Result<(), PullError> {
        let lock = self.opening.lock().entry(key.clone()).or_default().clone();
        let _opening = lock.lock().await;
        let outcome = self.open_once(relay, key, origin, http, secret).await;
        {
            let mut opening = self.opening.lock();
            // The last one out removes the lock (the map holds one reference, this call another).
            if Arc::strong_count(&lock) <= 2 {
                opening.remove(key);
            }
        }
        match &outcome {
            Ok(()) => self.failed.lock().remove(key),
            Err(_) => self.failed.lock().insert(key.clone(), Instant::now()),
        };
        outcome
    }

    async fn open_once(
        &self,
        relay: &Relay,
        key: &StreamKey,
        origin: &str,
        http: &str,
        secret: &str,
    ) -> Result<(), PullError> {
        if let Some(pull) = self.open.lock().get_mut(key) {
            if pull.origin == origin {
                pull.idle_since = None;
                return Ok(());
            }
        }
        if let Some(stale) = self.open.lock().remove(key) {
            end_at_origin(relay, stale, secret);
        }
        let (session, offer) = relay.pull(key.clone()).await?;
        let url = format!("{http}{}", pull_path(key.app_id, &key.stream_id));
        let exchange = exchange(Method::POST, &url, secret, offer);
        let outcome = match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
            Ok(Ok((StatusCode::CREATED, location, answer))) => {
                match relay.complete_pull(session, &answer).await {
                    Ok(()) => Ok(location),
                    Err(e) => Err(PullError::Relay(e)),
                }
            }
            Ok(Ok((status, _, _))) => Err(PullError::Refused(status)),
            Ok(Err(e)) => Err(PullError::Unreachable(e)),
            Err(_) => Err(PullError::Unreachable("no answer in time".into())),
        };
        let location = match outcome {
            Ok(location) => location,
            Err(e) => {
                relay.close_session(session);
                return Err(e);
            }
        };
        tracing::info!(
            stream_id = %key.stream_id,
            origin,
            relay_session = session,
            "pulling a stream from its node"
        );
        self.open.lock().insert(
            key.clone(),
            Pull {
                relay: session,
                origin: origin.to_owned(),
                location: location.map_or_else(String::new, |l| format!("{http}{l}")),
                idle_since: None,
            },
        );
        Ok(())
    }

    /// The relay session of a pull ended on its own (the owner node went away or closed it).
    pub fn ended(&self, session: SessionId) {
        self.open.lock().retain(|_, pull| pull.relay != session);
    }
}

/// Closes pulls without players (after [`IDLE_LINGER`]) or whose stream ended or moved, and opens a pull again
/// for a stream whose players are still there when its pull ended on its own.
pub async fn run_sweeper(
    hub: Arc<Hub>,
    cluster: Arc<Cluster>,
    relay: Relay,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(SWEEP_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let mut ended = Vec::new();
        {
            let mut open = cluster.pulls.open.lock();
            open.retain(|key, pull| {
                let origin_now = hub.origin_of(key);
                let players = hub.players_of(key);
                let keep = if origin_now.as_deref() != Some(pull.origin.as_str()) {
                    false
                } else if players > 0 {
                    pull.idle_since = None;
                    true
                } else {
                    let since = *pull.idle_since.get_or_insert(now);
                    now.duration_since(since) < IDLE_LINGER
                };
                if !keep {
                    ended.push((
                        key.clone(),
                        Pull {
                            relay: pull.relay,
                            origin: std::mem::take(&mut pull.origin),
                            location: std::mem::take(&mut pull.location),
                            idle_since: None,
                        },
                    ));
                }
                keep
            });
        }
        for (key, pull) in ended {
            tracing::info!(stream_id = %key.stream_id, relay_session = pull.relay, "pull closed");
            end_at_origin(&relay, pull, &cluster.config.secret);
        }
        // Players still there whose pull ended on its own: pull again (not at once after a failure).
        cluster
            .pulls
            .failed
            .lock()
            .retain(|_, at| at.elapsed() < RETRY_AFTER);
        for (key, origin) in hub.remote_audiences() {
            if cluster.pulls.open.lock().contains_key(&key)
                || cluster.pulls.failed.lock().contains_key(&key)
            {
                continue;
            }
            if let Err(e) = cluster.ensure_pull(&relay, &key, &origin).await {
                tracing::warn!(stream_id = %key.stream_id, origin, "cannot pull again: {e}");
            }
        }
    }
    let open: Vec<Pull> = cluster.pulls.open.lock().drain().map(|(_, p)| p).collect();
    for pull in open {
        end_at_origin(&relay, pull, &cluster.config.secret);
    }
}

/// Closes a pull here and tells its owner node (best effort: its relay also closes the session when it hears
/// nothing more from here).
fn end_at_origin(relay: &Relay, pull: Pull, secret: &str) {
    relay.close_session(pull.relay);
    if pull.location.is_empty() {
        return;
    }
    let secret = secret.to_owned();
    tokio::spawn(async move {
        let request = exchange(Method::DELETE, &pull.location, &secret, String::new());
        if let Ok(Err(e)) = tokio::time::timeout(EXCHANGE_TIMEOUT, request).await {
            tracing::debug!("ending a pull at its node: {e}");
        }
    });
}

/// One HTTP/1.1 request to another node: the status, the `Location` header and the body.
async fn exchange(
    method: Method,
    url: &str,
    secret: &str,
    body: String,
) -> Result<(StatusCode, Option<String>, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority)
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(Body::new(response.into_body()), ANSWER_MAX)
        .await
        .map_err(|e| e.to_string())?;
    let body =
        String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".to_owned())?;
    Ok((status, location, body))
}
