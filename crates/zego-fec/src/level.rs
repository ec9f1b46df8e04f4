//! How much protection a path's loss calls for.
//!
//! A NACK repairs a loss in one round trip; a repair packet repairs it as soon as the rest of its group has
//! arrived. Repair packets cost bandwidth on every frame, so they are sent only while the receiver's reports show
//! loss, and never while the path shows a queue: loss with a queue behind it is congestion, and redundancy would
//! feed it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Below this reported loss no repair packets are sent.
const LOSS_OFF: f32 = 0.01;
/// Protection starts once the reported loss reaches this.
const LOSS_ON: f32 = 0.02;
/// Repair packets per media packet, as a multiple of the loss: two groups per expected loss.
pub const LOSS_TO_RATIO: f32 = 2.0;
/// At most this many repair packets per media packet.
const MAX_RATIO: f32 = 0.5;
/// A round trip this much above the smallest seen means packets queue: no redundancy then.
const QUEUE_RTT_EXCESS: Duration = Duration::from_millis(40);
/// How long queueing or a loss report counts after it was seen.
const MEMORY: Duration = Duration::from_secs(5);
/// The smallest round trip is forgotten this slowly (a route can get longer for good).
const MIN_RTT_WINDOW: Duration = Duration::from_secs(30);
/// Protection starts after this many receiver reports in a row show loss and no queue: the report that first shows
/// a bottleneck's drops can still carry a round trip measured before its queue filled.
const REPORTS_TO_START: u32 = 2;

/// How many repair packets a block of media gets, from the receiver's reports.
#[derive(Debug)]
pub struct ProtectionLevel {
    /// Repair packets per media packet, as a multiple of the loss.
    strength: f32,
    /// Repair packets per media packet in force.
    ratio: f32,
    /// The losses reported within [`MEMORY`], oldest first.
    losses: VecDeque<(Instant, f32)>,
    /// The last time the round trip showed a queue.
    queued_at: Option<Instant>,
    min_rtt: Option<(Duration, Instant)>,
    /// Receiver reports in a row with loss above the start threshold and no queue.
    lossy_reports: u32,
}

impl Default for ProtectionLevel {
    fn default() -> Self {
        ProtectionLevel::with_strength(LOSS_TO_RATIO)
    }
}

impl ProtectionLevel {
    /// A level that sends `strength` repair packets per media packet and unit of loss (up to the cap of one repair
    /// packet per two media packets).
    pub fn with_strength(strength: f32) -> Self {
        ProtectionLevel {
            strength,
            ratio: 0.0,
            losses: VecDeque::new(),
            queued_at: None,
            min_rtt: None,
            lossy_reports: 0,
        }
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
        if let Some(reported) = loss {
            self.lossy_reports = if !queued && reported >= LOSS_ON {
                self.lossy_reports + 1
            } else {
                0
            };
        }
        let loss = self.losses.iter().map(|&(_, l)| l).fold(0.0, f32::max);
        let keeps = self.ratio > 0.0 && loss >= LOSS_OFF;
        let starts = self.lossy_reports >= REPORTS_TO_START && loss >= LOSS_ON;
        self.ratio = if !queued && (keeps || starts) {
            (loss * self.strength).min(MAX_RATIO)
        } else {
            0.0
        };
    }

    /// A sign of a queue on the path other than the round trip (a delay-based bandwidth estimate below the stream):
    /// no redundancy for a while, as after an inflated round trip.
    pub fn report_queue(&mut self, now: Instant) {
        self.queued_at = Some(now);
        self.lossy_reports = 0;
        self.ratio = 0.0;
    }

    /// Repair packets for a block of `media` packets.
    pub fn repair_packets(&self, media: usize) -> usize {
        if self.ratio <= 0.0 || media == 0 {
            return 0;
        }
        ((media as f32 * self.ratio).ceil() as usize).clamp(1, media)
    }

    pub fn active(&self) -> bool {
        self.ratio > 0.0
    }
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
        let level = lossy_level();
        assert_eq!(level.repair_packets(9), 2, "10% loss: 20% repair");
        let mut heavy = ProtectionLevel::default();
        heavy.report(Instant::now(), Some(0.45), None);
        assert_eq!(heavy.repair_packets(9), 0, "one lossy report is not enough");
        heavy.report(Instant::now(), Some(0.45), None);
        assert_eq!(heavy.repair_packets(9), 5, "capped at half");
        assert_eq!(heavy.repair_packets(1), 1);
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
