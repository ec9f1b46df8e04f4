//! The codec stages on their own, in this process, one frame at a time: what each costs per frame on this
//! machine. These are the floor under the end-to-end latency and the bulk of the publisher's and player's CPU.

use std::time::Instant;

use serde::Serialize;
use zego_media::codec::h264::H264Config;
use zego_media::{stamp, H264Decoder, H264Encoder, SyntheticCamera};

use crate::scenario::Video;
use crate::stats::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct CodecCost {
    pub video: Video,
    pub frames: usize,
    /// Drawing the synthetic picture and its stamp.
    pub capture_ms: Summary,
    /// OpenH264, one thread, the SDK's real-time settings.
    pub encode_ms: Summary,
    pub decode_ms: Summary,
    /// Reading the stamp back from the decoded picture.
    pub stamp_read_ms: Summary,
    /// Encoded size at the nominal frame rate.
    pub encoded_kbps: f64,
    pub keyframe_bytes: usize,
    /// Decoded pictures whose stamp read back exactly.
    pub stamps_read: usize,
}

/// Encodes and decodes `frames` synthetic pictures at `video`'s settings, timing every stage. Frames carry
/// capture times spaced at the nominal rate so the encoder's rate control sees the real frame interval.
pub fn measure(video: Video, frames: usize) -> Result<CodecCost, String> {
    let mut camera = SyntheticCamera::new(video.width, video.height);
    let config = H264Config {
        keyframe_interval: video.fps * 2,
        ..H264Config::new(
            video.width,
            video.height,
            video.fps as f32,
            video.bitrate_kbps * 1000,
        )
    };
    let mut encoder = H264Encoder::new(config).map_err(|e| format!("encoder: {e}"))?;
    let mut decoder = H264Decoder::new().map_err(|e| format!("decoder: {e}"))?;
    let base_us = crate::proto::now_us();
    let interval_us = 1_000_000 / u64::from(video.fps.max(1));

    let (mut capture, mut encode, mut decode, mut read) = (vec![], vec![], vec![], vec![]);
    let mut bytes = 0usize;
    let mut keyframe_bytes = 0usize;
    let mut stamps_read = 0usize;
    for i in 0..frames as u64 {
        let capture_time = base_us + i * interval_us;
        let t0 = Instant::now();
        let picture = camera.frame(capture_time, i);
        let t1 = Instant::now();
        let encoded = encoder
            .encode(&picture, false)
            .map_err(|e| format!("encode: {e}"))?;
        let t2 = Instant::now();
        let Some(encoded) = encoded else { continue };
        bytes += encoded.data.len();
        if encoded.keyframe {
            keyframe_bytes = keyframe_bytes.max(encoded.data.len());
        }
        let decoded = decoder
            .decode(&encoded.data)
            .map_err(|e| format!("decode: {e}"))?;
        let t3 = Instant::now();
        let Some(decoded) = decoded else { continue };
        let stamp = stamp::read(&decoded);
        let t4 = Instant::now();
        if stamp.is_some_and(|s| s.capture_time_us == capture_time && s.frame_number == i) {
            stamps_read += 1;
        }
        // The first frame initialises the codecs; it is not what a running stream pays.
        if i > 0 {
            let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1000.0;
            capture.push(ms(t0, t1));
            encode.push(ms(t1, t2));
            decode.push(ms(t2, t3));
            read.push(ms(t3, t4));
        }
    }
    let none = || format!("no frames were encoded at {}x{}", video.width, video.height);
    Ok(CodecCost {
        video,
        frames,
        capture_ms: Summary::of(&capture).ok_or_else(none)?,
        encode_ms: Summary::of(&encode).ok_or_else(none)?,
        decode_ms: Summary::of(&decode).ok_or_else(none)?,
        stamp_read_ms: Summary::of(&read).ok_or_else(none)?,
        encoded_kbps: (bytes as f64 * 8.0 / (frames as f64 / f64::from(video.fps)) / 1000.0)
            .round(),
        keyframe_bytes,
        stamps_read,
    })
}
