//! From what the player recorded in a window to what a viewer experienced: latency, missing frames, freezes and
//! audio gaps.

use serde::Serialize;
use zego_media::audio_mark;

use crate::cpu::round1;
use crate::proto::{WindowRecord, AUDIO_CONCEALED, AUDIO_SILENT};
use crate::stats::Summary;

/// No new frame for longer than this is a freeze.
pub const FREEZE_MS: f64 = 200.0;
/// Longer than this without real audio (decoded from what the publisher sent, directly or from in-band FEC: not
/// made up by loss concealment, not silence) is a gap.
pub const AUDIO_GAP_MS: f64 = 60.0;

/// Glass-to-glass latency of every frame with a readable stamp, in ms.
pub fn latencies_ms(window: &WindowRecord) -> Vec<f64> {
    window
        .frames
        .iter()
        .filter(|f| f[1] != 0)
        .map(|f| (f[0] as f64 - f[1] as f64) / 1000.0)
        .collect()
}

/// Audio's glass-to-glass latency of a time mark heard at `heard` (µs), in ms: from the mark's capture to when the
/// player's callback played its first loud sample.
fn audio_latency_ms(heard: u64) -> f64 {
    (heard - audio_mark::captured_at(heard)) as f64 / 1000.0
}

/// The picture of a time mark's instant is the rendered frame captured nearest to it, if one was captured this
/// close.
const AV_PAIR_US: u64 = 100_000;

/// How much later than the picture the sound of the same instant reached the viewer, for the time mark heard at
/// `heard`, in ms (negative: sound first). The sound is the mark (heard - captured); the picture is the rendered
/// frame captured nearest the mark (rendered - captured).
fn av_offset_ms(window: &WindowRecord, heard: u64) -> Option<f64> {
    let captured = audio_mark::captured_at(heard);
    let frame = window
        .frames
        .iter()
        .filter(|f| f[1] != 0 && f[1].abs_diff(captured) <= AV_PAIR_US)
        .min_by_key(|f| f[1].abs_diff(captured))?;
    let video = (frame[0] as f64 - frame[1] as f64) / 1000.0;
    Some(audio_latency_ms(heard) - video)
}

/// Audio's glass-to-glass latency at each time mark heard, in ms.
pub fn audio_latencies_ms(window: &WindowRecord) -> Vec<f64> {
    window
        .audio_marks_us
        .iter()
        .map(|&h| audio_latency_ms(h))
        .collect()
}

/// The A/V offset (audio after video) at each time mark heard that pairs with a rendered frame, in ms.
pub fn av_offsets_ms(window: &WindowRecord) -> Vec<f64> {
    window
        .audio_marks_us
        .iter()
        .filter_map(|&h| av_offset_ms(window, h))
        .collect()
}

/// Each time mark heard: (seconds into the window, audio latency ms, audio after video ms if a frame pairs with it).
pub fn marks(window: &WindowRecord) -> Vec<(f64, f64, Option<f64>)> {
    window
        .audio_marks_us
        .iter()
        .map(|&h| {
            let at_s = h.saturating_sub(window.start_us) as f64 / 1e6;
            (
                (at_s * 10.0).round() / 10.0,
                audio_latency_ms(h),
                av_offset_ms(window, h),
            )
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Smoothness {
    pub window_s: f64,
    /// Frames due on screen during the window: the frame numbers from the first to the last rendered one,
    /// extended over a leading or trailing stall by the frame rate (a frame is due one median latency after
    /// its capture).
    pub frames_sent: u64,
    /// Distinct frame numbers rendered.
    pub frames_rendered: u64,
    /// Sent but never rendered (gaps in the frame numbers).
    pub frames_missing: u64,
    pub rendered_ratio: Option<f64>,
    pub render_fps: f64,
    /// Rendered frames whose stamp could not be read (no latency or number for them).
    pub unstamped_frames: u64,
    /// A frame number seen again.
    pub repeated_frames: u64,
    /// A frame rendered after a later-numbered one.
    pub out_of_order_frames: u64,
    /// Intervals without a new frame longer than 200 ms (window edges included).
    pub freezes: u64,
    pub freeze_total_ms: f64,
    pub longest_freeze_ms: f64,
    pub audio_chunks: u64,
    /// Received audio in ms of playback, against the window length.
    pub audio_received_ms: f64,
    /// Chunks the decoder made up for lost packets (loss concealment; in-band FEC counts as received).
    pub audio_concealed_chunks: u64,
    /// Chunks of silence.
    pub audio_silent_chunks: u64,
    /// Stretches longer than 60 ms without real audio (concealment, silence or nothing), from the decoded PCM.
    pub audio_gaps: u64,
    pub audio_gap_total_ms: f64,
    pub longest_audio_gap_ms: f64,
    /// Intervals between audio chunks longer than 60 ms, whatever they hold (the callback's arrival times only).
    pub audio_arrival_gaps: u64,
}

pub fn smoothness(window: &WindowRecord, fps: u32) -> Smoothness {
    let window_ms = window.end_us.saturating_sub(window.start_us) as f64 / 1000.0;

    let mut numbers: Vec<u64> = window
        .frames
        .iter()
        .filter(|f| f[1] != 0)
        .map(|f| f[2])
        .collect();
    let unstamped = window.frames.len() as u64 - numbers.len() as u64;
    let mut out_of_order = 0;
    let mut highest: Option<u64> = None;
    for &n in &numbers {
        if highest.is_some_and(|h| n < h) {
            out_of_order += 1;
        }
        highest = Some(highest.map_or(n, |h| h.max(n)));
    }
    numbers.sort_unstable();
    let before_dedup = numbers.len() as u64;
    numbers.dedup();
    let repeated = before_dedup - numbers.len() as u64;
    let rendered = numbers.len() as u64;
    let sent = frames_due(window, fps).map_or(0, |(first, last)| last - first + 1);

    let renders: Vec<u64> = window.frames.iter().map(|f| f[0]).collect();
    let (freezes, freeze_total_ms, longest_freeze_ms) =
        gaps(window.start_us, &renders, window.end_us, FREEZE_MS);
    let (audio_gaps, audio_gap_total_ms, longest_audio_gap_ms) = audio_gaps(window);
    let arrivals: Vec<u64> = window.audio.iter().map(|a| a[0]).collect();
    let (audio_arrival_gaps, _, _) = gaps(window.start_us, &arrivals, window.end_us, AUDIO_GAP_MS);
    let flagged = |flag| window.audio.iter().filter(|a| a[2] & flag != 0).count() as u64;

    Smoothness {
        window_s: round1(window_ms / 1000.0),
        frames_sent: sent,
        frames_rendered: rendered,
        frames_missing: sent - rendered,
        rendered_ratio: (sent > 0)
            .then(|| (rendered as f64 / sent as f64 * 10_000.0).round() / 10_000.0),
        render_fps: if window_ms > 0.0 {
            round1(window.frames.len() as f64 / (window_ms / 1000.0))
        } else {
            0.0
        },
        unstamped_frames: unstamped,
        repeated_frames: repeated,
        out_of_order_frames: out_of_order,
        freezes,
        freeze_total_ms: round1(freeze_total_ms),
        longest_freeze_ms: round1(longest_freeze_ms),
        audio_chunks: window.audio.len() as u64,
        audio_received_ms: round1(window.audio.iter().map(|a| a[1] as f64 / 1000.0).sum()),
        audio_concealed_chunks: flagged(AUDIO_CONCEALED),
        audio_silent_chunks: flagged(AUDIO_SILENT),
        audio_gaps,
        audio_gap_total_ms: round1(audio_gap_total_ms),
        longest_audio_gap_ms: round1(longest_audio_gap_ms),
        audio_arrival_gaps,
    }
}

/// Stretches without real audio longer than [`AUDIO_GAP_MS`]: from the end of the real audio received so far
/// (played back to back) until the next chunk of real audio arrives; concealed or silent chunks in between do not
/// count as audio. The window's start and end are bounds: (count, total ms, longest ms).
fn audio_gaps(window: &WindowRecord) -> (u64, f64, f64) {
    let (mut count, mut total, mut longest) = (0, 0.0, 0.0f64);
    let mut covered_until = window.start_us;
    let real = window
        .audio
        .iter()
        .filter(|a| a[2] & (AUDIO_CONCEALED | AUDIO_SILENT) == 0);
    for a in real.chain(std::iter::once(&[window.end_us, 0, 0])) {
        let gap = a[0].saturating_sub(covered_until) as f64 / 1000.0;
        if gap > AUDIO_GAP_MS {
            count += 1;
            total += gap;
            longest = longest.max(gap);
        }
        // Audio plays back to back: chunks that arrive together cover one after the other.
        covered_until = covered_until.max(a[0]) + a[1];
    }
    (count, total, longest)
}

/// The first and last frame numbers due on screen during the window. The rendered range is extended at each
/// end by the frames the camera made in between (at `fps`), so that frames lost before the first or after the last
/// rendered one still count as missing. Extrapolating only across the stall, from the nearest rendered frame,
/// keeps capture-clock drift out of it.
fn frames_due(window: &WindowRecord, fps: u32) -> Option<(u64, u64)> {
    let stamped: Vec<&[u64; 3]> = window.frames.iter().filter(|f| f[1] != 0).collect();
    let first = stamped.iter().min_by_key(|f| f[2])?;
    let last = stamped.iter().max_by_key(|f| f[2])?;
    let mut latencies: Vec<i64> = stamped.iter().map(|f| f[0] as i64 - f[1] as i64).collect();
    latencies.sort_unstable();
    let latency = latencies[latencies.len() / 2];
    let per_frame_us = 1_000_000.0 / f64::from(fps.max(1));
    // Frames captured between the window's start (less the latency) and the first rendered frame's capture.
    let lead = (first[1] as i64 - (window.start_us as i64 - latency)) as f64 / per_frame_us;
    let trail = ((window.end_us as i64 - latency) - last[1] as i64) as f64 / per_frame_us;
    let due_first = first[2].saturating_sub(lead.floor().max(0.0) as u64);
    let due_last = last[2] + trail.floor().max(0.0) as u64;
    Some((due_first, due_last))
}

/// Intervals longer than `limit_ms` between consecutive events, counting the window's start and end as events
/// so that nothing at all for a whole window reads as one long gap: (count, total ms, longest ms).
fn gaps(start_us: u64, events: &[u64], end_us: u64, limit_ms: f64) -> (u64, f64, f64) {
    let mut count = 0;
    let mut total = 0.0;
    let mut longest: f64 = 0.0;
    let mut previous = start_us;
    for &t in events.iter().chain(std::iter::once(&end_us)) {
        let gap = t.saturating_sub(previous) as f64 / 1000.0;
        if gap > limit_ms {
            count += 1;
            total += gap;
            longest = longest.max(gap);
        }
        previous = previous.max(t);
    }
    (count, total, longest)
}

/// Latency and frame rate per bucket of the window, to show how they evolve (after a rate cap, for instance).
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Bucket start, seconds from the window start.
    pub t_s: f64,
    pub frames: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

pub fn timeline(window: &WindowRecord, bucket_ms: u64) -> Vec<Bucket> {
    let bucket_us = bucket_ms.max(1) * 1000;
    let span = window.end_us.saturating_sub(window.start_us);
    let count = span.div_ceil(bucket_us) as usize;
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); count];
    let mut frames = vec![0u64; count];
    for f in &window.frames {
        let index = (f[0].saturating_sub(window.start_us) / bucket_us) as usize;
        if index < count {
            frames[index] += 1;
            if f[1] != 0 {
                buckets[index].push((f[0] as f64 - f[1] as f64) / 1000.0);
            }
        }
    }
    buckets
        .iter()
        .zip(frames)
        .enumerate()
        .map(|(i, (latencies, frames))| {
            let summary = Summary::of(latencies);
            Bucket {
                t_s: (i as u64 * bucket_ms) as f64 / 1000.0,
                frames,
                p50_ms: summary.map(|s| s.p50),
                p95_ms: summary.map(|s| s.p95),
                max_ms: summary.map(|s| s.max),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `n` frames at 30 fps starting 1 s after unix 0, each `latency_ms` old at render.
    fn steady(n: u64, latency_ms: u64) -> WindowRecord {
        let start = 1_000_000;
        let frames = (0..n)
            .map(|i| {
                let render = start + 10_000 + i * 33_333;
                [render, render - latency_ms * 1000, 100 + i]
            })
            .collect();
        let audio = (0..=n * 33_333 / 20_000)
            .map(|i| [start + i * 20_000, 20_000, 0])
            .collect();
        WindowRecord {
            start_us: start,
            end_us: start + n * 33_333,
            frames,
            audio,
            audio_buffered_us: Vec::new(),
            audio_marks_us: Vec::new(),
            final_state: 2,
        }
    }

    #[test]
    fn av_offset_pairs_each_mark_with_the_frame_captured_nearest_it() {
        // 25 ms video; marks captured at 2 s and 3 s heard 85 ms and 30 ms later.
        let mut window = steady(120, 25);
        window.audio_marks_us = vec![2_085_000, 3_030_000];
        assert_eq!(audio_latencies_ms(&window), vec![85.0, 30.0]);
        assert_eq!(av_offsets_ms(&window), vec![60.0, 5.0]);
        // No frame captured within 100 ms of a mark: no pair.
        window.frames.retain(|f| f[1].abs_diff(3_000_000) > 100_000);
        assert_eq!(av_offsets_ms(&window), vec![60.0]);
    }

    #[test]
    fn concealed_and_silent_audio_counts_as_a_gap_beyond_60_ms() {
        let mut window = steady(300, 25);
        // Chunks 100..103 concealed (80 ms), 200..202 silent (60 ms: not longer than 60), 250 concealed alone.
        for i in (100..104).chain(250..251) {
            window.audio[i][2] = AUDIO_CONCEALED;
        }
        for i in 200..203 {
            window.audio[i][2] = AUDIO_SILENT;
        }
        // Nothing at all for 100 ms, then the held chunks at once (they play back to back).
        for i in 300..305 {
            window.audio[i][0] = window.audio[305][0];
        }
        let s = smoothness(&window, 30);
        assert_eq!((s.audio_concealed_chunks, s.audio_silent_chunks), (5, 3));
        assert_eq!(s.audio_gaps, 2, "{s:?}");
        assert_eq!(s.longest_audio_gap_ms, 100.0);
        assert_eq!(s.audio_arrival_gaps, 1);
    }

    #[test]
    fn a_steady_stream_has_no_misses_freezes_or_gaps() {
        let window = steady(300, 25);
        let s = smoothness(&window, 30);
        assert_eq!(
            (s.frames_sent, s.frames_rendered, s.frames_missing),
            (300, 300, 0)
        );
        assert_eq!((s.freezes, s.audio_gaps, s.out_of_order_frames), (0, 0, 0));
        assert_eq!(s.rendered_ratio, Some(1.0));
        let latency = Summary::of(&latencies_ms(&window)).unwrap();
        assert_eq!((latency.p50, latency.max), (25.0, 25.0));
    }

    #[test]
    fn missing_numbers_and_a_long_pause_show_as_drops_and_one_freeze() {
        let mut window = steady(300, 25);
        // Frames 150..165 never arrive: half a second without a new picture.
        window.frames.retain(|f| !(250..265).contains(&f[2]));
        let s = smoothness(&window, 30);
        assert_eq!((s.frames_sent, s.frames_missing), (300, 15));
        assert_eq!(s.freezes, 1);
        assert!(
            (s.longest_freeze_ms - 16.0 * 33.333).abs() < 1.0,
            "{}",
            s.longest_freeze_ms
        );
    }

    #[test]
    fn frames_lost_after_the_last_render_still_count_as_missing() {
        let mut window = steady(300, 25);
        // Nothing after frame 249: the last 50 frames (1.67 s) never arrive.
        window.frames.retain(|f| f[2] < 250);
        let s = smoothness(&window, 30);
        assert_eq!((s.frames_sent, s.frames_rendered), (300, 150));
        assert_eq!(s.rendered_ratio, Some(0.5));
        assert_eq!(s.freezes, 1);
    }

    #[test]
    fn unstamped_frames_count_but_carry_no_latency() {
        let mut window = steady(10, 30);
        window.frames[3][1] = 0;
        assert_eq!(latencies_ms(&window).len(), 9);
        assert_eq!(smoothness(&window, 30).unstamped_frames, 1);
    }

    #[test]
    fn nothing_rendered_is_one_window_long_freeze() {
        let window = WindowRecord {
            start_us: 0,
            end_us: 5_000_000,
            ..WindowRecord::default()
        };
        let s = smoothness(&window, 30);
        assert_eq!(
            (s.freezes, s.longest_freeze_ms, s.frames_sent),
            (1, 5000.0, 0)
        );
        assert_eq!(s.rendered_ratio, None);
    }

    #[test]
    fn timeline_buckets_latency_by_render_time() {
        let window = steady(60, 40);
        let buckets = timeline(&window, 1000);
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[0].p50_ms, Some(40.0));
        assert_eq!(buckets.iter().map(|b| b.frames).sum::<u64>(), 60);
    }
}
