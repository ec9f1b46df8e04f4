//! PublisherQualityUpdate every few seconds while publishing: frame rates and bitrates from the pipeline's own
//! counters; uplink loss from the relay's transport-wide feedback, which names every packet that did not arrive
//! (its receiver reports count a packet repaired by retransmission as received, so they show ~0% on a lossy
//! uplink); round trip from RTCP; the encoder's bitrate after congestion control.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::event::{Event, PublishQuality};
use crate::transport::stats::{self, TransportStats};
use crate::transport::{EncoderControl, Peer};

pub(crate) const INTERVAL: Duration = Duration::from_secs(3);

#[derive(Default, Clone, Copy)]
struct Snapshot {
    video_captured: u64,
    video_encoded: u64,
    video_sent: u64,
    video_sent_bytes: u64,
    audio_captured: u64,
    audio_sent: u64,
    audio_sent_bytes: u64,
}

impl Snapshot {
    fn take(shared: &Shared) -> Snapshot {
        let c = &shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            video_captured: get(&c.video_captured),
            video_encoded: get(&c.video_encoded),
            video_sent: get(&c.video_sent),
            video_sent_bytes: get(&c.video_sent_bytes),
            audio_captured: get(&c.audio_captured),
            audio_sent: get(&c.audio_sent),
            audio_sent_bytes: get(&c.audio_sent_bytes),
        }
    }
}

/// Reports until aborted (the transport's close).
pub(super) async fn report(
    peer: Arc<Peer>,
    encoder: Arc<EncoderControl>,
    shared: Arc<Shared>,
    stream_id: String,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    let congestion = encoder.congestion();
    let mut before = Snapshot::take(&shared);
    let mut before_feedback = congestion.feedback();
    let mut at = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let after = Snapshot::take(&shared);
        let after_feedback = congestion.feedback();
        let transport = stats::collect(peer.connection().as_ref()).await;
        let target_kbps = congestion.encoder_bps() as f64 / 1000.0;
        let uplink_loss = after_feedback.loss_since(&before_feedback);
        let quality = compute(
            &before,
            &after,
            &transport,
            uplink_loss,
            now.duration_since(at),
            target_kbps,
        );
        tracing::debug!(
            ?shared.channel,
            video_kbps = quality.video_kbps.round(),
            target_kbps = quality.target_bitrate_kbps.round(),
            estimate_kbps = (congestion.target_bps(now) / 1000.0).round(),
            loss = quality.packet_lost_rate,
            rtx_dropped = congestion.rtx_dropped(),
            "publish quality"
        );
        shared.events.send(Event::PublisherQualityUpdate {
            stream_id: stream_id.clone(),
            quality,
        });
        (before, before_feedback, at) = (after, after_feedback, now);
    }
}

/// `uplink_loss`: the share of packets the relay's feedback reported lost over the interval, when it reported any.
fn compute(
    a: &Snapshot,
    b: &Snapshot,
    t: &TransportStats,
    uplink_loss: Option<f64>,
    elapsed: Duration,
    target_kbps: f64,
) -> PublishQuality {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let kbps = |x: u64, y: u64| y.saturating_sub(x) as f64 * 8.0 / 1000.0 / secs;
    let rtt_ms = t.rtt_ms().unwrap_or(0.0);
    let loss = uplink_loss
        .or(t.outbound_video.remote_fraction_lost)
        .or(t.outbound_audio.remote_fraction_lost)
        .unwrap_or(0.0);
    PublishQuality {
        video_capture_fps: rate(a.video_captured, b.video_captured),
        video_encode_fps: rate(a.video_encoded, b.video_encoded),
        video_send_fps: rate(a.video_sent, b.video_sent),
        video_kbps: kbps(a.video_sent_bytes, b.video_sent_bytes),
        audio_capture_fps: rate(a.audio_captured, b.audio_captured),
        audio_send_fps: rate(a.audio_sent, b.audio_sent),
        audio_kbps: kbps(a.audio_sent_bytes, b.audio_sent_bytes),
        rtt_ms: rtt_ms.round() as u32,
        packet_lost_rate: loss,
        level: stats::quality_level(loss, rtt_ms, 0.0),
        total_send_bytes: t.outbound_video.bytes + t.outbound_audio.bytes,
        target_bitrate_kbps: target_kbps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_interval() {
        let a = Snapshot {
            video_captured: 10,
            video_sent_bytes: 0,
            audio_sent: 0,
            ..Default::default()
        };
        let b = Snapshot {
            video_captured: 55,
            video_sent_bytes: 225_000,
            audio_sent: 150,
            ..Default::default()
        };
        let mut t = TransportStats::default();
        t.outbound_video.remote_rtt_s = Some(0.004);
        t.outbound_video.remote_fraction_lost = Some(0.02);
        let q = compute(&a, &b, &t, None, Duration::from_secs(3), 600.0);
        assert!((q.video_capture_fps - 15.0).abs() < 1e-9);
        assert!((q.video_kbps - 600.0).abs() < 1e-9);
        assert!((q.audio_send_fps - 50.0).abs() < 1e-9);
        assert_eq!(q.rtt_ms, 4);
        assert_eq!(q.level, 1);
        assert_eq!(q.target_bitrate_kbps, 600.0);
        // Transport-wide feedback, when there is some, is the truth about the uplink.
        let q = compute(&a, &b, &t, Some(0.1), Duration::from_secs(3), 600.0);
        assert_eq!(q.packet_lost_rate, 0.1);
        assert_eq!(q.level, 3);
    }
}
