//! Opus through `unsafe-libopus` (libopus 1.3.1 in Rust, no system library). Interleaved i16
//! PCM, mono or stereo; WebRTC sends 48 kHz 20 ms frames.

use unsafe_libopus::{
    opus_decode, opus_decoder_create, opus_decoder_ctl, opus_decoder_destroy,
    opus_decoder_get_nb_samples, opus_encode, opus_encoder_create, opus_encoder_ctl,
    opus_encoder_destroy, opus_strerror, OPUS_APPLICATION_VOIP,
    OPUS_GET_LAST_PACKET_DURATION_REQUEST, OPUS_OK, OPUS_SET_BITRATE_REQUEST,
    OPUS_SET_INBAND_FEC_REQUEST, OPUS_SET_PACKET_LOSS_PERC_REQUEST,
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

/// Opus decoder with packet loss concealment and FEC recovery.
pub struct OpusDecoder {
    state: *mut unsafe_libopus::OpusDecoder,
    sample_rate: u32,
    channels: u16,
}

// SAFETY: the decoder state is plain memory owned by this value and used through &mut only.
unsafe impl Send for OpusDecoder {}

impl OpusDecoder {
    pub fn new(sample_rate: u32, channels: u16) -> Result<Self> {
        check_format(sample_rate, channels)?;
        let mut err = 0;
        // SAFETY: arguments were validated; `err` is a valid out pointer.
        let state =
            unsafe { opus_decoder_create(sample_rate as i32, i32::from(channels), &mut err) };
        if state.is_null() || err != OPUS_OK {
            if !state.is_null() {
                // SAFETY: created above and not used afterwards.
                unsafe { opus_decoder_destroy(state) };
            }
            return Err(opus_error("opus_decoder_create", err));
        }
        Ok(OpusDecoder {
            state,
            sample_rate,
            channels,
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
                self.run(Some(data), samples, false, out)
            }
            None => {
                let samples = self.last_packet_samples();
                self.run(None, samples, false, out)
            }
        }
    }

    /// Rebuilds the packet before `next_packet`, which was lost, from the FEC data inside
    /// `next_packet` (or conceals it when there is none). Decode `next_packet` itself afterwards.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut Vec<i16>) -> Result<usize> {
        if next_packet.is_empty() {
            return Err(MediaError::InvalidParameter("empty Opus packet".into()));
        }
        let samples = self.packet_samples(next_packet)?;
        self.run(Some(next_packet), samples, true, out)
    }

    fn packet_samples(&self, data: &[u8]) -> Result<usize> {
        // SAFETY: valid decoder state and a readable buffer of the given length.
        let n =
            unsafe { opus_decoder_get_nb_samples(self.state, data.as_ptr(), data.len() as i32) };
        if n < 0 {
            return Err(opus_error("opus_decoder_get_nb_samples", n));
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

    /// Duration of the last decoded packet, or 20 ms before the first.
    fn last_packet_samples(&self) -> usize {
        let mut n = 0i32;
        // SAFETY: valid decoder state; the request writes one i32.
        let rc =
            unsafe { opus_decoder_ctl!(self.state, OPUS_GET_LAST_PACKET_DURATION_REQUEST, &mut n) };
        if rc == OPUS_OK && n > 0 {
            n as usize
        } else {
            self.sample_rate as usize / 50
        }
    }

    fn run(
        &mut self,
        data: Option<&[u8]>,
        samples: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize> {
        let channels = usize::from(self.channels);
        out.clear();
        out.resize(samples * channels, 0);
        let (ptr, len) = data.map_or((std::ptr::null(), 0), |d| (d.as_ptr(), d.len() as i32));
        // SAFETY: `out` has room for `samples` per channel; `ptr`/`len` describe a live buffer
        // or are null/0, which libopus treats as a lost packet.
        let n = unsafe {
            opus_decode(
                self.state,
                ptr,
                len,
                out.as_mut_ptr(),
                samples as i32,
                i32::from(fec),
            )
        };
        if n < 0 {
            out.clear();
            return Err(opus_error("opus_decode", n));
        }
        out.truncate(n as usize * channels);
        Ok(n as usize)
    }
}

impl Drop for OpusDecoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create and dropped once.
        unsafe { opus_decoder_destroy(self.state) };
    }
}
