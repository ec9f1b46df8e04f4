//! Rate limits: a sliding window of recent events, and a limiter for repeated log warnings.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `max` events within any `window`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl RateLimit {
    pub fn per_second(max: u32) -> Self {
        RateLimit {
            max: max as usize,
            window: Duration::from_secs(1),
            recent: VecDeque::with_capacity(max as usize),
        }
    }

    /// Counts an event at `now` if it is within the limit; refused events are not counted.
    pub fn try_take(&mut self, now: Instant) -> bool {
        while let Some(&first) = self.recent.front() {
            if now.saturating_duration_since(first) >= self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// Lets one warning through per period and counts the ones it holds back, so a client sending garbage in a loop
/// cannot flood the log.
#[derive(Debug)]
pub struct WarnLimiter {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    pub fn new(period: Duration) -> Self {
        WarnLimiter {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this warning should be logged, `n` being how many were held back since the last one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let t0 = Instant::now();
        let mut limit = RateLimit::per_second(2);
        assert!(limit.try_take(t0));
        assert!(limit.try_take(t0 + Duration::from_millis(10)));
        assert!(!limit.try_take(t0 + Duration::from_millis(500)));
        assert!(limit.try_take(t0 + Duration::from_millis(1000)));
        assert!(!limit.try_take(t0 + Duration::from_millis(1005)));
        assert!(limit.try_take(t0 + Duration::from_millis(1010)));
    }

    #[test]
    fn warnings_are_held_back_and_counted() {
        let t0 = Instant::now();
        let mut warn = WarnLimiter::new(Duration::from_secs(5));
        assert_eq!(warn.allow(t0), Some(0));
        assert_eq!(warn.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(warn.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(warn.allow(t0 + Duration::from_secs(6)), Some(2));
    }
}
