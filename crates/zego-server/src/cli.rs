//! The `zego-server` command line: serve (the default), and `token generate` / `token verify`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::token04::{self, Claims, Mode, Privilege};

use crate::config::{
    AppConfig, ClusterConfig, ConfigError, FileConfig, ServerConfig, DEFAULT_LISTEN, DEFAULT_MEDIA,
    DEV_APP_ID, DEV_APP_SIGN, DEV_SERVER_SECRET,
};

#[derive(Debug, Parser)]
#[command(
    name = "zego-server",
    version,
    about = "Self-hosted signaling server and WebRTC media relay for the zego-express SDK",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint or inspect Token04 room tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Serving options; each overrides the same key of the `--config` file.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP/WebSocket listen address [default: 127.0.0.1:9180].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The one UDP address of all media [default: 127.0.0.1:9181].
    #[arg(long, value_name = "ADDR")]
    pub media: Option<SocketAddr>,
    /// The media address announced in ICE candidates [default: the bound media address].
    #[arg(long, value_name = "ADDR")]
    pub announce: Option<SocketAddr>,
    /// I/O threads of the media relay, all on the one media port [default: 0, one per core].
    #[arg(long, value_name = "N")]
    pub media_threads: Option<usize>,
    /// An app, as APP_ID:APP_SIGN:SERVER_SECRET (repeatable). Without any, the development app is served.
    #[arg(long = "app", value_name = "APP_ID:APP_SIGN:SECRET", value_parser = parse_app)]
    pub apps: Vec<AppConfig>,
    /// Heartbeat interval asked of clients, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Silence after which a session is removed, in milliseconds [default: 30000].
    #[arg(long, value_name = "MS")]
    pub heartbeat_timeout_ms: Option<u64>,
    /// How often rooms get their online user count, in milliseconds [default: 30000].
    #[arg(long, value_name = "MS")]
    pub online_count_interval_ms: Option<u64>,
    /// Open connections kept at once; more are closed when accepted [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open connections kept from one client address [default: 256].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Time a connection has to send its HTTP request head, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Silence after which a connection is closed, in milliseconds [default: 60000].
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Join a cluster whose directory is this Redis server (redis://HOST:PORT); needs --node-id and
    /// --cluster-secret.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// This node's name in the cluster.
    #[arg(long, value_name = "NAME")]
    pub node_id: Option<String>,
    /// Where the other nodes reach this one's HTTP endpoints [default: http://LISTEN].
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// The secret the nodes of the cluster share [default: $ZEGO_CLUSTER_SECRET].
    #[arg(
        long,
        value_name = "SECRET",
        env = "ZEGO_CLUSTER_SECRET",
        hide_env_values = true
    )]
    pub cluster_secret: Option<String>,
    /// Log filter (tracing EnvFilter syntax) [default: $RUST_LOG, else "info"].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

impl ServeArgs {
    /// The cluster to join: the file's `[cluster]` table with each flag over its key; none without a Redis URL.
    fn cluster(&self, file: Option<ClusterConfig>) -> Result<Option<ClusterConfig>, ConfigError> {
        let Some(redis) = self
            .redis
            .clone()
            .or_else(|| file.as_ref().map(|c| c.redis.clone()))
        else {
            if self.node_id.is_some() || self.advertise.is_some() {
                return Err(ConfigError::Invalid(
                    "--node-id and --advertise need --redis (or a [cluster] table)".into(),
                ));
            }
            return Ok(None);
        };
        let missing = |what: &str| {
            ConfigError::Invalid(format!("a cluster node needs {what} (see docs/cluster.md)"))
        };
        let node_id = self
            .node_id
            .clone()
            .or_else(|| file.as_ref().map(|c| c.node_id.clone()))
            .ok_or_else(|| missing("--node-id"))?;
        let secret = self
            .cluster_secret
            .clone()
            .or_else(|| file.as_ref().map(|c| c.secret.clone()))
            .ok_or_else(|| missing("--cluster-secret or ZEGO_CLUSTER_SECRET"))?;
        let advertise = self
            .advertise
            .clone()
            .or_else(|| file.and_then(|c| c.advertise));
        Ok(Some(ClusterConfig {
            redis,
            node_id,
            advertise,
            secret,
        }))
    }
}

fn parse_app(value: &str) -> Result<AppConfig, String> {
    AppConfig::parse_flag(value).map_err(|e| e.to_string())
}

impl ServeArgs {
    /// The server configuration and log filter: flags over the file over the defaults.
    pub fn resolve(&self) -> Result<(ServerConfig, Option<String>), ConfigError> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let mut config = ServerConfig {
            listen: self.listen.or(file.listen).unwrap_or(DEFAULT_LISTEN),
            media_bind: self.media.or(file.media).unwrap_or(DEFAULT_MEDIA),
            media_announce: self.announce.or(file.announce),
            media_threads: self.media_threads.or(file.media_threads).unwrap_or(0),
            ..ServerConfig::default()
        };
        if !self.apps.is_empty() {
            config.apps = self.apps.clone();
        } else if !file.apps.is_empty() {
            config.apps = file.apps.clone();
        }
        let ms = Duration::from_millis;
        if let Some(v) = self.heartbeat_interval_ms.or(file.heartbeat_interval_ms) {
            config.heartbeat_interval = ms(v);
        }
        if let Some(v) = self.heartbeat_timeout_ms.or(file.heartbeat_timeout_ms) {
            config.heartbeat_timeout = ms(v);
        }
        if let Some(v) = self
            .online_count_interval_ms
            .or(file.online_count_interval_ms)
        {
            config.online_count_interval = ms(v);
        }
        if let Some(v) = self.max_connections.or(file.max_connections) {
            config.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_ip.or(file.max_connections_per_ip) {
            config.max_connections_per_ip = v;
        }
        if let Some(v) = self.header_read_timeout_ms.or(file.header_read_timeout_ms) {
            config.header_read_timeout = ms(v);
        }
        if let Some(v) = self.idle_timeout_ms.or(file.idle_timeout_ms) {
            config.idle_timeout = ms(v);
        }
        config.validate()?;
        config.cluster = self.cluster(file.cluster.clone())?;
        Ok((config, self.log.clone().or(file.log)))
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token.
    Generate(GenerateArgs),
    /// Print what a token contains and whether it is valid (exit status 1 if not).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub app_id: u32,
    /// The app's 32-character server secret.
    #[arg(long)]
    pub secret: String,
    #[arg(long)]
    pub user_id: String,
    /// Restrict the token to this room (a privilege payload that grants logging in to it); without it the
    /// token allows any room.
    #[arg(long)]
    pub room_id: Option<String>,
    /// Grant logging in to --room-id (implied by --room-id; accepted for older scripts).
    #[arg(long, requires = "room_id", hide = true)]
    pub login: bool,
    /// Grant publishing in --room-id.
    #[arg(long, requires = "room_id")]
    pub publish: bool,
    /// Only these stream ids may be published (repeatable; default: any).
    #[arg(long = "stream-id", requires = "room_id")]
    pub stream_ids: Vec<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    pub lifetime: i64,
    /// The legacy AES-CBC format instead of AES-GCM.
    #[arg(long)]
    pub cbc: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The app's 32-character server secret.
    #[arg(long)]
    pub secret: String,
    /// Check the token is for this app.
    #[arg(long)]
    pub app_id: Option<u32>,
    /// Check the token is for this user.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Also check the token allows logging in to this room.
    #[arg(long)]
    pub room_id: Option<String>,
    pub token: String,
}

/// A refusal in the words of the error table: `1002078 ROOM_TOKEN_EXPIRED: Token expired.`
pub fn describe(code: ErrorCode) -> String {
    format!(
        "{code} {}: {}",
        error::name(code).unwrap_or("UNKNOWN"),
        error::message(code)
    )
}

fn now_unix() -> i64 {
    crate::clock::Now::system().unix_secs()
}

/// Refuses a secret of the wrong length in words a user can act on (the token layer only says "internal error").
fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() == token04::SECRET_LEN {
        return Ok(());
    }
    Err(format!(
        "--secret must be the app's server secret of exactly {} bytes (got {})",
        token04::SECRET_LEN,
        secret.len()
    ))
}

pub fn generate(args: &GenerateArgs) -> Result<String, String> {
    check_secret(&args.secret)?;
    if args.lifetime <= 0 {
        return Err("--lifetime must be above zero".into());
    }
    let payload = match &args.room_id {
        None => String::new(),
        // A token for one room that could not log in to it would be useless: --room-id grants login.
        Some(room_id) => Privilege {
            room_id: room_id.clone(),
            login_room: true,
            publish: args.publish,
            stream_id_list: (!args.stream_ids.is_empty()).then(|| args.stream_ids.clone()),
        }
        .to_payload(),
    };
    let now = now_unix();
    let claims = Claims {
        app_id: args.app_id,
        user_id: args.user_id.clone(),
        nonce: rand::random::<i32>() as i64,
        ctime: now,
        expire: now + args.lifetime,
        payload,
    };
    let mode = if args.cbc { Mode::Cbc } else { Mode::Gcm };
    token04::generate(&args.secret, &claims, mode, None).map_err(describe)
}

/// The report `token verify` prints, and whether the token passed every check asked for. The verdict is
/// [`token04::check_login`], the very check of the server's login; unchecked app, user or room default to the
/// token's own.
pub fn verify(args: &VerifyArgs) -> (String, bool) {
    if let Err(e) = check_secret(&args.secret) {
        return (format!("invalid: {e}\n"), false);
    }
    let mut out = String::new();
    let now = now_unix();
    let decoded = token04::decode(&args.secret, &args.token).ok();
    let mut token_room = None;
    if let Some((claims, mode)) = &decoded {
        out.push_str(&describe_claims(claims, *mode, now));
        token_room = claims.privilege().ok().flatten().map(|p| p.room_id);
    }
    let app_id = args
        .app_id
        .or(decoded.as_ref().map(|(c, _)| c.app_id))
        .unwrap_or_default();
    let user_id = args
        .user_id
        .clone()
        .or(decoded.as_ref().map(|(c, _)| c.user_id.clone()))
        .unwrap_or_default();
    // A basic token allows any room, so without --room-id the room checked only matters for a room token.
    let room_id = args.room_id.clone().or(token_room).unwrap_or_default();
    match token04::check_login(&args.secret, &args.token, app_id, &user_id, &room_id, now) {
        Ok(_) => {
            let room = if room_id.is_empty() {
                "any room"
            } else {
                &room_id
            };
            out.push_str(&format!(
                "valid: user {user_id} of app {app_id} may log in to {room}\n"
            ));
            (out, true)
        }
        Err(code) => {
            out.push_str(&format!("invalid: {}\n", describe(code)));
            (out, false)
        }
    }
}

/// What a decoded token contains, one field a line.
fn describe_claims(claims: &Claims, mode: Mode, now: i64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "mode:     {}\n",
        if mode == Mode::Gcm {
            "AES-GCM"
        } else {
            "AES-CBC (legacy)"
        }
    ));
    out.push_str(&format!("app_id:   {}\n", claims.app_id));
    out.push_str(&format!("user_id:  {}\n", claims.user_id));
    out.push_str(&format!("nonce:    {}\n", claims.nonce));
    out.push_str(&format!(
        "ctime:    {} ({})\n",
        claims.ctime,
        relative(claims.ctime - now)
    ));
    out.push_str(&format!(
        "expire:   {} ({})\n",
        claims.expire,
        relative(claims.expire - now)
    ));
    match claims.privilege() {
        Ok(None) => out.push_str("payload:  basic token (any room, any stream)\n"),
        Ok(Some(p)) => {
            out.push_str(&format!("room_id:  {}\n", p.room_id));
            out.push_str(&format!("login:    {}\n", p.login_room));
            out.push_str(&format!("publish:  {}\n", p.publish));
            match &p.stream_id_list {
                None => out.push_str("streams:  any\n"),
                Some(list) => out.push_str(&format!("streams:  {}\n", list.join(", "))),
            }
        }
        Err(code) => out.push_str(&format!(
            "payload:  {:?} ({})\n",
            claims.payload,
            describe(code)
        )),
    }
    out
}

fn relative(seconds: i64) -> String {
    if seconds >= 0 {
        format!("in {seconds} s")
    } else {
        format!("{} s ago", -seconds)
    }
}

/// What a bare server prints for humans after the machine-readable line.
pub fn how_to_connect(ws_url: &str, config: &ServerConfig) -> String {
    let mut out = format!("Signaling: {ws_url}\n");
    if config.uses_dev_app() {
        out.push_str(&format!(
            "Development app (public keys: never expose this server):\n  app_id        = {DEV_APP_ID}\n  app_sign      = {DEV_APP_SIGN}\n  server_secret = {DEV_SERVER_SECRET}\n"
        ));
        out.push_str(&format!(
            "Token for a user: zego-server token generate --app-id {DEV_APP_ID} --secret {DEV_SERVER_SECRET} --user-id USER\n"
        ));
    } else {
        let ids: Vec<String> = config.apps.iter().map(|a| a.app_id.to_string()).collect();
        out.push_str(&format!("Apps: {}\n", ids.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("zego-server").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn bare_start_serves_the_dev_app_on_the_default_ports() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        let (config, log) = cli.serve.resolve().unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN);
        assert_eq!(config.media_bind, DEFAULT_MEDIA);
        assert_eq!(config.media_threads, 0, "one relay I/O thread per core");
        assert!(config.uses_dev_app());
        assert_eq!(log, None);
        let cli = parse(&["--media-threads", "2"]);
        assert_eq!(cli.serve.resolve().unwrap().0.media_threads, 2);
    }

    #[test]
    fn cluster_flags_and_file_table_make_a_node() {
        assert!(parse(&[]).serve.resolve().unwrap().0.cluster.is_none());
        let secret = "0123456789abcdef-secret";
        let cli = parse(&[
            "--redis",
            "redis://127.0.0.1:6379",
            "--node-id",
            "edge-1",
            "--cluster-secret",
            secret,
        ]);
        let (config, _) = cli.serve.resolve().unwrap();
        config.validate().unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(
            (cluster.node_id.as_str(), cluster.secret.as_str()),
            ("edge-1", secret)
        );
        assert_eq!(cluster.advertise, None);

        let err = parse(&[
            "--redis",
            "redis://127.0.0.1:6379",
            "--cluster-secret",
            secret,
        ])
        .serve
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--node-id"), "{err}");
        assert!(
            parse(&["--node-id", "a"]).serve.resolve().is_err(),
            "no Redis"
        );

        let dir = std::env::temp_dir().join(format!("zego-server-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(
            &path,
            format!("[cluster]\nredis = \"redis://10.0.0.9:6379\"\nnode_id = \"b\"\nadvertise = \"http://10.0.0.2:9180\"\nsecret = \"{secret}\"\n"),
        )
        .unwrap();
        let cli = parse(&["--config", path.to_str().unwrap(), "--node-id", "b2"]);
        let (config, _) = cli.serve.resolve().unwrap();
        config.validate().unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.node_id, "b2", "the flag over the file");
        assert_eq!(cluster.advertise.as_deref(), Some("http://10.0.0.2:9180"));
        std::fs::remove_dir_all(dir).unwrap();

        let short = parse(&[
            "--redis",
            "redis://h:1",
            "--node-id",
            "a",
            "--cluster-secret",
            "short",
        ]);
        let err = short.serve.resolve().unwrap().0.validate().unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        let bad_id = parse(&[
            "--redis",
            "redis://h:1",
            "--node-id",
            "a b",
            "--cluster-secret",
            secret,
        ]);
        assert!(bad_id.serve.resolve().unwrap().0.validate().is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("zego-server-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nmedia = \"127.0.0.1:2\"\nheartbeat_timeout_ms = 9000\nlog = \"debug\"\nmax_connections_per_ip = 8\nidle_timeout_ms = 20000\nmedia_threads = 3\n",
        )
        .unwrap();
        let cli = parse(&[
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval-ms",
            "100",
            "--idle-timeout-ms",
            "5000",
            "--max-connections",
            "50",
        ]);
        let (config, log) = cli.serve.resolve().unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.media_bind.port(), 2);
        assert_eq!(config.heartbeat_timeout, Duration::from_millis(9000));
        assert_eq!(config.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(config.idle_timeout, Duration::from_millis(5000));
        assert_eq!(config.max_connections, 50);
        assert_eq!(config.max_connections_per_ip, 8);
        assert_eq!(config.media_threads, 3, "from the file");
        assert_eq!(log.as_deref(), Some("debug"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn token_generate_then_verify() {
        let cli = parse(&[
            "token",
            "generate",
            "--app-id",
            "7",
            "--secret",
            DEV_SERVER_SECRET,
            "--user-id",
            "alice",
            "--room-id",
            "r1",
            "--login",
            "--publish",
            "--stream-id",
            "s1",
            "--stream-id",
            "s2",
            "--lifetime",
            "60",
        ]);
        let Some(Command::Token(TokenCommand::Generate(args))) = cli.command else {
            panic!("parsed as {:?}", cli.command)
        };
        let token = generate(&args).unwrap();
        let verify_args = |user: &str, room: &str| VerifyArgs {
            secret: DEV_SERVER_SECRET.into(),
            app_id: Some(7),
            user_id: Some(user.into()),
            room_id: Some(room.into()),
            token: token.clone(),
        };
        let (report, ok) = verify(&verify_args("alice", "r1"));
        assert!(ok, "{report}");
        assert!(report.contains("streams:  s1, s2"), "{report}");
        let (report, ok) = verify(&verify_args("bob", "r1"));
        assert!(!ok);
        assert!(
            report.contains("1002077 ROOM_TOKEN_USER_ID_ERROR"),
            "{report}"
        );
        let (report, ok) = verify(&verify_args("alice", "r2"));
        assert!(!ok);
        assert!(report.contains("1002033"), "{report}");
    }

    #[test]
    fn verify_explains_a_wrong_secret() {
        let (report, ok) = verify(&VerifyArgs {
            secret: "x".repeat(32),
            app_id: None,
            user_id: None,
            room_id: None,
            token: "04AAAA".into(),
        });
        assert!(!ok);
        assert!(report.starts_with("invalid: 1002075"), "{report}");
    }

    fn generate_args(extra: &[&str]) -> GenerateArgs {
        let mut args = vec![
            "token",
            "generate",
            "--app-id",
            "7",
            "--secret",
            DEV_SERVER_SECRET,
            "--user-id",
            "alice",
        ];
        args.extend_from_slice(extra);
        match parse(&args).command {
            Some(Command::Token(TokenCommand::Generate(args))) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_room_token_can_log_in_to_its_room() {
        let token = generate(&generate_args(&["--room-id", "r1"])).unwrap();
        let (claims, _) = token04::decode(DEV_SERVER_SECRET, &token).unwrap();
        let now = now_unix();
        assert!(token04::check_login(DEV_SERVER_SECRET, &token, 7, "alice", "r1", now).is_ok());
        assert_eq!(
            token04::check_login(DEV_SERVER_SECRET, &token, 7, "alice", "r2", now).unwrap_err(),
            error::ROOM_AUTHENTICATION_FAILED
        );
        assert_eq!(
            token04::may_publish(&claims, "r1", "s1"),
            Err(error::PUBLISHER_AUTH_FAILED),
            "publishing still needs --publish"
        );
        // --login is still accepted and changes nothing.
        let with_login = generate(&generate_args(&["--room-id", "r1", "--login"])).unwrap();
        let (with_login, _) = token04::decode(DEV_SERVER_SECRET, &with_login).unwrap();
        assert_eq!(with_login.privilege(), claims.privilege());
    }

    #[test]
    fn a_secret_of_the_wrong_length_is_named_as_such() {
        let mut args = generate_args(&[]);
        args.secret = "short".into();
        let e = generate(&args).unwrap_err();
        assert!(e.contains("32 bytes") && e.contains("got 5"), "{e}");
        let (report, ok) = verify(&VerifyArgs {
            secret: "short".into(),
            app_id: None,
            user_id: None,
            room_id: None,
            token: "04AAAA".into(),
        });
        assert!(!ok);
        assert!(report.contains("32 bytes"), "{report}");
    }

    #[test]
    fn verify_without_a_room_checks_the_tokens_own_room() {
        let now = now_unix();
        let mint = |payload: String| {
            let claims = Claims {
                app_id: 7,
                user_id: "alice".into(),
                nonce: 1,
                ctime: now,
                expire: now + 60,
                payload,
            };
            token04::generate(DEV_SERVER_SECRET, &claims, Mode::Gcm, None).unwrap()
        };
        let args = |token: String| VerifyArgs {
            secret: DEV_SERVER_SECRET.into(),
            app_id: None,
            user_id: None,
            room_id: None,
            token,
        };
        let no_login = Privilege {
            room_id: "r1".into(),
            login_room: false,
            publish: true,
            stream_id_list: None,
        };
        let (report, ok) = verify(&args(mint(no_login.to_payload())));
        assert!(!ok, "{report}");
        assert!(report.contains("invalid: 1002033"), "{report}");
        let (report, ok) = verify(&args(mint(r#"{"demoPayload":""}"#.into())));
        assert!(ok, "{report}");
        assert!(report.contains("basic token"), "{report}");
        assert!(report.contains("may log in to any room"), "{report}");
    }

    #[test]
    fn generate_flags_need_a_room() {
        assert!(Cli::try_parse_from([
            "zego-server",
            "token",
            "generate",
            "--app-id",
            "1",
            "--secret",
            "s",
            "--user-id",
            "u",
            "--publish"
        ])
        .is_err());
    }
}
