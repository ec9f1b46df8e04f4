//! Signaling latency with the cluster directory: what Redis adds to a login, to a publish, and to a room event
//! that crosses nodes.
//!
//! Starts a `redis-server` of its own (Debian's; a free loopback port, no persistence), then in this process a
//! plain server (`cluster: None`) and two cluster nodes, A and B, sharing that Redis. Over real WebSockets, with the
//! dev app's app_sign logins, it measures round trips from the request sent to its reply read:
//!
//! - `login`: a fresh connection logs in (each to its own room), on the plain server and on node A;
//! - `publish`: a logged-in user publishes a new stream id with a real SDP offer (from a loopback publisher peer;
//!   on a cluster node the stream id is claimed in Redis first), then stops it (not timed);
//! - `user_update`: a member is logged in to a room; a new user logs in to that room, and the time runs from its
//!   login request sent to the member reading `UserUpdate` Add. On the plain server both are on it; across nodes
//!   the member is on B and the new user on A (the event goes through Redis pub/sub).
//!
//! Prints one JSON object (p50/p95/p99/max/mean in ms per measure) on stdout and kills redis-server at the end.
//!
//! ```text
//! cargo run --release -p zego-server --example cluster_signaling_bench -- [--count 200]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dev_proof, login_message, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zego_protocol::message::{ClientMessage, ReplyResult, ServerMessage, UpdateType};
use zego_server::{ClusterConfig, Server, ServerConfig, ServerHandle, DEV_APP_ID};
use zego_test_kit::LoopbackPeer;

const SECRET: &str = "cluster-bench-secret-0123456789";
/// The longest one measure may take in all; past it the measure stops with what it has.
const MEASURE_BUDGET: Duration = Duration::from_secs(60);

/// The pause between publish rounds, untimed, keeping one connection under `limits::REQUESTS_PER_SECOND`.
const PUBLISH_PAUSE: Duration = Duration::from_millis(15);

/// A redis-server child process, killed when dropped.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (Debian's redis-server package)");
        let redis = Redis { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let count = parse_count();

    let redis = Redis::start();
    let plain = Server::start(ServerConfig::default())
        .await
        .expect("the plain server starts");
    let node = |name: &str| ServerConfig {
        cluster: Some(ClusterConfig {
            redis: format!("redis://127.0.0.1:{}", redis.port),
            node_id: name.to_owned(),
            advertise: None,
            secret: SECRET.to_owned(),
        }),
        ..ServerConfig::default()
    };
    let a = Server::start(node("bench-a")).await.expect("node A starts");
    let b = Server::start(node("bench-b")).await.expect("node B starts");
    wait_ready(&a).await;
    wait_ready(&b).await;
    // One offer for every publish: each publish opens a relay session that is closed again by its stop.
    let publisher = LoopbackPeer::publisher().await;

    eprintln!("{count} of each measure ...");
    let login_plain = logins(&plain, "plain", count).await;
    let login_cluster = logins(&a, "cluster", count).await;
    let publish_plain = publishes(&plain, &publisher.offer, "plain", count).await;
    let publish_cluster = publishes(&a, &publisher.offer, "cluster", count).await;
    let event_same = user_updates(&plain, &plain, "same-node", count).await;
    let event_across = user_updates(&a, &b, "across-nodes", count).await;
    publisher.close().await;

    let summary = serde_json::json!({
        "benchmark": "zego-server signaling with the cluster directory",
        "count": count,
        "login_ms": {"plain": percentiles(login_plain), "cluster": percentiles(login_cluster)},
        "publish_ms": {"plain": percentiles(publish_plain), "cluster": percentiles(publish_cluster)},
        "user_update_ms": {"plain_same_node": percentiles(event_same), "cluster_across_nodes": percentiles(event_across)},
    });
    for (name, value) in [
        ("login", &summary["login_ms"]),
        ("publish", &summary["publish_ms"]),
        ("user_update", &summary["user_update_ms"]),
    ] {
        eprintln!("{name}: {value}");
    }

    plain.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
    drop(redis);
    println!("{summary}");
}

fn parse_count() -> usize {
    let mut count = 200;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--count" => count = it.next().and_then(|s| s.parse().ok()).expect("--count N"),
            other => panic!("unknown argument {other}; use --count 200"),
        }
    }
    count.max(1)
}

/// Waits until the node's directory answers (`/readyz` is 200).
async fn wait_ready(server: &ServerHandle) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_status(server.http_addr(), "/readyz").await != 200 {
        assert!(Instant::now() < deadline, "the node never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Runs `trial` for `0..count` while the measure is within `MEASURE_BUDGET`: the times the trials measured, in ms.
async fn measure(count: usize, mut trial: impl AsyncFnMut(usize) -> Duration) -> Vec<f64> {
    let started = Instant::now();
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        if started.elapsed() > MEASURE_BUDGET {
            break;
        }
        times.push(ms(trial(i).await));
    }
    times
}

/// Login round trips, each on a fresh connection (connecting is not timed) to a room of its own.
async fn logins(server: &ServerHandle, tag: &str, count: usize) -> Vec<f64> {
    measure(count, async |i| {
        let mut client = Client::connect(&server.ws_url()).await;
        let (user, room) = (format!("{tag}-login-{i}"), format!("{tag}-login-room-{i}"));
        let login = login_message(0, DEV_APP_ID, &room, &user, dev_proof(&user, &room));
        let t0 = Instant::now();
        let reply = client.login(login).await;
        let time = t0.elapsed();
        assert_eq!(reply.code, 0, "login failed: {reply:?}");
        client.close().await;
        time
    })
    .await
}

/// Publish round trips of new stream ids by one logged-in user; each stream is stopped after its reply.
async fn publishes(server: &ServerHandle, offer: &str, tag: &str, count: usize) -> Vec<f64> {
    let user = format!("{tag}-publisher");
    let (mut client, _) =
        Client::join(&server.ws_url(), &user, &format!("{tag}-publish-room")).await;
    let times = measure(count, async |i| {
        let stream_id = format!("{tag}-stream-{i}");
        let t0 = Instant::now();
        let reply = client
            .request(|req_id| ClientMessage::Publish {
                req_id,
                stream_id: stream_id.clone(),
                extra_info: String::new(),
                sdp: offer.to_owned(),
            })
            .await;
        let time = t0.elapsed();
        assert!(
            reply.code == 0 && matches!(reply.result, Some(ReplyResult::Publish { .. })),
            "publish failed: {reply:?}"
        );
        let stop = client
            .request(|req_id| ClientMessage::StopPublish { req_id, stream_id })
            .await;
        assert_eq!(stop.code, 0, "stop failed: {stop:?}");
        // Two requests per round: under the per-connection request rate limit.
        tokio::time::sleep(PUBLISH_PAUSE).await;
        time
    })
    .await;
    client.close().await;
    times
}

/// From a login request sent on `joining` to the `UserUpdate` Add read by a member logged in on `member_node`.
async fn user_updates(
    joining: &ServerHandle,
    member_node: &ServerHandle,
    tag: &str,
    count: usize,
) -> Vec<f64> {
    let room = format!("{tag}-events-room");
    let (mut member, _) =
        Client::join(&member_node.ws_url(), &format!("{tag}-member"), &room).await;
    let times = measure(count, async |i| {
        let user = format!("{tag}-joiner-{i}");
        let mut client = Client::connect(&joining.ws_url()).await;
        let login = login_message(1, DEV_APP_ID, &room, &user, dev_proof(&user, &room));
        let t0 = Instant::now();
        client.send(&login).await;
        // Skip what is left of earlier trials (the Delete of the last joiner) up to this joiner's Add.
        loop {
            if let ServerMessage::UserUpdate {
                update_type: UpdateType::Add,
                users,
                ..
            } = member.event().await
            {
                if users.iter().any(|u| u.user_id == user) {
                    break;
                }
            }
        }
        let time = t0.elapsed();
        let reply = client.reply_to(1).await;
        assert_eq!(reply.code, 0, "login failed: {reply:?}");
        client.close().await;
        time
    })
    .await;
    member.close().await;
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Nearest-rank percentiles, in ms.
fn percentiles(mut values: Vec<f64>) -> serde_json::Value {
    if values.is_empty() {
        return serde_json::json!({"n": 0});
    }
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        values[((p / 100.0 * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1]
    };
    serde_json::json!({
        "n": values.len(),
        "p50": round3(rank(50.0)),
        "p95": round3(rank(95.0)),
        "p99": round3(rank(99.0)),
        "max": round3(values[values.len() - 1]),
        "mean": round3(values.iter().sum::<f64>() / values.len() as f64),
    })
}
