//! The player's side of congestion control: what its downlink can carry, sent to the relay as REMB (receiver
//! estimated maximum bitrate), which passes the lowest of its players' estimates on to the publisher.
//!
//! The publisher's own controller sees only its uplink. The relay forwards what arrives, so a viewer behind a
//! slower link than the anchor's gets more than its link carries; the bottleneck's queue stands full, drops, and the
//! retransmissions of the drops add to the overload. The signal used here is the one such a queue cannot hide: how
//! long frames take to arrive. Each frame's first packet (in order, so no retransmission or FEC rebuild) gives a
//! transit time, `arrival − RTP timestamp`, on the player's clock; its lowest value over the last half minute is the
//! path without queue, and the median over the last half second above that is the queue. While it stands above
//! [`STANDING_QUEUE`], the estimate is cut to [`DECREASE`] × the rate that actually arrives; once the queue is gone
//! it grows again, fast up to the rate the link carried when it was last congested and slowly beyond.
//!
//! Random loss changes nothing here, and a queue that only absorbs a keyframe burst does not move the median.
//!
//! Sans-IO: the video track feeds packets and asks [`DownlinkEstimate::poll`] what to send.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zego_rtp::VIDEO_CLOCK_RATE;

/// Queueing delay (median over [`RECENT`]) that means the downlink's queue stands rather than absorbs a burst.
const STANDING_QUEUE: Duration = Duration::from_millis(40);
/// Below this the queue has drained and the estimate may grow.
const DRAINED_QUEUE: Duration = Duration::from_millis(20);
/// The window of the queue's median.
const RECENT: Duration = Duration::from_millis(500);
/// The fewest frames in [`RECENT`] to judge the queue by.
const MIN_RECENT_FRAMES: usize = 5;
/// How long the lowest transit is remembered as the path's own.
const BASE_WINDOW: Duration = Duration::from_secs(30);
/// The window of the arriving rate: short, so that right after a queue builds up it is the link's rate.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// How often the state is judged.
const TICK: Duration = Duration::from_millis(250);
/// A queue must stand this many ticks in a row before the estimate is cut.
const CONGESTED_TICKS: u32 = 2;
/// Between two cuts: the publisher's reaction (a round trip, the next encoded frames) and the queue's draining.
const DECREASE_INTERVAL: Duration = Duration::from_millis(1500);
/// A cut sets the estimate to this share of the arriving rate.
const DECREASE: f64 = 0.85;
/// Growth per second below the rate last seen at congestion, and above it.
const FAST_GROWTH: f64 = 1.08;
const SLOW_GROWTH: f64 = 1.02;
/// An estimate this many times above what arrives no longer limits anything: it is dropped.
const UNLIMITED_FACTOR: f64 = 2.0;
/// How often a standing estimate is repeated (REMB is unreliable, and the relay forgets a silent player's).
pub(crate) const REPEAT: Duration = Duration::from_millis(500);
/// Bytes per packet on the wire beyond the RTP payload (IP, UDP, SRTP, RTP header and extensions).
const PACKET_OVERHEAD: u64 = 60;

/// The downlink estimate of one played stream.
#[derive(Debug, Default)]
pub(crate) struct DownlinkEstimate {
    /// The first packet's arrival and extended RTP timestamp: the origin of transit times.
    origin: Option<(Instant, i64)>,
    /// Extended RTP timestamp of the newest frame seen, and the newest extended sequence number.
    last_ts: Option<i64>,
    last_seq: Option<u64>,
    /// One transit per frame (ms, relative to the origin), oldest first, over [`BASE_WINDOW`].
    transits: VecDeque<(Instant, f64)>,
    /// Bytes received so far, and samples of it at each tick over [`RATE_WINDOW`].
    bytes: u64,
    rate_samples: VecDeque<(Instant, u64)>,
    last_tick: Option<Instant>,
    congested_ticks: u32,
    last_decrease: Option<Instant>,
    /// The arriving rate when the queue last stood: the link's capacity as last seen.
    capacity_bps: Option<f64>,
    estimate_bps: Option<f64>,
    /// A cut not yet sent, and when the estimate was last sent.
    decreased: bool,
    last_sent: Option<Instant>,
}

impl DownlinkEstimate {
    /// A video packet arrived at `now`. Only packets newer than every one before them time the path: a late one is
    /// a retransmission, a rebuilt or a reordered packet, whose delay says nothing about the queue.
    pub fn on_video(&mut self, now: Instant, seq: u16, timestamp: u32) {
        let seq = zego_rtp::seq::extend(self.last_seq, seq);
        if self.last_seq.is_some_and(|last| seq <= last) {
            return;
        }
        self.last_seq = Some(seq);
        let ts = zego_rtp::timestamp::extend(self.last_ts, timestamp);
        if self.last_ts.is_some_and(|last| ts <= last) {
            // Not the first packet of a newer frame.
            return;
        }
        self.last_ts = Some(ts);
        let (t0, ts0) = *self.origin.get_or_insert((now, ts));
        let transit_ms = now.duration_since(t0).as_secs_f64() * 1000.0
            - (ts - ts0) as f64 * 1000.0 / f64::from(VIDEO_CLOCK_RATE);
        self.transits.push_back((now, transit_ms));
        while self
            .transits
            .front()
            .is_some_and(|&(at, _)| now.duration_since(at) > BASE_WINDOW)
        {
            self.transits.pop_front();
        }
    }

    /// The estimate to send now, if any: at once after a cut, then every [`REPEAT`] while it limits the stream.
    /// `received` is every byte of the stream (video and audio) received so far, as [`wire_bytes`] counts them.
    pub fn poll(&mut self, now: Instant, received: u64) -> Option<u64> {
        self.bytes = received;
        if self.last_tick.is_none_or(|t| now.duration_since(t) >= TICK) {
            self.tick(now);
        }
        let estimate = self.estimate_bps?;
        let due = self.decreased
            || self
                .last_sent
                .is_none_or(|t| now.duration_since(t) >= REPEAT);
        if !due {
            return None;
        }
        self.decreased = false;
        self.last_sent = Some(now);
        Some(estimate as u64)
    }

    /// The current estimate in bits per second, `None` while the downlink limits nothing.
    #[cfg(test)]
    pub fn estimate_bps(&self) -> Option<f64> {
        self.estimate_bps
    }

    fn tick(&mut self, now: Instant) {
        let elapsed = self.last_tick.map(|t| now.duration_since(t));
        self.last_tick = Some(now);
        self.rate_samples.push_back((now, self.bytes));
        while self.rate_samples.len() > 2
            && now.duration_since(self.rate_samples[1].0) >= RATE_WINDOW
        {
            self.rate_samples.pop_front();
        }
        let (Some(queue), Some(rate)) = (self.queue_ms(now), self.rate_bps(now)) else {
            return;
        };
        if queue >= STANDING_QUEUE.as_secs_f64() * 1000.0 {
            self.congested_ticks += 1;
            if self.congested_ticks >= CONGESTED_TICKS
                && self
                    .last_decrease
                    .is_none_or(|t| now.duration_since(t) >= DECREASE_INTERVAL)
            {
                let cut = rate * DECREASE;
                self.estimate_bps = Some(self.estimate_bps.map_or(cut, |e| e.min(cut)));
                self.capacity_bps = Some(rate);
                self.last_decrease = Some(now);
                self.decreased = true;
                tracing::debug!(
                    queue_ms = queue,
                    rate_bps = rate,
                    estimate_bps = cut,
                    "downlink congested"
                );
            }
            return;
        }
        self.congested_ticks = 0;
        if queue >= DRAINED_QUEUE.as_secs_f64() * 1000.0 {
            return;
        }
        let (Some(estimate), Some(elapsed)) = (self.estimate_bps, elapsed) else {
            return;
        };
        let growth = if self.capacity_bps.is_some_and(|c| estimate < c) {
            FAST_GROWTH
        } else {
            SLOW_GROWTH
        };
        let grown = estimate * growth.powf(elapsed.as_secs_f64());
        if grown > rate * UNLIMITED_FACTOR {
            tracing::debug!(rate_bps = rate, "downlink no longer limits the stream");
            self.estimate_bps = None;
        } else {
            self.estimate_bps = Some(grown);
        }
    }

    /// The queue's delay: the median transit over [`RECENT`] above the lowest over [`BASE_WINDOW`].
    fn queue_ms(&self, now: Instant) -> Option<f64> {
        let base = self
            .transits
            .iter()
            .map(|&(_, t)| t)
            .min_by(f64::total_cmp)?;
        let mut recent: Vec<f64> = self
            .transits
            .iter()
            .rev()
            .take_while(|&&(at, _)| now.duration_since(at) <= RECENT)
            .map(|&(_, t)| t)
            .collect();
        if recent.len() < MIN_RECENT_FRAMES {
            return None;
        }
        let mid = recent.len() / 2;
        let (_, median, _) = recent.select_nth_unstable_by(mid, f64::total_cmp);
        Some(*median - base)
    }

    /// Bits per second arrived over the rate window (at least half of it must be covered).
    fn rate_bps(&self, now: Instant) -> Option<f64> {
        let &(from, bytes_then) = self.rate_samples.front()?;
        let span = now.duration_since(from);
        (span >= RATE_WINDOW / 2)
            .then(|| (self.bytes - bytes_then) as f64 * 8.0 / span.as_secs_f64())
    }
}

/// Bytes on the wire of `packets` RTP packets carrying `payload` bytes.
pub(crate) fn wire_bytes(payload: u64, packets: u64) -> u64 {
    payload + packets * PACKET_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_micros(33_333);
    const TS_PER_FRAME: u32 = 3_000;

    /// A 30 fps stream of `packets` packets of 1,200 bytes per frame through a link of `link_bps` with a drop-tail
    /// queue of at most `queue_limit`: each frame's packets leave the queue back to back at the link's rate.
    struct Link {
        estimate: DownlinkEstimate,
        now: Instant,
        seq: u16,
        ts: u32,
        /// When the link is free again.
        busy_until: Instant,
        sent: Vec<(Instant, u64)>,
        received: u64,
    }

    impl Link {
        fn new() -> Link {
            let now = Instant::now();
            Link {
                estimate: DownlinkEstimate::default(),
                now,
                seq: 65_000,
                ts: u32::MAX - 10 * TS_PER_FRAME,
                busy_until: now,
                sent: Vec::new(),
                received: 0,
            }
        }

        /// Runs `frames` frames of the rate `stream` gives for the estimate through a link of `link_bps`.
        fn run(
            &mut self,
            frames: u32,
            stream: impl Fn(Option<f64>) -> f64,
            link_bps: f64,
            queue_limit: Duration,
        ) {
            let packet_bits = 1_260.0 * 8.0;
            for _ in 0..frames {
                let stream_bps = stream(self.estimate.estimate_bps());
                let packets = ((stream_bps / 30.0) / packet_bits).round().max(1.0) as u32;
                for _ in 0..packets {
                    let start = self.busy_until.max(self.now);
                    if start.duration_since(self.now) > queue_limit {
                        // Tail drop.
                        self.seq = self.seq.wrapping_add(1);
                        continue;
                    }
                    let done = start + Duration::from_secs_f64(packet_bits / link_bps);
                    self.busy_until = done;
                    // Delivered at `done`: fed in arrival order, which is send order here.
                    self.received += wire_bytes(1_200, 1);
                    self.estimate.on_video(done, self.seq, self.ts);
                    self.seq = self.seq.wrapping_add(1);
                }
                self.ts = self.ts.wrapping_add(TS_PER_FRAME);
                self.now += FRAME;
                if let Some(bps) = self.estimate.poll(self.now, self.received) {
                    self.sent.push((self.now, bps));
                }
            }
        }
    }

    const QUEUE: Duration = Duration::from_millis(100);

    /// A publisher at 2.5 Mb/s that follows the estimate the way its encoder does (media at 70% of it).
    fn publisher(estimate: Option<f64>) -> f64 {
        estimate.map_or(2_500_000.0, |e| (e * 0.75).min(2_500_000.0))
    }

    #[test]
    fn a_link_that_carries_the_stream_limits_nothing() {
        let mut link = Link::new();
        link.run(30 * 20, publisher, 10_000_000.0, QUEUE);
        assert_eq!(link.estimate.estimate_bps(), None);
        assert!(link.sent.is_empty(), "nothing to send: {:?}", link.sent);
    }

    #[test]
    fn a_standing_queue_cuts_the_estimate_below_the_link_and_repeats_it() {
        let mut link = Link::new();
        link.run(30 * 3, publisher, 10_000_000.0, QUEUE);
        // The link drops to 1 Mb/s under the 2.5 Mb/s stream: its queue fills and stands.
        link.run(30, publisher, 1_000_000.0, QUEUE);
        let estimate = link
            .estimate
            .estimate_bps()
            .expect("congested within a second");
        assert!(
            (750_000.0..=950_000.0).contains(&estimate),
            "about 0.85 × the 1 Mb/s that arrives: {estimate}"
        );
        let (first, _) = link.sent[0];
        // The stream follows; the estimate is repeated about every 500 ms while it limits, and the queue is gone.
        link.run(30 * 4, publisher, 1_000_000.0, QUEUE);
        let repeats = link.sent.iter().filter(|(at, _)| *at > first).count();
        assert!((6..=10).contains(&repeats), "{:?}", link.sent);
        let now = link.now;
        assert!(link.estimate.queue_ms(now).unwrap() < 20.0);
        assert!(
            link.estimate.estimate_bps().unwrap() > estimate,
            "and it grows again"
        );
    }

    #[test]
    fn once_the_link_is_free_the_estimate_grows_and_finally_lets_go() {
        let mut link = Link::new();
        link.run(30 * 3, publisher, 10_000_000.0, QUEUE);
        link.run(30, publisher, 1_000_000.0, QUEUE);
        let cut = link.estimate.estimate_bps().unwrap();
        // The cap is gone: the estimate grows fast back to what the link carried at congestion.
        link.run(30 * 2, publisher, 10_000_000.0, QUEUE);
        let grown = link.estimate.estimate_bps().unwrap();
        assert!(
            grown > cut * 1.12,
            "grew fast below the old capacity: {cut} → {grown}"
        );
        // The publisher holds itself at 600 kb/s (its own uplink, say): far above that, the estimate is dropped.
        link.run(30 * 60, |_| 600_000.0, 10_000_000.0, QUEUE);
        assert_eq!(link.estimate.estimate_bps(), None);
    }

    #[test]
    fn a_keyframe_burst_is_not_a_standing_queue() {
        let mut link = Link::new();
        // 2.5 Mb/s through a 4 Mb/s link, with a 60 kB keyframe every 2 s: each one queues the frames after it
        // for a few hundred milliseconds.
        for _ in 0..10 {
            link.run(
                1,
                |_| 60_000.0 * 8.0 * 30.0,
                4_000_000.0,
                Duration::from_secs(1),
            );
            link.run(59, publisher, 4_000_000.0, Duration::from_secs(1));
        }
        assert_eq!(link.estimate.estimate_bps(), None, "{:?}", link.sent);
    }

    #[test]
    fn late_packets_and_random_loss_are_not_a_queue() {
        let mut estimate = DownlinkEstimate::default();
        let start = Instant::now();
        let mut seq = 0u16;
        let mut received = 0;
        // Retransmitted packets, due 150 ms after their frame, after newer frames.
        let mut late: Vec<(Instant, u16, u32)> = Vec::new();
        for frame in 0..600u32 {
            let at = start + FRAME * frame + Duration::from_millis(50);
            late.retain(|&(due, s, ts)| {
                let arrived = due <= at;
                if arrived {
                    estimate.on_video(due, s, ts);
                    received += wire_bytes(1_200, 1);
                }
                !arrived
            });
            for p in 0..9u16 {
                let ts = frame * TS_PER_FRAME;
                if (u32::from(p) + frame) % 10 == 0 {
                    late.push((at + Duration::from_millis(150), seq + p, ts));
                } else {
                    estimate.on_video(at + Duration::from_micros(200) * u32::from(p), seq + p, ts);
                    received += wire_bytes(1_200, 1);
                }
            }
            seq += 9;
            assert_eq!(estimate.poll(at, received), None, "frame {frame}");
        }
    }
}
