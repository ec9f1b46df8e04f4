//! The relay's transport-wide feedback (the uplink loss) and its estimate for the stream's players (REMB).

use std::sync::Arc;

use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

use crate::transport::read_tap::ReadFilter;

use super::CongestionState;

/// Reads what the relay feeds back about the stream into the [`CongestionState`]: its transport-wide feedback,
/// counted as it arrives for the uplink loss, and its estimate for the stream's players (REMB).
///
/// The loss is read from the feedback itself rather than from the send history's verdicts: the history writes off every packet
/// a *lost feedback packet* would have covered as lost, so on a lossy downlink it reports the two directions'
/// losses combined. Each feedback packet names how many packets it covers and carries one arrival time per packet
/// that arrived; packets whose feedback never comes are not counted at all.
///
/// The relay (str0m) starts each feedback at the first packet that arrived after the previous one, so packets lost
/// between two feedbacks are named by neither: when the feedback count shows that no feedback was lost in between,
/// that gap is counted as lost; after a lost feedback it is unknown and left out.
pub(crate) struct RelayFeedback {
    state: Arc<CongestionState>,
    /// The feedback count of the last feedback and the sequence number after the last packet it covered.
    pub(super) last: Option<(u8, u16)>,
}

impl RelayFeedback {
    pub fn new(state: Arc<CongestionState>) -> RelayFeedback {
        RelayFeedback { state, last: None }
    }

    /// Largest gap between two consecutive feedbacks taken as lost packets rather than a restart.
    const MAX_GAP: u16 = 1_000;

    pub(super) fn count(&mut self, feedback: &TransportLayerCc) {
        let covered = u64::from(feedback.packet_status_count);
        let arrived = feedback.recv_deltas.len() as u64;
        let gap = match self.last {
            Some((count, end)) if feedback.fb_pkt_count == count.wrapping_add(1) => {
                let gap = feedback.base_sequence_number.wrapping_sub(end);
                if gap <= Self::MAX_GAP {
                    u64::from(gap)
                } else {
                    0
                }
            }
            _ => 0,
        };
        self.state.count_feedback(covered + gap, arrived);
        self.last = Some((
            feedback.fb_pkt_count,
            feedback
                .base_sequence_number
                .wrapping_add(feedback.packet_status_count),
        ));
    }
}

impl ReadFilter for RelayFeedback {
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let any = packet.as_any();
                if let Some(feedback) = any.downcast_ref::<TransportLayerCc>() {
                    self.count(feedback);
                } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                    tracing::debug!(bps = remb.bitrate, "the players' estimate");
                    self.state
                        .set_receiver_estimate(f64::from(remb.bitrate), msg.now);
                }
            }
        }
        Some(msg)
    }
}
