//! Whether a disconnected transport is really gone.
//!
//! webrtc's ICE agent counts only answers to its own keepalive checks as signs of life; media and RTCP do not
//! refresh it. On a path that loses 30% each way a check and its answer both get through only half the time, so
//! runs of unanswered checks long enough to mark the connection disconnected happen within minutes, while media
//! and the relay's feedback keep flowing. As browsers do, a disconnected transport counts as lost only once
//! nothing at all (no keepalive answer, no authenticated RTP or RTCP) has arrived for a grace period.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtc::interceptor::TaggedPacket;
use tokio::time::Instant;

use super::read_tap::ReadFilter;

/// Next to the wire: every decrypted packet passes here before any interceptor consumes it.
pub(crate) const SLOT: usize = 100;

/// When the remote end was last heard from. Cheap to clone; clones share the clock.
#[derive(Clone)]
pub(crate) struct LastHeard {
    base: Instant,
    /// Milliseconds after `base` of the latest packet.
    at_ms: Arc<AtomicU64>,
}

impl Default for LastHeard {
    fn default() -> LastHeard {
        LastHeard::new()
    }
}

impl LastHeard {
    /// Counts as heard now.
    pub fn new() -> LastHeard {
        LastHeard {
            base: Instant::now(),
            at_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn record(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.base).as_millis() as u64;
        self.at_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long nothing has arrived.
    pub fn silent_for(&self, now: Instant) -> Duration {
        let at = self.base + Duration::from_millis(self.at_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(at)
    }
}

/// Records every inbound packet in a [`LastHeard`] and passes it on.
pub(crate) struct HeardTap(pub LastHeard);

impl ReadFilter for HeardTap {
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
        // When the stack read it, as the other readers of arrivals take it: no clock read per packet.
        self.0.record(Instant::from_std(msg.now));
        Some(msg)
    }
}

/// Waits out a disconnection: true when the connection comes back (`recovered` yields true), false when it is
/// lost: `grace` has passed since the disconnection and nothing has arrived for the last `grace`.
pub(crate) async fn outlasts_disconnection(
    recovered: impl Future<Output = bool>,
    heard: &LastHeard,
    grace: Duration,
) -> bool {
    let since = Instant::now();
    let mut recovered = pin!(recovered);
    loop {
        let now = Instant::now();
        let wait = (since + grace)
            .saturating_duration_since(now)
            .max(grace.saturating_sub(heard.silent_for(now)));
        if wait.is_zero() {
            return false;
        }
        if let Ok(back) = tokio::time::timeout(wait, &mut recovered).await {
            return back;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    /// Records a packet every `every` until `until` after the start.
    fn arrivals(heard: &LastHeard, every: Duration, until: Duration) {
        let heard = heard.clone();
        tokio::spawn(async move {
            let end = Instant::now() + until;
            while Instant::now() < end {
                tokio::time::sleep(every).await;
                heard.record(Instant::now());
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_disconnected_transport_is_lost_after_the_grace() {
        let heard = LastHeard::new();
        let start = Instant::now();
        assert!(!outlasts_disconnection(std::future::pending(), &heard, GRACE).await);
        assert_eq!(start.elapsed(), GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_whose_keepalives_are_answered_again_recovers() {
        let heard = LastHeard::new();
        let back = async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            true
        };
        assert!(outlasts_disconnection(back, &heard, GRACE).await);
    }

    #[tokio::test(start_paused = true)]
    async fn media_still_arriving_keeps_a_disconnected_transport_until_it_stops() {
        let heard = LastHeard::new();
        let start = Instant::now();
        arrivals(&heard, Duration::from_millis(40), Duration::from_secs(10));
        assert!(!outlasts_disconnection(std::future::pending(), &heard, GRACE).await);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(12) && elapsed <= Duration::from_millis(12_100),
            "lost {elapsed:?} after the disconnection: the grace after the last packet"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn media_arriving_until_the_keepalives_come_back_is_a_recovery() {
        let heard = LastHeard::new();
        arrivals(&heard, Duration::from_millis(40), Duration::from_secs(30));
        let back = async {
            tokio::time::sleep(Duration::from_secs(8)).await;
            true
        };
        assert!(outlasts_disconnection(back, &heard, GRACE).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_state_watch_is_no_recovery() {
        let heard = LastHeard::new();
        assert!(!outlasts_disconnection(async { false }, &heard, GRACE).await);
    }

    #[test]
    fn the_clock_only_moves_forward() {
        let heard = LastHeard::new();
        let later = heard.base + Duration::from_secs(5);
        heard.record(later);
        heard.record(heard.base + Duration::from_secs(1));
        assert_eq!(heard.silent_for(later), Duration::ZERO);
    }
}
