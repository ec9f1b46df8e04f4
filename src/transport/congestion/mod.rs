//! Send-side congestion control of a publisher: a GCC bandwidth estimate from the relay's transport-wide feedback
//! (TWCC), the uplink loss that feedback reveals, and a pacer that keeps bursts and retransmissions within the
//! estimate while the network is what limits the stream.
//!
//! The relay also passes on what the stream's players can receive (REMB, the lowest of their downlink estimates,
//! see `src/player/receive/downlink.rs`); while it is fresh it caps the estimate like a bottleneck on the uplink would.
//!
//! The estimate and the loss counters live in a [`CongestionState`] shared by the interceptor chain (which writes
//! them on webrtc's driver task) and the publisher (whose encode thread and quality task read them).
//!
//! `state` holds the shared [`CongestionState`] and the encoder's share of the estimate; `estimator` is GCC under
//! the standing-queue cap; `relay_feedback` reads the relay's feedback and estimate; `pacer` paces media and meters
//! retransmissions; `repair_streams` lets stream-keyed interceptors see RTX and FEC streams.

mod estimator;
mod pacer;
mod relay_feedback;
mod repair_streams;
mod state;
#[cfg(test)]
mod tests;

pub(crate) use estimator::Estimator;
pub(crate) use pacer::SendPacer;
pub(crate) use relay_feedback::RelayFeedback;
pub(crate) use repair_streams::WithRepairStreams;
pub(crate) use state::{audio_wire_bps, CongestionState, FeedbackCounters, MEDIA_SHARE};
