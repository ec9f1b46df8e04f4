//! Counts the media packets the FlexFEC decoder rebuilt, for the player's quality log and the benchmark: a packet
//! recovered this way never needed a retransmission.
//!
//! It sits just above the decoder, which marks what it rebuilt with `Attribute::RecoveredByFec`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rtc::interceptor::{Attribute, Packet, TaggedPacket};

use super::read_tap::ReadFilter;

pub(crate) struct FecRecoveryCounter {
    recovered: Arc<AtomicU64>,
}

impl FecRecoveryCounter {
    pub fn new(recovered: Arc<AtomicU64>) -> FecRecoveryCounter {
        FecRecoveryCounter { recovered }
    }
}

impl ReadFilter for FecRecoveryCounter {
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
        if matches!(msg.message.packet, Packet::Rtp(_))
            && msg.message.has(&Attribute::RecoveredByFec)
        {
            self.recovered.fetch_add(1, Ordering::Relaxed);
        }
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::read_tap::ReadTap;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtp::packet::Packet as RtpPacket;
    use rtc::sansio::Protocol;
    use std::time::Instant;

    fn tagged(recovered: bool) -> TaggedPacket {
        let mut message = AttributedPacket::new(Packet::Rtp(RtpPacket::default()));
        if recovered {
            message.add(Attribute::RecoveredByFec);
        }
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message,
        }
    }

    #[test]
    fn only_rebuilt_packets_are_counted_and_all_pass() {
        let count = Arc::new(AtomicU64::new(0));
        let mut counter = ReadTap::new(FecRecoveryCounter::new(count.clone()));
        for recovered in [false, true, false, true, true] {
            counter.handle_read(tagged(recovered)).unwrap();
        }
        assert_eq!(count.load(Ordering::Relaxed), 3);
        assert_eq!(std::iter::from_fn(|| counter.poll_read()).count(), 5);
    }
}
