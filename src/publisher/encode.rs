//! The video encode thread: newest captured frame -> encode size -> H.264 -> the sending task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zego_media::stamp::{self, Stamp};
use zego_media::{H264Config, H264Encoder};

use super::scale::scale_i420;
use super::{EncodedSample, Shared};
use crate::config::VideoConfig;
use crate::transport::congestion::audio_wire_bps;

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

/// Whether the encoder should take a new bitrate: the estimate moves a little with every feedback report, and
/// the encoder's rate control settles better on fewer, larger steps. Reaching the configured bitrate always counts.
pub(super) fn bitrate_worth_changing(have: u32, want: u32, configured: u32) -> bool {
    if have == want {
        return false;
    }
    want == configured || f64::from(have.abs_diff(want)) > f64::from(have) * 0.05
}

/// The interval from the previous sent frame to this one, by capture time (one frame period for the first): the
/// RTP clock's step, see [`super::EncodedSample::duration`].
pub(super) fn capture_interval(
    previous_us: Option<u64>,
    current_us: u64,
    period: Duration,
) -> Duration {
    match previous_us {
        Some(previous) if current_us > previous => {
            Duration::from_micros(current_us - previous).min(MAX_CLOCK_STEP)
        }
        _ => period,
    }
}

/// A longer pause (a stalled source) does not move the RTP clock further: the receiver resynchronizes anyway.
const MAX_CLOCK_STEP: Duration = Duration::from_secs(5);

/// Keeps what the encoder produces within its target while congestion control limits it: OpenH264 without frame
/// skipping overshoots a low target (and a keyframe is several frames' worth), so frames are left out while the
/// output is ahead of the target by more than `MAX_AHEAD`. The RTP timestamps follow capture time regardless.
#[derive(Debug, Default)]
pub(super) struct FrameDropper {
    /// Bits produced beyond the target, leaking at the target rate.
    ahead_bits: f64,
    last_us: Option<u64>,
}

impl FrameDropper {
    const MAX_AHEAD: Duration = Duration::from_millis(250);

    /// Whether to leave out the frame captured at `capture_us` under a `target_bps` budget.
    pub fn skip(&mut self, capture_us: u64, target_bps: u32) -> bool {
        let elapsed_s = self
            .last_us
            .map_or(0.0, |last| capture_us.saturating_sub(last) as f64 / 1e6);
        self.last_us = Some(capture_us);
        let target = f64::from(target_bps);
        self.ahead_bits = (self.ahead_bits - elapsed_s * target).max(0.0);
        self.ahead_bits > target * Self::MAX_AHEAD.as_secs_f64()
    }

    pub fn encoded(&mut self, bytes: usize) {
        self.ahead_bits += bytes as f64 * 8.0;
    }

    pub fn reset(&mut self) {
        *self = FrameDropper::default();
    }
}

pub(super) fn run(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut encoder: Option<H264Encoder> = None;
    let mut last_sent_capture_us: Option<u64> = None;
    let mut dropper = FrameDropper::default();
    while !stop.load(Ordering::Acquire) {
        let Some(captured) = shared.frames.take(super::capture::IDLE) else {
            continue;
        };
        let Some((sink, control)) = shared
            .sink
            .lock()
            .as_ref()
            .map(|s| (s.video.clone(), s.encoder.clone()))
        else {
            // Not publishing: the next publish starts with a fresh encoder (and so a keyframe).
            encoder = None;
            last_sent_capture_us = None;
            dropper.reset();
            continue;
        };
        if shared.video_muted.load(Ordering::Relaxed) {
            continue;
        }
        let (cfg, audio_kbps) = {
            let settings = shared.settings.lock();
            (settings.video, settings.audio.bitrate_kbps)
        };
        let audio_kbps = audio_kbps.max(shared.audio_fec_kbps.load(Ordering::Relaxed));
        let mut want = h264_config(&cfg);
        want.bitrate_bps =
            control.video_bitrate(want.bitrate_bps, audio_wire_bps(audio_kbps), Instant::now());
        let limited = want.bitrate_bps < cfg.bitrate_kbps * 1000;
        if dropper.skip(captured.frame.capture_time_us, want.bitrate_bps) && limited {
            shared
                .counters
                .video_dropped
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
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
        if bitrate_worth_changing(
            enc.config().bitrate_bps,
            want.bitrate_bps,
            cfg.bitrate_kbps * 1000,
        ) {
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
        let force_keyframe = control.take_keyframe_request();
        match enc.encode(frame, force_keyframe) {
            Ok(Some(encoded)) => {
                let mut data = encoded.data;
                if let Some(units) = shared.sei.lock().take() {
                    data = zego_rtp::sei::insert_before_first_slice(&data, &units);
                }
                dropper.encoded(data.len());
                shared
                    .counters
                    .video_encoded
                    .fetch_add(1, Ordering::Relaxed);
                let period = Duration::from_secs_f64(1.0 / f64::from(cfg.fps.max(1)));
                let duration =
                    capture_interval(last_sent_capture_us, frame.capture_time_us, period);
                last_sent_capture_us = Some(frame.capture_time_us);
                let sample = EncodedSample {
                    data: Bytes::from(data),
                    duration,
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
    fn the_rtp_clock_steps_by_the_capture_interval() {
        let p = Duration::from_millis(50);
        let ms = Duration::from_millis;
        assert_eq!(capture_interval(None, 1_000_000, p), p);
        assert_eq!(capture_interval(Some(1_000_000), 1_048_000, p), ms(48));
        // Three frames dropped: the clock jumps over them, and no sequence number is spent on them.
        assert_eq!(capture_interval(Some(1_000_000), 1_200_000, p), ms(200));
        assert_eq!(capture_interval(Some(2_000_000), 1_000_000, p), p);
        assert_eq!(capture_interval(Some(0), 60_000_000, p), MAX_CLOCK_STEP);
    }

    #[test]
    fn frames_are_left_out_while_the_output_runs_ahead_of_the_target() {
        let mut d = FrameDropper::default();
        let period_us = 33_333;
        // 1 Mb/s: 250 kbit may run ahead. A 400 kbit keyframe puts the output 150 kbit too far ahead, which takes
        // 150 ms to drain.
        assert!(!d.skip(0, 1_000_000));
        d.encoded(50_000);
        let skipped: Vec<bool> = (1..=8).map(|i| d.skip(i * period_us, 1_000_000)).collect();
        assert_eq!(
            skipped,
            [true, true, true, true, false, false, false, false]
        );
        // Output at the target never skips.
        let mut d = FrameDropper::default();
        for i in 0..100u64 {
            assert!(!d.skip(i * period_us, 1_000_000));
            d.encoded(1_000_000 / 8 / 30);
        }
    }

    #[test]
    fn the_bitrate_changes_in_steps() {
        assert!(!bitrate_worth_changing(1_000_000, 1_000_000, 2_500_000));
        assert!(!bitrate_worth_changing(1_000_000, 1_030_000, 2_500_000));
        assert!(bitrate_worth_changing(1_000_000, 900_000, 2_500_000));
        assert!(bitrate_worth_changing(2_450_000, 2_500_000, 2_500_000));
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
