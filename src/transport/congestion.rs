//! Send-side congestion control of a publisher: a GCC bandwidth estimate from the relay's transport-wide feedback
//! (TWCC), the uplink loss that feedback reveals, and a pacer that keeps bursts and retransmissions within the
//! estimate while the network is what limits the stream.
//!
//! The relay also passes on what the stream's players can receive (REMB, the lowest of their downlink estimates,
//! see `src/player/downlink.rs`); while it is fresh it caps the estimate like a bottleneck on the uplink would.
//!
//! The estimate and the loss counters live in a [`CongestionState`] shared by the interceptor chain (which writes
//! them on webrtc's driver task) and the publisher (whose encode thread and quality task read them).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, BandwidthEstimator, EstimatorStats, Gcc, Interceptor, Packet, PacketReport,
    StreamInfo, TaggedPacket,
};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

use super::peer::OPUS_PAYLOAD_TYPE;
use super::read_tap::ReadFilter;

/// Share of the estimate given to media (video + audio); the rest is room for retransmissions and headers.
pub(crate) const MEDIA_SHARE: f64 = 0.7;
/// Retransmissions may use this share of the estimate, or of the video actually sent if that is more; beyond it
/// they are dropped (the relay asks again), so a bottleneck is not flooded with repairs of repairs. The video
/// share matters on a lossy path: GCC takes random loss for congestion and goes to its floor, below the encoder's
/// own floor, and a budget from the estimate alone would then starve the repairs the stream needs (30% loss takes
/// about half again the media in retransmissions).
const RTX_SHARE: f64 = 0.25;
const RTX_VIDEO_SHARE: f64 = 0.6;
/// The retransmission budget holds this much of its rate, and at least this many full packets.
const RTX_BURST: Duration = Duration::from_millis(250);
const RTX_BURST_PACKETS: f64 = 12.0;
/// How far the estimate may climb above what the configured stream needs: enough to see a clean path as clean,
/// small enough that a sudden cap is reached within a few steps down.
const CEILING_FACTOR: f64 = 1.5;
/// Never estimate below this; GCC's own floor.
const MIN_ESTIMATE_BPS: f64 = 100_000.0;
/// While the network limits the stream, packets leave at this multiple of the estimate: a keyframe is spread over
/// about a frame interval or two instead of overflowing the bottleneck's queue in one burst.
const PACING_FACTOR: f64 = 1.5;
/// How much may leave at once while pacing.
const PACING_BURST: Duration = Duration::from_millis(20);
/// One full-size packet, in bits: the smallest useful burst.
const PACKET_BITS: f64 = 1500.0 * 8.0;
/// Packets held by the pacer before new ones are refused (several seconds of a 1 Mb/s stream).
const PACER_QUEUE_LIMIT: usize = 2_000;
/// How long the relay's estimate for the players (REMB) holds after it arrived: the relay repeats it every half
/// second while a player's downlink limits the stream, and stops when none does.
const RECEIVER_ESTIMATE_HOLD: Duration = Duration::from_secs(2);
/// Bytes per packet of headers the encoder's bitrate does not count (IP, UDP, SRTP, RTP and extensions).
const AUDIO_OVERHEAD_BPS: u32 = 20_000;

/// What the congestion controller knows, shared between the peer's interceptors and the publisher.
#[derive(Debug)]
pub(crate) struct CongestionState {
    /// The bandwidth estimate in bits per second (an `f64` as bits).
    target_bps: AtomicU64,
    /// Packets the relay's feedback has accounted for, and how many of them it says never arrived.
    reported: AtomicU64,
    lost: AtomicU64,
    /// The encoder is held below its configured bitrate by the estimate.
    limited: AtomicBool,
    /// The delay-based part of the estimate (GCC's delay half, under the standing-queue cap), as `f64` bits: what
    /// a bottleneck's queue says, as opposed to random loss.
    delay_bps: AtomicU64,
    /// The delay-based estimate alone would hold the encoder below its configured bitrate: there is a bottleneck,
    /// and the pacer smooths only then.
    pacing: AtomicBool,
    /// The video bitrate the encoder was last given.
    encoder_bps: AtomicU64,
    /// Retransmissions dropped for want of budget.
    rtx_dropped: AtomicU64,
    /// The players' estimate from the relay (REMB), as `f64` bits, and until when it holds (µs after `origin`).
    receiver_bps: AtomicU64,
    receiver_until_us: AtomicU64,
    origin: Instant,
}

/// Cumulative feedback counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FeedbackCounters {
    pub reported: u64,
    pub lost: u64,
}

impl FeedbackCounters {
    /// Share of packets lost between two snapshots; `None` when nothing was reported in between.
    pub fn loss_since(&self, before: &FeedbackCounters) -> Option<f64> {
        let reported = self.reported.saturating_sub(before.reported);
        (reported > 0).then(|| self.lost.saturating_sub(before.lost) as f64 / reported as f64)
    }
}

impl CongestionState {
    /// A state for a stream of `video_bps` + `audio_bps`, starting from an estimate that lets it run at full rate.
    pub fn new(video_bps: u32, audio_bps: u32) -> Arc<CongestionState> {
        Arc::new(CongestionState {
            target_bps: AtomicU64::new(initial_estimate(video_bps, audio_bps).to_bits()),
            reported: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            limited: AtomicBool::new(false),
            delay_bps: AtomicU64::new(initial_estimate(video_bps, audio_bps).to_bits()),
            pacing: AtomicBool::new(false),
            encoder_bps: AtomicU64::new(u64::from(video_bps)),
            rtx_dropped: AtomicU64::new(0),
            receiver_bps: AtomicU64::new(0),
            receiver_until_us: AtomicU64::new(0),
            origin: Instant::now(),
        })
    }

    /// The estimate: GCC's, under the players' while that holds.
    pub fn target_bps(&self) -> f64 {
        self.under_players(&self.target_bps)
    }

    /// What the estimate says about a bottleneck on the way (GCC's delay half, or the players' estimate).
    fn delay_based_bps(&self) -> f64 {
        self.under_players(&self.delay_bps)
    }

    /// One of our own estimates (`f64` bits), capped by the players' (REMB from the relay) while that holds.
    fn under_players(&self, own: &AtomicU64) -> f64 {
        let own = f64::from_bits(own.load(Ordering::Relaxed));
        let until = self.receiver_until_us.load(Ordering::Acquire);
        if self.micros(Instant::now()) < until {
            own.min(f64::from_bits(self.receiver_bps.load(Ordering::Relaxed)))
        } else {
            own
        }
    }

    /// The relay's estimate of what the stream's players can receive, arrived at `now`.
    pub fn set_receiver_estimate(&self, bps: f64, now: Instant) {
        let bps = bps.max(MIN_ESTIMATE_BPS);
        self.receiver_bps.store(bps.to_bits(), Ordering::Relaxed);
        self.receiver_until_us
            .store(self.micros(now + RECEIVER_ESTIMATE_HOLD), Ordering::Release);
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    pub fn feedback(&self) -> FeedbackCounters {
        FeedbackCounters {
            reported: self.reported.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }

    pub fn encoder_bps(&self) -> u64 {
        self.encoder_bps.load(Ordering::Relaxed)
    }

    pub fn rtx_dropped(&self) -> u64 {
        self.rtx_dropped.load(Ordering::Relaxed)
    }

    /// Sets the estimate as if GCC had settled on `target` with its delay half at `delay_based`.
    #[cfg(test)]
    fn estimate(&self, target: f64, delay_based: f64) {
        self.set_target(target, delay_based);
    }

    #[cfg(test)]
    fn limited(&self) -> bool {
        self.limited.load(Ordering::Relaxed)
    }

    pub fn pacing(&self) -> bool {
        self.pacing.load(Ordering::Relaxed)
    }

    /// The video bitrate for the encoder under the current estimate, and records it.
    pub fn video_bitrate(&self, configured_video_bps: u32, audio_bps: u32) -> u32 {
        let bps = video_bitrate(self.target_bps(), configured_video_bps, audio_bps);
        self.limited
            .store(bps < configured_video_bps, Ordering::Relaxed);
        // Random loss drives GCC's loss half down with no queue anywhere; pacing then would only hold keyframes
        // and retransmissions back. A bottleneck shows in the delay half.
        let by_delay = video_bitrate(self.delay_based_bps(), configured_video_bps, audio_bps);
        self.pacing
            .store(by_delay < configured_video_bps, Ordering::Relaxed);
        self.encoder_bps.store(u64::from(bps), Ordering::Relaxed);
        bps
    }

    /// GCC bounded for a stream of `video_bps` + `audio_bps`, writing into this state.
    pub fn estimator(self: &Arc<Self>, video_bps: u32, audio_bps: u32) -> Estimator {
        let initial = initial_estimate(video_bps, audio_bps);
        Estimator {
            gcc: Gcc::new(initial, MIN_ESTIMATE_BPS, initial * CEILING_FACTOR),
            ceiling: initial * CEILING_FACTOR,
            queue: StandingQueue::default(),
            state: self.clone(),
        }
    }

    fn set_target(&self, target: f64, delay_based: f64) {
        self.target_bps.store(target.to_bits(), Ordering::Relaxed);
        self.delay_bps
            .store(delay_based.to_bits(), Ordering::Relaxed);
    }

    /// Counts what one transport-wide feedback packet says: how many packets it covers, how many arrived.
    pub fn count_feedback(&self, covered: u64, arrived: u64) {
        self.reported.fetch_add(covered, Ordering::Relaxed);
        self.lost
            .fetch_add(covered.saturating_sub(arrived), Ordering::Relaxed);
    }
}

/// The audio stream's rate on the wire, headers included.
pub(crate) fn audio_wire_bps(audio_kbps: u32) -> u32 {
    audio_kbps * 1000 + AUDIO_OVERHEAD_BPS
}

/// The estimate at which the configured stream fits exactly.
fn initial_estimate(video_bps: u32, audio_bps: u32) -> f64 {
    ((f64::from(video_bps) + f64::from(audio_bps)) / MEDIA_SHARE).max(MIN_ESTIMATE_BPS)
}

/// The lowest video bitrate congestion control goes to: an eighth of the configured one, at least 100 kb/s.
fn video_floor(configured_video_bps: u32) -> u32 {
    (configured_video_bps / 8)
        .max(100_000)
        .min(configured_video_bps)
}

/// The encoder's share of `target_bps`: what is left for media after audio, within floor..=configured.
pub(crate) fn video_bitrate(target_bps: f64, configured_video_bps: u32, audio_bps: u32) -> u32 {
    let share = target_bps * MEDIA_SHARE - f64::from(audio_bps);
    let floor = video_floor(configured_video_bps);
    (share.max(0.0) as u32).clamp(floor, configured_video_bps)
}

/// GCC, held under a standing queue, that also publishes its estimate and the feedback's loss counts into a
/// [`CongestionState`].
pub(crate) struct Estimator {
    gcc: Gcc,
    ceiling: f64,
    queue: StandingQueue,
    state: Arc<CongestionState>,
}

impl Estimator {
    /// GCC under the standing-queue cap, with its loss-based half counted only while packets also queue. Loss with
    /// no queue is random loss, which retransmissions repair; GCC's loss half takes it for congestion (above 10% it
    /// only ever decreases) and would starve the stream. Loss with a queue is a bottleneck dropping what overflows.
    fn target(&self) -> f64 {
        let gcc = if self.queue.delay_ms >= LOSS_IS_CONGESTION_QUEUE_MS {
            self.gcc.target_bitrate()
        } else {
            self.gcc
                .delay_based_bitrate()
                .clamp(MIN_ESTIMATE_BPS, self.ceiling)
        };
        self.queue.cap.map_or(gcc, |cap| gcc.min(cap))
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.queue
            .on_reports(now, reports, self.gcc.delay_based_bitrate());
        let target = self.target();
        self.state.set_target(target, target);
    }

    fn target_bitrate(&self) -> f64 {
        self.target()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

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
    last: Option<(u8, u16)>,
}

impl RelayFeedback {
    pub fn new(state: Arc<CongestionState>) -> RelayFeedback {
        RelayFeedback { state, last: None }
    }

    /// Largest gap between two consecutive feedbacks taken as lost packets rather than a restart.
    const MAX_GAP: u16 = 1_000;

    fn count(&mut self, feedback: &TransportLayerCc) {
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

/// Queueing delay from which loss is taken for a bottleneck's drops rather than random loss.
const LOSS_IS_CONGESTION_QUEUE_MS: f64 = 15.0;
/// Queueing delay above this means the bottleneck's queue is standing full, not just absorbing a burst.
const STANDING_QUEUE_MS: f64 = 40.0;
/// Below this the queue has drained and the rate may climb back.
const DRAINED_QUEUE_MS: f64 = 20.0;
/// How long the lowest one-way delay is remembered as the path's own (queue-free) delay.
const BASE_DELAY_WINDOW: Duration = Duration::from_secs(30);
/// Between two back-offs: about a round trip plus a feedback interval, so each is seen before the next.
const BACKOFF_INTERVAL: Duration = Duration::from_millis(300);

/// Catches what GCC's delay half cannot: a drop-tail bottleneck whose queue stays full. The delay *gradient* is
/// then flat and the loss (a few per cent of tail drops) sits in GCC's hold band, so its estimate rests just above
/// the capacity, with the queue's full delay on every packet. Here the one-way delay is compared with the lowest
/// seen recently; while it stays well above, the estimate is capped below the rate that actually arrives.
#[derive(Debug, Default)]
struct StandingQueue {
    /// Departure instants are measured from here.
    epoch: Option<Instant>,
    /// Lowest one-way delay (arrival on the remote clock minus departure), in ms, per second of departures.
    minimums: VecDeque<(Instant, f64)>,
    /// Smoothed queueing delay, in ms.
    delay_ms: f64,
    /// Arrivals (remote clock) and sizes of the last half second, for the delivered rate.
    arrivals: VecDeque<(Duration, usize)>,
    cap: Option<f64>,
    last_change: Option<Instant>,
}

impl StandingQueue {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport], gcc: f64) {
        let mut sum = 0.0;
        let mut count = 0usize;
        for report in reports.iter().filter(|r| r.arrived) {
            let Some(arrival) = report.arrival else {
                continue;
            };
            let epoch = *self.epoch.get_or_insert(report.departure);
            let departed_ms = report
                .departure
                .saturating_duration_since(epoch)
                .as_secs_f64()
                * 1000.0;
            let delay = arrival.as_secs_f64() * 1000.0 - departed_ms;
            match self.minimums.back_mut() {
                Some((start, min))
                    if report.departure.saturating_duration_since(*start)
                        < Duration::from_secs(1) =>
                {
                    *min = min.min(delay);
                }
                _ => self.minimums.push_back((report.departure, delay)),
            }
            sum += delay;
            count += 1;
            self.arrivals.push_back((arrival, report.size));
        }
        while self
            .minimums
            .front()
            .is_some_and(|(start, _)| now.saturating_duration_since(*start) > BASE_DELAY_WINDOW)
        {
            self.minimums.pop_front();
        }
        if let Some(&(newest, _)) = self.arrivals.back() {
            while self
                .arrivals
                .front()
                .is_some_and(|(at, _)| newest.saturating_sub(*at) > Duration::from_millis(500))
            {
                self.arrivals.pop_front();
            }
        }
        if count == 0 {
            return;
        }
        let base = self
            .minimums
            .iter()
            .map(|(_, m)| *m)
            .fold(f64::INFINITY, f64::min);
        let sample = (sum / count as f64 - base).max(0.0);
        self.delay_ms = 0.7 * self.delay_ms + 0.3 * sample;

        let settled = self
            .last_change
            .is_none_or(|at| now.saturating_duration_since(at) >= BACKOFF_INTERVAL);
        if self.delay_ms > STANDING_QUEUE_MS && settled {
            if let Some(delivered) = self.delivered_bps() {
                let cap = delivered * 0.85;
                self.cap = Some(cap.max(MIN_ESTIMATE_BPS));
                self.last_change = Some(now);
                tracing::debug!(
                    queue_ms = self.delay_ms.round(),
                    cap_kbps = (cap / 1000.0).round(),
                    "standing queue: estimate capped"
                );
            }
        } else if self.delay_ms < DRAINED_QUEUE_MS {
            if let (Some(cap), Some(at)) = (self.cap, self.last_change) {
                // Climbs back like GCC does, 8% a second, and lets go once GCC is the lower of the two.
                let elapsed = now.saturating_duration_since(at).as_secs_f64().min(1.0);
                let raised = cap * 1.08f64.powf(elapsed);
                self.cap = (raised < gcc).then_some(raised);
                self.last_change = Some(now);
            }
        }
    }

    /// What arrived over the last half second, in bits per second.
    fn delivered_bps(&self) -> Option<f64> {
        let first = self.arrivals.front()?.0;
        let last = self.arrivals.back()?.0;
        let span = last.saturating_sub(first).as_secs_f64();
        (span >= 0.1).then(|| {
            let bytes: usize = self.arrivals.iter().map(|(_, size)| size).sum();
            bytes as f64 * 8.0 / span
        })
    }
}

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
            rtx: Bucket::full(),
            urgent: VecDeque::new(),
            queue: VecDeque::new(),
            out: VecDeque::new(),
            read_queue: VecDeque::new(),
        }
    }

    /// A multiple of the estimate, and never below what the encoder sends: at the encoder's floor (a lossy path
    /// drives GCC's estimate under it) pacing to the estimate would hold the media back until the queue overflows.
    fn pacing_rate(&self) -> f64 {
        let media = self.state.encoder_bps() as f64 / MEDIA_SHARE;
        self.state.target_bps().max(media) * PACING_FACTOR
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
        let rate = self.pacing_rate();
        self.pacing.refill(now, rate, Self::pacing_cap(rate));
        let rtx_rate = (self.state.target_bps() * RTX_SHARE)
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
            if pacing && self.pacing.bits < bits.min(Self::pacing_cap(self.pacing_rate())) {
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
        let rate = self.pacing_rate();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::read_tap::ReadTap;
    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    fn rtp(now: Instant, seq: u16, payload: usize) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    sequence_number: seq,
                    ssrc: 1,
                    ..Default::default()
                },
                payload: vec![0u8; payload].into(),
            })),
        }
    }

    fn drain(pacer: &mut SendPacer) -> usize {
        std::iter::from_fn(|| pacer.poll_write()).count()
    }

    #[test]
    fn the_encoder_gets_the_media_share_within_floor_and_configured() {
        // 1 Mb/s: 700 kb/s for media, 68 kb/s of it audio.
        assert_eq!(video_bitrate(1_000_000.0, 2_500_000, 68_000), 632_000);
        assert_eq!(video_bitrate(50_000_000.0, 2_500_000, 68_000), 2_500_000);
        assert_eq!(video_bitrate(10_000.0, 2_500_000, 68_000), 312_500);
        assert_eq!(video_bitrate(10_000.0, 600_000, 68_000), 100_000);
        assert_eq!(video_bitrate(10_000.0, 80_000, 68_000), 80_000);
        // The starting estimate runs the configured stream at full rate.
        let state = CongestionState::new(2_500_000, 68_000);
        assert_eq!(state.video_bitrate(2_500_000, 68_000), 2_500_000);
        assert!(!state.limited());
    }

    #[test]
    fn feedback_loss_is_counted_from_what_the_feedback_says() {
        let state = CongestionState::new(1_000_000, 68_000);
        let before = state.feedback();
        let mut counter = ReadTap::new(RelayFeedback::new(state.clone()));
        let mut feed = |count: u8, base: u16, covered: u16, arrived: usize| {
            let feedback = TransportLayerCc {
                fb_pkt_count: count,
                base_sequence_number: base,
                packet_status_count: covered,
                recv_deltas: vec![Default::default(); arrived],
                ..Default::default()
            };
            counter
                .handle_read(TaggedPacket {
                    now: Instant::now(),
                    transport: TransportContext::default(),
                    message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(feedback)])),
                })
                .unwrap();
            assert!(counter.poll_read().is_some(), "the feedback goes on");
        };
        // Packets 0..10 covered, eight arrived (one arrival time each).
        feed(0, 0, 10, 8);
        let after = state.feedback();
        assert_eq!(
            after,
            FeedbackCounters {
                reported: 10,
                lost: 2
            }
        );
        assert_eq!(after.loss_since(&before), Some(0.2));
        assert_eq!(after.loss_since(&after), None);
        // The next feedback starts at 12: 10 and 11 were lost before it.
        feed(1, 12, 5, 5);
        assert_eq!(
            state.feedback(),
            FeedbackCounters {
                reported: 17,
                lost: 4
            }
        );
        // Feedback 2 was lost: what it covered and what came before it are unknown, not lost.
        feed(3, 40, 10, 10);
        assert_eq!(
            state.feedback(),
            FeedbackCounters {
                reported: 27,
                lost: 4
            }
        );
        // Across the wrap of both counters.
        let mut counter2 = RelayFeedback::new(state.clone());
        counter2.last = Some((255, 65_534));
        counter2.count(&TransportLayerCc {
            fb_pkt_count: 0,
            base_sequence_number: 1,
            packet_status_count: 2,
            recv_deltas: vec![Default::default(); 2],
            ..Default::default()
        });
        assert_eq!(
            state.feedback(),
            FeedbackCounters {
                reported: 32,
                lost: 7
            }
        );
    }

    fn report(id: u64, departure: Instant, arrival_ms: f64) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size: 1250,
            arrived: true,
            departure,
            arrival: Some(Duration::from_secs_f64(arrival_ms / 1000.0)),
            ecn: Default::default(),
        }
    }

    #[test]
    fn a_standing_queue_caps_the_estimate_below_the_delivered_rate() {
        let mut queue = StandingQueue::default();
        let start = Instant::now();
        let gcc = 1_200_000.0;
        // 1 Mb/s delivered (a 1250-byte packet every 10 ms), first through an empty queue, then through a queue
        // holding 100 ms.
        let mut id = 0;
        for batch in 0..40u64 {
            let queued = if batch < 10 { 0.0 } else { 100.0 };
            let reports: Vec<PacketReport> = (0..5)
                .map(|_| {
                    id += 1;
                    let sent = Duration::from_millis(id * 10);
                    report(id, start + sent, 5.0 + sent.as_secs_f64() * 1000.0 + queued)
                })
                .collect();
            queue.on_reports(start + Duration::from_millis(id * 10 + 50), &reports, gcc);
            if batch < 10 {
                assert_eq!(queue.cap, None, "no queue, no cap");
            }
        }
        let cap = queue.cap.expect("capped under a standing queue");
        assert!((800_000.0..=900_000.0).contains(&cap), "cap {cap}");

        // Drained: the cap climbs back and lets go once GCC is lower.
        for _ in 0..200 {
            let reports: Vec<PacketReport> = (0..5)
                .map(|_| {
                    id += 1;
                    let sent = Duration::from_millis(id * 10);
                    report(id, start + sent, 5.0 + sent.as_secs_f64() * 1000.0)
                })
                .collect();
            queue.on_reports(start + Duration::from_millis(id * 10 + 50), &reports, gcc);
        }
        assert_eq!(queue.cap, None);
    }

    #[test]
    fn media_passes_at_once_while_the_network_has_room() {
        let state = CongestionState::new(2_500_000, 68_000);
        state.video_bitrate(2_500_000, 68_000);
        let mut pacer = SendPacer::new(state);
        let now = Instant::now();
        // A 100-packet keyframe leaves in one go.
        for seq in 0..100 {
            pacer.handle_write(rtp(now, seq, 1200)).unwrap();
        }
        assert_eq!(drain(&mut pacer), 100);
        assert_eq!(pacer.poll_timeout(), None);
    }

    #[test]
    fn media_is_spread_at_the_pacing_rate_when_the_network_limits_it() {
        let state = CongestionState::new(2_500_000, 68_000);
        state.estimate(800_000.0, 800_000.0);
        state.video_bitrate(2_500_000, 68_000);
        assert!(state.limited() && state.pacing());
        let mut pacer = SendPacer::new(state);
        let start = Instant::now();
        // 100 packets of ~1200 bytes: ~0.97 Mbit, ~0.8 s at 1.2 Mb/s.
        for seq in 0..100 {
            pacer.handle_write(rtp(start, seq, 1200)).unwrap();
        }
        let mut sent = drain(&mut pacer);
        assert!(sent <= 4, "only a burst leaves at once, {sent} did");
        let mut now = start;
        while let Some(at) = pacer.poll_timeout() {
            assert!(at > now, "the deadline advances");
            now = at;
            pacer.handle_timeout(now).unwrap();
            sent += drain(&mut pacer);
        }
        assert_eq!(sent, 100);
        let took = now.duration_since(start).as_secs_f64();
        assert!((0.7..0.9).contains(&took), "paced over {took:.3} s");
    }

    #[test]
    fn pacing_keeps_up_with_the_encoder_at_its_floor() {
        let state = CongestionState::new(2_500_000, 68_000);
        // GCC at its floor, far below the encoder's floor of 312.5 kb/s.
        state.estimate(100_000.0, 100_000.0);
        assert_eq!(state.video_bitrate(2_500_000, 68_000), 312_500);
        let mut pacer = SendPacer::new(state);
        let start = Instant::now();
        // One second of 312.5 kb/s video in ~1200-byte packets, written as it is produced.
        let mut sent = 0;
        for seq in 0..32u16 {
            let at = start + Duration::from_millis(u64::from(seq) * 31);
            while let Some(due) = pacer.poll_timeout().filter(|due| *due <= at) {
                pacer.handle_timeout(due).unwrap();
            }
            pacer.handle_write(rtp(at, seq, 1200)).unwrap();
            sent += drain(&mut pacer);
        }
        assert!(sent >= 30, "{sent} of 32 left within the second");
    }

    #[test]
    fn the_players_estimate_caps_the_stream_and_paces_it_until_it_runs_out() {
        let state = CongestionState::new(2_500_000, 68_000);
        // The uplink is clean: GCC would carry the whole stream.
        state.estimate(4_000_000.0, 4_000_000.0);
        assert_eq!(state.video_bitrate(2_500_000, 68_000), 2_500_000);
        assert!(!state.pacing());

        // A player's downlink carries 1 Mb/s.
        state.set_receiver_estimate(1_000_000.0, Instant::now());
        assert_eq!(state.target_bps(), 1_000_000.0);
        assert_eq!(state.video_bitrate(2_500_000, 68_000), 632_000);
        assert!(state.limited() && state.pacing());

        // The relay stopped repeating it (no player is limited any more): it holds no longer.
        state.set_receiver_estimate(1_000_000.0, Instant::now() - RECEIVER_ESTIMATE_HOLD * 2);
        assert_eq!(state.target_bps(), 4_000_000.0);
        assert_eq!(state.video_bitrate(2_500_000, 68_000), 2_500_000);
        assert!(!state.pacing());
    }

    #[test]
    fn random_loss_alone_does_not_pace() {
        let state = CongestionState::new(2_500_000, 68_000);
        // The loss half went to the floor; the delay half sees no queue.
        state.estimate(100_000.0, 4_000_000.0);
        assert_eq!(state.video_bitrate(2_500_000, 68_000), 312_500);
        assert!(state.limited() && !state.pacing());
        let mut pacer = SendPacer::new(state);
        let now = Instant::now();
        for seq in 0..40 {
            pacer.handle_write(rtp(now, seq, 1200)).unwrap();
        }
        assert_eq!(drain(&mut pacer), 40, "a keyframe leaves at once");
    }

    #[test]
    fn audio_and_retransmissions_overtake_held_video() {
        let state = CongestionState::new(2_500_000, 68_000);
        state.estimate(800_000.0, 800_000.0);
        state.video_bitrate(2_500_000, 68_000);
        let mut pacer = SendPacer::new(state);
        let now = Instant::now();
        for seq in 0..50 {
            pacer.handle_write(rtp(now, seq, 1200)).unwrap();
        }
        drain(&mut pacer);
        let mut audio = rtp(now, 1000, 100);
        if let Packet::Rtp(p) = &mut audio.message.packet {
            p.header.payload_type = OPUS_PAYLOAD_TYPE;
        }
        pacer.handle_write(audio).unwrap();
        let mut repair = rtp(now, 2000, 1200);
        repair.message.add(Attribute::Retransmission);
        pacer.handle_write(repair).unwrap();
        let at = pacer.poll_timeout().unwrap();
        let mut released = Vec::new();
        let mut now = at;
        while released.len() < 2 {
            pacer.handle_timeout(now).unwrap();
            released.extend(std::iter::from_fn(|| pacer.poll_write()).map(
                |p| match p.message.packet {
                    Packet::Rtp(rtp) => rtp.header.sequence_number,
                    _ => 0,
                },
            ));
            now = pacer
                .poll_timeout()
                .unwrap_or(now + Duration::from_millis(1));
        }
        assert_eq!(&released[..2], &[1000, 2000], "ahead of the held video");
    }

    #[test]
    fn retransmissions_beyond_their_share_are_dropped_at_a_bottleneck() {
        let state = CongestionState::new(1_000_000, 68_000);
        state.estimate(800_000.0, 800_000.0);
        state.video_bitrate(1_000_000, 68_000);
        assert!(state.pacing());
        let mut pacer = SendPacer::new(state.clone());
        let now = Instant::now();
        for seq in 0..50 {
            let mut packet = rtp(now, seq, 1200);
            packet.message.add(Attribute::Retransmission);
            pacer.handle_write(packet).unwrap();
        }
        // The budget holds a burst of 12 full-size packets (144 kbit): 14 of these 9.7 kbit ones.
        assert_eq!(state.rtx_dropped(), 36);
    }

    #[test]
    fn random_loss_is_repaired_in_full() {
        let state = CongestionState::new(1_000_000, 68_000);
        state.estimate(100_000.0, 2_000_000.0);
        state.video_bitrate(1_000_000, 68_000);
        let mut pacer = SendPacer::new(state.clone());
        let now = Instant::now();
        for seq in 0..50 {
            let mut packet = rtp(now, seq, 1200);
            packet.message.add(Attribute::Retransmission);
            pacer.handle_write(packet).unwrap();
        }
        assert_eq!(drain(&mut pacer), 50);
        assert_eq!(state.rtx_dropped(), 0);
    }
}
