//! Rebuilds a played stream's lost video packets from the relay's repair stream (`zego-fec`), in the interceptor
//! chain.
//!
//! The relay adds the repair stream when the player's offer takes `flexfec-rs` and its receiver reports show
//! loss; webrtc binds the video stream with the repair SSRC of the answer's `a=ssrc-group:FEC-FR`, which is what
//! turns this on. Repair packets are consumed here; every media packet passes on and is also kept by the decoder,
//! and a packet it rebuilds continues up the chain as if it had arrived (marked `RecoveredByFec`), so the NACK logic
//! and the frame assembler above never ask for it or wait for it.
//!
//! It sits just above the receiver reports, which therefore count the path's loss before repair: that is what the
//! relay sizes its protection by (below them, reports would show what FEC left over, and protection that works
//! would switch itself off).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{Attribute, AttributedPacket, Packet, StreamInfo, TaggedPacket};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet as RtpPacket;
use zego_fec::{BlockDecoder, Media};

use super::read_tap::Stage;

/// What the repair of a stream covers of one of its packets (for the coder of a publisher's uplink too).
pub(super) fn media_of(rtp: &RtpPacket) -> Media {
    Media {
        seq: rtp.header.sequence_number,
        payload_type: rtp.header.payload_type,
        marker: rtp.header.marker,
        timestamp: rtp.header.timestamp,
        payload: rtp.payload.clone(),
    }
}

/// The repair stream of one played video stream.
struct Protected {
    decoder: BlockDecoder,
    repair_ssrc: u32,
    repair_pt: u8,
    media_pt: u8,
}

pub(crate) struct FecReceiver {
    /// Keyed by the media SSRC.
    streams: HashMap<u32, Protected>,
    /// Repair SSRC -> media SSRC.
    repair_to_media: HashMap<u32, u32>,
    /// Media packets rebuilt.
    rebuilt: Arc<AtomicU64>,
}

impl FecReceiver {
    pub fn new(rebuilt: Arc<AtomicU64>) -> FecReceiver {
        FecReceiver {
            streams: HashMap::new(),
            repair_to_media: HashMap::new(),
            rebuilt,
        }
    }
}

impl FecReceiver {
    fn queue_rebuilt(
        &mut self,
        ssrc: u32,
        now: Instant,
        transport: rtc::shared::TransportContext,
        rebuilt: Vec<Media>,
        out: &mut VecDeque<TaggedPacket>,
    ) {
        self.rebuilt
            .fetch_add(rebuilt.len() as u64, Ordering::Relaxed);
        for media in rebuilt {
            let packet = RtpPacket {
                header: Header {
                    version: 2,
                    marker: media.marker,
                    payload_type: media.payload_type,
                    sequence_number: media.seq,
                    timestamp: media.timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload: media.payload,
            };
            let mut message = AttributedPacket::new(Packet::Rtp(packet));
            // It was never on the wire in this form: what measures the network can tell.
            message.add(Attribute::RecoveredByFec);
            out.push_back(TaggedPacket {
                now,
                transport,
                message,
            });
        }
    }
}

impl Stage for FecReceiver {
    fn on_read(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        let Packet::Rtp(rtp) = &msg.message.packet else {
            out.push_back(msg);
            return;
        };
        let ssrc = rtp.header.ssrc;
        if let Some(&media_ssrc) = self.repair_to_media.get(&ssrc) {
            let Some(stream) = self.streams.get_mut(&media_ssrc) else {
                return;
            };
            if rtp.header.payload_type != stream.repair_pt {
                return;
            }
            let rebuilt = match stream.decoder.on_repair(&rtp.payload) {
                Ok(rebuilt) => rebuilt,
                Err(e) => {
                    tracing::debug!("unusable repair packet: {e}");
                    return;
                }
            };
            self.queue_rebuilt(media_ssrc, msg.now, msg.transport, rebuilt, out);
            return;
        }
        let rebuilt = match self.streams.get_mut(&ssrc) {
            Some(stream)
                if rtp.header.payload_type == stream.media_pt && !rtp.payload.is_empty() =>
            {
                stream.decoder.on_media(media_of(rtp))
            }
            _ => Vec::new(),
        };
        let (now, transport) = (msg.now, msg.transport);
        // The packet that arrived goes first; what it completed follows.
        out.push_back(msg);
        self.queue_rebuilt(ssrc, now, transport, rebuilt, out);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let (Some(repair_ssrc), Some(repair_pt)) = (info.ssrc_fec, info.payload_type_fec) {
            tracing::debug!(
                media = info.ssrc,
                repair = repair_ssrc,
                "the relay may protect this video with repair packets"
            );
            self.streams.insert(
                info.ssrc,
                Protected {
                    decoder: BlockDecoder::default(),
                    repair_ssrc,
                    repair_pt,
                    media_pt: info.payload_type,
                },
            );
            self.repair_to_media.insert(repair_ssrc, info.ssrc);
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(stream) = self.streams.remove(&info.ssrc) {
            self.repair_to_media.remove(&stream.repair_ssrc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::fec_test_support::{protected_stream, MEDIA, REPAIR};
    use crate::transport::read_tap::PassThrough;
    use bytes::Bytes;
    use rtc::interceptor::Interceptor;
    use rtc::sansio::Protocol;
    use std::time::Duration;
    use zego_fec::{BlockCoder, ProtectionLevel};

    fn read(receiver: &mut PassThrough<FecReceiver>, packet: RtpPacket) -> Vec<(RtpPacket, bool)> {
        receiver
            .handle_read(TaggedPacket {
                now: Instant::now(),
                transport: Default::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .unwrap();
        std::iter::from_fn(|| receiver.poll_read())
            .map(|m| {
                let rebuilt = m.message.has(&Attribute::RecoveredByFec);
                match m.message.packet {
                    Packet::Rtp(p) => (p, rebuilt),
                    _ => panic!("only RTP expected"),
                }
            })
            .collect()
    }

    fn rtp(ssrc: u32, pt: u8, seq: u16, ts: u32, marker: bool, payload: Bytes) -> RtpPacket {
        RtpPacket {
            header: Header {
                version: 2,
                marker,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload,
        }
    }

    /// Frames coded as the relay codes them, two packets of each lost: every loss comes back up the chain, marked,
    /// and the repair packets never do.
    #[test]
    fn lost_video_is_rebuilt_and_repair_packets_are_consumed() {
        let rebuilt = Arc::new(AtomicU64::new(0));
        let mut receiver = PassThrough::new(FecReceiver::new(rebuilt.clone()));
        receiver.bind_remote_stream(&protected_stream());
        let mut coder = BlockCoder::new(ProtectionLevel::default());
        let now = Instant::now();
        for n in 0..2 {
            coder
                .level
                .report(now + Duration::from_secs(n), Some(0.1), None);
        }
        let mut lost = Vec::new();
        let mut got = Vec::new();
        for frame in 0..10u32 {
            let mut repairs = Vec::new();
            for i in 0..9u16 {
                let seq = ((frame * 9) as u16 + i).wrapping_add(65_500);
                let media = Media {
                    seq,
                    payload_type: zego_rtp::H264_PAYLOAD_TYPE,
                    marker: i == 8,
                    timestamp: frame * 3000,
                    payload: Bytes::from(vec![i as u8; 500 + usize::from(i) * 50]),
                };
                repairs.extend(coder.on_media(u64::from(seq) + 65_536, Some(media.clone())));
                if i == 2 || i == 8 {
                    lost.push(seq);
                    continue;
                }
                let out = read(
                    &mut receiver,
                    rtp(
                        MEDIA,
                        108,
                        seq,
                        media.timestamp,
                        media.marker,
                        media.payload,
                    ),
                );
                assert_eq!(out.len(), 1);
                assert!(!out[0].1);
            }
            for (i, r) in repairs.iter().enumerate() {
                let out = read(
                    &mut receiver,
                    rtp(REPAIR, 118, i as u16, r.timestamp, false, r.payload.clone()),
                );
                assert!(out
                    .iter()
                    .all(|(p, marked)| p.header.ssrc == MEDIA && *marked));
                got.extend(out.into_iter().map(|(p, _)| p));
            }
        }
        assert_eq!(
            got.iter()
                .map(|p| p.header.sequence_number)
                .collect::<Vec<_>>(),
            lost
        );
        assert!(got
            .iter()
            .all(|p| p.header.payload_type == zego_rtp::H264_PAYLOAD_TYPE));
        assert!(got
            .iter()
            .all(|p| p.header.marker == (p.header.sequence_number.wrapping_sub(65_500) % 9 == 8)));
        assert_eq!(rebuilt.load(Ordering::Relaxed), 20);
    }

    #[test]
    fn unbound_streams_and_garbage_pass_or_vanish_quietly() {
        let mut receiver = PassThrough::new(FecReceiver::new(Arc::new(AtomicU64::new(0))));
        let out = read(
            &mut receiver,
            rtp(MEDIA, 108, 1, 0, true, Bytes::from_static(b"x")),
        );
        assert_eq!(out.len(), 1, "no repair stream bound: media passes");
        receiver.bind_remote_stream(&protected_stream());
        assert!(read(
            &mut receiver,
            rtp(REPAIR, 118, 1, 0, false, Bytes::from_static(b"junk"))
        )
        .is_empty());
        assert!(read(&mut receiver, rtp(REPAIR, 99, 2, 0, false, Bytes::new())).is_empty());
    }
}
