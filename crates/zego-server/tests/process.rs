//! The server as other programs meet it: HTTP endpoints, the `zego-server` binary (its start-up line, config file,
//! signals, token subcommands) and the embedded server for callers without a runtime.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use zego_protocol::message::{ClientMessage, ReplyResult};
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_SERVER_SECRET};

const BINARY: &str = env!("CARGO_BIN_EXE_zego-server");

/// A plain HTTP/1.1 GET; returns the status code and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_over_http() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/healthz"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (_client, _) = Client::join(&server.ws_url(), "u", "room").await;
    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    for line in [
        "zego_rooms 1",
        "zego_users 1",
        "zego_streams 0",
        "zego_players 0",
        "zego_connections 1",
        "zego_logins_total 1",
        "zego_relay_packets_forwarded_total 0",
        "zego_relay_bytes_forwarded_total 0",
        "zego_relay_retransmissions_total 0",
        "zego_relay_keyframe_requests_total 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from\n{body}"
        );
    }
    assert!(body.contains("# TYPE zego_relay_packets_forwarded counter"));

    // The WebSocket path without an upgrade is a client error, not a crash.
    let (status, _) = tokio::task::spawn_blocking(move || http_get(addr, "/ws"))
        .await
        .unwrap();
    assert!((400..500).contains(&status), "{status}");
    let (status, _) = tokio::task::spawn_blocking(move || http_get(addr, "/nothing"))
        .await
        .unwrap();
    assert_eq!(status, 404);
    server.shutdown().await;
}

/// The binary, started with `args`; its first stdout line is the machine-readable one.
struct Running {
    child: Child,
    ws_url: String,
    media: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
            .to_owned()
    };
    assert!(line.starts_with("zego-server listening "), "{line:?}");
    Running {
        ws_url: field("ws"),
        media: field("media").parse().unwrap(),
        child,
        stdout,
    }
}

fn terminate(mut running: Running) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(running.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = running.child.kill();
            panic!("the server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_where_it_listens_serves_and_stops_on_sigterm() {
    let mut running = spawn(&["--listen", "127.0.0.1:0", "--media", "127.0.0.1:0"]);
    assert!(running.ws_url.starts_with("ws://127.0.0.1:") && running.ws_url.ends_with("/ws"));
    assert_ne!(running.media.port(), 0);
    // The human part names the development app.
    let mut rest = String::new();
    running.stdout.read_line(&mut rest).unwrap();
    running.stdout.read_line(&mut rest).unwrap();
    running.stdout.read_line(&mut rest).unwrap();
    assert!(rest.contains(&DEV_APP_ID.to_string()), "{rest}");

    let (mut client, _) = Client::join(&running.ws_url, "u", "room").await;
    assert_eq!(client.heartbeat().await.code, 0);
    let status = tokio::task::spawn_blocking(move || terminate(running))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Clients were told the server went away.
    assert_eq!(client.expect_closed().await.map(|c| c.0), Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_a_config_file_and_flags_win() {
    let dir = std::env::temp_dir().join(format!("zego-server-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            r#"
listen = "127.0.0.1:1"
media = "127.0.0.1:0"
heartbeat_interval_ms = 2000
heartbeat_timeout_ms = 7000

[[apps]]
app_id = {OTHER_APP_ID}
app_sign = "{OTHER_APP_SIGN}"
server_secret = "{OTHER_SERVER_SECRET}"
"#
        ),
    )
    .unwrap();
    let running = spawn(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let url = running.ws_url.clone();
    let login = login_message(
        0,
        OTHER_APP_ID,
        "room",
        "u",
        app_sign_proof(OTHER_APP_ID, OTHER_APP_SIGN, "u", "room"),
    );
    let (_client, result) = Client::join_with(&url, login).await;
    let ReplyResult::Login {
        heartbeat_interval_ms,
        heartbeat_timeout_ms,
        ..
    } = result
    else {
        panic!()
    };
    assert_eq!((heartbeat_interval_ms, heartbeat_timeout_ms), (2000, 7000));
    // The dev app is not served when apps are configured.
    let mut stranger = Client::connect(&url).await;
    let reply = stranger
        .login(login_message(
            0,
            DEV_APP_ID,
            "room",
            "x",
            dev_proof("x", "room"),
        ))
        .await;
    assert_eq!(reply.code, zego_protocol::error::ENGINE_APP_ID_INCORRECT);
    let status = tokio::task::spawn_blocking(move || terminate(running))
        .await
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_binary_refuses_a_bad_configuration() {
    let output = Command::new(BINARY)
        .args(["--app", "1:short:secret"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("app_sign"));
}

#[test]
fn token_subcommands_generate_and_explain() {
    let output = Command::new(BINARY)
        .args([
            "token",
            "generate",
            "--app-id",
            &DEV_APP_ID.to_string(),
            "--secret",
            DEV_SERVER_SECRET,
            "--user-id",
            "alice",
            "--room-id",
            "room",
            "--login",
            "--publish",
            "--stream-id",
            "s1",
            "--lifetime",
            "120",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("04"));

    let verify = |extra: &[&str]| {
        let mut args = vec!["token", "verify", "--secret", DEV_SERVER_SECRET];
        args.extend_from_slice(extra);
        args.push(&token);
        let output = Command::new(BINARY).args(&args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let (ok, report) = verify(&["--user-id", "alice"]);
    assert!(ok, "{report}");
    for expected in [
        "app_id:   1234567890",
        "user_id:  alice",
        "room_id:  room",
        "publish:  true",
        "streams:  s1",
        "valid",
    ] {
        assert!(
            report.contains(expected),
            "{expected} missing from\n{report}"
        );
    }
    let (ok, report) = verify(&["--user-id", "bob"]);
    assert!(!ok);
    assert!(
        report.contains("invalid: 1002077 ROOM_TOKEN_USER_ID_ERROR"),
        "{report}"
    );
    let (ok, report) = verify(&["--app-id", "5"]);
    assert!(!ok);
    assert!(
        report.contains("1002076 ROOM_TOKEN_APP_ID_ERROR"),
        "{report}"
    );

    let output = Command::new(BINARY)
        .args([
            "token",
            "verify",
            "--secret",
            "ffffffffffffffffffffffffffffffff",
            &token,
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("1002074 ROOM_TOKEN_INNER_ERROR"));
}

#[test]
fn an_embedded_server_runs_without_a_runtime_and_stops_when_dropped() {
    init_tracing();
    let server = EmbeddedServer::start(ServerConfig::default()).unwrap();
    let url = server.ws_url().to_owned();
    let http = server.http_addr();
    assert_ne!(server.media_addr().port(), 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut client, _) = Client::join(&url, "u", "room").await;
        let reply = client
            .request(|req_id| ClientMessage::Logout { req_id })
            .await;
        assert_eq!(reply.code, 0);
    });
    drop(server);
    assert!(
        TcpStream::connect_timeout(&http, Duration::from_millis(500)).is_err(),
        "stopped listening"
    );
}
