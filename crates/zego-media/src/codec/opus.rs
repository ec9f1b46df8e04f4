//! Opus without a system library: the encoder through `unsafe-libopus` (libopus 1.3.1 in Rust), the decoder
//! through `rusty-opus`. Interleaved i16 PCM, mono or stereo; WebRTC sends 48 kHz 20 ms frames.

use unsafe_libopus::{
    opus_encode, opus_encoder_create, opus_encoder_ctl, opus_encoder_destroy,
    opus_packet_get_nb_samples, opus_strerror, OPUS_APPLICATION_VOIP, OPUS_OK,
    OPUS_SET_BITRATE_REQUEST, OPUS_SET_INBAND_FEC_REQUEST, OPUS_SET_PACKET_LOSS_PERC_REQUEST,
};

use crate::error::{MediaError, Result};

/// Sample rates libopus runs at.
pub const SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// Bitrates libopus accepts.
pub const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=510_000;
/// Largest packet libopus produces (RFC 6716 bound for one 120 ms packet).
const MAX_PACKET: usize = 1_275 * 3 + 7;
/// Longest packet duration: 120 ms.
const MAX_FRAME_MS: u32 = 120;

fn opus_error(op: &'static str, code: i32) -> MediaError {
    MediaError::Opus {
        op,
        code,
        message: opus_strerror(code).to_string(),
    }
}

fn check_format(sample_rate: u32, channels: u16) -> Result<()> {
    if !SAMPLE_RATES.contains(&sample_rate) {
        return Err(MediaError::InvalidParameter(format!(
            "Opus sample rate {sample_rate} Hz is not one of {SAMPLE_RATES:?}"
        )));
    }
    if channels != 1 && channels != 2 {
        return Err(MediaError::InvalidParameter(format!(
            "Opus supports 1 or 2 channels, got {channels}"
        )));
    }
    Ok(())
}

/// Opus encoder in VoIP mode (the mode with in-band FEC and the best speech quality at low
/// bitrates), as WebRTC configures it.
pub struct OpusEncoder {
    state: *mut unsafe_libopus::OpusEncoder,
    sample_rate: u32,
    channels: u16,
    out: Vec<u8>,
}

// SAFETY: the encoder state is plain memory owned by this value and used through &mut only.
unsafe impl Send for OpusEncoder {}

impl OpusEncoder {
    pub fn new(sample_rate: u32, channels: u16, bitrate_bps: u32) -> Result<Self> {
        check_format(sample_rate, channels)?;
        let mut err = 0;
        // SAFETY: arguments were validated; `err` is a valid out pointer.
        let state = unsafe {
            opus_encoder_create(
                sample_rate as i32,
                i32::from(channels),
                OPUS_APPLICATION_VOIP,
                &mut err,
            )
        };
        if state.is_null() || err != OPUS_OK {
            if !state.is_null() {
                // SAFETY: created above and not used afterwards.
                unsafe { opus_encoder_destroy(state) };
            }
            return Err(opus_error("opus_encoder_create", err));
        }
        let mut encoder = OpusEncoder {
            state,
            sample_rate,
            channels,
            out: vec![0; MAX_PACKET],
        };
        encoder.try_set_bitrate(bitrate_bps)?;
        Ok(encoder)
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Encodes one frame of interleaved PCM. Its length per channel must be 2.5, 5, 10, 20, 40
    /// or 60 ms of samples (960 per channel for 20 ms at 48 kHz).
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>> {
        let channels = usize::from(self.channels);
        let per_channel = pcm.len() / channels;
        let per_2_5_ms = self.sample_rate as usize / 400;
        let valid = pcm.len() % channels == 0
            && [1, 2, 4, 8, 16, 24].contains(&(per_channel / per_2_5_ms))
            && per_channel % per_2_5_ms == 0;
        if !valid {
            return Err(MediaError::InvalidParameter(format!(
                "{} samples is not a whole Opus frame of 2.5-60 ms for {} channel(s) at {} Hz",
                pcm.len(),
                self.channels,
                self.sample_rate
            )));
        }
        // SAFETY: `pcm` holds `per_channel * channels` samples and `out` has MAX_PACKET bytes.
        let n = unsafe {
            opus_encode(
                self.state,
                pcm.as_ptr(),
                per_channel as i32,
                self.out.as_mut_ptr(),
                self.out.len() as i32,
            )
        };
        if n < 0 {
            return Err(opus_error("opus_encode", n));
        }
        Ok(self.out[..n as usize].to_vec())
    }

    /// Changes the target bitrate (clamped to 6..510 kb/s).
    pub fn set_bitrate(&mut self, bps: u32) {
        let bps = bps.clamp(*BITRATE_RANGE.start(), *BITRATE_RANGE.end());
        if let Err(e) = self.try_set_bitrate(bps) {
            tracing::warn!(error = %e, bps, "Opus refused the bitrate");
        }
    }

    fn try_set_bitrate(&mut self, bps: u32) -> Result<()> {
        if !BITRATE_RANGE.contains(&bps) {
            return Err(MediaError::InvalidParameter(format!(
                "Opus bitrate {bps} b/s is outside {BITRATE_RANGE:?}"
            )));
        }
        // SAFETY: valid encoder state; the request takes one i32.
        let rc = unsafe { opus_encoder_ctl!(self.state, OPUS_SET_BITRATE_REQUEST, bps as i32) };
        if rc != OPUS_OK {
            return Err(opus_error("OPUS_SET_BITRATE", rc));
        }
        Ok(())
    }

    /// Tells the encoder the expected packet loss (0..=100 %). Above 0 this also turns on
    /// in-band FEC, so a receiver can rebuild a lost frame from the next packet.
    pub fn set_packet_loss_percent(&mut self, percent: u8) {
        let percent = i32::from(percent.min(100));
        let fec = i32::from(percent > 0);
        // SAFETY: valid encoder state; both requests take one i32.
        let rc = unsafe {
            let a = opus_encoder_ctl!(self.state, OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent);
            let b = opus_encoder_ctl!(self.state, OPUS_SET_INBAND_FEC_REQUEST, fec);
            if a != OPUS_OK {
                a
            } else {
                b
            }
        };
        if rc != OPUS_OK {
            tracing::warn!(error = %opus_error("OPUS_SET_PACKET_LOSS_PERC", rc), "Opus refused the loss setting");
        }
    }
}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_encoder_create and dropped once.
        unsafe { opus_encoder_destroy(self.state) };
    }
}

/// Opus decoder with packet loss concealment and FEC recovery, through `rusty-opus` (a Rust port of the libopus
/// decoder). `unsafe-libopus` 0.2's decoder, which this replaced, turns SILK-mode loss concealment and the frame
/// after it into full-scale noise (see `tests/opus.rs`).
pub struct OpusDecoder {
    inner: rusty_opus::OpusDecoder,
    sample_rate: u32,
    channels: u16,
    /// Samples per channel of the last decoded packet (what a lost packet is concealed for).
    last_samples: usize,
    float: Vec<f32>,
}

fn decode_error(op: &'static str, e: rusty_opus::Error) -> MediaError {
    // libopus's codes for the same conditions.
    let code = match e {
        rusty_opus::Error::BadArg(_) => -1,
        rusty_opus::Error::BufferTooSmall(_) => -2,
        rusty_opus::Error::InvalidPacket(_) => -4,
        _ => -3,
    };
    MediaError::Opus {
        op,
        code,
        message: e.to_string(),
    }
}

impl OpusDecoder {
    pub fn new(sample_rate: u32, channels: u16) -> Result<Self> {
        check_format(sample_rate, channels)?;
        let inner = rusty_opus::OpusDecoder::new(sample_rate as i32, usize::from(channels))
            .map_err(|e| decode_error("opus decoder", e))?;
        Ok(OpusDecoder {
            inner,
            sample_rate,
            channels,
            last_samples: sample_rate as usize / 50,
            float: Vec::new(),
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Decodes a packet into `out` (replacing its contents with interleaved PCM) and returns
    /// the samples per channel. `None` conceals one lost packet, as long as the last one.
    pub fn decode(&mut self, packet: Option<&[u8]>, out: &mut Vec<i16>) -> Result<usize> {
        match packet {
            Some([]) => Err(MediaError::InvalidParameter("empty Opus packet".into())),
            Some(data) => {
                let samples = self.packet_samples(data)?;
                let n = self.run(data, samples, false, out)?;
                self.last_samples = n;
                Ok(n)
            }
            None => self.run(&[], self.last_samples, false, out),
        }
    }

    /// Rebuilds the packet before `next_packet`, which was lost, from the FEC data inside
    /// `next_packet` (or conceals it when there is none). Decode `next_packet` itself afterwards.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut Vec<i16>) -> Result<usize> {
        if next_packet.is_empty() {
            return Err(MediaError::InvalidParameter("empty Opus packet".into()));
        }
        let samples = self.packet_samples(next_packet)?;
        self.run(next_packet, samples, true, out)
    }

    fn packet_samples(&self, data: &[u8]) -> Result<usize> {
        // SAFETY: a readable buffer of the given length; the function only parses it.
        let n = unsafe {
            opus_packet_get_nb_samples(data.as_ptr(), data.len() as i32, self.sample_rate as i32)
        };
        if n < 0 {
            return Err(opus_error("opus_packet_get_nb_samples", n));
        }
        if n == 0 {
            return Err(MediaError::InvalidParameter(
                "Opus packet holds no audio".into(),
            ));
        }
        if n as u32 > self.sample_rate / 1000 * MAX_FRAME_MS {
            return Err(MediaError::InvalidParameter(format!(
                "Opus packet claims {n} samples, more than 120 ms"
            )));
        }
        Ok(n as usize)
    }

    /// Decodes `data` (empty: conceals) for `samples` per channel, or its FEC copy of the packet before it.
    fn run(&mut self, data: &[u8], samples: usize, fec: bool, out: &mut Vec<i16>) -> Result<usize> {
        let channels = usize::from(self.channels);
        out.clear();
        self.float.clear();
        self.float.resize(samples * channels, 0.0);
        let decoded = if fec {
            self.inner.decode_fec(data, samples, &mut self.float)
        } else {
            self.inner.decode(data, samples, &mut self.float)
        };
        let n = decoded.map_err(|e| decode_error("opus_decode", e))?;
        // libopus's float-to-16-bit conversion: scale, round, saturate.
        out.extend(
            self.float[..n * channels]
                .iter()
                .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
        );
        Ok(n)
    }
}
