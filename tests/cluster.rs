//! Three servers as one cluster, coordinated through a redis-server this test starts: a stream published on one
//! node plays on the two others (each pulls it from its node once), room events and messages cross nodes, a
//! stream id stays unique across the cluster, a killed node's players come back through another node, and a
//! Redis restart stops nothing that plays, and a node that joined after a player's node last read the directory is
//! still pulled from.
//!
//! Needs Debian's `redis-server`. Without it the tests say why and pass, unless CI=true, where it must be there.

mod flow_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flow_support::*;
use zego_express::config::{PlayerConfig, PublishChannel, PublisherState, StreamResourceMode};
use zego_express::event::Event;
use zego_protocol::error;
use zego_protocol::message::UpdateType;
use zego_server::{ClusterConfig, EmbeddedServer, ServerConfig};

const T: Duration = Duration::from_secs(20);
const SECRET: &str = "cluster-test-secret-0123456789";

/// A redis-server of this test's own, on a free loopback port, without persistence.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    /// `None` (after saying why) where redis-server is missing and CI is not set.
    fn start() -> Option<Redis> {
        let port = free_port();
        match Redis::start_on(port) {
            Ok(redis) => Some(redis),
            Err(why) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "the cluster tests must run in CI, but {why}"
                );
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    fn start_on(port: u16) -> Result<Redis, String> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("redis-server cannot start ({e}); install Debian's redis-server")
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Redis { port, child })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        end(&mut self.child);
    }
}

/// Kills a child process (SIGKILL) and reaps it.
fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node_config(redis_url: &str, name: &str) -> ServerConfig {
    ServerConfig {
        cluster: Some(ClusterConfig {
            redis: redis_url.to_owned(),
            node_id: name.to_owned(),
            advertise: None,
            secret: SECRET.to_owned(),
        }),
        ..ServerConfig::default()
    }
}

fn node(redis: &Redis, name: &str) -> EmbeddedServer {
    init_logging();
    EmbeddedServer::start(node_config(&redis.url(), name)).expect("the node starts")
}

/// The environment variable that makes [`node_process`] a node: `REDIS_URL NODE_ID`.
const NODE_ENV: &str = "ZEGO_CLUSTER_TEST_NODE";

/// A node in a process of its own (this test binary, running only [`node_process`]), to be killed.
struct NodeProcess {
    child: Child,
    http: SocketAddr,
    ws: String,
}

impl NodeProcess {
    fn start(redis: &Redis, name: &str) -> NodeProcess {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "node_process",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(NODE_ENV, format!("{} {name}", redis.url()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the node process starts");
        let stdout = child.stdout.take().unwrap();
        let line = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // After libtest's "test node_process ... " on the same line.
            .find_map(|l| Some(l.split_once("NODE ")?.1.to_owned()))
            .expect("the node process says where it listens");
        let mut parts = line.split_whitespace();
        let http = parts.next().unwrap().parse().unwrap();
        let ws = parts.next().unwrap().to_owned();
        NodeProcess { child, http, ws }
    }

    /// SIGKILL: no goodbye to clients, peers or the cluster.
    fn kill(&mut self) {
        end(&mut self.child);
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Not a test on its own: the body of a [`NodeProcess`], which runs a node until it is killed.
#[test]
fn node_process() {
    let Ok(spec) = std::env::var(NODE_ENV) else {
        return;
    };
    let (redis, name) = spec.split_once(' ').expect("REDIS_URL NODE_ID");
    let server = EmbeddedServer::start(node_config(redis, name)).expect("the node starts");
    println!("NODE {} {}", server.http_addr(), server.ws_url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn metric_at(http: SocketAddr, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(http).expect("the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Waits until the node's directory answers.
fn wait_ready(http: SocketAddr) {
    let deadline = Instant::now() + T;
    while http_status(http, "/readyz") != 200 {
        assert!(Instant::now() < deadline, "the node never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_status(addr: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn publishing(e: &Event, stream: &str) -> bool {
    matches!(e, Event::PublisherStateUpdate { stream_id, state: PublisherState::Publishing, error_code: 0, .. } if stream_id == stream)
}

/// An engine on `url` logged in to room "r" that publishes `stream`, once it does.
fn publisher(url: &str, user_id: &str, stream: &str) -> (zego_express::Engine, Recorder) {
    let (engine, recorder) = member(url, user_id);
    engine
        .start_publishing(stream, PublishChannel::Main)
        .unwrap();
    recorder.wait_for("publishing", T, |e| publishing(e, stream));
    (engine, recorder)
}

/// An engine on `url` logged in to room "r", told of users.
fn member(url: &str, user_id: &str) -> (zego_express::Engine, Recorder) {
    let (engine, recorder) = engine(url);
    engine
        .login_room("r", user(user_id), notify_users())
        .unwrap();
    (engine, recorder)
}

fn play(engine: &zego_express::Engine, stream: &str) {
    engine
        .start_playing(
            stream,
            PlayerConfig {
                resource_mode: StreamResourceMode::OnlyL3,
            },
        )
        .unwrap();
}

#[test]
fn a_stream_published_on_one_node_plays_on_the_others_and_the_room_spans_them() {
    let Some(redis) = Redis::start() else { return };
    let (a, b, c) = (node(&redis, "a"), node(&redis, "b"), node(&redis, "c"));
    for n in [&a, &b, &c] {
        wait_ready(n.http_addr());
    }

    let (anchor, rec_anchor) = publisher(a.ws_url(), "anchor", "s");

    // A viewer on b sees the anchor and its stream in the room, and plays it through b's relay.
    let (viewer_b, rec_b) = member(b.ws_url(), "viewer-b");
    rec_b.wait_for("the stream, from a", T, |e| {
        matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Add, streams, .. } if streams.iter().any(|s| s.stream_id == "s"))
    });
    rec_anchor.wait_for("a hears the viewer on b", T, |e| {
        matches!(e, Event::RoomUserUpdate { update_type: UpdateType::Add, users, .. } if users == &[user("viewer-b")])
    });
    play(&viewer_b, "s");
    let (viewer_c, rec_c) = member(c.ws_url(), "viewer-c");
    play(&viewer_c, "s");
    rec_b.wait_until("frames on b", T, |r| r.frame_count("s") >= 10);
    rec_c.wait_until("frames on c", T, |r| r.frame_count("s") >= 10);
    assert_eq!(metric(&b, "zego_relay_pulls"), 1, "b pulls the stream once");
    assert_eq!(metric(&c, "zego_relay_pulls"), 1, "c pulls the stream once");

    // A second stream of node a, played on b too: a second pull between the same two nodes.
    let (guest, _rec_guest) = publisher(a.ws_url(), "guest", "t");
    play(&viewer_b, "t");
    rec_b.wait_until("frames of both on b", T, |r| {
        r.frame_count("t") >= 10 && r.frame_count("s") >= 30
    });
    assert_eq!(metric(&b, "zego_relay_pulls"), 2, "one pull per stream");
    guest.destroy();

    // Messages cross nodes both ways.
    viewer_c
        .send_broadcast_message("r", "hello from c")
        .unwrap();
    rec_anchor.wait_for("a gets c's broadcast", T, |e| {
        matches!(e, Event::ImRecvBroadcastMessage { messages, .. } if messages[0].message == "hello from c")
    });
    anchor
        .send_custom_command("r", "ping", &["viewer-b".to_owned()])
        .unwrap();
    rec_b.wait_for(
        "b gets a's command",
        T,
        |e| matches!(e, Event::ImRecvCustomCommand { command, .. } if command == "ping"),
    );
    anchor.set_room_extra_info("r", "topic", "cats").unwrap();
    rec_c.wait_for("c gets the extra info", T, |e| {
        matches!(e, Event::RoomExtraInfoUpdate { infos, .. } if infos[0].key == "topic" && infos[0].value == "cats")
    });

    // The stream id is taken in the whole cluster.
    let (intruder, rec_intruder) = member(c.ws_url(), "intruder");
    intruder
        .start_publishing("s", PublishChannel::Main)
        .unwrap();
    rec_intruder.wait_for("refused on c", T, |e| {
        matches!(e, Event::PublisherStateUpdate { stream_id, state: PublisherState::NoPublish, error_code, .. }
            if stream_id == "s" && *error_code == error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED)
    });

    // A later viewer on b logs in to a room that already spans the nodes: its snapshot has the stream and users.
    let (late, rec_late) = member(b.ws_url(), "late");
    rec_late.wait_for("the snapshot's stream", T, |e| {
        matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Add, streams, .. } if streams.iter().any(|s| s.stream_id == "s"))
    });
    rec_late.wait_for("the snapshot's users", T, |e| {
        matches!(e, Event::RoomUserUpdate { update_type: UpdateType::Add, users, .. } if users.contains(&user("anchor")))
    });

    // The anchor stops: every node hears it, players stop, pulls close.
    anchor.stop_publishing(PublishChannel::Main).unwrap();
    for rec in [&rec_b, &rec_c] {
        rec.wait_for("the stream's end", T, |e| {
            matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Delete, streams, .. } if streams.iter().any(|s| s.stream_id == "s"))
        });
    }
    let deadline = Instant::now() + T;
    // (The guest's stream ended with its engine: its pull too.)
    while metric(&b, "zego_relay_pulls") + metric(&c, "zego_relay_pulls") > 0 {
        assert!(Instant::now() < deadline, "pulls still open");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The stream id is free again, on any node.
    intruder
        .start_publishing("s", PublishChannel::Main)
        .unwrap();
    rec_intruder.wait_for("c publishes it now", T, |e| publishing(e, "s"));
    for e in [anchor, viewer_b, viewer_c, intruder, late] {
        e.destroy();
    }
}

#[test]
fn a_killed_node_s_players_come_back_through_another_and_redis_restarts_stop_nothing() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, mut b, c) = (
        node(&redis, "a"),
        NodeProcess::start(&redis, "b"),
        node(&redis, "c"),
    );
    for http in [a.http_addr(), b.http, c.http_addr()] {
        wait_ready(http);
    }
    let (anchor, rec_anchor) = publisher(a.ws_url(), "anchor", "s");

    // One viewer reaches the cluster by one name, which points at b, then, once b is gone, at c; the other has
    // the list of nodes, b first.
    let front = TcpRelay::start(b.http);
    let (viewer, rec_viewer) = member(&front.ws_url(), "viewer");
    play(&viewer, "s");
    let (listed, rec_listed) = member(&format!("{},{}", b.ws, c.ws_url()), "listed");
    play(&listed, "s");
    rec_viewer.wait_until("frames through b", T, |r| r.frame_count("s") >= 10);
    rec_listed.wait_until("frames through b", T, |r| r.frame_count("s") >= 10);
    assert_eq!(metric_at(b.http, "zego_relay_pulls"), 1);

    // Redis goes away and comes back: nothing playing stops; publishing needs the directory meanwhile.
    redis.stop();
    let deadline = Instant::now() + T;
    while http_status(a.http_addr(), "/readyz") != 503 {
        assert!(
            Instant::now() < deadline,
            "a still says ready without Redis"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        http_status(a.http_addr(), "/healthz"),
        200,
        "alive without Redis"
    );
    let before = rec_viewer.frame_count("s");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        rec_viewer.frame_count("s") >= before + 20,
        "frames kept coming while Redis was away"
    );
    let (second, rec_second) = member(c.ws_url(), "second");
    second.start_publishing("t", PublishChannel::Main).unwrap();
    rec_second.wait_for("refused without the directory", T, |e| {
        matches!(e, Event::PublisherStateUpdate { stream_id, state: PublisherState::NoPublish, error_code, .. }
            if stream_id == "t" && *error_code == error::PUBLISHER_INNER_ERROR)
    });
    let mut redis = Redis::start_on(redis.port).expect("redis-server restarts");
    for http in [a.http_addr(), b.http, c.http_addr()] {
        wait_ready(http);
    }
    let before = rec_viewer.frame_count("s");
    std::thread::sleep(Duration::from_secs(1));
    assert!(rec_viewer.frame_count("s") >= before + 10, "still playing");
    // The directory was written again: the stream id is still a's.
    second.start_publishing("s", PublishChannel::Main).unwrap();
    rec_second.wait_for("s is still taken", T, |e| {
        matches!(e, Event::PublisherStateUpdate { stream_id, state: PublisherState::NoPublish, error_code, .. }
            if stream_id == "s" && *error_code == error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED)
    });

    // b is killed; the viewers' reconnections land on c and their video comes back.
    front.set_target(c.http_addr());
    let events_before = rec_anchor.len();
    b.kill();
    front.cut();
    let cut_at = Instant::now();
    let count = rec_viewer.frame_count("s");
    let listed_count = rec_listed.frame_count("s");
    rec_viewer.wait_until("frames through c", T, |r| r.frame_count("s") >= count + 10);
    eprintln!("video back through c after {:?}", cut_at.elapsed());
    rec_listed.wait_until("frames through c, the next on the list", T, |r| {
        r.frame_count("s") >= listed_count + 10
    });
    eprintln!("and for the listed viewer after {:?}", cut_at.elapsed());
    assert_eq!(
        metric(&c, "zego_relay_pulls"),
        1,
        "c pulls the stream once for both"
    );
    // a notices b is gone (its lease expires), and the viewers, now on c, stay in the room.
    std::thread::sleep(Duration::from_millis(
        zego_protocol::cluster::LEASE_MS + 3000,
    ));
    let left: Vec<Event> = rec_anchor.events()[events_before..]
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::RoomUserUpdate {
                    update_type: UpdateType::Delete,
                    ..
                }
            )
        })
        .cloned()
        .collect();
    assert!(left.is_empty(), "nobody left the room: {left:?}");
    assert_eq!(
        http_status(a.http_addr(), "/readyz"),
        200,
        "a is still ready"
    );
    redis.stop();
    for e in [anchor, viewer, listed, second] {
        e.destroy();
    }
}

#[test]
fn a_player_reaches_a_node_that_joined_after_its_own_node_last_read_the_directory() {
    let Some(redis) = Redis::start() else { return };
    // b reads the directory when it joins, before a exists, and not again for REFRESH_MS.
    let b = node(&redis, "b");
    wait_ready(b.http_addr());
    let a = node(&redis, "a");
    wait_ready(a.http_addr());
    let (anchor, _rec_anchor) = publisher(a.ws_url(), "anchor", "s");
    let (viewer, rec_viewer) = member(b.ws_url(), "viewer");
    rec_viewer.wait_for("the stream, from a", T, |e| {
        matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Add, streams, .. } if streams.iter().any(|s| s.stream_id == "s"))
    });
    play(&viewer, "s");
    rec_viewer.wait_until("frames through b", T, |r| r.frame_count("s") >= 10);
    for e in [anchor, viewer] {
        e.destroy();
    }
}
