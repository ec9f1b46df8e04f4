//! A stream's newest keyframe, for players that join.
//!
//! A player that joins would otherwise wait for a keyframe: a request to the publisher, its encoder's next frame,
//! the keyframe's way back. Started from the cached keyframe, its decoder has a picture at once; the relay asks the
//! publisher for a fresh keyframe at the same time, and the player's video goes on live from that one.
//!
//! The delta frames after the cached keyframe are not replayed (no GOP replay). Sent faster than real time they
//! would be a burst of up to a whole GOP into a player that may be slow, and a player's jitter buffer that saw them
//! arrive faster than their timestamps say grows to absorb it (tried: Chromium's went from 10 to 75 ms and stayed
//! there). The cached keyframe alone is one burst, no larger than the live keyframe the player would get anyway;
//! the live keyframe continues the player's sequence numbers right after it, with the timestamp advanced by the
//! wall time in between (`SeqTimeRewriter::restart`), so neither a gap nor a jump in time shows. Until then the
//! player shows the cached picture, at most one keyframe interval old.

use std::time::Instant;

use crate::fec::MediaPacket;
use crate::SessionId;

/// A keyframe larger than this is not cached (its players ask the publisher, as without a cache).
const MAX_PACKETS: usize = 2048;
const MAX_BYTES: usize = 3 << 20;

/// The packets of the newest keyframe's access unit of one publisher's video, in sequence order.
#[derive(Debug, Default)]
pub(crate) struct KeyframeCache {
    source: Option<SessionId>,
    packets: Vec<MediaPacket>,
    bytes: usize,
}

impl KeyframeCache {
    /// Takes a video packet of publisher `from` as it is forwarded.
    pub fn on_video(&mut self, from: SessionId, packet: &MediaPacket, opens_keyframe: bool) {
        if opens_keyframe {
            self.clear();
            self.source = Some(from);
        }
        if self.source != Some(from) {
            return;
        }
        let Some(first) = self.packets.first() else {
            if opens_keyframe {
                self.insert(0, packet);
            }
            return;
        };
        if packet.seq < first.seq || packet.timestamp != first.timestamp {
            return;
        }
        // Usually the newest; a retransmission or a rebuilt packet fills its gap.
        if let Err(at) = self.packets.binary_search_by_key(&packet.seq, |p| p.seq) {
            self.insert(at, packet);
        }
        if self.packets.len() > MAX_PACKETS || self.bytes > MAX_BYTES {
            tracing::debug!(
                packets = self.packets.len(),
                bytes = self.bytes,
                "keyframe too large to cache"
            );
            self.clear();
        }
    }

    fn insert(&mut self, at: usize, packet: &MediaPacket) {
        self.bytes += packet.payload.len();
        self.packets.insert(at, packet.clone());
    }

    /// Forgets the keyframe (the publisher left or changed, or it was too large) until the next one.
    pub fn clear(&mut self) {
        self.source = None;
        self.packets.clear();
        self.bytes = 0;
    }

    /// The publisher and its keyframe's packets, when a whole keyframe (its marker packet, no gap) is cached.
    pub fn keyframe(&self) -> Option<(SessionId, &[MediaPacket])> {
        let (first, last) = (self.packets.first()?, self.packets.last()?);
        // Packets are kept in order, one of each sequence number, of one timestamp: the marker packet ends them.
        let whole = last.marker && last.seq - first.seq + 1 == self.packets.len() as u64;
        whole.then_some((self.source?, &self.packets[..]))
    }
}

/// A cached packet as written now: a player's sender reports map its timestamp to when it is sent.
pub(crate) fn sent_at(packet: &MediaPacket, now: Instant) -> MediaPacket {
    MediaPacket {
        arrival: now,
        ..packet.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn packet(seq: u64, timestamp: u32, marker: bool) -> MediaPacket {
        MediaPacket {
            ssrc: 1,
            seq,
            timestamp,
            marker,
            arrival: Instant::now(),
            ext: Default::default(),
            payload: Arc::from(vec![0u8; 1000]),
        }
    }

    fn seqs(cache: &KeyframeCache) -> Option<Vec<u64>> {
        Some(cache.keyframe()?.1.iter().map(|p| p.seq).collect())
    }

    #[test]
    fn the_newest_whole_keyframe_is_cached() {
        let mut cache = KeyframeCache::default();
        cache.on_video(1, &packet(10, 0, true), false);
        assert_eq!(seqs(&cache), None, "nothing before a keyframe");
        cache.on_video(1, &packet(11, 3000, false), true);
        cache.on_video(1, &packet(13, 3000, true), false);
        assert_eq!(seqs(&cache), None, "a gap: not whole");
        cache.on_video(1, &packet(12, 3000, false), false); // a retransmission fills it
        cache.on_video(1, &packet(13, 3000, true), false); // a duplicate
        cache.on_video(1, &packet(9, 0, false), false); // before the keyframe
        cache.on_video(1, &packet(14, 6000, true), false); // the next picture
        cache.on_video(2, &packet(15, 9000, true), false); // another publisher's
        assert_eq!(cache.keyframe().unwrap().0, 1);
        assert_eq!(seqs(&cache), Some(vec![11, 12, 13]));

        cache.on_video(1, &packet(20, 9000, false), true);
        assert_eq!(
            seqs(&cache),
            None,
            "a new keyframe starts over, whole once its marker is in"
        );
        cache.on_video(1, &packet(21, 9000, true), false);
        assert_eq!(seqs(&cache), Some(vec![20, 21]));
        cache.clear();
        assert_eq!(seqs(&cache), None);
    }

    #[test]
    fn a_keyframe_too_large_is_not_cached() {
        let mut cache = KeyframeCache::default();
        cache.on_video(1, &packet(0, 0, false), true);
        for seq in 1..=MAX_PACKETS as u64 {
            cache.on_video(1, &packet(seq, 0, false), false);
        }
        cache.on_video(1, &packet(MAX_PACKETS as u64 + 1, 0, true), false);
        assert_eq!(seqs(&cache), None);
    }
}
