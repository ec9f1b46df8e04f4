//! Codec timing on this machine, as JSON: milliseconds per frame for H.264 encode and decode of
//! the synthetic camera at 640x360 and 1280x720, and Opus per 20 ms stereo frame.
//!
//! `cargo run --release -p zego-media --example codec_bench`

use std::time::Instant;

use zego_media::{
    H264Config, H264Decoder, H264Encoder, OpusDecoder, OpusEncoder, SyntheticCamera,
    SyntheticMicrophone,
};

const FRAMES: u64 = 150;

struct VideoResult {
    width: u32,
    height: u32,
    bitrate: u32,
    encode_ms: f64,
    encode_max_ms: f64,
    decode_ms: f64,
    decode_max_ms: f64,
    measured_bps: f64,
}

fn bench_video(width: u32, height: u32, bitrate: u32) -> VideoResult {
    let mut cam = SyntheticCamera::new(width, height);
    let mut enc = H264Encoder::new(H264Config::new(width, height, 30.0, bitrate)).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let frames: Vec<_> = (0..FRAMES).map(|n| cam.frame(n * 33_333, n)).collect();
    let (mut enc_total, mut enc_max, mut dec_total, mut dec_max, mut bytes) =
        (0.0, 0.0f64, 0.0, 0.0f64, 0);
    for f in &frames {
        let t = Instant::now();
        let au = enc.encode(f, false).unwrap().unwrap();
        let e = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        dec.decode(&au.data).unwrap().unwrap();
        let d = t.elapsed().as_secs_f64() * 1e3;
        enc_total += e;
        enc_max = enc_max.max(e);
        dec_total += d;
        dec_max = dec_max.max(d);
        bytes += au.data.len();
    }
    VideoResult {
        width,
        height,
        bitrate,
        encode_ms: enc_total / FRAMES as f64,
        encode_max_ms: enc_max,
        decode_ms: dec_total / FRAMES as f64,
        decode_max_ms: dec_max,
        measured_bps: bytes as f64 * 8.0 * 30.0 / FRAMES as f64,
    }
}

fn main() {
    let video: Vec<String> = [(640, 360, 600_000), (1280, 720, 2_500_000)]
        .into_iter()
        .map(|(w, h, b)| {
            let r = bench_video(w, h, b);
            format!(
                "{{\"width\":{},\"height\":{},\"target_bps\":{},\"measured_bps\":{:.0},\"encode_ms\":{:.3},\"encode_max_ms\":{:.3},\"decode_ms\":{:.3},\"decode_max_ms\":{:.3}}}",
                r.width, r.height, r.bitrate, r.measured_bps, r.encode_ms, r.encode_max_ms, r.decode_ms, r.decode_max_ms
            )
        })
        .collect();

    let mut mic = SyntheticMicrophone::new(48_000, 2, 440.0);
    let mut enc = OpusEncoder::new(48_000, 2, 64_000).unwrap();
    let mut dec = OpusDecoder::new(48_000, 2).unwrap();
    let mut pcm = vec![0i16; 1920];
    let mut out = Vec::new();
    let (mut e, mut d) = (0.0, 0.0);
    let n = 500;
    for _ in 0..n {
        mic.read(&mut pcm);
        let t = Instant::now();
        let packet = enc.encode(&pcm).unwrap();
        e += t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        dec.decode(Some(&packet), &mut out).unwrap();
        d += t.elapsed().as_secs_f64() * 1e3;
    }
    println!(
        "{{\"h264\":[{}],\"opus_20ms_stereo\":{{\"encode_ms\":{:.4},\"decode_ms\":{:.4}}}}}",
        video.join(","),
        e / f64::from(n),
        d / f64::from(n)
    );
}
