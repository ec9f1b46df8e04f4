//! Repair packets for a publisher's video on a lossy uplink.
//!
//! A NACK repairs an uplink loss in a round trip to the publisher; a repair packet lets the relay rebuild it as
//! soon as enough of the frame's packets arrive. The relay takes them when its answer names `flexfec-rs` on the
//! video m-line; webrtc then binds the video stream with the repair SSRC of the offer's `a=ssrc-group:FEC-FR`,
//! which is what turns this on. Coding and the amount are `zego-fec`'s: Reed-Solomon over frame-aligned blocks
//! (covering what the relay forwards, not the header extensions, which are only stamped below this slot), as many
//! repair packets as the loss the relay's transport-wide feedback shows calls for, and none while the congestion
//! controller sees a queue (loss at a bottleneck is congestion, and redundancy would add to it).
//!
//! It sits at webrtc's FEC encoder slot: above the pacer, the transport-wide numbering and the send history, so
//! repair packets are paced, numbered and counted by the bandwidth estimate like any other; above the NACK
//! responder, so it never sees retransmissions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{AttributedPacket, Packet, StreamInfo, TaggedPacket};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet as RtpPacket;
use zego_fec::{BlockCoder, ProtectionLevel};

use super::congestion::{CongestionState, FeedbackCounters};
use super::fec_receiver::media_of;
use super::read_tap::Stage;

/// How often the feedback's loss is summed up for the protection level.
const REPORT_INTERVAL: Duration = Duration::from_millis(500);
/// The share of frames the uplink's repair may leave to NACK: a quarter of the relay's towards a player, because
/// every player inherits what the uplink loses (and waits a round trip to the publisher for it), while the uplink's
/// repair packets are paid for once.
const UPLINK_RESIDUAL: f64 = zego_fec::DEFAULT_RESIDUAL / 4.0;

/// One protected video stream.
struct Protected {
    coder: BlockCoder,
    repair_ssrc: u32,
    repair_pt: u8,
    media_pt: u8,
    /// The newest media sequence number, extended.
    newest: Option<u64>,
}

impl Protected {
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = zego_rtp::seq::extend(self.newest, seq);
        self.newest = Some(self.newest.map_or(ext, |n| n.max(ext)));
        ext
    }
}

pub(crate) struct FecSender {
    state: Arc<CongestionState>,
    /// Keyed by the media SSRC.
    streams: HashMap<u32, Protected>,
    /// Repair packets sent.
    sent: Arc<AtomicU64>,
    /// The feedback counters at the last level report.
    last_report: Option<(Instant, FeedbackCounters)>,
}

impl FecSender {
    pub fn new(state: Arc<CongestionState>, sent: Arc<AtomicU64>) -> FecSender {
        FecSender {
            state,
            streams: HashMap::new(),
            sent,
            last_report: None,
        }
    }

    /// Every [`REPORT_INTERVAL`]: the uplink loss since the last report, and whether the estimate shows a queue.
    fn report(&mut self, now: Instant) {
        let feedback = self.state.feedback();
        let Some((at, before)) = self.last_report else {
            self.last_report = Some((now, feedback));
            return;
        };
        if now.duration_since(at) < REPORT_INTERVAL {
            return;
        }
        self.last_report = Some((now, feedback));
        let loss = feedback.loss_since(&before).map(|l| l as f32);
        let queued = self.state.pacing();
        for stream in self.streams.values_mut() {
            let level = &mut stream.coder.level;
            let was = level.active();
            if queued {
                level.report_queue(now);
            } else {
                level.report(now, loss, None);
            }
            if level.active() != was {
                tracing::debug!(
                    ?loss,
                    queued,
                    "FEC on the uplink {}",
                    if was { "stops" } else { "starts" }
                );
            }
        }
    }
}

impl Stage for FecSender {
    fn on_write(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        let Packet::Rtp(rtp) = &msg.message.packet else {
            out.push_back(msg);
            return;
        };
        if !self.streams.is_empty() {
            self.report(msg.now);
        }
        let (now, transport) = (msg.now, msg.transport);
        let ssrc = rtp.header.ssrc;
        let Some(stream) = self.streams.get_mut(&ssrc) else {
            out.push_back(msg);
            return;
        };
        let seq = stream.extend(rtp.header.sequence_number);
        let protected = (stream.coder.active()
            && rtp.header.payload_type == stream.media_pt
            && !rtp.header.padding)
            .then(|| media_of(rtp));
        let repairs = stream.coder.on_media(seq, protected);
        // The media packet leaves first; its repair packets protect what has already gone.
        out.push_back(msg);
        for repair in repairs {
            let packet = RtpPacket {
                header: Header {
                    version: 2,
                    payload_type: stream.repair_pt,
                    sequence_number: repair.seq as u16,
                    timestamp: repair.timestamp,
                    ssrc: stream.repair_ssrc,
                    ..Default::default()
                },
                payload: repair.payload,
            };
            self.sent.fetch_add(1, Ordering::Relaxed);
            out.push_back(TaggedPacket {
                now,
                transport,
                message: AttributedPacket::new(Packet::Rtp(packet)),
            });
        }
    }

    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if let (Some(repair_ssrc), Some(repair_pt)) = (info.ssrc_fec, info.payload_type_fec) {
            tracing::debug!(
                media = info.ssrc,
                repair = repair_ssrc,
                "the relay takes repair packets: the uplink video can be protected"
            );
            self.streams.insert(
                info.ssrc,
                Protected {
                    // The first keyframe is protected before the relay's first feedback.
                    coder: BlockCoder::new(
                        ProtectionLevel::with_residual(UPLINK_RESIDUAL)
                            .assuming(zego_fec::INITIAL_LOSS),
                    ),
                    repair_ssrc,
                    repair_pt,
                    media_pt: info.payload_type,
                    newest: None,
                },
            );
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
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
    use zego_fec::BlockDecoder;

    fn media(seq: u16, ts: u32, marker: bool) -> RtpPacket {
        RtpPacket {
            header: Header {
                version: 2,
                marker,
                payload_type: zego_rtp::H264_PAYLOAD_TYPE,
                sequence_number: seq,
                timestamp: ts,
                ssrc: MEDIA,
                // What webrtc's sender adds above this slot; the uplink's repair does not cover it.
                extension: true,
                extension_profile: 0xBEDE,
                extensions: vec![rtc::rtp::header::Extension {
                    id: 4,
                    payload: Bytes::from_static(b"0"),
                }],
                ..Default::default()
            },
            payload: Bytes::from(vec![seq as u8; 300 + usize::from(seq % 7) * 100]),
        }
    }

    fn write(
        sender: &mut PassThrough<FecSender>,
        packet: RtpPacket,
        now: Instant,
    ) -> Vec<RtpPacket> {
        sender
            .handle_write(TaggedPacket {
                now,
                transport: Default::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .unwrap();
        std::iter::from_fn(|| sender.poll_write())
            .map(|m| match m.message.packet {
                Packet::Rtp(p) => p,
                _ => panic!("only RTP expected"),
            })
            .collect()
    }

    /// Feeds 3 s of 9-packet frames with the feedback showing 10% loss, and checks that once protection is on (two
    /// lossy reports, half a second apart) the relay's decoder rebuilds every dropped packet from the plain form.
    #[test]
    fn a_lossy_uplink_gets_repair_packets_the_relay_can_use() {
        let state = CongestionState::new(2_500_000, 64_000, Instant::now());
        let sent = Arc::new(AtomicU64::new(0));
        let mut sender = PassThrough::new(FecSender::new(state.clone(), sent.clone()));
        sender.bind_local_stream(&protected_stream());
        let start = Instant::now();
        let mut decoder = BlockDecoder::default();
        let mut dropped = Vec::new();
        let mut rebuilt = Vec::new();
        for frame in 0..90u16 {
            let now = start + Duration::from_millis(u64::from(frame) * 33);
            state.count_feedback(100, 90);
            for i in 0..9u16 {
                let seq = 65_000u16.wrapping_add(frame * 9 + i);
                let out = write(
                    &mut sender,
                    media(seq, u32::from(frame) * 3000, i == 8),
                    now,
                );
                assert_eq!(
                    out[0].header.sequence_number, seq,
                    "the media packet goes first"
                );
                for packet in out {
                    if packet.header.ssrc == MEDIA {
                        if i == 3 && frame % 2 == 0 {
                            dropped.push(seq);
                            continue;
                        }
                        rebuilt.extend(decoder.on_media(media_of(&packet)));
                    } else {
                        assert_eq!(packet.header.ssrc, REPAIR);
                        assert_eq!(packet.header.payload_type, 118);
                        rebuilt.extend(decoder.on_repair(&packet.payload).unwrap());
                    }
                }
            }
        }
        assert!(
            sent.load(Ordering::Relaxed) > 0,
            "10% loss turns protection on"
        );
        let rebuilt: Vec<u16> = rebuilt.iter().map(|p| p.seq).collect();
        // Protection is on after the report at one second (frame 31).
        let after_start = &dropped[dropped.len() / 2..];
        assert!(
            after_start.iter().all(|s| rebuilt.contains(s)),
            "rebuilt {rebuilt:?} of {dropped:?}"
        );
        assert!(rebuilt.iter().all(|s| dropped.contains(s)));
    }

    #[test]
    fn a_clean_uplink_or_a_stream_without_a_repair_ssrc_gets_none_after_the_first_report() {
        let state = CongestionState::new(2_500_000, 64_000, Instant::now());
        let sent = Arc::new(AtomicU64::new(0));
        let mut sender = PassThrough::new(FecSender::new(state.clone(), sent.clone()));
        sender.bind_local_stream(&StreamInfo {
            ssrc: MEDIA,
            payload_type: zego_rtp::H264_PAYLOAD_TYPE,
            ..Default::default()
        });
        let start = Instant::now();
        for n in 0..300u16 {
            state.count_feedback(10, 10);
            let out = write(
                &mut sender,
                media(n, u32::from(n / 9) * 3000, n % 9 == 8),
                start + Duration::from_millis(u64::from(n) * 4),
            );
            assert_eq!(out.len(), 1);
        }
        sender.bind_local_stream(&protected_stream());
        let mut first_report_at = None;
        for n in 300..700u16 {
            state.count_feedback(10, 10);
            let now = start + Duration::from_millis(u64::from(n) * 4);
            let out = write(
                &mut sender,
                media(n, u32::from(n / 9) * 3000, n % 9 == 8),
                now,
            );
            // Protected as if 5% were lost until the first feedback report, half a second after the first packet.
            let reported = now >= start + Duration::from_millis(300 * 4 + 500);
            if reported {
                first_report_at.get_or_insert(n);
                assert_eq!(out.len(), 1, "no loss, no repair packets");
            }
        }
        assert!(first_report_at.is_some());
        assert!(
            sent.load(Ordering::Relaxed) > 0,
            "the first frames were protected"
        );
    }
}
