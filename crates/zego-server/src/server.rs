//! Starting and stopping a server: in a tokio runtime ([`Server::start`]) or on its own thread
//! ([`EmbeddedServer::start`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zego_protocol::message::SIGNALING_PATH;
use zego_relay::{Relay, RelayConfig, RelayEvent};

use crate::auth::AppKeys;
use crate::clock::Now;
use crate::cluster::{self, Cluster, ClusterState};
use crate::config::{ConfigError, ServerConfig};
use crate::connection::ConnectionSettings;
use crate::dev_token::DevApp;
use crate::http::{self, HttpState};
use crate::hub::Hub;
use crate::listener::{self, ListenerLimits};
use crate::rooms::{Registry, Settings};

/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind the media socket {addr}: {source}")]
    Media { addr: SocketAddr, source: io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("the server thread failed: {0}")]
    Thread(String),
}

/// The signaling server and its media relay.
pub struct Server;

impl Server {
    /// Binds the HTTP listener and the media socket and starts serving. Needs a tokio runtime with time and I/O.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, StartError> {
        config.validate()?;
        let keys = config
            .apps
            .iter()
            .map(|app| {
                AppKeys::new(app)
                    .map_err(|_| ConfigError::Invalid(format!("app {}: bad app_sign", app.app_id)))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let relay = Relay::start(RelayConfig {
            bind: config.media_bind,
            announce: config.media_announce,
            io_threads: config.media_threads,
        })
        .await
        .map_err(|source| StartError::Media {
            addr: config.media_bind,
            source,
        })?;
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(source) => {
                relay.shutdown().await;
                return Err(StartError::Listen {
                    addr: config.listen,
                    source,
                });
            }
        };
        let http_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;

        let settings = Settings::from_config(&config);
        let ws_url = format!("ws://{}{SIGNALING_PATH}", connectable(http_addr));
        let cluster = config
            .cluster
            .clone()
            .map(|c| Cluster::new(c, format!("http://{}", connectable(http_addr)), ws_url));
        let hub = Hub::new(
            Registry::new(settings, &keys),
            relay.clone(),
            cluster.as_ref().map(|(c, _)| c.clone()),
        );
        let shutdown = CancellationToken::new();
        let mut tasks = vec![
            tokio::spawn(run_timers(
                hub.clone(),
                tick_period(&settings),
                shutdown.clone(),
            )),
            tokio::spawn(watch_relay(hub.clone(), relay.events(), shutdown.clone())),
        ];
        let mut cluster_router = None;
        if let Some((cluster, events)) = cluster {
            tasks.push(tokio::spawn(cluster::run_directory(
                hub.clone(),
                cluster.clone(),
                events,
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(cluster::run_sweeper(
                hub.clone(),
                cluster.clone(),
                relay.clone(),
                shutdown.clone(),
            )));
            cluster_router = Some(cluster::router(ClusterState {
                hub: hub.clone(),
                cluster,
                relay: relay.clone(),
            }));
        }
        let mut router = http::router(HttpState {
            hub: hub.clone(),
            shutdown: shutdown.clone(),
            connections: ConnectionSettings {
                queue_capacity: config.send_queue_capacity,
                login_timeout: config.heartbeat_timeout,
            },
            next_conn: Arc::new(AtomicU64::new(0)),
            dev_app: DevApp::from_apps(&config.apps),
        });
        if let Some(cluster_router) = cluster_router {
            router = router.merge(cluster_router);
        }
        let limits = ListenerLimits {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
        };
        tasks.push(tokio::spawn(listener::serve(
            listener,
            router,
            limits,
            shutdown.clone(),
        )));

        let handle = ServerHandle {
            http_addr,
            media_addr: relay.local_addr(),
            announced_media_addr: relay.announced_addr(),
            hub,
            relay,
            shutdown,
            tasks,
        };
        tracing::info!(
            ws = %handle.ws_url(),
            media = %handle.media_addr,
            announced = %handle.announced_media_addr,
            apps = keys.len(),
            "server started"
        );
        Ok(handle)
    }
}

/// A running server. Dropping it without [`ServerHandle::shutdown`] leaves its tasks running until the runtime ends.
pub struct ServerHandle {
    http_addr: SocketAddr,
    media_addr: SocketAddr,
    announced_media_addr: SocketAddr,
    hub: Arc<Hub>,
    relay: Relay,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The URL clients connect to, e.g. `ws://127.0.0.1:9180/ws` (a wildcard listen address becomes loopback).
    pub fn ws_url(&self) -> String {
        format!("ws://{}{SIGNALING_PATH}", connectable(self.http_addr))
    }

    /// The bound HTTP address (`/healthz`, `/metrics`, the WebSocket endpoint).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound UDP media address.
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// The media address put in ICE candidates.
    pub fn announced_media_addr(&self) -> SocketAddr {
        self.announced_media_addr
    }

    /// The `/metrics` text, without going through HTTP.
    pub fn metrics_text(&self) -> String {
        self.hub.metrics_text()
    }

    /// Tells every client the server is going away, stops accepting connections and closes the relay.
    pub async fn shutdown(self) {
        tracing::info!("server shutting down");
        self.hub.close_all();
        self.shutdown.cancel();
        let tasks = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks).await.is_err() {
            tracing::warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
        }
        self.relay.shutdown().await;
        tracing::info!("server stopped");
    }
}

/// A wildcard bind address is reached through loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Timers are checked this often: a tenth of the shortest timer, between 10 ms and 250 ms.
fn tick_period(settings: &Settings) -> Duration {
    let shortest = settings
        .heartbeat_timeout
        .min(settings.online_count_interval)
        .min(settings.token_expire_notice.max(Duration::from_secs(1)));
    (shortest / 10).clamp(Duration::from_millis(10), Duration::from_millis(250))
}

/// The one place timers run: heartbeat timeouts, token warnings and expiries, online counts.
async fn run_timers(hub: Arc<Hub>, period: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => hub.tick(Now::system()),
        }
    }
}

/// Relay session events: a media connection that ended on its own ends its play, or its stream after a grace; a
/// publisher the relay lost (no media for its timeout) loses its streams at once, and their players are told.
async fn watch_relay(
    hub: Arc<Hub>,
    mut events: tokio::sync::broadcast::Receiver<RelayEvent>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = events.recv() => event,
        };
        match event {
            Ok(RelayEvent::Connected(id)) => tracing::debug!(relay_session = id, "media connected"),
            Ok(RelayEvent::Disconnected(id)) => {
                tracing::debug!(relay_session = id, "media disconnected");
                hub.relay_disconnected(id);
            }
            Ok(RelayEvent::Lost(id)) => {
                tracing::debug!(relay_session = id, "media lost");
                hub.relay_lost(id);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "relay events lagged")
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// A server on its own thread with its own tokio runtime, for callers without one (tests, C, FFI).
/// Stops when dropped.
pub struct EmbeddedServer {
    ws_url: String,
    http_addr: SocketAddr,
    media_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedServer {
    pub fn start(config: ServerConfig) -> Result<Self, StartError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("zego-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("zego-server-worker")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StartError::Thread(e.to_string())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Server::start(config).await {
                        Ok(handle) => {
                            let _ = ready_tx.send(Ok((
                                handle.ws_url(),
                                handle.http_addr(),
                                handle.media_addr(),
                            )));
                            let _ = stop_rx.await;
                            handle.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| StartError::Thread(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok((ws_url, http_addr, media_addr))) => Ok(EmbeddedServer {
                ws_url,
                http_addr,
                media_addr,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Thread(
                    "the server thread ended before starting".into(),
                ))
            }
        }
    }

    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// Shuts the server down and waits for its thread.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}
