//! The video capture thread: produces frames from the channel's source at the configured frame rate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zego_media::SyntheticCamera;

use super::unix_micros;
use super::Shared;
use crate::config::VideoSourceType;
use crate::event::Event;

/// How long an idle capture thread sleeps before it looks at its settings again (it is also woken on changes).
pub(super) const IDLE: Duration = Duration::from_millis(200);

/// Wall-clock pacing without drift: tick `k` is due at `start + k * period`, whatever each tick cost. A thread that
/// fell behind by more than a period skips the ticks it missed instead of bursting to catch up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pacer {
    start: Instant,
    period: Duration,
    tick: u32,
}

impl Pacer {
    pub fn new(period: Duration, now: Instant) -> Pacer {
        Pacer {
            start: now,
            period,
            tick: 0,
        }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn due(&self) -> Instant {
        self.start + self.period * self.tick
    }

    /// Marks the due tick as done at `now`.
    pub fn advance(&mut self, now: Instant) {
        self.tick += 1;
        if now >= self.due() + self.period {
            let elapsed = now.duration_since(self.start).as_nanos() / self.period.as_nanos().max(1);
            self.tick = elapsed as u32 + 1;
        }
        // Restart the count well before it could overflow (hours at 60 fps), keeping the phase.
        if self.tick > 1 << 30 {
            self.start = self.due();
            self.tick = 0;
        }
    }
}

pub(super) fn run(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut camera: Option<SyntheticCamera> = None;
    #[cfg(feature = "devices")]
    let mut device: Option<zego_media::devices::Camera> = None;
    let mut pacer: Option<Pacer> = None;
    let mut frame_number = 0u64;
    let mut source: Option<VideoSourceType> = None;
    while !stop.load(Ordering::Acquire) {
        let (current, cfg) = {
            let s = shared.settings.lock();
            (s.video_source, s.video)
        };
        if source != Some(current) {
            if source == Some(VideoSourceType::Custom) {
                shared.events.send(Event::CustomVideoCaptureStop {
                    channel: shared.channel,
                });
            }
            if current == VideoSourceType::Custom {
                shared.events.send(Event::CustomVideoCaptureStart {
                    channel: shared.channel,
                });
            }
            source = Some(current);
            pacer = None;
            #[cfg(feature = "devices")]
            {
                device = None;
            }
        }
        match current {
            VideoSourceType::Synthetic => {
                let period = Duration::from_secs_f64(1.0 / f64::from(cfg.fps.max(1)));
                let now = Instant::now();
                let p = match &mut pacer {
                    Some(p) if p.period() == period => p,
                    slot => slot.insert(Pacer::new(period, now)),
                };
                let due = p.due();
                if now < due {
                    std::thread::park_timeout(due - now);
                    continue;
                }
                p.advance(now);
                let cam = match &mut camera {
                    Some(c)
                        if (c.width(), c.height()) == (cfg.capture_width, cfg.capture_height) =>
                    {
                        c
                    }
                    slot => {
                        slot.insert(SyntheticCamera::new(cfg.capture_width, cfg.capture_height))
                    }
                };
                frame_number += 1;
                let frame = cam.frame(unix_micros(), frame_number);
                shared.deliver(frame, true);
            }
            // Custom frames arrive through `send_custom_video_frame`.
            VideoSourceType::Custom => std::thread::park_timeout(IDLE),
            VideoSourceType::Camera => {
                #[cfg(feature = "devices")]
                {
                    if device.is_none() {
                        match zego_media::devices::Camera::open(
                            cfg.capture_width,
                            cfg.capture_height,
                            cfg.fps,
                        ) {
                            Ok(c) => device = Some(c),
                            Err(e) => {
                                tracing::warn!(channel = ?shared.channel, "cannot open the camera: {e}");
                                std::thread::park_timeout(Duration::from_secs(1));
                                continue;
                            }
                        }
                    }
                    if let Some(cam) = &mut device {
                        match cam.frame() {
                            Ok(frame) => shared.deliver(frame, false),
                            Err(e) => {
                                tracing::warn!(channel = ?shared.channel, "camera failed: {e}");
                                device = None;
                            }
                        }
                    }
                }
                #[cfg(not(feature = "devices"))]
                std::thread::park_timeout(IDLE);
            }
        }
    }
    if source == Some(VideoSourceType::Custom) {
        shared.events.send(Event::CustomVideoCaptureStop {
            channel: shared.channel,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_keeps_its_phase_and_skips_missed_ticks() {
        let t0 = Instant::now();
        let period = Duration::from_millis(50);
        let mut p = Pacer::new(period, t0);
        assert_eq!(p.due(), t0);
        // Ticks that ran late do not delay the following ones.
        p.advance(t0 + Duration::from_millis(7));
        assert_eq!(p.due(), t0 + period);
        p.advance(t0 + period + Duration::from_millis(30));
        assert_eq!(p.due(), t0 + 2 * period);
        // Stalled for three periods: resume on the grid, without a burst.
        p.advance(t0 + Duration::from_millis(260));
        assert_eq!(p.due(), t0 + 6 * period);
    }
}
