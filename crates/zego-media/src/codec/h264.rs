//! H.264 through OpenH264, configured the way WebRTC uses it: constrained baseline (no B-frames),
//! one slice per picture, bitrate-mode rate control with frame skipping off, no lookahead, and
//! keyframes on request. Output is Annex-B; every IDR carries its SPS and PPS, so a receiver can
//! start decoding at any keyframe.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};
use openh264_sys2::{
    SBitrateInfo, WelsTraceCallback, ENCODER_OPTION, ENCODER_OPTION_BITRATE,
    ENCODER_OPTION_FRAME_RATE, ENCODER_OPTION_MAX_BITRATE, ENCODER_OPTION_TRACE_CALLBACK,
    ENCODER_OPTION_TRACE_LEVEL, SPATIAL_LAYER_0, SPATIAL_LAYER_ALL, WELS_LOG_ERROR,
    WELS_LOG_WARNING,
};

use crate::error::{MediaError, Result};
use crate::frame::VideoFrame;

/// Lowest bitrate accepted; OpenH264 rejects a bitrate below the frame rate, and below this
/// no picture is watchable anyway.
pub const MIN_BITRATE_BPS: u32 = 10_000;
/// Highest bitrate accepted (H.264 level 5.2 limit for baseline).
pub const MAX_BITRATE_BPS: u32 = 240_000_000;
/// Frame rates OpenH264 accepts.
pub const FPS_RANGE: std::ops::RangeInclusive<f32> = 1.0..=60.0;
/// OpenH264's resolution limit.
pub const MAX_WIDTH: u32 = 3840;
pub const MAX_HEIGHT: u32 = 2160;

/// Encoder settings. Changing the resolution takes a new encoder; bitrate and frame rate can
/// change on the fly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H264Config {
    pub width: u32,
    pub height: u32,
    pub fps: f32,
    pub bitrate_bps: u32,
    /// Frames between automatic keyframes; 0 = keyframes only on request.
    pub keyframe_interval: u32,
}

impl H264Config {
    /// Settings with keyframes only on request.
    pub fn new(width: u32, height: u32, fps: f32, bitrate_bps: u32) -> Self {
        H264Config {
            width,
            height,
            fps,
            bitrate_bps,
            keyframe_interval: 0,
        }
    }

    /// Checks the settings against what the encoder supports.
    pub fn validate(&self) -> Result<()> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 || w % 2 != 0 || h % 2 != 0 {
            return Err(MediaError::InvalidParameter(format!(
                "H.264 needs even, non-zero width and height, got {w}x{h}"
            )));
        }
        if w.max(h) > MAX_WIDTH || w.min(h) > MAX_HEIGHT {
            return Err(MediaError::InvalidParameter(format!(
                "H.264 encoder supports up to {MAX_WIDTH}x{MAX_HEIGHT}, got {w}x{h}"
            )));
        }
        if !FPS_RANGE.contains(&self.fps) {
            return Err(MediaError::InvalidParameter(format!(
                "frame rate {} is outside {:?}",
                self.fps, FPS_RANGE
            )));
        }
        if !(MIN_BITRATE_BPS..=MAX_BITRATE_BPS).contains(&self.bitrate_bps) {
            return Err(MediaError::InvalidParameter(format!(
                "bitrate {} b/s is outside {MIN_BITRATE_BPS}..={MAX_BITRATE_BPS}",
                self.bitrate_bps
            )));
        }
        Ok(())
    }

    fn openh264(&self) -> EncoderConfig {
        EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(self.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(self.fps))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(self.keyframe_interval))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            // A scene cut would otherwise insert unrequested, oversized I-frames.
            .scene_change_detect(false)
            .complexity(Complexity::Medium)
            // The caller owns the encode thread; internal threads would add slices and jitter.
            .num_threads(1)
    }
}

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVideo {
    /// Annex-B access unit (NAL units each behind a 4-byte start code).
    pub data: Vec<u8>,
    /// An IDR picture, preceded by SPS and PPS: decoding can start here.
    pub keyframe: bool,
}

/// Borrows a [`VideoFrame`] as OpenH264 input without copying.
struct FrameSource<'a>(&'a VideoFrame);

impl YUVSource for FrameSource<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width as usize, self.0.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (
            self.0.stride_y as usize,
            self.0.stride_u as usize,
            self.0.stride_v as usize,
        )
    }

    fn y(&self) -> &[u8] {
        &self.0.y
    }

    fn u(&self) -> &[u8] {
        &self.0.u
    }

    fn v(&self) -> &[u8] {
        &self.0.v
    }
}

/// H.264 encoder for one resolution.
pub struct H264Encoder {
    config: H264Config,
    encoder: Encoder,
    /// OpenH264 initialises itself on the first frame; options can only be set after that.
    started: bool,
}

impl H264Encoder {
    pub fn new(config: H264Config) -> Result<Self> {
        config.validate()?;
        let encoder = Self::build(&config)?;
        tracing::debug!(?config, "H.264 encoder created");
        Ok(H264Encoder {
            config,
            encoder,
            started: false,
        })
    }

    fn build(config: &H264Config) -> Result<Encoder> {
        let mut encoder =
            Encoder::with_api_config(OpenH264API::from_source(), config.openh264())
                .map_err(|e| MediaError::Encoder(format!("cannot create encoder: {e}")))?;
        // OpenH264 logs to stderr by default; route it to tracing instead. This is one of the
        // few options accepted before the encoder initialises.
        let mut callback: WelsTraceCallback = Some(openh264_log);
        // SAFETY: the option takes a pointer to a WelsTraceCallback, read during the call.
        let rc = unsafe {
            encoder
                .raw_api()
                .set_option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())
        };
        if rc != 0 {
            tracing::debug!(rc, "OpenH264 log callback not installed");
        }
        Ok(encoder)
    }

    pub fn config(&self) -> &H264Config {
        &self.config
    }

    /// Encodes one frame. `force_keyframe` makes it an IDR. Returns `None` when the encoder
    /// produced nothing for this frame.
    pub fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedVideo>> {
        frame.validate()?;
        if (frame.width, frame.height) != (self.config.width, self.config.height) {
            return Err(MediaError::InvalidFrame(format!(
                "frame is {}x{} but the encoder was made for {}x{}; a new resolution needs a new encoder",
                frame.width, frame.height, self.config.width, self.config.height
            )));
        }
        if force_keyframe && self.started {
            self.encoder.force_intra_frame();
        }
        let timestamp = Timestamp::from_millis(frame.capture_time_us / 1000);
        let (frame_type, data) = {
            let bitstream = self
                .encoder
                .encode_at(&FrameSource(frame), timestamp)
                .map_err(|e| MediaError::Encoder(format!("encoding frame failed: {e}")))?;
            (bitstream.frame_type(), bitstream.to_vec())
        };
        if !self.started {
            self.started = true;
            // The first encode initialised the encoder and muted its log; keep warnings.
            let mut level = WELS_LOG_WARNING as c_int;
            self.set_option(ENCODER_OPTION_TRACE_LEVEL, (&raw mut level).cast());
        }
        let keyframe = match frame_type {
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
            FrameType::Skip | FrameType::Invalid => {
                tracing::trace!(frame = frame.frame_number, "encoder skipped a frame");
                return Ok(None);
            }
        };
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedVideo { data, keyframe }))
    }

    /// Changes the target bitrate from the next frame on (clamped to the supported range).
    pub fn set_bitrate(&mut self, bps: u32) {
        let bps = bps.clamp(MIN_BITRATE_BPS, MAX_BITRATE_BPS);
        let old = self.config.bitrate_bps;
        self.config.bitrate_bps = bps;
        if !self.started {
            self.rebuild();
            return;
        }
        // OpenH264 rejects a target above the maximum, so raise the maximum first when going up
        // and lower it last when going down.
        let target = (ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL);
        let max = (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0);
        let order = if bps >= old {
            [max, target]
        } else {
            [target, max]
        };
        let ok = order
            .into_iter()
            .all(|(option, layer)| self.set_bitrate_option(option, layer, bps));
        if ok {
            tracing::debug!(bps, "H.264 bitrate changed");
        } else {
            tracing::warn!(bps, "OpenH264 refused the new bitrate");
        }
    }

    /// Changes the frame rate the rate control plans for (clamped to 1..=60).
    pub fn set_fps(&mut self, fps: f32) {
        let fps = if fps.is_finite() {
            fps.clamp(*FPS_RANGE.start(), *FPS_RANGE.end())
        } else {
            *FPS_RANGE.start()
        };
        self.config.fps = fps;
        if !self.started {
            self.rebuild();
            return;
        }
        let mut value = fps;
        if !self.set_option(ENCODER_OPTION_FRAME_RATE, (&raw mut value).cast()) {
            tracing::warn!(fps, "OpenH264 refused the new frame rate");
        }
    }

    /// Before the first frame nothing is initialised yet: start over with the new settings.
    fn rebuild(&mut self) {
        match Self::build(&self.config) {
            Ok(encoder) => self.encoder = encoder,
            Err(e) => tracing::warn!(error = %e, "cannot rebuild H.264 encoder"),
        }
    }

    fn set_bitrate_option(&mut self, option: ENCODER_OPTION, layer: i32, bps: u32) -> bool {
        let mut info = SBitrateInfo {
            iLayer: layer,
            iBitrate: bps as i32,
        };
        self.set_option(option, (&raw mut info).cast())
    }

    fn set_option(&mut self, option: ENCODER_OPTION, value: *mut c_void) -> bool {
        // SAFETY: the encoder is initialised (a frame went through), and `value` points to the
        // type OpenH264 documents for `option`, alive for the duration of the call.
        unsafe { self.encoder.raw_api().set_option(option, value) == 0 }
    }
}

/// Forwards OpenH264's log lines to tracing. Its warnings are mostly notes about adjusted
/// parameters (such as rate control without frame skipping), so they go out at debug level.
unsafe extern "C" fn openh264_log(_ctx: *mut c_void, level: c_int, line: *const c_char) {
    if line.is_null() {
        return;
    }
    // SAFETY: OpenH264 passes a NUL-terminated buffer that lives for the call.
    let line = unsafe { CStr::from_ptr(line) }.to_string_lossy();
    let line = line.trim_end();
    if level <= WELS_LOG_ERROR as c_int {
        tracing::warn!(target: "openh264", "{line}");
    } else if level <= WELS_LOG_WARNING as c_int {
        tracing::debug!(target: "openh264", "{line}");
    } else {
        tracing::trace!(target: "openh264", "{line}");
    }
}

/// What an access unit holds, read by the one H.264 module of the media contract.
pub use zego_rtp::h264::{annex_b_nal_types as nal_types, contains_idr};

/// H.264 decoder. Any resolution; a resolution change arrives with a new SPS.
pub struct H264Decoder {
    decoder: Decoder,
    frames_out: u64,
}

impl H264Decoder {
    pub fn new() -> Result<Self> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| MediaError::Decoder(format!("cannot create decoder: {e}")))?;
        Ok(H264Decoder {
            decoder,
            frames_out: 0,
        })
    }

    /// Decodes one Annex-B access unit. `None` if it completed no picture (e.g. parameter sets
    /// only). An error means the data was corrupt or referenced a picture that was lost: drop
    /// frames until the next keyframe.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<VideoFrame>> {
        if access_unit.is_empty() {
            return Err(MediaError::InvalidParameter(
                "empty H.264 access unit".into(),
            ));
        }
        let decoded = self
            .decoder
            .decode(access_unit)
            .map_err(|e| MediaError::Decoder(e.to_string()))?;
        let Some(yuv) = decoded else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let (sy, su, sv) = yuv.strides();
        let mut frame = VideoFrame::from_i420(
            w as u32,
            h as u32,
            yuv.y(),
            sy as u32,
            yuv.u(),
            su as u32,
            yuv.v(),
            sv as u32,
        )
        .map_err(|e| MediaError::Decoder(format!("decoder returned an unusable picture: {e}")))?;
        self.frames_out += 1;
        frame.frame_number = self.frames_out;
        Ok(Some(frame))
    }
}
