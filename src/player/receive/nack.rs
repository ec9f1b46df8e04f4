//! Which missing packets to ask for again (RTCP NACK), and when, without I/O: video's, and audio's while the jitter
//! buffer can still play them (audio packets each end their "frame", so the tail probe below is video's only).
//!
//! A gap is asked for as soon as it is seen, then once per round trip while the frame buffer still wants the
//! packet: asking more often only buys duplicate retransmissions (a relay that sees too many stops answering),
//! asking less often leaves a lost NACK or retransmission unrepaired until the frame is given up.
//!
//! A frame's last packet has no later packet to reveal its loss until the next frame starts, a frame interval
//! later. So when the newest packet does not end a frame and nothing follows it for a few milliseconds, the next
//! sequence number is asked for too (the relay ignores it if it never had it). "A few" is three times the spacing
//! of a frame's packets lately, at least 8 ms: behind a slow link the packets of a frame arrive a serialization
//! time apart (10 ms each at 1 Mb/s), and a fixed wait would ask for nearly every packet while it is still on its
//! way, each retransmission adding to the very queue that delayed it.
//!
//! On a path that loses a lot, a lost NACK or retransmission is common (one in five at 10% each way), and each costs
//! a frame a whole extra round trip. There the first request is repeated a moment later: two retransmissions are
//! lost together far more rarely, for one extra retransmission per lost packet. This is where a little redundancy
//! pays, like FEC, but only for packets actually lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A gap is asked for this long after it is seen, so one burst of losses goes out in one NACK.
const FIRST_REQUEST_DELAY: Duration = Duration::from_millis(2);
/// Re-asking is never more frequent than this, however short the round trip.
const MIN_RETRY: Duration = Duration::from_millis(10);
/// Round trip assumed before one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// A packet is asked for at most this many times.
const MAX_REQUESTS: u32 = 15;
/// Above this loss rate the first request is sent twice.
const REDUNDANT_ABOVE_LOSS: f64 = 0.02;
/// How far apart the two first requests are, as a share of the round trip (at least `MIN_RETRY`).
const REDUNDANT_SPACING: f64 = 0.25;
/// Weight of each packet in the loss rate's moving average (about the last 500 packets).
const LOSS_WEIGHT: f64 = 1.0 / 500.0;
/// The newest packet does not end a frame and nothing followed it for this long: its successor is probably lost.
const TAIL_WAIT: Duration = Duration::from_millis(8);
/// The tail wait is at least this many times the recent spacing of a frame's packets.
const TAIL_WAIT_SPACINGS: u32 = 3;
/// Weight of each new spacing in its moving average.
const SPACING_WEIGHT: f64 = 1.0 / 16.0;
/// More missing packets than this is a broken stream, not loss to repair: the oldest are forgotten, and a gap
/// this long on its own (seconds of an outage) is not asked for at all — by the time it could be repaired the
/// frame buffer has given its frames up for a keyframe, and a thousand retransmissions in one burst would only
/// flood the link that just came back.
const MAX_MISSING: usize = 1000;

#[derive(Debug, Clone, Copy)]
struct Missing {
    /// When the gap was seen (a later packet arrived).
    seen: Instant,
    /// When to ask (again).
    due: Instant,
    requests: u32,
}

#[derive(Debug, Default)]
pub(crate) struct NackRequester {
    /// Extended sequence number -> state.
    missing: BTreeMap<u64, Missing>,
    /// `(due, seq)` of the missing packets still to be asked for (fewer than `MAX_REQUESTS` requests): the next
    /// request is the first entry, whatever the number missing.
    queue: BTreeSet<(Instant, u64)>,
    highest: Option<u64>,
    rtt: Option<Duration>,
    /// Packets asked for, counting each request.
    pub requested: u64,
    /// Moving average of the loss left to NACK (what arrives missing here, after FEC).
    loss: f64,
    /// When to ask for the packet after the newest one, which did not end its frame.
    tail_probe: Option<Instant>,
    /// The newest packet: whether it ended its frame, and when it arrived.
    newest: Option<(bool, Instant)>,
    /// Moving average of the time between consecutive packets of one frame, in seconds.
    spacing: f64,
}

impl NackRequester {
    /// The latest round-trip estimate to the relay; re-requests wait this long (plus a margin).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    /// A packet arrived: it is no longer missing, and any sequence numbers it skipped now are. `marker` says it
    /// ends a frame.
    pub fn on_packet(&mut self, seq: u64, marker: bool, now: Instant) {
        if self.highest.is_none_or(|h| seq > h) {
            // The next packet of the frame the newest one continued: a sample of how far apart they come.
            if let (Some(highest), Some((false, at))) = (self.highest, self.newest) {
                if seq == highest + 1 {
                    let gap = now.saturating_duration_since(at).as_secs_f64();
                    self.spacing += (gap - self.spacing) * SPACING_WEIGHT;
                }
            }
            self.newest = Some((marker, now));
            self.tail_probe = (!marker).then(|| now + self.tail_wait());
        }
        if let Some(m) = self.remove(seq) {
            tracing::trace!(
                seq,
                requests = m.requests,
                repaired_after_ms = now.duration_since(m.seen).as_secs_f64() * 1000.0,
                "missing packet arrived"
            );
        }
        match self.highest {
            None => self.highest = Some(seq),
            Some(highest) if seq > highest => {
                let lost = seq - highest - 1;
                let keep = (1.0 - LOSS_WEIGHT).powi((seq - highest).min(1000) as i32);
                self.loss =
                    self.loss * keep + (1.0 - keep) * (lost as f64 / (seq - highest) as f64);
                let from = if lost > MAX_MISSING as u64 {
                    tracing::debug!(lost, "a gap too long to repair; not asking for any of it");
                    self.missing.clear();
                    self.queue.clear();
                    seq
                } else {
                    highest + 1
                };
                for lost in from..seq {
                    // Already there when it was asked for as a frame's probable tail.
                    self.insert(lost, now, now + FIRST_REQUEST_DELAY);
                }
                while self.missing.len() > MAX_MISSING {
                    if let Some((oldest, m)) = self.missing.pop_first() {
                        self.queue.remove(&(m.due, oldest));
                    }
                }
                self.highest = Some(seq);
            }
            Some(_) => {}
        }
    }

    /// The stream's first packet does not start a keyframe, where the relay starts every player: the packets
    /// before it were probably lost, and nothing would ever reveal the gap. Asks for the `count` before `seq` (the
    /// relay ignores requests for packets it never sent).
    pub fn ask_before(&mut self, seq: u64, count: u64, now: Instant) {
        for lost in seq.saturating_sub(count)..seq {
            self.insert(lost, now, now);
        }
    }

    /// The frame buffer has no use for packets before `seq` any more (decoded, or given up).
    pub fn forget_before(&mut self, seq: u64) {
        let kept = self.missing.split_off(&seq);
        for (old, m) in std::mem::replace(&mut self.missing, kept) {
            self.queue.remove(&(m.due, old));
        }
    }

    /// Since when `seq` has been known to be missing.
    pub fn missing_since(&self, seq: u64) -> Option<Instant> {
        self.missing.get(&seq).map(|m| m.seen)
    }

    /// When [`NackRequester::poll`] has something to send.
    pub fn deadline(&self) -> Option<Instant> {
        self.queue
            .first()
            .map(|(due, _)| *due)
            .into_iter()
            .chain(self.tail_probe)
            .min()
    }

    /// The sequence numbers to ask for now, in order.
    pub fn poll(&mut self, now: Instant) -> Vec<u16> {
        if let (Some(due), Some(highest)) = (self.tail_probe, self.highest) {
            if due <= now {
                self.tail_probe = None;
                self.insert(highest + 1, now, now);
            }
        }
        let retry = self.retry_interval();
        let redundant = (self.loss > REDUNDANT_ABOVE_LOSS)
            .then(|| retry.mul_f64(REDUNDANT_SPACING).max(MIN_RETRY));
        let mut due = Vec::new();
        while let Some(&(at, seq)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            due.push(seq);
        }
        due.sort_unstable();
        for &seq in &due {
            let m = self
                .missing
                .get_mut(&seq)
                .expect("a queued packet is missing");
            m.requests += 1;
            m.due = match redundant {
                Some(spacing) if m.requests == 1 => now + spacing,
                _ => now + retry,
            };
            if m.requests < MAX_REQUESTS {
                self.queue.insert((m.due, seq));
            }
        }
        self.requested += due.len() as u64;
        due.into_iter().map(|seq| seq as u16).collect()
    }

    /// `seq` is missing, since `seen`, to be asked for at `due` (unless it was already).
    fn insert(&mut self, seq: u64, seen: Instant, due: Instant) {
        if let std::collections::btree_map::Entry::Vacant(entry) = self.missing.entry(seq) {
            entry.insert(Missing {
                seen,
                due,
                requests: 0,
            });
            self.queue.insert((due, seq));
        }
    }

    /// `seq` is no longer missing.
    fn remove(&mut self, seq: u64) -> Option<Missing> {
        let m = self.missing.remove(&seq)?;
        self.queue.remove(&(m.due, seq));
        Some(m)
    }

    /// How long after a packet that does not end its frame the next one is given before it is asked for.
    fn tail_wait(&self) -> Duration {
        TAIL_WAIT.max(Duration::from_secs_f64(self.spacing) * TAIL_WAIT_SPACINGS)
    }

    fn retry_interval(&self) -> Duration {
        let rtt = self.rtt.unwrap_or(DEFAULT_RTT);
        // A quarter on top covers queueing and the relay's turnaround without doubling requests.
        (rtt + rtt / 4 + Duration::from_millis(5)).max(MIN_RETRY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_gap_is_asked_for_at_once_and_again_each_round_trip() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.set_rtt(MS(100));
        n.on_packet(10, true, t0);
        n.on_packet(11, true, t0);
        assert_eq!(n.deadline(), None, "nothing missing");
        n.on_packet(14, true, t0);
        assert_eq!(n.deadline(), Some(t0 + FIRST_REQUEST_DELAY));
        assert!(n.poll(t0).is_empty(), "a burst gets a moment to finish");
        let t1 = t0 + FIRST_REQUEST_DELAY;
        assert_eq!(n.poll(t1), vec![12, 13]);
        assert!(
            n.poll(t1 + MS(50)).is_empty(),
            "not again before a round trip"
        );
        let retry = n.deadline().unwrap();
        assert!(retry >= t1 + MS(100) && retry <= t1 + MS(140));
        // 12 is repaired; 13 is asked for again.
        n.on_packet(12, true, t1 + MS(101));
        assert_eq!(n.poll(retry), vec![13]);
        assert_eq!(n.missing_since(13), Some(t0));
        assert_eq!(n.missing_since(12), None);
        assert_eq!(n.requested, 3);
    }

    #[test]
    fn on_a_lossy_path_the_first_request_is_repeated_soon() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.set_rtt(MS(100));
        // One packet in ten lost.
        let mut seq = 0;
        for i in 0..2000u64 {
            seq += if i % 9 == 8 { 2 } else { 1 };
            n.on_packet(seq, true, t0);
        }
        assert!((n.loss - 0.1).abs() < 0.02, "loss {}", n.loss);
        n.forget_before(seq + 1);
        n.on_packet(seq + 2, true, t0);
        let t1 = t0 + FIRST_REQUEST_DELAY;
        assert_eq!(n.poll(t1), vec![(seq + 1) as u16]);
        let again = n.deadline().unwrap();
        assert!(
            again <= t1 + MS(40),
            "redundant request after {:?}",
            again - t1
        );
        assert_eq!(n.poll(again).len(), 1);
        // Then once per round trip.
        assert!(n.deadline().unwrap() >= again + MS(100));
    }

    #[test]
    fn a_frame_whose_tail_is_late_gets_its_next_packet_asked_for() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.on_packet(1, true, t0);
        n.on_packet(2, false, t0); // a frame's first packet; the rest may follow
        assert_eq!(n.deadline(), Some(t0 + TAIL_WAIT));
        n.on_packet(3, false, t0 + MS(2));
        assert!(n.poll(t0 + MS(9)).is_empty(), "packets kept coming");
        assert_eq!(n.poll(t0 + MS(2) + TAIL_WAIT), vec![4]);
        // The next frame reveals 4 and 5 as lost: 4 is not asked for twice at once, 5 is new.
        n.on_packet(6, false, t0 + MS(20));
        assert_eq!(n.poll(t0 + MS(23)), vec![5]);
    }

    #[test]
    fn behind_a_slow_link_the_tail_wait_follows_the_packet_spacing() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        // Frames of ten packets arriving 10 ms apart (1 Mb/s), none lost: nothing is asked for.
        let mut asked = Vec::new();
        let mut now = t0;
        for seq in 1..=300u64 {
            now += MS(10);
            while let Some(due) = n.deadline().filter(|d| *d < now) {
                asked.extend(n.poll(due));
            }
            n.on_packet(seq, seq % 10 == 0, now);
        }
        // The first frames ask a few times before the spacing is learnt; then never again.
        assert!(
            asked.len() < 15,
            "asked for {} packets on their way",
            asked.len()
        );
        let late: Vec<_> = asked.iter().filter(|s| **s > 100).collect();
        assert!(
            late.is_empty(),
            "still asking after the first frames: {late:?}"
        );
        assert!(n.tail_wait() >= MS(25));
        // A lost tail is still asked for, once the wait is over.
        n.on_packet(301, false, now + MS(10));
        assert_eq!(n.poll(now + MS(10) + n.tail_wait()), vec![302]);
    }

    #[test]
    fn forgotten_packets_are_not_asked_for() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.on_packet(100, true, t0);
        n.on_packet(105, true, t0);
        n.forget_before(103);
        assert_eq!(n.poll(t0 + MS(5)), vec![103, 104]);
        n.forget_before(106);
        assert_eq!(n.deadline(), None);
    }

    #[test]
    fn requests_stop_after_the_limit_and_late_or_reordered_packets_add_nothing() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.set_rtt(Duration::ZERO);
        n.on_packet(1, true, t0);
        n.on_packet(3, true, t0);
        n.on_packet(2, true, t0); // reordered: no longer missing
        n.on_packet(5, true, t0);
        let mut t = t0;
        let mut asked = 0;
        while let Some(due) = n.deadline() {
            t = t.max(due);
            asked += n.poll(t).len();
        }
        assert_eq!(asked, MAX_REQUESTS as usize, "only 4 was missing");
        assert_eq!(n.missing_since(4), Some(t0));
    }

    /// The queue holds exactly the packets still to be asked for, at their due time.
    fn assert_queue_matches(n: &NackRequester) {
        let expected: BTreeSet<(Instant, u64)> = n
            .missing
            .iter()
            .filter(|(_, m)| m.requests < MAX_REQUESTS)
            .map(|(seq, m)| (m.due, *seq))
            .collect();
        assert_eq!(n.queue, expected);
    }

    #[test]
    fn the_request_queue_follows_every_change_of_the_missing_set() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.set_rtt(MS(20));
        // A fixed pseudo-random walk: arrivals with gaps, reordering, jumps, forgetting, polls.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut now = t0;
        let mut seq = 1000u64;
        for _ in 0..20_000 {
            now += MS(next() % 4);
            match next() % 16 {
                0..=9 => {
                    seq += 1 + next() % 3;
                    n.on_packet(seq, next() % 4 == 0, now);
                }
                10 | 11 => n.on_packet(seq.saturating_sub(next() % 50), true, now),
                12 => {
                    if let Some(due) = n.deadline() {
                        n.poll(due.max(now));
                    }
                }
                13 => n.forget_before(seq.saturating_sub(next() % 100)),
                14 => n.ask_before(seq, next() % 20, now),
                _ => {
                    if next() % 64 == 0 {
                        seq += 900 + next() % 400;
                        n.on_packet(seq, true, now);
                    }
                }
            }
            assert_queue_matches(&n);
            let expected = n
                .missing
                .values()
                .filter(|m| m.requests < MAX_REQUESTS)
                .map(|m| m.due)
                .chain(n.tail_probe)
                .min();
            assert_eq!(n.deadline(), expected);
        }
        assert!(n.requested > 1000, "the walk asked for {}", n.requested);
    }

    #[test]
    fn the_missing_set_stays_bounded_and_an_outage_s_gap_is_not_asked_for() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.on_packet(0, true, t0);
        // Gaps that add up past the bound: the oldest are forgotten.
        n.on_packet(800, true, t0);
        n.on_packet(1600, true, t0);
        assert_eq!(n.missing.len(), MAX_MISSING);
        assert!(n.missing_since(1599).is_some());
        assert!(n.missing_since(500).is_none());
        // One gap past the bound on its own: nothing of it, nor of what was missing before, is asked for.
        n.on_packet(50_000, true, t0);
        assert!(n.missing.is_empty());
        assert_eq!(n.deadline(), None);
        assert!(n.poll(t0 + MS(10)).is_empty());
        // Loss after it is repaired as usual.
        n.on_packet(50_002, true, t0 + MS(20));
        assert_eq!(n.poll(t0 + MS(30)), vec![50_001u64 as u16]);
    }
}
