//! Forward error correction on both hops of the relay (FlexFEC-03, see the `zego-fec` crate).
//!
//! From a publisher ([`FecReceiver`]): the SDK codes its video in the plain form (header without extensions), and
//! the relay rebuilds lost packets from the repair stream the offer announced with `a=ssrc-group:FEC-FR`, so a
//! lost packet is forwarded as soon as its frame's repair packets arrive instead of a round trip later.
//!
//! Towards a player ([`FecSender`]): repair packets over the video the relay forwards, on a repair SSRC announced
//! with `a=ssrc-group:FEC-FR`, in an amount that follows the player's receiver reports. FlexFEC protects everything after the fixed 12-byte RTP header, header extensions included, and a player XORs
//! the packets it received. So the relay codes its packets with the extension block they carry on the wire, which
//! it reads (in the clear, SRTP encrypts only the payload) from the first video packet it sends, and which stays
//! the same for the session: forwarded video carries exactly one extension, the MID, on every packet.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_rtp::header::{Extension, Header};
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::Unmarshal;
use str0m::rtp::ExtensionValues;
use zego_fec::{plain, BlockCoder, FlexFec03Decoder, Repair};

/// Rebuilt sequence numbers remembered, to drop their late retransmissions (str0m never saw them, and asks).
const REMEMBERED_REBUILT: usize = 512;
/// Media is handed to the decoder only this long after the last repair packet: a publisher on a clean path sends
/// none, and its packets need no copies.
const REPAIR_IDLE: Duration = Duration::from_secs(3);

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
    decoder: FlexFec03Decoder,
    media_ssrc: u32,
    media_pt: u8,
    repair_ssrc: u32,
    repair_pt: u8,
    /// The newest media sequence number, to extend the 16-bit numbers of rebuilt packets.
    newest: Option<u64>,
    /// Recently rebuilt sequence numbers.
    rebuilt: VecDeque<u64>,
    /// When the last repair packet arrived.
    last_repair: Option<Instant>,
    /// Packets rebuilt in all.
    pub rebuilt_count: u64,
}

impl FecReceiver {
    pub fn new(media_ssrc: u32, media_pt: u8, repair_ssrc: u32, repair_pt: u8) -> Self {
        FecReceiver {
            decoder: FlexFec03Decoder::new(repair_ssrc, media_ssrc),
            media_ssrc,
            media_pt,
            repair_ssrc,
            repair_pt,
            newest: None,
            rebuilt: VecDeque::with_capacity(REMEMBERED_REBUILT),
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
            return true;
        }
        let media = plain(
            self.media_ssrc,
            self.media_pt,
            packet.seq as u16,
            packet.timestamp,
            packet.marker,
            Bytes::copy_from_slice(&packet.payload),
        );
        let recovered = self.decoder.decode(media);
        self.take(recovered, packet.arrival, rebuilt);
        true
    }

    /// A repair packet (sequence number, timestamp, FlexFEC payload); rebuilt packets are added to `rebuilt`.
    pub fn on_repair(
        &mut self,
        seq: u16,
        timestamp: u32,
        payload: &[u8],
        now: Instant,
        rebuilt: &mut Vec<MediaPacket>,
    ) {
        self.last_repair = Some(now);
        let repair = plain(
            self.repair_ssrc,
            self.repair_pt,
            seq,
            timestamp,
            false,
            Bytes::copy_from_slice(payload),
        );
        let recovered = self.decoder.decode(repair);
        self.take(recovered, now, rebuilt);
    }

    fn take(&mut self, recovered: Vec<Packet>, now: Instant, out: &mut Vec<MediaPacket>) {
        for packet in recovered {
            let h = &packet.header;
            if h.ssrc != self.media_ssrc || h.payload_type != self.media_pt {
                continue;
            }
            let Some(newest) = self.newest else {
                continue;
            };
            let ahead = i64::from(h.sequence_number.wrapping_sub(newest as u16) as i16);
            let Ok(seq) = u64::try_from(newest as i64 + ahead) else {
                continue;
            };
            if self.rebuilt.len() == REMEMBERED_REBUILT {
                self.rebuilt.pop_front();
            }
            self.rebuilt.push_back(seq);
            self.newest = Some(newest.max(seq));
            self.rebuilt_count += 1;
            out.push(MediaPacket {
                ssrc: self.media_ssrc,
                seq,
                timestamp: h.timestamp,
                marker: h.marker,
                arrival: now,
                ext: ExtensionValues::default(),
                payload: Arc::from(&packet.payload[..]),
            });
        }
    }
}

/// The header extension block of the media packets as sent.
#[derive(Debug, Clone)]
struct WireExtensions {
    profile: u16,
    extensions: Vec<Extension>,
}

/// The repair stream of one player's video.
#[derive(Debug)]
pub(crate) struct FecSender {
    pub coder: BlockCoder,
    media_ssrc: u32,
    media_pt: u8,
    /// Learnt from the first media packet sent; nothing is coded before.
    wire: Option<Option<WireExtensions>>,
}

impl FecSender {
    pub fn new(repair_pt: u8, repair_ssrc: u32, media_ssrc: u32, media_pt: u8) -> Self {
        FecSender {
            coder: BlockCoder::new(repair_pt, repair_ssrc),
            media_ssrc,
            media_pt,
            wire: None,
        }
    }

    /// Whether the wire form of the media packets is known yet.
    pub fn knows_wire_form(&self) -> bool {
        self.wire.is_some()
    }

    /// The RTP header (fixed part, CSRCs and extension block, all sent in the clear) of a media packet as it left.
    pub fn learn_wire_form(&mut self, header: &[u8]) {
        let mut buf = header;
        match Header::unmarshal(&mut buf) {
            Ok(h) if h.ssrc == self.media_ssrc && h.csrc.is_empty() => {
                self.wire = Some(h.extension.then_some(WireExtensions {
                    profile: h.extension_profile,
                    extensions: h.extensions,
                }));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("cannot read the header of a sent video packet: {e}"),
        }
    }

    /// One media packet as forwarded (extended sequence number, timestamp, marker, payload); `plain` when it carries
    /// only the extension block every packet carries (one with more is not protected). Returns the repair packets
    /// that are due (see [`BlockCoder::on_media`]).
    pub fn on_media(
        &mut self,
        seq: u64,
        timestamp: u32,
        marker: bool,
        plain: bool,
        payload: &[u8],
    ) -> Vec<Repair> {
        let Some(wire) = self.wire.as_ref() else {
            return Vec::new();
        };
        let packet = (plain && self.coder.active()).then(|| {
            let (extension, extension_profile, extensions) = match wire {
                Some(w) => (true, w.profile, w.extensions.clone()),
                None => (false, 0, Vec::new()),
            };
            Packet {
                header: Header {
                    version: 2,
                    marker,
                    payload_type: self.media_pt,
                    sequence_number: seq as u16,
                    timestamp,
                    ssrc: self.media_ssrc,
                    extension,
                    extension_profile,
                    extensions,
                    ..Default::default()
                },
                payload: Bytes::copy_from_slice(payload),
            }
        });
        self.coder.on_media(seq, packet)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use zego_fec::{FlexFec03Decoder, ProtectionLevel};

    const MEDIA_SSRC: u32 = 0x1111;
    const REPAIR_SSRC: u32 = 0x2222;

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

    /// A sender that has seen its first packet leave with a MID extension (id 4, "0").
    fn sender() -> FecSender {
        let mut sender = FecSender::new(118, REPAIR_SSRC, MEDIA_SSRC, 108);
        let mut header = vec![0x90, 108, 0, 1, 0, 0, 0, 0];
        header.extend_from_slice(&MEDIA_SSRC.to_be_bytes());
        header.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x40, b'0', 0, 0]);
        sender.learn_wire_form(&header);
        assert!(sender.knows_wire_form());
        sender.coder.level = lossy_level();
        sender
    }

    fn mid() -> Vec<Extension> {
        vec![Extension {
            id: 4,
            payload: Bytes::from_static(b"0"),
        }]
    }

    fn payload(i: u64) -> Bytes {
        Bytes::from(vec![i as u8; 200 + (i as usize * 37) % 900])
    }

    /// Sends frames through the sender, drops packets, and checks the draft-03 decoder rebuilds them bit for bit.
    #[test]
    fn a_lost_packet_is_rebuilt_from_its_frame_and_repair() {
        let mut sender = sender();
        let mut decoder = FlexFec03Decoder::new(REPAIR_SSRC, MEDIA_SSRC);
        let mut recovered = Vec::new();
        let mut dropped = Vec::new();
        for frame in 0..4u64 {
            let mut repairs = Vec::new();
            for i in 0..9u64 {
                let seq = 1000 + frame * 9 + i;
                let ts = 3000 * frame as u32;
                let marker = i == 8;
                repairs.extend(sender.on_media(seq, ts, marker, true, &payload(seq)[..]));
                // The second and fifth packet of every frame are lost: one in each of the two groups.
                if i == 1 || i == 4 {
                    dropped.push(seq);
                    continue;
                }
                let media = Packet {
                    header: Header {
                        version: 2,
                        marker,
                        payload_type: 108,
                        sequence_number: seq as u16,
                        timestamp: ts,
                        ssrc: MEDIA_SSRC,
                        extension: true,
                        extension_profile: 0xBEDE,
                        extensions: mid(),
                        ..Default::default()
                    },
                    payload: payload(seq),
                };
                recovered.extend(decoder.decode(media));
            }
            assert_eq!(
                repairs.len(),
                2,
                "two repair packets after each frame's marker"
            );
            for repair in repairs {
                let packet = Packet {
                    header: Header {
                        version: 2,
                        payload_type: 118,
                        sequence_number: repair.seq as u16,
                        timestamp: repair.timestamp,
                        ssrc: REPAIR_SSRC,
                        ..Default::default()
                    },
                    payload: Bytes::copy_from_slice(&repair.payload),
                };
                recovered.extend(decoder.decode(packet));
            }
        }
        let mut got: Vec<u64> = recovered
            .iter()
            .map(|p| u64::from(p.header.sequence_number))
            .collect();
        got.sort_unstable();
        assert_eq!(got, dropped);
        for p in &recovered {
            let seq = u64::from(p.header.sequence_number);
            assert_eq!(p.payload, payload(seq));
            assert_eq!(p.header.timestamp, 3000 * ((seq - 1000) / 9) as u32);
            assert_eq!(p.header.payload_type, 108);
            assert_eq!(
                p.header.extensions,
                mid(),
                "rebuilt with its extension block"
            );
        }
    }

    #[test]
    fn nothing_is_coded_while_protection_is_off_or_the_wire_form_unknown() {
        let mut unknown = FecSender::new(118, REPAIR_SSRC, MEDIA_SSRC, 108);
        unknown.coder.level = lossy_level();
        let mut off = sender();
        off.coder.level = ProtectionLevel::default();
        for seq in 0..20 {
            assert!(unknown
                .on_media(seq, 0, seq % 9 == 8, true, &payload(seq)[..])
                .is_empty());
        }
        for seq in 0..20 {
            assert!(off
                .on_media(seq, 0, seq % 9 == 8, true, &payload(seq)[..])
                .is_empty());
        }
    }

    #[test]
    fn a_header_of_another_stream_teaches_nothing() {
        let mut sender = FecSender::new(118, REPAIR_SSRC, MEDIA_SSRC, 108);
        let mut header = vec![0x80, 108, 0, 1, 0, 0, 0, 0];
        header.extend_from_slice(&REPAIR_SSRC.to_be_bytes());
        sender.learn_wire_form(&header);
        assert!(!sender.knows_wire_form());
        sender.learn_wire_form(&[0x80, 1]);
        assert!(!sender.knows_wire_form());
    }
}
