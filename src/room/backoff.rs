//! When to retry a broken connection: quickly at first, because most breaks are brief (a Wi-Fi handover, a
//! restarted server), then once a second, so a server that comes back is found within a second (one small
//! handshake a second per client is cheap, and the reconnect window bounds the whole).

use std::time::Duration;

/// Delays before each retry; the last one repeats.
const STEPS_MS: [u64; 5] = [100, 200, 400, 800, 1_000];

#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: usize,
}

impl Backoff {
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = STEPS_MS[self.attempt.min(STEPS_MS.len() - 1)];
        self.attempt += 1;
        Duration::from_millis(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_first_then_every_second() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
    }
}
