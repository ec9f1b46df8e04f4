//! The audio jitter buffer, without I/O: what to decode at each tick of the playout clock.
//!
//! Audio leaves the player on a steady clock, one frame (20 ms) per tick, whatever the network does; packets wait
//! here in sequence order for their tick. How long they wait is decided as for video frames ([`Playout`]): the
//! fastest transit of the last seconds plus a target that lets 95% of recent packets through on time. So on a
//! clean path the wait is the tick's phase and a millisecond or two; where losses are common and repaired by
//! retransmission, the repaired packets are among those 95% and the target grows to wait for them; a rare late
//! packet does not hold everyone back. At each tick:
//!
//! - the packet is here: decode it. If it is early (the target rose), conceal one frame instead so the buffer grows
//!   towards the target. If the buffer has held more than a frame beyond its target for a while, decode it and
//!   the next one and play the two as one frame (accelerate); far beyond, skip to what is due (flush).
//! - it is lost (a later one is here): rebuild it from the in-band FEC of the next packet when that one is here,
//!   else conceal it. Concealment happens at the lost packet's time, not when the gap is noticed, so a
//!   retransmission that arrives before then is played instead.
//! - nothing is here: the stream is late. Conceal a frame without moving on (expand), so the packet plays when it
//!   comes; the lost packets that later turn out to have been in that time are not concealed twice. After
//!   [`MAX_EXPAND`] frames of it the stream has stopped and so does the clock, until the next packet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::render::Playout;

/// RTP clock rate of Opus.
pub(crate) const CLOCK_RATE: u32 = 48_000;
/// Samples of a frame before the stream shows its own (20 ms).
const DEFAULT_FRAME_SAMPLES: u32 = 960;
/// Longest frame an Opus packet may carry (120 ms).
const MAX_FRAME_SAMPLES: u32 = 5_760;
/// Frames of concealment with nothing in the buffer after which the stream counts as stopped.
pub(crate) const MAX_EXPAND: u32 = 10;
/// Packets the buffer holds at most (10 s); beyond, the oldest go.
const MAX_PACKETS: usize = 500;
/// A sequence number this far from the newest is a new stream, not loss or reordering.
const RESTART_DISTANCE: u64 = 1_000;
/// Ticks over which every packet played must have been due a frame or more before its tick (a frame above the
/// target) before the buffer accelerates. Playing a frame earlier still plays each of them at or after its due
/// time, which already holds the path's jitter and [`SAFETY`]; so a buffer one frame deep (a clock that started
/// against a late packet, the tail of a stall) comes back to the target instead of keeping 20 ms in hand.
const ACCELERATE_TICKS: u32 = 10;
/// Behind the target by this much: skip the packets that are overdue.
const FLUSH_BEYOND: Duration = Duration::from_millis(200);
/// Ticks between two concealed frames that grow the buffer while packets are here.
const GROW_INTERVAL: u32 = 3;
/// Added to every packet's due time: a packet that arrives just when the target says it is due is still in time.
const SAFETY: Duration = Duration::from_millis(2);
/// Weight of each packet in the loss rate's moving average (about the last 5 s).
const LOSS_WEIGHT: f64 = 1.0 / 250.0;
/// Above this recent loss the buffer holds at least a frame, so a lost packet's successor is here at the lost
/// one's tick and its in-band FEC rebuilds it (one loss in the last 3-4 s is enough).
const FEC_FLOOR_LOSS: f64 = 0.002;
/// A clock this far behind (the thread was not scheduled) starts again from now instead of catching up.
const MAX_CLOCK_LAG: Duration = Duration::from_millis(100);

/// What to play at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing: the stream has not started, or it stopped.
    Idle,
    /// Decode this packet.
    Play(Bytes),
    /// The packet of this tick was lost; this is the next one: rebuild the lost one from its in-band FEC.
    Repair(Bytes),
    /// Conceal one frame (a lost packet, a late one, or a frame that grows the buffer).
    Conceal,
    /// Decode both packets and play them as one frame: the buffer is above its target.
    Accelerate(Bytes, Bytes),
}

/// What the buffer did, for the logs and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JitterStats {
    /// Packets played as they came.
    pub played: u64,
    /// Lost packets rebuilt from the next packet's FEC.
    pub repaired: u64,
    /// Lost packets concealed.
    pub concealed: u64,
    /// Frames concealed because nothing was here yet, or to grow the buffer.
    pub expanded: u64,
    /// Ticks that played two packets as one frame.
    pub accelerated: u64,
    /// Packets skipped because they were far overdue, and sequence numbers jumped over (more missing at once than
    /// a stopped stream is concealed for).
    pub flushed: u64,
    /// Packets that came after their tick had passed.
    pub late: u64,
    /// Packets that came again while the first copy still waited (a retransmission that crossed the original).
    pub duplicates: u64,
    /// New streams in the same track (sequence numbers far from the last): the buffer started over.
    pub restarts: u64,
    /// Time the played packets waited here, from arrival to their tick, summed (µs).
    pub waited_us: u64,
}

impl JitterStats {
    /// The mean time a played packet waited in the buffer: the delay the buffer adds.
    pub fn mean_wait(&self) -> Duration {
        Duration::from_micros(self.waited_us.checked_div(self.played).unwrap_or(0))
    }
}

struct Buffered {
    arrived: Instant,
    /// When the packet should play by the current target (never before it arrived).
    due: Instant,
    payload: Bytes,
}

/// The buffer: see the module documentation.
pub(crate) struct AudioJitterBuffer {
    packets: BTreeMap<u64, Buffered>,
    /// The newest extended sequence number.
    highest: Option<u64>,
    /// RTP timestamp of the newest packet, for the frame length.
    highest_ts: u32,
    /// The next packet to play; everything before it has had its tick.
    playhead: Option<u64>,
    /// The clock is running: the next tick, if so.
    next_tick: Option<Instant>,
    frame_samples: u32,
    /// Frames concealed while nothing was here and the playhead stood still.
    stalled: u32,
    /// Ticks since the buffer last grew while packets were here.
    since_grow: u32,
    /// The least lag (tick after due) over the ticks of the current accelerate window.
    lag_min: Option<Duration>,
    lag_ticks: u32,
    playout: Playout,
    /// How long the last packet played waited here.
    last_wait: Option<Duration>,
    /// Moving average of the share of packets that did not arrive (before retransmission).
    loss: f64,
    stats: JitterStats,
}

impl Default for AudioJitterBuffer {
    fn default() -> Self {
        AudioJitterBuffer {
            packets: BTreeMap::new(),
            highest: None,
            highest_ts: 0,
            playhead: None,
            next_tick: None,
            frame_samples: DEFAULT_FRAME_SAMPLES,
            stalled: 0,
            since_grow: GROW_INTERVAL,
            lag_min: None,
            lag_ticks: 0,
            playout: Playout::audio(CLOCK_RATE),
            last_wait: None,
            loss: 0.0,
            stats: JitterStats::default(),
        }
    }
}

impl AudioJitterBuffer {
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The target delay over the fastest recent packet.
    pub fn target(&self) -> Duration {
        self.playout.target()
    }

    /// Length of one frame (one tick).
    pub fn frame(&self) -> Duration {
        Duration::from_micros(u64::from(self.frame_samples) * 1_000_000 / u64::from(CLOCK_RATE))
    }

    /// How long the packet the last [`Decision::Play`] or [`Decision::Accelerate`] named waited here (the first
    /// of the two).
    pub fn last_wait(&self) -> Option<Duration> {
        self.last_wait
    }

    /// The next packet to play, as an extended sequence number (retransmissions before it are useless).
    pub fn playhead(&self) -> Option<u64> {
        self.playhead
    }

    /// How much audio is here ahead of the playhead (lost packets in between included), for the statistics.
    pub fn level(&self) -> Duration {
        match (self.playhead, self.highest) {
            (Some(head), Some(highest)) if highest >= head => {
                self.frame() * (highest - head + 1) as u32
            }
            _ => Duration::ZERO,
        }
    }

    /// When to call [`AudioJitterBuffer::pull`] next: the next tick, or when the first packet is due if the clock
    /// is not running; `None` with nothing to play.
    pub fn deadline(&self) -> Option<Instant> {
        self.next_tick
            .or_else(|| self.packets.first_key_value().map(|(_, p)| p.due))
    }

    /// A packet arrived at `now`; its extended sequence number, or `None` when it came too late or twice.
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: Bytes, now: Instant) -> Option<u64> {
        let mut ext = zego_rtp::seq::extend(self.highest, seq);
        if self
            .highest
            .is_some_and(|h| h.abs_diff(ext) > RESTART_DISTANCE)
        {
            tracing::debug!(seq, "audio stream restarted");
            self.restart();
            ext = zego_rtp::seq::extend(None, seq);
        }
        // Every packet, late ones included, tells the target what the path needs.
        let mut due = self.playout.schedule(timestamp, now);
        if self.loss > FEC_FLOOR_LOSS {
            due = due.max(now + self.frame());
        }
        let due = due + SAFETY;
        if self.playhead.is_some_and(|head| ext < head) {
            self.stats.late += 1;
            return None;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return None;
        }
        match self.highest {
            Some(highest) if ext <= highest => {}
            Some(highest) => {
                let keep = (1.0 - LOSS_WEIGHT).powi((ext - highest).min(1000) as i32);
                let lost = (ext - highest - 1) as f64 / (ext - highest) as f64;
                self.loss = self.loss * keep + (1.0 - keep) * lost;
                let samples = timestamp.wrapping_sub(self.highest_ts) / (ext - highest) as u32;
                if (1..=MAX_FRAME_SAMPLES).contains(&samples) {
                    self.frame_samples = samples;
                }
                self.highest = Some(ext);
                self.highest_ts = timestamp;
            }
            None => {
                self.highest = Some(ext);
                self.highest_ts = timestamp;
            }
        }
        self.packets.insert(
            ext,
            Buffered {
                arrived: now,
                due,
                payload,
            },
        );
        while self.packets.len() > MAX_PACKETS {
            self.packets.pop_first();
        }
        Some(ext)
    }

    /// The tick that was due ([`AudioJitterBuffer::deadline`]) at or before `now`: what to play for it.
    pub fn pull(&mut self, now: Instant) -> Decision {
        let tick = match self.next_tick {
            Some(tick) if now.saturating_duration_since(tick) <= MAX_CLOCK_LAG => tick,
            Some(_) => now,
            None => {
                let Some((&first, p)) = self.packets.first_key_value() else {
                    return Decision::Idle;
                };
                if p.due > now {
                    return Decision::Idle;
                }
                // The clock starts with the first packet: it is due now.
                self.playhead = Some(first);
                self.stalled = 0;
                self.lag_min = None;
                self.lag_ticks = 0;
                now
            }
        };
        let decision = self.decide(tick);
        self.next_tick = (decision != Decision::Idle).then(|| tick + self.frame());
        decision
    }

    fn decide(&mut self, tick: Instant) -> Decision {
        let Some(mut head) = self.playhead else {
            return Decision::Idle;
        };
        self.since_grow = self.since_grow.saturating_add(1);
        loop {
            if let Some(packet) = self.packets.get(&head) {
                if packet.due > tick + self.frame() / 2 && self.since_grow >= GROW_INTERVAL {
                    // Early: the target rose; one frame of concealment moves the playout back by a frame.
                    self.since_grow = 0;
                    self.stats.expanded += 1;
                    return Decision::Conceal;
                }
                let lag = tick.saturating_duration_since(packet.due);
                if lag > FLUSH_BEYOND && self.packets.contains_key(&(head + 1)) {
                    self.packets.remove(&head);
                    self.stats.flushed += 1;
                    head += 1;
                    self.playhead = Some(head);
                    continue;
                }
                return self.play(head, lag, tick);
            }
            let Some(&later) = self.packets.range(head + 1..).next().map(|(seq, _)| seq) else {
                // Nothing here: late, or the stream stopped.
                if self.stalled >= MAX_EXPAND {
                    self.stop();
                    return Decision::Idle;
                }
                self.stalled += 1;
                self.stats.expanded += 1;
                return Decision::Conceal;
            };
            if later - head > u64::from(MAX_EXPAND) {
                // More missing than a stopped stream would be concealed for: a jump, not loss.
                self.stats.flushed += later - head;
                head = later;
                self.playhead = Some(head);
                self.stalled = 0;
                continue;
            }
            head += 1;
            self.playhead = Some(head);
            if self.stalled > 0 {
                // This lost packet's time was already filled while waiting.
                self.stalled -= 1;
                continue;
            }
            return if later == head {
                self.stats.repaired += 1;
                Decision::Repair(self.packets[&later].payload.clone())
            } else {
                self.stats.concealed += 1;
                Decision::Conceal
            };
        }
    }

    /// Plays the packet at `head`, which is here, `lag` after it was due; with the next one when the buffer has
    /// stayed above its target.
    fn play(&mut self, head: u64, lag: Duration, tick: Instant) -> Decision {
        self.stalled = 0;
        self.lag_min = Some(self.lag_min.map_or(lag, |m| m.min(lag)));
        self.lag_ticks += 1;
        let mut accelerate = false;
        if self.lag_ticks >= ACCELERATE_TICKS {
            accelerate = self.lag_min.is_some_and(|m| m >= self.frame());
            self.lag_min = None;
            self.lag_ticks = 0;
        }
        let Some(packet) = self.packets.remove(&head) else {
            return Decision::Idle;
        };
        self.count_played(&packet, tick);
        if accelerate {
            if let Some(next) = self.packets.remove(&(head + 1)) {
                let first_wait = self.last_wait;
                self.count_played(&next, tick);
                self.last_wait = first_wait;
                self.stats.accelerated += 1;
                self.playhead = Some(head + 2);
                return Decision::Accelerate(packet.payload, next.payload);
            }
        }
        self.playhead = Some(head + 1);
        Decision::Play(packet.payload)
    }

    fn count_played(&mut self, packet: &Buffered, tick: Instant) {
        let waited = tick.saturating_duration_since(packet.arrived);
        self.stats.played += 1;
        self.stats.waited_us += waited.as_micros() as u64;
        self.last_wait = Some(waited);
    }

    /// The stream stopped: the clock stops until the next packet is due.
    fn stop(&mut self) {
        tracing::debug!(highest = ?self.highest, "audio playout stopped: nothing to play for {MAX_EXPAND} frames");
        self.next_tick = None;
        self.stalled = 0;
        self.playhead = None;
        if let Some(highest) = self.highest {
            // Whatever comes now starts the clock again; older packets are late.
            self.playhead = Some(highest + 1);
        }
    }

    /// A new stream in the same track: start over, keeping the counts.
    fn restart(&mut self) {
        let stats = self.stats;
        *self = AudioJitterBuffer::default();
        self.stats = stats;
        self.stats.restarts += 1;
    }
}

/// Plays `second` after `first` in the time of one: `first` fades into `second` across the frame, so the output
/// starts where `first` starts and ends where `second` ends. Interleaved PCM of `channels` channels.
pub(crate) fn merge(first: &mut [i16], second: &[i16], channels: u16) {
    let channels = usize::from(channels.max(1));
    let frames = first.len().min(second.len()) / channels;
    if frames == 0 {
        return;
    }
    let n = frames as i64;
    for i in 0..frames {
        let w = i as i64;
        for c in 0..channels {
            let k = i * channels + c;
            first[k] = ((i64::from(first[k]) * (n - w) + i64::from(second[k]) * w) / n) as i16;
        }
    }
    // Whatever of `first` lies past the shorter of the two stays as decoded.
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Packet `i` of a 20 ms stream (its payload is its index), arriving `extra` after its send time.
    struct Arrival {
        index: u32,
        at: Instant,
    }

    /// Drives a buffer as the audio thread does: packets at their arrival, pulls at each deadline, until `end`.
    /// Returns each tick's time and decision (Idle ones left out).
    fn drive(
        buffer: &mut AudioJitterBuffer,
        mut arrivals: Vec<Arrival>,
        end: Instant,
    ) -> Vec<(Instant, Decision)> {
        arrivals.sort_by_key(|a| a.at);
        let mut out = Vec::new();
        let mut next = 0;
        loop {
            let deadline = buffer.deadline();
            let arrival = arrivals.get(next).map(|a| a.at);
            let now = match (deadline, arrival) {
                (Some(d), Some(a)) if a <= d => a,
                (Some(d), _) => d,
                (None, Some(a)) => a,
                (None, None) => break,
            };
            if now > end {
                break;
            }
            if arrival == Some(now) && deadline.is_none_or(|d| now < d) {
                let a = &arrivals[next];
                let seq = (a.index as u16).wrapping_add(65_000);
                let payload = Bytes::from(a.index.to_be_bytes().to_vec());
                buffer.push(seq, a.index.wrapping_mul(960).wrapping_add(7), payload, now);
                next += 1;
                continue;
            }
            let decision = buffer.pull(now);
            if decision != Decision::Idle {
                out.push((now, decision));
            }
        }
        out
    }

    fn index(payload: &Bytes) -> u32 {
        u32::from_be_bytes(payload[..4].try_into().unwrap())
    }

    fn stream(t0: Instant, count: u32, delay: impl Fn(u32) -> Option<Duration>) -> Vec<Arrival> {
        (0..count)
            .filter_map(|i| {
                delay(i).map(|d| Arrival {
                    index: i,
                    at: t0 + FRAME * i + d,
                })
            })
            .collect()
    }

    #[test]
    fn a_steady_stream_plays_every_packet_on_a_steady_clock_with_little_delay() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        // A little jitter, under 2 ms, as on a clean path.
        let arrivals = stream(t0, 500, |i| {
            Some(Duration::from_micros(u64::from(i * 7919 % 2000)))
        });
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 500);
        let played: Vec<u32> = ticks
            .iter()
            .filter_map(|(_, d)| match d {
                Decision::Play(p) => Some(index(p)),
                _ => None,
            })
            .collect();
        assert!(played.len() >= 495, "{:?}", b.stats());
        assert!(
            played.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, none skipped"
        );
        for w in ticks.windows(2) {
            assert_eq!(w[1].0 - w[0].0, FRAME, "one tick per frame");
        }
        // Each packet waits at most a frame and the jitter.
        for (at, d) in &ticks {
            if let Decision::Play(p) = d {
                let arrived = t0 + FRAME * index(p);
                assert!(
                    *at - arrived <= FRAME + ms(4),
                    "packet {} waited {:?}",
                    index(p),
                    *at - arrived
                );
            }
        }
        let s = b.stats();
        assert_eq!(s.concealed + s.repaired, 0, "{s:?}");
        assert!(s.expanded <= 1, "{s:?}");
    }

    #[test]
    fn after_a_loss_the_buffer_holds_a_frame_so_the_next_loss_is_rebuilt_at_its_own_tick() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        let lost = [50, 100, 150, 151, 152];
        let arrivals = stream(t0, 200, |i| (!lost.contains(&i)).then_some(Duration::ZERO));
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 202);
        let at = |i: u32| {
            ticks
                .iter()
                .position(|(_, d)| matches!(d, Decision::Play(p) if index(p) == i))
                .unwrap()
        };
        let payload = |i: u32| Bytes::from(i.to_be_bytes().to_vec());
        // The first loss comes with nothing buffered: its time is concealed while waiting, then the next plays.
        assert_eq!(ticks[at(51) - 1].1, Decision::Conceal);
        // From then on the buffer holds a frame: a lost packet is rebuilt from the next one at its own tick.
        assert_eq!(ticks[at(101) - 1].1, Decision::Repair(payload(101)));
        assert_eq!(ticks[at(101) - 1].0 + FRAME, ticks[at(101)].0);
        let run: Vec<_> = ticks[at(149) + 1..at(153)]
            .iter()
            .map(|(_, d)| d.clone())
            .collect();
        assert_eq!(
            run,
            vec![
                Decision::Conceal,
                Decision::Conceal,
                Decision::Repair(payload(153))
            ]
        );
        let (when, _) = ticks[at(199)];
        assert!(
            when - (t0 + FRAME * 199) <= FRAME * 2,
            "a frame more than on a clean path"
        );
        let s = b.stats();
        // The run's first two were concealed while waiting (expanded), not as known losses.
        assert_eq!((s.repaired, s.concealed, s.late), (2, 0, 0), "{s:?}");
    }

    #[test]
    fn with_common_retransmissions_the_buffer_waits_for_them_instead_of_concealing() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        // Every tenth and eleventh packet are lost together and come back a round trip (60 ms) later: the first of
        // the two cannot be rebuilt from the second's FEC.
        let arrivals = stream(t0, 600, |i| {
            Some(if i % 10 == 3 || i % 10 == 4 {
                ms(60)
            } else {
                Duration::ZERO
            })
        });
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 600);
        let settled: Vec<_> = ticks.iter().filter(|(at, _)| *at > t0 + ms(4000)).collect();
        let concealed = settled
            .iter()
            .filter(|(_, d)| !matches!(d, Decision::Play(_) | Decision::Accelerate(..)))
            .count();
        assert_eq!(
            concealed,
            0,
            "after the first seconds every packet plays: {:?}",
            b.stats()
        );
        // And the wait is about the round trip, not more.
        let (at, d) = settled
            .iter()
            .rev()
            .find(|(_, d)| matches!(d, Decision::Play(_)))
            .unwrap();
        let Decision::Play(p) = d else { unreachable!() };
        let waited = at.saturating_duration_since(t0 + FRAME * index(p));
        assert!(waited >= ms(60) && waited <= ms(100), "{waited:?}");
    }

    #[test]
    fn a_rare_late_packet_is_not_waited_for_and_does_not_hold_the_others_for_long() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        let arrivals = stream(t0, 500, |i| {
            Some(if i == 200 { ms(80) } else { Duration::ZERO })
        });
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 502);
        let s = b.stats();
        assert_eq!((s.late, s.played), (1, 499), "{s:?}");
        let (at, d) = ticks
            .iter()
            .rev()
            .find(|(_, d)| matches!(d, Decision::Play(_)))
            .unwrap();
        let Decision::Play(p) = d else { unreachable!() };
        assert!(
            *at - (t0 + FRAME * index(p)) <= FRAME * 2,
            "no lasting delay"
        );
    }

    #[test]
    fn a_stall_expands_then_the_burst_plays_in_order_and_the_delay_drains_back() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        // From packet 100 to 107 the path stalls: they arrive together with 108, 160 ms late, then it is clean.
        let arrivals = stream(t0, 1000, |i| {
            Some(match i {
                100..=107 => FRAME * (108 - i),
                _ => Duration::ZERO,
            })
        });
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 1000 + ms(500));
        let played: Vec<u32> = ticks
            .iter()
            .flat_map(|(_, d)| match d {
                Decision::Play(p) => vec![index(p)],
                Decision::Accelerate(a, c) => vec![index(a), index(c)],
                _ => vec![],
            })
            .collect();
        assert_eq!(
            played,
            (0..1000).collect::<Vec<_>>(),
            "every packet, in order"
        );
        let s = b.stats();
        assert_eq!(s.concealed + s.repaired + s.late + s.flushed, 0, "{s:?}");
        assert!(s.expanded >= 8 && s.accelerated >= 5, "{s:?}");
        let (at, _) = ticks
            .iter()
            .rev()
            .find(|(_, d)| *d == Decision::Play(Bytes::from(990u32.to_be_bytes().to_vec())))
            .unwrap();
        let delay = *at - (t0 + FRAME * 990);
        assert!(delay <= ms(6), "back to the clean path's delay: {delay:?}");
    }

    #[test]
    fn a_clock_started_against_a_late_first_packet_comes_back_to_the_target() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        // The first packets waited in a queue at the start (the first 23 ms, the second 3 ms, arriving 20 ms
        // apart as usual); every later one comes on time.
        let arrivals = stream(t0, 500, |i| {
            Some(match i {
                0 => ms(23),
                1 => ms(3),
                _ => Duration::ZERO,
            })
        });
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 500);
        let waits: Vec<Duration> = ticks
            .iter()
            .filter_map(|(at, d)| match d {
                Decision::Play(p) => Some(*at - (t0 + FRAME * index(p))),
                _ => None,
            })
            .collect();
        assert!(waits[1] >= ms(20), "a frame deep at first: {:?}", waits[1]);
        let last = &waits[waits.len() - 100..];
        assert!(
            last.iter().all(|w| *w <= ms(6)),
            "still deep: {:?}",
            last.iter().max()
        );
        let s = b.stats();
        assert_eq!((s.accelerated, s.concealed, s.late), (1, 0, 0), "{s:?}");
    }

    #[test]
    fn a_stopped_stream_stops_the_clock_and_a_new_talk_spurt_starts_it_again() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        let arrivals = stream(t0, 300, |i| {
            (!(100..200).contains(&i)).then_some(Duration::ZERO)
        });
        let ticks = drive(&mut b, arrivals, t0 + FRAME * 300);
        let quiet: Vec<_> = ticks
            .iter()
            .filter(|(at, _)| *at > t0 + FRAME * 100 && *at < t0 + FRAME * 200)
            .collect();
        assert!(quiet.len() as u32 <= MAX_EXPAND + 1, "{}", quiet.len());
        assert!(quiet.iter().all(|(_, d)| *d == Decision::Conceal));
        let first_after = ticks
            .iter()
            .find(|(at, _)| *at >= t0 + FRAME * 200)
            .unwrap();
        assert_eq!(
            first_after.1,
            Decision::Play(Bytes::from(200u32.to_be_bytes().to_vec()))
        );
        assert_eq!(
            first_after.0,
            t0 + FRAME * 200 + SAFETY,
            "starts on arrival"
        );
    }

    #[test]
    fn a_new_stream_starts_over_and_old_packets_are_late() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::default();
        let payload = || Bytes::from_static(&[1, 2, 3, 4]);
        assert!(b.push(100, 0, payload(), t0).is_some());
        assert_eq!(b.pull(t0), Decision::Idle, "not due yet");
        assert_eq!(b.pull(t0 + SAFETY), Decision::Play(payload()));
        assert!(
            b.push(100, 0, payload(), t0 + ms(5)).is_none(),
            "played already"
        );
        assert_eq!(b.stats().late, 1);
        // A copy of a packet that is still waiting is a duplicate, not late.
        assert!(b.push(101, 960, payload(), t0 + ms(6)).is_some());
        assert!(b.push(101, 960, payload(), t0 + ms(7)).is_none());
        assert_eq!((b.stats().late, b.stats().duplicates), (1, 1));
        // Another publisher: far away numbers.
        let ext = b.push(40_000, 123_456, payload(), t0 + ms(20)).unwrap();
        assert_eq!(b.pull(t0 + ms(20) + SAFETY), Decision::Play(payload()));
        assert_eq!(b.playhead(), Some(ext + 1));
    }

    #[test]
    fn merging_two_frames_starts_as_the_first_and_ends_as_the_second() {
        let mut first = vec![1000i16; 960 * 2];
        let second = vec![-1000i16; 960 * 2];
        merge(&mut first, &second, 2);
        assert_eq!(&first[..2], &[1000, 1000]);
        assert!(first[first.len() - 2..].iter().all(|&s| s <= -990));
        assert!(
            first
                .windows(2)
                .all(|w| (i32::from(w[0]) - i32::from(w[1])).abs() <= 3),
            "no step"
        );
    }
}
