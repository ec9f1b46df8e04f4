//! A short real H.264 clip, encoded once with openh264 from synthetic moving pictures.

use bytes::Bytes;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod};
use openh264::formats::YUVBuffer;
use openh264::OpenH264API;

/// Annex-B access units; frame 0 and every `gop`-th frame are IDR (with SPS/PPS in front).
pub struct EncodedClip {
    pub frames: Vec<Bytes>,
    pub gop: usize,
}

impl EncodedClip {
    /// Encodes off the async runtime: codec work is blocking.
    pub async fn encode(
        frames: usize,
        gop: usize,
        bitrate_bps: u32,
        width: usize,
        height: usize,
    ) -> EncodedClip {
        Self::encode_variant(frames, gop, bitrate_bps, width, height, 0).await
    }

    /// Clips of different `variant`s share no picture.
    pub async fn encode_variant(
        frames: usize,
        gop: usize,
        bitrate_bps: u32,
        width: usize,
        height: usize,
        variant: usize,
    ) -> EncodedClip {
        tokio::task::spawn_blocking(move || {
            Self::encode_blocking(frames, gop, bitrate_bps, width, height, variant)
        })
        .await
        .expect("encoder thread")
    }

    pub fn encode_blocking(
        frames: usize,
        gop: usize,
        bitrate_bps: u32,
        width: usize,
        height: usize,
        variant: usize,
    ) -> EncodedClip {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(30.0))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(gop as u32));
        let mut encoder =
            Encoder::with_api_config(OpenH264API::from_source(), config).expect("openh264 encoder");
        let mut yuv = vec![0u8; width * height * 3 / 2];
        let mut out = Vec::with_capacity(frames);
        for i in 0..frames {
            paint(&mut yuv, width, height, i, variant);
            if i % gop == 0 {
                encoder.force_intra_frame();
            }
            let buffer = YUVBuffer::from_vec(yuv.clone(), width, height);
            let bitstream = encoder.encode(&buffer).expect("encode");
            out.push(Bytes::from(bitstream.to_vec()));
        }
        EncodedClip { frames: out, gop }
    }

    /// Whether an access unit is an IDR picture.
    pub fn is_idr(access_unit: &[u8]) -> bool {
        zego_rtp::h264::contains_idr(access_unit)
    }
}

/// Moving diagonal stripes plus noise-free gradients: compressible, but every frame differs.
fn paint(yuv: &mut [u8], width: usize, height: usize, frame: usize, variant: usize) {
    let (luma, chroma) = yuv.split_at_mut(width * height);
    let stripe = 8 + variant * 4;
    for y in 0..height {
        for x in 0..width {
            luma[y * width + x] =
                (((x + y + frame * 4) / stripe % 2) * 160 + (x * 60 / width) + variant * 10) as u8;
        }
    }
    for (i, c) in chroma.iter_mut().enumerate() {
        *c = (128 + (i + frame + variant * 7) % 32) as u8;
    }
}

/// NAL units of an Annex-B byte stream (without start codes).
pub fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // Back over the start code and any zero byte of a 4-byte start code.
            let mut e = s - 3;
            while e > 0 && stream[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(stream.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(s, e)| &stream[s..e])
}
