//! The media wire contract: what the SDK and the relay agree on for every RTP packet, defined once.
//!
//! Payload types and clock rates are fixed by the SDK's offers and accepted from any peer by the relay; the H.264
//! format is the one both sides negotiate (constrained baseline, level 3.1, non-interleaved packetization).

pub mod h264;
pub mod sei;
pub mod seq;
pub mod timestamp;

/// H.264 video.
pub const H264_PAYLOAD_TYPE: u8 = 108;
/// Retransmissions (RFC 4588) of the H.264 stream.
pub const H264_RTX_PAYLOAD_TYPE: u8 = 109;
/// Opus audio.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Retransmissions (RFC 4588) of the Opus stream, between the SDK and the relay.
pub const OPUS_RTX_PAYLOAD_TYPE: u8 = 110;
/// Repair packets (zego-fec's `flexfec-rs`), on the video m-line.
pub const FEC_PAYLOAD_TYPE: u8 = 118;

/// The RTP clock of video (every video format).
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// The RTP clock of Opus (always 48 kHz, whatever the sampling rate).
pub const AUDIO_CLOCK_RATE: u32 = 48_000;

/// Constrained baseline (0x42, constraint flags 0xe0), level 3.1 (0x1f).
pub const H264_PROFILE_LEVEL_ID: u32 = 0x42e01f;
/// The H.264 format parameters of the SDK's offers.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fmtp_names_the_profile_level_id() {
        assert!(H264_FMTP.contains(&format!("profile-level-id={H264_PROFILE_LEVEL_ID:06x}")));
    }
}
