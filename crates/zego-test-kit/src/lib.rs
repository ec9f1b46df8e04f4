//! The `webrtc` crate peers (the SDK's WebRTC stack) that the relay's and the server's tests offer to the relay,
//! defined once so both suites negotiate the SDK's codecs the same way.

pub mod media;
pub mod peer;

pub use media::{
    codec, h264, local_track, media_engine, opus, sdk_media_engine, H264_PAYLOAD_TYPE,
};
pub use peer::{
    add_recvonly, add_sendonly, candidates, default_interceptors, LoopbackPeer, OnTrack,
};

/// Logs to the test's output, at `warn` unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
