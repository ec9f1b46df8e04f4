//! How much protection a path's loss calls for.
//!
//! A NACK repairs a loss in one round trip; a repair packet repairs it as soon as enough of its block has arrived.
//! Repair packets cost bandwidth on every frame, so they are sent only while the receiver's reports show loss, and
//! never while the path shows a queue: loss with a queue behind it is congestion, and redundancy would feed it.
//!
//! The amount is the smallest that leaves a block of n media packets unrepaired (more than k of its n + k packets
//! lost) with at most a target probability, for independent losses at the highest rate reported in the last
//! seconds. The rest is left to NACK: a frame whose block fails waits a round trip, which the target keeps rare.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Below this reported loss no repair packets are sent.
const LOSS_OFF: f32 = 0.01;
/// Protection starts once the reported loss reaches this.
const LOSS_ON: f32 = 0.02;
/// The share of blocks a level leaves for NACK to repair, unless told otherwise.
pub const DEFAULT_RESIDUAL: f64 = 0.01;
/// The loss a new stream is protected against until its first report (see [`ProtectionLevel::assuming`]).
pub const INITIAL_LOSS: f64 = 0.05;
/// At most this many repair packets per media packet.
const MAX_RATIO: f64 = 1.0;
/// A round trip this much above the smallest seen means packets queue: no redundancy then.
const QUEUE_RTT_EXCESS: Duration = Duration::from_millis(40);
/// How long queueing or a loss report counts after it was seen.
const MEMORY: Duration = Duration::from_secs(5);
/// The smallest round trip is forgotten this slowly (a route can get longer for good).
const MIN_RTT_WINDOW: Duration = Duration::from_secs(30);
/// Protection starts after this many receiver reports in a row show loss and no queue: the report that first shows
/// a bottleneck's drops can still carry a round trip measured before its queue filled.
const REPORTS_TO_START: u32 = 2;
/// Blocks up to this many packets have their repair count remembered between reports.
const CACHED_BLOCKS: usize = 160;

/// How many repair packets a block of media gets, from the receiver's reports.
#[derive(Debug)]
pub struct ProtectionLevel {
    /// The share of blocks allowed to stay unrepaired.
    residual: f64,
    /// The loss rate protected against; 0 while off.
    loss: f64,
    /// Repair packets by block size at the current loss (0: not computed yet).
    cache: Vec<u8>,
    /// The losses reported within [`MEMORY`], oldest first.
    losses: VecDeque<(Instant, f32)>,
    /// The last time the round trip showed a queue.
    queued_at: Option<Instant>,
    min_rtt: Option<(Duration, Instant)>,
    /// Receiver reports in a row with loss above the start threshold and no queue.
    lossy_reports: u32,
    /// The loss in force is assumed, not reported yet.
    assumed: bool,
}

impl Default for ProtectionLevel {
    fn default() -> Self {
        ProtectionLevel::with_residual(DEFAULT_RESIDUAL)
    }
}

impl ProtectionLevel {
    /// A level that leaves at most `residual` of the blocks unrepaired (up to one repair packet per media packet).
    pub fn with_residual(residual: f64) -> Self {
        ProtectionLevel {
            residual: residual.clamp(1e-6, 0.5),
            loss: 0.0,
            cache: vec![0; CACHED_BLOCKS + 1],
            losses: VecDeque::new(),
            queued_at: None,
            min_rtt: None,
            lossy_reports: 0,
            assumed: false,
        }
    }

    /// Protects as if `loss` were lost until the first report says how much is: a stream's first frames are a
    /// keyframe, the largest frame there is and the costliest to lose (a keyframe request and another keyframe),
    /// and the first reports take a second or two.
    pub fn assuming(mut self, loss: f64) -> Self {
        self.set_loss(loss.clamp(0.0, 1.0));
        self.assumed = self.loss > 0.0;
        self
    }

    /// One receiver-report summary: the fraction of packets lost (before any repair at the receiver) and the round
    /// trip, either of which may be unknown.
    pub fn report(&mut self, now: Instant, loss: Option<f32>, rtt: Option<Duration>) {
        if let Some(rtt) = rtt {
            match self.min_rtt {
                Some((min, at)) if rtt > min && now.duration_since(at) < MIN_RTT_WINDOW => {}
                _ => self.min_rtt = Some((rtt, now)),
            }
            if self
                .min_rtt
                .is_some_and(|(min, _)| rtt > min + QUEUE_RTT_EXCESS)
            {
                self.queued_at = Some(now);
            }
        }
        let loss = loss.filter(|l| l.is_finite()).map(|l| l.clamp(0.0, 1.0));
        if let Some(loss) = loss {
            self.losses.push_back((now, loss));
        }
        while self
            .losses
            .front()
            .is_some_and(|&(at, _)| now.duration_since(at) >= MEMORY)
        {
            self.losses.pop_front();
        }

        let recent = |at: Option<Instant>| at.is_some_and(|at| now.duration_since(at) < MEMORY);
        let queued = recent(self.queued_at);
        if self.assumed && loss.is_none() && !queued {
            return;
        }
        self.assumed = false;
        if let Some(reported) = loss {
            self.lossy_reports = if !queued && reported >= LOSS_ON {
                self.lossy_reports + 1
            } else {
                0
            };
        }
        let loss = self.losses.iter().map(|&(_, l)| l).fold(0.0, f32::max);
        let keeps = self.loss > 0.0 && loss >= LOSS_OFF;
        let starts = self.lossy_reports >= REPORTS_TO_START && loss >= LOSS_ON;
        self.set_loss(if !queued && (keeps || starts) {
            f64::from(loss)
        } else {
            0.0
        });
    }

    /// A sign of a queue on the path other than the round trip (a delay-based bandwidth estimate below the stream):
    /// no redundancy for a while, as after an inflated round trip.
    pub fn report_queue(&mut self, now: Instant) {
        self.queued_at = Some(now);
        self.assumed = false;
        self.lossy_reports = 0;
        self.set_loss(0.0);
    }

    fn set_loss(&mut self, loss: f64) {
        if loss != self.loss {
            self.loss = loss;
            self.cache.fill(0);
        }
    }

    /// Repair packets for a block of `media` packets.
    pub fn repair_packets(&mut self, media: usize) -> usize {
        if self.loss <= 0.0 || media == 0 {
            return 0;
        }
        if let Some(&cached) = self.cache.get(media).filter(|&&k| k > 0) {
            return usize::from(cached);
        }
        let k = repair_count(media, self.loss, self.residual);
        if let Some(slot) = self.cache.get_mut(media) {
            *slot = k.min(usize::from(u8::MAX)) as u8;
        }
        k
    }

    pub fn active(&self) -> bool {
        self.loss > 0.0
    }

    /// The loss rate protected against (0 while off).
    pub fn loss(&self) -> f64 {
        self.loss
    }
}

/// The fewest repair packets (at least one, at most `MAX_RATIO` per media packet) for which a block of `media`
/// packets and its repair loses more than it can rebuild with probability at most `residual`, when each packet is
/// lost independently with probability `loss`.
fn repair_count(media: usize, loss: f64, residual: f64) -> usize {
    let most = ((media as f64 * MAX_RATIO).ceil() as usize).clamp(1, usize::from(u8::MAX));
    (1..=most)
        .find(|&k| unrepaired(media + k, k, loss) <= residual)
        .unwrap_or(most)
}

/// P(more than `k` of `total` packets lost), each lost with probability `loss`.
fn unrepaired(total: usize, k: usize, loss: f64) -> f64 {
    let loss = loss.clamp(0.0, 1.0);
    if loss >= 1.0 {
        return 1.0;
    }
    // P(X = 0), then P(X = x + 1) = P(X = x) * (total - x) / (x + 1) * loss / (1 - loss).
    let mut p = (1.0 - loss).powi(total as i32);
    let mut at_most_k = 0.0;
    for x in 0..=k.min(total) {
        at_most_k += p;
        p *= (total - x) as f64 / (x + 1) as f64 * loss / (1.0 - loss);
    }
    (1.0 - at_most_k).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lossy_level() -> ProtectionLevel {
        let mut level = ProtectionLevel::default();
        let now = Instant::now();
        for n in 0..REPORTS_TO_START {
            level.report(
                now + Duration::from_secs(u64::from(n)),
                Some(0.1),
                Some(Duration::from_millis(100)),
            );
        }
        level
    }

    #[test]
    fn no_loss_means_no_repair_packets() {
        let mut level = ProtectionLevel::default();
        level.report(Instant::now(), Some(0.0), Some(Duration::from_millis(50)));
        assert!(!level.active());
        assert_eq!(level.repair_packets(9), 0);
        level.report(Instant::now(), Some(0.015), Some(Duration::from_millis(50)));
        assert!(!level.active(), "1.5% is below the threshold to start");
    }

    #[test]
    fn repair_packets_follow_the_loss() {
        let mut level = lossy_level();
        assert_eq!(
            level.repair_packets(9),
            4,
            "10% loss: 4 for 9 leave under 1% of frames"
        );
        assert_eq!(level.repair_packets(45), 11);
        assert_eq!(level.repair_packets(1), 1, "at most one per media packet");
        let mut heavy = ProtectionLevel::default();
        heavy.report(Instant::now(), Some(0.3), None);
        assert_eq!(heavy.repair_packets(9), 0, "one lossy report is not enough");
        heavy.report(Instant::now(), Some(0.3), None);
        assert_eq!(heavy.repair_packets(9), 9, "capped at one per media packet");
        assert_eq!(heavy.repair_packets(100), 62);
        let mut strict = ProtectionLevel::with_residual(0.001);
        for _ in 0..2 {
            strict.report(Instant::now(), Some(0.1), None);
        }
        assert_eq!(strict.repair_packets(9), 6);
    }

    #[test]
    fn the_count_meets_the_residual_target() {
        for &loss in &[0.02, 0.05, 0.1, 0.2] {
            for media in [1, 3, 9, 20, 48, 128] {
                let k = repair_count(media, loss, DEFAULT_RESIDUAL);
                // One repair packet per media packet at most, which is not enough for one or two at 20%.
                assert!(unrepaired(media + k, k, loss) <= DEFAULT_RESIDUAL || k == media);
                assert!(
                    k == 1 || unrepaired(media + k - 1, k - 1, loss) > DEFAULT_RESIDUAL,
                    "{k} is the fewest for {media} at {loss}"
                );
            }
        }
        // P(more than 1 of 2 lost) at 10% is 1%.
        assert!((unrepaired(2, 1, 0.1) - 0.01).abs() < 1e-12);
        assert_eq!(unrepaired(5, 5, 0.5), 0.0);
    }

    #[test]
    fn an_assumed_loss_holds_until_the_first_report_of_loss() {
        let start = Instant::now();
        let mut level = ProtectionLevel::default().assuming(0.05);
        assert_eq!(level.repair_packets(9), 3);
        level.report(start, None, Some(Duration::from_millis(20)));
        assert!(level.active(), "a report without loss changes nothing");
        level.report(start, Some(0.08), None);
        assert_eq!(
            level.repair_packets(9),
            4,
            "the reported loss takes over at once"
        );

        let mut clean = ProtectionLevel::default().assuming(0.05);
        clean.report(start, Some(0.0), None);
        assert!(!clean.active(), "a clean path ends it");
        clean.report(start, Some(0.05), None);
        assert!(!clean.active(), "and it starts again like any other");

        let mut queued = ProtectionLevel::default().assuming(0.05);
        queued.report_queue(start);
        assert!(!queued.active());
    }

    #[test]
    fn loss_at_a_filling_bottleneck_never_starts_protection() {
        // The first report after a cap shows its drops with a round trip from before the queue.
        let start = Instant::now();
        let mut level = ProtectionLevel::default();
        level.report(start, Some(0.0), Some(Duration::from_millis(5)));
        level.report(
            start + Duration::from_secs(1),
            Some(0.4),
            Some(Duration::from_millis(8)),
        );
        assert!(!level.active());
        level.report(
            start + Duration::from_secs(2),
            Some(0.3),
            Some(Duration::from_millis(90)),
        );
        assert!(!level.active());
        level.report(
            start + Duration::from_secs(3),
            Some(0.3),
            Some(Duration::from_millis(95)),
        );
        assert!(!level.active());
    }

    #[test]
    fn a_queue_turns_protection_off_for_a_while() {
        let start = Instant::now();
        let mut level = ProtectionLevel::default();
        level.report(start, Some(0.1), Some(Duration::from_millis(100)));
        level.report(start, Some(0.1), Some(Duration::from_millis(100)));
        assert!(level.active());
        let later = start + Duration::from_secs(1);
        level.report(later, Some(0.1), Some(Duration::from_millis(200)));
        assert!(!level.active(), "loss with a queue is congestion");
        level.report(
            later + Duration::from_secs(2),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        assert!(!level.active(), "the queue is remembered");
        level.report(
            later + Duration::from_secs(6),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        level.report(
            later + Duration::from_secs(7),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        assert!(
            level.active(),
            "lossy again, without a queue, for two reports"
        );
    }

    #[test]
    fn protection_holds_between_reports_and_ends_after_quiet() {
        let start = Instant::now();
        let mut level = ProtectionLevel::default();
        level.report(start, Some(0.1), None);
        level.report(start, Some(0.1), None);
        level.report(start + Duration::from_secs(1), Some(0.0), None);
        assert!(
            level.active(),
            "a clean second inside the memory keeps the peak"
        );
        level.report(start + Duration::from_secs(6), Some(0.0), None);
        assert!(!level.active());
    }

    #[test]
    fn a_queue_reported_otherwise_stops_protection() {
        let mut level = lossy_level();
        assert!(level.active());
        let now = Instant::now() + Duration::from_secs(3);
        level.report_queue(now);
        assert!(!level.active());
        level.report(now + Duration::from_secs(1), Some(0.1), None);
        level.report(now + Duration::from_secs(2), Some(0.1), None);
        assert!(!level.active(), "the queue is remembered");
    }
}
