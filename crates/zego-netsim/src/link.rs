//! The sans-IO core of one direction: decides, for each packet, whether it is lost and when it is released.
//!
//! No sockets or clocks here: the caller passes `now` into [`Link::push`] and [`Link::poll_release`] and
//! sleeps until [`Link::next_release`]. That keeps every impairment testable on a fake clock.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::impairment::Impairment;
use crate::stats::DirectionStats;

/// Longest time a packet picked for reordering waits for a later packet to overtake it. Past this it is
/// delivered anyway, so a client that stops sending never has a packet stuck in the relay.
pub const REORDER_MAX_HOLD: Duration = Duration::from_millis(100);

/// Default bound on the memory all packets waiting in one [`Link`] may take.
pub const DEFAULT_MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// Bookkeeping cost charged per waiting packet on top of its payload, so a flood of tiny datagrams is
/// bounded too.
const PACKET_OVERHEAD: usize = 128;

/// What [`Link::push`] decided for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The packet will be released at or after this instant.
    Scheduled(Instant),
    /// The loss model dropped the packet.
    DroppedLoss,
    /// The bottleneck queue or the memory bound was full.
    DroppedQueue,
}

/// One direction of the simulated path, shared by all flows (clients) travelling that way.
///
/// `K` names a flow; ordering, loss state and the bottleneck are tracked per flow. `T` is the packet
/// carried through untouched.
pub struct Link<K, T> {
    impairment: Impairment,
    rng: StdRng,
    flows: HashMap<K, Flow<T>>,
    timers: BinaryHeap<Timer<K, T>>,
    ready: VecDeque<(K, T)>,
    /// Sequence numbers are unique across flows, so a stale timer never matches a packet of a re-created flow.
    next_seq: u64,
    next_tie: u64,
    held_bytes: usize,
    max_held_bytes: usize,
    stats: DirectionStats,
}

struct Flow<T> {
    /// Release time of the last in-order packet: jitter may not schedule a later packet before it.
    last_release: Option<Instant>,
    /// When the bottleneck finishes sending what is already queued.
    link_free_at: Option<Instant>,
    in_bad_state: bool,
    /// Packets picked for reordering, waiting to be overtaken; in sequence order.
    held: VecDeque<Held<T>>,
    highest_released: Option<u64>,
}

impl<T> Default for Flow<T> {
    fn default() -> Self {
        Self {
            last_release: None,
            link_free_at: None,
            in_bad_state: false,
            held: VecDeque::new(),
            highest_released: None,
        }
    }
}

struct Held<T> {
    seq: u64,
    due: Instant,
    len: usize,
    packet: T,
}

enum Job<T> {
    Release {
        seq: u64,
        len: usize,
        packet: T,
    },
    /// Deliver held packet `seq` if nothing overtook it in time.
    HoldExpired {
        seq: u64,
    },
}

struct Timer<K, T> {
    at: Instant,
    /// Insertion order, so packets due at the same instant leave in the order they were scheduled.
    tie: u64,
    flow: K,
    job: Job<T>,
}

impl<K, T> PartialEq for Timer<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.tie == other.tie
    }
}

impl<K, T> Eq for Timer<K, T> {}

impl<K, T> PartialOrd for Timer<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K, T> Ord for Timer<K, T> {
    // Reversed: BinaryHeap is a max-heap and the earliest timer must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.tie).cmp(&(self.at, self.tie))
    }
}

impl<K: Eq + Hash + Clone, T: Clone> Link<K, T> {
    /// A link applying `impairment`, drawing randomness from `seed` (or from the OS when `None`).
    pub fn new(impairment: Impairment, seed: Option<u64>) -> Self {
        Self {
            impairment,
            rng: match seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_entropy(),
            },
            flows: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            next_seq: 0,
            next_tie: 0,
            held_bytes: 0,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            stats: DirectionStats::default(),
        }
    }

    /// Bounds the memory waiting packets may take (payload plus a small per-packet cost); packets past it are
    /// dropped and counted in `dropped_queue`.
    pub fn with_max_held_bytes(mut self, max_held_bytes: usize) -> Self {
        self.max_held_bytes = max_held_bytes;
        self
    }

    /// The impairment applied to packets pushed from now on.
    pub fn impairment(&self) -> &Impairment {
        &self.impairment
    }

    /// Replaces the impairment. Packets already scheduled keep their release times.
    pub fn set_impairment(&mut self, impairment: Impairment) {
        self.impairment = impairment;
    }

    /// Counters so far.
    pub fn stats(&self) -> DirectionStats {
        self.stats
    }

    /// Adds failed sends reported by the I/O layer to the counters.
    pub fn count_send_errors(&mut self, errors: u64) {
        self.stats.send_errors += errors;
    }

    /// Forgets a flow's state and discards its held-back packets; packets already scheduled are still released.
    pub fn remove_flow(&mut self, flow: &K) {
        if let Some(state) = self.flows.remove(flow) {
            for held in state.held {
                self.held_bytes -= held.len + PACKET_OVERHEAD;
            }
        }
    }

    /// Feeds a packet of `len` bytes that arrived at `now` into the link.
    pub fn push(&mut self, now: Instant, flow: K, packet: T, len: usize) -> Admission {
        self.stats.received_packets += 1;
        self.stats.received_bytes += len as u64;
        let imp = &self.impairment;
        let rng = &mut self.rng;
        let state = self.flows.entry(flow.clone()).or_default();

        let mut lost = false;
        if let Some(burst) = imp.burst {
            // Judge the packet in the current state, then step the chain.
            lost = state.in_bad_state && chance(rng, burst.loss_in_bad);
            state.in_bad_state = if state.in_bad_state {
                !chance(rng, burst.p_bad_to_good)
            } else {
                chance(rng, burst.p_good_to_bad)
            };
        }
        if chance(rng, imp.loss) {
            lost = true;
        }
        if lost {
            self.stats.dropped_loss += 1;
            return Admission::DroppedLoss;
        }

        if self.held_bytes + len + PACKET_OVERHEAD > self.max_held_bytes {
            self.stats.dropped_queue += 1;
            return Admission::DroppedQueue;
        }

        let departure = match imp.rate_bps {
            Some(rate) if rate > 0 => {
                let start = state.link_free_at.filter(|free| *free > now).unwrap_or(now);
                let backlog = start - now;
                let backlog_bytes = backlog.as_nanos() * u128::from(rate) / 8 / 1_000_000_000;
                let limit = u128::from(imp.queue.bytes_at(rate));
                // An idle bottleneck always takes the packet, however small the queue.
                if !backlog.is_zero() && backlog_bytes + len as u128 > limit {
                    self.stats.dropped_queue += 1;
                    return Admission::DroppedQueue;
                }
                let done = start + serialization_time(len, rate);
                state.link_free_at = Some(done);
                done
            }
            Some(_) => {
                self.stats.dropped_queue += 1;
                return Admission::DroppedQueue;
            }
            None => now,
        };

        let sampled = departure + sample_delay(rng, imp.delay, imp.jitter);
        let at = match state.last_release {
            Some(previous) if previous > sampled => previous,
            _ => sampled,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let reorder = chance(rng, imp.reorder);
        let duplicate = chance(rng, imp.duplicate);

        if reorder {
            // Held aside, not in the timers: the next released packet of this flow overtakes it. It does not
            // move `last_release`, so later packets are not delayed behind it.
            state.held.push_back(Held {
                seq,
                due: at,
                len,
                packet: packet.clone(),
            });
            self.held_bytes += len + PACKET_OVERHEAD;
            self.schedule(
                at + REORDER_MAX_HOLD,
                flow.clone(),
                Job::HoldExpired { seq },
            );
        } else {
            state.last_release = Some(at);
            self.held_bytes += len + PACKET_OVERHEAD;
            self.schedule(
                at,
                flow.clone(),
                Job::Release {
                    seq,
                    len,
                    packet: packet.clone(),
                },
            );
        }
        if duplicate && self.held_bytes + len + PACKET_OVERHEAD <= self.max_held_bytes {
            self.held_bytes += len + PACKET_OVERHEAD;
            self.stats.duplicated += 1;
            self.schedule(at, flow, Job::Release { seq, len, packet });
        }
        Admission::Scheduled(at)
    }

    /// Next packet due at `now`, if any. Call until it returns `None`, then wait for [`Link::next_release`].
    pub fn poll_release(&mut self, now: Instant) -> Option<(K, T)> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
            }
            if self.timers.peek()?.at > now {
                return None;
            }
            let timer = self.timers.pop()?;
            match timer.job {
                Job::Release { seq, len, packet } => {
                    self.release(&timer.flow, seq, len, packet);
                    // Held packets this one has just overtaken go right behind it, once their own delay is up.
                    if let Some(state) = self.flows.get_mut(&timer.flow) {
                        let mut overtaken = Vec::new();
                        while let Some(front) = state.held.front() {
                            if front.seq >= seq || front.due > now {
                                break;
                            }
                            overtaken.extend(state.held.pop_front());
                        }
                        for held in overtaken {
                            self.release(&timer.flow, held.seq, held.len, held.packet);
                        }
                    }
                }
                Job::HoldExpired { seq } => {
                    let Some(state) = self.flows.get_mut(&timer.flow) else {
                        continue;
                    };
                    if let Some(index) = state.held.iter().position(|held| held.seq == seq) {
                        if let Some(held) = state.held.remove(index) {
                            self.release(&timer.flow, held.seq, held.len, held.packet);
                        }
                    }
                }
            }
        }
    }

    /// When the next packet (or held-packet deadline) is due; `None` when nothing is waiting.
    pub fn next_release(&self) -> Option<Instant> {
        self.timers.peek().map(|timer| timer.at)
    }

    /// Packets currently waiting (scheduled or held back).
    pub fn waiting(&self) -> usize {
        self.timers
            .iter()
            .filter(|timer| matches!(timer.job, Job::Release { .. }))
            .count()
            + self
                .flows
                .values()
                .map(|flow| flow.held.len())
                .sum::<usize>()
    }

    fn schedule(&mut self, at: Instant, flow: K, job: Job<T>) {
        let tie = self.next_tie;
        self.next_tie += 1;
        self.timers.push(Timer { at, tie, flow, job });
    }

    fn release(&mut self, flow: &K, seq: u64, len: usize, packet: T) {
        self.held_bytes -= len + PACKET_OVERHEAD;
        self.stats.forwarded_packets += 1;
        self.stats.forwarded_bytes += len as u64;
        if let Some(state) = self.flows.get_mut(flow) {
            match state.highest_released {
                Some(highest) if seq < highest => self.stats.reordered += 1,
                _ => state.highest_released = Some(seq),
            }
        }
        self.ready.push_back((flow.clone(), packet));
    }
}

/// True with probability `p`; never draws for 0, so a clean link consumes no randomness. Out-of-range or
/// NaN probabilities behave as 0 or 1 instead of panicking.
fn chance(rng: &mut StdRng, p: f64) -> bool {
    p > 0.0 && rng.gen::<f64>() < p
}

/// `delay` plus a uniform sample in `[-jitter, +jitter]`, never below zero.
fn sample_delay(rng: &mut StdRng, delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let offset = (rng.gen::<f64>() * 2.0 - 1.0) * jitter.as_secs_f64();
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

fn serialization_time(len: usize, rate_bps: u64) -> Duration {
    let nanos = len as u128 * 8 * 1_000_000_000 / u128::from(rate_bps);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impairment::{GilbertElliott, QueueLimit};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Pushes `count` packets of flow 0, `gap` apart on a fake clock, returning (release time since the first
    /// push, sequence) pairs in delivery order.
    fn run(
        link: &mut Link<u8, u32>,
        count: u32,
        gap: Duration,
        len: usize,
    ) -> Vec<(Duration, u32)> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut now = start;
        for seq in 0..count {
            now = start + gap * seq;
            drain(link, start, now, &mut out);
            link.push(now, 0, seq, len);
        }
        // Step the fake clock through every remaining deadline.
        while let Some(next) = link.next_release() {
            now = now.max(next);
            drain(link, start, now, &mut out);
        }
        out
    }

    fn drain(
        link: &mut Link<u8, u32>,
        start: Instant,
        now: Instant,
        out: &mut Vec<(Duration, u32)>,
    ) {
        while let Some(next) = link.next_release() {
            if next > now {
                break;
            }
            while let Some((_, seq)) = link.poll_release(next) {
                out.push((next - start, seq));
            }
        }
    }

    fn in_order(out: &[(Duration, u32)]) -> bool {
        out.windows(2).all(|pair| pair[0].1 < pair[1].1)
    }

    #[test]
    fn clean_link_releases_at_once_and_in_order() {
        let mut link = Link::new(Impairment::default(), Some(1));
        let now = Instant::now();
        for seq in 0..10 {
            assert_eq!(link.push(now, 0u8, seq, 100), Admission::Scheduled(now));
        }
        let out: Vec<u32> = std::iter::from_fn(|| link.poll_release(now))
            .map(|(_, seq)| seq)
            .collect();
        assert_eq!(out, (0..10).collect::<Vec<_>>());
        assert_eq!(link.next_release(), None);
        assert_eq!(link.stats().forwarded_packets, 10);
    }

    #[test]
    fn delay_holds_each_packet_for_the_delay() {
        let imp = Impairment {
            delay: ms(40),
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(1));
        let now = Instant::now();
        assert_eq!(
            link.push(now, 0u8, 7u32, 10),
            Admission::Scheduled(now + ms(40))
        );
        assert_eq!(link.poll_release(now + ms(39)), None);
        assert_eq!(link.poll_release(now + ms(40)), Some((0, 7)));
    }

    #[test]
    fn jitter_alone_never_reorders_but_spreads_delay() {
        let imp = Impairment {
            delay: ms(30),
            jitter: ms(20),
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(7));
        let out = run(&mut link, 2000, ms(1), 100);
        assert_eq!(out.len(), 2000);
        assert!(in_order(&out));
        assert_eq!(link.stats().reordered, 0);
        // Packet n arrived at n ms, so its delay is its release time minus n ms.
        let delays: Vec<Duration> = out
            .iter()
            .map(|(at, seq)| *at - ms(u64::from(*seq)))
            .collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(
            *min >= ms(10) && *max <= ms(50),
            "delays within delay ± jitter, got {min:?}..{max:?}"
        );
        assert!(
            *max - *min >= ms(5),
            "jitter varies the delay, spread {:?}",
            *max - *min
        );
    }

    #[test]
    fn reorder_swaps_the_asked_share_of_packets() {
        let imp = Impairment {
            delay: ms(10),
            jitter: ms(5),
            reorder: 0.1,
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(3));
        let out = run(&mut link, 5000, ms(2), 100);
        assert_eq!(out.len(), 5000, "reordering never loses packets");
        let stats = link.stats();
        let share = stats.reordered as f64 / 5000.0;
        assert!((0.08..0.12).contains(&share), "reordered share {share}");
        let mut highest = 0;
        let mut late = 0;
        for (_, seq) in &out {
            if *seq < highest {
                late += 1;
            }
            highest = highest.max(*seq);
        }
        assert_eq!(late, stats.reordered);
    }

    #[test]
    fn held_packet_is_released_after_the_hold_limit_when_nothing_follows() {
        let imp = Impairment {
            delay: ms(10),
            reorder: 1.0,
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(3));
        let now = Instant::now();
        link.push(now, 0u8, 1u32, 10);
        assert_eq!(link.poll_release(now + ms(10)), None);
        assert_eq!(link.next_release(), Some(now + ms(10) + REORDER_MAX_HOLD));
        assert_eq!(
            link.poll_release(now + ms(10) + REORDER_MAX_HOLD),
            Some((0, 1))
        );
        assert_eq!(link.stats().reordered, 0, "nothing overtook it");
    }

    #[test]
    fn random_loss_drops_close_to_the_asked_share() {
        for loss in [0.1, 0.3] {
            let imp = Impairment {
                loss,
                ..Default::default()
            };
            let mut link = Link::new(imp, Some(42));
            let now = Instant::now();
            for seq in 0..10_000 {
                link.push(now, 0u8, seq, 10);
            }
            let share = link.stats().loss_ratio();
            assert!((share - loss).abs() < 0.015, "loss {loss}: dropped {share}");
            assert_eq!(link.stats().dropped_loss + link.waiting() as u64, 10_000);
        }
    }

    #[test]
    fn burst_loss_comes_in_runs() {
        let imp = Impairment {
            burst: Some(GilbertElliott {
                p_good_to_bad: 0.02,
                p_bad_to_good: 0.25,
                loss_in_bad: 1.0,
            }),
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(9));
        let now = Instant::now();
        let lost: Vec<bool> = (0..20_000)
            .map(|seq| link.push(now, 0u8, seq, 10) == Admission::DroppedLoss)
            .collect();
        // Stationary share in the bad state: p_gb / (p_gb + p_bg) = 0.02 / 0.27.
        let share = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((share - 0.074).abs() < 0.02, "burst loss share {share}");
        let runs = lost.windows(2).filter(|pair| !pair[0] && pair[1]).count();
        let mean_run = lost.iter().filter(|l| **l).count() as f64 / runs as f64;
        assert!(
            (3.0..5.0).contains(&mean_run),
            "mean burst {mean_run}, expected about 4"
        );
    }

    #[test]
    fn rate_cap_spaces_packets_by_serialization_time_and_tail_drops() {
        let imp = Impairment {
            rate_bps: Some(1_000_000),
            queue: QueueLimit::Time(ms(50)),
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(1));
        // 1000-byte packets every 4 ms offer 2 mbit/s to a 1 mbit/s bottleneck for 2 s.
        let out = run(&mut link, 500, ms(4), 1000);
        let stats = link.stats();
        assert!(in_order(&out));
        let spacing = out
            .windows(2)
            .map(|pair| pair[1].0 - pair[0].0)
            .min()
            .unwrap();
        assert!(
            spacing >= ms(8),
            "1000 B at 1 mbit/s take 8 ms, got {spacing:?}"
        );
        let span = (out.last().unwrap().0 - out.first().unwrap().0).as_secs_f64();
        let rate = (stats.forwarded_bytes - 1000) as f64 * 8.0 / span;
        assert!(
            (950_000.0..1_050_000.0).contains(&rate),
            "throughput {rate}"
        );
        assert!(
            stats.dropped_queue > 200,
            "about half the offered load is dropped"
        );
        assert_eq!(out.len() as u64 + stats.dropped_queue, 500);
    }

    #[test]
    fn memory_bound_drops_a_flood() {
        let imp = Impairment {
            delay: Duration::from_secs(1),
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(1)).with_max_held_bytes(100 * (1000 + PACKET_OVERHEAD));
        let now = Instant::now();
        for seq in 0..1000 {
            link.push(now, 0u8, seq, 1000);
        }
        assert_eq!(link.waiting(), 100);
        assert_eq!(link.stats().dropped_queue, 900);
    }

    #[test]
    fn duplicates_arrive_right_behind_the_original() {
        let imp = Impairment {
            duplicate: 1.0,
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(1));
        let now = Instant::now();
        link.push(now, 0u8, 1u32, 10);
        link.push(now, 0u8, 2u32, 10);
        let out: Vec<u32> = std::iter::from_fn(|| link.poll_release(now))
            .map(|(_, seq)| seq)
            .collect();
        assert_eq!(out, vec![1, 1, 2, 2]);
        assert_eq!(link.stats().duplicated, 2);
        assert_eq!(link.stats().reordered, 0);
    }

    #[test]
    fn flows_do_not_hold_each_other_back() {
        let imp = Impairment {
            rate_bps: Some(80_000),
            ..Default::default()
        };
        let mut link = Link::new(imp, Some(1));
        let now = Instant::now();
        // 1000 B at 80 kbit/s take 100 ms; each flow has its own bottleneck.
        assert_eq!(
            link.push(now, 1u8, 1u32, 1000),
            Admission::Scheduled(now + ms(100))
        );
        assert_eq!(
            link.push(now, 2u8, 2u32, 1000),
            Admission::Scheduled(now + ms(100))
        );
        assert_eq!(
            link.push(now, 1u8, 3u32, 1000),
            Admission::DroppedQueue,
            "default queue is 100 ms"
        );
    }

    #[test]
    fn set_impairment_applies_to_later_packets() {
        let mut link = Link::new(Impairment::default(), Some(1));
        let now = Instant::now();
        assert_eq!(link.push(now, 0u8, 1u32, 10), Admission::Scheduled(now));
        link.set_impairment(Impairment {
            loss: 1.0,
            ..Default::default()
        });
        assert_eq!(link.push(now, 0u8, 2u32, 10), Admission::DroppedLoss);
        assert_eq!(link.poll_release(now), Some((0, 1)));
    }

    #[test]
    fn same_seed_same_fate() {
        let imp: Impairment = "delay=20ms,jitter=10ms,loss=20%,reorder=5%"
            .parse()
            .unwrap();
        let fate = |seed| {
            let mut link = Link::new(imp.clone(), Some(seed));
            run(&mut link, 500, ms(1), 50)
                .into_iter()
                .map(|(_, seq)| seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(fate(5), fate(5));
        assert_ne!(fate(5), fate(6));
    }
}
