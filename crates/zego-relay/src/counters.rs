//! The relay's metrics, written by the I/O thread and read by anyone.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::RelayMetrics;

/// Written by the I/O threads, read by anyone: relaxed atomics are enough, a snapshot need not be consistent across
/// fields.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub publishers: AtomicU64,
    pub pulls: AtomicU64,
    pub players: AtomicU64,
    pub packets_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub packets_forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    pub retransmissions: AtomicU64,
    pub repair_packets: AtomicU64,
    pub fec_rebuilt: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub cached_keyframe_starts: AtomicU64,
    pub receiver_estimates: AtomicU64,
    pub datagrams_dropped: AtomicU64,
    pub overload_drops: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Moves a gauge shared by several writers from one writer's old share to its new one.
    pub fn adjust(counter: &AtomicU64, old: u64, new: u64) {
        if new >= old {
            counter.fetch_add(new - old, Ordering::Relaxed);
        } else {
            counter.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> RelayMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelayMetrics {
            publishers: get(&self.publishers),
            pulls: get(&self.pulls),
            players: get(&self.players),
            packets_received: get(&self.packets_received),
            bytes_received: get(&self.bytes_received),
            packets_forwarded: get(&self.packets_forwarded),
            bytes_forwarded: get(&self.bytes_forwarded),
            retransmissions: get(&self.retransmissions),
            repair_packets: get(&self.repair_packets),
            fec_rebuilt: get(&self.fec_rebuilt),
            keyframe_requests: get(&self.keyframe_requests),
            cached_keyframe_starts: get(&self.cached_keyframe_starts),
            receiver_estimates: get(&self.receiver_estimates),
            datagrams_dropped: get(&self.datagrams_dropped),
            overload_drops: get(&self.overload_drops),
        }
    }
}
