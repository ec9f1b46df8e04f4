//! When to show each decoded video frame, without I/O: the adaptive part of the jitter buffer. Audio packets are
//! scheduled by the same rule (`Playout::audio`) in the audio jitter buffer (`src/player/jitter_buffer.rs`).
//!
//! Frames leave the frame assembler the moment they are complete. On a clean path that is already smooth, and
//! holding them would only add latency; on a jittery or lossy path some frames complete late (a retransmission
//! costs a round trip) and, shown on arrival, the picture stutters. So each frame's transit (arrival minus its RTP
//! time) is compared with the fastest transit of the last seconds, and frames are shown at their RTP time plus that
//! fastest transit plus a target delay: what 95% of the frames of the last 3 s needed, but never more than the
//! latest of the last 2 s. The long window keeps the target steady through rare late frames (a frame that needs two
//! repair rounds every few seconds is below its 5%), the short one brings it down as soon as the path has been
//! better for a moment. A bad stretch (the seconds of loss before the sender's FEC comes on, a burst) is forgotten
//! 3 s after it ends even while rare late frames keep the short window up. The target rises at once when the path
//! gets worse and decays slowly when it gets better; on a clean path it stays at a few milliseconds.
//!
//! Frames complete in decode order, so the frames behind a late one complete with it, all at once. They say
//! nothing about the path that the late frame did not, and counted each on its own they would make one rare late
//! frame look like a tenth of the window and hold every frame that long for seconds. So a frame completing
//! together with the one before it is shown on that schedule but left out of the statistics: a rare late frame
//! costs a short stall, and only losses that are common raise the target.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zego_rtp::VIDEO_CLOCK_RATE;

/// Transits are compared over this much recent history.
const WINDOW: Duration = Duration::from_secs(3);
/// The share of the window's frames the target delay lets through on time.
const QUANTILE: f64 = 0.95;
/// The target never exceeds what the latest frame of this recent stretch needed.
const RECENT: Duration = Duration::from_secs(2);
/// How much of the gap to a lower target is closed per frame (a time constant of about 20 frames).
const DECAY: f64 = 0.05;
/// The buffer never holds a frame longer than this; later frames are shown on arrival.
const MAX_TARGET: Duration = Duration::from_millis(400);
/// A frame completing this soon after the one before it was held behind it.
const HELD_BEHIND: Duration = Duration::from_millis(4);
/// A transit this far from the recent ones means the stream restarted (new publisher, clock jump): start over.
const RESET_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub(crate) struct Playout {
    /// The first frame's RTP timestamp (unwrapped) and arrival: the origin of media time.
    origin: Option<(i64, Instant)>,
    last_ts: i64,
    /// When the previous frame completed.
    last_arrival: Option<Instant>,
    /// (arrival, transit in ms relative to the origin) of recent frames.
    transits: VecDeque<(Instant, f64)>,
    target_ms: f64,
    /// RTP clock rate of the timestamps.
    clock_rate: u32,
    /// A frame completing this soon after the one before it was held behind it (zero: nothing is).
    held_behind: Duration,
}

impl Default for Playout {
    /// Playout of video frames (90 kHz timestamps).
    fn default() -> Self {
        Playout::video()
    }
}

impl Playout {
    /// Playout of audio packets whose RTP timestamps run at `clock_rate`. Audio packets decode on their own, so
    /// none is held behind another: packets arriving together after a stall each count with their own transit.
    pub fn audio(clock_rate: u32) -> Self {
        Playout {
            clock_rate,
            held_behind: Duration::ZERO,
            ..Playout::default()
        }
    }

    fn video() -> Self {
        Playout {
            clock_rate: VIDEO_CLOCK_RATE,
            held_behind: HELD_BEHIND,
            origin: None,
            last_ts: 0,
            last_arrival: None,
            transits: VecDeque::new(),
            target_ms: 0.0,
        }
    }

    /// The current target delay over the fastest recent frame.
    pub fn target(&self) -> Duration {
        Duration::from_secs_f64(self.target_ms / 1000.0)
    }

    /// A frame with RTP timestamp `rtp_timestamp` became complete at `arrived`: when to show it (never before
    /// `arrived`).
    pub fn schedule(&mut self, rtp_timestamp: u32, arrived: Instant) -> Instant {
        let Some((origin_ts, origin_at)) = self.origin else {
            self.restart(rtp_timestamp, arrived);
            return arrived;
        };
        let ts = self.unwrap(rtp_timestamp);
        let media_ms = (ts - origin_ts) as f64 / f64::from(self.clock_rate) * 1000.0;
        let arrival_ms = signed_ms(arrived, origin_at);
        let transit = arrival_ms - media_ms;
        let base = self
            .transits
            .iter()
            .map(|t| t.1)
            .fold(f64::INFINITY, f64::min);
        if base.is_finite() && (transit - base).abs() > RESET_AFTER.as_secs_f64() * 1000.0 {
            self.restart(rtp_timestamp, arrived);
            return arrived;
        }
        while self
            .transits
            .front()
            .is_some_and(|(at, _)| arrived.saturating_duration_since(*at) > WINDOW)
        {
            self.transits.pop_front();
        }
        let held = self
            .last_arrival
            .is_some_and(|last| arrived.saturating_duration_since(last) < self.held_behind);
        self.last_arrival = Some(arrived);
        if !held {
            self.transits.push_back((arrived, transit));
        }
        let base = self
            .transits
            .iter()
            .map(|t| t.1)
            .fold(f64::INFINITY, f64::min);

        if !held {
            let mut excess: Vec<f64> = self.transits.iter().map(|t| t.1 - base).collect();
            let recent = self
                .transits
                .iter()
                .rev()
                .take_while(|(at, _)| arrived.saturating_duration_since(*at) <= RECENT)
                .map(|t| t.1 - base)
                .fold(f64::NEG_INFINITY, f64::max);
            excess.sort_by(f64::total_cmp);
            let wanted =
                excess[((excess.len() - 1) as f64 * QUANTILE).round() as usize].min(recent);
            self.target_ms = if wanted >= self.target_ms {
                wanted
            } else {
                self.target_ms + (wanted - self.target_ms) * DECAY
            }
            .min(MAX_TARGET.as_secs_f64() * 1000.0);
        }

        tracing::trace!(
            excess_ms = transit - base,
            target_ms = self.target_ms,
            "frame transit"
        );
        let show_ms = media_ms + base + self.target_ms;
        let show_at = if show_ms >= 0.0 {
            origin_at + Duration::from_secs_f64(show_ms / 1000.0)
        } else {
            origin_at
        };
        show_at.max(arrived)
    }

    fn restart(&mut self, rtp_timestamp: u32, arrived: Instant) {
        self.last_ts = i64::from(rtp_timestamp);
        self.last_arrival = Some(arrived);
        self.origin = Some((self.last_ts, arrived));
        self.transits.clear();
        self.transits.push_back((arrived, 0.0));
    }

    /// Unwraps a 32-bit RTP timestamp to the one nearest the previous frame's.
    fn unwrap(&mut self, rtp_timestamp: u32) -> i64 {
        self.last_ts = zego_rtp::timestamp::extend(Some(self.last_ts), rtp_timestamp);
        self.last_ts
    }
}

fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64() * 1000.0
    } else {
        -(b.duration_since(a).as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_micros(33_333);
    const TICKS: u32 = 3000;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_steady_stream_is_shown_on_arrival() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        for i in 0..120u32 {
            let arrived = t0 + FRAME * i;
            let show = p.schedule((u32::MAX - 10_000).wrapping_add(i * TICKS), arrived); // wraps on the way
            assert!(show.duration_since(arrived) < ms(1), "frame {i} held");
        }
        assert!(p.target() < ms(1));
    }

    #[test]
    fn late_frames_raise_the_target_and_the_others_wait_to_stay_smooth() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        // Every tenth frame needs a retransmission and completes 80 ms late.
        let mut shown = Vec::new();
        for i in 0..90u32 {
            let late = if i % 10 == 5 { ms(80) } else { Duration::ZERO };
            let arrived = t0 + FRAME * i + late;
            shown.push(p.schedule(i * TICKS, arrived));
        }
        assert!(p.target() >= ms(75), "target {:?}", p.target());
        // Once the buffer has grown, frames are shown a frame interval apart, late ones included.
        for w in shown[40..].windows(2) {
            let gap = w[1].duration_since(w[0]);
            assert!(gap > ms(30) && gap < ms(37), "uneven: {gap:?}");
        }
    }

    #[test]
    fn a_rare_late_frame_and_the_frames_held_behind_it_do_not_raise_the_target() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        let mut shown = Vec::new();
        for i in 0..150u32 {
            // Frame 70 completes 250 ms late, and the seven behind it complete with it.
            let arrived = if (70..78).contains(&i) {
                t0 + FRAME * 70 + ms(250)
            } else {
                t0 + FRAME * i
            };
            shown.push((arrived, p.schedule(i * TICKS, arrived)));
        }
        assert!(p.target() < ms(1), "target {:?}", p.target());
        for (arrived, show) in &shown[100..] {
            assert!(
                show.duration_since(*arrived) < ms(1),
                "held after the stall"
            );
        }
    }

    #[test]
    fn frames_held_behind_common_late_ones_still_count_through_them() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        // Every sixth frame needs a retransmission (100 ms) and the two behind it complete with it.
        for i in 0..120u32 {
            let first = i - i % 6;
            let arrived = match i % 6 {
                0 => t0 + FRAME * i + ms(100),
                1 | 2 => t0 + FRAME * first + ms(100),
                _ => t0 + FRAME * i,
            };
            p.schedule(i * TICKS, arrived);
        }
        assert!(p.target() >= ms(95), "target {:?}", p.target());
    }

    #[test]
    fn a_second_repair_round_every_few_seconds_does_not_raise_the_target_beyond_one_round() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        let mut targets = Vec::new();
        let mut completed = t0;
        for i in 0..900u32 {
            // One frame in four needs a repair round (90 ms), and two frames every 5 s, a second apart, a second
            // round (250 ms); frames complete in decode order, so the ones behind a late frame complete with it.
            let late = match (i % 150, i % 4) {
                (45 | 75, _) => ms(250),
                (_, 1) => ms(90),
                _ => Duration::ZERO,
            };
            completed = completed.max(t0 + FRAME * i + late);
            p.schedule(i * TICKS, completed);
            if i >= 300 {
                targets.push(p.target());
            }
        }
        let highest = targets.iter().max().unwrap();
        assert!(
            *highest >= ms(85) && *highest < ms(100),
            "one round, not two: {highest:?}"
        );
    }

    #[test]
    fn the_target_decays_when_the_path_recovers_and_is_bounded() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        // A third of a second of frames 900 ms late: far more than the buffer may hold.
        for i in 0..30u32 {
            let late = if i >= 20 { ms(900) } else { Duration::ZERO };
            p.schedule(i * TICKS, t0 + FRAME * i + late);
        }
        assert_eq!(p.target(), MAX_TARGET);
        // Five clean seconds: the slow frames have left the window and the target comes back down.
        for i in 30..180u32 {
            p.schedule(i * TICKS, t0 + FRAME * i);
        }
        assert!(p.target() < ms(20), "target {:?}", p.target());
    }

    #[test]
    fn a_bad_start_is_forgotten_while_rare_late_frames_go_on() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        let mut completed = t0;
        let mut target_at = Vec::new();
        for i in 0..600u32 {
            // Two seconds in which every fourth frame needs a repair round (60 ms), then one frame in fifty.
            let late = match (i < 60, i % 4, i % 50) {
                (true, 0, _) | (false, _, 25) => ms(60),
                _ => Duration::ZERO,
            };
            completed = completed.max(t0 + FRAME * i + late);
            p.schedule(i * TICKS, completed);
            target_at.push(p.target());
        }
        assert!(target_at[59] >= ms(55), "the bad start raises the target");
        // Once the bad stretch has left the window (and the target decayed), rare late frames alone do not hold it up.
        assert!(
            target_at[60 + 150 + 60..].iter().all(|t| *t < ms(20)),
            "{:?}",
            &target_at[270..]
        );
    }

    #[test]
    fn a_restarted_stream_starts_over() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        for i in 0..30u32 {
            p.schedule(i * TICKS, t0 + FRAME * i);
        }
        // A new publisher: unrelated timestamps.
        let arrived = t0 + FRAME * 30;
        assert_eq!(p.schedule(1_234_567_890, arrived), arrived);
        let next = arrived + FRAME;
        assert!(p.schedule(1_234_567_890 + TICKS, next).duration_since(next) < ms(1));
    }
}
