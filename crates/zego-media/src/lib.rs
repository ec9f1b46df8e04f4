//! The media stages of zego-express below the transport: capture sources, frame formats and
//! conversions, the pixel timestamp used to measure glass-to-glass latency, and the H.264 and Opus
//! codecs.
//!
//! Everything here is synchronous and blocking. Callers run it on their own capture, encode and
//! decode threads; nothing in this crate spawns a thread except the audio device callbacks that
//! `cpal` owns (feature `devices`).

pub mod audio_mark;
pub mod capture;
pub mod codec;
#[cfg(feature = "devices")]
pub mod devices;
mod error;
pub mod frame;
pub mod stamp;

pub use audio_mark::MarkDetector;
pub use capture::{SyntheticCamera, SyntheticMicrophone};
pub use codec::h264::{EncodedVideo, H264Config, H264Decoder, H264Encoder};
pub use codec::opus::{OpusDecoder, OpusEncoder};
pub use error::{MediaError, Result};
pub use frame::{PixelFormat, VideoFrame};
pub use stamp::Stamp;
