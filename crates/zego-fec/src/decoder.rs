//! Rebuilds lost media packets of one stream from its repair stream.
//!
//! Feed it every media packet that arrives and every repair packet; a block is decoded as soon as it holds as many
//! packets (media and repair) as it has media packets, and the packets it was missing come back at once. Memory is
//! bounded: media packets are kept for the last [`MEDIA_WINDOW`] sequence numbers, and blocks that are complete,
//! decoded or too old are forgotten.

use std::collections::BTreeMap;

use bytes::Bytes;
use reed_solomon_simd::ReedSolomonDecoder;

use crate::format::{Media, RepairError, RepairHeader};

/// Media packets are kept this many sequence numbers behind the newest.
pub const MEDIA_WINDOW: u64 = 1024;
/// Repair bytes held for undecoded blocks at most: the oldest blocks go first.
const MAX_HELD_BYTES: usize = 2 << 20;

/// A block waiting for enough packets.
#[derive(Debug, Clone)]
struct Block {
    media_count: u64,
    repair_count: usize,
    shard_len: usize,
    /// Repair index -> shard.
    repairs: BTreeMap<u8, Bytes>,
}

impl Block {
    /// Whether `other` is coded the same way (packet counts and shard length).
    fn same_code(&self, other: &Block) -> bool {
        (self.media_count, self.repair_count, self.shard_len)
            == (other.media_count, other.repair_count, other.shard_len)
    }

    fn held_bytes(&self) -> usize {
        self.repairs.len() * self.shard_len
    }
}

#[derive(Default)]
pub struct BlockDecoder {
    decoder: Option<ReedSolomonDecoder>,
    /// Extended sequence number -> media packet, received or rebuilt.
    media: BTreeMap<u64, Media>,
    /// Extended sequence number of the first packet -> block.
    blocks: BTreeMap<u64, Block>,
    newest: Option<u64>,
    shard: Vec<u8>,
    /// Media packets rebuilt so far.
    pub rebuilt: u64,
}

impl std::fmt::Debug for BlockDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockDecoder")
            .field("media", &self.media.len())
            .field("blocks", &self.blocks.len())
            .field("newest", &self.newest)
            .field("rebuilt", &self.rebuilt)
            .finish_non_exhaustive()
    }
}

impl BlockDecoder {
    /// A media packet of the protected stream. Returns the packets it let the decoder rebuild, in order.
    pub fn on_media(&mut self, media: Media) -> Vec<Media> {
        let seq = self.extend(media.seq);
        self.advance(seq);
        if seq + MEDIA_WINDOW < self.newest.unwrap_or(seq) {
            return Vec::new();
        }
        self.media.insert(seq, media);
        let starts: Vec<u64> = self
            .blocks
            .range(seq.saturating_sub(u64::from(u8::MAX))..=seq)
            .filter(|(base, block)| *base + block.media_count > seq)
            .map(|(base, _)| *base)
            .collect();
        let mut out = Vec::new();
        for base in starts {
            self.try_decode(base, &mut out);
        }
        out
    }

    /// A repair packet's payload. Returns the packets it let the decoder rebuild, in order.
    pub fn on_repair(&mut self, payload: &[u8]) -> Result<Vec<Media>, RepairError> {
        let (header, shard) = RepairHeader::parse(payload)?;
        let base = self.extend(header.base);
        let media_count = u64::from(header.media_count);
        if self
            .newest
            .is_some_and(|newest| base + media_count + MEDIA_WINDOW < newest)
        {
            return Ok(Vec::new());
        }
        let announced = Block {
            media_count,
            repair_count: usize::from(header.repair_count),
            shard_len: usize::from(header.shard_len),
            repairs: BTreeMap::new(),
        };
        let block = self.blocks.entry(base).or_insert_with(|| announced.clone());
        if !block.same_code(&announced) {
            // Another block with the same first packet (a sender that started over): the newer one counts.
            *block = announced;
        }
        block
            .repairs
            .insert(header.index, Bytes::copy_from_slice(shard));
        self.advance(base + media_count - 1);
        self.bound_memory();
        let mut out = Vec::new();
        self.try_decode(base, &mut out);
        Ok(out)
    }

    /// Unwraps a 16-bit sequence number to the one nearest the newest seen.
    fn extend(&self, seq: u16) -> u64 {
        zego_rtp::seq::extend(self.newest, seq)
    }

    /// `seq` was seen: forget what is now too old.
    fn advance(&mut self, seq: u64) {
        if self.newest.is_some_and(|n| n >= seq) {
            return;
        }
        self.newest = Some(seq);
        let oldest = seq.saturating_sub(MEDIA_WINDOW);
        self.media = self.media.split_off(&oldest);
        self.blocks
            .retain(|base, block| *base + block.media_count > oldest);
    }

    fn bound_memory(&mut self) {
        let mut held: usize = self.blocks.values().map(Block::held_bytes).sum();
        while held > MAX_HELD_BYTES {
            let Some((_, oldest)) = self.blocks.pop_first() else {
                break;
            };
            held -= oldest.held_bytes();
        }
    }

    /// Decodes the block at `base` if it is missing packets and holds enough to rebuild them; forgets it once
    /// nothing is missing.
    fn try_decode(&mut self, base: u64, out: &mut Vec<Media>) {
        let Some(block) = self.blocks.get(&base) else {
            return;
        };
        let range = base..base + block.media_count;
        let present = self.media.range(range.clone()).count() as u64;
        if present == block.media_count {
            self.blocks.remove(&base);
            return;
        }
        if present + (block.repairs.len() as u64) < block.media_count {
            return;
        }
        let Some(block) = self.blocks.remove(&base) else {
            return;
        };
        let (n, k, len) = (
            block.media_count as usize,
            block.repair_count,
            block.shard_len,
        );
        let decoder = match self.decoder.as_mut() {
            Some(d) => d.reset(n, k, len).map(|()| d),
            None => ReedSolomonDecoder::new(n, k, len).map(|d| self.decoder.insert(d)),
        };
        let Ok(decoder) = decoder else {
            return;
        };
        for (seq, media) in self.media.range(range) {
            if media.shard_len() > len {
                // Not the packet the block was coded over.
                return;
            }
            media.write_shard(len, &mut self.shard);
            if decoder
                .add_original_shard((seq - base) as usize, &self.shard)
                .is_err()
            {
                return;
            }
        }
        for (index, shard) in &block.repairs {
            if decoder
                .add_recovery_shard(usize::from(*index), shard)
                .is_err()
            {
                return;
            }
        }
        let Ok(result) = decoder.decode() else {
            return;
        };
        let mut rebuilt: Vec<(u64, Media)> = result
            .restored_original_iter()
            .filter_map(|(i, shard)| {
                let seq = base + i as u64;
                Media::from_shard(seq as u16, shard).map(|m| (seq, m))
            })
            .collect();
        rebuilt.sort_by_key(|(seq, _)| *seq);
        for (seq, media) in rebuilt {
            self.rebuilt += 1;
            self.media.insert(seq, media.clone());
            out.push(media);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlockCoder, ProtectionLevel};
    use std::time::{Duration, Instant};

    fn coder(loss: f32) -> BlockCoder {
        let mut coder = BlockCoder::new(ProtectionLevel::default());
        let now = Instant::now();
        for n in 0..2 {
            coder
                .level
                .report(now + Duration::from_secs(n), Some(loss), None);
        }
        coder
    }

    fn frame(first: u64, count: u64, ts: u32) -> Vec<Media> {
        (0..count)
            .map(|i| Media {
                seq: (first + i) as u16,
                payload_type: 108,
                marker: i + 1 == count,
                timestamp: ts,
                payload: Bytes::from(vec![
                    (first + i) as u8;
                    100 + ((first + i) * 53 % 1100) as usize
                ]),
            })
            .collect()
    }

    #[test]
    fn repair_before_media_and_reordered_media_still_rebuild() {
        let mut coder = coder(0.3);
        let packets = frame(100, 9, 90_000);
        let repairs: Vec<_> = packets
            .iter()
            .flat_map(|p| coder.on_media(u64::from(p.seq), Some(p.clone())))
            .collect();
        assert!(repairs.len() >= 5);
        let mut decoder = BlockDecoder::default();
        // Five repair packets first, then the media backwards, missing its last five.
        for r in &repairs[..5] {
            assert!(decoder.on_repair(&r.payload).unwrap().is_empty());
        }
        let mut rebuilt = Vec::new();
        for p in packets.iter().rev().skip(5) {
            rebuilt.extend(decoder.on_media(p.clone()));
        }
        assert_eq!(rebuilt, packets[4..].to_vec());
        assert_eq!(decoder.rebuilt, 5);
        assert!(decoder.blocks.is_empty(), "a decoded block is forgotten");
    }

    #[test]
    fn too_few_packets_rebuild_nothing_and_a_retransmission_completes_the_block() {
        let mut coder = coder(0.1);
        let packets = frame(7, 9, 0);
        let repairs: Vec<_> = packets
            .iter()
            .flat_map(|p| coder.on_media(u64::from(p.seq), Some(p.clone())))
            .collect();
        let k = repairs.len();
        let mut decoder = BlockDecoder::default();
        // k + 1 media packets lost: not enough.
        for p in &packets[k + 1..] {
            assert!(decoder.on_media(p.clone()).is_empty());
        }
        for r in &repairs {
            assert!(decoder.on_repair(&r.payload).unwrap().is_empty());
        }
        // One of them comes back by retransmission: the rest can be rebuilt.
        let rebuilt = decoder.on_media(packets[0].clone());
        assert_eq!(rebuilt, packets[1..=k].to_vec());
    }

    #[test]
    fn the_stream_wraps_and_old_state_is_forgotten() {
        let mut coder = coder(0.1);
        let mut decoder = BlockDecoder::default();
        let mut seq = 60_000u64;
        for f in 0..400u64 {
            let packets = frame(seq, 9, f as u32 * 3000);
            seq += 9;
            let repairs: Vec<_> = packets
                .iter()
                .flat_map(|p| coder.on_media(u64::from(p.seq), Some(p.clone())))
                .collect();
            // The third packet is lost and one repair packet too.
            for (i, p) in packets.iter().enumerate() {
                if i != 2 {
                    assert!(decoder.on_media(p.clone()).is_empty());
                }
            }
            let rebuilt: Vec<_> = repairs[1..]
                .iter()
                .flat_map(|r| decoder.on_repair(&r.payload).unwrap())
                .collect();
            assert_eq!(rebuilt, vec![packets[2].clone()], "frame {f}");
        }
        assert!(decoder.media.len() as u64 <= MEDIA_WINDOW + 1);
        assert!(decoder.blocks.is_empty());
    }

    #[test]
    fn garbage_is_refused_and_changes_nothing() {
        let mut decoder = BlockDecoder::default();
        assert!(decoder.on_repair(&[]).is_err());
        assert!(decoder.on_repair(&[1, 9, 4, 0, 0, 0, 0, 10]).is_err());
        assert!(decoder.on_repair(&[9; 40]).is_err());
        assert!(decoder.blocks.is_empty());
        // A well-formed header over a shard that is not the block's: nothing rebuilt, no panic.
        let mut bogus = vec![1, 2, 1, 0, 0, 5, 0, 8];
        bogus.extend_from_slice(&[0xFF; 8]);
        assert!(decoder.on_repair(&bogus).unwrap().is_empty());
        let rebuilt = decoder.on_media(Media {
            seq: 5,
            payload_type: 108,
            marker: false,
            timestamp: 0,
            payload: Bytes::from_static(b"x"),
        });
        assert!(rebuilt.iter().all(|m| m.seq == 6));
    }
}
