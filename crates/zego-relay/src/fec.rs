//! Forward error correction towards one player: FlexFEC-03 repair packets over the video the relay forwards, on a
//! repair SSRC announced with `a=ssrc-group:FEC-FR`, in an amount that follows the player's loss.
//!
//! A NACK repairs a loss in one round trip; a repair packet repairs it as soon as the rest of its group has
//! arrived. Repair packets cost bandwidth on every frame, so they are sent only while the player's receiver
//! reports show loss, and never while its round trip is inflated: loss with a queue behind it is congestion, and
//! redundancy would feed it. The coding itself is `rtc-interceptor`'s draft-03 encoder (interleaved masks: with k
//! repair packets over a frame of n, repair packet i covers media packets i, i+k, i+2k, ..., so each group
//! survives one loss).
//!
//! FlexFEC protects everything after the fixed 12-byte RTP header, header extensions included, and a player XORs
//! the packets it received. So the relay codes its packets with the extension block they carry on the wire, which
//! it reads (in the clear, SRTP encrypts only the payload) from the first video packet it sends, and which stays
//! the same for the session: forwarded video carries exactly one extension, the MID, on every packet.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_interceptor::FlexFec03Encoder;
use rtc_rtp::header::{Extension, Header};
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::Unmarshal;

/// Below this reported loss no repair packets are sent.
const LOSS_OFF: f32 = 0.01;
/// Protection starts once the reported loss reaches this.
const LOSS_ON: f32 = 0.02;
/// Repair packets per media packet, as a multiple of the loss: two groups per expected loss.
const LOSS_TO_RATIO: f32 = 2.0;
/// At most this many repair packets per media packet.
const MAX_RATIO: f32 = 0.5;
/// A round trip this much above the smallest seen means packets queue: no redundancy then.
const QUEUE_RTT_EXCESS: Duration = Duration::from_millis(40);
/// How long queueing or a loss report counts after it was seen.
const MEMORY: Duration = Duration::from_secs(5);
/// The smallest round trip is forgotten this slowly (a route can get longer for good).
const MIN_RTT_WINDOW: Duration = Duration::from_secs(30);
/// Protection starts after this many receiver reports in a row show loss and no queue: the report that first shows
/// a bottleneck's drops can still carry a round trip measured before its queue filled.
const REPORTS_TO_START: u32 = 2;
/// A block is closed at this many packets even without a marker.
const MAX_BLOCK: usize = 48;

/// How many repair packets a block of media gets, from the player's receiver reports.
#[derive(Debug, Default)]
pub(crate) struct ProtectionLevel {
    /// Repair packets per media packet in force.
    ratio: f32,
    /// The losses reported within [`MEMORY`], oldest first.
    losses: VecDeque<(Instant, f32)>,
    /// The last time the round trip showed a queue.
    queued_at: Option<Instant>,
    min_rtt: Option<(Duration, Instant)>,
    /// Receiver reports in a row with loss above the start threshold and no queue.
    lossy_reports: u32,
}

impl ProtectionLevel {
    /// One receiver-report summary: the fraction of packets lost (before any repair at the player) and the round
    /// trip, either of which may be unknown.
    pub fn report(&mut self, now: Instant, loss: Option<f32>, rtt: Option<Duration>) {
        if let Some(rtt) = rtt {
            match self.min_rtt {
                Some((min, at)) if rtt > min && now.duration_since(at) < MIN_RTT_WINDOW => {}
                _ => self.min_rtt = Some((rtt, now)),
            }
            if self
                .min_rtt
                .is_some_and(|(min, _)| rtt > min + QUEUE_RTT_EXCESS)
            {
                self.queued_at = Some(now);
            }
        }
        let loss = loss.filter(|l| l.is_finite()).map(|l| l.clamp(0.0, 1.0));
        if let Some(loss) = loss {
            self.losses.push_back((now, loss));
        }
        while self
            .losses
            .front()
            .is_some_and(|&(at, _)| now.duration_since(at) >= MEMORY)
        {
            self.losses.pop_front();
        }

        let recent = |at: Option<Instant>| at.is_some_and(|at| now.duration_since(at) < MEMORY);
        let queued = recent(self.queued_at);
        if let Some(reported) = loss {
            self.lossy_reports = if !queued && reported >= LOSS_ON {
                self.lossy_reports + 1
            } else {
                0
            };
        }
        let loss = self.losses.iter().map(|&(_, l)| l).fold(0.0, f32::max);
        let keeps = self.ratio > 0.0 && loss >= LOSS_OFF;
        let starts = self.lossy_reports >= REPORTS_TO_START && loss >= LOSS_ON;
        self.ratio = if !queued && (keeps || starts) {
            (loss * LOSS_TO_RATIO).min(MAX_RATIO)
        } else {
            0.0
        };
    }

    /// Repair packets for a block of `media` packets.
    pub fn repair_packets(&self, media: usize) -> usize {
        if self.ratio <= 0.0 || media == 0 {
            return 0;
        }
        ((media as f32 * self.ratio).ceil() as usize).clamp(1, media)
    }

    pub fn active(&self) -> bool {
        self.ratio > 0.0
    }
}

/// One repair packet, ready for the repair stream.
#[derive(Debug)]
pub(crate) struct RepairPacket {
    /// Extended sequence number on the repair stream.
    pub seq: u64,
    pub timestamp: u32,
    pub payload: Arc<[u8]>,
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
    encoder: FlexFec03Encoder,
    media_ssrc: u32,
    media_pt: u8,
    /// Learnt from the first media packet sent; nothing is coded before.
    wire: Option<Option<WireExtensions>>,
    /// Consecutive packets of the frame being forwarded.
    block: Vec<Packet>,
    /// The newest media sequence number forwarded.
    newest: Option<u64>,
    next_seq: u64,
    pub level: ProtectionLevel,
}

impl FecSender {
    pub fn new(repair_pt: u8, repair_ssrc: u32, media_ssrc: u32, media_pt: u8) -> Self {
        let first = u64::from(rand::random::<u16>() & 0x3FFF);
        FecSender {
            encoder: FlexFec03Encoder::new(repair_pt, repair_ssrc)
                .with_base_sequence_number(first as u16),
            media_ssrc,
            media_pt,
            wire: None,
            block: Vec::new(),
            newest: None,
            next_seq: first,
            level: ProtectionLevel::default(),
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
    /// that are due: at the end of a frame, when a block is full, and for a packet that arrives after newer ones (a
    /// repair from upstream, on the critical path of its frame: it gets one repair packet of its own).
    pub fn on_media(
        &mut self,
        seq: u64,
        timestamp: u32,
        marker: bool,
        plain: bool,
        payload: &[u8],
    ) -> Vec<RepairPacket> {
        let late = self.newest.is_some_and(|newest| seq <= newest);
        if !late {
            self.newest = Some(seq);
        }
        let Some(wire) = self.wire.as_ref().filter(|_| self.level.active()) else {
            self.block.clear();
            return Vec::new();
        };
        if !plain {
            return if late { Vec::new() } else { self.flush() };
        }
        let (extension, extension_profile, extensions) = match wire {
            Some(w) => (true, w.profile, w.extensions.clone()),
            None => (false, 0, Vec::new()),
        };
        let packet = Packet {
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
        };
        if late {
            return self.encode(&[packet]);
        }

        let mut out = Vec::new();
        let continues = self.block.last().is_some_and(|last| {
            last.header.sequence_number.wrapping_add(1) == packet.header.sequence_number
                && last.header.timestamp == timestamp
        });
        if !continues && !self.block.is_empty() {
            out.extend(self.flush());
        }
        self.block.push(packet);
        if marker || self.block.len() >= MAX_BLOCK {
            out.extend(self.flush());
        }
        out
    }

    fn flush(&mut self) -> Vec<RepairPacket> {
        let block = std::mem::take(&mut self.block);
        let out = self.encode(&block);
        self.block = block;
        self.block.clear();
        out
    }

    fn encode(&mut self, media: &[Packet]) -> Vec<RepairPacket> {
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
                RepairPacket {
                    seq,
                    timestamp: repair.header.timestamp,
                    payload: Arc::from(&repair.payload[..]),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_interceptor::FlexFec03Decoder;

    const MEDIA_SSRC: u32 = 0x1111;
    const REPAIR_SSRC: u32 = 0x2222;

    fn lossy_level() -> ProtectionLevel {
        let mut level = ProtectionLevel::default();
        let now = Instant::now();
        for n in 0..REPORTS_TO_START {
            level.report(
                now + Duration::from_secs(u64::from(n)),
                Some(0.1),
                Some(Duration::from_millis(100)),
            );
        }
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
        sender.level = lossy_level();
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

    #[test]
    fn no_loss_means_no_repair_packets() {
        let mut level = ProtectionLevel::default();
        level.report(Instant::now(), Some(0.0), Some(Duration::from_millis(50)));
        assert!(!level.active());
        assert_eq!(level.repair_packets(9), 0);
        level.report(Instant::now(), Some(0.015), Some(Duration::from_millis(50)));
        assert!(!level.active(), "1.5% is below the threshold to start");
    }

    #[test]
    fn repair_packets_follow_the_loss() {
        let level = lossy_level();
        assert_eq!(level.repair_packets(9), 2, "10% loss: 20% repair");
        let mut heavy = ProtectionLevel::default();
        heavy.report(Instant::now(), Some(0.45), None);
        assert_eq!(heavy.repair_packets(9), 0, "one lossy report is not enough");
        heavy.report(Instant::now(), Some(0.45), None);
        assert_eq!(heavy.repair_packets(9), 5, "capped at half");
        assert_eq!(heavy.repair_packets(1), 1);
    }

    #[test]
    fn loss_at_a_filling_bottleneck_never_starts_protection() {
        // The first report after a cap shows its drops with a round trip from before the queue.
        let start = Instant::now();
        let mut level = ProtectionLevel::default();
        level.report(start, Some(0.0), Some(Duration::from_millis(5)));
        level.report(
            start + Duration::from_secs(1),
            Some(0.4),
            Some(Duration::from_millis(8)),
        );
        assert!(!level.active());
        level.report(
            start + Duration::from_secs(2),
            Some(0.3),
            Some(Duration::from_millis(90)),
        );
        assert!(!level.active());
        level.report(
            start + Duration::from_secs(3),
            Some(0.3),
            Some(Duration::from_millis(95)),
        );
        assert!(!level.active());
    }

    #[test]
    fn a_queue_turns_protection_off_for_a_while() {
        let start = Instant::now();
        let mut level = ProtectionLevel::default();
        level.report(start, Some(0.1), Some(Duration::from_millis(100)));
        level.report(start, Some(0.1), Some(Duration::from_millis(100)));
        assert!(level.active());
        let later = start + Duration::from_secs(1);
        level.report(later, Some(0.1), Some(Duration::from_millis(200)));
        assert!(!level.active(), "loss with a queue is congestion");
        level.report(
            later + Duration::from_secs(2),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        assert!(!level.active(), "the queue is remembered");
        level.report(
            later + Duration::from_secs(6),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        level.report(
            later + Duration::from_secs(7),
            Some(0.1),
            Some(Duration::from_millis(100)),
        );
        assert!(
            level.active(),
            "lossy again, without a queue, for two reports"
        );
    }

    #[test]
    fn protection_holds_between_reports_and_ends_after_quiet() {
        let start = Instant::now();
        let mut level = ProtectionLevel::default();
        level.report(start, Some(0.1), None);
        level.report(start, Some(0.1), None);
        level.report(start + Duration::from_secs(1), Some(0.0), None);
        assert!(
            level.active(),
            "a clean second inside the memory keeps the peak"
        );
        level.report(start + Duration::from_secs(6), Some(0.0), None);
        assert!(!level.active());
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
    fn a_late_packet_gets_a_repair_packet_of_its_own() {
        let mut sender = sender();
        assert!(sender
            .on_media(10, 0, false, true, &payload(10)[..])
            .is_empty());
        assert!(
            sender.on_media(12, 0, false, true, &payload(12)[..]).len() == 1,
            "the gap closes the first run"
        );
        let late = sender.on_media(11, 0, false, true, &payload(11)[..]);
        assert_eq!(late.len(), 1);
        let mut decoder = FlexFec03Decoder::new(REPAIR_SSRC, MEDIA_SSRC);
        let packet = Packet {
            header: Header {
                version: 2,
                payload_type: 118,
                sequence_number: late[0].seq as u16,
                timestamp: 0,
                ssrc: REPAIR_SSRC,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(&late[0].payload),
        };
        let rebuilt = decoder.decode(packet);
        assert_eq!(rebuilt.len(), 1);
        assert_eq!(rebuilt[0].header.sequence_number, 11);
        assert_eq!(rebuilt[0].payload, payload(11));
    }

    #[test]
    fn nothing_is_coded_while_protection_is_off_or_the_wire_form_unknown() {
        let mut unknown = FecSender::new(118, REPAIR_SSRC, MEDIA_SSRC, 108);
        unknown.level = lossy_level();
        let mut off = sender();
        off.level = ProtectionLevel::default();
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
