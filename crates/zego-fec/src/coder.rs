//! Repair packets over frame-aligned blocks of one media stream.
//!
//! A block is the run of consecutive packets of one frame, closed by the frame's marker (or a gap, a new
//! timestamp, or [`MAX_BLOCK`] packets), so that a frame's repair leaves right after its last packet and a loss is
//! rebuilt as soon as the frame is complete. The draft-03 encoder interleaves its masks: with k repair packets over
//! n media packets, repair packet i covers media packets i, i+k, i+2k, ..., so each group survives one loss.

use bytes::Bytes;
use rtc_interceptor::FlexFec03Encoder;
use rtc_rtp::header::Header;
use rtc_rtp::packet::Packet;

use crate::ProtectionLevel;

/// A block is closed at this many packets even without a marker.
pub const MAX_BLOCK: usize = 48;

/// One repair packet, for the repair stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Extended sequence number on the repair stream (its low 16 bits go on the wire).
    pub seq: u64,
    pub timestamp: u32,
    /// The FlexFEC-03 payload: repair header and repair data.
    pub payload: Bytes,
}

/// A media packet in the form the uplink's repair covers: the RTP header without CSRCs, extensions or padding, and
/// the payload. The relay rebuilds exactly this form, which carries all it forwards.
pub fn plain(
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: Bytes,
) -> Packet {
    Packet {
        header: Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: seq,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload,
    }
}

/// The repair stream of one media stream.
#[derive(Debug)]
pub struct BlockCoder {
    encoder: FlexFec03Encoder,
    /// Consecutive packets of the frame being sent.
    block: Vec<Packet>,
    /// The newest media sequence number seen.
    newest: Option<u64>,
    next_seq: u64,
    /// How many repair packets each block gets; off until the receiver's reports call for it.
    pub level: ProtectionLevel,
}

impl BlockCoder {
    /// A coder of repair packets with payload type `repair_pt` on `repair_ssrc`, numbered from a random start.
    pub fn new(repair_pt: u8, repair_ssrc: u32) -> Self {
        Self::with_level(repair_pt, repair_ssrc, ProtectionLevel::default())
    }

    /// The same, with the protection level given.
    pub fn with_level(repair_pt: u8, repair_ssrc: u32, level: ProtectionLevel) -> Self {
        let first = u64::from(rand::random::<u16>() & 0x3FFF);
        BlockCoder {
            encoder: FlexFec03Encoder::new(repair_pt, repair_ssrc)
                .with_base_sequence_number(first as u16),
            block: Vec::new(),
            newest: None,
            next_seq: first,
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
    /// after newer ones (a repair from upstream, on the critical path of its frame: it gets one repair packet of its
    /// own).
    pub fn on_media(&mut self, seq: u64, packet: Option<Packet>) -> Vec<Repair> {
        let late = self.newest.is_some_and(|newest| seq <= newest);
        if !late {
            self.newest = Some(seq);
        }
        if !self.level.active() {
            self.block.clear();
            return Vec::new();
        }
        let Some(packet) = packet else {
            return if late { Vec::new() } else { self.flush() };
        };
        if late {
            return self.encode(std::slice::from_ref(&packet));
        }

        let mut out = Vec::new();
        let continues = self.block.last().is_some_and(|last| {
            last.header.sequence_number.wrapping_add(1) == packet.header.sequence_number
                && last.header.timestamp == packet.header.timestamp
        });
        if !continues && !self.block.is_empty() {
            out.extend(self.flush());
        }
        let ends_frame = packet.header.marker;
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

    fn encode(&mut self, media: &[Packet]) -> Vec<Repair> {
        let count = self.level.repair_packets(media.len());
        if count == 0 {
            return Vec::new();
        }
        self.encoder
            .encode(media, count as u32)
            .into_iter()
            .map(|repair| {
                let seq = self.next_seq;
                self.next_seq += 1;
                Repair {
                    seq,
                    timestamp: repair.header.timestamp,
                    payload: repair.payload,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::FlexFec03Decoder;

    const MEDIA_SSRC: u32 = 0x1111;
    const REPAIR_SSRC: u32 = 0x2222;

    fn lossy_coder() -> BlockCoder {
        let mut coder = BlockCoder::new(118, REPAIR_SSRC);
        let now = Instant::now();
        coder
            .level
            .report(now, Some(0.1), Some(Duration::from_millis(100)));
        coder.level.report(
            now + Duration::from_secs(1),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        assert!(coder.active());
        coder
    }

    fn payload(i: u64) -> Bytes {
        Bytes::from(vec![i as u8; 200 + (i as usize * 37) % 900])
    }

    fn media(seq: u64, ts: u32, marker: bool) -> Packet {
        plain(MEDIA_SSRC, 108, seq as u16, ts, marker, payload(seq))
    }

    fn repair_packet(repair: &Repair) -> Packet {
        plain(
            REPAIR_SSRC,
            118,
            repair.seq as u16,
            repair.timestamp,
            false,
            repair.payload.clone(),
        )
    }

    /// Codes frames, drops two packets of each, and checks the draft-03 decoder rebuilds them bit for bit.
    #[test]
    fn lost_packets_are_rebuilt_from_their_frame_and_its_repair() {
        let mut coder = lossy_coder();
        let mut decoder = FlexFec03Decoder::new(REPAIR_SSRC, MEDIA_SSRC);
        let mut recovered = Vec::new();
        let mut dropped = Vec::new();
        for frame in 0..4u64 {
            let mut repairs = Vec::new();
            for i in 0..9u64 {
                let seq = 60_000 + frame * 9 + i;
                let packet = media(seq, 3000 * frame as u32, i == 8);
                repairs.extend(coder.on_media(seq, Some(packet.clone())));
                // The second and fifth packet of every frame are lost: one in each of the two groups.
                if i == 1 || i == 4 {
                    dropped.push(seq as u16);
                } else {
                    recovered.extend(decoder.decode(packet));
                }
            }
            assert_eq!(
                repairs.len(),
                2,
                "two repair packets after the frame's marker"
            );
            for repair in &repairs {
                recovered.extend(decoder.decode(repair_packet(repair)));
            }
        }
        let mut got: Vec<u16> = recovered.iter().map(|p| p.header.sequence_number).collect();
        got.sort_unstable();
        dropped.sort_unstable();
        assert_eq!(got, dropped);
        for p in &recovered {
            let original = dropped_original(p.header.sequence_number);
            assert_eq!(p, &original);
        }
    }

    fn dropped_original(seq16: u16) -> Packet {
        let seq = if seq16 >= 60_000 {
            u64::from(seq16)
        } else {
            u64::from(seq16) + 65_536
        };
        let i = (seq - 60_000) % 9;
        media(seq, 3000 * ((seq - 60_000) / 9) as u32, i == 8)
    }

    #[test]
    fn a_late_packet_gets_a_repair_packet_of_its_own() {
        let mut coder = lossy_coder();
        assert!(coder.on_media(10, Some(media(10, 0, false))).is_empty());
        assert_eq!(
            coder.on_media(12, Some(media(12, 0, false))).len(),
            1,
            "the gap closes the first run"
        );
        let late = coder.on_media(11, Some(media(11, 0, false)));
        assert_eq!(late.len(), 1);
        let mut decoder = FlexFec03Decoder::new(REPAIR_SSRC, MEDIA_SSRC);
        let rebuilt = decoder.decode(repair_packet(&late[0]));
        assert_eq!(rebuilt, vec![media(11, 0, false)]);
    }

    #[test]
    fn nothing_is_coded_while_protection_is_off() {
        let mut coder = BlockCoder::new(118, REPAIR_SSRC);
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
        assert_eq!(coder.on_media(2, None).len(), 1);
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
        assert_eq!(seqs.len(), 20);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
