//! Audio retransmissions (RFC 4588 RTX) turned back into the packets they carry.
//!
//! webrtc turns a video RTX packet back into its original, but finds the original's payload type only through an
//! RTX format of the video MIME type (`video/rtx`), while the relay's answer names audio's `audio/rtx` (and the
//! formats are matched by their full MIME type). So for audio this stage does it, on the way in and below the
//! player's NACK requester and jitter buffer: the RTX payload is the original sequence number (OSN) and the
//! original payload; the packet leaves with the original's SSRC, payload type and sequence number.

use std::collections::{HashMap, VecDeque};

use rtc::interceptor::{Packet, StreamInfo, TaggedPacket};

use super::read_tap::Stage;

/// The stream an RTX SSRC repairs.
#[derive(Debug, Clone, Copy)]
struct Repairs {
    rtx_pt: u8,
    ssrc: u32,
    pt: u8,
}

#[derive(Default)]
pub(crate) struct AudioRtx {
    /// By RTX SSRC.
    streams: HashMap<u32, Repairs>,
}

impl Stage for AudioRtx {
    fn on_read(&mut self, mut msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        let Packet::Rtp(rtp) = &mut msg.message.packet else {
            out.push_back(msg);
            return;
        };
        let Some(repairs) = self.streams.get(&rtp.header.ssrc).copied() else {
            out.push_back(msg);
            return;
        };
        if rtp.header.payload_type != repairs.rtx_pt || rtp.payload.len() <= 2 {
            // Padding (a bandwidth probe) or something else on the RTX SSRC: nothing to play.
            return;
        }
        let osn = u16::from_be_bytes([rtp.payload[0], rtp.payload[1]]);
        rtp.payload = rtp.payload.slice(2..);
        rtp.header.ssrc = repairs.ssrc;
        rtp.header.payload_type = repairs.pt;
        rtp.header.sequence_number = osn;
        out.push_back(msg);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        let audio = info.mime_type.to_ascii_lowercase().starts_with("audio/");
        if let (true, Some(rtx_ssrc), Some(rtx_pt)) = (audio, info.ssrc_rtx, info.payload_type_rtx)
        {
            self.streams.insert(
                rtx_ssrc,
                Repairs {
                    rtx_pt,
                    ssrc: info.ssrc,
                    pt: info.payload_type,
                },
            );
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx_ssrc) = info.ssrc_rtx {
            if self
                .streams
                .get(&rtx_ssrc)
                .is_some_and(|r| r.ssrc == info.ssrc)
            {
                self.streams.remove(&rtx_ssrc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::read_tap::PassThrough;
    use bytes::Bytes;
    use rtc::interceptor::{AttributedPacket, Interceptor};
    use rtc::rtp::header::Header;
    use rtc::rtp::packet::Packet as RtpPacket;
    use rtc::sansio::Protocol;
    use std::time::Instant;

    fn read(
        stage: &mut PassThrough<AudioRtx>,
        ssrc: u32,
        pt: u8,
        seq: u16,
        payload: &[u8],
    ) -> Vec<RtpPacket> {
        let packet = RtpPacket {
            header: Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: 960,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        stage
            .handle_read(TaggedPacket {
                now: Instant::now(),
                transport: Default::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .unwrap();
        std::iter::from_fn(|| stage.poll_read())
            .map(|m| match m.message.packet {
                Packet::Rtp(p) => p,
                _ => panic!("only RTP expected"),
            })
            .collect()
    }

    fn audio(ssrc_rtx: Option<u32>) -> StreamInfo {
        StreamInfo {
            ssrc: 1000,
            ssrc_rtx,
            payload_type: 111,
            payload_type_rtx: ssrc_rtx.map(|_| 110),
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            channels: 2,
            ..Default::default()
        }
    }

    #[test]
    fn an_audio_retransmission_becomes_the_packet_it_carries() {
        let mut stage = PassThrough::new(AudioRtx::default());
        stage.bind_remote_stream(&audio(Some(2000)));
        let out = read(&mut stage, 2000, 110, 7, &[0x12, 0x34, 0xAA, 0xBB]);
        assert_eq!(out.len(), 1);
        let h = &out[0].header;
        assert_eq!(
            (h.ssrc, h.payload_type, h.sequence_number),
            (1000, 111, 0x1234)
        );
        assert_eq!(&out[0].payload[..], &[0xAA, 0xBB]);
        // Media passes as it is; padding on the RTX SSRC goes no further.
        assert_eq!(
            read(&mut stage, 1000, 111, 9, &[1, 2, 3])[0]
                .header
                .sequence_number,
            9
        );
        assert!(read(&mut stage, 2000, 110, 8, &[0x12, 0x35]).is_empty());
    }

    #[test]
    fn video_and_unknown_streams_are_left_to_webrtc() {
        let mut stage = PassThrough::new(AudioRtx::default());
        let mut video = audio(Some(2000));
        video.mime_type = "video/H264".into();
        stage.bind_remote_stream(&video);
        stage.bind_remote_stream(&audio(None));
        let out = read(&mut stage, 2000, 110, 7, &[0x12, 0x34, 0xAA]);
        assert_eq!(out[0].header.ssrc, 2000, "untouched");
        stage.bind_remote_stream(&audio(Some(2000)));
        stage.unbind_remote_stream(&audio(Some(2000)));
        assert_eq!(
            read(&mut stage, 2000, 110, 7, &[0x12, 0x34, 0xAA])[0]
                .header
                .ssrc,
            2000
        );
    }
}
