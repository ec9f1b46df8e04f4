//! `/metrics`: room state, signaling counters and the relay's media counters in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use zego_relay::RelayMetrics;

use crate::registry::{Census, TimerTotals};

/// Signaling counters, bumped by connections and the hub.
#[derive(Debug, Default)]
pub struct SignalingCounters {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bad_messages: AtomicU64,
    pub rate_limited: AtomicU64,
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    pub resumes: AtomicU64,
    pub slow_reader_disconnects: AtomicU64,
    pub relay_refusals: AtomicU64,
}

impl SignalingCounters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn line(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// Renders everything in the Prometheus text exposition format (version 0.0.4).
pub fn render(
    census: Census,
    totals: TimerTotals,
    counters: &SignalingCounters,
    relay: &RelayMetrics,
) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::with_capacity(4096);
    let gauge = |out: &mut String, name, help, v: usize| line(out, name, "gauge", help, v as u64);
    gauge(
        &mut out,
        "zego_rooms",
        "Rooms with at least one user.",
        census.rooms,
    );
    gauge(
        &mut out,
        "zego_users",
        "Logged-in sessions, connected or waiting to resume.",
        census.sessions,
    );
    gauge(
        &mut out,
        "zego_streams",
        "Published streams.",
        census.streams,
    );
    gauge(&mut out, "zego_players", "Active plays.", census.plays);
    gauge(
        &mut out,
        "zego_waiting_plays",
        "Plays waiting for their stream to be published.",
        census.waiting_plays,
    );
    let opened = get(&counters.connections_opened);
    gauge(
        &mut out,
        "zego_connections",
        "Open signaling WebSocket connections.",
        opened.saturating_sub(get(&counters.connections_closed)) as usize,
    );

    let counter = |out: &mut String, name, help, v: u64| line(out, name, "counter", help, v);
    counter(
        &mut out,
        "zego_connections_total",
        "Signaling connections accepted.",
        opened,
    );
    counter(
        &mut out,
        "zego_signaling_messages_received_total",
        "Signaling frames received.",
        get(&counters.messages_received),
    );
    counter(
        &mut out,
        "zego_signaling_messages_sent_total",
        "Signaling messages queued to clients.",
        get(&counters.messages_sent),
    );
    counter(
        &mut out,
        "zego_signaling_bad_messages_total",
        "Frames refused as malformed, unknown, too large, binary or out of order.",
        get(&counters.bad_messages),
    );
    counter(
        &mut out,
        "zego_signaling_rate_limited_total",
        "Requests refused by a connection's request rate limit.",
        get(&counters.rate_limited),
    );
    counter(
        &mut out,
        "zego_logins_total",
        "Successful logins, resumes included.",
        get(&counters.logins),
    );
    counter(
        &mut out,
        "zego_login_failures_total",
        "Refused logins.",
        get(&counters.login_failures),
    );
    counter(
        &mut out,
        "zego_resumes_total",
        "Sessions resumed on a new connection.",
        get(&counters.resumes),
    );
    counter(
        &mut out,
        "zego_slow_reader_disconnects_total",
        "Connections dropped because their send queue was full.",
        get(&counters.slow_reader_disconnects),
    );
    counter(
        &mut out,
        "zego_relay_refusals_total",
        "Publish or play requests the relay refused.",
        get(&counters.relay_refusals),
    );
    counter(
        &mut out,
        "zego_heartbeat_timeouts_total",
        "Sessions removed for silence.",
        totals.heartbeat_timeouts,
    );
    counter(
        &mut out,
        "zego_token_expiry_kicks_total",
        "Sessions kicked because their token expired.",
        totals.token_expiries,
    );
    counter(
        &mut out,
        "zego_same_user_kicks_total",
        "Sessions kicked by a later login of the same user_id.",
        totals.same_user_kicks,
    );

    gauge(
        &mut out,
        "zego_relay_publishers",
        "Publisher sessions at the relay.",
        relay.publishers as usize,
    );
    gauge(
        &mut out,
        "zego_relay_players",
        "Player sessions at the relay.",
        relay.players as usize,
    );
    counter(
        &mut out,
        "zego_relay_packets_received_total",
        "RTP packets received from publishers.",
        relay.packets_received,
    );
    counter(
        &mut out,
        "zego_relay_bytes_received_total",
        "RTP bytes received from publishers.",
        relay.bytes_received,
    );
    counter(
        &mut out,
        "zego_relay_packets_forwarded_total",
        "RTP packets forwarded to players.",
        relay.packets_forwarded,
    );
    counter(
        &mut out,
        "zego_relay_bytes_forwarded_total",
        "RTP bytes forwarded to players.",
        relay.bytes_forwarded,
    );
    counter(
        &mut out,
        "zego_relay_retransmissions_total",
        "Packets resent on NACK.",
        relay.retransmissions,
    );
    counter(
        &mut out,
        "zego_relay_repair_packets_total",
        "Repair packets (Reed-Solomon FEC) sent to players on lossy paths.",
        relay.repair_packets,
    );
    counter(
        &mut out,
        "zego_relay_fec_rebuilt_total",
        "Publisher packets lost on the way in and rebuilt from its repair packets.",
        relay.fec_rebuilt,
    );
    counter(
        &mut out,
        "zego_relay_keyframe_requests_total",
        "Keyframe requests sent to publishers.",
        relay.keyframe_requests,
    );
    counter(
        &mut out,
        "zego_relay_receiver_estimates_total",
        "Bandwidth estimates (REMB) sent to publishers: the lowest of their players' downlink estimates.",
        relay.receiver_estimates,
    );
    counter(
        &mut out,
        "zego_relay_datagrams_dropped_total",
        "Datagrams that matched no session or failed to parse.",
        relay.datagrams_dropped,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_once_with_help_and_type() {
        let counters = SignalingCounters::default();
        SignalingCounters::bump(&counters.connections_opened);
        let text = render(
            Census {
                rooms: 2,
                ..Census::default()
            },
            TimerTotals::default(),
            &counters,
            &RelayMetrics {
                packets_forwarded: 7,
                ..RelayMetrics::default()
            },
        );
        assert!(text.contains("\nzego_rooms 2\n"));
        assert!(text.contains("\nzego_connections 1\n"));
        assert!(text.contains("\nzego_relay_packets_forwarded_total 7\n"));
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(' ').next().unwrap();
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
        }
    }
}
