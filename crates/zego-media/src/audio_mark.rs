//! The synthetic microphone's time mark, the audio counterpart of the camera's pixel stamp: its tone is loud for
//! the first 100 ms of every second of the capture clock (Unix time) and quiet otherwise, as A/V-sync test signals
//! beep once a second. A listener that finds where a loud stretch begins in the decoded sound knows when that sound
//! was captured (the whole second before it), so `heard - captured` is audio's glass-to-glass latency, comparable
//! with the video stamp's. The loudness step survives Opus to within a few milliseconds.

/// One mark per this many µs of capture time, starting on each multiple.
pub const PERIOD_US: u64 = 1_000_000;
/// How long each mark lasts.
pub const LENGTH_US: u64 = 100_000;
/// The tone's amplitude inside a mark, as a share of full scale (-6 dBFS).
pub const LOUD: f64 = 0.5;
/// The tone's amplitude outside marks (-18 dBFS: far above silence).
pub const QUIET: f64 = 0.125;
/// Blocks of this many ms are classed loud or quiet by their peak.
const BLOCK_MS: u32 = 1;

/// The tone's amplitude for a sample captured at `capture_us`.
pub fn gain_at(capture_us: u64) -> f64 {
    if capture_us % PERIOD_US < LENGTH_US {
        LOUD
    } else {
        QUIET
    }
}

/// When the mark heard at `heard_us` was captured: the last whole period before it. Valid while audio's latency
/// stays under one period.
pub fn captured_at(heard_us: u64) -> u64 {
    heard_us - heard_us % PERIOD_US
}

/// Real sound must be quiet for this long before a mark and loud for this long from its start: a click or a
/// decoder's transient after a loss is not a mark.
const STEADY_MS: u32 = 20;
/// Marks heard closer together than this are one mark (a repaired stretch inside a mark can look like a new one).
const MIN_SPACING_MS: u32 = 500;

/// Finds where marks begin in decoded sound, chunk by chunk. A mark counts only when real sound (not loss
/// concealment) was steadily quiet just before it and is steadily loud from it: a mark that begins in made-up sound
/// has no time to tell.
#[derive(Debug, Clone)]
pub struct MarkDetector {
    frames_per_block: usize,
    /// Sample frames pushed so far.
    position: u64,
    /// Consecutive quiet blocks of real sound up to now.
    quiet_blocks: u32,
    /// Where a loud stretch after enough quiet began (a frame position), and its length so far in blocks.
    candidate: Option<(u64, u32)>,
    /// Where the last mark began.
    last: Option<u64>,
}

impl MarkDetector {
    /// `sample_rate` in Hz (clamped to at least 1000).
    pub fn new(sample_rate: u32) -> MarkDetector {
        MarkDetector {
            frames_per_block: (sample_rate.max(1000) * BLOCK_MS / 1000) as usize,
            position: 0,
            quiet_blocks: 0,
            candidate: None,
            last: None,
        }
    }

    /// The next chunk of interleaved samples (played right after the last one); `concealed` if the decoder made it
    /// up. When a mark is confirmed, returns how many sample frames (per channel) before the end of this chunk it
    /// began: it may have begun in an earlier chunk.
    pub fn push(&mut self, samples: &[i16], channels: u16, concealed: bool) -> Option<u64> {
        let channels = usize::from(channels.max(1));
        let frames = (samples.len() / channels) as u64;
        let end = self.position + frames;
        if concealed {
            self.quiet_blocks = 0;
            self.candidate = None;
            self.position = end;
            return None;
        }
        let threshold = (LOUD + QUIET) / 2.0 * f64::from(i16::MAX);
        let steady = STEADY_MS / BLOCK_MS;
        let spacing =
            u64::from(MIN_SPACING_MS) * self.frames_per_block as u64 / u64::from(BLOCK_MS);
        let mut found = None;
        let block_len = self.frames_per_block * channels;
        for (i, block) in samples.chunks(block_len).enumerate() {
            let start = self.position + (i * self.frames_per_block) as u64;
            let first_loud = block
                .iter()
                .step_by(channels)
                .position(|s| f64::from(s.unsigned_abs()) > threshold);
            match (first_loud, self.candidate.as_mut()) {
                (None, _) => {
                    self.quiet_blocks += 1;
                    self.candidate = None;
                }
                (Some(_), Some((at, loud))) => {
                    *loud += 1;
                    if *loud == steady && self.last.is_none_or(|l| *at >= l + spacing) {
                        self.last = Some(*at);
                        found = Some(end - *at);
                    }
                }
                (Some(offset), None) => {
                    if self.quiet_blocks >= steady {
                        self.candidate = Some((start + offset as u64, 1));
                    }
                    self.quiet_blocks = 0;
                }
            }
        }
        self.position = end;
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyntheticMicrophone;

    #[test]
    fn marks_begin_on_each_period_and_last_their_length() {
        assert_eq!(gain_at(3 * PERIOD_US), LOUD);
        assert_eq!(gain_at(3 * PERIOD_US + LENGTH_US - 1), LOUD);
        assert_eq!(gain_at(3 * PERIOD_US + LENGTH_US), QUIET);
        assert_eq!(gain_at(3 * PERIOD_US - 1), QUIET);
        assert_eq!(captured_at(7 * PERIOD_US + 123_456), 7 * PERIOD_US);
    }

    #[test]
    fn the_detector_finds_the_microphones_mark_to_the_sample() {
        // 20 ms chunks starting 430 ms before a whole second: the mark begins 430 ms in, mid-chunk.
        let start_us = 41 * PERIOD_US - 430_000;
        let mut mic = SyntheticMicrophone::new(48_000, 2, 440.0);
        let mut detector = MarkDetector::new(48_000);
        let mut found = Vec::new();
        for chunk in 0..100u64 {
            let first_us = start_us + chunk * 20_000;
            let mut pcm = vec![0i16; 960 * 2];
            mic.read_at(&mut pcm, first_us);
            if let Some(ago) = detector.push(&pcm, 2, false) {
                found.push(first_us + 20_000 - ago * 1_000_000 / 48_000);
            }
        }
        assert_eq!(found.len(), 2, "{found:?}");
        for (heard, second) in found.iter().zip([41, 42]) {
            // Within one period of the tone (a peak at most 2.3 ms after the step).
            let late = heard - second * PERIOD_US;
            assert!(late < 2_300, "heard {late} µs after the mark");
            assert_eq!(captured_at(*heard), second * PERIOD_US);
        }
    }

    #[test]
    fn a_mark_after_concealment_is_not_timed() {
        let mut mic = SyntheticMicrophone::new(48_000, 1, 440.0);
        let mut detector = MarkDetector::new(48_000);
        let mut quiet = vec![0i16; 960];
        mic.read_at(&mut quiet, 5 * PERIOD_US - 40_000);
        assert_eq!(detector.push(&quiet, 1, false), None);
        assert_eq!(detector.push(&quiet, 1, true), None);
        let mut loud = vec![0i16; 960];
        mic.read_at(&mut loud, 5 * PERIOD_US);
        assert_eq!(detector.push(&loud, 1, false), None);
    }

    #[test]
    fn a_short_click_or_a_dip_inside_a_mark_is_not_a_mark() {
        let mut mic = SyntheticMicrophone::new(48_000, 1, 440.0);
        let mut detector = MarkDetector::new(48_000);
        let mut heard = Vec::new();
        for chunk in 0..100u64 {
            let first_us = 7 * PERIOD_US - 500_000 + chunk * 20_000;
            let mut pcm = vec![0i16; 960];
            mic.read_at(&mut pcm, first_us);
            match chunk {
                // A 5 ms click in the quiet.
                10 => pcm[100..340].iter_mut().for_each(|s| *s = 30_000),
                // The middle of the mark (which begins with chunk 25) dips to the quiet level for 30 ms.
                27 | 28 => pcm.iter_mut().for_each(|s| *s /= 8),
                _ => {}
            }
            if let Some(ago) = detector.push(&pcm, 1, false) {
                heard.push(first_us + 20_000 - ago * 1_000_000 / 48_000);
            }
        }
        // The marks at 7 s and 8 s only.
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(heard[0] - 7 * PERIOD_US < 2_300 && heard[1] - 8 * PERIOD_US < 2_300);
    }
}
