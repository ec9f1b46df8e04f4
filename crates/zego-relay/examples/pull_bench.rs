//! Origin → edge benchmark: the latency one relay-to-relay hop (a cluster's pull) adds to a stream, on loopback.
//!
//! Two relays in this process, an origin and an edge. A publisher on the origin sends a 1280x720 30 fps H.264
//! stream (~1.3 Mb/s, an IDR picture every 2 s, encoded once with openh264 and looped); the edge pulls the stream
//! from the origin once (`Relay::pull`, answered by the origin's `Relay::play`, completed with
//! `Relay::complete_pull`); `--viewers N` players play it on the origin and N on the edge. Every media packet is
//! stamped on arrival at each player by the kernel (`SO_TIMESTAMPNS`, so the players' own thread adds nothing) and
//! by the player when it reads the datagram. Packets are matched across players by their RTP payload (the relay
//! rewrites sequence numbers and timestamps per player, not payloads); the hop is edge-player arrival minus
//! origin-player arrival of the same packet, player i of the edge against player i of the origin.
//!
//! Reported as one JSON object on stdout (a summary on stderr): the hop's p50/p95/p99/max in ms over the window,
//! packets and loss at each side's players, the edge's pulls (1 however many viewers) and the origin's player
//! sessions (the viewers plus the pull), and each relay's I/O-thread CPU per forwarded packet. The publisher and
//! players are str0m peers on this process's main thread.
//!
//! ```text
//! cargo run --release -p zego-relay --example pull_bench -- [--seconds 30] [--viewers 1] [--io-threads 1]
//! ```

#[path = "bench_peers/mod.rs"]
mod bench_peers;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_peers::{
    flag_value, stream_key, this_thread_cpu, wait_until, ClipSpec, PeerFactory, Reception,
    SocketOptions,
};
use parking_lot::Mutex;
use str0m::rtp::RtpPacket;
use zego_relay::{Relay, RelayMetrics, StreamKey};

/// 1280x720 at ~1.3 Mb/s, 30 fps. Two seconds of video; the clip loops, so its first frame (the only IDR picture)
/// comes every 2 s, and at once when the relay asks for a keyframe.
const CLIP: ClipSpec = ClipSpec {
    width: 1280,
    height: 720,
    fps: 30,
    bitrate_bps: 1_300_000,
    frames: 60,
    stripe_width: 24,
    stripe_step: 4,
    noise_levels: 2,
};
/// Receive buffers of the peers' sockets (the kernel caps them at its maximum): a keyframe for many players arrives
/// as one burst, room for it while this thread serves the others.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// How long the players may take to connect and get their first keyframe.
const START_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    bench_peers::init_tracing();
    let args = Args::parse();

    let clip = CLIP.encode().await;
    let stream_kbps = clip.kbps();
    let keyframe_interval = clip.seconds();

    let origin = bench_peers::start_relay(args.io_threads).await;
    let edge = bench_peers::start_relay(args.io_threads).await;
    let peers = PeerFactory::new(SocketOptions {
        recv_buffer: Some(SOCKET_BUFFER_BYTES),
        kernel_stamps: true,
    });
    let key = stream_key("pull-bench");
    // The publisher's stop stops the players too.
    let stop = peers.publisher(&origin, key.clone(), clip).await;

    // The edge pulls the stream from the origin, once.
    let (pull, offer) = edge.pull(key.clone()).await.expect("the edge pulls");
    let (_, answer) = origin
        .play(key.clone(), &offer)
        .await
        .expect("the origin answers the pull");
    edge.complete_pull(pull, &answer)
        .await
        .expect("the pull completes");

    let mut origin_players = Vec::new();
    let mut edge_players = Vec::new();
    for _ in 0..args.viewers {
        origin_players.push(player(&peers, &origin, key.clone(), stop.clone()).await);
        edge_players.push(player(&peers, &edge, key.clone(), stop.clone()).await);
    }
    let all = || origin_players.iter().chain(&edge_players);
    wait_until(START_TIMEOUT, || all().all(|p| p.stats.lock().started)).await;
    let started =
        |players: &[PlayerHandle]| players.iter().filter(|p| p.stats.lock().started).count();
    let (origin_started, edge_started) = (started(&origin_players), started(&edge_players));
    eprintln!(
        "players started: {origin_started}/{} on the origin, {edge_started}/{} on the edge; measuring {} s ...",
        args.viewers, args.viewers, args.seconds
    );
    // A second more for the keyframe bursts of the joins to pass.
    tokio::time::sleep(Duration::from_secs(1)).await;

    for p in all() {
        p.stats.lock().measuring = true;
    }
    let (origin_m0, edge_m0) = (origin.metrics(), edge.metrics());
    let (origin_cpu0, edge_cpu0) = (origin.io_thread_cpu_time(), edge.io_thread_cpu_time());
    let peers_cpu0 = this_thread_cpu();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let wall = t0.elapsed();
    for p in all() {
        p.stats.lock().measuring = false;
    }
    let peers_cpu = this_thread_cpu() - peers_cpu0;
    let (origin_m1, edge_m1) = (origin.metrics(), edge.metrics());
    let (origin_cpu1, edge_cpu1) = (origin.io_thread_cpu_time(), edge.io_thread_cpu_time());

    stop.store(true, Ordering::Relaxed);
    let origin_threads = origin.io_threads();
    edge.shutdown().await;
    origin.shutdown().await;

    // The hop, player by player.
    let mut hop_kernel_ms = Vec::new();
    let mut hop_user_ms = Vec::new();
    let mut unmatched = 0u64;
    let mut late = 0u64;
    for (o, e) in origin_players.iter().zip(&edge_players) {
        let o = o.stats.lock();
        let e = e.stats.lock();
        let mut by_payload: HashMap<u64, Vec<&Arrival>> = HashMap::new();
        for a in &o.arrivals {
            by_payload.entry(a.payload).or_default().push(a);
        }
        for a in &e.arrivals {
            // A payload repeats with the clip (every 2 s at the soonest 0.5 s, after a keyframe request): the
            // origin's arrival nearest in time is the same packet.
            let nearest = by_payload.get(&a.payload).and_then(|candidates| {
                candidates
                    .iter()
                    .min_by_key(|c| abs_diff(c.at, a.at))
                    .filter(|c| abs_diff(c.at, a.at) < Duration::from_millis(250))
            });
            let Some(origin_arrival) = nearest else {
                unmatched += 1;
                continue;
            };
            if a.late || origin_arrival.late {
                late += 1;
                continue;
            }
            hop_user_ms.push(signed_ms(a.at, origin_arrival.at));
            if let (Some(edge_kernel), Some(origin_kernel)) = (a.kernel, origin_arrival.kernel) {
                hop_kernel_ms
                    .push((edge_kernel.as_secs_f64() - origin_kernel.as_secs_f64()) * 1000.0);
            }
        }
    }
    let loss = |players: &[PlayerHandle]| {
        let (mut received, mut lost) = (0u64, 0u64);
        for p in players {
            let stats = p.stats.lock();
            let mut seqs: Vec<u64> = stats.arrivals.iter().map(|a| a.seq).collect();
            seqs.sort_unstable();
            seqs.dedup();
            if let (Some(first), Some(last)) = (seqs.first(), seqs.last()) {
                received += seqs.len() as u64;
                lost += last - first + 1 - seqs.len() as u64;
            }
        }
        let fraction = if received + lost == 0 {
            0.0
        } else {
            lost as f64 / (received + lost) as f64
        };
        serde_json::json!({"received": received, "lost": lost, "loss_fraction": fraction})
    };
    let relay_json = |m0: &RelayMetrics,
                      m1: &RelayMetrics,
                      cpu0: Option<Duration>,
                      cpu1: Option<Duration>| {
        let cpu = cpu1.zip(cpu0).map(|(b, a)| b - a).unwrap_or_default();
        let forwarded = m1.packets_forwarded - m0.packets_forwarded;
        serde_json::json!({
            "publishers": m1.publishers,
            "pulls": m1.pulls,
            "player_sessions": m1.players,
            "packets_received": m1.packets_received - m0.packets_received,
            "packets_forwarded": forwarded,
            "retransmissions": m1.retransmissions - m0.retransmissions,
            "keyframe_requests": m1.keyframe_requests - m0.keyframe_requests,
            "overload_drops": m1.overload_drops - m0.overload_drops,
            "io_thread_cpu_percent": round3(cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()),
            "cpu_us_per_forwarded_packet": round3(cpu.as_secs_f64() * 1e6 / forwarded.max(1) as f64),
        })
    };
    let summary = serde_json::json!({
        "benchmark": "zego-relay origin-to-edge pull",
        "stream": {"codec": "H.264", "width": CLIP.width, "height": CLIP.height, "fps": CLIP.fps,
                   "kbps": stream_kbps.round(), "keyframe_interval_s": keyframe_interval},
        "seconds": round3(wall.as_secs_f64()),
        "io_threads": origin_threads,
        "viewers_per_relay": args.viewers,
        "players_started": {"origin": origin_started, "edge": edge_started},
        "hop_ms": percentiles(&mut hop_kernel_ms),
        "hop_ms_read_by_player": percentiles(&mut hop_user_ms),
        "unmatched_edge_packets": unmatched,
        "late_packets_left_out": late,
        "origin_players": loss(&origin_players),
        "edge_players": loss(&edge_players),
        "origin_relay": relay_json(&origin_m0, &origin_m1, origin_cpu0, origin_cpu1),
        "edge_relay": relay_json(&edge_m0, &edge_m1, edge_cpu0, edge_cpu1),
        "peers_thread_cpu_percent": round3(peers_cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()),
    });
    eprintln!(
        "hop (kernel stamps): {}\nhop (read by player): {}",
        summary["hop_ms"], summary["hop_ms_read_by_player"]
    );
    eprintln!(
        "origin players {}, edge players {}; edge pulls {}, origin player sessions {}",
        summary["origin_players"],
        summary["edge_players"],
        summary["edge_relay"]["pulls"],
        summary["origin_relay"]["player_sessions"]
    );
    println!("{summary}");
}

fn abs_diff(a: Instant, b: Instant) -> Duration {
    if a > b {
        a - b
    } else {
        b - a
    }
}

fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1000.0
    } else {
        -(b - a).as_secs_f64() * 1000.0
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Nearest-rank percentiles of a sample, in its unit.
fn percentiles(values: &mut [f64]) -> serde_json::Value {
    if values.is_empty() {
        return serde_json::json!({"n": 0});
    }
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        values[((p / 100.0 * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1]
    };
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    serde_json::json!({
        "n": values.len(),
        "p50": round3(rank(50.0)),
        "p95": round3(rank(95.0)),
        "p99": round3(rank(99.0)),
        "max": round3(values[values.len() - 1]),
        "min": round3(values[0]),
        "mean": round3(mean),
    })
}

struct Args {
    seconds: u64,
    viewers: usize,
    /// Each relay's I/O threads (0: one per core).
    io_threads: usize,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            seconds: 30,
            viewers: 1,
            io_threads: 1,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--seconds" => args.seconds = flag_value(&mut it, "--seconds"),
                "--viewers" => args.viewers = flag_value::<usize>(&mut it, "--viewers").max(1),
                "--io-threads" => args.io_threads = flag_value(&mut it, "--io-threads"),
                other => {
                    panic!("unknown argument {other}; use --seconds 30 --viewers 1 --io-threads 1")
                }
            }
        }
        args
    }
}

/// One media packet as a player got it.
struct Arrival {
    /// A hash of the RTP payload and marker bit: the same at every player.
    payload: u64,
    /// The player's sequence number (extended).
    seq: u64,
    /// When the player read the datagram.
    at: Instant,
    /// When the kernel received it (`SO_TIMESTAMPNS`, since the epoch).
    kernel: Option<Duration>,
    /// It came after a later packet: a retransmission, or reordered. Its arrival says nothing of the hop.
    late: bool,
}

#[derive(Default)]
struct PlayerStats {
    started: bool,
    /// The highest sequence number so far.
    highest: Option<u64>,
    measuring: bool,
    arrivals: Vec<Arrival>,
}

struct PlayerHandle {
    stats: Arc<Mutex<PlayerStats>>,
}

/// A player of `key` on `relay`.
async fn player(
    peers: &PeerFactory,
    relay: &Relay,
    key: StreamKey,
    stop: Arc<AtomicBool>,
) -> PlayerHandle {
    let stats = Arc::new(Mutex::new(PlayerStats::default()));
    peers
        .player(relay, key, stop, PlayerReception(stats.clone()))
        .await;
    PlayerHandle { stats }
}

/// A player's own side of the peers' thread: every media packet it gets while measuring.
struct PlayerReception(Arc<Mutex<PlayerStats>>);

impl Reception for PlayerReception {
    fn rtp_packet(&mut self, packet: &RtpPacket, kernel_stamp: Option<Duration>) {
        let mut stats = self.0.lock();
        stats.started = true;
        let seq = *packet.seq_no;
        let late = stats.highest.is_some_and(|h| seq < h);
        stats.highest = stats.highest.max(Some(seq));
        if stats.measuring && !packet.payload.is_empty() {
            stats.arrivals.push(Arrival {
                late,
                payload: payload_hash(packet.header.marker, &packet.payload),
                seq,
                at: packet.timestamp,
                kernel: kernel_stamp,
            });
        }
    }
}

fn payload_hash(marker: bool, payload: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    marker.hash(&mut hasher);
    payload.hash(&mut hasher);
    hasher.finish()
}
