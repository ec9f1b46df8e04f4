//! Real capture and playback devices (feature `devices`): the first camera through `nokhwa`,
//! and the default microphone and speaker through `cpal`.
//!
//! Audio is 48 kHz interleaved i16 on our side. `cpal` delivers and pulls samples on its own
//! callback thread; a bounded ring buffer sits between that thread and the caller's blocking
//! `read`/`write`, and drops the oldest audio when it overflows so latency cannot build up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig, SupportedStreamConfigRange};
use nokhwa::pixel_format::RgbAFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use parking_lot::{Condvar, Mutex};

use crate::error::{MediaError, Result};
use crate::frame::VideoFrame;

/// Audio device sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// How long `Microphone::read` waits for audio before reporting the device as stalled.
const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Most audio held between a device and its caller.
const MIC_BUFFER_MS: usize = 500;
const SPEAKER_BUFFER_MS: usize = 200;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The first camera, delivering [`VideoFrame`]s. Open and use it on one thread.
pub struct Camera {
    camera: nokhwa::Camera,
    frames: u64,
}

impl Camera {
    /// Opens the first camera with the format closest to the request.
    pub fn open(width: u32, height: u32, fps: u32) -> Result<Self> {
        let cameras = nokhwa::query(ApiBackend::Auto)
            .map_err(|e| MediaError::Device(format!("cannot list cameras: {e}")))?;
        let Some(info) = cameras.first() else {
            return Err(MediaError::NoDevice("camera"));
        };
        let index = match info.index() {
            CameraIndex::Index(i) => CameraIndex::Index(*i),
            CameraIndex::String(s) => CameraIndex::String(s.clone()),
        };
        let wanted = CameraFormat::new(Resolution::new(width, height), FrameFormat::YUYV, fps);
        let request = RequestedFormat::new::<RgbAFormat>(RequestedFormatType::Closest(wanted));
        let mut camera = nokhwa::Camera::new(index, request).map_err(|e| {
            MediaError::Device(format!("cannot open camera {}: {e}", info.human_name()))
        })?;
        camera
            .open_stream()
            .map_err(|e| MediaError::Device(format!("cannot start camera stream: {e}")))?;
        tracing::info!(
            camera = %info.human_name(),
            format = %camera.camera_format(),
            "camera opened"
        );
        Ok(Camera { camera, frames: 0 })
    }

    /// Blocks until the next picture arrives and converts it to I420. The capture time is the
    /// wall clock when the picture was handed over.
    pub fn frame(&mut self) -> Result<VideoFrame> {
        let buffer = self
            .camera
            .frame()
            .map_err(|e| MediaError::Device(format!("camera frame failed: {e}")))?;
        let captured = now_us();
        let res = buffer.resolution();
        let (w, h) = (res.width_x, res.height_y);
        let mut frame = match buffer.source_frame_format() {
            FrameFormat::NV12 => VideoFrame::from_nv12(w, h, buffer.buffer(), w)?,
            FrameFormat::YUYV => VideoFrame::from_yuyv(w, h, buffer.buffer(), w.div_ceil(2) * 4)?,
            _ => {
                let rgba = buffer
                    .decode_image::<RgbAFormat>()
                    .map_err(|e| MediaError::Device(format!("cannot decode camera frame: {e}")))?;
                VideoFrame::from_rgba(w, h, rgba.as_raw(), w * 4)?
            }
        };
        self.frames += 1;
        frame.capture_time_us = captured;
        frame.frame_number = self.frames;
        Ok(frame)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        if let Err(e) = self.camera.stop_stream() {
            tracing::debug!(error = %e, "stopping camera stream");
        }
    }
}

/// Samples between a device callback and the caller, bounded.
struct Ring {
    state: Mutex<RingState>,
    changed: Condvar,
    capacity: usize,
}

struct RingState {
    samples: VecDeque<i16>,
    error: Option<String>,
    dropped: u64,
}

impl Ring {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Ring {
            state: Mutex::new(RingState {
                samples: VecDeque::with_capacity(capacity),
                error: None,
                dropped: 0,
            }),
            changed: Condvar::new(),
            capacity,
        })
    }

    /// Appends, dropping the oldest samples beyond capacity.
    fn push(&self, samples: impl ExactSizeIterator<Item = i16>) {
        let mut st = self.state.lock();
        st.samples.extend(samples);
        let excess = st.samples.len().saturating_sub(self.capacity);
        if excess > 0 {
            st.samples.drain(..excess);
            st.dropped += excess as u64;
        }
        drop(st);
        self.changed.notify_all();
    }

    fn fail(&self, message: String) {
        self.state.lock().error = Some(message);
        self.changed.notify_all();
    }
}

/// A default device that cannot be reached (ALSA's `default` with no sound card behind it)
/// is no device at all; anything else is an error of a device that exists.
fn device_error(kind: &'static str, action: &str, e: cpal::Error) -> MediaError {
    if e.kind() == cpal::ErrorKind::DeviceNotAvailable {
        tracing::debug!(error = %e, "default {kind} is not available");
        MediaError::NoDevice(kind)
    } else {
        MediaError::Device(format!("{action} {kind}: {e}"))
    }
}

fn pick_config(
    configs: impl Iterator<Item = SupportedStreamConfigRange>,
    channels: u16,
) -> Option<(StreamConfig, SampleFormat)> {
    let mut best: Option<(StreamConfig, SampleFormat)> = None;
    for range in configs {
        let fits = range.channels() == channels
            && (range.min_sample_rate()..=range.max_sample_rate()).contains(&SAMPLE_RATE);
        let format = range.sample_format();
        if !fits || !matches!(format, SampleFormat::I16 | SampleFormat::F32) {
            continue;
        }
        let config = range.with_sample_rate(SAMPLE_RATE).config();
        // i16 needs no conversion; take it over f32 when both exist.
        if best.is_none() || format == SampleFormat::I16 {
            best = Some((config, format));
        }
    }
    best
}

fn check_channels(channels: u16) -> Result<()> {
    if channels == 1 || channels == 2 {
        Ok(())
    } else {
        Err(MediaError::InvalidParameter(format!(
            "audio devices are opened with 1 or 2 channels, got {channels}"
        )))
    }
}

/// The default audio input, at 48 kHz.
pub struct Microphone {
    _stream: cpal::Stream,
    ring: Arc<Ring>,
    channels: u16,
}

impl Microphone {
    /// Opens the default input device with `channels` (1 or 2) at 48 kHz.
    pub fn open(channels: u16) -> Result<Self> {
        check_channels(channels)?;
        let host = cpal::default_host();
        let device = host
            .default_input_device()
            .ok_or(MediaError::NoDevice("microphone"))?;
        let configs = device
            .supported_input_configs()
            .map_err(|e| device_error("microphone", "cannot query", e))?;
        let (config, format) = pick_config(configs, channels).ok_or_else(|| {
            MediaError::Device(format!(
                "microphone offers no {SAMPLE_RATE} Hz {channels}-channel i16 or f32 capture"
            ))
        })?;
        let ring = Ring::new(SAMPLE_RATE as usize * usize::from(channels) * MIC_BUFFER_MS / 1000);
        let stream = match format {
            SampleFormat::I16 => build_input::<i16>(&device, config, &ring)?,
            _ => build_input::<f32>(&device, config, &ring)?,
        };
        stream
            .play()
            .map_err(|e| MediaError::Device(format!("cannot start microphone: {e}")))?;
        tracing::info!(channels, ?format, "microphone opened");
        Ok(Microphone {
            _stream: stream,
            ring,
            channels,
        })
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    /// Blocks until `out` is filled with interleaved samples. Fails if the device reported an
    /// error or delivered nothing for a second.
    pub fn read(&mut self, out: &mut [i16]) -> Result<()> {
        let mut filled = 0;
        let mut st = self.ring.state.lock();
        while filled < out.len() {
            if let Some(e) = st.error.take() {
                return Err(MediaError::Device(format!("microphone: {e}")));
            }
            let n = st.samples.len().min(out.len() - filled);
            for (dst, src) in out[filled..filled + n]
                .iter_mut()
                .zip(st.samples.drain(..n))
            {
                *dst = src;
            }
            filled += n;
            if filled < out.len()
                && self
                    .ring
                    .changed
                    .wait_for(&mut st, READ_TIMEOUT)
                    .timed_out()
            {
                return Err(MediaError::Device(
                    "microphone delivered no audio for 1 s".into(),
                ));
            }
        }
        Ok(())
    }

    /// Samples dropped because the caller did not read fast enough.
    pub fn dropped_samples(&self) -> u64 {
        self.ring.state.lock().dropped
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: StreamConfig,
    ring: &Arc<Ring>,
) -> Result<cpal::Stream>
where
    T: SizedSample + Send + 'static,
    i16: FromSample<T>,
{
    let data_ring = ring.clone();
    let error_ring = ring.clone();
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data, _| data_ring.push(data.iter().map(|&s| i16::from_sample_(s))),
            move |e| error_ring.fail(e.to_string()),
            None,
        )
        .map_err(|e| device_error("microphone", "cannot open", e))
}

/// The default audio output, at 48 kHz.
pub struct Speaker {
    _stream: cpal::Stream,
    ring: Arc<Ring>,
    channels: u16,
}

impl Speaker {
    /// Opens the default output device with `channels` (1 or 2) at 48 kHz.
    pub fn open(channels: u16) -> Result<Self> {
        check_channels(channels)?;
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or(MediaError::NoDevice("speaker"))?;
        let configs = device
            .supported_output_configs()
            .map_err(|e| device_error("speaker", "cannot query", e))?;
        let (config, format) = pick_config(configs, channels).ok_or_else(|| {
            MediaError::Device(format!(
                "speaker offers no {SAMPLE_RATE} Hz {channels}-channel i16 or f32 playback"
            ))
        })?;
        let ring =
            Ring::new(SAMPLE_RATE as usize * usize::from(channels) * SPEAKER_BUFFER_MS / 1000);
        let stream = match format {
            SampleFormat::I16 => build_output::<i16>(&device, config, &ring)?,
            _ => build_output::<f32>(&device, config, &ring)?,
        };
        stream
            .play()
            .map_err(|e| MediaError::Device(format!("cannot start speaker: {e}")))?;
        tracing::info!(channels, ?format, "speaker opened");
        Ok(Speaker {
            _stream: stream,
            ring,
            channels,
        })
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    /// Queues interleaved samples for playback without blocking. Beyond 200 ms of queued audio
    /// the oldest is dropped. Fails if the device reported an error.
    pub fn write(&mut self, pcm: &[i16]) -> Result<()> {
        if let Some(e) = self.ring.state.lock().error.take() {
            return Err(MediaError::Device(format!("speaker: {e}")));
        }
        self.ring.push(pcm.iter().copied());
        Ok(())
    }

    /// Samples queued and not yet played.
    pub fn queued_samples(&self) -> usize {
        self.ring.state.lock().samples.len()
    }
}

fn build_output<T>(
    device: &cpal::Device,
    config: StreamConfig,
    ring: &Arc<Ring>,
) -> Result<cpal::Stream>
where
    T: SizedSample + FromSample<i16> + Send + 'static,
{
    let data_ring = ring.clone();
    let error_ring = ring.clone();
    device
        .build_output_stream::<T, _, _>(
            config,
            move |out: &mut [T], _| {
                let mut st = data_ring.state.lock();
                let n = st.samples.len().min(out.len());
                for (dst, src) in out.iter_mut().zip(st.samples.drain(..n)) {
                    *dst = T::from_sample_(src);
                }
                // On underrun cpal's pre-filled silence plays for the rest.
            },
            move |e| error_ring.fail(e.to_string()),
            None,
        )
        .map_err(|e| device_error("speaker", "cannot open", e))
}
