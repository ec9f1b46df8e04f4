//! Opus behaviour the audio path relies on: a tone comes back at its frequency and level,
//! lost packets are concealed or rebuilt from FEC, and bad input is an error.

use zego_media::audio_mark::{self, MarkDetector};
use zego_media::{MediaError, OpusDecoder, OpusEncoder, SyntheticMicrophone};

const RATE: u32 = 48_000;
const FRAME: usize = 960; // 20 ms per channel

/// RMS of the synthetic tone outside its time marks: from 100 ms to 1 s of its capture clock.
fn quiet_rms() -> f64 {
    audio_mark::QUIET * f64::from(i16::MAX) / 2f64.sqrt()
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Frequency from rising zero crossings of one channel of interleaved audio.
fn frequency(samples: &[i16], channels: usize) -> f64 {
    let mono: Vec<i16> = samples.iter().step_by(channels).copied().collect();
    let crossings: Vec<usize> = mono
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
        .map(|(i, _)| i)
        .collect();
    let periods = (crossings.len() - 1) as f64;
    let span = (crossings[crossings.len() - 1] - crossings[0]) as f64;
    f64::from(RATE) * periods / span
}

fn encode_tone(channels: u16, tone: f32, frames: usize, enc: &mut OpusEncoder) -> Vec<Vec<u8>> {
    let mut mic = SyntheticMicrophone::new(RATE, channels, tone);
    let mut pcm = vec![0i16; FRAME * usize::from(channels)];
    (0..frames)
        .map(|_| {
            mic.read(&mut pcm);
            enc.encode(&pcm).unwrap()
        })
        .collect()
}

#[test]
fn a_tone_round_trips_with_its_frequency_and_energy() {
    for (channels, tone) in [(2u16, 440.0f32), (1, 1000.0)] {
        let mut enc = OpusEncoder::new(RATE, channels, 64_000).unwrap();
        let mut dec = OpusDecoder::new(RATE, channels).unwrap();
        let packets = encode_tone(channels, tone, 50, &mut enc);
        let mut decoded = Vec::new();
        let mut out = Vec::new();
        for p in &packets {
            assert!(p.len() > 10 && p.len() < 400, "packet of {} bytes", p.len());
            let n = dec.decode(Some(p), &mut out).unwrap();
            assert_eq!(n, FRAME);
            assert_eq!(out.len(), FRAME * usize::from(channels));
            decoded.extend_from_slice(&out);
        }
        // Skip the first 100 ms while the codec ramps up (and the time mark is loud).
        let steady = &decoded[FRAME * 5 * usize::from(channels)..];
        let f = frequency(steady, usize::from(channels));
        assert!(
            (f - f64::from(tone)).abs() < f64::from(tone) * 0.01,
            "{channels} ch: {f:.1} Hz for a {tone} Hz tone"
        );
        let level = rms(steady) / quiet_rms();
        assert!(
            (0.8..=1.2).contains(&level),
            "{channels} ch: level {level:.2}"
        );
    }
}

#[test]
fn the_time_mark_comes_through_opus_a_lookahead_late() {
    // 20 ms frames from 250 ms before a whole second of the capture clock, through the SDK's default bitrate.
    let start_us = 1_700_000_000 * audio_mark::PERIOD_US - 250_000;
    let mut mic = SyntheticMicrophone::new(RATE, 2, 440.0);
    let mut enc = OpusEncoder::new(RATE, 2, 48_000).unwrap();
    let mut dec = OpusDecoder::new(RATE, 2).unwrap();
    let mut detector = MarkDetector::new(RATE);
    let (mut pcm, mut out) = (vec![0i16; FRAME * 2], Vec::new());
    let mut heard = Vec::new();
    for i in 0..60u64 {
        let first_us = start_us + i * 20_000;
        mic.read_at(&mut pcm, first_us);
        let packet = enc.encode(&pcm).unwrap();
        dec.decode(Some(&packet), &mut out).unwrap();
        if let Some(ago) = detector.push(&out, 2, false) {
            heard.push(first_us + 20_000 - ago * 1_000_000 / u64::from(RATE));
        }
    }
    let late: Vec<u64> = heard
        .iter()
        .map(|&h| h - audio_mark::captured_at(h))
        .collect();
    println!("marks heard after {late:?} µs");
    assert_eq!(late.len(), 1, "{late:?}");
    // Opus delays its output by its 6.5 ms lookahead; the step is found within a period of the tone after it.
    assert!((5_000..=10_000).contains(&late[0]), "{late:?}");
}

#[test]
fn a_lost_packet_is_concealed_with_sound_of_the_right_length() {
    let mut enc = OpusEncoder::new(RATE, 2, 48_000).unwrap();
    let mut dec = OpusDecoder::new(RATE, 2).unwrap();
    let packets = encode_tone(2, 440.0, 20, &mut enc);
    let mut out = Vec::new();
    for p in &packets[..10] {
        dec.decode(Some(p), &mut out).unwrap();
    }
    let n = dec.decode(None, &mut out).unwrap();
    assert_eq!(n, FRAME);
    assert_eq!(out.len(), FRAME * 2);
    assert!(
        rms(&out) > 1000.0,
        "concealment is silent: rms {}",
        rms(&out)
    );
    // Decoding carries on after the gap.
    assert_eq!(dec.decode(Some(&packets[11]), &mut out).unwrap(), FRAME);
}

#[test]
fn fec_rebuilds_a_lost_packet_from_the_next_one() {
    let mut enc = OpusEncoder::new(RATE, 1, 32_000).unwrap();
    enc.set_packet_loss_percent(20);
    let mut dec = OpusDecoder::new(RATE, 1).unwrap();
    let packets = encode_tone(1, 440.0, 30, &mut enc);
    let mut concealing = OpusDecoder::new(RATE, 1).unwrap();
    let mut reference = OpusDecoder::new(RATE, 1).unwrap();
    let mut out = Vec::new();
    for p in &packets[..20] {
        dec.decode(Some(p), &mut out).unwrap();
        concealing.decode(Some(p), &mut out).unwrap();
        reference.decode(Some(p), &mut out).unwrap();
    }
    let mut expected = Vec::new();
    reference.decode(Some(&packets[20]), &mut expected).unwrap();

    // Packet 20 is lost; 21 arrives and carries its FEC copy.
    let mut rebuilt = Vec::new();
    let n = dec.decode_fec(&packets[21], &mut rebuilt).unwrap();
    assert_eq!(n, FRAME);
    let level = rms(&rebuilt) / quiet_rms();
    assert!((0.5..=1.5).contains(&level), "FEC level {level:.2}");
    let f = frequency(&rebuilt, 1);
    assert!((f - 440.0).abs() < 10.0, "FEC frequency {f:.1}");

    // FEC is closer to what was lost than plain concealment.
    let mut concealed = Vec::new();
    concealing.decode(None, &mut concealed).unwrap();
    let error = |got: &[i16]| {
        let diff: Vec<i16> = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        rms(&diff)
    };
    let (fec_err, plc_err) = (error(&rebuilt), error(&concealed));
    println!("error vs. the lost frame: FEC {fec_err:.0}, concealment {plc_err:.0}");
    assert!(
        fec_err < plc_err,
        "FEC {fec_err:.0} vs concealment {plc_err:.0}"
    );
    assert_eq!(dec.decode(Some(&packets[21]), &mut out).unwrap(), FRAME);
}

#[test]
fn bitrate_setting_changes_packet_sizes() {
    let mut enc = OpusEncoder::new(RATE, 2, 24_000).unwrap();
    let low: usize = encode_tone(2, 440.0, 25, &mut enc)
        .iter()
        .map(Vec::len)
        .sum();
    enc.set_bitrate(128_000);
    let high: usize = encode_tone(2, 440.0, 25, &mut enc)
        .iter()
        .map(Vec::len)
        .sum();
    // 25 packets = 0.5 s.
    let (low_bps, high_bps) = (low * 16, high * 16);
    println!("24 kb/s -> {low_bps} b/s, 128 kb/s -> {high_bps} b/s");
    assert!(high_bps > low_bps * 2, "{low_bps} vs {high_bps}");
}

#[test]
fn bad_input_is_an_error() {
    assert!(OpusEncoder::new(44_100, 2, 64_000).is_err());
    assert!(OpusEncoder::new(RATE, 3, 64_000).is_err());
    assert!(OpusEncoder::new(RATE, 2, 1_000).is_err());
    assert!(OpusDecoder::new(RATE, 0).is_err());

    let mut enc = OpusEncoder::new(RATE, 2, 64_000).unwrap();
    assert!(matches!(
        enc.encode(&[0; 1000]),
        Err(MediaError::InvalidParameter(_))
    ));
    assert!(enc.encode(&[0; 959]).is_err());
    assert!(enc.encode(&[]).is_err());
    assert!(enc.encode(&[0; 480 * 2]).is_ok()); // 10 ms is a valid frame

    let mut dec = OpusDecoder::new(RATE, 2).unwrap();
    let mut out = Vec::new();
    assert!(dec.decode(Some(&[]), &mut out).is_err());
    // TOC code 3 with a frame count of zero is malformed.
    assert!(matches!(
        dec.decode(Some(&[0xFB, 0x00]), &mut out),
        Err(MediaError::Opus { .. } | MediaError::InvalidParameter(_))
    ));
    assert!(dec.decode_fec(&[], &mut out).is_err());
}

#[test]
fn concealment_and_fec_stay_at_the_level_of_the_sound_they_continue() {
    // A voice-mode stream (in-band FEC on: SILK or hybrid), one packet in ten lost, lost packets concealed or
    // rebuilt from the next one's FEC as the jitter buffer does. No output may be louder than the source's
    // loudest (the time mark, half of full scale) by more than a codec's overshoot: a decoder whose concealment
    // is unstable turns every loss into a full-scale burst.
    for (channels, bitrate) in [(1u16, 32_000), (2, 64_000)] {
        let mut mic = SyntheticMicrophone::new(RATE, channels, 440.0);
        let mut enc = OpusEncoder::new(RATE, channels, bitrate).unwrap();
        enc.set_packet_loss_percent(30);
        let mut dec = OpusDecoder::new(RATE, channels).unwrap();
        let mut pcm = vec![0i16; FRAME * usize::from(channels)];
        let packets: Vec<Vec<u8>> = (0..1000u64)
            .map(|i| {
                mic.read_at(&mut pcm, 1_700_000_000 * audio_mark::PERIOD_US + i * 20_000);
                enc.encode(&pcm).unwrap()
            })
            .collect();
        let limit = (audio_mark::LOUD * 1.25 * f64::from(i16::MAX)) as u16;
        let mut out = Vec::new();
        let mut loud = Vec::new();
        for (i, packet) in packets.iter().enumerate() {
            let lost = i % 10 == 7;
            let how = if !lost {
                dec.decode(Some(packet), &mut out).unwrap();
                "decoded"
            } else if i % 20 == 7 {
                dec.decode(None, &mut out).unwrap();
                "concealed"
            } else {
                dec.decode_fec(&packets[i + 1], &mut out).unwrap();
                "rebuilt"
            };
            let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
            if peak > limit {
                loud.push((i, how, peak));
            }
        }
        assert!(
            loud.is_empty(),
            "{channels} ch: frames above {limit}: {loud:?}"
        );
    }
}
