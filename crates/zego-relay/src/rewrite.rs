//! Per player and track: maps the publisher's RTP sequence numbers and timestamps onto one continuous outgoing
//! stream, so a player sees no jump when the publisher is replaced (or its SSRC changes) and starts at sequence
//! numbers of our choosing.

use std::time::Instant;

/// Which incoming stream a mapping belongs to: the publisher session and its SSRC.
pub(crate) type SourceId = (u64, u32);

#[derive(Debug)]
pub(crate) struct SeqTimeRewriter {
    clock_rate: u32,
    epoch: Option<Epoch>,
    last: Option<Written>,
}

/// The offsets in force since the current source's first forwarded packet.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    source: SourceId,
    first_in_seq: u64,
    seq_offset: i64,
    ts_offset: u32,
}

/// The newest packet written so far.
#[derive(Debug, Clone, Copy)]
struct Written {
    seq: u64,
    ts: u32,
    at: Instant,
}

/// Outgoing sequence numbers start low so the 16-bit counter does not roll over at once.
const MAX_INITIAL_SEQ: u64 = 0x3FFF;

impl SeqTimeRewriter {
    pub fn new(clock_rate: u32) -> Self {
        SeqTimeRewriter {
            clock_rate,
            epoch: None,
            last: None,
        }
    }

    /// Ends the current mapping: the next packet (of any source) continues right after the last one written, its
    /// timestamp advanced by the wall time in between, whatever the source skipped meanwhile.
    pub fn restart(&mut self) {
        self.epoch = None;
    }

    /// The outgoing (extended sequence number, RTP timestamp) for an incoming packet, or `None` when the packet
    /// precedes the point where forwarding from this source started (a late retransmission that the player never
    /// had a gap for).
    pub fn map(
        &mut self,
        source: SourceId,
        in_seq: u64,
        in_ts: u32,
        now: Instant,
    ) -> Option<(u64, u32)> {
        let epoch = match self.epoch {
            Some(epoch) if epoch.source == source => epoch,
            _ => self.start_epoch(source, in_seq, in_ts, now),
        };
        if in_seq < epoch.first_in_seq {
            return None;
        }
        let out_seq = u64::try_from(in_seq as i64 + epoch.seq_offset).ok()?;
        let out_ts = in_ts.wrapping_add(epoch.ts_offset);
        if self.last.is_none_or(|last| out_seq > last.seq) {
            self.last = Some(Written {
                seq: out_seq,
                ts: out_ts,
                at: now,
            });
        }
        Some((out_seq, out_ts))
    }

    fn start_epoch(&mut self, source: SourceId, in_seq: u64, in_ts: u32, now: Instant) -> Epoch {
        let (out_seq, out_ts) = match self.last {
            // Continue right after the last packet, with the timestamp advanced by the wall time in between.
            Some(last) => {
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as u64;
                (
                    last.seq + 1,
                    last.ts
                        .wrapping_add(ticks.clamp(1, u64::from(u32::MAX >> 1)) as u32),
                )
            }
            None => (
                rand::random::<u64>() % MAX_INITIAL_SEQ,
                rand::random::<u32>(),
            ),
        };
        let epoch = Epoch {
            source,
            first_in_seq: in_seq,
            seq_offset: out_seq as i64 - in_seq as i64,
            ts_offset: out_ts.wrapping_sub(in_ts),
        };
        self.epoch = Some(epoch);
        epoch
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::SeqTimeRewriter;

    #[test]
    fn one_source_keeps_gaps_and_order() {
        let now = Instant::now();
        let mut r = SeqTimeRewriter::new(90_000);
        let (s0, t0) = r.map((1, 10), 1000, 5000, now).unwrap();
        let (s2, t2) = r.map((1, 10), 1002, 8000, now).unwrap();
        // A retransmission filling the gap lands in it.
        let (s1, t1) = r.map((1, 10), 1001, 5000, now).unwrap();
        assert_eq!((s1, s2), (s0 + 1, s0 + 2));
        assert_eq!((t1, t2), (t0, t0.wrapping_add(3000)));
        // Older than the start of forwarding: the player never saw a gap there.
        assert_eq!(r.map((1, 10), 999, 4000, now), None);
    }

    #[test]
    fn a_restart_continues_after_the_last_packet_whatever_the_source_skipped() {
        let start = Instant::now();
        let mut r = SeqTimeRewriter::new(90_000);
        let (s0, t0) = r.map((1, 10), 500, 0, start).unwrap();
        r.restart();
        // 1.5 s of the source skipped, 40 ms of wall time later.
        let later = start + Duration::from_millis(40);
        let (s1, t1) = r.map((1, 10), 700, 135_000, later).unwrap();
        assert_eq!(s1, s0 + 1);
        assert_eq!(t1, t0.wrapping_add(3600));
        assert_eq!(
            r.map((1, 10), 701, 138_000, later),
            Some((s1 + 1, t1.wrapping_add(3000)))
        );
    }

    #[test]
    fn new_source_continues_the_stream() {
        let start = Instant::now();
        let mut r = SeqTimeRewriter::new(90_000);
        let (s0, t0) = r.map((1, 10), 40_000, 1_000_000, start).unwrap();
        let (s1, t1) = r.map((1, 10), 40_001, 1_003_000, start).unwrap();
        assert_eq!(s1, s0 + 1);

        let later = start + Duration::from_millis(100);
        let (s2, t2) = r.map((2, 77), 3, 42, later).unwrap();
        assert_eq!(s2, s1 + 1, "sequence continues without a gap");
        assert_eq!(
            t2,
            t1.wrapping_add(9000),
            "timestamp advances by the 100 ms in between"
        );
        let (s3, t3) = r.map((2, 77), 4, 3042, later).unwrap();
        assert_eq!((s3, t3), (s2 + 1, t2.wrapping_add(3000)));
        assert!(t0 != t2);
    }
}
