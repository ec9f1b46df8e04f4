//! What a server runs with: addresses, apps and timers, from code ([`ServerConfig`]) or a TOML file ([`FileConfig`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use zego_protocol::{limits, validate};

/// The app every bare server knows, so that a quickstart and tests need no configuration.
/// Never use it on a server reachable by others: its keys are public.
pub const DEV_APP_ID: u32 = 1_234_567_890;
/// The app_sign of [`DEV_APP_ID`] (64 hex characters).
pub const DEV_APP_SIGN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The server secret (Token04 key) of [`DEV_APP_ID`] (32 characters).
pub const DEV_SERVER_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// HTTP/WebSocket address of a bare `zego-server` binary.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9180);
/// UDP media address of a bare `zego-server` binary.
pub const DEFAULT_MEDIA: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9181);

/// Open connections a server keeps by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Open connections from one client address by default: room for many users behind one NAT.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// A WebSocket upgrade request is a few hundred bytes: a client has this long to send it.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which a connection is closed; well above the heartbeat interval, so live clients never hit it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One app: its id and the two keys its users prove themselves with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub app_id: u32,
    /// 64 hex characters; clients log in with an HMAC made with it.
    pub app_sign: String,
    /// 32 characters; the app's backend mints Token04 tokens with it.
    pub server_secret: String,
}

impl AppConfig {
    /// The development app ([`DEV_APP_ID`], [`DEV_APP_SIGN`], [`DEV_SERVER_SECRET`]).
    pub fn dev() -> Self {
        AppConfig {
            app_id: DEV_APP_ID,
            app_sign: DEV_APP_SIGN.to_owned(),
            server_secret: DEV_SERVER_SECRET.to_owned(),
        }
    }

    /// Parses the `APP_ID:APP_SIGN:SERVER_SECRET` form of the `--app` flag.
    pub fn parse_flag(value: &str) -> Result<Self, ConfigError> {
        let mut parts = value.splitn(3, ':');
        let (Some(id), Some(sign), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ConfigError::Invalid(format!(
                "--app wants APP_ID:APP_SIGN:SERVER_SECRET, got {value:?}"
            )));
        };
        let app_id = id.parse().map_err(|_| {
            ConfigError::Invalid(format!("app_id {id:?} is not a 32-bit unsigned number"))
        })?;
        let app = AppConfig {
            app_id,
            app_sign: sign.to_owned(),
            server_secret: secret.to_owned(),
        };
        app.validate()?;
        Ok(app)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if validate::app_sign(&self.app_sign).is_err() {
            return Err(ConfigError::Invalid(format!(
                "app {}: app_sign must be {} hex characters",
                self.app_id,
                limits::APP_SIGN_HEX_LEN
            )));
        }
        if self.server_secret.len() != limits::SERVER_SECRET_LEN || !self.server_secret.is_ascii() {
            return Err(ConfigError::Invalid(format!(
                "app {}: server_secret must be {} ASCII characters",
                self.app_id,
                limits::SERVER_SECRET_LEN
            )));
        }
        Ok(())
    }
}

/// Everything a [`crate::Server`] runs with. The default is the development app on ephemeral loopback ports.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP: the WebSocket endpoint, `/healthz` and `/metrics`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The one UDP socket of all media. Port 0 picks a free port.
    pub media_bind: SocketAddr,
    /// The address put in ICE candidates, when clients reach the media socket by another address
    /// (NAT, an impairment relay in front). Default: the bound address.
    pub media_announce: Option<SocketAddr>,
    /// The relay's I/O threads on the media port; 0 means one per core.
    pub media_threads: usize,
    pub apps: Vec<AppConfig>,
    /// How often clients are asked to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// Silence after which a session is removed.
    pub heartbeat_timeout: Duration,
    /// How often every room is told its online user count.
    pub online_count_interval: Duration,
    /// How long before a token expires its holder is warned.
    pub token_expire_notice: Duration,
    /// Messages queued for one connection before it is treated as a slow reader and disconnected.
    pub send_queue_capacity: usize,
    /// Open TCP connections the HTTP listener keeps at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Open TCP connections from one client address, so that one host cannot take every slot.
    pub max_connections_per_ip: usize,
    /// Time a connection has to send a complete HTTP request head (the WebSocket upgrade), from when the
    /// server starts waiting for it.
    pub header_read_timeout: Duration,
    /// A connection on which nothing arrives for this long is closed.
    pub idle_timeout: Duration,
    /// Run as one node of a cluster coordinated through Redis; `None`: a single server.
    pub cluster: Option<ClusterConfig>,
}

/// One node of a cluster (docs/cluster.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Redis server of the directory, e.g. `redis://127.0.0.1:6379`.
    pub redis: String,
    /// This node's name, unique among the running nodes.
    pub node_id: String,
    /// Where the other nodes reach this one's HTTP endpoints, e.g. `http://10.0.0.5:9180` [default: the listen
    /// address].
    #[serde(default)]
    pub advertise: Option<String>,
    /// The secret every node of the cluster shares: a node pulls another's streams with it. At least 16 characters.
    pub secret: String,
}

/// The shortest cluster secret a node accepts.
pub const CLUSTER_SECRET_MIN: usize = 16;

impl ClusterConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.redis.starts_with("redis://") && !self.redis.starts_with("unix://") {
            return Err(ConfigError::Invalid(format!(
                "cluster: redis must be a redis:// or unix:// URL, got {:?}",
                self.redis
            )));
        }
        let id_ok = !self.node_id.is_empty()
            && self.node_id.len() <= 64
            && self
                .node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !id_ok {
            return Err(ConfigError::Invalid(format!(
                "cluster: node_id must be 1-64 characters of A-Z a-z 0-9 - _ ., got {:?}",
                self.node_id
            )));
        }
        if self.secret.len() < CLUSTER_SECRET_MIN {
            return Err(ConfigError::Invalid(format!(
                "cluster: secret must be at least {CLUSTER_SECRET_MIN} characters"
            )));
        }
        if let Some(advertise) = &self.advertise {
            if !advertise.starts_with("http://") {
                return Err(ConfigError::Invalid(format!(
                    "cluster: advertise must be an http:// URL, got {advertise:?}"
                )));
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
        ServerConfig {
            listen: loopback,
            media_bind: loopback,
            media_announce: None,
            media_threads: 0,
            apps: vec![AppConfig::dev()],
            heartbeat_interval: limits::HEARTBEAT_INTERVAL,
            heartbeat_timeout: limits::HEARTBEAT_TIMEOUT,
            online_count_interval: limits::ONLINE_COUNT_INTERVAL,
            token_expire_notice: limits::TOKEN_WILL_EXPIRE_NOTICE,
            send_queue_capacity: 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            cluster: None,
        }
    }
}

impl ServerConfig {
    /// Refuses configurations the server cannot run with, naming the culprit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        if self.apps.is_empty() {
            return Err(ConfigError::Invalid("no app is configured".into()));
        }
        let mut ids = std::collections::HashSet::new();
        for app in &self.apps {
            app.validate()?;
            if !ids.insert(app.app_id) {
                return Err(ConfigError::Invalid(format!(
                    "app {} is configured twice",
                    app.app_id
                )));
            }
        }
        if self.heartbeat_interval.is_zero() || self.online_count_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "heartbeat and online count intervals must be above zero".into(),
            ));
        }
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(ConfigError::Invalid(format!(
                "heartbeat timeout ({:?}) must be longer than the heartbeat interval ({:?})",
                self.heartbeat_timeout, self.heartbeat_interval
            )));
        }
        if self.send_queue_capacity == 0 {
            return Err(ConfigError::Invalid(
                "send_queue_capacity must be above zero".into(),
            ));
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "max_connections and max_connections_per_ip must be above zero".into(),
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "the header read timeout must be above zero".into(),
            ));
        }
        if self.idle_timeout <= self.heartbeat_interval {
            return Err(ConfigError::Invalid(format!(
                "idle timeout ({:?}) must be longer than the heartbeat interval ({:?})",
                self.idle_timeout, self.heartbeat_interval
            )));
        }
        Ok(())
    }

    /// Whether the only app is the public development app.
    pub fn uses_dev_app(&self) -> bool {
        self.apps
            .iter()
            .any(|a| a.app_id == DEV_APP_ID && a.app_sign == DEV_APP_SIGN)
    }
}

/// The TOML file given with `--config`. Every key is optional; flags override it.
///
/// ```toml
/// listen = "0.0.0.0:9180"
/// media = "0.0.0.0:9181"
/// announce = "203.0.113.7:9181"
/// log = "info"
/// heartbeat_interval_ms = 10000
/// heartbeat_timeout_ms = 30000
/// online_count_interval_ms = 30000
/// max_connections = 10000
/// max_connections_per_ip = 256
/// header_read_timeout_ms = 10000
/// idle_timeout_ms = 60000
///
/// [[apps]]
/// app_id = 1234567890
/// app_sign = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
/// server_secret = "0123456789abcdef0123456789abcdef"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub media: Option<SocketAddr>,
    pub announce: Option<SocketAddr>,
    pub media_threads: Option<usize>,
    pub log: Option<String>,
    pub heartbeat_interval_ms: Option<u64>,
    pub heartbeat_timeout_ms: Option<u64>,
    pub online_count_interval_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    pub cluster: Option<ClusterConfig>,
}

impl FileConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_dev_app_on_ephemeral_loopback_ports() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        assert_eq!(config.listen.port(), 0);
        assert!(config.listen.ip().is_loopback());
        assert!(config.uses_dev_app());
    }

    #[test]
    fn dev_app_keys_have_the_required_shape() {
        AppConfig::dev().validate().unwrap();
    }

    #[test]
    fn app_flag_parses_and_checks_keys() {
        let app = AppConfig::parse_flag(&format!("7:{DEV_APP_SIGN}:{DEV_SERVER_SECRET}")).unwrap();
        assert_eq!(app.app_id, 7);
        assert!(AppConfig::parse_flag("7:abc:def").is_err());
        assert!(AppConfig::parse_flag(&format!("x:{DEV_APP_SIGN}:{DEV_SERVER_SECRET}")).is_err());
        assert!(AppConfig::parse_flag("7").is_err());
    }

    #[test]
    fn file_parses_every_key_and_refuses_unknown_ones() {
        let file = FileConfig::parse(&format!(
            r#"
            listen = "0.0.0.0:1"
            media = "0.0.0.0:2"
            announce = "10.0.0.1:2"
            log = "debug"
            heartbeat_interval_ms = 100
            heartbeat_timeout_ms = 300
            online_count_interval_ms = 50
            max_connections = 20
            max_connections_per_ip = 4
            header_read_timeout_ms = 700
            idle_timeout_ms = 900
            [[apps]]
            app_id = 5
            app_sign = "{DEV_APP_SIGN}"
            server_secret = "{DEV_SERVER_SECRET}"
            "#
        ))
        .unwrap();
        assert_eq!(file.listen, Some("0.0.0.0:1".parse().unwrap()));
        assert_eq!(file.apps[0].app_id, 5);
        assert_eq!(file.heartbeat_timeout_ms, Some(300));
        assert_eq!(file.max_connections, Some(20));
        assert_eq!(file.max_connections_per_ip, Some(4));
        assert_eq!(file.header_read_timeout_ms, Some(700));
        assert_eq!(file.idle_timeout_ms, Some(900));
        assert!(FileConfig::parse("lisen = \"0.0.0.0:1\"").is_err());
    }

    #[test]
    fn refuses_duplicate_apps_and_short_timeouts() {
        let mut config = ServerConfig::default();
        config.apps.push(AppConfig::dev());
        assert!(config.validate().is_err());
        let config = ServerConfig {
            heartbeat_timeout: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(2),
            ..ServerConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn refuses_no_connections_and_an_idle_timeout_below_the_heartbeat() {
        for config in [
            ServerConfig {
                max_connections_per_ip: 0,
                ..ServerConfig::default()
            },
            ServerConfig {
                header_read_timeout: Duration::ZERO,
                ..ServerConfig::default()
            },
            ServerConfig {
                idle_timeout: limits::HEARTBEAT_INTERVAL,
                ..ServerConfig::default()
            },
        ] {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
