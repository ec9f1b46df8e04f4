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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod};
use openh264::formats::YUVBuffer;
use openh264::OpenH264API;
use parking_lot::Mutex;
use str0m::change::SdpAnswer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use zego_relay::{Relay, RelayConfig, RelayMetrics, StreamKey};

const WIDTH: usize = 640;
const HEIGHT: usize = 360;
const FPS: u32 = 30;
const BITRATE_BPS: u32 = 1_000_000;
/// The clip loops; its first frame is the only IDR picture unless the relay asks for one.
const CLIP_FRAMES: usize = 90;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    eprintln!(
        "encoding {CLIP_FRAMES} frames of {WIDTH}x{HEIGHT} at {} kbps ...",
        BITRATE_BPS / 1000
    );
    let clip = Arc::new(
        tokio::task::spawn_blocking(encode_clip)
            .await
            .expect("encoder"),
    );
    let clip_bits: usize = clip.iter().map(|f| f.len() * 8).sum();
    let stream_kbps = clip_bits as f64 / (CLIP_FRAMES as f64 / f64::from(FPS)) / 1000.0;

    let relay = Relay::start(RelayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        announce: None,
        io_threads: args.io_threads,
    })
    .await
    .expect("relay starts");
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let cert = crypto
        .dtls_provider
        .generate_certificate()
        .expect("certificate");
    let peers = PeerFactory {
        relay: relay.clone(),
        crypto,
        cert,
    };
    let key = StreamKey {
        app_id: 1,
        stream_id: "bench".into(),
    };

    let publisher_stop = Arc::new(AtomicBool::new(false));
    peers
        .publisher(key.clone(), clip, publisher_stop.clone())
        .await;

    let mut results = Vec::new();
    for &n in &args.players {
        let result = run_round(&peers, &key, n, args.seconds, args.sink).await;
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
        "stream": {"codec": "H.264", "width": WIDTH, "height": HEIGHT, "fps": FPS, "kbps": stream_kbps.round()},
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
                "--seconds" => {
                    args.seconds = it.next().and_then(|s| s.parse().ok()).expect("--seconds N")
                }
                "--sink" => args.sink = true,
                "--io-threads" => {
                    args.io_threads = it
                        .next()
                        .and_then(|s| s.parse().ok())
                        .expect("--io-threads N")
                }
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
    peers: &PeerFactory,
    key: &StreamKey,
    n: usize,
    seconds: u64,
    sink: bool,
) -> RoundResult {
    let stop = Arc::new(AtomicBool::new(false));
    let mut players = Vec::with_capacity(n);
    for _ in 0..n {
        players.push(peers.player(key.clone(), stop.clone(), sink).await);
    }
    // Everyone connected and past the first keyframe, or 10 s gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && players.iter().any(|p| p.stats.lock().seqs.is_empty()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let players_started = players
        .iter()
        .filter(|p| !p.stats.lock().seqs.is_empty())
        .count();

    for p in &players {
        let mut stats = p.stats.lock();
        stats.seqs.clear();
        stats.measuring = true;
    }
    let (m0, cpu0, t0) = (
        peers.relay.metrics(),
        peers.relay.io_thread_cpu_time(),
        Instant::now(),
    );
    let each0 = peers.relay.io_thread_cpu_times();
    let peers_cpu0 = this_thread_cpu();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (m1, cpu1, t1) = (
        peers.relay.metrics(),
        peers.relay.io_thread_cpu_time(),
        Instant::now(),
    );
    let each1 = peers.relay.io_thread_cpu_times();
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
        peers.relay.close_session(p.session);
    }
    while peers.relay.metrics().players > 0 {
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

/// CPU time of the calling thread: the publisher and all players run on this one.
fn this_thread_cpu() -> Duration {
    let nanos = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn encode_clip() -> Vec<Vec<u8>> {
    let config = EncoderConfig::new()
        .bitrate(BitRate::from_bps(BITRATE_BPS))
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        .skip_frames(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(CLIP_FRAMES as u32));
    let mut encoder =
        Encoder::with_api_config(OpenH264API::from_source(), config).expect("openh264");
    let mut yuv = vec![0u8; WIDTH * HEIGHT * 3 / 2];
    (0..CLIP_FRAMES)
        .map(|i| {
            // Moving stripes over noise: enough detail for the encoder to spend its bitrate.
            let (luma, chroma) = yuv.split_at_mut(WIDTH * HEIGHT);
            let mut seed = (i as u32).wrapping_mul(2_654_435_761);
            for (p, px) in luma.iter_mut().enumerate() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let (x, y) = (p % WIDTH, p / WIDTH);
                *px = ((((x + y + i * 6) / 12) % 2) * 120 + (seed % 12) as usize) as u8;
            }
            chroma.fill(128);
            if i == 0 {
                encoder.force_intra_frame();
            }
            let buffer = YUVBuffer::from_vec(yuv.clone(), WIDTH, HEIGHT);
            encoder.encode(&buffer).expect("encode").to_vec()
        })
        .collect()
}

/// Makes str0m peers that talk to the relay through their own loopback sockets.
struct PeerFactory {
    relay: Relay,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
}

#[derive(Default)]
struct PlayerStats {
    measuring: bool,
    seqs: Vec<u64>,
}

struct PlayerHandle {
    session: u64,
    stats: Arc<Mutex<PlayerStats>>,
}

impl PeerFactory {
    fn rtc(&self, rtp_mode: bool) -> Rtc {
        let mut config = Rtc::builder()
            .set_rtp_mode(rtp_mode)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs();
        config
            .codec_config()
            .add_h264(108.into(), Some(109.into()), true, 0x42e01f);
        config.build(Instant::now())
    }

    async fn connect(
        &self,
        mut rtc: Rtc,
        direction: Direction,
        key: StreamKey,
        publish: bool,
    ) -> (Rtc, UdpSocket, Mid, u64) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
        let local = socket.local_addr().unwrap();
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        let offer = offer.to_sdp_string();
        let (session, answer) = if publish {
            self.relay.publish(key, &offer).await
        } else {
            self.relay.play(key, &offer).await
        }
        .expect("the relay answers");
        let answer = SdpAnswer::from_sdp_string(&answer).expect("an SDP answer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        (rtc, socket, mid, session)
    }

    async fn publisher(&self, key: StreamKey, clip: Arc<Vec<Vec<u8>>>, stop: Arc<AtomicBool>) {
        let (rtc, socket, mid, _) = self
            .connect(self.rtc(false), Direction::SendOnly, key, true)
            .await;
        tokio::spawn(drive(rtc, socket, stop, Role::Publisher { mid, clip }));
    }

    async fn player(&self, key: StreamKey, stop: Arc<AtomicBool>, sink: bool) -> PlayerHandle {
        let (rtc, socket, _, session) = self
            .connect(self.rtc(true), Direction::RecvOnly, key, false)
            .await;
        let stats = Arc::new(Mutex::new(PlayerStats::default()));
        let role = Role::Player {
            stats: stats.clone(),
            sink,
        };
        tokio::spawn(drive(rtc, socket, stop, role));
        PlayerHandle { session, stats }
    }
}

enum Role {
    Publisher {
        mid: Mid,
        clip: Arc<Vec<Vec<u8>>>,
    },
    Player {
        stats: Arc<Mutex<PlayerStats>>,
        /// Once connected, media is counted from its clear RTP header and not handed to str0m.
        sink: bool,
    },
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

static SEND_ERRORS: AtomicU64 = AtomicU64::new(0);

/// The run loop of one peer: drain str0m, then wait for a datagram, the next timeout, or the next frame.
async fn drive(mut rtc: Rtc, socket: UdpSocket, stop: Arc<AtomicBool>, role: Role) {
    let local: SocketAddr = socket.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    let mut frame: u64 = 0;
    let mut clip_index = 0usize;
    let mut seqs = SeqExtender::default();
    let start = tokio::time::Instant::now();
    let frame_interval = Duration::from_secs(1) / FPS;
    loop {
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    if socket.try_send_to(&t.contents, t.destination).is_err() {
                        SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => connected = true,
                    Event::RtpPacket(packet) => {
                        if let Role::Player { stats, .. } = &role {
                            let mut stats = stats.lock();
                            // Before measuring, any packet shows the player started.
                            if stats.measuring || stats.seqs.is_empty() {
                                stats.seqs.push(*packet.seq_no);
                            }
                        }
                    }
                    // The relay asks for a keyframe for a new player: restart the clip at its IDR picture.
                    Event::KeyframeRequest(_) => clip_index = 0,
                    _ => {}
                },
                Err(e) => {
                    eprintln!("peer failed: {e}");
                    return;
                }
            }
        };
        if stop.load(Ordering::Relaxed) || !rtc.is_alive() {
            return;
        }
        let next_frame = start + frame_interval * frame as u32;
        let publishing = matches!(role, Role::Publisher { .. }) && connected;
        let wake = if publishing {
            tokio::time::Instant::from_std(timeout).min(next_frame)
        } else {
            tokio::time::Instant::from_std(timeout)
        };
        let input_time;
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((len, source)) = received else { return };
                if let (Role::Player { stats, sink: true }, true) = (&role, connected) {
                    if let Some((ssrc, seq)) = rtp_seq(&buf[..len]) {
                        let mut stats = stats.lock();
                        if let Some(seq) = seqs.extend(ssrc, seq) {
                            if stats.measuring || stats.seqs.is_empty() {
                                stats.seqs.push(seq);
                            }
                        }
                        continue;
                    }
                }
                input_time = Instant::now();
                let Ok(contents) = buf[..len].try_into() else { continue };
                let input = Input::Receive(input_time, Receive { proto: Protocol::Udp, source, destination: local, contents });
                if rtc.handle_input(input).is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep_until(wake) => { input_time = Instant::now(); }
        }
        if let (Role::Publisher { mid, clip }, true) = (&role, publishing) {
            if tokio::time::Instant::now() >= next_frame {
                let Some(writer) = rtc.writer(*mid) else {
                    return;
                };
                let Some(pt) = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::H264)
                    .map(|p| p.pt())
                else {
                    return;
                };
                let media_time = MediaTime::new(frame * 3000, Frequency::NINETY_KHZ);
                let data = clip[clip_index].clone();
                clip_index = (clip_index + 1) % clip.len();
                frame += 1;
                if writer.write(pt, input_time, media_time, data).is_err() {
                    return;
                }
                continue;
            }
        }
        if rtc.handle_input(Input::Timeout(input_time)).is_err() {
            return;
        }
    }
}
