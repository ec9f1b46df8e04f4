//! GCC held under a standing queue: the bandwidth estimate of a publisher's uplink.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};

use super::state::{CongestionState, MIN_ESTIMATE_BPS};

/// GCC, held under a standing queue, that also publishes its estimate and the feedback's loss counts into a
/// [`CongestionState`].
pub(crate) struct Estimator {
    gcc: Gcc,
    ceiling: f64,
    queue: StandingQueue,
    state: Arc<CongestionState>,
}

impl Estimator {
    pub(super) fn new(
        state: Arc<CongestionState>,
        initial: f64,
        floor: f64,
        ceiling: f64,
    ) -> Estimator {
        Estimator {
            gcc: Gcc::new(initial, floor, ceiling),
            ceiling,
            queue: StandingQueue::default(),
            state,
        }
    }

    /// GCC under the standing-queue cap, with its loss-based half counted only while packets also queue. Loss with
    /// no queue is random loss, which retransmissions repair; GCC's loss half takes it for congestion (above 10% it
    /// only ever decreases) and would starve the stream. Loss with a queue is a bottleneck dropping what overflows.
    fn target(&self) -> f64 {
        let gcc = if self.queue.delay_ms >= LOSS_IS_CONGESTION_QUEUE_MS {
            self.gcc.target_bitrate()
        } else {
            self.gcc
                .delay_based_bitrate()
                .clamp(MIN_ESTIMATE_BPS, self.ceiling)
        };
        self.queue.cap.map_or(gcc, |cap| gcc.min(cap))
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.queue
            .on_reports(now, reports, self.gcc.delay_based_bitrate());
        let target = self.target();
        self.state.set_target(target, target);
    }

    fn target_bitrate(&self) -> f64 {
        self.target()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Queueing delay from which loss is taken for a bottleneck's drops rather than random loss.
pub(super) const LOSS_IS_CONGESTION_QUEUE_MS: f64 = 15.0;
/// Queueing delay above this means the bottleneck's queue is standing full, not just absorbing a burst.
pub(super) const STANDING_QUEUE_MS: f64 = 40.0;
/// Below this the queue has drained and the rate may climb back.
pub(super) const DRAINED_QUEUE_MS: f64 = 20.0;
/// How long the lowest one-way delay is remembered as the path's own (queue-free) delay.
pub(super) const BASE_DELAY_WINDOW: Duration = Duration::from_secs(30);
/// Between two back-offs: about a round trip plus a feedback interval, so each is seen before the next.
pub(super) const BACKOFF_INTERVAL: Duration = Duration::from_millis(300);

/// Catches what GCC's delay half cannot: a drop-tail bottleneck whose queue stays full. The delay *gradient* is
/// then flat and the loss (a few per cent of tail drops) sits in GCC's hold band, so its estimate rests just above
/// the capacity, with the queue's full delay on every packet. Here the one-way delay is compared with the lowest
/// seen recently; while it stays well above, the estimate is capped below the rate that actually arrives.
#[derive(Debug, Default)]
pub(super) struct StandingQueue {
    /// Departure instants are measured from here.
    epoch: Option<Instant>,
    /// Lowest one-way delay (arrival on the remote clock minus departure), in ms, per second of departures.
    minimums: VecDeque<(Instant, f64)>,
    /// Smoothed queueing delay, in ms.
    delay_ms: f64,
    /// Arrivals (remote clock) and sizes of the last half second, for the delivered rate.
    arrivals: VecDeque<(Duration, usize)>,
    pub(super) cap: Option<f64>,
    last_change: Option<Instant>,
}

impl StandingQueue {
    pub(super) fn on_reports(&mut self, now: Instant, reports: &[PacketReport], gcc: f64) {
        let mut sum = 0.0;
        let mut count = 0usize;
        for report in reports.iter().filter(|r| r.arrived) {
            let Some(arrival) = report.arrival else {
                continue;
            };
            let epoch = *self.epoch.get_or_insert(report.departure);
            let departed_ms = report
                .departure
                .saturating_duration_since(epoch)
                .as_secs_f64()
                * 1000.0;
            let delay = arrival.as_secs_f64() * 1000.0 - departed_ms;
            match self.minimums.back_mut() {
                Some((start, min))
                    if report.departure.saturating_duration_since(*start)
                        < Duration::from_secs(1) =>
                {
                    *min = min.min(delay);
                }
                _ => self.minimums.push_back((report.departure, delay)),
            }
            sum += delay;
            count += 1;
            self.arrivals.push_back((arrival, report.size));
        }
        while self
            .minimums
            .front()
            .is_some_and(|(start, _)| now.saturating_duration_since(*start) > BASE_DELAY_WINDOW)
        {
            self.minimums.pop_front();
        }
        if let Some(&(newest, _)) = self.arrivals.back() {
            while self
                .arrivals
                .front()
                .is_some_and(|(at, _)| newest.saturating_sub(*at) > Duration::from_millis(500))
            {
                self.arrivals.pop_front();
            }
        }
        if count == 0 {
            return;
        }
        let base = self
            .minimums
            .iter()
            .map(|(_, m)| *m)
            .fold(f64::INFINITY, f64::min);
        let sample = (sum / count as f64 - base).max(0.0);
        self.delay_ms = 0.7 * self.delay_ms + 0.3 * sample;

        let settled = self
            .last_change
            .is_none_or(|at| now.saturating_duration_since(at) >= BACKOFF_INTERVAL);
        if self.delay_ms > STANDING_QUEUE_MS && settled {
            if let Some(delivered) = self.delivered_bps() {
                let cap = delivered * 0.85;
                self.cap = Some(cap.max(MIN_ESTIMATE_BPS));
                self.last_change = Some(now);
                tracing::debug!(
                    queue_ms = self.delay_ms.round(),
                    cap_kbps = (cap / 1000.0).round(),
                    "standing queue: estimate capped"
                );
            }
        } else if self.delay_ms < DRAINED_QUEUE_MS {
            if let (Some(cap), Some(at)) = (self.cap, self.last_change) {
                // Climbs back like GCC does, 8% a second, and lets go once GCC is the lower of the two.
                let elapsed = now.saturating_duration_since(at).as_secs_f64().min(1.0);
                let raised = cap * 1.08f64.powf(elapsed);
                self.cap = (raised < gcc).then_some(raised);
                self.last_change = Some(now);
            }
        }
    }

    /// What arrived over the last half second, in bits per second.
    fn delivered_bps(&self) -> Option<f64> {
        let first = self.arrivals.front()?.0;
        let last = self.arrivals.back()?.0;
        let span = last.saturating_sub(first).as_secs_f64();
        (span >= 0.1).then(|| {
            let bytes: usize = self.arrivals.iter().map(|(_, size)| size).sum();
            bytes as f64 * 8.0 / span
        })
    }
}
