//! Counts the media packets the FlexFEC decoder rebuilt, for the player's quality log and the benchmark: a packet
//! recovered this way never needed a retransmission.
//!
//! It sits just above the decoder, which marks what it rebuilt with `Attribute::RecoveredByFec`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

pub(crate) struct FecRecoveryCounter {
    recovered: Arc<AtomicU64>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl FecRecoveryCounter {
    pub fn new(recovered: Arc<AtomicU64>) -> FecRecoveryCounter {
        FecRecoveryCounter {
            recovered,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FecRecoveryCounter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtp(_))
            && msg.message.has(&Attribute::RecoveredByFec)
        {
            self.recovered.fetch_add(1, Ordering::Relaxed);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for FecRecoveryCounter {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtp::packet::Packet as RtpPacket;

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
        let mut counter = FecRecoveryCounter::new(count.clone());
        for recovered in [false, true, false, true, true] {
            counter.handle_read(tagged(recovered)).unwrap();
        }
        assert_eq!(count.load(Ordering::Relaxed), 3);
        assert_eq!(std::iter::from_fn(|| counter.poll_read()).count(), 5);
    }
}
