//! The audio thread: 20 ms of microphone (or synthetic tone) -> Opus -> the sending task. On a lossy uplink the
//! encoder adds in-band FEC (see `audio_protection`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zego_media::{OpusEncoder, SyntheticMicrophone};

use super::audio_protection::AudioProtection;
use super::capture::{Pacer, IDLE};
use super::{unix_micros, EncodedSample, Shared};
use crate::config::AudioSourceType;

const SAMPLE_RATE: u32 = 48_000;
pub(super) const FRAME: Duration = Duration::from_millis(20);
const SAMPLES_PER_FRAME: usize = SAMPLE_RATE as usize / 50;
/// The synthetic microphone's tone.
const TONE_HZ: f32 = 440.0;

/// Where the samples come from.
enum Source {
    /// The tone, the clock it is read on, and an instant with its Unix time in µs.
    Synthetic(SyntheticMicrophone, Pacer, (Instant, u64)),
    #[cfg(feature = "devices")]
    Device(zego_media::devices::Microphone),
}

pub(super) fn run(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut source: Option<(AudioSourceType, u16, Source)> = None;
    let mut encoder: Option<OpusEncoder> = None;
    let mut encoder_bitrate = 0;
    let mut protection = AudioProtection::default();
    let mut pcm = Vec::new();
    // Frames captured but not sent since the last sent one (muted), so RTP time keeps following real time.
    let mut unsent: u16 = 0;
    while !stop.load(Ordering::Acquire) {
        let (kind, cfg) = {
            let s = shared.settings.lock();
            (s.audio_source, s.audio)
        };
        if kind == AudioSourceType::None {
            source = None;
            std::thread::park_timeout(IDLE);
            continue;
        }
        let channels = cfg.channels;
        if source
            .as_ref()
            .is_none_or(|(k, c, _)| (*k, *c) != (kind, channels))
        {
            source = open(kind, channels).map(|s| (kind, channels, s));
            if source.is_none() {
                std::thread::park_timeout(Duration::from_secs(1));
                continue;
            }
        }
        let Some((_, _, input)) = source.as_mut() else {
            continue;
        };
        pcm.resize(SAMPLES_PER_FRAME * usize::from(channels), 0);
        match input {
            Source::Synthetic(mic, pacer, (opened, opened_us)) => {
                let now = Instant::now();
                let due = pacer.due();
                if now < due {
                    std::thread::park_timeout(due - now);
                    continue;
                }
                // What is read at a tick was captured in the frame before it, as a microphone's buffer is: the
                // tone's time marks fall where they were captured, whenever this thread got to run.
                let due_us = *opened_us + due.saturating_duration_since(*opened).as_micros() as u64;
                pacer.advance(now);
                mic.read_at(&mut pcm, due_us.saturating_sub(FRAME.as_micros() as u64));
            }
            #[cfg(feature = "devices")]
            Source::Device(mic) => {
                // The device paces the reads.
                if let Err(e) = mic.read(&mut pcm) {
                    tracing::warn!(channel = ?shared.channel, "microphone failed: {e}");
                    source = None;
                    continue;
                }
            }
        }
        shared
            .counters
            .audio_captured
            .fetch_add(1, Ordering::Relaxed);
        let Some((sink, control)) = shared
            .sink
            .lock()
            .as_ref()
            .map(|s| (s.audio.clone(), s.encoder.clone()))
        else {
            encoder = None;
            unsent = 0;
            protection = AudioProtection::default();
            shared.audio_fec_kbps.store(0, Ordering::Relaxed);
            continue;
        };
        if shared.audio_muted.load(Ordering::Relaxed) {
            unsent = unsent.saturating_add(1);
            continue;
        }
        let loss = protection.update(Instant::now(), control.congestion().feedback());
        if let Some(percent) = loss {
            tracing::debug!(channel = ?shared.channel, percent, "Opus expects this loss (in-band FEC above 0)");
        }
        let bitrate = protection.bitrate(cfg.bitrate_kbps * 1000, channels);
        let raised = if bitrate > cfg.bitrate_kbps * 1000 {
            bitrate / 1000
        } else {
            0
        };
        shared.audio_fec_kbps.store(raised, Ordering::Relaxed);
        if encoder.as_ref().is_none_or(|e| e.channels() != channels) {
            match OpusEncoder::new(SAMPLE_RATE, channels, bitrate) {
                Ok(mut e) => {
                    e.set_packet_loss_percent(protection.loss_percent());
                    encoder = Some(e);
                    encoder_bitrate = bitrate;
                }
                Err(e) => {
                    tracing::error!(channel = ?shared.channel, "cannot create the Opus encoder: {e}");
                    continue;
                }
            }
        }
        let Some(enc) = encoder.as_mut() else {
            continue;
        };
        if let Some(percent) = loss {
            enc.set_packet_loss_percent(percent);
        }
        if encoder_bitrate != bitrate {
            enc.set_bitrate(bitrate);
            encoder_bitrate = bitrate;
        }
        match enc.encode(&pcm) {
            Ok(packet) => {
                let sample = EncodedSample {
                    data: Bytes::from(packet),
                    duration: FRAME * (1 + u32::from(unsent)),
                    keyframe: false,
                };
                unsent = 0;
                let _ = sink.send(sample);
            }
            Err(e) => tracing::warn!(channel = ?shared.channel, "Opus encoding failed: {e}"),
        }
    }
}

fn open(kind: AudioSourceType, channels: u16) -> Option<Source> {
    match kind {
        AudioSourceType::Synthetic => Some(Source::Synthetic(
            SyntheticMicrophone::new(SAMPLE_RATE, channels, TONE_HZ),
            Pacer::new(FRAME, Instant::now()),
            (Instant::now(), unix_micros()),
        )),
        #[cfg(feature = "devices")]
        AudioSourceType::Microphone => match zego_media::devices::Microphone::open(channels) {
            Ok(mic) => Some(Source::Device(mic)),
            Err(e) => {
                tracing::warn!("cannot open the microphone: {e}");
                None
            }
        },
        _ => None,
    }
}
