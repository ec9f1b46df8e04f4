//! Repair packets over frame-aligned blocks of one media stream.
//!
//! A block is the run of consecutive packets of one frame, closed by the frame's marker (or a gap, a new
//! timestamp, or [`MAX_BLOCK`] packets), so that a frame's repair leaves right after its last packet and a loss is
//! rebuilt as soon as the frame's packets and enough repair packets have arrived. With k repair packets over n media
//! packets, any k of the n + k can be lost (see [`crate::format`]).

use bytes::Bytes;
use reed_solomon_simd::ReedSolomonEncoder;

use crate::format::{block_shard_len, Media, RepairHeader, MAX_SHARD_LEN};
use crate::ProtectionLevel;

/// A block is closed at this many packets even without a marker.
pub const MAX_BLOCK: usize = 128;

/// One repair packet, for the repair stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Extended sequence number on the repair stream (its low 16 bits go on the wire).
    pub seq: u64,
    /// The RTP timestamp of the media it protects.
    pub timestamp: u32,
    /// The repair header and shard.
    pub payload: Bytes,
}

/// The repair stream of one media stream.
pub struct BlockCoder {
    encoder: Option<ReedSolomonEncoder>,
    /// Consecutive packets of the frame being sent.
    block: Vec<Media>,
    /// The newest media sequence number seen.
    newest: Option<u64>,
    next_seq: u64,
    shard: Vec<u8>,
    /// How many repair packets each block gets; off until the receiver's reports call for it.
    pub level: ProtectionLevel,
}

impl std::fmt::Debug for BlockCoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCoder")
            .field("block", &self.block.len())
            .field("newest", &self.newest)
            .field("next_seq", &self.next_seq)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl BlockCoder {
    /// A coder numbering its repair packets from a random start, with the protection level given.
    pub fn new(level: ProtectionLevel) -> Self {
        BlockCoder {
            encoder: None,
            block: Vec::new(),
            newest: None,
            next_seq: u64::from(rand::random::<u16>() & 0x3FFF),
            shard: Vec::new(),
            level,
        }
    }

    /// Whether repair packets are being made: callers may skip building packets for [`BlockCoder::on_media`]
    /// otherwise.
    pub fn active(&self) -> bool {
        self.level.active()
    }

    /// One media packet as sent, with its extended sequence number; `packet` is `None` for one that is not
    /// protected (it closes the block being built), and its sequence number must be `seq`'s low 16 bits. Returns
    /// the repair packets that are due: at the end of a frame, when a block is full, and for a packet that arrives
    /// after newer ones (a repair from upstream, on the critical path of its frame: it gets repair of its own).
    pub fn on_media(&mut self, seq: u64, packet: Option<Media>) -> Vec<Repair> {
        let late = self.newest.is_some_and(|newest| seq <= newest);
        if !late {
            self.newest = Some(seq);
        }
        if !self.level.active() {
            self.block.clear();
            return Vec::new();
        }
        let Some(packet) = packet.filter(|p| p.shard_len() <= MAX_SHARD_LEN) else {
            return if late { Vec::new() } else { self.flush() };
        };
        if late {
            return self.encode(std::slice::from_ref(&packet));
        }

        let mut out = Vec::new();
        let continues = self.block.last().is_some_and(|last| {
            last.seq.wrapping_add(1) == packet.seq && last.timestamp == packet.timestamp
        });
        if !continues && !self.block.is_empty() {
            out.extend(self.flush());
        }
        let ends_frame = packet.marker;
        self.block.push(packet);
        if ends_frame || self.block.len() >= MAX_BLOCK {
            out.extend(self.flush());
        }
        out
    }

    fn flush(&mut self) -> Vec<Repair> {
        let block = std::mem::take(&mut self.block);
        let out = self.encode(&block);
        self.block = block;
        self.block.clear();
        out
    }

    fn encode(&mut self, media: &[Media]) -> Vec<Repair> {
        let n = media.len();
        let k = self.level.repair_packets(n);
        if k == 0 || n == 0 {
            return Vec::new();
        }
        match self.code(media, k) {
            Ok(out) => out,
            Err(e) => {
                tracing::debug!("cannot code a block of {n} packets: {e}");
                Vec::new()
            }
        }
    }

    /// The `k` repair packets of a block of `media` (not empty).
    fn code(&mut self, media: &[Media], k: usize) -> Result<Vec<Repair>, reed_solomon_simd::Error> {
        let n = media.len();
        let shard_len = block_shard_len(media.iter());
        let encoder = match self.encoder.as_mut() {
            Some(e) => e.reset(n, k, shard_len).map(|()| e),
            None => ReedSolomonEncoder::new(n, k, shard_len).map(|e| self.encoder.insert(e)),
        }?;
        for packet in media {
            packet.write_shard(shard_len, &mut self.shard);
            encoder.add_original_shard(&self.shard)?;
        }
        let result = encoder.encode()?;
        let first = &media[0];
        let mut out = Vec::with_capacity(k);
        for (index, shard) in result.recovery_iter().enumerate() {
            let header = RepairHeader {
                base: first.seq,
                media_count: n as u8,
                repair_count: k as u8,
                index: index as u8,
                shard_len: shard_len as u16,
            };
            out.push(Repair {
                seq: self.next_seq,
                timestamp: first.timestamp,
                payload: header.write(shard),
            });
            self.next_seq += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::BlockDecoder;

    /// A coder with protection on for 10% loss.
    fn lossy_coder() -> BlockCoder {
        let mut coder = BlockCoder::new(ProtectionLevel::default());
        let now = Instant::now();
        for n in 0..2 {
            coder.level.report(
                now + Duration::from_secs(n),
                Some(0.1),
                Some(Duration::from_millis(100)),
            );
        }
        assert!(coder.active());
        coder
    }

    fn media(seq: u64, ts: u32, marker: bool) -> Media {
        Media {
            seq: seq as u16,
            payload_type: 108,
            marker,
            timestamp: ts,
            payload: Bytes::from(vec![seq as u8; 200 + (seq as usize * 37) % 900]),
        }
    }

    /// Codes frames, drops as many packets of each as it has repair packets (the worst case a code of this size
    /// survives), and checks that every one is rebuilt bit for bit.
    #[test]
    fn any_k_lost_packets_of_a_frame_are_rebuilt() {
        let mut coder = lossy_coder();
        let mut decoder = BlockDecoder::default();
        let mut rebuilt = Vec::new();
        let mut dropped = Vec::new();
        for frame in 0..6u64 {
            let packets: Vec<Media> = (0..9)
                .map(|i| media(65_530 + frame * 9 + i, 3000 * frame as u32, i == 8))
                .collect();
            let mut repairs = Vec::new();
            for (i, p) in packets.iter().enumerate() {
                repairs.extend(coder.on_media(65_530 + frame * 9 + i as u64, Some(p.clone())));
            }
            assert_eq!(repairs.len(), 4, "10% loss: 4 repair packets for 9");
            // A different run of four lost each frame, repair packets included.
            let lost: Vec<usize> = (0..4).map(|j| (frame as usize * 2 + j * 3) % 13).collect();
            for (i, p) in packets.iter().enumerate() {
                if lost.contains(&i) {
                    dropped.push(p.clone());
                } else {
                    rebuilt.extend(decoder.on_media(p.clone()));
                }
            }
            for (j, r) in repairs.iter().enumerate() {
                if !lost.contains(&(9 + j)) {
                    rebuilt.extend(decoder.on_repair(&r.payload).unwrap());
                }
            }
        }
        rebuilt.sort_by_key(|m| m.seq.wrapping_sub(65_530));
        dropped.sort_by_key(|m| m.seq.wrapping_sub(65_530));
        assert_eq!(rebuilt, dropped);
    }

    #[test]
    fn a_late_packet_gets_repair_of_its_own() {
        let mut coder = lossy_coder();
        assert!(coder.on_media(10, Some(media(10, 0, false))).is_empty());
        assert!(
            !coder.on_media(12, Some(media(12, 0, false))).is_empty(),
            "the gap closes the first run"
        );
        let late = coder.on_media(11, Some(media(11, 0, false)));
        assert!(!late.is_empty());
        let mut decoder = BlockDecoder::default();
        let rebuilt = decoder.on_repair(&late[0].payload).unwrap();
        assert_eq!(rebuilt, vec![media(11, 0, false)]);
    }

    #[test]
    fn nothing_is_coded_while_protection_is_off() {
        let mut coder = BlockCoder::new(ProtectionLevel::default());
        for seq in 0..20 {
            assert!(coder
                .on_media(seq, Some(media(seq, 0, seq % 9 == 8)))
                .is_empty());
        }
    }

    #[test]
    fn an_unprotected_packet_closes_the_block() {
        let mut coder = lossy_coder();
        assert!(coder.on_media(1, Some(media(1, 0, false))).is_empty());
        assert!(!coder.on_media(2, None).is_empty());
        assert!(coder.on_media(3, None).is_empty(), "nothing left to close");
    }

    #[test]
    fn repair_sequence_numbers_follow_each_other() {
        let mut coder = lossy_coder();
        let mut seqs = Vec::new();
        for seq in 0..90u64 {
            seqs.extend(
                coder
                    .on_media(seq, Some(media(seq, 3000 * (seq / 9) as u32, seq % 9 == 8)))
                    .into_iter()
                    .map(|r| r.seq),
            );
        }
        assert_eq!(seqs.len(), 40);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
