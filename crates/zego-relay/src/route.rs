//! One published stream: who publishes it, who plays it, and its keyframe requests.

use std::time::{Duration, Instant};

use crate::keyframe::KeyframeThrottle;
use crate::SessionId;

/// A player's downlink estimate counts this long after it came (players repeat theirs every 500 ms while their
/// downlink limits the stream).
const ESTIMATE_FRESH: Duration = Duration::from_millis(1500);
/// The same or a higher estimate goes to the publisher at most this often; a lower one goes at once.
const ESTIMATE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(crate) struct Route {
    pub publisher: Option<SessionId>,
    pub players: Vec<SessionId>,
    pub keyframes: KeyframeThrottle,
    /// The players' estimate last sent to the publisher (REMB, bits per second) and when.
    pub estimate_sent: Option<(u64, Instant)>,
    /// The newest video packet from the publisher: (SSRC, extended sequence number, RTP timestamp).
    last_video: Option<(u32, u64, u32)>,
}

impl Route {
    pub fn new(keyframe_interval: Duration) -> Self {
        Route {
            publisher: None,
            players: Vec::new(),
            keyframes: KeyframeThrottle::new(keyframe_interval),
            estimate_sent: None,
            last_video: None,
        }
    }

    /// Whether a publisher's video packet is the first of its access unit (its RTP timestamp differs from the
    /// newest packet before it). A player may start only there: starting at an IDR slice whose SPS and PPS went by
    /// in an earlier packet would leave its decoder without parameter sets.
    pub fn starts_access_unit(&mut self, ssrc: u32, seq: u64, timestamp: u32) -> bool {
        match self.last_video {
            Some((s, last_seq, _)) if s == ssrc && seq <= last_seq => false,
            Some((s, _, last_ts)) if s == ssrc && last_ts == timestamp => {
                self.last_video = Some((ssrc, seq, timestamp));
                false
            }
            _ => {
                self.last_video = Some((ssrc, seq, timestamp));
                true
            }
        }
    }

    /// What to tell the publisher about its players' downlinks now, given each player's latest estimate and when
    /// it came: the lowest fresh one, at once when it is lower than the last sent, else at most every
    /// [`ESTIMATE_INTERVAL`]. Nothing while no player's estimate is fresh: the publisher's copy then runs out.
    pub fn estimate_to_send(
        &self,
        now: Instant,
        estimates: impl IntoIterator<Item = (u64, Instant)>,
    ) -> Option<u64> {
        let lowest = estimates
            .into_iter()
            .filter(|&(_, at)| now.duration_since(at) <= ESTIMATE_FRESH)
            .map(|(bps, _)| bps)
            .min()?;
        let held = self
            .estimate_sent
            .is_some_and(|(sent, at)| lowest >= sent && now.duration_since(at) < ESTIMATE_INTERVAL);
        (!held).then_some(lowest)
    }

    pub fn remove_player(&mut self, id: SessionId) {
        self.players.retain(|&p| p != id);
    }

    /// A route without publisher and players is forgotten.
    pub fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.players.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Route;

    #[test]
    fn the_publisher_hears_the_lowest_fresh_estimate_of_its_players() {
        let mut route = Route::new(Duration::from_millis(500));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(route.estimate_to_send(t0, []), None, "no player limits it");
        assert_eq!(
            route.estimate_to_send(ms(10), [(900_000, ms(0)), (700_000, ms(10))]),
            Some(700_000),
            "the slowest player's"
        );
        route.estimate_sent = Some((700_000, ms(10)));
        assert_eq!(
            route.estimate_to_send(ms(100), [(900_000, ms(0)), (700_000, ms(100))]),
            None,
            "the same again waits its interval"
        );
        assert_eq!(
            route.estimate_to_send(ms(110), [(900_000, ms(0)), (600_000, ms(110))]),
            Some(600_000),
            "a lower one goes at once"
        );
        route.estimate_sent = Some((600_000, ms(110)));
        assert_eq!(
            route.estimate_to_send(ms(400), [(900_000, ms(0)), (650_000, ms(400))]),
            Some(650_000),
            "a higher one after the interval"
        );
        assert_eq!(
            route.estimate_to_send(ms(2_000), [(900_000, ms(0)), (650_000, ms(400))]),
            None,
            "estimates that stopped coming count no more"
        );
    }

    #[test]
    fn an_access_unit_starts_where_the_timestamp_changes() {
        let mut route = Route::new(Duration::from_millis(500));
        assert!(
            route.starts_access_unit(7, 100, 3000),
            "the first packet seen"
        );
        assert!(!route.starts_access_unit(7, 101, 3000), "same picture");
        assert!(route.starts_access_unit(7, 102, 6000), "next picture");
        assert!(
            !route.starts_access_unit(7, 99, 0),
            "a late retransmission starts nothing"
        );
        assert!(
            !route.starts_access_unit(7, 103, 6000),
            "and does not disturb the newest picture"
        );
        assert!(route.starts_access_unit(8, 5, 6000), "a new source");
    }
}
