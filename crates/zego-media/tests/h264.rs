//! H.264 behaviour the media path relies on: stamps survive real-time bitrates, keyframes come
//! on request and can start a decoder, and rate control lands near its target.

use zego_media::codec::h264::{contains_idr, nal_types};
use zego_media::stamp::{self, Stamp};
use zego_media::{H264Config, H264Decoder, H264Encoder, MediaError, SyntheticCamera, VideoFrame};

const FPS: f32 = 30.0;
const START_US: u64 = 1_760_000_000_000_000;

fn capture_time(n: u64) -> u64 {
    START_US + n * 33_333
}

/// Encodes `frames` camera frames, returning each access unit with the frame's number.
fn encode_run(
    cam: &mut SyntheticCamera,
    enc: &mut H264Encoder,
    range: std::ops::Range<u64>,
    keyframe_at: Option<u64>,
) -> Vec<(u64, Vec<u8>, bool)> {
    range
        .filter_map(|n| {
            let frame = cam.frame(capture_time(n), n);
            let out = enc.encode(&frame, keyframe_at == Some(n)).unwrap()?;
            Some((n, out.data, out.keyframe))
        })
        .collect()
}

#[test]
fn stamps_survive_encode_and_decode_exactly_at_every_size() {
    for (w, h, bps) in [
        (320, 180, 250_000),
        (640, 360, 600_000),
        (1280, 720, 2_500_000),
        // Far below what anyone watches: the stamp still has margin.
        (640, 360, 100_000),
    ] {
        let mut cam = SyntheticCamera::new(w, h);
        let mut enc = H264Encoder::new(H264Config::new(w, h, FPS, bps)).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let frames = 150;
        let mut read = 0;
        for n in 0..frames {
            let frame = cam.frame(capture_time(n), n);
            let au = enc
                .encode(&frame, false)
                .unwrap()
                .expect("no skipped frames");
            let decoded = dec.decode(&au.data).unwrap().expect("a picture per frame");
            assert_eq!((decoded.width, decoded.height), (w, h));
            assert_eq!(
                stamp::read(&decoded),
                Some(Stamp {
                    capture_time_us: capture_time(n),
                    frame_number: n
                }),
                "{w}x{h} frame {n}"
            );
            read += 1;
        }
        assert_eq!(read, frames);
    }
}

#[test]
fn a_damaged_stamp_reads_as_none_not_as_a_wrong_value() {
    let mut cam = SyntheticCamera::new(640, 360);
    let mut enc = H264Encoder::new(H264Config::new(640, 360, FPS, 600_000)).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut last = None;
    for n in 0..10 {
        let au = enc.encode(&cam.frame(capture_time(n), n), false).unwrap();
        last = dec.decode(&au.unwrap().data).unwrap();
    }
    let decoded = last.unwrap();
    assert!(stamp::read(&decoded).is_some());
    let block = stamp::block_size(640, 360).unwrap() as usize;

    // Every single block inverted, one at a time: never a wrong stamp.
    for bit in 0..(stamp::COLUMNS * stamp::ROWS) as usize {
        let (bx, by) = (bit % 40, bit / 40);
        let mut f = decoded.clone();
        for y in by * block..(by + 1) * block {
            for x in bx * block..(bx + 1) * block {
                let p = &mut f.y[y * 640 + x];
                *p = if *p > 128 { 16 } else { 235 };
            }
        }
        assert_eq!(stamp::read(&f), None, "bit {bit} flipped");
    }

    // The left half of one frame's strip over another's: a torn picture.
    let mut other = cam.frame(capture_time(999), 999);
    let strip = stamp::strip_height(640, 360) as usize;
    for y in 0..strip {
        other.y[y * 640..y * 640 + 320].copy_from_slice(&decoded.y[y * 640..y * 640 + 320]);
    }
    assert_eq!(stamp::read(&other), None);

    // A grey smear over part of the strip.
    let mut smeared = decoded.clone();
    for y in 0..strip / 2 {
        smeared.y[y * 640 + 100..y * 640 + 300].fill(128);
    }
    assert_eq!(stamp::read(&smeared), None);
}

#[test]
fn keyframes_come_first_and_on_request_only_and_carry_parameter_sets() {
    let mut cam = SyntheticCamera::new(640, 360);
    let mut enc = H264Encoder::new(H264Config::new(640, 360, FPS, 600_000)).unwrap();
    let run = encode_run(&mut cam, &mut enc, 0..60, Some(40));
    assert_eq!(run.len(), 60, "frame skipping must be off");
    let keyframes: Vec<u64> = run.iter().filter(|r| r.2).map(|r| r.0).collect();
    assert_eq!(keyframes, [0, 40]);
    for (n, data, key) in &run {
        assert_eq!(contains_idr(data), *key, "frame {n}");
        let types: Vec<u8> = nal_types(data).collect();
        if *key {
            assert!(
                types.starts_with(&[7, 8]) && types.contains(&5),
                "frame {n}: {types:?}"
            );
        } else {
            assert!(types.iter().all(|&t| t == 1), "frame {n}: {types:?}");
        }
    }
    // Constrained baseline: profile_idc 66 with constraint_set1 set.
    let sps = &run[0].1;
    let at = sps.windows(5).position(|w| w[..4] == [0, 0, 0, 1]).unwrap();
    assert_eq!(sps[at + 4] & 0x1F, 7);
    assert_eq!(sps[at + 5], 66, "profile_idc");
    assert_ne!(sps[at + 6] & 0x40, 0, "constraint_set1_flag");

    // A decoder joining at the requested keyframe decodes everything from there on.
    let mut late = H264Decoder::new().unwrap();
    for (n, data, _) in &run[40..] {
        let f = late.decode(data).unwrap().expect("picture");
        assert_eq!(stamp::read(&f).unwrap().frame_number, *n);
    }
}

#[test]
fn periodic_keyframes_follow_the_interval() {
    let mut cam = SyntheticCamera::new(320, 180);
    let mut cfg = H264Config::new(320, 180, FPS, 300_000);
    cfg.keyframe_interval = 30;
    let mut enc = H264Encoder::new(cfg).unwrap();
    let run = encode_run(&mut cam, &mut enc, 0..95, None);
    let keyframes: Vec<u64> = run.iter().filter(|r| r.2).map(|r| r.0).collect();
    assert_eq!(keyframes, [0, 30, 60, 90]);
}

#[test]
fn a_decoder_without_a_keyframe_produces_no_picture() {
    let mut cam = SyntheticCamera::new(320, 180);
    let mut enc = H264Encoder::new(H264Config::new(320, 180, FPS, 300_000)).unwrap();
    let run = encode_run(&mut cam, &mut enc, 0..5, None);
    let mut dec = H264Decoder::new().unwrap();
    for (_, data, _) in &run[1..] {
        // Either an error or nothing: never a picture built on a missing reference.
        if let Ok(picture) = dec.decode(data) {
            assert!(picture.is_none());
        }
    }
    assert!(dec.decode(&[]).is_err());
    // Garbage that looks like an IDR slice header is not a picture either.
    let garbage = [0, 0, 0, 1, 0x65, 0xFF, 0x00, 0x13, 0x77, 0x42];
    assert!(!matches!(dec.decode(&garbage), Ok(Some(_))));
}

fn measure_bps(w: u32, h: u32, target: u32) -> f64 {
    let mut cam = SyntheticCamera::new(w, h);
    let mut enc = H264Encoder::new(H264Config::new(w, h, FPS, target)).unwrap();
    // Three seconds of 30 fps.
    let run = encode_run(&mut cam, &mut enc, 0..90, None);
    let bytes: usize = run.iter().map(|r| r.1.len()).sum();
    bytes as f64 * 8.0 / 3.0
}

#[test]
fn encoded_bitrate_lands_near_the_target() {
    for (w, h, target) in [
        (320, 180, 250_000),
        (640, 360, 600_000),
        (1280, 720, 2_500_000),
    ] {
        let bps = measure_bps(w, h, target);
        let ratio = bps / f64::from(target);
        println!("{w}x{h}: target {target} b/s, measured {bps:.0} b/s ({ratio:.2})");
        assert!(
            (0.5..=1.5).contains(&ratio),
            "{w}x{h}: {bps:.0} b/s for a {target} b/s target"
        );
    }
}

#[test]
fn bitrate_changes_take_effect_mid_stream() {
    let mut cam = SyntheticCamera::new(640, 360);
    let mut enc = H264Encoder::new(H264Config::new(640, 360, FPS, 1_200_000)).unwrap();
    let first = encode_run(&mut cam, &mut enc, 0..90, None);
    enc.set_bitrate(400_000);
    assert_eq!(enc.config().bitrate_bps, 400_000);
    let second = encode_run(&mut cam, &mut enc, 90..180, None);
    enc.set_bitrate(900_000);
    let third = encode_run(&mut cam, &mut enc, 180..270, None);
    let rate = |r: &[(u64, Vec<u8>, bool)]| {
        // Skip the first half second after a change while rate control settles.
        r[15..].iter().map(|x| x.1.len()).sum::<usize>() as f64 * 8.0 / 2.5
    };
    let (a, b, c) = (rate(&first), rate(&second), rate(&third));
    println!("1.2 Mb/s -> {a:.0}, 400 kb/s -> {b:.0}, 900 kb/s -> {c:.0}");
    assert!((0.75..=1.25).contains(&(a / 1_200_000.0)), "{a}");
    assert!((0.75..=1.25).contains(&(b / 400_000.0)), "{b}");
    assert!((0.75..=1.25).contains(&(c / 900_000.0)), "{c}");
}

#[test]
fn bad_configs_and_mismatched_frames_are_errors() {
    assert!(H264Encoder::new(H264Config::new(641, 360, FPS, 600_000)).is_err());
    assert!(H264Encoder::new(H264Config::new(0, 360, FPS, 600_000)).is_err());
    assert!(H264Encoder::new(H264Config::new(640, 360, 0.0, 600_000)).is_err());
    assert!(H264Encoder::new(H264Config::new(640, 360, FPS, 0)).is_err());
    assert!(H264Encoder::new(H264Config::new(8192, 360, FPS, 600_000)).is_err());

    let mut enc = H264Encoder::new(H264Config::new(640, 360, FPS, 600_000)).unwrap();
    let wrong = VideoFrame::new_black(320, 180);
    assert!(matches!(
        enc.encode(&wrong, false),
        Err(MediaError::InvalidFrame(_))
    ));
    let mut broken = VideoFrame::new_black(640, 360);
    broken.y.truncate(100);
    assert!(enc.encode(&broken, false).is_err());
    // Still usable afterwards.
    assert!(enc
        .encode(&VideoFrame::new_black(640, 360), false)
        .unwrap()
        .is_some_and(|e| e.keyframe));
}

#[test]
fn padded_strides_encode_like_tight_ones() {
    let mut cam = SyntheticCamera::new(320, 180);
    let tight = cam.frame(capture_time(1), 1);
    let pad = |p: &[u8], w: usize| -> Vec<u8> {
        p.chunks(w)
            .flat_map(|r| r.iter().copied().chain([0u8; 32]))
            .collect()
    };
    let padded = VideoFrame {
        y: pad(&tight.y, 320),
        u: pad(&tight.u, 160),
        v: pad(&tight.v, 160),
        stride_y: 352,
        stride_u: 192,
        stride_v: 192,
        ..tight.clone()
    };
    let mut a = H264Encoder::new(H264Config::new(320, 180, FPS, 300_000)).unwrap();
    let mut b = H264Encoder::new(H264Config::new(320, 180, FPS, 300_000)).unwrap();
    assert_eq!(
        a.encode(&tight, false).unwrap(),
        b.encode(&padded, false).unwrap()
    );
}

#[test]
fn one_decoder_follows_a_resolution_change_at_a_keyframe() {
    let mut dec = H264Decoder::new().unwrap();
    for (w, h) in [(320, 180), (640, 360), (320, 180)] {
        let mut cam = SyntheticCamera::new(w, h);
        let mut enc = H264Encoder::new(H264Config::new(w, h, FPS, 400_000)).unwrap();
        for (n, data, _) in encode_run(&mut cam, &mut enc, 0..5, None) {
            let f = dec.decode(&data).unwrap().expect("picture");
            assert_eq!(
                (f.width, f.height, stamp::read(&f).unwrap().frame_number),
                (w, h, n)
            );
        }
    }
}

#[test]
fn codecs_can_move_to_their_own_threads() {
    fn send<T: Send>() {}
    send::<H264Encoder>();
    send::<H264Decoder>();
    send::<zego_media::OpusEncoder>();
    send::<zego_media::OpusDecoder>();
    send::<SyntheticCamera>();
    send::<zego_media::SyntheticMicrophone>();
}
