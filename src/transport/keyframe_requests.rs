//! Lets keyframe requests (PLI, FIR) from the relay reach the publisher's encoder.
//!
//! Inbound RTCP ends at the interceptor chain unless an interceptor marks it for the application; this one marks
//! exactly the keyframe requests and drops the rest (receiver reports and NACKs were already handled further down
//! the chain). It sits application-most so every other interceptor saw the whole of the RTCP first.

use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use super::read_tap::ReadFilter;

/// Slot of the forwarder: above every built-in interceptor.
pub(crate) const SLOT: usize = 14_000;

#[derive(Default)]
pub(crate) struct KeyframeRequestForwarder;

/// Whether an RTCP packet asks for a keyframe.
pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl ReadFilter for KeyframeRequestForwarder {
    fn on_read(&mut self, mut msg: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                return None;
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        Some(msg)
    }
}
