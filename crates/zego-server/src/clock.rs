//! The one place time is read. The room core takes a [`Now`] as input, so tests drive it with a fake clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A moment, on both clocks: monotonic for timers, wall clock for what goes on the wire and token expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    /// Unix milliseconds.
    pub unix_ms: u64,
}

impl Now {
    pub fn system() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Now {
            mono: Instant::now(),
            unix_ms,
        }
    }

    pub fn unix_secs(&self) -> i64 {
        (self.unix_ms / 1000) as i64
    }

    /// The same moment seen `d` later on both clocks.
    #[cfg(test)]
    pub fn after(self, d: Duration) -> Self {
        Now {
            mono: self.mono + d,
            unix_ms: self.unix_ms + d.as_millis() as u64,
        }
    }

    /// The monotonic instant at which the wall clock reads `unix_secs` (now, if that is past).
    pub fn instant_at_unix(&self, unix_secs: i64) -> Instant {
        let target_ms = u64::try_from(unix_secs).unwrap_or(0).saturating_mul(1000);
        self.mono + Duration::from_millis(target_ms.saturating_sub(self.unix_ms))
    }
}
