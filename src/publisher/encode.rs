//! The video encode thread: newest captured frame -> encode size -> H.264 -> the sending task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use zego_media::stamp::{self, Stamp};
use zego_media::{H264Config, H264Encoder};

use super::scale::scale_i420;
use super::{EncodedSample, Shared};
use crate::config::VideoConfig;

/// The encoder settings a video config asks for.
pub(super) fn h264_config(cfg: &VideoConfig) -> H264Config {
    H264Config {
        width: cfg.encode_width,
        height: cfg.encode_height,
        fps: cfg.fps as f32,
        bitrate_bps: cfg.bitrate_kbps * 1000,
        keyframe_interval: cfg.keyframe_interval_s * cfg.fps,
    }
}

/// Frames that were due between two sent frames but not sent (dropped or muted), from their capture times, so
/// the RTP timestamps keep following real time.
pub(super) fn frames_skipped(previous_us: Option<u64>, current_us: u64, period: Duration) -> u16 {
    let Some(previous) = previous_us else {
        return 0;
    };
    let period_us = period.as_micros().max(1) as u64;
    let gap = current_us.saturating_sub(previous);
    let periods = (gap + period_us / 2) / period_us;
    periods.saturating_sub(1).min(u64::from(u16::MAX)) as u16
}

pub(super) fn run(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut encoder: Option<H264Encoder> = None;
    let mut last_sent_capture_us: Option<u64> = None;
    while !stop.load(Ordering::Acquire) {
        let Some(captured) = shared.frames.take(super::capture::IDLE) else {
            continue;
        };
        let Some(sink) = shared.sink.lock().as_ref().map(|s| s.video.clone()) else {
            // Not publishing: the next publish starts with a fresh encoder (and so a keyframe).
            encoder = None;
            last_sent_capture_us = None;
            continue;
        };
        if shared.video_muted.load(Ordering::Relaxed) {
            continue;
        }
        let cfg = shared.settings.lock().video;
        let want = h264_config(&cfg);
        let reuse = encoder.as_ref().is_some_and(|e| {
            let have = e.config();
            (have.width, have.height, have.fps, have.keyframe_interval)
                == (want.width, want.height, want.fps, want.keyframe_interval)
        });
        if !reuse {
            // A new size or frame rate takes a new encoder, whose first frame is a keyframe.
            match H264Encoder::new(want) {
                Ok(e) => encoder = Some(e),
                Err(e) => {
                    tracing::error!(channel = ?shared.channel, "cannot create the H.264 encoder: {e}");
                    encoder = None;
                    continue;
                }
            }
        }
        let Some(enc) = encoder.as_mut() else {
            continue;
        };
        if enc.config().bitrate_bps != want.bitrate_bps {
            enc.set_bitrate(want.bitrate_bps);
        }
        let source = &captured.frame;
        let scaled;
        let frame = if (source.width, source.height) != (want.width, want.height) {
            let mut f = scale_i420(source, want.width, want.height);
            if captured.stamped {
                // Redrawn at the encode size so the blocks stay crisp for the reader.
                stamp::draw(
                    &mut f,
                    Stamp {
                        capture_time_us: source.capture_time_us,
                        frame_number: source.frame_number,
                    },
                );
            }
            scaled = f;
            &scaled
        } else {
            source.as_ref()
        };
        let force_keyframe = shared.keyframe_requested.swap(false, Ordering::AcqRel);
        match enc.encode(frame, force_keyframe) {
            Ok(Some(encoded)) => {
                shared
                    .counters
                    .video_encoded
                    .fetch_add(1, Ordering::Relaxed);
                let period = Duration::from_secs_f64(1.0 / f64::from(cfg.fps.max(1)));
                let skipped = frames_skipped(last_sent_capture_us, frame.capture_time_us, period);
                last_sent_capture_us = Some(frame.capture_time_us);
                let sample = EncodedSample {
                    data: Bytes::from(encoded.data),
                    duration: period,
                    skipped,
                    keyframe: encoded.keyframe,
                };
                if sink.send(sample).is_err() {
                    tracing::debug!("the video sender is gone");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(channel = ?shared.channel, "encoding failed, starting a new encoder: {e}");
                encoder = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_frames_follow_capture_time() {
        let p = Duration::from_millis(50);
        assert_eq!(frames_skipped(None, 1_000_000, p), 0);
        assert_eq!(frames_skipped(Some(1_000_000), 1_050_000, p), 0);
        assert_eq!(frames_skipped(Some(1_000_000), 1_048_000, p), 0);
        assert_eq!(frames_skipped(Some(1_000_000), 1_200_000, p), 3);
        assert_eq!(frames_skipped(Some(2_000_000), 1_000_000, p), 0);
    }

    #[test]
    fn the_keyframe_interval_is_counted_in_frames() {
        let cfg = VideoConfig {
            fps: 30,
            keyframe_interval_s: 2,
            bitrate_kbps: 800,
            ..VideoConfig::default()
        };
        let h = h264_config(&cfg);
        assert_eq!(
            (h.keyframe_interval, h.bitrate_bps, h.fps),
            (60, 800_000, 30.0)
        );
    }
}
