//! Fan-out benchmark: one ~1 Mbps, 30 fps H.264 stream through the relay to N players on loopback.
//!
//! For each N it measures the CPU time of the relay's I/O thread per forwarded packet, the packets forwarded, and
//! the loss the players saw, then prints one JSON object as its last line. The publisher and players are str0m
//! peers on this process's main thread (much cheaper than full peer connections); what is measured is the relay
//! thread alone.
//!
//! With `--sink`, connected players stop handing media to str0m and count the sequence numbers of the SRTP
//! packets' clear headers instead: a load cheap enough for one thread to saturate the relay's I/O threads on the
//! same machine, for throughput with 1 and with all of them (`--io-threads N`, 0: one per core).
//!
//! ```text
//! cargo run --release -p zego-relay --example fanout_bench -- [--players 1,10,50,100,200,300] [--seconds 8] \
//!     [--io-threads 1] [--sink]
//! ```

#[path = "bench_peers/mod.rs"]
mod bench_peers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_peers::{
    flag_value, stream_key, this_thread_cpu, wait_until, ClipSpec, PeerFactory, Reception,
    SocketOptions,
};
use parking_lot::Mutex;
use str0m::rtp::RtpPacket;
use zego_relay::{Relay, RelayMetrics, SessionId, StreamKey};

/// ~1 Mbps, 30 fps; the clip loops, its first frame the only IDR picture unless the relay asks for one.
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    bench_peers::init_tracing();
    let args = Args::parse();

    let clip = CLIP.encode().await;
    let stream_kbps = clip.kbps();

    let relay = bench_peers::start_relay(args.io_threads).await;
    let peers = PeerFactory::new(SocketOptions::default());
    let key = stream_key("bench");
    let publisher_stop = peers.publisher(&relay, key.clone(), clip).await;

    let mut results = Vec::new();
    for &n in &args.players {
        let result = run_round(&relay, &peers, &key, n, args.seconds, args.sink).await;
        eprintln!(
            "N={n:4}: {:8} packets forwarded, {:6.2} us relay CPU per packet, relay thread {:5.1}% busy, \
             {} lost ({} retransmitted), peers' thread {:5.1}% busy",
            result.packets_forwarded,
            result.cpu_us_per_packet,
            result.relay_cpu_percent,
            result.packets_lost,
            result.retransmissions,
            result.peers_cpu_percent,
        );
        results.push(result);
    }
    publisher_stop.store(true, Ordering::Relaxed);
    let relay_threads = relay.io_threads();
    relay.shutdown().await;

    let max_without_loss = results
        .iter()
        .filter(|r| r.packets_lost == 0 && r.players_started == r.players)
        .map(|r| r.players)
        .max()
        .unwrap_or(0);
    let rounds: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "players": r.players,
                "players_started": r.players_started,
                "seconds": r.seconds,
                "packets_received_from_publisher": r.packets_received,
                "packets_forwarded": r.packets_forwarded,
                "relay_cpu_us_per_forwarded_packet": round2(r.cpu_us_per_packet),
                "relay_thread_cpu_percent": round2(r.relay_cpu_percent),
                "relay_each_thread_cpu_percent": r.relay_thread_percents,
                "overload_drops": r.overload_drops,
                "forwarded_packets_per_second": (r.packets_forwarded as f64 / r.seconds).round(),
                "players_received_packets_per_second": (r.packets_delivered as f64 / r.seconds).round(),
                "packets_lost_by_players": r.packets_lost,
                "loss_fraction": r.loss_fraction,
                "retransmissions": r.retransmissions,
                "peers_thread_cpu_percent": round2(r.peers_cpu_percent),
            })
        })
        .collect();
    let summary = serde_json::json!({
        "benchmark": "zego-relay fan-out",
        "stream": {"codec": "H.264", "width": CLIP.width, "height": CLIP.height, "fps": CLIP.fps, "kbps": stream_kbps.round()},
        "seconds_per_round": args.seconds,
        "io_threads": relay_threads,
        "sink_players": args.sink,
        "rounds": rounds,
        "max_players_without_loss": max_without_loss,
    });
    println!("{summary}");
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

struct Args {
    players: Vec<usize>,
    seconds: u64,
    /// The relay's I/O threads (0: one per core).
    io_threads: usize,
    /// Players count packets from their clear RTP headers instead of decrypting them.
    sink: bool,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            players: vec![1, 10, 50, 100, 200, 300],
            seconds: 8,
            io_threads: 1,
            sink: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--players" => {
                    args.players = it
                        .next()
                        .expect("--players N,N,...")
                        .split(',')
                        .map(|n| n.trim().parse().expect("a number of players"))
                        .collect();
                }
                "--seconds" => args.seconds = flag_value(&mut it, "--seconds"),
                "--sink" => args.sink = true,
                "--io-threads" => args.io_threads = flag_value(&mut it, "--io-threads"),
                other => panic!(
                    "unknown argument {other}; use --players 1,10,100 --seconds 8 --io-threads 1"
                ),
            }
        }
        args
    }
}

struct RoundResult {
    players: usize,
    players_started: usize,
    seconds: f64,
    packets_received: u64,
    packets_forwarded: u64,
    cpu_us_per_packet: f64,
    relay_cpu_percent: f64,
    /// Each I/O thread's share of a core.
    relay_thread_percents: Vec<f64>,
    /// Hand-overs between I/O threads dropped for being late (overload).
    overload_drops: u64,
    packets_lost: u64,
    /// Packets the players got (first transmissions, over the round).
    packets_delivered: u64,
    loss_fraction: f64,
    retransmissions: u64,
    /// The thread of the publisher and players; near 100% it, not the relay, limits the round.
    peers_cpu_percent: f64,
}

async fn run_round(
    relay: &Relay,
    peers: &PeerFactory,
    key: &StreamKey,
    n: usize,
    seconds: u64,
    sink: bool,
) -> RoundResult {
    let stop = Arc::new(AtomicBool::new(false));
    let mut players = Vec::with_capacity(n);
    for _ in 0..n {
        let stats = Arc::new(Mutex::new(PlayerStats::default()));
        let reception = PlayerReception {
            stats: stats.clone(),
            sink,
            seqs: SeqExtender::default(),
        };
        let session = peers
            .player(relay, key.clone(), stop.clone(), reception)
            .await;
        players.push(PlayerHandle { session, stats });
    }
    // Everyone connected and past the first keyframe, or 10 s gone.
    let started = |p: &PlayerHandle| !p.stats.lock().seqs.is_empty();
    wait_until(Duration::from_secs(10), || players.iter().all(started)).await;
    let players_started = players.iter().filter(|p| started(p)).count();

    for p in &players {
        let mut stats = p.stats.lock();
        stats.seqs.clear();
        stats.measuring = true;
    }
    let (m0, cpu0, t0) = (relay.metrics(), relay.io_thread_cpu_time(), Instant::now());
    let each0 = relay.io_thread_cpu_times();
    let peers_cpu0 = this_thread_cpu();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (m1, cpu1, t1) = (relay.metrics(), relay.io_thread_cpu_time(), Instant::now());
    let each1 = relay.io_thread_cpu_times();
    let peers_cpu = this_thread_cpu() - peers_cpu0;
    let mut lost = 0;
    let mut expected = 0;
    let mut delivered = 0;
    for p in &players {
        let mut stats = p.stats.lock();
        stats.measuring = false;
        let seqs = &mut stats.seqs;
        seqs.sort_unstable();
        seqs.dedup();
        if let (Some(first), Some(last)) = (seqs.first(), seqs.last()) {
            let span = last - first + 1;
            expected += span;
            lost += span - seqs.len() as u64;
            delivered += seqs.len() as u64;
        }
    }

    stop.store(true, Ordering::Relaxed);
    for p in &players {
        relay.close_session(p.session);
    }
    while relay.metrics().players > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let delta = |f: fn(&RelayMetrics) -> u64| f(&m1) - f(&m0);
    let forwarded = delta(|m| m.packets_forwarded);
    let cpu = cpu1.zip(cpu0).map(|(b, a)| b - a).unwrap_or_default();
    let wall = t1 - t0;
    RoundResult {
        players: n,
        players_started,
        seconds: wall.as_secs_f64(),
        packets_received: delta(|m| m.packets_received),
        packets_forwarded: forwarded,
        cpu_us_per_packet: cpu.as_secs_f64() * 1e6 / forwarded.max(1) as f64,
        relay_cpu_percent: cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        relay_thread_percents: each0
            .iter()
            .zip(&each1)
            .map(|(a, b)| {
                let busy = b.zip(*a).map(|(b, a)| b - a).unwrap_or_default();
                round2(busy.as_secs_f64() * 100.0 / wall.as_secs_f64())
            })
            .collect(),
        overload_drops: delta(|m| m.overload_drops),
        packets_lost: lost,
        packets_delivered: delivered,
        loss_fraction: if expected == 0 {
            0.0
        } else {
            lost as f64 / expected as f64
        },
        retransmissions: delta(|m| m.retransmissions),
        peers_cpu_percent: peers_cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
    }
}

#[derive(Default)]
struct PlayerStats {
    measuring: bool,
    seqs: Vec<u64>,
}

struct PlayerHandle {
    session: SessionId,
    stats: Arc<Mutex<PlayerStats>>,
}

/// A player's own side of the peers' thread: the sequence numbers it got, before measuring (any packet shows the
/// player started) and while measuring.
struct PlayerReception {
    stats: Arc<Mutex<PlayerStats>>,
    /// Once connected, media is counted from its clear RTP header and not handed to str0m.
    sink: bool,
    seqs: SeqExtender,
}

impl Reception for PlayerReception {
    fn take_datagram(&mut self, datagram: &[u8]) -> bool {
        if !self.sink {
            return false;
        }
        let Some((ssrc, seq)) = rtp_seq(datagram) else {
            return false;
        };
        let mut stats = self.stats.lock();
        if let Some(seq) = self.seqs.extend(ssrc, seq) {
            if stats.measuring || stats.seqs.is_empty() {
                stats.seqs.push(seq);
            }
        }
        true
    }

    fn rtp_packet(&mut self, packet: &RtpPacket, _: Option<Duration>) {
        let mut stats = self.stats.lock();
        if stats.measuring || stats.seqs.is_empty() {
            stats.seqs.push(*packet.seq_no);
        }
    }
}

/// The SSRC and sequence number of an RTP packet (RTCP's packet types 64..=95 excluded, RFC 5761), from its clear
/// header.
fn rtp_seq(datagram: &[u8]) -> Option<(u32, u16)> {
    let rtp =
        datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(64..96).contains(&(datagram[1] & 0x7f));
    let ssrc = || u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    rtp.then(|| (ssrc(), u16::from_be_bytes([datagram[2], datagram[3]])))
}

/// Extends the 16-bit sequence numbers of the first stream seen by the nearest rollover count to the last one;
/// other streams (retransmissions) are not counted.
#[derive(Default)]
struct SeqExtender {
    ssrc: Option<u32>,
    last: Option<u64>,
}

impl SeqExtender {
    fn extend(&mut self, ssrc: u32, seq: u16) -> Option<u64> {
        if *self.ssrc.get_or_insert(ssrc) != ssrc {
            return None;
        }
        Some(self.extend_seq(seq))
    }

    fn extend_seq(&mut self, seq: u16) -> u64 {
        let extended = match self.last {
            None => u64::from(seq) + (1 << 16),
            Some(last) => {
                let delta = seq.wrapping_sub(last as u16) as i16;
                last.wrapping_add_signed(i64::from(delta))
            }
        };
        self.last = Some(self.last.map_or(extended, |last| last.max(extended)));
        extended
    }
}
