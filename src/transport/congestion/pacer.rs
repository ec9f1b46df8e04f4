//! The send pacer: media paced at a bottleneck, retransmissions metered against their budget.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;
use zego_rtp::OPUS_PAYLOAD_TYPE;

use super::{CongestionState, MEDIA_SHARE};

/// Retransmissions may use this share of the estimate, or of the video actually sent if that is more; beyond it
/// they are dropped (the relay asks again), so a bottleneck is not flooded with repairs of repairs. The video
/// share matters on a lossy path: GCC takes random loss for congestion and goes to its floor, below the encoder's
/// own floor, and a budget from the estimate alone would then starve the repairs the stream needs (30% loss takes
/// about half again the media in retransmissions).
pub(super) const RTX_SHARE: f64 = 0.25;
pub(super) const RTX_VIDEO_SHARE: f64 = 0.6;
/// The retransmission budget holds this much of its rate, and at least this many full packets.
pub(super) const RTX_BURST: Duration = Duration::from_millis(250);
pub(super) const RTX_BURST_PACKETS: f64 = 12.0;
/// While the network limits the stream, packets leave at this multiple of the estimate: a keyframe is spread over
/// about a frame interval or two instead of overflowing the bottleneck's queue in one burst.
pub(super) const PACING_FACTOR: f64 = 1.5;
/// How much may leave at once while pacing.
pub(super) const PACING_BURST: Duration = Duration::from_millis(20);
/// One full-size packet, in bits: the smallest useful burst.
pub(super) const PACKET_BITS: f64 = 1500.0 * 8.0;
/// Packets held by the pacer before new ones are refused (several seconds of a 1 Mb/s stream).
pub(super) const PACER_QUEUE_LIMIT: usize = 2_000;

/// A token bucket in bits.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    bits: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn full() -> Bucket {
        Bucket {
            bits: f64::MAX,
            at: None,
        }
    }

    fn refill(&mut self, now: Instant, rate_bps: f64, cap_bits: f64) {
        let elapsed = self
            .at
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.bits = (self.bits + elapsed * rate_bps).min(cap_bits);
        self.at = Some(now.max(self.at.unwrap_or(now)));
    }

    /// When `bits` will be affordable at `rate_bps`.
    fn affordable_at(&self, bits: f64, rate_bps: f64) -> Option<Instant> {
        let at = self.at?;
        if self.bits >= bits {
            return Some(at);
        }
        (rate_bps > 0.0).then(|| at + Duration::from_secs_f64((bits - self.bits) / rate_bps))
    }
}

/// Paces media and meters retransmissions against the estimate.
///
/// Media is paced only while the delay-based estimate holds the encoder below its configured bitrate: on a path
/// with room to spare (random loss included) a keyframe leaves at once, as it did before congestion control, so a
/// clean network keeps its latency; on a bottleneck it is spread at [`PACING_FACTOR`] times the estimate so it does
/// not overflow the bottleneck's queue, and retransmissions then draw from their own budget (a share of the
/// estimate) and are dropped beyond it. Audio and retransmissions leave before held video.
pub(crate) struct SendPacer {
    state: Arc<CongestionState>,
    pacing: Bucket,
    /// The pacing rate at the last refill, which comes before anything is held.
    rate_bps: f64,
    rtx: Bucket,
    /// Held audio and retransmissions, in order: they leave before any held video (a retransmission is late
    /// already, and audio is small and gaps in it are heard).
    urgent: VecDeque<TaggedPacket>,
    /// Held video, in order.
    queue: VecDeque<TaggedPacket>,
    /// Ready to leave: RTCP, packets released by the budget, packets that did not need pacing.
    out: VecDeque<TaggedPacket>,
    read_queue: VecDeque<TaggedPacket>,
}

impl SendPacer {
    pub fn new(state: Arc<CongestionState>) -> SendPacer {
        SendPacer {
            state,
            pacing: Bucket::full(),
            rate_bps: 0.0,
            rtx: Bucket::full(),
            urgent: VecDeque::new(),
            queue: VecDeque::new(),
            out: VecDeque::new(),
            read_queue: VecDeque::new(),
        }
    }

    /// A multiple of the estimate, and never below what the encoder sends: at the encoder's floor (a lossy path
    /// drives GCC's estimate under it) pacing to the estimate would hold the media back until the queue overflows.
    fn pacing_rate(&self, now: Instant) -> f64 {
        let media = self.state.encoder_bps() as f64 / MEDIA_SHARE;
        self.state.target_bps(now).max(media) * PACING_FACTOR
    }

    fn pacing_cap(rate: f64) -> f64 {
        (rate * PACING_BURST.as_secs_f64()).max(2.0 * PACKET_BITS)
    }

    fn bits(packet: &TaggedPacket) -> f64 {
        match &packet.message.packet {
            Packet::Rtp(rtp) => (rtp.marshal_size() * 8) as f64,
            _ => 0.0,
        }
    }

    fn refill(&mut self, now: Instant) {
        let rate = self.pacing_rate(now);
        self.rate_bps = rate;
        self.pacing.refill(now, rate, Self::pacing_cap(rate));
        let rtx_rate = (self.state.target_bps(now) * RTX_SHARE)
            .max(self.state.encoder_bps() as f64 * RTX_VIDEO_SHARE);
        // A NACK names every packet one loss burst took, and the relay asks only a few times: the budget must
        // take such a burst whole or the repairs it drops are never asked for again.
        self.rtx.refill(
            now,
            rtx_rate,
            (rtx_rate * RTX_BURST.as_secs_f64()).max(RTX_BURST_PACKETS * PACKET_BITS),
        );
    }

    fn head(&self) -> Option<&TaggedPacket> {
        self.urgent.front().or(self.queue.front())
    }

    fn held(&self) -> usize {
        self.urgent.len() + self.queue.len()
    }

    /// Releases what the budget allows (everything when not pacing).
    fn release(&mut self, now: Instant) {
        let pacing = self.state.pacing();
        while let Some(head) = self.head() {
            let bits = Self::bits(head);
            if pacing && self.pacing.bits < bits.min(Self::pacing_cap(self.rate_bps)) {
                break;
            }
            let mut packet = match self.urgent.pop_front() {
                Some(packet) => packet,
                None => self.queue.pop_front().expect("the head was just seen"),
            };
            if pacing {
                self.pacing.bits -= bits;
            }
            // The departure instant the send history records.
            packet.now = now;
            self.out.push_back(packet);
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SendPacer {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if !matches!(msg.message.packet, Packet::Rtp(_)) {
            self.out.push_back(msg);
            return Ok(());
        }
        self.refill(msg.now);
        let bits = Self::bits(&msg);
        let retransmission = msg.message.has(&Attribute::Retransmission);
        // Only a bottleneck needs protecting from repairs of repairs; random loss on a path with room is repaired
        // in full.
        if retransmission && self.state.pacing() {
            if self.rtx.bits < bits {
                self.state.rtx_dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            self.rtx.bits -= bits;
        }
        if self.held() >= PACER_QUEUE_LIMIT {
            tracing::debug!("pacer queue full: packet dropped");
            return Ok(());
        }
        let audio = matches!(&msg.message.packet, Packet::Rtp(rtp) if rtp.header.payload_type == OPUS_PAYLOAD_TYPE);
        let now = msg.now;
        if retransmission || audio {
            self.urgent.push_back(msg);
        } else {
            self.queue.push_back(msg);
        }
        self.release(now);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.out.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.held() > 0 {
            self.refill(now);
            self.release(now);
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let head = self.head()?;
        if !self.state.pacing() {
            return self.pacing.at;
        }
        let rate = self.rate_bps;
        let bits = Self::bits(head).min(Self::pacing_cap(rate));
        self.pacing
            .affordable_at(bits, rate)
            // A deadline that never passes the last refill would spin the driver.
            .map(|at| at.max(self.pacing.at.unwrap_or(at) + Duration::from_micros(100)))
    }
}

impl Interceptor for SendPacer {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
