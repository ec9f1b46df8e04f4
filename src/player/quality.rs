//! PlayerQualityUpdate every few seconds while playing: frame rates and bitrates from the player's own counters,
//! loss and round trip from webrtc's statistics, delay from the capture stamps of rendered frames.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PlayerShared;
use crate::event::{Event, PlayQuality};
use crate::transport::stats::{self, TransportStats};
use crate::transport::Peer;

pub(crate) const INTERVAL: Duration = Duration::from_secs(3);
/// How often the round trip is sampled between reports.
const RTT_INTERVAL: Duration = Duration::from_millis(500);

/// Cumulative values at one instant; a report is the difference of two.
#[derive(Default, Clone, Copy)]
struct Snapshot {
    video_frames_received: u64,
    video_frames_decoded: u64,
    video_frames_rendered: u64,
    video_bytes: u64,
    video_packets_expected: u64,
    video_packets_missed: u64,
    audio_packets: u64,
    audio_bytes: u64,
    delay_sum_us: u64,
    delay_samples: u64,
    frozen_us: u64,
}

impl Snapshot {
    fn take(shared: &PlayerShared, peer: &Peer) -> Snapshot {
        let c = &shared.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        // Counted as the packets come off the wire, before FEC or retransmissions repair them.
        let arrivals = peer.video_arrivals();
        Snapshot {
            video_frames_received: get(&c.video_frames_received),
            video_frames_decoded: get(&c.video_frames_decoded),
            video_frames_rendered: get(&c.video_frames_rendered),
            video_bytes: get(&c.video_bytes),
            video_packets_expected: get(&arrivals.expected),
            video_packets_missed: get(&arrivals.missed),
            audio_packets: get(&c.audio_packets),
            audio_bytes: get(&c.audio_bytes),
            delay_sum_us: get(&c.delay_sum_us),
            delay_samples: get(&c.delay_samples),
            frozen_us: get(&c.frozen_us),
        }
    }
}

/// Reports until aborted (the play's close).
pub(super) async fn report(peer: Arc<Peer>, shared: Arc<PlayerShared>) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    let mut before = Snapshot::take(&shared, &peer);
    let mut before_stats = stats::collect(peer.connection().as_ref()).await;
    let mut at = Instant::now();
    let mut rtt_ticker = tokio::time::interval(RTT_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = rtt_ticker.tick() => {
                // Retransmission requests are paced by the round trip: follow it closer than the reports.
                if let Some(rtt) = stats::collect(peer.connection().as_ref()).await.rtt_ms() {
                    shared.set_rtt(rtt);
                }
                continue;
            }
        }
        let now = Instant::now();
        let after = Snapshot::take(&shared, &peer);
        let after_stats = stats::collect(peer.connection().as_ref()).await;
        tracing::trace!(stream_id = %shared.stream_id, stats = ?after_stats, "transport statistics");
        let quality = compute(
            &before,
            &after,
            &before_stats,
            &after_stats,
            now.duration_since(at),
            &shared,
        );
        if let Some(rtt) = after_stats.rtt_ms() {
            shared.set_rtt(rtt);
        }
        shared.events.send(Event::PlayerQualityUpdate {
            stream_id: shared.stream_id.clone(),
            quality,
        });
        (before, before_stats, at) = (after, after_stats, now);
    }
}

fn compute(
    a: &Snapshot,
    b: &Snapshot,
    sa: &TransportStats,
    sb: &TransportStats,
    elapsed: Duration,
    shared: &PlayerShared,
) -> PlayQuality {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let kbps = |x: u64, y: u64| y.saturating_sub(x) as f64 * 8.0 / 1000.0 / secs;
    // The path's loss, before repair: video from the gaps seen as packets come off the wire, below the FEC decoder
    // (webrtc's count drops as retransmissions fill them), audio (never retransmitted) from webrtc's count.
    let audio_received = sb
        .inbound_audio
        .packets
        .saturating_sub(sa.inbound_audio.packets);
    let audio_lost = (sb.inbound_audio.packets_lost - sa.inbound_audio.packets_lost).max(0) as u64;
    let expected = b
        .video_packets_expected
        .saturating_sub(a.video_packets_expected)
        + audio_received
        + audio_lost;
    let missed = b
        .video_packets_missed
        .saturating_sub(a.video_packets_missed)
        + audio_lost;
    let loss = if expected == 0 {
        0.0
    } else {
        (missed as f64 / expected as f64).min(1.0)
    };
    let rtt_ms = sb.rtt_ms().unwrap_or(0.0);
    // Capture-to-render delay of the frames rendered in this interval (the stamp's clock is the wall clock).
    let samples = b.delay_samples.saturating_sub(a.delay_samples);
    let delay_ms = if samples > 0 {
        b.delay_sum_us.saturating_sub(a.delay_sum_us) as f64 / samples as f64 / 1000.0
    } else {
        // No stamped frame in this interval: the last one's, or for unstamped video the jitter buffer's depth.
        let c = &shared.counters;
        match c.last_delay_us.load(Ordering::Relaxed) {
            0 => c.playout_delay_us.load(Ordering::Relaxed) as f64 / 1000.0,
            last => last as f64 / 1000.0,
        }
    };
    let frozen = b.frozen_us.saturating_sub(a.frozen_us) as f64 / 1e6;
    PlayQuality {
        video_recv_fps: rate(a.video_frames_received, b.video_frames_received),
        video_decode_fps: rate(a.video_frames_decoded, b.video_frames_decoded),
        video_render_fps: rate(a.video_frames_rendered, b.video_frames_rendered),
        video_kbps: kbps(a.video_bytes, b.video_bytes),
        video_break_rate: (frozen / secs).min(1.0),
        audio_recv_fps: rate(a.audio_packets, b.audio_packets),
        audio_kbps: kbps(a.audio_bytes, b.audio_bytes),
        rtt_ms: rtt_ms.round() as u32,
        packet_lost_rate: loss,
        delay_ms: delay_ms.round() as u32,
        level: stats::quality_level(loss, rtt_ms, delay_ms),
        total_recv_bytes: sb.inbound_video.bytes + sb.inbound_audio.bytes,
    }
}
