use thiserror::Error;

/// Everything that can go wrong in the media path.
#[derive(Debug, Error)]
pub enum MediaError {
    /// Frame dimensions, strides or buffer sizes that do not describe a valid image.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// A codec or device parameter out of its valid range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The H.264 encoder rejected its configuration or a frame.
    #[error("H.264 encoder error: {0}")]
    Encoder(String),
    /// The H.264 decoder could not decode an access unit (corrupt data or a missing reference:
    /// wait for the next keyframe).
    #[error("H.264 decoder error: {0}")]
    Decoder(String),
    /// libopus returned an error code.
    #[error("Opus error in {op}: {message} (code {code})")]
    Opus {
        op: &'static str,
        code: i32,
        message: String,
    },
    /// No capture or playback device of the requested kind exists.
    #[error("no {0} device found")]
    NoDevice(&'static str),
    /// A device exists but could not be opened or stopped working.
    #[error("device error: {0}")]
    Device(String),
}

/// Result with [`MediaError`].
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
