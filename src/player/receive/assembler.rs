//! Turns the video track's RTP packets into H.264 access units for the decoder, without I/O.
//!
//! Why not webrtc's `SampleBuilder`: it only closes a frame when the *next* frame's first packet arrives, which
//! holds every frame back by a frame interval. Here a frame is complete the moment its marker packet arrives and
//! every sequence number from the frame's first packet up to it is present.
//!
//! Loss handling: a missing sequence number is asked for at once and once per round trip ([`NackRequester`]), and
//! blocks the frame it belongs to until `max_wait` after it was seen missing. Waits overlap rather than add up: a
//! frame behind a blocked one that lost a packet at the same moment gives up at the same moment. After the wait the
//! frame is dropped, and so is every later frame until a keyframe, because each of them references what was lost;
//! the decoder is never fed a frame with missing references. While waiting for a keyframe nothing else is waited
//! for: broken delta frames are skipped at once, and a keyframe start further on is jumped to. A complete keyframe
//! further on also ends any wait. A keyframe request (PLI) is asked for, rate limited.

use std::collections::btree_map::{self, Entry};
use std::collections::btree_set;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Copied;
use std::ops::RangeBounds;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use zego_rtp::h264::{begins_only_prelude, begins_with_sps};

use super::nack::NackRequester;

/// Keyframe requests are sent at most this often.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);
/// More buffered packets than this means the stream is broken beyond repair: start over at a keyframe.
const MAX_BUFFERED_PACKETS: usize = 4096;
/// A stream whose first packet is not a keyframe start asks for this many packets before it (a keyframe's
/// parameter sets and first slice fragments).
const PROBE_BEFORE_FIRST: u64 = 4;

/// One complete H.264 access unit in Annex-B form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessUnit {
    pub data: Bytes,
    pub keyframe: bool,
    pub rtp_timestamp: u32,
    pub packets: usize,
    /// When the last packet needed arrived.
    pub completed_at: Instant,
}

/// What the assembler asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Assembled {
    /// Decode this.
    Frame(AccessUnit),
    /// Send a keyframe request (already rate limited).
    RequestKeyframe,
    /// Ask for these packets again (RTCP NACK), in order.
    Nack(Vec<u16>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AssemblerStats {
    pub frames: u64,
    /// Frames given up on (missing packets, undecodable payload, or waiting for a keyframe).
    pub dropped_frames: u64,
    pub keyframe_requests: u64,
    /// Packets that arrived after a later one (reordered or retransmitted) and were still in time.
    pub late_packets: u64,
}

struct Buffered {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
}

/// The packets waiting to become frames, by extended sequence number, with an index of those that begin a keyframe
/// (so finding one costs a lookup, not a scan of everything buffered).
#[derive(Default)]
struct Buffer {
    packets: BTreeMap<u64, Buffered>,
    keyframe_starts: BTreeSet<u64>,
}

impl Buffer {
    /// Adds a packet unless one with its sequence number is already here.
    ///
    /// A keyframe starts at a packet that begins with an SPS and opens its access unit: nothing of the same RTP
    /// timestamp came before it but delimiters and SEI. Some encoders repeat the parameter sets before every slice
    /// of an IDR picture (x264 with several slices, as GStreamer packetizes it), and a start at a later one would
    /// lose the picture's first slices.
    fn insert(&mut self, seq: u64, packet: Buffered) {
        let Entry::Vacant(slot) = self.packets.entry(seq) else {
            return;
        };
        let (timestamp, prelude) = (packet.timestamp, begins_only_prelude(&packet.payload));
        let sps = begins_with_sps(&packet.payload);
        slot.insert(packet);
        if sps && self.opens_access_unit(seq, timestamp) {
            self.keyframe_starts.insert(seq);
        }
        if !prelude {
            // Starts after this packet in its access unit (they arrived first) are no starts.
            let later: Vec<u64> = self
                .keyframe_starts
                .range(seq + 1..)
                .copied()
                .take_while(|s| {
                    self.packets
                        .get(s)
                        .is_some_and(|p| p.timestamp == timestamp)
                })
                .collect();
            for s in later {
                self.keyframe_starts.remove(&s);
            }
        }
    }

    /// Whether the packets before `seq` of the same timestamp, as far as they are here, hold only delimiters and
    /// SEI (packets not here yet are passed over; [`Buffer::insert`] of a later one corrects the answer).
    fn opens_access_unit(&self, seq: u64, timestamp: u32) -> bool {
        for (_, p) in self.packets.range(..seq).rev() {
            if p.timestamp != timestamp {
                return true;
            }
            if !begins_only_prelude(&p.payload) {
                return false;
            }
        }
        true
    }

    fn get(&self, seq: u64) -> Option<&Buffered> {
        self.packets.get(&seq)
    }

    fn contains(&self, seq: u64) -> bool {
        self.packets.contains_key(&seq)
    }

    fn len(&self) -> usize {
        self.packets.len()
    }

    fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    fn first(&self) -> Option<u64> {
        self.packets.keys().next().copied()
    }

    fn range(&self, range: impl RangeBounds<u64>) -> btree_map::Range<'_, u64, Buffered> {
        self.packets.range(range)
    }

    fn is_keyframe_start(&self, seq: u64) -> bool {
        self.keyframe_starts.contains(&seq)
    }

    /// Keyframe starts from `from` on, in order.
    fn keyframe_starts(&self, from: u64) -> Copied<btree_set::Range<'_, u64>> {
        self.keyframe_starts.range(from..).copied()
    }

    /// Removes and returns everything up to and including `last`.
    fn take_through(&mut self, last: u64) -> BTreeMap<u64, Buffered> {
        self.keyframe_starts = self.keyframe_starts.split_off(&(last + 1));
        let rest = self.packets.split_off(&(last + 1));
        std::mem::replace(&mut self.packets, rest)
    }

    /// Drops everything before `start`.
    fn drop_before(&mut self, start: u64) {
        self.keyframe_starts = self.keyframe_starts.split_off(&start);
        self.packets = self.packets.split_off(&start);
    }

    /// Drops every packet of the frame with this RTP timestamp.
    fn drop_frame(&mut self, timestamp: u32) {
        self.packets.retain(|_, p| p.timestamp != timestamp);
        let packets = &self.packets;
        self.keyframe_starts.retain(|seq| packets.contains_key(seq));
    }

    fn clear(&mut self) {
        self.packets.clear();
        self.keyframe_starts.clear();
    }
}

enum Scan {
    /// The frame starting at the head ends at this sequence number.
    Complete(u64),
    /// The rest of the frame has not arrived yet, and nothing says it was lost.
    Pending,
    /// This sequence number in the frame is missing while later ones arrived.
    Gap(u64),
}

pub(crate) struct FrameAssembler {
    packets: Buffer,
    highest: Option<u64>,
    /// Whether any packet arrived yet, padding only included: only the stream's first is probed before.
    started: bool,
    /// First sequence number of the next frame, once a frame boundary is known.
    next: Option<u64>,
    waiting_keyframe: bool,
    /// Until when the head frame may stay blocked by a gap.
    stalled_until: Option<Instant>,
    /// Since when packets have been waiting for a keyframe start (no frame boundary known).
    resync_since: Option<Instant>,
    max_wait: Duration,
    last_keyframe_request: Option<Instant>,
    nack: NackRequester,
    stats: AssemblerStats,
}

impl FrameAssembler {
    pub fn new(max_wait: Duration) -> FrameAssembler {
        FrameAssembler {
            packets: Buffer::default(),
            highest: None,
            started: false,
            next: None,
            waiting_keyframe: true,
            stalled_until: None,
            resync_since: None,
            max_wait,
            last_keyframe_request: None,
            nack: NackRequester::default(),
            stats: AssemblerStats::default(),
        }
    }

    /// The round trip to the relay, which paces re-requests of missing packets.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.nack.set_rtt(rtt);
    }

    /// Packets asked for again so far, counting each request.
    pub fn nacks_sent(&self) -> u64 {
        self.nack.requested
    }

    /// How long a gap may block a frame before it is given up.
    pub fn set_max_wait(&mut self, max_wait: Duration) {
        self.max_wait = max_wait;
    }

    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// When [`FrameAssembler::poll`] must run next: a gap's waiting time ends, a missing packet is due to be asked
    /// for (again), or a keyframe is.
    pub fn deadline(&self) -> Option<Instant> {
        let gap = [self.stalled_until, self.nack.deadline()]
            .into_iter()
            .flatten()
            .min();
        let resync = self.resync_since.map(|t| {
            let first = t + self.max_wait;
            match self.last_keyframe_request {
                Some(r) if r + KEYFRAME_REQUEST_INTERVAL > first => r + KEYFRAME_REQUEST_INTERVAL,
                _ => first,
            }
        });
        match (gap, resync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Adds one packet and returns what became ready.
    pub fn push(
        &mut self,
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
        now: Instant,
    ) -> Vec<Assembled> {
        let mut out = Vec::new();
        let first = !std::mem::replace(&mut self.started, true);
        let seq = self.extend(sequence_number);
        self.nack.on_packet(seq, marker, now);
        if first && !begins_with_sps(&payload) {
            self.nack.ask_before(seq, PROBE_BEFORE_FIRST, now);
        }
        // Already decoded or given up: a late retransmission or a duplicate.
        if self.next.is_some_and(|next| seq < next) || payload.is_empty() {
            tracing::trace!(seq = sequence_number, "packet after its frame was done");
            // It may still have made requests due (the probe before a first packet).
            self.process(now, &mut out);
            return out;
        }
        if self.highest.is_some_and(|h| seq < h) && !self.packets.contains(seq) {
            self.stats.late_packets += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.packets.insert(
            seq,
            Buffered {
                timestamp,
                marker,
                payload,
            },
        );
        if self.packets.len() > MAX_BUFFERED_PACKETS {
            tracing::warn!("video packet buffer overflowed; waiting for a keyframe");
            self.restart(now, &mut out);
        }
        self.process(now, &mut out);
        out
    }

    /// Gives up on gaps whose waiting time ended, and asks for missing packets that are due.
    pub fn poll(&mut self, now: Instant) -> Vec<Assembled> {
        let mut out = Vec::new();
        self.process(now, &mut out);
        out
    }

    /// The decoder could not use a frame: drop frames until the next keyframe. Returns whether to send a keyframe
    /// request now.
    pub fn decoder_needs_keyframe(&mut self, now: Instant) -> bool {
        self.waiting_keyframe = true;
        let mut out = Vec::new();
        self.want_keyframe(now, &mut out);
        !out.is_empty()
    }

    /// Unwraps a 16-bit sequence number to the one nearest the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        zego_rtp::seq::extend(self.highest, seq)
    }

    fn restart(&mut self, now: Instant, out: &mut Vec<Assembled>) {
        self.packets.clear();
        self.next = None;
        self.stalled_until = None;
        self.resync_since = None;
        self.waiting_keyframe = true;
        self.want_keyframe(now, out);
    }

    fn want_keyframe(&mut self, now: Instant, out: &mut Vec<Assembled>) {
        let due = self
            .last_keyframe_request
            .is_none_or(|t| now.duration_since(t) >= KEYFRAME_REQUEST_INTERVAL);
        if due {
            self.last_keyframe_request = Some(now);
            self.stats.keyframe_requests += 1;
            out.push(Assembled::RequestKeyframe);
        }
    }

    fn process(&mut self, now: Instant, out: &mut Vec<Assembled>) {
        self.assemble(now, out);
        let missing = self.nack.poll(now);
        if !missing.is_empty() {
            out.push(Assembled::Nack(missing));
        }
    }

    fn assemble(&mut self, now: Instant, out: &mut Vec<Assembled>) {
        loop {
            let Some(next) = self.next else {
                // No known frame boundary (start, or after giving up): resume at the first keyframe start. Only
                // a keyframe can be decoded here anyway.
                match self.packets.keyframe_starts(0).next() {
                    Some(start) => {
                        let first = self.packets.first().unwrap_or(start);
                        self.stats.dropped_frames += self.frames_between(first, start);
                        self.skip_to(start);
                        self.resync_since = None;
                        continue;
                    }
                    None if self.packets.is_empty() => {
                        self.resync_since = None;
                        return;
                    }
                    None => {
                        // Give reordering a moment to deliver the keyframe's first packet before asking for one.
                        let since = *self.resync_since.get_or_insert(now);
                        if now.duration_since(since) >= self.max_wait {
                            self.want_keyframe(now, out);
                        }
                        return;
                    }
                }
            };
            if let Some(key) = self.keyframe_after(next) {
                let skipped = self.frames_between(next, key);
                if skipped > 0 {
                    tracing::debug!(skipped, "jumping to a newer keyframe");
                    self.stats.dropped_frames += skipped;
                }
                self.skip_to(key);
                continue;
            }
            match self.scan(next) {
                Scan::Complete(last) => {
                    let frame = self.packets.take_through(last);
                    self.next = Some(last + 1);
                    self.nack.forget_before(last + 1);
                    self.stalled_until = None;
                    self.emit(frame, now, out);
                }
                Scan::Pending => {
                    self.stalled_until = None;
                    return;
                }
                Scan::Gap(missing) => {
                    // While waiting for a keyframe, a delta frame is useless whether or not it is repaired.
                    let useless = self.waiting_keyframe
                        && self
                            .packets
                            .get(next)
                            .is_some_and(|_| !self.packets.is_keyframe_start(next));
                    if !useless {
                        // Measured from when the packet was seen missing, so the waits of frames queued behind
                        // each other overlap instead of adding up.
                        let since = self.nack.missing_since(missing).unwrap_or_else(|| {
                            self.stalled_until
                                .map_or(now, |until| until - self.max_wait)
                        });
                        let until = since + self.max_wait;
                        if now < until {
                            if self.stalled_until.is_none() {
                                tracing::trace!(missing = ?self.missing(next), "waiting for retransmissions");
                            }
                            self.stalled_until = Some(until);
                            return;
                        }
                        tracing::debug!(
                            missing = ?self.missing(next),
                            "video packets still missing; dropping the frame"
                        );
                    }
                    self.stats.dropped_frames += 1;
                    self.stalled_until = None;
                    self.waiting_keyframe = true;
                    match self.next_frame_start(next) {
                        Some(start) => self.skip_to(start),
                        None => {
                            // Keep what arrived after the dropped frame: a keyframe start may still be repaired
                            // in front of it.
                            let dropped =
                                self.packets.range(next..).next().map(|(_, p)| p.timestamp);
                            if let Some(dropped) = dropped {
                                self.packets.drop_frame(dropped);
                            }
                            self.next = None;
                            self.nack.forget_before(next + 1);
                        }
                    }
                    self.want_keyframe(now, out);
                }
            }
        }
    }

    /// Continues at `start`, dropping everything before it.
    fn skip_to(&mut self, start: u64) {
        self.packets.drop_before(start);
        self.next = Some(start);
        self.stalled_until = None;
        self.nack.forget_before(start);
    }

    /// A keyframe start after `next` worth jumping to: any, while waiting for a keyframe (nothing before it can be
    /// decoded); otherwise one whose frame is complete (it ends every wait before it).
    fn keyframe_after(&self, next: u64) -> Option<u64> {
        self.packets
            .keyframe_starts(next + 1)
            .rev()
            .find(|seq| self.waiting_keyframe || matches!(self.scan(*seq), Scan::Complete(_)))
    }

    /// How many frames (distinct timestamps) are buffered in `from..to`.
    fn frames_between(&self, from: u64, to: u64) -> u64 {
        let mut timestamps: Vec<u32> = self
            .packets
            .range(from..to)
            .map(|(_, p)| p.timestamp)
            .collect();
        timestamps.dedup();
        timestamps.len() as u64
    }

    /// Where the frame that starts at `start` ends, if it can be told yet.
    fn scan(&self, start: u64) -> Scan {
        let arrived_after = |seq: u64| self.highest.is_some_and(|h| h > seq);
        let Some(first) = self.packets.get(start) else {
            return if arrived_after(start) {
                Scan::Gap(start)
            } else {
                Scan::Pending
            };
        };
        let timestamp = first.timestamp;
        let mut seq = start;
        loop {
            match self.packets.get(seq) {
                None => {
                    return if arrived_after(seq) {
                        Scan::Gap(seq)
                    } else {
                        Scan::Pending
                    }
                }
                // A sender that sets no marker: the frame ended where the next timestamp begins.
                Some(p) if p.timestamp != timestamp => return Scan::Complete(seq - 1),
                Some(p) if p.marker => return Scan::Complete(seq),
                Some(_) => seq += 1,
            }
        }
    }

    /// Sequence numbers missing between `from` and the highest seen (for the logs).
    fn missing(&self, from: u64) -> Vec<u16> {
        let highest = self.highest.unwrap_or(from);
        (from..highest)
            .filter(|s| !self.packets.contains(*s))
            .take(16)
            .map(|s| s as u16)
            .collect()
    }

    /// The first buffered packet after `after` that is known to begin a frame.
    fn next_frame_start(&self, after: u64) -> Option<u64> {
        self.packets
            .range(after + 1..)
            .find(|(seq, p)| {
                self.packets.is_keyframe_start(**seq)
                    || self
                        .packets
                        .get(**seq - 1)
                        .is_some_and(|prev| prev.marker || prev.timestamp != p.timestamp)
            })
            .map(|(seq, _)| *seq)
    }

    fn emit(&mut self, frame: BTreeMap<u64, Buffered>, now: Instant, out: &mut Vec<Assembled>) {
        let packets = frame.len();
        let rtp_timestamp = frame.values().next().map_or(0, |p| p.timestamp);
        let mut depacketizer = H264Packet::default();
        let mut data = BytesMut::new();
        for packet in frame.values() {
            match depacketizer.depacketize(&packet.payload) {
                Ok(nals) => data.extend_from_slice(&nals),
                Err(e) => {
                    tracing::debug!("undecodable H.264 payload: {e}");
                    data.clear();
                    break;
                }
            }
        }
        if data.is_empty() {
            self.stats.dropped_frames += 1;
            self.waiting_keyframe = true;
            self.want_keyframe(now, out);
            return;
        }
        let keyframe = zego_media::codec::h264::contains_idr(&data);
        if self.waiting_keyframe && !keyframe {
            self.stats.dropped_frames += 1;
            self.want_keyframe(now, out);
            return;
        }
        self.waiting_keyframe = false;
        self.stats.frames += 1;
        out.push(Assembled::Frame(AccessUnit {
            data: data.freeze(),
            keyframe,
            rtp_timestamp,
            packets,
            completed_at: now,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::codec::h264::H264Payloader;
    use rtc::rtp::packetizer::Payloader;

    const WAIT: Duration = Duration::from_millis(80);

    /// A sent packet: (seq, timestamp, marker, payload).
    type Pkt = (u16, u32, bool, Bytes);

    /// Packetizes Annex-B NAL units the way the publisher's track does (small MTU to get FU-A fragments).
    struct Sender {
        payloader: H264Payloader,
        seq: u16,
        ts: u32,
    }

    impl Sender {
        fn new(seq: u16) -> Sender {
            Sender {
                payloader: H264Payloader::default(),
                seq,
                ts: 90_000,
            }
        }

        fn frame(&mut self, nals: &[&[u8]]) -> Vec<Pkt> {
            let mut annexb = Vec::new();
            for nal in nals {
                annexb.extend_from_slice(&[0, 0, 0, 1]);
                annexb.extend_from_slice(nal);
            }
            let payloads = self.payloader.payload(100, &Bytes::from(annexb)).unwrap();
            let n = payloads.len();
            let out = payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let seq = self.seq;
                    self.seq = self.seq.wrapping_add(1);
                    (seq, self.ts, i == n - 1, p)
                })
                .collect();
            self.ts = self.ts.wrapping_add(3000);
            out
        }

        fn keyframe(&mut self, tag: u8) -> Vec<Pkt> {
            let idr: Vec<u8> = std::iter::once(0x65)
                .chain((0..250).map(|i| (i as u8) ^ tag))
                .collect();
            self.frame(&[&[0x67, 0x42, 0xE0, 0x1F], &[0x68, 0xCE, 0x3C, 0x80], &idr])
        }

        fn delta(&mut self, tag: u8) -> Vec<Pkt> {
            let slice: Vec<u8> = std::iter::once(0x41)
                .chain((0..150).map(|i| (i as u8) ^ tag))
                .collect();
            self.frame(&[&slice])
        }
    }

    fn push(a: &mut FrameAssembler, p: &Pkt, now: Instant) -> Vec<Assembled> {
        a.push(p.0, p.1, p.2, p.3.clone(), now)
    }

    fn frames(out: &[Assembled]) -> Vec<&AccessUnit> {
        out.iter()
            .filter_map(|o| match o {
                Assembled::Frame(au) => Some(au),
                _ => None,
            })
            .collect()
    }

    fn asks_keyframe(out: &[Assembled]) -> bool {
        out.contains(&Assembled::RequestKeyframe)
    }

    /// The Annex-B bytes the sender packetized for a frame, as the depacketizer rebuilds them.
    fn expected(packets: &[Pkt]) -> Bytes {
        let mut d = H264Packet::default();
        let mut data = BytesMut::new();
        for p in packets {
            data.extend_from_slice(&d.depacketize(&p.3).unwrap());
        }
        data.freeze()
    }

    #[test]
    fn the_marker_packet_completes_a_frame_at_once() {
        let t0 = Instant::now();
        let mut s = Sender::new(1000);
        let mut a = FrameAssembler::new(WAIT);
        let key = s.keyframe(1);
        assert!(key.len() >= 3, "the keyframe should span several packets");
        for p in &key[..key.len() - 1] {
            assert!(frames(&push(&mut a, p, t0)).is_empty());
        }
        let out = push(&mut a, key.last().unwrap(), t0);
        let f = frames(&out);
        assert_eq!(f.len(), 1, "no need to wait for the next frame");
        assert!(f[0].keyframe);
        assert_eq!(f[0].data, expected(&key));
        assert_eq!(f[0].packets, key.len());
        assert!(f[0].data.starts_with(&[0, 0, 0, 1, 0x67]));

        let delta = s.delta(2);
        assert_eq!(delta.len(), 2);
        assert!(frames(&push(&mut a, &delta[0], t0)).is_empty());
        let f2 = push(&mut a, &delta[1], t0);
        assert_eq!(frames(&f2).len(), 1);
        assert!(!frames(&f2)[0].keyframe);
        assert_eq!(a.stats().frames, 2);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let t0 = Instant::now();
        let mut s = Sender::new(5);
        let mut a = FrameAssembler::new(WAIT);
        let key = s.keyframe(3);
        let mut order: Vec<&Pkt> = key.iter().collect();
        order.swap(0, 2);
        order.swap(1, 3);
        let mut got = Vec::new();
        for p in order {
            got.extend(push(&mut a, p, t0));
        }
        let f = frames(&got);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].data, expected(&key));
        assert!(!asks_keyframe(&got));
    }

    #[test]
    fn a_stream_whose_keyframe_start_was_lost_asks_for_it() {
        let t0 = Instant::now();
        let mut s = Sender::new(300);
        let mut a = FrameAssembler::new(WAIT);
        let key = s.keyframe(4);
        // The relay starts this player at the keyframe, whose first packet is lost: nothing shows a gap.
        let mut out = Vec::new();
        for p in &key[1..] {
            out.extend(push(&mut a, p, t0));
        }
        assert!(frames(&out).is_empty());
        let asked: Vec<u16> = out
            .iter()
            .filter_map(|o| match o {
                Assembled::Nack(seqs) => Some(seqs.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(asked.contains(&key[0].0), "asked for {asked:?}");
        assert!(
            !asks_keyframe(&out),
            "no keyframe request while the start may come back"
        );
        let f = frames(&push(&mut a, &key[0], t0 + Duration::from_millis(20))).len();
        assert_eq!(f, 1, "the retransmitted start completes the keyframe");
    }

    #[test]
    fn a_retransmission_fills_a_gap_before_the_deadline() {
        let t0 = Instant::now();
        let mut s = Sender::new(200);
        let mut a = FrameAssembler::new(WAIT);
        for p in s.keyframe(1) {
            push(&mut a, &p, t0);
        }
        let d1 = s.delta(2);
        let d2 = s.delta(3);
        // d1's first packet is lost; the rest of d1 and all of d2 arrive.
        assert!(push(&mut a, &d1[1], t0).is_empty());
        for p in &d2 {
            assert!(
                frames(&push(&mut a, p, t0)).is_empty(),
                "d2 must wait behind d1"
            );
        }
        // The missing packet is asked for at once, and again a round trip later if still missing.
        let asked = a.deadline().unwrap();
        assert!(asked < t0 + Duration::from_millis(5));
        assert_eq!(a.poll(asked), vec![Assembled::Nack(vec![d1[0].0])]);
        assert!(frames(&a.poll(t0 + WAIT / 2)).is_empty());
        // The retransmission arrives: both frames come out, in order.
        let out = push(&mut a, &d1[0], t0 + WAIT / 2);
        let f = frames(&out);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].data, expected(&d1));
        assert_eq!(f[1].data, expected(&d2));
        assert_eq!(a.deadline(), None);
        assert_eq!(a.stats().dropped_frames, 0);
        assert_eq!(a.stats().late_packets, 1);
    }

    #[test]
    fn an_unrepaired_gap_drops_frames_until_the_next_keyframe() {
        let t0 = Instant::now();
        let mut s = Sender::new(65_530); // wraps around 65535 on the way
        let mut a = FrameAssembler::new(WAIT);
        for p in s.keyframe(1) {
            assert!(!asks_keyframe(&push(&mut a, &p, t0)));
        }
        let lost = s.delta(2);
        let after1 = s.delta(3);
        let after2 = s.delta(4);
        push(&mut a, &lost[0], t0); // lost[1] never arrives
        for p in after1.iter().chain(&after2) {
            assert!(frames(&push(&mut a, p, t0)).is_empty());
        }
        // The wait ends: the broken frame and those that depend on it are dropped, and a keyframe is asked for.
        let out = a.poll(t0 + WAIT);
        assert!(
            frames(&out).is_empty(),
            "never decode a frame with missing references"
        );
        assert!(asks_keyframe(&out));
        // The broken frame, and the next one as soon as it came out.
        assert_eq!(a.stats().dropped_frames, 2);
        // More delta frames: still dropped; the request is rate limited.
        let out = s
            .delta(5)
            .iter()
            .flat_map(|p| push(&mut a, p, t0 + WAIT))
            .collect::<Vec<_>>();
        assert!(out.is_empty());
        // The keyframe brings the picture back.
        let key = s.keyframe(6);
        let later = t0 + WAIT + KEYFRAME_REQUEST_INTERVAL;
        let out: Vec<_> = key.iter().flat_map(|p| push(&mut a, p, later)).collect();
        let f = frames(&out);
        assert_eq!(f.len(), 1);
        assert!(f[0].keyframe);
        let d = s.delta(7);
        let out: Vec<_> = d.iter().flat_map(|p| push(&mut a, p, later)).collect();
        assert_eq!(frames(&out).len(), 1);
        // A retransmission of the lost packet arriving now is ignored.
        assert!(push(&mut a, &lost[1], later).is_empty());
    }

    #[test]
    fn waits_for_frames_queued_behind_each_other_overlap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Sender::new(300);
        let mut a = FrameAssembler::new(WAIT);
        for p in s.keyframe(1) {
            push(&mut a, &p, t0);
        }
        let d1 = s.delta(2);
        let d2 = s.delta(3);
        let d3 = s.delta(4);
        push(&mut a, &d1[1], t0); // d1[0] missing from t0
        push(&mut a, &d2[1], t0 + ms(10)); // d2[0] missing from t0 + 10 ms
        for p in &d3 {
            push(&mut a, p, t0 + ms(10));
        }
        // d1 is repaired just before its deadline; d2 gets only what is left of its own wait, not a new one.
        let out = push(&mut a, &d1[0], t0 + WAIT - ms(1));
        assert_eq!(frames(&out).len(), 1);
        assert!(frames(&a.poll(t0 + WAIT + ms(9))).is_empty());
        assert_eq!(a.stats().dropped_frames, 0);
        let out = a.poll(t0 + WAIT + ms(10));
        assert!(asks_keyframe(&out));
        assert!(frames(&out).is_empty());
        // d2 given up, and d3 with it (it references d2), at once.
        assert_eq!(a.stats().dropped_frames, 2);
    }

    #[test]
    fn a_complete_keyframe_ends_any_wait_before_it() {
        let t0 = Instant::now();
        let mut s = Sender::new(7_000);
        let mut a = FrameAssembler::new(WAIT);
        for p in s.keyframe(1) {
            push(&mut a, &p, t0);
        }
        let d1 = s.delta(2);
        push(&mut a, &d1[1], t0); // d1[0] never arrives
        let key = s.keyframe(3);
        let out: Vec<_> = key.iter().flat_map(|p| push(&mut a, p, t0)).collect();
        let f = frames(&out);
        assert_eq!(f.len(), 1, "no waiting for a frame the keyframe replaces");
        assert!(f[0].keyframe);
        assert!(!asks_keyframe(&out));
        assert_eq!(a.stats().dropped_frames, 1);
        // The gap is forgotten: nothing more is asked for.
        assert!(a.poll(t0 + WAIT).is_empty());
    }

    #[test]
    fn while_waiting_for_a_keyframe_broken_delta_frames_are_not_waited_for() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Sender::new(20);
        let mut a = FrameAssembler::new(WAIT);
        for p in s.keyframe(1) {
            push(&mut a, &p, t0);
        }
        let lost = s.delta(2);
        push(&mut a, &lost[1], t0);
        assert!(asks_keyframe(&a.poll(t0 + WAIT)));
        // Waiting for a keyframe now: a delta frame with a gap is skipped at once.
        let broken = s.delta(3);
        let t1 = t0 + WAIT + ms(5);
        push(&mut a, &broken[1], t1);
        let whole = s.delta(4);
        for p in &whole {
            push(&mut a, p, t1);
        }
        // The keyframe's first packet arrives after its second: the keyframe is jumped to and completes.
        let key = s.keyframe(5);
        push(&mut a, &key[1], t1);
        let out: Vec<_> = [&key[0]]
            .into_iter()
            .chain(&key[2..])
            .flat_map(|p| push(&mut a, p, t1 + ms(1)))
            .collect();
        assert_eq!(frames(&out).len(), 1);
        assert!(frames(&out)[0].keyframe);
        assert_eq!(a.stats().dropped_frames, 3, "lost, broken and whole");
    }

    #[test]
    fn keyframe_requests_are_rate_limited() {
        let t0 = Instant::now();
        let mut s = Sender::new(1);
        let mut a = FrameAssembler::new(WAIT);
        // Joining mid-stream: delta frames cannot be decoded; reordering gets a moment before a keyframe is asked.
        let first: Vec<_> = s
            .delta(1)
            .iter()
            .flat_map(|p| push(&mut a, p, t0))
            .collect();
        assert!(frames(&first).is_empty() && !asks_keyframe(&first));
        assert!(!asks_keyframe(
            &a.poll(t0 + WAIT - Duration::from_millis(1))
        ));
        assert!(asks_keyframe(&a.poll(t0 + WAIT)));
        let t1 = t0 + WAIT + Duration::from_millis(10);
        let again: Vec<_> = s
            .delta(2)
            .iter()
            .flat_map(|p| push(&mut a, p, t1))
            .collect();
        assert!(!asks_keyframe(&again));
        let t2 = t0 + WAIT + KEYFRAME_REQUEST_INTERVAL;
        let later: Vec<_> = s
            .delta(3)
            .iter()
            .flat_map(|p| push(&mut a, p, t2))
            .collect();
        assert!(asks_keyframe(&later));
        assert!(frames(&later).is_empty());
        assert!(!a.decoder_needs_keyframe(t2));
        assert!(a.decoder_needs_keyframe(t2 + KEYFRAME_REQUEST_INTERVAL));
    }

    /// A keyframe as GStreamer's x264enc and rtph264pay send it: a delimiter, then the parameter sets again before
    /// each of the picture's two slices, one NAL unit per packet.
    fn gstreamer_keyframe(seq: u16, ts: u32) -> Vec<Pkt> {
        let slice = |first: u8| -> Bytes {
            std::iter::once(0x65)
                .chain(std::iter::once(first))
                .chain(0..40)
                .collect::<Vec<u8>>()
                .into()
        };
        let (sps, pps) = (
            Bytes::from_static(&[0x67, 0x42, 0xC0, 0x0D]),
            Bytes::from_static(&[0x68, 0xCE, 0x3C, 0x80]),
        );
        let nals = [
            Bytes::from_static(&[0x09, 0xF0]),
            sps.clone(),
            pps.clone(),
            Bytes::from_static(&[0x06, 0x05, 0x01, 0x00]),
            sps.clone(),
            pps.clone(),
            slice(0x88),
            sps,
            pps,
            slice(0x01),
        ];
        let n = nals.len();
        nals.into_iter()
            .enumerate()
            .map(|(i, nal)| (seq.wrapping_add(i as u16), ts, i == n - 1, nal))
            .collect()
    }

    #[test]
    fn a_keyframe_with_parameter_sets_before_every_slice_starts_at_the_first() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(WAIT);
        let key = gstreamer_keyframe(500, 90_000);
        let out: Vec<_> = key.iter().flat_map(|p| push(&mut a, p, t0)).collect();
        let f = frames(&out);
        assert_eq!(f.len(), 1, "{out:?}");
        assert_eq!(
            f[0].data,
            expected(&key[1..]),
            "from the first SPS on: both slices"
        );

        // The second SPS overtakes the first, while the assembler waits for a keyframe: it jumps there, and the
        // frame from there still holds the parameter sets and both slices.
        let mut a = FrameAssembler::new(WAIT);
        let key = gstreamer_keyframe(600, 93_000);
        let order = [0, 4, 1, 2, 3, 5, 6, 7, 8, 9];
        let out: Vec<_> = order
            .iter()
            .flat_map(|&i| push(&mut a, &key[i], t0))
            .collect();
        let f = frames(&out);
        assert_eq!(f.len(), 1, "{out:?}");
        assert_eq!(f[0].data, expected(&key[4..]));
    }

    #[test]
    fn joining_mid_stream_starts_at_the_first_keyframe() {
        let t0 = Instant::now();
        let mut s = Sender::new(40_000);
        let mut a = FrameAssembler::new(WAIT);
        let d = s.delta(1);
        push(&mut a, &d[1], t0); // the tail of a frame whose start we never saw
        let key = s.keyframe(2);
        let out: Vec<_> = key.iter().flat_map(|p| push(&mut a, p, t0)).collect();
        let f = frames(&out);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].data, expected(&key));
    }

    #[test]
    fn frames_without_markers_complete_when_the_next_timestamp_begins() {
        let t0 = Instant::now();
        let mut s = Sender::new(10);
        let mut a = FrameAssembler::new(WAIT);
        let mut key = s.keyframe(1);
        key.last_mut().unwrap().2 = false;
        let d = s.delta(2);
        let out: Vec<_> = key.iter().flat_map(|p| push(&mut a, p, t0)).collect();
        assert!(frames(&out).is_empty());
        let out = push(&mut a, &d[0], t0);
        assert_eq!(frames(&out).len(), 1);
    }

    /// A first packet without payload (padding only) still asks for the packets before it at once: nothing it
    /// made due is left for a later poll.
    #[test]
    fn a_first_packet_without_payload_asks_for_those_before_it() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(WAIT);
        let out = a.push(2570, 0, true, Bytes::new(), t0);
        assert!(
            out.iter()
                .any(|o| matches!(o, Assembled::Nack(seqs) if seqs.contains(&2569))),
            "{out:?}"
        );
        assert!(
            a.deadline().is_none_or(|d| d > t0),
            "a deadline already due"
        );
    }

    /// Only the stream's first packet is probed before, even when the packets before a keyframe carry no payload.
    #[test]
    fn only_the_first_packet_is_probed_before() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(WAIT);
        a.push(1000, 0, true, Bytes::new(), t0);
        let out = a.push(500, 0, true, Bytes::new(), t0);
        assert!(
            !out.iter().any(|o| matches!(o, Assembled::Nack(_))),
            "{out:?}"
        );
    }
}
