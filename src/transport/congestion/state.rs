//! What the congestion controller knows, shared by the interceptors and the publisher, and the encoder's share of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Estimator;

/// Share of the estimate given to media (video + audio); the rest is room for retransmissions and headers.
pub(crate) const MEDIA_SHARE: f64 = 0.7;
/// How far the estimate may climb above what the configured stream needs: enough to see a clean path as clean,
/// small enough that a sudden cap is reached within a few steps down.
pub(super) const CEILING_FACTOR: f64 = 1.5;
/// Never estimate below this; GCC's own floor.
pub(super) const MIN_ESTIMATE_BPS: f64 = 100_000.0;
/// How long the relay's estimate for the players (REMB) holds after it arrived: the relay repeats it every half
/// second while a player's downlink limits the stream, and stops when none does.
pub(super) const RECEIVER_ESTIMATE_HOLD: Duration = Duration::from_secs(2);
/// Bytes per packet of headers the encoder's bitrate does not count (IP, UDP, SRTP, RTP and extensions).
pub(super) const AUDIO_OVERHEAD_BPS: u32 = 20_000;

/// What the congestion controller knows, shared between the peer's interceptors and the publisher.
#[derive(Debug)]
pub(crate) struct CongestionState {
    /// The bandwidth estimate in bits per second (an `f64` as bits).
    target_bps: AtomicU64,
    /// Packets the relay's feedback has accounted for, and how many of them it says never arrived.
    reported: AtomicU64,
    lost: AtomicU64,
    /// The encoder is held below its configured bitrate by the estimate.
    limited: AtomicBool,
    /// The delay-based part of the estimate (GCC's delay half, under the standing-queue cap), as `f64` bits: what
    /// a bottleneck's queue says, as opposed to random loss.
    delay_bps: AtomicU64,
    /// The delay-based estimate alone would hold the encoder below its configured bitrate: there is a bottleneck,
    /// and the pacer smooths only then.
    pacing: AtomicBool,
    /// The video bitrate the encoder was last given.
    encoder_bps: AtomicU64,
    /// Retransmissions dropped for want of budget.
    pub(super) rtx_dropped: AtomicU64,
    /// The players' estimate from the relay (REMB), as `f64` bits, and until when it holds (µs after `origin`).
    receiver_bps: AtomicU64,
    receiver_until_us: AtomicU64,
    origin: Instant,
}

/// Cumulative feedback counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FeedbackCounters {
    pub reported: u64,
    pub lost: u64,
}

impl FeedbackCounters {
    /// Share of packets lost between two snapshots; `None` when nothing was reported in between.
    pub fn loss_since(&self, before: &FeedbackCounters) -> Option<f64> {
        let reported = self.reported.saturating_sub(before.reported);
        (reported > 0).then(|| self.lost.saturating_sub(before.lost) as f64 / reported as f64)
    }
}

impl CongestionState {
    /// A state for a stream of `video_bps` + `audio_bps`, starting from an estimate that lets it run at full rate.
    pub fn new(video_bps: u32, audio_bps: u32, now: Instant) -> Arc<CongestionState> {
        Arc::new(CongestionState {
            target_bps: AtomicU64::new(initial_estimate(video_bps, audio_bps).to_bits()),
            reported: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            limited: AtomicBool::new(false),
            delay_bps: AtomicU64::new(initial_estimate(video_bps, audio_bps).to_bits()),
            pacing: AtomicBool::new(false),
            encoder_bps: AtomicU64::new(u64::from(video_bps)),
            rtx_dropped: AtomicU64::new(0),
            receiver_bps: AtomicU64::new(0),
            receiver_until_us: AtomicU64::new(0),
            origin: now,
        })
    }

    /// The estimate at `now`: GCC's, under the players' while that holds.
    pub fn target_bps(&self, now: Instant) -> f64 {
        self.under_players(&self.target_bps, now)
    }

    /// What the estimate says at `now` about a bottleneck on the way (GCC's delay half, or the players' estimate).
    pub(super) fn delay_based_bps(&self, now: Instant) -> f64 {
        self.under_players(&self.delay_bps, now)
    }

    /// One of our own estimates (`f64` bits), capped by the players' (REMB from the relay) while that holds.
    fn under_players(&self, own: &AtomicU64, now: Instant) -> f64 {
        let own = f64::from_bits(own.load(Ordering::Relaxed));
        let until = self.receiver_until_us.load(Ordering::Acquire);
        if self.micros(now) < until {
            own.min(f64::from_bits(self.receiver_bps.load(Ordering::Relaxed)))
        } else {
            own
        }
    }

    /// The relay's estimate of what the stream's players can receive, arrived at `now`.
    pub fn set_receiver_estimate(&self, bps: f64, now: Instant) {
        let bps = bps.max(MIN_ESTIMATE_BPS);
        self.receiver_bps.store(bps.to_bits(), Ordering::Relaxed);
        self.receiver_until_us
            .store(self.micros(now + RECEIVER_ESTIMATE_HOLD), Ordering::Release);
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    pub fn feedback(&self) -> FeedbackCounters {
        FeedbackCounters {
            reported: self.reported.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }

    pub fn encoder_bps(&self) -> u64 {
        self.encoder_bps.load(Ordering::Relaxed)
    }

    pub fn rtx_dropped(&self) -> u64 {
        self.rtx_dropped.load(Ordering::Relaxed)
    }

    /// Sets the estimate as if GCC had settled on `target` with its delay half at `delay_based`.
    #[cfg(test)]
    pub(super) fn estimate(&self, target: f64, delay_based: f64) {
        self.set_target(target, delay_based);
    }

    #[cfg(test)]
    pub(super) fn limited(&self) -> bool {
        self.limited.load(Ordering::Relaxed)
    }

    pub fn pacing(&self) -> bool {
        self.pacing.load(Ordering::Relaxed)
    }

    /// The video bitrate for the encoder under the estimate at `now`, and records it.
    pub fn video_bitrate(&self, configured_video_bps: u32, audio_bps: u32, now: Instant) -> u32 {
        let bps = video_bitrate(self.target_bps(now), configured_video_bps, audio_bps);
        self.limited
            .store(bps < configured_video_bps, Ordering::Relaxed);
        // Random loss drives GCC's loss half down with no queue anywhere; pacing then would only hold keyframes
        // and retransmissions back. A bottleneck shows in the delay half.
        let by_delay = video_bitrate(self.delay_based_bps(now), configured_video_bps, audio_bps);
        self.pacing
            .store(by_delay < configured_video_bps, Ordering::Relaxed);
        self.encoder_bps.store(u64::from(bps), Ordering::Relaxed);
        bps
    }

    /// GCC bounded for a stream of `video_bps` + `audio_bps`, writing into this state.
    pub fn estimator(self: &Arc<Self>, video_bps: u32, audio_bps: u32) -> Estimator {
        let initial = initial_estimate(video_bps, audio_bps);
        Estimator::new(
            self.clone(),
            initial,
            MIN_ESTIMATE_BPS,
            initial * CEILING_FACTOR,
        )
    }

    pub(super) fn set_target(&self, target: f64, delay_based: f64) {
        self.target_bps.store(target.to_bits(), Ordering::Relaxed);
        self.delay_bps
            .store(delay_based.to_bits(), Ordering::Relaxed);
    }

    /// Counts what one transport-wide feedback packet says: how many packets it covers, how many arrived.
    pub fn count_feedback(&self, covered: u64, arrived: u64) {
        self.reported.fetch_add(covered, Ordering::Relaxed);
        self.lost
            .fetch_add(covered.saturating_sub(arrived), Ordering::Relaxed);
    }
}

/// The audio stream's rate on the wire, headers included.
pub(crate) fn audio_wire_bps(audio_kbps: u32) -> u32 {
    audio_kbps * 1000 + AUDIO_OVERHEAD_BPS
}

/// The estimate at which the configured stream fits exactly.
fn initial_estimate(video_bps: u32, audio_bps: u32) -> f64 {
    ((f64::from(video_bps) + f64::from(audio_bps)) / MEDIA_SHARE).max(MIN_ESTIMATE_BPS)
}

/// The lowest video bitrate congestion control goes to: an eighth of the configured one, at least 100 kb/s.
fn video_floor(configured_video_bps: u32) -> u32 {
    (configured_video_bps / 8)
        .max(100_000)
        .min(configured_video_bps)
}

/// The encoder's share of `target_bps`: what is left for media after audio, within floor..=configured.
pub(crate) fn video_bitrate(target_bps: f64, configured_video_bps: u32, audio_bps: u32) -> u32 {
    let share = target_bps * MEDIA_SHARE - f64::from(audio_bps);
    let floor = video_floor(configured_video_bps);
    (share.max(0.0) as u32).clamp(floor, configured_video_bps)
}
