//! Which missing video packets to ask for again (RTCP NACK), and when, without I/O.
//!
//! A gap is asked for as soon as it is seen, then once per round trip while the frame buffer still wants the
//! packet: asking more often only buys duplicate retransmissions (a relay that sees too many stops answering),
//! asking less often leaves a lost NACK or retransmission unrepaired until the frame is given up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A gap is asked for this long after it is seen, so one burst of losses goes out in one NACK.
const FIRST_REQUEST_DELAY: Duration = Duration::from_millis(2);
/// Re-asking is never more frequent than this, however short the round trip.
const MIN_RETRY: Duration = Duration::from_millis(10);
/// Round trip assumed before one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// A packet is asked for at most this many times.
const MAX_REQUESTS: u32 = 15;
/// More missing packets than this is a broken stream, not loss to repair: the oldest are forgotten.
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
    highest: Option<u64>,
    rtt: Option<Duration>,
    /// Packets asked for, counting each request.
    pub requested: u64,
    /// Sequence numbers the stream advanced by since its first packet (+1): the packets the sender sent.
    pub expected: u64,
    /// Sequence numbers seen missing when a later one arrived, before any repair: the path's loss.
    pub gaps: u64,
}

impl NackRequester {
    /// The latest round-trip estimate to the relay; re-requests wait this long (plus a margin).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    /// A packet arrived: it is no longer missing, and any sequence numbers it skipped now are.
    pub fn on_packet(&mut self, seq: u64, now: Instant) {
        self.missing.remove(&seq);
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.expected = 1;
            }
            Some(highest) if seq > highest => {
                self.expected += seq - highest;
                self.gaps += seq - highest - 1;
                let from = (highest + 1).max(seq.saturating_sub(MAX_MISSING as u64));
                for lost in from..seq {
                    self.missing.insert(
                        lost,
                        Missing {
                            seen: now,
                            due: now + FIRST_REQUEST_DELAY,
                            requests: 0,
                        },
                    );
                }
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                }
                self.highest = Some(seq);
            }
            Some(_) => {}
        }
    }

    /// The frame buffer has no use for packets before `seq` any more (decoded, or given up).
    pub fn forget_before(&mut self, seq: u64) {
        self.missing = self.missing.split_off(&seq);
    }

    /// Since when `seq` has been known to be missing.
    pub fn missing_since(&self, seq: u64) -> Option<Instant> {
        self.missing.get(&seq).map(|m| m.seen)
    }

    /// When [`NackRequester::poll`] has something to send.
    pub fn deadline(&self) -> Option<Instant> {
        self.missing
            .values()
            .filter(|m| m.requests < MAX_REQUESTS)
            .map(|m| m.due)
            .min()
    }

    /// The sequence numbers to ask for now, in order.
    pub fn poll(&mut self, now: Instant) -> Vec<u16> {
        let retry = self.retry_interval();
        let mut out = Vec::new();
        for (seq, m) in self.missing.iter_mut() {
            if m.due <= now && m.requests < MAX_REQUESTS {
                m.requests += 1;
                m.due = now + retry;
                out.push(*seq as u16);
            }
        }
        self.requested += out.len() as u64;
        out
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
        n.on_packet(10, t0);
        n.on_packet(11, t0);
        assert_eq!(n.deadline(), None, "nothing missing");
        n.on_packet(14, t0);
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
        n.on_packet(12, t1 + MS(101));
        assert_eq!(n.poll(retry), vec![13]);
        assert_eq!(n.missing_since(13), Some(t0));
        assert_eq!(n.missing_since(12), None);
        assert_eq!(n.requested, 3);
        assert_eq!((n.expected, n.gaps), (5, 2));
    }

    #[test]
    fn forgotten_packets_are_not_asked_for() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.on_packet(100, t0);
        n.on_packet(105, t0);
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
        n.on_packet(1, t0);
        n.on_packet(3, t0);
        n.on_packet(2, t0); // reordered: no longer missing
        n.on_packet(5, t0);
        let mut t = t0;
        let mut asked = 0;
        while let Some(due) = n.deadline() {
            t = t.max(due);
            asked += n.poll(t).len();
        }
        assert_eq!(asked, MAX_REQUESTS as usize, "only 4 was missing");
        assert_eq!(n.missing_since(4), Some(t0));
    }

    #[test]
    fn a_huge_jump_keeps_the_missing_set_bounded() {
        let t0 = Instant::now();
        let mut n = NackRequester::default();
        n.on_packet(0, t0);
        n.on_packet(50_000, t0);
        assert_eq!(n.missing.len(), MAX_MISSING);
        assert!(n.missing_since(49_999).is_some());
        assert!(n.missing_since(1).is_none());
    }
}
