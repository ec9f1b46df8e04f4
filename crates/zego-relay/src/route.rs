//! One published stream: who publishes it, who plays it, and its keyframe requests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::fec::MediaPacket;
use crate::keyframe::KeyframeThrottle;
use crate::keyframe_cache::KeyframeCache;
use crate::shard::ShardId;
use crate::SessionId;

/// A player's downlink estimate counts this long after it came (players repeat theirs every 500 ms while their
/// downlink limits the stream).
const ESTIMATE_FRESH: Duration = Duration::from_millis(1500);
/// The same or a higher estimate goes to the publisher at most this often; a lower one goes at once.
const ESTIMATE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(crate) struct Route {
    /// `None` on the stream's origin shard; on a mirror, the origin it subscribed to (see `shard`).
    pub origin: Option<ShardId>,
    /// The publisher's session: on the origin, one of this shard's; on a mirror, the origin's, as it last said.
    pub publisher: Option<SessionId>,
    /// This shard's players.
    pub players: Vec<SessionId>,
    /// Origin: the mirrors, as (shard, its route there).
    pub subscribers: Vec<(ShardId, u64)>,
    /// Origin: the latest downlink estimates of the mirrors' players (bits per second, and when each came).
    pub remote_estimates: HashMap<SessionId, (u64, Instant)>,
    /// Origin: keyframe requests to the publisher. A mirror passes its players' wishes to the origin.
    pub keyframes: KeyframeThrottle,
    /// The newest keyframe, for players that join.
    pub cached: KeyframeCache,
    /// The players' estimate last sent to the publisher (REMB, bits per second) and when.
    pub estimate_sent: Option<(u64, Instant)>,
    /// The newest video packet from the publisher: (SSRC, extended sequence number, RTP timestamp).
    last_video: Option<(u32, u64, u32)>,
    /// Every packet of the newest access unit so far, in order and without a gap, held only NAL units a decoder
    /// may skip (delimiters, SEI): a keyframe may still open at its next packet.
    in_prelude: bool,
}

impl Route {
    pub fn new(keyframe_interval: Duration) -> Self {
        Route {
            origin: None,
            publisher: None,
            players: Vec::new(),
            subscribers: Vec::new(),
            remote_estimates: HashMap::new(),
            keyframes: KeyframeThrottle::new(keyframe_interval),
            cached: KeyframeCache::default(),
            estimate_sent: None,
            last_video: None,
            in_prelude: false,
        }
    }

    /// The current publisher's cached keyframe, with the publisher.
    pub fn cached_keyframe(&self) -> Option<(SessionId, &[MediaPacket])> {
        self.cached
            .keyframe()
            .filter(|(source, _)| self.publisher == Some(*source))
    }

    /// Whether a publisher's video packet is where a player may start: the first packet of an access unit that
    /// begins with an SPS or an IDR slice, or such a packet after ones holding only delimiters and SEI in the same
    /// access unit (a new access unit is a new RTP timestamp). Starting at an IDR slice whose SPS and PPS went by in
    /// an earlier packet would leave the player's decoder without parameter sets, so a gap in the sequence ends
    /// the prelude, and a late packet (a retransmission) opens nothing.
    pub fn opens_keyframe(&mut self, ssrc: u32, seq: u64, timestamp: u32, payload: &[u8]) -> bool {
        match self.last_video {
            Some((s, last_seq, _)) if s == ssrc && seq <= last_seq => return false,
            Some((s, last_seq, last_ts)) if s == ssrc && last_ts == timestamp => {
                self.in_prelude &= seq == last_seq + 1;
            }
            _ => self.in_prelude = true,
        }
        self.last_video = Some((ssrc, seq, timestamp));
        if !self.in_prelude {
            return false;
        }
        if zego_rtp::h264::begins_idr_or_sps(payload) {
            self.in_prelude = false;
            return true;
        }
        self.in_prelude = zego_rtp::h264::begins_only_prelude(payload);
        false
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

    /// Origin: keeps a mirror's player's estimate, forgetting those too old to count.
    pub fn remote_estimate(&mut self, player: SessionId, bps: u64, at: Instant) {
        self.remote_estimates
            .retain(|_, &mut (_, t)| at.saturating_duration_since(t) <= ESTIMATE_FRESH);
        self.remote_estimates.insert(player, (bps, at));
    }

    pub fn remove_player(&mut self, id: SessionId) {
        self.players.retain(|&p| p != id);
    }

    /// A route is forgotten when it serves nobody: on the origin, no publisher, players or mirrors; on a mirror,
    /// no players.
    pub fn is_empty(&self) -> bool {
        let publisher_here = self.origin.is_none() && self.publisher.is_some();
        !publisher_here && self.players.is_empty() && self.subscribers.is_empty()
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

    const SPS: &[u8] = &[0x67, 0x42];
    const IDR: &[u8] = &[0x7C, 0x85];
    const SLICE: &[u8] = &[0x41, 0x9A];
    const AUD: &[u8] = &[0x09, 0xF0];
    const SEI: &[u8] = &[0x06, 0x05];

    #[test]
    fn a_keyframe_opens_at_the_start_of_its_access_unit() {
        let mut route = Route::new(Duration::from_millis(500));
        assert!(
            route.opens_keyframe(7, 100, 3000, SPS),
            "the first packet seen"
        );
        assert!(!route.opens_keyframe(7, 101, 3000, IDR), "same picture");
        assert!(
            !route.opens_keyframe(7, 102, 6000, SLICE),
            "a delta picture"
        );
        assert!(route.opens_keyframe(7, 103, 9000, IDR), "an IDR picture");
        assert!(
            !route.opens_keyframe(7, 99, 0, SPS),
            "a late retransmission opens nothing"
        );
        assert!(
            !route.opens_keyframe(7, 104, 9000, SPS),
            "and does not disturb the newest picture"
        );
        assert!(route.opens_keyframe(8, 5, 9000, SPS), "a new source");
    }

    #[test]
    fn a_keyframe_opens_after_a_delimiter_and_sei() {
        let mut route = Route::new(Duration::from_millis(500));
        assert!(!route.opens_keyframe(7, 1, 3000, AUD));
        assert!(!route.opens_keyframe(7, 2, 3000, SEI));
        assert!(route.opens_keyframe(7, 3, 3000, SPS), "after the prelude");
        assert!(!route.opens_keyframe(7, 4, 6000, AUD));
        assert!(!route.opens_keyframe(7, 5, 6000, SLICE), "a delta picture");
        assert!(!route.opens_keyframe(7, 6, 6000, SPS), "not after a slice");
        assert!(!route.opens_keyframe(7, 7, 9000, AUD));
        assert!(
            !route.opens_keyframe(7, 9, 9000, IDR),
            "a gap may have taken the parameter sets"
        );
    }
}
