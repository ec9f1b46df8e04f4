//! Encoders and decoders: H.264 for video, Opus for audio.

pub mod h264;
pub mod opus;
