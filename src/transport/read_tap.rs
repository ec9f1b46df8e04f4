//! The interceptors that only look at (or filter) what arrives share one shape: everything written passes
//! untouched, each inbound packet goes through a [`ReadFilter`], and no stream binding matters to them.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// What a [`ReadTap`] does with inbound packets.
pub(crate) trait ReadFilter: Send + Sync {
    /// An inbound packet on its way to the application: returned, possibly changed, to pass it on; `None` drops it.
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket>;
}

/// An interceptor made of a [`ReadFilter`] on the read leg and nothing on the write leg.
pub(crate) struct ReadTap<F> {
    filter: F,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<F: ReadFilter> ReadTap<F> {
    pub fn new(filter: F) -> ReadTap<F> {
        ReadTap {
            filter,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl<F: ReadFilter> Protocol<TaggedPacket, TaggedPacket, ()> for ReadTap<F> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Some(msg) = self.filter.on_read(msg) {
            self.read_queue.push_back(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl<F: ReadFilter> Interceptor for ReadTap<F> {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
