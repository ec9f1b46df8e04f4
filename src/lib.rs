//! zego-express: a self-hostable ultra-low-latency live streaming SDK with the ZEGO Express API.
//!
//! Media flows one way through the folders that name its stages:
//! capture (`zego_media::capture`, [`publisher`]) → encode ([`publisher`]) → transport ([`transport`]) →
//! decode ([`player`]) → render ([`event::Event::RemoteVideoFrame`]). [`room`] is the signaling session with the
//! server, [`engine`] ties them together, and [`ffi`] is the C ABI over [`engine::Engine`].

pub mod config;
pub mod engine;
pub mod event;
pub mod ffi;
#[cfg(feature = "jni")]
pub mod jni;
pub mod log;
pub(crate) mod player;
pub(crate) mod publisher;
pub(crate) mod room;
pub(crate) mod server_url;
pub(crate) mod transport;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use player::fuzzing;

pub use engine::Engine;
pub use zego_protocol::error;
