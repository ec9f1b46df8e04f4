//! The sending side on the runtime: encoded samples -> RTP (webrtc packetizes), and keyframe requests back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rtc::media::Sample;
use tokio::sync::mpsc::UnboundedReceiver;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::{EncodedSample, Shared};
use crate::transport::{is_keyframe_request, EncoderControl};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Video,
    Audio,
}

/// Writes samples to the track until the encoder side hangs up (the transport closed).
pub(super) async fn send(
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    kind: Kind,
    mut samples: UnboundedReceiver<EncodedSample>,
    shared: Arc<Shared>,
) {
    let c = &shared.counters;
    while let Some(s) = samples.recv().await {
        let bytes = s.data.len() as u64;
        let sample = Sample {
            data: s.data,
            duration: s.duration,
            ..Sample::new(Instant::now())
        };
        match track
            .sample_writer(ssrc, payload_type)
            .write_sample(&sample)
            .await
        {
            Ok(()) => {
                let (frames, total) = match kind {
                    Kind::Video => (&c.video_sent, &c.video_sent_bytes),
                    Kind::Audio => (&c.audio_sent, &c.audio_sent_bytes),
                };
                frames.fetch_add(1, Ordering::Relaxed);
                total.fetch_add(bytes, Ordering::Relaxed);
                if s.keyframe {
                    tracing::trace!(channel = ?shared.channel, bytes, "keyframe sent");
                }
            }
            Err(e) => {
                tracing::debug!(channel = ?shared.channel, ?kind, "cannot send a sample: {e}")
            }
        }
    }
}

/// Turns the relay's PLI/FIR on the video track into a keyframe from the encoder.
pub(super) async fn keyframe_requests(
    track: Arc<TrackLocalStaticSample>,
    encoder: Arc<EncoderControl>,
    shared: Arc<Shared>,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
            tracing::debug!(channel = ?shared.channel, "keyframe requested");
            shared
                .counters
                .keyframes_requested
                .fetch_add(1, Ordering::Relaxed);
            encoder.request_keyframe();
        }
    }
}
