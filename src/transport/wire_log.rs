use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;
#[derive(Default)]
pub(crate) struct WireLog {
    r: VecDeque<TaggedPacket>,
    w: VecDeque<TaggedPacket>,
}
impl Protocol<TaggedPacket, TaggedPacket, ()> for WireLog {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;
    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtp(p) = &msg.message.packet {
            tracing::trace!(ssrc = p.header.ssrc, pt = p.header.payload_type, seq = p.header.sequence_number, osn = ?p.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])), "WIRE IN RTP");
        }
        self.r.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.r.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(ps) = &msg.message.packet {
            for p in ps {
                tracing::trace!("WIRE OUT RTCP {p:?}");
            }
        }
        self.w.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.w.pop_front()
    }
}
impl Interceptor for WireLog {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
