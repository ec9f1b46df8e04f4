//! PlayerQualityUpdate every few seconds while playing: frame rates and bitrates from the player's own counters,
//! loss and round trip from webrtc's statistics, delay from the capture stamps of rendered frames.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::render::FREEZE_THRESHOLD;
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
    audio_packets_expected: u64,
    audio_packets_missed: u64,
    audio_packets: u64,
    audio_bytes: u64,
    delay_sum_us: u64,
    delay_samples: u64,
    frozen_us: u64,
}

/// The freeze going on at `now`: the time since the last rendered frame, once past the freeze threshold.
/// Muted video renders nothing on purpose and is not frozen.
fn ongoing_freeze_us(shared: &PlayerShared, now: Instant) -> u64 {
    if shared.video_muted.load(Ordering::Relaxed) {
        return 0;
    }
    match *shared.counters.last_render.lock() {
        Some(last) if now.duration_since(last) > FREEZE_THRESHOLD => {
            now.duration_since(last).as_micros() as u64
        }
        _ => 0,
    }
}

/// The level a freeze alone deserves: a stream that showed video and rendered nothing in the interval is the
/// worst (4, "die"), whatever the network says; shorter freezes cost levels by the share of time they took.
fn freeze_level(break_rate: f64, frames_rendered: u64, shows_video: bool) -> i32 {
    if !shows_video {
        return 0;
    }
    match break_rate {
        _ if frames_rendered == 0 => 4,
        r if r >= 0.5 => 3,
        r if r >= 0.2 => 2,
        r if r >= 0.05 => 1,
        _ => 0,
    }
}

impl Snapshot {
    fn take(shared: &PlayerShared, peer: &Peer, now: Instant) -> Snapshot {
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
            audio_packets_expected: get(&c.audio_packets_expected),
            audio_packets_missed: get(&c.audio_packets_missed),
            audio_packets: get(&c.audio_packets),
            audio_bytes: get(&c.audio_bytes),
            delay_sum_us: get(&c.delay_sum_us),
            delay_samples: get(&c.delay_samples),
            // A freeze is added to the counter when it ends; until then it is counted here.
            frozen_us: get(&c.frozen_us) + ongoing_freeze_us(shared, now),
        }
    }
}

/// Reports until aborted (the play's close).
pub(super) async fn report(peer: Arc<Peer>, shared: Arc<PlayerShared>) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    let mut at = Instant::now();
    let mut before = Snapshot::take(&shared, &peer, at);
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
        let after = Snapshot::take(&shared, &peer, now);
        let after_stats = stats::collect(peer.connection().as_ref()).await;
        tracing::trace!(stream_id = %shared.stream_id, stats = ?after_stats, "transport statistics");
        let quality = compute(
            &before,
            &after,
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
        (before, at) = (after, now);
    }
}

fn compute(
    a: &Snapshot,
    b: &Snapshot,
    sb: &TransportStats,
    elapsed: Duration,
    shared: &PlayerShared,
) -> PlayQuality {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let kbps = |x: u64, y: u64| y.saturating_sub(x) as f64 * 8.0 / 1000.0 / secs;
    // The path's loss, before repair: counted from the gaps seen as packets come off the wire (video below the FEC
    // decoder; webrtc's own count drops as retransmissions fill them).
    let expected = b
        .video_packets_expected
        .saturating_sub(a.video_packets_expected)
        + b.audio_packets_expected
            .saturating_sub(a.audio_packets_expected);
    let missed = b
        .video_packets_missed
        .saturating_sub(a.video_packets_missed)
        + b.audio_packets_missed
            .saturating_sub(a.audio_packets_missed);
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
    let break_rate = (frozen / secs).min(1.0);
    let frames_rendered = b
        .video_frames_rendered
        .saturating_sub(a.video_frames_rendered);
    let shows_video =
        shared.render_first.load(Ordering::Relaxed) && !shared.video_muted.load(Ordering::Relaxed);
    PlayQuality {
        video_recv_fps: rate(a.video_frames_received, b.video_frames_received),
        video_decode_fps: rate(a.video_frames_decoded, b.video_frames_decoded),
        video_render_fps: rate(a.video_frames_rendered, b.video_frames_rendered),
        video_kbps: kbps(a.video_bytes, b.video_bytes),
        video_break_rate: break_rate,
        audio_recv_fps: rate(a.audio_packets, b.audio_packets),
        audio_kbps: kbps(a.audio_bytes, b.audio_bytes),
        rtt_ms: rtt_ms.round() as u32,
        packet_lost_rate: loss,
        delay_ms: delay_ms.round() as u32,
        level: stats::quality_level(loss, rtt_ms, delay_ms).max(freeze_level(
            break_rate,
            frames_rendered,
            shows_video,
        )),
        total_recv_bytes: sb.inbound_video.bytes + sb.inbound_audio.bytes,
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::event::CallbackThread;

    fn shared(events: &CallbackThread) -> PlayerShared {
        PlayerShared::new("s", events.sender())
    }

    /// A clean network (no loss, no round trip, no delay) between two snapshots `INTERVAL` apart.
    fn level(shared: &PlayerShared, before: &Snapshot, after: &Snapshot) -> PlayQuality {
        let stats = TransportStats::default();
        compute(before, after, &stats, INTERVAL, shared)
    }

    #[test]
    fn a_frozen_stream_is_the_worst_level() {
        let mut callbacks = CallbackThread::start(Arc::new(|_: &Event| {})).unwrap();
        let shared = shared(&callbacks);
        let start = Instant::now();
        // 90 frames rendered, the last one `INTERVAL` ago; nothing since.
        shared.render_first.store(true, Ordering::Relaxed);
        shared
            .counters
            .video_frames_rendered
            .store(90, Ordering::Relaxed);
        *shared.counters.last_render.lock() = Some(start);
        let before = Snapshot {
            video_frames_rendered: 90,
            ..Snapshot::default()
        };
        let after = Snapshot {
            video_frames_rendered: 90,
            frozen_us: ongoing_freeze_us(&shared, start + INTERVAL),
            ..Snapshot::default()
        };
        let quality = level(&shared, &before, &after);
        assert_eq!(quality.video_render_fps, 0.0);
        assert_eq!(quality.level, 4, "{quality:?}");
        assert!(quality.video_break_rate > 0.99, "{quality:?}");

        // Smooth video on the same clean network is excellent.
        let smooth = Snapshot {
            video_frames_rendered: 180,
            ..Snapshot::default()
        };
        assert_eq!(level(&shared, &before, &smooth).level, 0);

        // Muted video renders nothing on purpose.
        shared.video_muted.store(true, Ordering::Relaxed);
        assert_eq!(level(&shared, &before, &before).level, 0);
        callbacks.stop();
    }

    #[test]
    fn freezes_cost_levels_by_their_share_of_time() {
        assert_eq!(freeze_level(0.0, 90, true), 0);
        assert_eq!(freeze_level(0.1, 80, true), 1);
        assert_eq!(freeze_level(0.3, 60, true), 2);
        assert_eq!(freeze_level(0.6, 30, true), 3);
        assert_eq!(freeze_level(1.0, 0, true), 4);
        // Audio-only, or video not shown yet: a freeze is not a thing.
        assert_eq!(freeze_level(0.0, 0, false), 0);
    }
}
