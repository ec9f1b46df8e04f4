//! Forward error correction for the zego-express media path, shared by both ends of each hop it protects.
//!
//! Repair packets are FlexFEC-03 (draft-ietf-payload-flexible-fec-scheme-03, coded by `rtc-interceptor`) on a
//! repair SSRC of their own, announced with `a=ssrc-group:FEC-FR`. Two hops use them:
//!
//! - relay → player: the relay codes the video it forwards, in the packets' wire form, so that any FlexFEC-03
//!   receiver (the SDK's WebRTC stack, a browser) can rebuild them;
//! - publisher → relay: the SDK codes the video it sends, in the [`plain`] form (header without extensions), because
//!   the extensions a packet leaves with (transport-wide sequence numbers) are only added below the coder. The relay
//!   rebuilds that form, which holds everything it forwards.
//!
//! [`ProtectionLevel`] decides how many repair packets a block gets from the receiver's reports of loss and queueing;
//! [`BlockCoder`] cuts the stream into blocks at frame boundaries and codes each.

mod coder;
mod level;

pub use coder::{plain, BlockCoder, Repair, MAX_BLOCK};
pub use level::{ProtectionLevel, LOSS_TO_RATIO};

/// The draft-03 decoder, for the receiving end.
pub use rtc_interceptor::FlexFec03Decoder;
/// The RTP packet type both the coder and the decoder work on.
pub use rtc_rtp::packet::Packet;
