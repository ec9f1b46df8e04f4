//! Forward error correction on both hops of the relay (Reed-Solomon repair streams, see the `zego-fec` crate).
//!
//! From a publisher ([`FecReceiver`]): the SDK codes its video before header extensions are added, and the relay
//! rebuilds lost packets from the repair stream the offer announced with `a=ssrc-group:FEC-FR`, so a lost packet is
//! forwarded as soon as enough of its frame has arrived instead of a round trip later.
//!
//! Towards a player ([`FecSender`]): repair packets over the video the relay forwards, in the sequence numbers and
//! timestamps the player sees, on a repair SSRC announced with `a=ssrc-group:FEC-FR`, in an amount that follows
//! the player's receiver reports.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::rtp::ExtensionValues;
use zego_fec::{BlockCoder, BlockDecoder, Media, ProtectionLevel, Repair};

/// Rebuilt sequence numbers remembered, to drop their late retransmissions (str0m never saw them, and asks).
const REMEMBERED_REBUILT: usize = 512;
/// Media is handed to the decoder only this long after the last repair packet: a publisher on a clean path sends
/// none, and its packets need no copies.
const REPAIR_IDLE: Duration = Duration::from_secs(3);
/// Media sequence numbers remembered that arrived while the repair stream was idle: the decoder has no copy of
/// them, so the repair of their block would hand them back as rebuilt.
const REMEMBERED_UNFED: usize = zego_fec::MEDIA_WINDOW as usize;

/// A publisher's media packet as the relay forwards it: one str0m received, or one rebuilt from repair packets.
#[derive(Debug, Clone)]
pub(crate) struct MediaPacket {
    pub ssrc: u32,
    /// Extended sequence number.
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    /// When it arrived (or was rebuilt).
    pub arrival: Instant,
    /// The extensions that describe the media (audio level, video orientation); none on a rebuilt packet.
    pub ext: ExtensionValues,
    pub payload: Arc<[u8]>,
}

impl From<str0m::rtp::RtpPacket> for MediaPacket {
    fn from(packet: str0m::rtp::RtpPacket) -> Self {
        MediaPacket {
            ssrc: *packet.header.ssrc,
            seq: *packet.seq_no,
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            arrival: packet.timestamp,
            ext: packet.header.ext_vals,
            payload: packet.payload,
        }
    }
}

/// Rebuilds a publisher's lost video packets from its repair stream.
#[derive(Debug)]
pub(crate) struct FecReceiver {
    decoder: BlockDecoder,
    media_ssrc: u32,
    media_pt: u8,
    repair_ssrc: u32,
    repair_pt: u8,
    /// The newest media sequence number, to extend the 16-bit numbers of rebuilt packets.
    newest: Option<u64>,
    /// Recently rebuilt sequence numbers.
    rebuilt: VecDeque<u64>,
    /// Recent media that arrived while the repair stream was idle (not handed to the decoder).
    unfed: VecDeque<u64>,
    /// When the last repair packet arrived.
    last_repair: Option<Instant>,
    /// Packets rebuilt in all.
    pub rebuilt_count: u64,
}

impl FecReceiver {
    pub fn new(media_ssrc: u32, media_pt: u8, repair_ssrc: u32, repair_pt: u8) -> Self {
        FecReceiver {
            decoder: BlockDecoder::default(),
            media_ssrc,
            media_pt,
            repair_ssrc,
            repair_pt,
            newest: None,
            rebuilt: VecDeque::with_capacity(REMEMBERED_REBUILT),
            unfed: VecDeque::new(),
            last_repair: None,
            rebuilt_count: 0,
        }
    }

    pub fn media_ssrc(&self) -> u32 {
        self.media_ssrc
    }

    /// Whether a packet of this SSRC and payload type belongs to the repair stream.
    pub fn is_repair(&self, ssrc: u32, pt: u8) -> bool {
        ssrc == self.repair_ssrc && pt == self.repair_pt
    }

    /// A video packet str0m delivered. Returns `false` for a retransmission of a packet already rebuilt (to be
    /// dropped); packets it completes the repair of are added to `rebuilt`.
    pub fn on_media(&mut self, packet: &MediaPacket, rebuilt: &mut Vec<MediaPacket>) -> bool {
        if packet.ssrc != self.media_ssrc {
            return true;
        }
        if self.rebuilt.contains(&packet.seq) {
            return false;
        }
        self.newest = Some(self.newest.map_or(packet.seq, |n| n.max(packet.seq)));
        if self
            .last_repair
            .is_none_or(|at| packet.arrival.saturating_duration_since(at) > REPAIR_IDLE)
        {
            if self.unfed.len() == REMEMBERED_UNFED {
                self.unfed.pop_front();
            }
            self.unfed.push_back(packet.seq);
            return true;
        }
        let recovered = self.decoder.on_media(Media {
            seq: packet.seq as u16,
            payload_type: self.media_pt,
            marker: packet.marker,
            timestamp: packet.timestamp,
            payload: Bytes::copy_from_slice(&packet.payload),
        });
        self.take(recovered, packet.arrival, rebuilt);
        true
    }

    /// A repair packet's payload; rebuilt packets are added to `rebuilt`.
    pub fn on_repair(&mut self, payload: &[u8], now: Instant, rebuilt: &mut Vec<MediaPacket>) {
        self.last_repair = Some(now);
        match self.decoder.on_repair(payload) {
            Ok(recovered) => self.take(recovered, now, rebuilt),
            Err(e) => tracing::debug!("unusable repair packet from a publisher: {e}"),
        }
    }

    fn take(&mut self, recovered: Vec<Media>, now: Instant, out: &mut Vec<MediaPacket>) {
        for media in recovered {
            if media.payload_type != self.media_pt {
                continue;
            }
            let Some(newest) = self.newest else {
                continue;
            };
            let Some(seq) = zego_rtp::seq::nearest(newest, media.seq) else {
                continue;
            };
            if self.unfed.contains(&seq) || self.rebuilt.contains(&seq) {
                // It arrived, and was forwarded, before the decoder was fed; or another block (a second repair
                // block over the same media) rebuilt it already.
                continue;
            }
            if self.rebuilt.len() == REMEMBERED_REBUILT {
                self.rebuilt.pop_front();
            }
            self.rebuilt.push_back(seq);
            self.newest = Some(newest.max(seq));
            self.rebuilt_count += 1;
            out.push(MediaPacket {
                ssrc: self.media_ssrc,
                seq,
                timestamp: media.timestamp,
                marker: media.marker,
                arrival: now,
                ext: ExtensionValues::default(),
                payload: Arc::from(&media.payload[..]),
            });
        }
    }
}

/// The repair stream of one player's video.
#[derive(Debug)]
pub(crate) struct FecSender {
    pub coder: BlockCoder,
    media_pt: u8,
}

impl FecSender {
    pub fn new(media_pt: u8) -> Self {
        FecSender {
            // A new player's first keyframe is protected before its first receiver report.
            coder: BlockCoder::new(ProtectionLevel::default().assuming(zego_fec::INITIAL_LOSS)),
            media_pt,
        }
    }

    /// One media packet as forwarded (extended sequence number, timestamp, marker, payload), in the player's
    /// numbering. Returns the repair packets that are due (see [`BlockCoder::on_media`]).
    pub fn on_media(
        &mut self,
        seq: u64,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Vec<Repair> {
        let media = self.coder.active().then(|| Media {
            seq: seq as u16,
            payload_type: self.media_pt,
            marker,
            timestamp,
            payload: Bytes::copy_from_slice(payload),
        });
        self.coder.on_media(seq, media)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Two receiver reports of 10% loss, without a queue: protection on.
    fn lossy_level() -> ProtectionLevel {
        let mut level = ProtectionLevel::default();
        let now = Instant::now();
        for n in 0..2 {
            level.report(
                now + Duration::from_secs(n),
                Some(0.1),
                Some(Duration::from_millis(100)),
            );
        }
        assert!(level.active());
        level
    }

    /// A media packet as the publisher's coder takes it.
    fn coded(packet: &MediaPacket) -> Media {
        Media {
            seq: packet.seq as u16,
            payload_type: 108,
            marker: packet.marker,
            timestamp: packet.timestamp,
            payload: Bytes::copy_from_slice(&packet.payload),
        }
    }

    fn payload(i: u64) -> Vec<u8> {
        vec![i as u8; 200 + (i as usize * 37) % 900]
    }

    /// What the relay sends a player, coded and partly lost, is rebuilt by the player's decoder bit for bit.
    #[test]
    fn a_lost_packet_is_rebuilt_from_its_frame_and_repair() {
        let mut sender = FecSender::new(108);
        sender.coder.level = lossy_level();
        let mut decoder = BlockDecoder::default();
        let mut rebuilt = Vec::new();
        let mut dropped = Vec::new();
        for frame in 0..4u64 {
            let mut repairs = Vec::new();
            for i in 0..9u64 {
                let seq = 1000 + frame * 9 + i;
                let ts = 3000 * frame as u32;
                repairs.extend(sender.on_media(seq, ts, i == 8, &payload(seq)));
                if i == 1 || i == 4 || i == 8 {
                    dropped.push(seq as u16);
                    continue;
                }
                rebuilt.extend(decoder.on_media(Media {
                    seq: seq as u16,
                    payload_type: 108,
                    marker: i == 8,
                    timestamp: ts,
                    payload: Bytes::from(payload(seq)),
                }));
            }
            assert_eq!(
                repairs.len(),
                4,
                "four repair packets after each frame's marker"
            );
            for repair in repairs {
                rebuilt.extend(decoder.on_repair(&repair.payload).unwrap());
            }
        }
        assert_eq!(rebuilt.iter().map(|m| m.seq).collect::<Vec<_>>(), dropped);
        for m in &rebuilt {
            let seq = u64::from(m.seq);
            assert_eq!(&m.payload[..], &payload(seq)[..]);
            assert_eq!(m.timestamp, 3000 * ((seq - 1000) / 9) as u32);
            assert_eq!(m.payload_type, 108);
            assert_eq!(m.marker, (seq - 1000) % 9 == 8);
        }
    }

    #[test]
    fn nothing_is_coded_while_protection_is_off() {
        let mut off = FecSender::new(108);
        off.coder.level = ProtectionLevel::default();
        for seq in 0..20 {
            assert!(off.on_media(seq, 0, seq % 9 == 8, &payload(seq)).is_empty());
        }
    }

    /// A publisher's repair: lost packets come back as media the relay forwards, and their retransmissions, which
    /// str0m still asks for, are recognised.
    #[test]
    fn a_publishers_lost_packets_are_rebuilt_once() {
        let mut coder = BlockCoder::new(lossy_level());
        let mut receiver = FecReceiver::new(0x1111, 108, 0x2222, 118);
        let now = Instant::now();
        let mut out = Vec::new();
        let packets: Vec<MediaPacket> = (0..9u64)
            .map(|i| MediaPacket {
                ssrc: 0x1111,
                seq: 70_000 + i,
                timestamp: 90,
                marker: i == 8,
                arrival: now,
                ext: ExtensionValues::default(),
                payload: Arc::from(&payload(i)[..]),
            })
            .collect();
        let repairs: Vec<Repair> = packets
            .iter()
            .flat_map(|p| coder.on_media(p.seq, Some(coded(p))))
            .collect();
        receiver.on_repair(&repairs[0].payload, now, &mut out);
        for p in packets.iter().filter(|p| p.seq != 70_003) {
            assert!(receiver.on_media(p, &mut out));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, 70_003);
        assert_eq!(&out[0].payload[..], &packets[3].payload[..]);
        assert!(
            !receiver.on_media(&packets[3], &mut Vec::new()),
            "its retransmission is dropped"
        );
        assert!(receiver.is_repair(0x2222, 118));
        assert!(!receiver.is_repair(0x1111, 118));
        receiver.on_repair(b"not a repair packet", now, &mut out);
        assert_eq!(out.len(), 1);
    }

    /// A block whose media arrived before its repair packets, while the repair stream was idle (the decoder had
    /// no copy): the repair rebuilds nothing the relay already forwarded.
    #[test]
    fn media_that_arrived_before_the_repair_stream_is_not_rebuilt() {
        let mut coder = BlockCoder::new(lossy_level());
        let mut receiver = FecReceiver::new(0x1111, 108, 0x2222, 118);
        let now = Instant::now();
        let packet = MediaPacket {
            ssrc: 0x1111,
            seq: 51_143,
            timestamp: 3000,
            marker: true,
            arrival: now,
            ext: ExtensionValues::default(),
            payload: Arc::from(&payload(7)[..]),
        };
        let repairs = coder.on_media(packet.seq, Some(coded(&packet)));
        assert!(!repairs.is_empty(), "a one-packet frame is protected");
        let mut out = Vec::new();
        assert!(receiver.on_media(&packet, &mut out));
        for repair in &repairs {
            receiver.on_repair(&repair.payload, now, &mut out);
        }
        let rebuilt: Vec<u64> = out.iter().map(|p| p.seq).collect();
        assert!(rebuilt.is_empty(), "rebuilt {rebuilt:?}, which arrived");
        assert_eq!(receiver.rebuilt_count, 0);
    }
}
