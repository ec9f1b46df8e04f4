//! zego-server: the self-hosted cloud side of the zego-express SDK.
//!
//! It keeps rooms, users and streams per app, checks logins (app_sign signature or Token04), keeps sessions alive
//! with heartbeats, sends room events, and hands WebRTC offers to the media relay ([`zego_relay`]), which carries
//! all media on one UDP port. Signaling is JSON over a WebSocket at [`zego_protocol::message::SIGNALING_PATH`];
//! `/healthz` and `/metrics` (Prometheus) sit beside it, with the web debug page and the JavaScript SDK (embedded
//! at build time) at `/`, `/debug/` and `/sdk/`.
//!
//! Where things live: `registry` is the sans-IO room core (apps → rooms → sessions, streams, plays) driven by
//! inputs and the current time; `hub` applies its outputs to connections and the relay; `connection` serves
//! one WebSocket; `server` starts and stops it all. `cluster` makes a node of several run as one, through a
//! directory in Redis (docs/cluster.md).
//!
//! ```no_run
//! # async fn run() -> Result<(), zego_server::StartError> {
//! let server = zego_server::Server::start(zego_server::ServerConfig::default()).await?;
//! println!("connect to {}", server.ws_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod assets;
mod auth;
pub mod cli;
mod clock;
mod cluster;
pub mod config;
mod connection;
mod dev_token;
mod frame_limit;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod hub;
mod listener;
pub mod logging;
mod metrics;
pub mod open_files;
mod rate;
mod rooms;
pub mod server;
mod whip;

pub use config::{
    AppConfig, ClusterConfig, ConfigError, FileConfig, ServerConfig, DEV_APP_ID, DEV_APP_SIGN,
    DEV_SERVER_SECRET,
};
pub use server::{EmbeddedServer, Server, ServerHandle, StartError};
