//! One published stream: who publishes it, who plays it, and its keyframe requests.

use std::time::Duration;

use crate::keyframe::KeyframeThrottle;
use crate::SessionId;

#[derive(Debug)]
pub(crate) struct Route {
    pub publisher: Option<SessionId>,
    pub players: Vec<SessionId>,
    pub keyframes: KeyframeThrottle,
    /// The newest video packet from the publisher: (SSRC, extended sequence number, RTP timestamp).
    last_video: Option<(u32, u64, u32)>,
}

impl Route {
    pub fn new(keyframe_interval: Duration) -> Self {
        Route {
            publisher: None,
            players: Vec::new(),
            keyframes: KeyframeThrottle::new(keyframe_interval),
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
    use std::time::Duration;

    use super::Route;

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
