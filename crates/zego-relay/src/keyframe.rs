//! Keyframe requests to a publisher, coalesced and throttled per stream.
//!
//! Players join, reconnect and lose packets independently; each wants a keyframe, but an encoder asked many times in a
//! row only wastes bandwidth on intra frames. Wishes are merged into one pending request that goes out at most once
//! per interval; a wish during the interval is served when it ends. A player that has just connected cannot
//! have seen the last keyframe, and waiting out the whole interval would be its first frame's delay: its wish only
//! waits for [`JOIN_INTERVAL`], which still merges a crowd joining at once into one request.
//!
//! A request can be lost on the way to the publisher (a PLI is one packet, on a path that may lose one in ten), so a
//! player still waiting for its first keyframe asks again once the keyframe is overdue: twice the time the
//! publisher took to answer lately, plus a margin ([`KeyframeThrottle::retry_after`]).

use std::time::{Duration, Instant};

/// The shortest gap between two requests when the second one is for a player that just connected.
pub(crate) const JOIN_INTERVAL: Duration = Duration::from_millis(100);
/// Added to twice the usual answer time before a request counts as lost.
const RETRY_MARGIN: Duration = Duration::from_millis(100);
/// A request is never taken for lost sooner than this.
const MIN_RETRY: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(crate) struct KeyframeThrottle {
    interval: Duration,
    wanted: bool,
    /// The pending wish is (also) a new player's.
    for_join: bool,
    last_sent: Option<Instant>,
    /// A request was sent and its keyframe has not been seen yet.
    in_flight_since: Option<Instant>,
    /// How long the publisher took to answer a request, smoothed.
    answer_time: Option<Duration>,
}

impl KeyframeThrottle {
    pub fn new(interval: Duration) -> Self {
        KeyframeThrottle {
            interval,
            wanted: false,
            for_join: false,
            last_sent: None,
            in_flight_since: None,
            answer_time: None,
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
    pub fn keyframe_seen(&mut self, now: Instant) {
        if let Some(sent) = self.in_flight_since.take() {
            let took = now.saturating_duration_since(sent);
            self.answer_time = Some(match self.answer_time {
                Some(avg) => (avg * 3 + took) / 4,
                None => took,
            });
        }
    }

    /// How long after a request its keyframe is overdue: twice the usual answer time and a margin, between
    /// [`MIN_RETRY`] and `longest` (also the wait before any answer was seen).
    pub fn retry_after(&self, longest: Duration) -> Duration {
        match self.answer_time {
            Some(t) => (t * 2 + RETRY_MARGIN).clamp(MIN_RETRY, longest.max(MIN_RETRY)),
            None => longest,
        }
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

        k.keyframe_seen(t0 + ms(560));
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

    #[test]
    fn a_request_is_retried_once_its_keyframe_is_overdue() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut k = KeyframeThrottle::new(ms(500));
        assert_eq!(k.retry_after(ms(1500)), ms(1500), "nothing known yet");
        k.want();
        k.sent(t0);
        k.keyframe_seen(t0 + ms(150));
        assert_eq!(k.retry_after(ms(1500)), ms(400), "2 x 150 ms + 100 ms");
        k.want();
        k.sent(t0 + ms(500));
        k.keyframe_seen(t0 + ms(530));
        assert_eq!(k.retry_after(ms(1500)), ms(340), "smoothed: 120 ms");
        k.keyframe_seen(t0 + ms(2000));
        assert_eq!(
            k.retry_after(ms(1500)),
            ms(340),
            "a keyframe nobody asked for says nothing"
        );
        for i in 0..20 {
            k.want();
            k.sent(t0 + ms(3000 + i * 500));
            k.keyframe_seen(t0 + ms(3000 + i * 500 + 5));
        }
        assert_eq!(k.retry_after(ms(1500)), super::MIN_RETRY);
    }
}
