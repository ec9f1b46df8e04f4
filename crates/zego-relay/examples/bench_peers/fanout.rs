//! The fan-out round of `fanout_bench` (N players of one stream through the relay, the relay's CPU per forwarded
//! packet and the players' loss), and the players' counting of what they get, shared with `janus_yardstick`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use str0m::rtp::RtpPacket;
use zego_relay::{Relay, RelayMetrics, SessionId, StreamKey};

use super::{this_thread_cpu, wait_until, PeerFactory, Reception};

/// Rounded to two decimals, for the JSON.
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// What one fan-out round measured.
pub struct RoundResult {
    pub players: usize,
    pub players_started: usize,
    pub seconds: f64,
    pub packets_received: u64,
    pub packets_forwarded: u64,
    pub cpu_us_per_packet: f64,
    pub relay_cpu_percent: f64,
    /// Each I/O thread's share of a core.
    pub relay_thread_percents: Vec<f64>,
    /// Hand-overs between I/O threads dropped for being late (overload).
    pub overload_drops: u64,
    pub packets_lost: u64,
    /// Packets the players got (first transmissions, over the round).
    pub packets_delivered: u64,
    pub loss_fraction: f64,
    pub retransmissions: u64,
    /// The thread of the publisher and players; near 100% it, not the relay, limits the round.
    pub peers_cpu_percent: f64,
}

/// N players of `key` on `relay`: connects them, waits until each got a packet (10 s at most), then measures for
/// `seconds`.
pub async fn run_round(
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
        let (stats, reception) = PlayerReception::counting(sink);
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
    let tally = Tally::of(players.iter().map(|p| &p.stats));
    let (lost, delivered) = (tally.lost, tally.delivered);

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
        loss_fraction: tally.loss_fraction(),
        retransmissions: delta(|m| m.retransmissions),
        peers_cpu_percent: peers_cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
    }
}

/// What a player got: the extended sequence numbers, before measuring (any packet shows the player started) and
/// while measuring.
/// What the players got while measuring, summed over them.
#[derive(Default)]
pub struct Tally {
    /// Packets missing between each player's first and last sequence number.
    pub lost: u64,
    /// Each player's span of sequence numbers, first to last.
    pub expected: u64,
    /// Packets received (first transmissions).
    pub delivered: u64,
}

impl Tally {
    /// Ends the players' measuring and sums what they got.
    pub fn of<'a>(players: impl IntoIterator<Item = &'a Arc<Mutex<PlayerStats>>>) -> Tally {
        let mut tally = Tally::default();
        for p in players {
            let mut stats = p.lock();
            stats.measuring = false;
            let seqs = &mut stats.seqs;
            seqs.sort_unstable();
            seqs.dedup();
            if let (Some(first), Some(last)) = (seqs.first(), seqs.last()) {
                let span = last - first + 1;
                tally.expected += span;
                tally.lost += span - seqs.len() as u64;
                tally.delivered += seqs.len() as u64;
            }
        }
        tally
    }

    /// The share of the expected packets that were lost.
    pub fn loss_fraction(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

#[derive(Default)]
pub struct PlayerStats {
    pub measuring: bool,
    pub seqs: Vec<u64>,
}

struct PlayerHandle {
    session: SessionId,
    stats: Arc<Mutex<PlayerStats>>,
}

/// A player's own side of the peers' thread: the sequence numbers it got, before measuring (any packet shows the
/// player started) and while measuring.
pub struct PlayerReception {
    pub stats: Arc<Mutex<PlayerStats>>,
    /// Once connected, media is counted from its clear RTP header and not handed to str0m.
    pub sink: bool,
    pub seqs: SeqExtender,
}

impl PlayerReception {
    /// A player's reception and the statistics it fills.
    pub fn counting(sink: bool) -> (Arc<Mutex<PlayerStats>>, PlayerReception) {
        let stats = Arc::new(Mutex::new(PlayerStats::default()));
        let reception = PlayerReception {
            stats: stats.clone(),
            sink,
            seqs: SeqExtender::default(),
        };
        (stats, reception)
    }
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
pub fn rtp_seq(datagram: &[u8]) -> Option<(u32, u16)> {
    let rtp =
        datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(64..96).contains(&(datagram[1] & 0x7f));
    let ssrc = || u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    rtp.then(|| (ssrc(), u16::from_be_bytes([datagram[2], datagram[3]])))
}

/// Extends the 16-bit sequence numbers of the first stream seen by the nearest rollover count to the last one;
/// other streams (retransmissions) are not counted.
#[derive(Default)]
pub struct SeqExtender {
    ssrc: Option<u32>,
    last: Option<u64>,
}

impl SeqExtender {
    pub fn extend(&mut self, ssrc: u32, seq: u16) -> Option<u64> {
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
