//! Forward error correction for the zego-express media path, shared by both ends of each hop it protects.
//!
//! Repair packets carry Reed-Solomon recovery shards ([`format`]) on a repair SSRC of their own, announced with
//! `a=ssrc-group:FEC-FR` and the payload format `flexfec-rs/90000`. A block of n media packets with k repair
//! packets survives the loss of any k of its n + k packets: unlike XOR parity (FlexFEC, ULPFEC), where two losses
//! under one repair packet are one too many, the code spends every repair packet on whichever packets were lost.
//! Two hops use it: publisher → relay (the SDK codes above the layer that stamps header extensions) and relay →
//! player (the relay codes what it forwards).
//!
//! [`ProtectionLevel`] decides how many repair packets a block gets from the receiver's reports of loss and
//! queueing; [`BlockCoder`] cuts the stream into blocks at frame boundaries and codes each; [`BlockDecoder`]
//! rebuilds what a block lost. RTP sequence numbers are unwrapped by `zego_rtp::seq`.

mod coder;
mod decoder;
pub mod format;
mod level;

pub use coder::{BlockCoder, Repair, MAX_BLOCK};
pub use decoder::{BlockDecoder, MEDIA_WINDOW};
pub use format::{Media, RepairError};
pub use level::{ProtectionLevel, DEFAULT_RESIDUAL, INITIAL_LOSS};

/// The payload format's encoding name in SDP (`a=rtpmap:<pt> flexfec-rs/90000`). WebRTC stacks bind a repair SSRC
/// from `a=ssrc-group:FEC-FR` only for a format of the FlexFEC family, hence the prefix; the payload is the
/// Reed-Solomon form of [`format`], not FlexFEC's XOR.
pub const ENCODING_NAME: &str = "flexfec-rs";
/// The same, as a MIME type.
pub const MIME_TYPE: &str = "video/flexfec-rs";
/// The RTP clock rate of the repair stream.
pub const CLOCK_RATE: u32 = 90_000;
