//! The repair stream's wire form: one definition, for the coder and the decoder.
//!
//! A repair packet is an RTP packet on the repair SSRC (payload type of the negotiated `flexfec-rs/90000`, its
//! own sequence numbers, the RTP timestamp of the frame it protects) whose payload is an 8-byte header and one
//! Reed-Solomon recovery shard:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  version (1)  |  media count  |  repair count |  repair index |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      base sequence number     |          shard length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                recovery shard (shard length bytes)            |
//! ```
//!
//! The block it repairs is the `media count` media packets with sequence numbers `base`, `base + 1`, ...; the
//! shards are Reed-Solomon over GF(2^16) (the Leopard construction of `reed-solomon-simd`), so any `media count`
//! of the block's `media count + repair count` packets rebuild the rest. Each media packet enters the code as a
//! shard of the block's shard length:
//!
//! ```text
//! | payload length (16) |M| payload type (7) |  RTP timestamp (32)  |  RTP payload  |  zero padding  |
//! ```
//!
//! which is everything a receiver needs to rebuild the packet: its SSRC is the protected stream's and its sequence
//! number follows from its place in the block. Header extensions are not covered (a rebuilt packet has none), so
//! a coder can work above the layer that stamps them.

use bytes::{BufMut, Bytes, BytesMut};

/// The version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the shard in a repair packet's payload.
pub const REPAIR_HEADER_LEN: usize = 8;
/// Bytes before the RTP payload in a media packet's shard.
pub const SHARD_HEADER_LEN: usize = 7;
/// The largest shard accepted: an RTP payload of a full-size datagram and its shard header, rounded up.
pub const MAX_SHARD_LEN: usize = 2048;

/// A media packet as the repair covers it: its SSRC is the protected stream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub seq: u16,
    pub payload_type: u8,
    pub marker: bool,
    pub timestamp: u32,
    pub payload: Bytes,
}

impl Media {
    /// The length of this packet's shard before padding.
    pub(crate) fn shard_len(&self) -> usize {
        SHARD_HEADER_LEN + self.payload.len()
    }

    /// This packet as a shard of `shard_len` bytes (at least [`Media::shard_len`]).
    pub(crate) fn write_shard(&self, shard_len: usize, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(shard_len);
        out.extend_from_slice(&(self.payload.len() as u16).to_be_bytes());
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.resize(shard_len, 0);
    }

    /// The media packet a rebuilt shard holds, if the shard is well formed.
    pub(crate) fn from_shard(seq: u16, shard: &[u8]) -> Option<Media> {
        let len = usize::from(u16::from_be_bytes([*shard.first()?, *shard.get(1)?]));
        let payload = shard.get(SHARD_HEADER_LEN..SHARD_HEADER_LEN + len)?;
        Some(Media {
            seq,
            payload_type: shard[2] & 0x7F,
            marker: shard[2] & 0x80 != 0,
            timestamp: u32::from_be_bytes([shard[3], shard[4], shard[5], shard[6]]),
            payload: Bytes::copy_from_slice(payload),
        })
    }
}

/// The header of a repair packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairHeader {
    /// Sequence number of the block's first media packet.
    pub base: u16,
    /// Media packets in the block.
    pub media_count: u8,
    /// Repair packets of the block.
    pub repair_count: u8,
    /// This packet's place among them.
    pub index: u8,
    pub shard_len: u16,
}

/// Why a repair packet was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairError {
    /// Shorter than its header, or than the shard it announces.
    Truncated,
    /// A version this crate does not read.
    Version(u8),
    /// Counts of zero, an index out of range, or a shard length that is odd, too small or too large.
    Malformed,
}

impl std::fmt::Display for RepairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepairError::Truncated => f.write_str("repair packet shorter than its header or shard"),
            RepairError::Version(v) => write!(f, "repair packet of unknown version {v}"),
            RepairError::Malformed => {
                f.write_str("repair packet with inconsistent counts or shard length")
            }
        }
    }
}

impl std::error::Error for RepairError {}

impl RepairHeader {
    /// Reads the header and returns it with the shard.
    pub fn parse(payload: &[u8]) -> Result<(RepairHeader, &[u8]), RepairError> {
        let h = payload
            .get(..REPAIR_HEADER_LEN)
            .ok_or(RepairError::Truncated)?;
        if h[0] != VERSION {
            return Err(RepairError::Version(h[0]));
        }
        let header = RepairHeader {
            media_count: h[1],
            repair_count: h[2],
            index: h[3],
            base: u16::from_be_bytes([h[4], h[5]]),
            shard_len: u16::from_be_bytes([h[6], h[7]]),
        };
        let shard_len = usize::from(header.shard_len);
        if header.media_count == 0
            || header.repair_count == 0
            || header.index >= header.repair_count
            || shard_len % 2 != 0
            || !(SHARD_HEADER_LEN..=MAX_SHARD_LEN).contains(&shard_len)
        {
            return Err(RepairError::Malformed);
        }
        let shard = payload
            .get(REPAIR_HEADER_LEN..REPAIR_HEADER_LEN + shard_len)
            .ok_or(RepairError::Truncated)?;
        Ok((header, shard))
    }

    /// The repair packet's payload: this header and `shard`.
    pub(crate) fn write(&self, shard: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(REPAIR_HEADER_LEN + shard.len());
        out.put_u8(VERSION);
        out.put_u8(self.media_count);
        out.put_u8(self.repair_count);
        out.put_u8(self.index);
        out.put_u16(self.base);
        out.put_u16(self.shard_len);
        out.put_slice(shard);
        out.freeze()
    }
}

/// The shard length of a block: the longest packet's, rounded up to even (the code works on 16-bit symbols).
pub(crate) fn block_shard_len<'a>(media: impl Iterator<Item = &'a Media>) -> usize {
    let longest = media
        .map(Media::shard_len)
        .max()
        .unwrap_or(SHARD_HEADER_LEN);
    longest + longest % 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> Media {
        Media {
            seq: 7,
            payload_type: 108,
            marker: true,
            timestamp: 0xDEAD_BEEF,
            payload: Bytes::from_static(b"abcde"),
        }
    }

    #[test]
    fn a_shard_holds_the_packet_and_pads() {
        let m = media();
        let mut shard = Vec::new();
        m.write_shard(16, &mut shard);
        assert_eq!(shard.len(), 16);
        assert_eq!(&shard[..7], &[0, 5, 0x80 | 108, 0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(Media::from_shard(7, &shard), Some(m));
        assert_eq!(Media::from_shard(7, &shard[..9]), None, "payload cut short");
    }

    #[test]
    fn headers_round_trip_and_bad_ones_are_refused() {
        let header = RepairHeader {
            base: 65_535,
            media_count: 9,
            repair_count: 4,
            index: 3,
            shard_len: 10,
        };
        let payload = header.write(&[1; 10]);
        assert_eq!(payload.len(), REPAIR_HEADER_LEN + 10);
        let (parsed, shard) = RepairHeader::parse(&payload).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(shard, &[1; 10]);

        assert_eq!(
            RepairHeader::parse(&payload[..12]),
            Err(RepairError::Truncated)
        );
        let mut bad = payload.to_vec();
        bad[0] = 3;
        assert_eq!(RepairHeader::parse(&bad), Err(RepairError::Version(3)));
        for (field, value) in [(1, 0u8), (2, 0), (3, 4)] {
            let mut bad = payload.to_vec();
            bad[field] = value;
            assert_eq!(RepairHeader::parse(&bad), Err(RepairError::Malformed));
        }
        let odd = RepairHeader {
            shard_len: 9,
            ..header
        }
        .write(&[0; 9]);
        assert_eq!(RepairHeader::parse(&odd), Err(RepairError::Malformed));
    }
}
