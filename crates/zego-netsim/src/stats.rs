//! Counters of what the relay did to the packets it saw.

use std::fmt;

/// Counters for one direction. Every counter only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams that entered this direction.
    pub received_packets: u64,
    /// UDP payload bytes that entered this direction.
    pub received_bytes: u64,
    /// Datagrams delivered, duplicates included.
    pub forwarded_packets: u64,
    /// UDP payload bytes delivered, duplicates included.
    pub forwarded_bytes: u64,
    /// Datagrams dropped by the random or bursty loss model.
    pub dropped_loss: u64,
    /// Datagrams tail-dropped because the bottleneck queue or the relay's memory bound was full.
    pub dropped_queue: u64,
    /// Datagrams delivered after a later datagram of the same client.
    pub reordered: u64,
    /// Extra copies delivered by the duplicate model.
    pub duplicated: u64,
    /// Datagrams the operating system refused to send (for example, the server's port was closed).
    pub send_errors: u64,
}

impl DirectionStats {
    /// Share of received datagrams dropped by the loss model, 0.0 when nothing was received.
    pub fn loss_ratio(&self) -> f64 {
        if self.received_packets == 0 {
            0.0
        } else {
            self.dropped_loss as f64 / self.received_packets as f64
        }
    }
}

impl fmt::Display for DirectionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in {} pkt/{} B, out {} pkt/{} B, lost {}, queue-dropped {}, reordered {}, duplicated {}, send errors {}",
            self.received_packets,
            self.received_bytes,
            self.forwarded_packets,
            self.forwarded_bytes,
            self.dropped_loss,
            self.dropped_queue,
            self.reordered,
            self.duplicated,
            self.send_errors
        )
    }
}

/// A snapshot of the relay's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetSimStats {
    /// Client -> server.
    pub up: DirectionStats,
    /// Server -> client.
    pub down: DirectionStats,
    /// Clients (distinct source addresses) currently mapped to an upstream socket.
    pub clients: usize,
    /// Datagrams from new source addresses refused because the client table was full.
    pub rejected_packets: u64,
}

impl fmt::Display for NetSimStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clients {} (rejected {} pkt); up: {}; down: {}",
            self.clients, self.rejected_packets, self.up, self.down
        )
    }
}
