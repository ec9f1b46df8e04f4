//! Keyframe requests to a publisher, coalesced and throttled per stream.
//!
//! Players join, reconnect and lose packets independently; each wants a keyframe, but an encoder asked many times in a
//! row only wastes bandwidth on intra frames. Wishes are merged into one pending request that goes out at most once
//! per interval; a wish during the interval is served when it ends. A player that has just connected cannot
//! have seen the last keyframe, and waiting out the whole interval would be its first frame's delay: its wish only
//! waits for [`JOIN_INTERVAL`], which still merges a crowd joining at once into one request.

use std::time::{Duration, Instant};

/// The shortest gap between two requests when the second one is for a player that just connected.
pub(crate) const JOIN_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct KeyframeThrottle {
    interval: Duration,
    wanted: bool,
    /// The pending wish is (also) a new player's.
    for_join: bool,
    last_sent: Option<Instant>,
    /// A request was sent and its keyframe has not been seen yet.
    in_flight_since: Option<Instant>,
}

impl KeyframeThrottle {
    pub fn new(interval: Duration) -> Self {
        KeyframeThrottle {
            interval,
            wanted: false,
            for_join: false,
            last_sent: None,
            in_flight_since: None,
        }
    }

    /// Someone needs a keyframe.
    pub fn want(&mut self) {
        self.wanted = true;
    }

    /// A player that just connected needs a keyframe.
    pub fn want_for_join(&mut self) {
        self.wanted = true;
        self.for_join = true;
    }

    fn gap(&self) -> Duration {
        if self.for_join {
            self.interval.min(JOIN_INTERVAL)
        } else {
            self.interval
        }
    }

    /// Whether a request should be sent now. The caller reports success with [`KeyframeThrottle::sent`].
    pub fn is_due(&self, now: Instant) -> bool {
        self.wanted && self.last_sent.is_none_or(|t| now >= t + self.gap())
    }

    pub fn sent(&mut self, now: Instant) {
        self.wanted = false;
        self.for_join = false;
        self.last_sent = Some(now);
        self.in_flight_since = Some(now);
    }

    /// When a pending request may go out.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.wanted {
            return None;
        }
        Some(self.last_sent.map_or_else(Instant::now, |t| t + self.gap()))
    }

    /// The publisher sent the start of a keyframe.
    pub fn keyframe_seen(&mut self) {
        self.in_flight_since = None;
    }

    /// A request went out within `window` and its keyframe has not arrived yet: a new player can wait for it.
    pub fn in_flight(&self, now: Instant, window: Duration) -> bool {
        self.in_flight_since.is_some_and(|t| now < t + window)
    }

    pub fn last_sent(&self) -> Option<Instant> {
        self.last_sent
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::KeyframeThrottle;

    #[test]
    fn coalesces_wishes_and_keeps_the_interval() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut k = KeyframeThrottle::new(ms(500));
        assert!(!k.is_due(t0), "nobody asked");

        k.want();
        assert!(k.is_due(t0));
        k.sent(t0);
        assert!(k.in_flight(t0 + ms(10), ms(1000)));

        k.want();
        k.want();
        assert!(!k.is_due(t0 + ms(499)), "throttled");
        assert_eq!(k.deadline(), Some(t0 + ms(500)));
        assert!(k.is_due(t0 + ms(500)));
        k.sent(t0 + ms(500));
        assert!(!k.is_due(t0 + ms(2000)), "one request served both wishes");

        k.keyframe_seen();
        assert!(!k.in_flight(t0 + ms(600), ms(1000)));
    }

    #[test]
    fn a_joining_player_waits_only_the_join_interval() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut k = KeyframeThrottle::new(ms(500));
        k.want();
        k.sent(t0);
        k.want_for_join();
        assert!(
            !k.is_due(t0 + ms(50)),
            "a crowd joining at once shares one request"
        );
        assert_eq!(k.deadline(), Some(t0 + super::JOIN_INTERVAL));
        assert!(k.is_due(t0 + super::JOIN_INTERVAL));
        k.sent(t0 + super::JOIN_INTERVAL);
        // Loss-driven wishes are back on the long interval.
        k.want();
        assert!(!k.is_due(t0 + super::JOIN_INTERVAL + ms(200)));
        assert!(k.is_due(t0 + super::JOIN_INTERVAL + ms(500)));
    }
}
