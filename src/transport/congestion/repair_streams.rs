//! RTX and FEC repair streams seen as streams of their own by stream-keyed interceptors.

use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Lets a stream-keyed interceptor treat a stream's retransmission (RTX) and FEC repair SSRCs as streams of
/// their own.
///
/// webrtc binds interceptors to the media SSRC only, so without this the TWCC sender would leave retransmissions
/// and repair packets unnumbered and the send history would not record them: the estimate would miss exactly the
/// bytes that grow under loss, and the relay's feedback could not report their fate.
pub(crate) struct WithRepairStreams<I>(pub I);

fn repair_streams(info: &StreamInfo) -> impl Iterator<Item = StreamInfo> + '_ {
    [info.ssrc_rtx, info.ssrc_fec]
        .into_iter()
        .flatten()
        .map(|ssrc| StreamInfo {
            ssrc,
            ..info.clone()
        })
}

impl<I: Interceptor> Protocol<TaggedPacket, TaggedPacket, ()> for WithRepairStreams<I> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.0.handle_read(msg)
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.0.poll_read()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.0.handle_write(msg)
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.0.poll_write()
    }

    fn handle_event(&mut self, evt: ()) -> Result<(), Error> {
        self.0.handle_event(evt)
    }

    fn poll_event(&mut self) -> Option<()> {
        self.0.poll_event()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.0.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.0.poll_timeout()
    }

    fn close(&mut self) -> Result<(), Error> {
        self.0.close()
    }
}

impl<I: Interceptor> Interceptor for WithRepairStreams<I> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.0.bind_local_stream(info);
        for repair in repair_streams(info) {
            self.0.bind_local_stream(&repair);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_local_stream(info);
        for repair in repair_streams(info) {
            self.0.unbind_local_stream(&repair);
        }
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.bind_remote_stream(info);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_remote_stream(info);
    }
}
