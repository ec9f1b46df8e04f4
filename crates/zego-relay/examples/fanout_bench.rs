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

use std::sync::atomic::Ordering;

use bench_peers::fanout::{round2, run_round};
use bench_peers::{flag_list, flag_value, stream_key, ClipSpec, PeerFactory, SocketOptions};

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
                "--players" => args.players = flag_list(&mut it, "--players"),
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
