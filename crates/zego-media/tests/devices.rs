//! Device opening behaves on machines with and without hardware: either a working device or a
//! clear `NoDevice`, never a panic or a hang.
#![cfg(feature = "devices")]

use zego_media::devices::{Camera, Microphone, Speaker};
use zego_media::MediaError;

#[test]
fn camera_opens_or_reports_no_device() {
    match Camera::open(640, 360, 30) {
        Ok(mut cam) => {
            let f = cam.frame().expect("a frame from an open camera");
            f.validate().unwrap();
            assert!(f.capture_time_us > 0);
        }
        Err(MediaError::NoDevice(kind)) => assert_eq!(kind, "camera"),
        Err(e) => panic!("unexpected camera error: {e}"),
    }
}

#[test]
fn microphone_delivers_audio_or_reports_why_not() {
    match Microphone::open(2) {
        Ok(mut mic) => {
            let mut pcm = vec![0i16; 960 * 2];
            // A device that exists but never delivers must fail within the read timeout.
            if let Err(e) = mic.read(&mut pcm) {
                assert!(matches!(e, MediaError::Device(_)), "{e}");
            }
        }
        Err(e) => {
            println!("open failed: {e}");
            assert!(
                matches!(e, MediaError::NoDevice(_) | MediaError::Device(_)),
                "{e}"
            )
        }
    }
}

#[test]
fn speaker_accepts_audio_or_reports_why_not() {
    match Speaker::open(2) {
        Ok(mut spk) => {
            spk.write(&[0; 960 * 2]).unwrap();
            // Never more than the 200 ms bound queued.
            spk.write(&[0; 48_000 * 2]).unwrap();
            assert!(spk.queued_samples() <= 48_000 * 2 / 5);
        }
        Err(e) => {
            println!("open failed: {e}");
            assert!(
                matches!(e, MediaError::NoDevice(_) | MediaError::Device(_)),
                "{e}"
            )
        }
    }
    assert!(matches!(
        Speaker::open(3),
        Err(MediaError::InvalidParameter(_))
    ));
}
