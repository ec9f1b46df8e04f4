//! The yardstick of the fan-out benchmark: the same fan-out through the relay and through Janus, in one run.
//!
//! One ~1 Mbps, 30 fps H.264 stream (the clip of `fanout_bench`) goes to N players on this machine twice per N:
//! through the relay (the round of `fanout_bench`: a str0m publisher, the relay's I/O thread timed), and through a
//! Janus of Debian's `janus` package that this program starts with its own configuration (the streaming plugin and
//! the HTTP transport only), its RTP mountpoint fed the same clip as plain RTP over UDP at 30 fps. The players are
//! str0m peers on this process's main thread in both cases; a Janus player gets its offer through the Janus HTTP
//! API (`watch`), answers it, and `start`s.
//!
//! For each N it prints the relay's CPU per forwarded packet (its I/O threads), Janus's CPU per forwarded packet
//! (the whole `janus` process, all threads: utime + stime of `/proc/<pid>/stat`), the ratio relay/Janus, and what
//! the players lost; the last line is one JSON object. Both CPU figures are divided by the packets the players
//! received in the window, so they count the same thing; the relay's own count of packets forwarded is given too.
//!
//! Janus 1.1.2 gathers no ICE candidates on loopback interfaces, so it runs in a network namespace this program
//! creates (`ip netns`, root needed), joined to this one by a veth pair with two private addresses: Janus's HTTP
//! API, its mountpoint and its ICE are on the namespace's end, its players on this end. Nothing leaves the machine.
//! The relay's round stays on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p zego-relay --example janus_yardstick -- [--players 1,10,50,100,200] [--seconds 8] \
//!     [--io-threads 1] [--janus-event-loops 0] [--janus /usr/bin/janus]
//! ```

#[path = "bench_peers/mod.rs"]
mod bench_peers;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_peers::fanout::{round2, run_round, PlayerReception, PlayerStats, Tally};
use bench_peers::{
    flag_list, flag_value, stream_key, this_thread_cpu, wait_until, Clip, ClipSpec, PeerFactory,
    SocketOptions,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::{new_packetizer, Packetizer};
use rtc::rtp::sequence::new_random_sequencer;
use rtc::shared::marshal::Marshal;
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The clip of `fanout_bench`: ~1 Mbps, 30 fps; it loops, its first frame its only IDR picture.
const CLIP: ClipSpec = ClipSpec {
    width: 640,
    height: 360,
    fps: 30,
    bitrate_bps: 1_000_000,
    frames: 90,
    stripe_width: 12,
    stripe_step: 6,
    noise_levels: 12,
};

/// The Janus mountpoint the clip is fed to.
const MOUNTPOINT: u64 = 1;
/// Its H.264 payload type, in the RTP fed to it and in its offers.
const PAYLOAD_TYPE: u8 = 96;
/// The largest RTP packet fed to Janus: about what str0m sends the relay (its datagrams stay under 1150 bytes
/// with SRTP), so the two forward about as many packets.
const RTP_MTU: usize = 1100;

const PLUGINS: &str = "/usr/lib/x86_64-linux-gnu/janus/plugins";
const TRANSPORTS: &str = "/usr/lib/x86_64-linux-gnu/janus/transports";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    bench_peers::init_tracing();
    let args = Args::parse();

    let clip = CLIP.encode().await;
    let stream_kbps = clip.kbps();

    let namespace = Namespace::create();
    let janus = Janus::start(&args.janus, &namespace, args.janus_event_loops).await;
    info!(pid = janus.pid(), http = %janus.http, rtp = %janus.rtp, players = %namespace.outside, "janus started");
    let feed_stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(feed_rtp(clip.clone(), janus.rtp, feed_stop.clone()));
    let api = JanusApi::create_session(janus.http).await;

    let relay = bench_peers::start_relay(args.io_threads).await;
    let peers = PeerFactory::new(SocketOptions::default());
    let key = stream_key("bench");
    let publisher_stop = peers.publisher(&relay, key.clone(), clip).await;

    let mut rounds = Vec::new();
    for &n in &args.players {
        let relay_round = run_round(&relay, &peers, &key, n, args.seconds, false).await;
        let relay_us = relay_round.cpu_us_per_packet * relay_round.packets_forwarded as f64
            / relay_round.packets_delivered.max(1) as f64;
        eprintln!(
            "N={n:4} relay: {:8} packets received by players ({} forwarded), {:6.2} us CPU per packet, \
             {} lost, relay thread {:5.1}% busy",
            relay_round.packets_delivered,
            relay_round.packets_forwarded,
            relay_us,
            relay_round.packets_lost,
            relay_round.relay_cpu_percent,
        );
        let janus_round =
            janus_round(&janus, &api, &peers, namespace.outside, n, args.seconds).await;
        eprintln!(
            "N={n:4} janus: {:8} packets received by players, {:6.2} us CPU per packet, {} lost, \
             janus {:5.1}% of a core, {} of {} players started",
            janus_round.packets_delivered,
            janus_round.cpu_us_per_packet,
            janus_round.packets_lost,
            janus_round.cpu_percent,
            janus_round.players_started,
            n,
        );
        rounds.push(json!({
            "players": n,
            "relay": {
                "players_started": relay_round.players_started,
                "seconds": round2(relay_round.seconds),
                "packets_received_by_players": relay_round.packets_delivered,
                "packets_forwarded": relay_round.packets_forwarded,
                "cpu_us_per_packet": round2(relay_us),
                "cpu_us_per_forwarded_packet": round2(relay_round.cpu_us_per_packet),
                "cpu_percent": round2(relay_round.relay_cpu_percent),
                "packets_lost_by_players": relay_round.packets_lost,
                "loss_fraction": relay_round.loss_fraction,
                "retransmissions": relay_round.retransmissions,
                "peers_thread_cpu_percent": round2(relay_round.peers_cpu_percent),
            },
            "janus": {
                "players_started": janus_round.players_started,
                "seconds": round2(janus_round.seconds),
                "packets_received_by_players": janus_round.packets_delivered,
                "cpu_us_per_packet": round2(janus_round.cpu_us_per_packet),
                "cpu_us_per_packet_schedstat": round2(janus_round.sched_us_per_packet),
                "cpu_percent": round2(janus_round.cpu_percent),
                "threads": janus_round.threads,
                "packets_lost_by_players": janus_round.packets_lost,
                "loss_fraction": janus_round.loss_fraction,
                "peers_thread_cpu_percent": round2(janus_round.peers_cpu_percent),
            },
            "relay_over_janus": round2(relay_us / janus_round.cpu_us_per_packet.max(f64::MIN_POSITIVE)),
        }));
    }
    publisher_stop.store(true, Ordering::Relaxed);
    let relay_threads = relay.io_threads();
    relay.shutdown().await;
    feed_stop.store(true, Ordering::Relaxed);
    api.destroy().await;
    drop(janus);
    drop(namespace);

    let summary = json!({
        "benchmark": "zego-relay fan-out against Janus",
        "stream": {"codec": "H.264", "width": CLIP.width, "height": CLIP.height, "fps": CLIP.fps, "kbps": stream_kbps.round()},
        "seconds_per_round": args.seconds,
        "relay_io_threads": relay_threads,
        "janus": {"version": janus_version(&args.janus), "event_loops": args.janus_event_loops, "rtp_mtu": RTP_MTU},
        "rounds": rounds,
    });
    println!("{summary}");
}

struct Args {
    players: Vec<usize>,
    seconds: u64,
    /// The relay's I/O threads (0: one per core).
    io_threads: usize,
    /// Janus's `event_loops` (0: a thread of its own for each PeerConnection, Janus's default).
    janus_event_loops: usize,
    /// The `janus` binary.
    janus: PathBuf,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            players: vec![1, 10, 50, 100, 200],
            seconds: 8,
            io_threads: 1,
            janus_event_loops: 0,
            janus: PathBuf::from("/usr/bin/janus"),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--players" => args.players = flag_list(&mut it, "--players"),
                "--seconds" => args.seconds = flag_value(&mut it, "--seconds"),
                "--io-threads" => args.io_threads = flag_value(&mut it, "--io-threads"),
                "--janus-event-loops" => {
                    args.janus_event_loops = flag_value(&mut it, "--janus-event-loops")
                }
                "--janus" => args.janus = PathBuf::from(it.next().expect("--janus PATH")),
                other => panic!(
                    "unknown argument {other}; use --players 1,10,100 --seconds 8 --io-threads 1 \
                     --janus-event-loops 0 --janus /usr/bin/janus"
                ),
            }
        }
        args
    }
}

/// A network namespace of this run, joined to this one by a veth pair: Janus runs inside, its players outside.
/// Deleted (with the pair) when dropped.
struct Namespace {
    name: String,
    /// This end's address.
    outside: IpAddr,
    /// The namespace's end's address.
    inside: IpAddr,
}

impl Namespace {
    fn create() -> Namespace {
        let pid = std::process::id();
        let name = format!("janus-yardstick-{pid}");
        // A /30 of 10.213.0.0/16 picked by the process id, so runs side by side do not collide.
        let block = (pid % 16_384) * 4;
        let (a, b) = ((block >> 8) as u8, (block & 0xff) as u8);
        let outside = IpAddr::V4(Ipv4Addr::new(10, 213, a, b + 1));
        let inside = IpAddr::V4(Ipv4Addr::new(10, 213, a, b + 2));
        let (out_if, in_if) = (format!("jy{pid}o"), format!("jy{pid}i"));
        let ip = |args: &[&str]| {
            let status = Command::new("ip")
                .args(args)
                .status()
                .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
            assert!(
                status.success(),
                "ip {} failed (network namespaces need root)",
                args.join(" ")
            );
        };
        ip(&["netns", "add", &name]);
        let namespace = Namespace {
            name,
            outside,
            inside,
        };
        let n = namespace.name.as_str();
        ip(&[
            "link", "add", &out_if, "type", "veth", "peer", "name", &in_if,
        ]);
        ip(&["link", "set", &in_if, "netns", n]);
        ip(&["addr", "add", &format!("{outside}/30"), "dev", &out_if]);
        ip(&["link", "set", &out_if, "up"]);
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("{inside}/30"),
            "dev",
            &in_if,
        ]);
        ip(&["-n", n, "link", "set", &in_if, "up"]);
        ip(&["-n", n, "link", "set", "lo", "up"]);
        namespace
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it this end.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A `janus` process with a configuration of its own in a temporary directory; killed when dropped.
struct Janus {
    child: Child,
    dir: PathBuf,
    /// Its HTTP API.
    http: SocketAddr,
    /// Where its mountpoint takes RTP.
    rtp: SocketAddr,
}

impl Janus {
    /// Writes the configuration, starts `janus` and waits until its HTTP API answers.
    async fn start(binary: &Path, namespace: &Namespace, event_loops: usize) -> Janus {
        let dir = std::env::temp_dir().join(format!("janus-yardstick-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["plugins", "transports", "events", "loggers"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the configuration directory");
        }
        // Only the streaming plugin and the HTTP transport are in the folders Janus loads from.
        let link = |from: &str, name: &str, to: &str| {
            std::os::unix::fs::symlink(Path::new(from).join(name), dir.join(to).join(name))
                .expect("a link to a Janus module");
        };
        link(PLUGINS, "libjanus_streaming.so", "plugins");
        link(TRANSPORTS, "libjanus_http.so", "transports");

        // The namespace is this run's alone: any port is free in it.
        let host_ip = namespace.inside;
        let http = SocketAddr::new(host_ip, 8088);
        let rtp = SocketAddr::new(host_ip, 5004);
        let d = dir.display();
        let write = |name: &str, text: String| {
            std::fs::write(dir.join(name), text).expect("a Janus configuration file");
        };
        write(
            "janus.jcfg",
            format!(
                r#"general: {{
	configs_folder = "{d}"
	plugins_folder = "{d}/plugins"
	transports_folder = "{d}/transports"
	events_folder = "{d}/events"
	loggers_folder = "{d}/loggers"
	debug_level = 3
	interface = "{host_ip}"
	session_timeout = 60
	event_loops = {event_loops}
}}
media: {{
	ipv6 = false
}}
nat: {{
	full_trickle = false
	ice_lite = false
	ice_tcp = false
	ice_enforce_list = "{host_ip}"
}}
plugins: {{
}}
transports: {{
}}
events: {{
	broadcast = false
}}
"#
            ),
        );
        write(
            "janus.transport.http.jcfg",
            format!(
                r#"general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	ip = "{}"
	port = {}
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"#,
                http.ip(),
                http.port()
            ),
        );
        write(
            "janus.plugin.streaming.jcfg",
            format!(
                r#"general: {{
	events = false
}}
bench: {{
	type = "rtp"
	id = {MOUNTPOINT}
	description = "fan-out yardstick"
	media = (
		{{
			type = "video"
			mid = "v"
			port = {}
			iface = "{}"
			pt = {PAYLOAD_TYPE}
			codec = "h264"
			fmtp = "profile-level-id=42e01f;packetization-mode=1"
		}}
	)
}}
"#,
                rtp.port(),
                rtp.ip()
            ),
        );

        let log = std::fs::File::create(dir.join("janus.log")).expect("the Janus log");
        let child = Command::new("ip")
            .args(["netns", "exec", &namespace.name])
            .arg(binary)
            .arg("-F")
            .arg(&dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let janus = Janus {
            child,
            dir,
            http,
            rtp,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = request(http, hyper::Method::GET, "/janus/info", None).await;
            if info.is_ok_and(|v| v["janus"] == "server_info") {
                return janus;
            }
            assert!(
                Instant::now() < deadline,
                "janus did not answer in 10 s; see {}/janus.log",
                janus.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time of the whole process, all its threads, dead ones included: utime + stime of `/proc/<pid>/stat`.
    fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The fields after the command's closing parenthesis, from field 3 (state): utime is field 14, stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf only reads a configuration value.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / per_second)
    }

    /// CPU time of the process's live threads from their schedstat (nanoseconds, as the relay's is measured), and
    /// how many threads there are.
    fn sched_time(&self) -> (Duration, usize) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return (Duration::ZERO, 0);
        };
        let mut nanos = 0;
        let mut threads = 0;
        for task in tasks.flatten() {
            let schedstat =
                std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            if let Some(n) = schedstat
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u64>().ok())
            {
                nanos += n;
                threads += 1;
            }
        }
        (Duration::from_nanos(nanos), threads)
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept after a panic, for its log.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `janus --version`'s first line.
fn janus_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Feeds the clip to Janus's mountpoint as plain RTP at the clip's frame rate until `stop`, packetized by the H.264
/// payloader of webrtc-rs's `rtp` crate (single NAL units, STAP-A for SPS and PPS, FU-A).
async fn feed_rtp(clip: Arc<Clip>, destination: SocketAddr, stop: Arc<AtomicBool>) {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .expect("socket");
    let mut packetizer = new_packetizer(
        Instant::now(),
        RTP_MTU,
        PAYLOAD_TYPE,
        rand::random(),
        Box::new(H264Payloader::default()),
        Box::new(new_random_sequencer()),
        90_000,
    );
    let interval = Duration::from_secs(1) / clip.spec.fps;
    let ticks = 90_000 / clip.spec.fps;
    let start = tokio::time::Instant::now();
    for frame in 0u32.. {
        tokio::time::sleep_until(start + interval * frame).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let data = Bytes::from(clip.frames[frame as usize % clip.frames.len()].clone());
        let packets = match packetizer.packetize(Instant::now(), &data, ticks) {
            Ok(packets) => packets,
            Err(e) => {
                warn!("packetizing a frame: {e}");
                continue;
            }
        };
        for packet in packets {
            let Ok(datagram) = packet.marshal() else {
                continue;
            };
            let _ = socket.send_to(&datagram, destination).await;
        }
    }
}

/// One HTTP/1.1 exchange with Janus (a connection of its own): the JSON it answers.
async fn request(
    http: SocketAddr,
    method: hyper::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let stream = tokio::net::TcpStream::connect(http)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, http.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// A Janus session: requests to it, and its events from a long poll.
struct JanusApi {
    http: SocketAddr,
    session: u64,
    transactions: AtomicU64,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    stop: Arc<AtomicBool>,
}

impl JanusApi {
    /// Creates a session and long-polls its events (which also keeps it alive) until it is destroyed.
    async fn create_session(http: SocketAddr) -> JanusApi {
        let created = request(
            http,
            hyper::Method::POST,
            "/janus",
            Some(&json!({"janus": "create", "transaction": "create"})),
        )
        .await
        .expect("janus creates a session");
        let session = created["data"]["id"].as_u64().expect("a session id");
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let polling = stop.clone();
        tokio::spawn(async move {
            let path = format!("/janus/{session}?maxev=100");
            while !polling.load(Ordering::Relaxed) {
                match request(http, hyper::Method::GET, &path, None).await {
                    Ok(Value::Array(events)) => events.into_iter().for_each(|e| {
                        let _ = tx.send(e);
                    }),
                    Ok(event) => {
                        let _ = tx.send(event);
                    }
                    Err(e) => {
                        if !polling.load(Ordering::Relaxed) {
                            warn!("janus long poll: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        JanusApi {
            http,
            session,
            transactions: AtomicU64::new(0),
            events: tokio::sync::Mutex::new(rx),
            stop,
        }
    }

    /// Posts `body` (a transaction added) to the session, or to one of its handles.
    async fn post(&self, handle: Option<u64>, mut body: Value) -> Value {
        let transaction = self.transactions.fetch_add(1, Ordering::Relaxed);
        body["transaction"] = json!(transaction.to_string());
        let path = match handle {
            Some(handle) => format!("/janus/{}/{handle}", self.session),
            None => format!("/janus/{}", self.session),
        };
        let answer = request(self.http, hyper::Method::POST, &path, Some(&body))
            .await
            .unwrap_or_else(|e| panic!("janus request {body}: {e}"));
        if answer["janus"] == "error" {
            panic!("janus request {body}: {answer}");
        }
        answer
    }

    /// Attaches a handle of the streaming plugin, asks to watch the mountpoint, and returns the handle and the SDP
    /// offer Janus sends for it.
    async fn watch(&self) -> (u64, String) {
        let attached = self
            .post(
                None,
                json!({"janus": "attach", "plugin": "janus.plugin.streaming"}),
            )
            .await;
        let handle = attached["data"]["id"].as_u64().expect("a handle id");
        self.post(
            Some(handle),
            json!({"janus": "message", "body": {"request": "watch", "id": MOUNTPOINT}}),
        )
        .await;
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("janus sends an offer within 10 s")
                .expect("the long poll runs");
            if event["sender"].as_u64() == Some(handle) && event["jsep"]["type"] == "offer" {
                let sdp = event["jsep"]["sdp"].as_str().expect("an SDP offer");
                return (handle, sdp.to_owned());
            }
            if event["plugindata"]["data"]["error"].is_string()
                && event["sender"].as_u64() == Some(handle)
            {
                panic!("janus: {event}");
            }
        }
    }

    /// Starts a handle's stream with the player's SDP answer (with its one candidate, so no trickle follows).
    async fn start(&self, handle: u64, answer: String) {
        self.post(
            Some(handle),
            json!({"janus": "message", "body": {"request": "start"}, "jsep": {"type": "answer", "sdp": answer}}),
        )
        .await;
        self.post(
            Some(handle),
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )
        .await;
    }

    async fn detach(&self, handle: u64) {
        self.post(Some(handle), json!({"janus": "detach"})).await;
    }

    /// Ends the long poll and destroys the session.
    async fn destroy(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = request(
            self.http,
            hyper::Method::POST,
            &format!("/janus/{}", self.session),
            Some(&json!({"janus": "destroy", "transaction": "destroy"})),
        )
        .await;
    }
}

/// What one Janus round measured.
struct JanusRound {
    players_started: usize,
    seconds: f64,
    packets_delivered: u64,
    packets_lost: u64,
    loss_fraction: f64,
    /// utime + stime of the whole process per packet the players received.
    cpu_us_per_packet: f64,
    /// The same from the live threads' schedstat.
    sched_us_per_packet: f64,
    cpu_percent: f64,
    /// Janus's threads at the end of the window.
    threads: usize,
    peers_cpu_percent: f64,
}

/// N players of the mountpoint through Janus: connects them, waits until each got a packet (20 s at most), then
/// measures for `seconds`, and detaches them.
async fn janus_round(
    janus: &Janus,
    api: &JanusApi,
    peers: &PeerFactory,
    host_ip: IpAddr,
    n: usize,
    seconds: u64,
) -> JanusRound {
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(n);
    let mut players = Vec::with_capacity(n);
    for _ in 0..n {
        let (handle, offer) = api.watch().await;
        let (stats, reception) = PlayerReception::counting(false);
        let answer = peers
            .answering_player(host_ip, &offer, stop.clone(), reception)
            .await;
        api.start(handle, answer).await;
        handles.push(handle);
        players.push(stats);
    }
    let started = |p: &Arc<Mutex<PlayerStats>>| !p.lock().seqs.is_empty();
    wait_until(Duration::from_secs(20), || players.iter().all(started)).await;
    let players_started = players.iter().filter(|p| started(p)).count();

    for p in &players {
        let mut stats = p.lock();
        stats.seqs.clear();
        stats.measuring = true;
    }
    let (cpu0, (sched0, _), t0) = (janus.cpu_time(), janus.sched_time(), Instant::now());
    let peers_cpu0 = this_thread_cpu();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu1, (sched1, threads), t1) = (janus.cpu_time(), janus.sched_time(), Instant::now());
    let peers_cpu = this_thread_cpu() - peers_cpu0;
    let tally = Tally::of(&players);

    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        api.detach(handle).await;
    }
    // Janus tears the PeerConnections down on its own threads.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let wall = (t1 - t0).as_secs_f64();
    let cpu = cpu1.saturating_sub(cpu0).as_secs_f64();
    let sched = sched1.saturating_sub(sched0).as_secs_f64();
    let delivered = tally.delivered.max(1) as f64;
    JanusRound {
        players_started,
        seconds: wall,
        packets_delivered: tally.delivered,
        packets_lost: tally.lost,
        loss_fraction: tally.loss_fraction(),
        cpu_us_per_packet: cpu * 1e6 / delivered,
        sched_us_per_packet: sched * 1e6 / delivered,
        cpu_percent: cpu * 100.0 / wall,
        threads,
        peers_cpu_percent: peers_cpu.as_secs_f64() * 100.0 / wall,
    }
}
