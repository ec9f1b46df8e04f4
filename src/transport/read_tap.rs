//! The base of our interceptors: a [`PassThrough`] owns the queues and the interceptor plumbing, and a [`Stage`]
//! writes only what it changes (what it does to an inbound or an outbound packet, which streams it learns of).
//! Stages that only look at (or filter) what arrives are [`ReadFilter`]s, run by a [`ReadTap`].

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// What an interceptor does; every part passes packets through unchanged unless the stage says otherwise.
pub(crate) trait Stage: Send + Sync {
    /// An inbound packet on its way to the application: what goes on is pushed to `out`.
    fn on_read(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        out.push_back(msg);
    }

    /// An outbound packet on its way to the wire: what goes on is pushed to `out`.
    fn on_write(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        out.push_back(msg);
    }

    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// An interceptor made of a [`Stage`].
pub(crate) struct PassThrough<S> {
    stage: S,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<S: Stage> PassThrough<S> {
    pub fn new(stage: S) -> PassThrough<S> {
        PassThrough {
            stage,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl<S: Stage> Protocol<TaggedPacket, TaggedPacket, ()> for PassThrough<S> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.stage.on_read(msg, &mut self.read_queue);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.stage.on_write(msg, &mut self.write_queue);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl<S: Stage> Interceptor for PassThrough<S> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.stage.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.stage.unbind_local_stream(info);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.stage.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.stage.unbind_remote_stream(info);
    }
}

/// What a [`ReadTap`] does with inbound packets.
pub(crate) trait ReadFilter: Send + Sync {
    /// An inbound packet on its way to the application: returned, possibly changed, to pass it on; `None` drops it.
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket>;
}

/// A [`ReadFilter`] as a stage: nothing on the write leg, and no stream binding matters to it.
pub(crate) struct Filter<F>(F);

impl<F: ReadFilter> Stage for Filter<F> {
    fn on_read(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        out.extend(self.0.on_read(msg));
    }
}

/// An interceptor made of a [`ReadFilter`].
pub(crate) type ReadTap<F> = PassThrough<Filter<F>>;

impl<F: ReadFilter> ReadTap<F> {
    pub fn tap(filter: F) -> ReadTap<F> {
        PassThrough::new(Filter(filter))
    }
}
