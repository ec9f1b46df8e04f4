//! Synthetic capture sources: a camera and a microphone that need no hardware, used by tests,
//! benchmarks and apps that publish without devices.

use std::f64::consts::TAU;

use crate::audio_mark;
use crate::frame::{chroma_size, VideoFrame};
use crate::stamp::{self, Stamp};

/// SMPTE-style colour bars as (Y, U, V), BT.601 limited range: white, yellow, cyan, green,
/// magenta, red, blue.
const BARS: [(u8, u8, u8); 7] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
];

/// A moving test pattern: colour bars, a scrolling luma ramp, a bouncing box and light sensor
/// noise, so the encoder sees motion and texture like a real camera. The capture stamp is drawn
/// into the top strip of every frame.
pub struct SyntheticCamera {
    width: u32,
    height: u32,
    background: VideoFrame,
    noise_state: u64,
}

impl SyntheticCamera {
    /// A camera producing `width` x `height` frames. Sizes are clamped to at least 2x2.
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width.max(2), height.max(2));
        let mut background = VideoFrame::new_black(width, height);
        let (cw, ch) = chroma_size(width, height);
        for y in 0..height as usize {
            for x in 0..width as usize {
                background.y[y * width as usize + x] = BARS[x * 7 / width as usize].0;
            }
        }
        for y in 0..ch as usize {
            for x in 0..cw as usize {
                let bar = BARS[(2 * x * 7 / width as usize).min(6)];
                background.u[y * cw as usize + x] = bar.1;
                background.v[y * cw as usize + x] = bar.2;
            }
        }
        SyntheticCamera {
            width,
            height,
            background,
            noise_state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The next picture. `frame_number` drives the motion, so equal numbers give equal
    /// pictures apart from the noise.
    pub fn frame(&mut self, capture_time_us: u64, frame_number: u64) -> VideoFrame {
        let mut f = self.background.clone();
        let (w, h) = (self.width as usize, self.height as usize);
        let t = frame_number as usize;

        // Luma ramps, an eighth of the width each, across the lower third; they scroll four
        // pixels a frame.
        let ramp_top = h * 2 / 3;
        let ramp_h = (h / 6).max(1);
        let period = (w / 8).max(1);
        for y in ramp_top..(ramp_top + ramp_h).min(h) {
            let row = &mut f.y[y * w..][..w];
            for (x, px) in row.iter_mut().enumerate() {
                *px = 16 + (((x + 4 * t) % period) * 219 / period) as u8;
            }
        }

        // A box bouncing across the middle, its colour cycling.
        let side = (h / 5).max(2) & !1;
        let span_x = w.saturating_sub(side).max(1);
        let span_y = h.saturating_sub(side).max(1);
        let bx = bounce(t * 6, span_x) & !1;
        let by = bounce(t * 3, span_y) & !1;
        let (cy, cu, cv) = BARS[(t / 15) % BARS.len()];
        let cw = f.stride_u as usize;
        for y in by..(by + side).min(h) {
            f.y[y * w + bx..][..side.min(w - bx)].fill(cy.saturating_add(40));
        }
        for y in by / 2..((by + side) / 2).min(h.div_ceil(2)) {
            let n = (side / 2).min(cw - bx / 2);
            f.u[y * cw + bx / 2..][..n].fill(cu);
            f.v[y * cw + bx / 2..][..n].fill(cv);
        }

        // Sensor-like noise of +-3 so rate control has real texture to spend bits on.
        for chunk in f.y.chunks_mut(8) {
            let r = self.next_noise().to_le_bytes();
            for (px, n) in chunk.iter_mut().zip(r) {
                let delta = i16::from(n % 7) - 3;
                *px = (i16::from(*px) + delta).clamp(16, 235) as u8;
            }
        }

        stamp::draw(
            &mut f,
            Stamp {
                capture_time_us,
                frame_number,
            },
        );
        f
    }

    /// xorshift64*: fast, deterministic, and plenty for pixel noise.
    fn next_noise(&mut self) -> u64 {
        let mut x = self.noise_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.noise_state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Position on a 0..=span path that goes back and forth.
fn bounce(pos: usize, span: usize) -> usize {
    let p = pos % (2 * span);
    if p < span {
        p
    } else {
        2 * span - p
    }
}

/// A sine tone generator standing in for a microphone. Samples are interleaved i16 at the given rate and channel
/// count, every channel carrying the same tone, loud for the first 100 ms of every second of the capture clock and
/// quiet otherwise (the time mark of [`crate::audio_mark`]).
pub struct SyntheticMicrophone {
    sample_rate: u32,
    channels: u16,
    tone_hz: f32,
    /// Sample frames produced so far; the phase is derived from it so it never drifts.
    position: u64,
    /// Channel of the next sample when a read ended mid-frame.
    channel: u16,
    /// Capture time of the next sample frame, in µs of the capture clock.
    clock_us: f64,
}

impl SyntheticMicrophone {
    /// `sample_rate` and `channels` are clamped to at least 1. The capture clock starts at 0.
    pub fn new(sample_rate: u32, channels: u16, tone_hz: f32) -> Self {
        SyntheticMicrophone {
            sample_rate: sample_rate.max(1),
            channels: channels.max(1),
            tone_hz,
            position: 0,
            channel: 0,
            clock_us: 0.0,
        }
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Fills `out` with the next interleaved samples, captured from `first_sample_us` on (Unix time in µs, as
    /// the camera's stamp): where the time marks fall. The tone's phase continues from the last read.
    pub fn read_at(&mut self, out: &mut [i16], first_sample_us: u64) {
        self.clock_us = first_sample_us as f64;
        self.read(out);
    }

    /// Fills `out` with the next interleaved samples, captured right after the last read's. Never blocks: the
    /// tone is generated, not paced; callers pace reads with their own clock.
    pub fn read(&mut self, out: &mut [i16]) {
        let step = TAU * f64::from(self.tone_hz) / f64::from(self.sample_rate);
        let frame_us = 1e6 / f64::from(self.sample_rate);
        let mut value = self.sample_at(step);
        for s in out.iter_mut() {
            *s = value;
            self.channel += 1;
            if self.channel == self.channels {
                self.channel = 0;
                self.position += 1;
                self.clock_us += frame_us;
                value = self.sample_at(step);
            }
        }
    }

    fn sample_at(&self, step: f64) -> i16 {
        // Wrap the phase per period so precision holds over hours of audio.
        let period = f64::from(self.sample_rate) / f64::from(self.tone_hz).max(f64::MIN_POSITIVE);
        let pos = (self.position as f64) % period.max(1.0);
        let gain = audio_mark::gain_at(self.clock_us as u64);
        ((pos * step).sin() * gain * f64::from(i16::MAX)) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_frames_carry_their_stamp_and_move() {
        let mut cam = SyntheticCamera::new(640, 360);
        let a = cam.frame(1_000, 1);
        let b = cam.frame(34_333, 2);
        a.validate().unwrap();
        assert_eq!(
            stamp::read(&a),
            Some(Stamp {
                capture_time_us: 1_000,
                frame_number: 1
            })
        );
        assert_eq!(stamp::read(&b).unwrap().frame_number, 2);
        let strip = stamp::strip_height(640, 360) as usize * 640;
        let changed = a.y[strip..]
            .iter()
            .zip(&b.y[strip..])
            .filter(|(x, y)| x.abs_diff(**y) > 8)
            .count();
        assert!(changed > 1000, "only {changed} pixels moved");
    }

    #[test]
    fn camera_handles_odd_and_tiny_sizes() {
        for (w, h) in [(1, 1), (2, 2), (17, 9), (321, 181)] {
            let f = SyntheticCamera::new(w, h).frame(5, 5);
            f.validate().unwrap();
        }
    }

    #[test]
    fn microphone_produces_the_tone_continuously_across_reads() {
        let mut mic = SyntheticMicrophone::new(48_000, 2, 1_000.0);
        let mut a = vec![0i16; 961]; // ends mid-frame on purpose
        let mut b = vec![0i16; 959];
        mic.read(&mut a);
        mic.read(&mut b);
        let all: Vec<i16> = a.into_iter().chain(b).collect();
        for pair in all.chunks_exact(2) {
            assert_eq!(pair[0], pair[1]);
        }
        // 1 kHz at 48 kHz: a period is 48 samples; 960 frames start 19 new periods after the first.
        let left: Vec<i16> = all.iter().step_by(2).copied().collect();
        let rising = left.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        assert_eq!(rising, 19);
        let peak = left.iter().map(|s| s.unsigned_abs()).max().unwrap();
        // The capture clock starts at 0, in a mark: the loud level.
        assert!((16000..=16384).contains(&peak), "peak {peak}");
    }
}
