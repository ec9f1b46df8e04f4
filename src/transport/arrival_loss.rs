//! Counts a played stream's video packets missing on arrival, for the quality callback's loss: the path's loss
//! before FEC or retransmission repairs any of it.
//!
//! It sits between the receiver reports and the FEC decoder, so it sees the packets as they came off the wire. Above
//! the decoder a packet rebuilt before a later one arrived would never look missing, and the loss a player reports
//! would fall as the relay's FEC works.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rtc::interceptor::{Packet, TaggedPacket};
use zego_rtp::seq;

use super::read_tap::ReadFilter;
use zego_rtp::H264_PAYLOAD_TYPE;

/// Between the receiver reports (10 000) and the FEC decoder.
pub(crate) const SLOT: usize = 10_250;

/// Video packets the sender sent (sequence numbers advanced over) and how many of them were missing when a later
/// one arrived.
#[derive(Debug, Default)]
pub(crate) struct ArrivalCounters {
    pub expected: AtomicU64,
    pub missed: AtomicU64,
}

pub(crate) struct ArrivalLoss {
    counters: Arc<ArrivalCounters>,
    /// The video SSRC and its highest extended sequence number.
    highest: Option<(u32, u64)>,
}

impl ArrivalLoss {
    pub fn new(counters: Arc<ArrivalCounters>) -> ArrivalLoss {
        ArrivalLoss {
            counters,
            highest: None,
        }
    }
}

impl ReadFilter for ArrivalLoss {
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtp(rtp) = &msg.message.packet {
            let h = &rtp.header;
            if h.payload_type == H264_PAYLOAD_TYPE {
                match self.highest {
                    Some((ssrc, highest)) if ssrc == h.ssrc => {
                        let seq = seq::extend(Some(highest), h.sequence_number);
                        if seq > highest {
                            let delta = seq - highest;
                            self.counters.expected.fetch_add(delta, Ordering::Relaxed);
                            self.counters.missed.fetch_add(delta - 1, Ordering::Relaxed);
                            self.highest = Some((ssrc, seq));
                        }
                    }
                    // A new stream (the first, or another SSRC after a publisher change): start counting again.
                    _ => {
                        self.highest = Some((h.ssrc, seq::extend(None, h.sequence_number)));
                        self.counters.expected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::read_tap::ReadTap;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtp::header::Header;
    use rtc::rtp::packet::Packet as RtpPacket;
    use rtc::sansio::Protocol;
    use std::time::Instant;

    fn packet(ssrc: u32, pt: u8, seq: u16) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtp(RtpPacket {
                header: Header {
                    ssrc,
                    payload_type: pt,
                    sequence_number: seq,
                    ..Default::default()
                },
                ..Default::default()
            })),
        }
    }

    #[test]
    fn gaps_count_once_and_late_packets_fill_nothing() {
        let counters = Arc::new(ArrivalCounters::default());
        let mut tap = ReadTap::tap(ArrivalLoss::new(counters.clone()));
        // 65534, 65535, (0 lost), 1, (2, 3 lost), 4, then 0 late (a retransmission), audio in between.
        for (pt, seq) in [
            (108, 65_534),
            (108, 65_535),
            (111, 7),
            (108, 1),
            (108, 4),
            (108, 0),
        ] {
            tap.handle_read(packet(5, pt, seq)).unwrap();
        }
        assert_eq!(
            std::iter::from_fn(|| tap.poll_read()).count(),
            6,
            "everything passes"
        );
        assert_eq!(counters.expected.load(Ordering::Relaxed), 7);
        assert_eq!(counters.missed.load(Ordering::Relaxed), 3);
        // Another stream (a new publisher): counted from its own first packet.
        tap.handle_read(packet(6, 108, 100)).unwrap();
        tap.handle_read(packet(6, 108, 102)).unwrap();
        assert_eq!(counters.expected.load(Ordering::Relaxed), 10);
        assert_eq!(counters.missed.load(Ordering::Relaxed), 4);
    }
}
