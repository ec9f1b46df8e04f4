//! The publishing transport's one input to the video encoder: the bitrate the path allows and whether the next
//! frame must be a keyframe. The transport owns it; the encoder thread only reads it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::congestion::CongestionState;

pub(crate) struct EncoderControl {
    congestion: Arc<CongestionState>,
    keyframe: AtomicBool,
}

impl EncoderControl {
    /// A control for a new transport: its first frame is a keyframe.
    pub fn new(congestion: Arc<CongestionState>) -> EncoderControl {
        EncoderControl {
            congestion,
            keyframe: AtomicBool::new(true),
        }
    }

    /// The relay (a player's PLI or FIR) asked for a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Release);
    }

    /// Whether the frame about to be encoded must be a keyframe; a request is answered once.
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe.swap(false, Ordering::AcqRel)
    }

    /// The video bitrate for a frame encoded at `now` from a stream configured at `configured_video_bps`, with
    /// `audio_bps` of audio beside it on the wire.
    pub fn video_bitrate(&self, configured_video_bps: u32, audio_bps: u32, now: Instant) -> u32 {
        self.congestion
            .video_bitrate(configured_video_bps, audio_bps, now)
    }

    /// The estimate behind the bitrate, for the quality reports.
    pub fn congestion(&self) -> &CongestionState {
        &self.congestion
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_frame_and_each_request_are_keyframes_once() {
        let now = Instant::now();
        let control = EncoderControl::new(CongestionState::new(1_000_000, 68_000, now));
        assert!(
            control.take_keyframe_request(),
            "a new transport starts with one"
        );
        assert!(!control.take_keyframe_request());
        control.request_keyframe();
        control.request_keyframe();
        assert!(control.take_keyframe_request());
        assert!(
            !control.take_keyframe_request(),
            "requests before a keyframe are one"
        );
    }

    #[test]
    fn the_bitrate_follows_the_estimate() {
        let now = Instant::now();
        let state = CongestionState::new(2_500_000, 68_000, now);
        let control = EncoderControl::new(state.clone());
        assert_eq!(control.video_bitrate(2_500_000, 68_000, now), 2_500_000);
        state.set_receiver_estimate(1_000_000.0, now);
        assert_eq!(control.video_bitrate(2_500_000, 68_000, now), 632_000);
        assert_eq!(control.congestion().encoder_bps(), 632_000);
    }
}
