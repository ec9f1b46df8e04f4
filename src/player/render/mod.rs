//! Render: video frames held to their playout time (`playout`) and delivered as events, with the freeze and delay
//! statistics; audio with volume and mute, to the speaker or the PCM callback.

mod playout;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zego_media::VideoFrame;

use super::decode::SAMPLE_RATE;
use super::PlayerShared;
use crate::event::{AudioFrame, Event};
use crate::publisher::unix_micros;
pub(super) use playout::Playout;

/// A frame later than this after the previous one counts as a freeze.
pub(super) const FREEZE_THRESHOLD: Duration = Duration::from_millis(200);

/// The video side of render: the playout schedule, the size last announced and the last frame shown.
#[derive(Default)]
pub(super) struct VideoRender {
    playout: Playout,
    size: (u32, u32),
    last_render: Option<Instant>,
}

impl VideoRender {
    /// Shows a decoded frame (unless video is muted) at its playout time: waits on the calling (decode) thread.
    pub fn show(
        &mut self,
        shared: &PlayerShared,
        frame: VideoFrame,
        rtp_timestamp: u32,
        completed_at: Instant,
        sei: Vec<Vec<u8>>,
    ) {
        let c = &shared.counters;
        if (frame.width, frame.height) != self.size {
            self.size = (frame.width, frame.height);
            shared.events.send(Event::PlayerVideoSizeChanged {
                stream_id: shared.stream_id.clone(),
                width: self.size.0,
                height: self.size.1,
            });
        }
        if shared.video_muted.load(Ordering::Relaxed) {
            deliver_sei(shared, sei);
            return;
        }
        // Held (at most the playout bound) so that frames repaired late do not make the others stutter.
        let show_at = self.playout.schedule(rtp_timestamp, completed_at);
        shared
            .counters
            .playout_delay_us
            .store(self.playout.target().as_micros() as u64, Ordering::Relaxed);
        let hold = show_at.saturating_duration_since(Instant::now());
        if !hold.is_zero() {
            std::thread::sleep(hold);
        }
        let now = Instant::now();
        if let Some(prev) = self.last_render {
            let gap = now.duration_since(prev);
            if gap > FREEZE_THRESHOLD {
                c.frozen_us
                    .fetch_add(gap.as_micros() as u64, Ordering::Relaxed);
            }
        }
        self.last_render = Some(now);
        *c.last_render.lock() = Some(now);
        if frame.capture_time_us > 0 {
            let delay = unix_micros().saturating_sub(frame.capture_time_us);
            c.last_delay_us.store(delay, Ordering::Relaxed);
            c.delay_sum_us.fetch_add(delay, Ordering::Relaxed);
            c.delay_samples.fetch_add(1, Ordering::Relaxed);
        }
        deliver_sei(shared, sei);
        let delivered = shared.events.send(Event::RemoteVideoFrame {
            stream_id: shared.stream_id.clone(),
            frame: Arc::new(frame),
        });
        if delivered {
            c.video_frames_rendered.fetch_add(1, Ordering::Relaxed);
            if !shared.render_first.swap(true, Ordering::AcqRel) {
                shared.events.send(Event::PlayerRenderVideoFirstFrame {
                    stream_id: shared.stream_id.clone(),
                });
            }
        }
    }
}

/// The SEI of a frame, just before the frame (or at once, for a frame that is not shown). Never dropped: apps keep
/// state in it.
pub(super) fn deliver_sei(shared: &PlayerShared, sei: Vec<Vec<u8>>) {
    for data in sei {
        shared.events.send(Event::PlayerRecvSei {
            stream_id: shared.stream_id.clone(),
            data,
        });
    }
}

/// Where decoded audio goes: the speaker (feature `devices`, when one opens) or the PCM callback.
pub(super) struct AudioOut {
    #[cfg(feature = "devices")]
    speaker: Option<zego_media::devices::Speaker>,
}

impl AudioOut {
    pub fn open() -> AudioOut {
        #[cfg(feature = "devices")]
        {
            let speaker = match zego_media::devices::Speaker::open(2) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("no speaker, delivering audio through the callback: {e}");
                    None
                }
            };
            AudioOut { speaker }
        }
        #[cfg(not(feature = "devices"))]
        AudioOut {}
    }

    fn play(
        &mut self,
        shared: &PlayerShared,
        pcm: &[i16],
        channels: u16,
        concealed: bool,
        buffered: Option<Duration>,
    ) {
        #[cfg(feature = "devices")]
        if let Some(speaker) = &mut self.speaker {
            let stereo: Vec<i16> = if channels == 1 {
                pcm.iter().flat_map(|&s| [s, s]).collect()
            } else {
                pcm.to_vec()
            };
            if let Err(e) = speaker.write(&stereo) {
                tracing::warn!("speaker failed, delivering audio through the callback: {e}");
                self.speaker = None;
            } else {
                return;
            }
        }
        shared.events.send(Event::RemoteAudioFrame {
            stream_id: shared.stream_id.clone(),
            frame: Arc::new(AudioFrame {
                samples: pcm.to_vec(),
                sample_rate: SAMPLE_RATE,
                channels,
                concealed,
                buffered,
            }),
        });
    }

    /// Volume and mute applied, then played. `buffered`: how long its packet waited in the jitter buffer.
    pub fn deliver(
        &mut self,
        shared: &PlayerShared,
        pcm: &mut [i16],
        channels: u16,
        concealed: bool,
        buffered: Option<Duration>,
    ) {
        if shared.audio_muted.load(Ordering::Relaxed) || pcm.is_empty() {
            return;
        }
        apply_volume(pcm, shared.volume.load(Ordering::Relaxed));
        self.play(shared, pcm, channels, concealed, buffered);
    }
}

/// Scales by `volume` percent (0..=200) with saturation.
fn apply_volume(pcm: &mut [i16], volume: u32) {
    if volume == 100 {
        return;
    }
    for s in pcm.iter_mut() {
        *s = (i32::from(*s) * volume as i32 / 100).clamp(i32::from(i16::MIN), i32::from(i16::MAX))
            as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_scales_and_saturates() {
        let mut pcm = vec![1000, -1000, 30000, -30000];
        apply_volume(&mut pcm, 200);
        assert_eq!(pcm, vec![2000, -2000, i16::MAX, i16::MIN]);
        apply_volume(&mut pcm, 0);
        assert!(pcm.iter().all(|&s| s == 0));
    }
}
