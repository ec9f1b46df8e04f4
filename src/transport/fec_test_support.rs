//! What the FEC interceptors' tests share: one video stream protected by a repair stream.

use rtc::interceptor::StreamInfo;

pub(crate) const MEDIA: u32 = 0x10;
pub(crate) const REPAIR: u32 = 0x20;

/// The video stream (payload type 108) with its repair stream (payload type 118), as webrtc binds it.
pub(crate) fn protected_stream() -> StreamInfo {
    StreamInfo {
        ssrc: MEDIA,
        ssrc_fec: Some(REPAIR),
        payload_type: zego_rtp::H264_PAYLOAD_TYPE,
        payload_type_fec: Some(118),
        ..Default::default()
    }
}
