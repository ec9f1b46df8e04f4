//! The SDK's H.264 (`zego_rtp::H264_FMTP`) and Opus as `webrtc` crate codecs, media engines and local tracks, so a
//! test peer offers the formats the relay forwards.

use std::sync::Arc;
use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::MediaEngine;

/// The payload type of H.264 in the test peers' offers.
pub const H264_PAYLOAD_TYPE: u8 = 102;

/// A codec as the media engine takes it, without RTCP feedback.
pub fn codec(mime_type: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime_type.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The SDK's H.264.
pub fn h264() -> RTCRtpCodec {
    codec(
        MIME_TYPE_H264,
        zego_rtp::VIDEO_CLOCK_RATE,
        0,
        zego_rtp::H264_FMTP,
    )
}

/// The SDK's Opus: stereo, with in-band FEC.
pub fn opus() -> RTCRtpCodec {
    codec(
        MIME_TYPE_OPUS,
        zego_rtp::AUDIO_CLOCK_RATE,
        2,
        "minptime=10;useinbandfec=1",
    )
}

/// A media engine with these codecs and no others, registered in order.
pub fn media_engine(codecs: &[(RTCRtpCodec, u8, RtpCodecKind)]) -> MediaEngine {
    let mut media = MediaEngine::default();
    for (codec, payload_type, kind) in codecs {
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec.clone(),
                    payload_type: *payload_type,
                },
                *kind,
            )
            .unwrap();
    }
    media
}

/// A media engine with H.264 and Opus.
pub fn sdk_media_engine() -> MediaEngine {
    media_engine(&[
        (h264(), H264_PAYLOAD_TYPE, RtpCodecKind::Video),
        (opus(), zego_rtp::OPUS_PAYLOAD_TYPE, RtpCodecKind::Audio),
    ])
}

/// A track that sends `codec` with `ssrc`.
pub fn local_track(
    kind: RtpCodecKind,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> Arc<TrackLocalStaticSample> {
    Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                format!("stream-{kind}"),
                format!("track-{kind}-{ssrc}"),
                format!("label-{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            ),
        )
        .unwrap(),
    )
}
