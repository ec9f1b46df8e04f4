//! `/metrics`: room state, signaling counters and the relay's media counters, encoded by `prometheus-client` from a
//! snapshot taken at each scrape.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use zego_relay::RelayMetrics;

use crate::rooms::{Census, TimerTotals};

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

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl SignalingCounters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One scrape's values: the families are written by `prometheus-client` from them.
#[derive(Debug)]
struct Snapshot {
    gauges: Vec<(&'static str, &'static str, u64)>,
    /// Named without the `_total` the encoder adds to each sample.
    counters: Vec<(&'static str, &'static str, u64)>,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for &(name, help, value) in &self.gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        for &(name, help, value) in &self.counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Renders everything in the OpenMetrics text format (which Prometheus reads), see [`CONTENT_TYPE`].
pub fn render(
    census: Census,
    totals: TimerTotals,
    counters: &SignalingCounters,
    relay: &RelayMetrics,
) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let opened = get(&counters.connections_opened);
    let snapshot = Snapshot {
        gauges: vec![
            (
                "zego_rooms",
                "Rooms with at least one user.",
                census.rooms as u64,
            ),
            (
                "zego_users",
                "Logged-in sessions, connected or waiting to resume.",
                census.sessions as u64,
            ),
            (
                "zego_streams",
                "Published streams.",
                census.streams as u64,
            ),
            (
                "zego_players",
                "Active plays.",
                census.plays as u64,
            ),
            (
                "zego_waiting_plays",
                "Plays waiting for their stream to be published.",
                census.waiting_plays as u64,
            ),
            (
                "zego_connections",
                "Open signaling WebSocket connections.",
                opened.saturating_sub(get(&counters.connections_closed)),
            ),
            (
                "zego_relay_publishers",
                "Publisher sessions at the relay.",
                relay.publishers,
            ),
            (
                "zego_relay_players",
                "Player sessions at the relay.",
                relay.players,
            ),
            (
                "zego_relay_pulls",
                "Streams the relay pulls from other nodes of the cluster.",
                relay.pulls,
            ),
        ],
        counters: vec![
            (
                "zego_connections_accepted",
                "Signaling connections accepted.",
                opened,
            ),
            (
                "zego_signaling_messages_received",
                "Signaling frames received.",
                get(&counters.messages_received),
            ),
            (
                "zego_signaling_messages_sent",
                "Signaling messages queued to clients.",
                get(&counters.messages_sent),
            ),
            (
                "zego_signaling_bad_messages",
                "Frames refused as malformed, unknown, too large, binary or out of order.",
                get(&counters.bad_messages),
            ),
            (
                "zego_signaling_rate_limited",
                "Requests refused by a connection's request rate limit.",
                get(&counters.rate_limited),
            ),
            (
                "zego_logins",
                "Successful logins, resumes included.",
                get(&counters.logins),
            ),
            (
                "zego_login_failures",
                "Refused logins.",
                get(&counters.login_failures),
            ),
            (
                "zego_resumes",
                "Sessions resumed on a new connection.",
                get(&counters.resumes),
            ),
            (
                "zego_slow_reader_disconnects",
                "Connections dropped because their send queue was full.",
                get(&counters.slow_reader_disconnects),
            ),
            (
                "zego_relay_refusals",
                "Publish or play requests the relay refused.",
                get(&counters.relay_refusals),
            ),
            (
                "zego_heartbeat_timeouts",
                "Sessions removed for silence.",
                totals.heartbeat_timeouts,
            ),
            (
                "zego_token_expiry_kicks",
                "Sessions kicked because their token expired.",
                totals.token_expiries,
            ),
            (
                "zego_same_user_kicks",
                "Sessions kicked by a later login of the same user_id.",
                totals.same_user_kicks,
            ),
            (
                "zego_relay_packets_received",
                "RTP packets received from publishers.",
                relay.packets_received,
            ),
            (
                "zego_relay_bytes_received",
                "RTP bytes received from publishers.",
                relay.bytes_received,
            ),
            (
                "zego_relay_packets_forwarded",
                "RTP packets forwarded to players.",
                relay.packets_forwarded,
            ),
            (
                "zego_relay_bytes_forwarded",
                "RTP bytes forwarded to players.",
                relay.bytes_forwarded,
            ),
            (
                "zego_relay_retransmissions",
                "Packets resent on NACK.",
                relay.retransmissions,
            ),
            (
                "zego_relay_repair_packets",
                "Repair packets (Reed-Solomon FEC) sent to players on lossy paths.",
                relay.repair_packets,
            ),
            (
                "zego_relay_fec_rebuilt",
                "Publisher packets lost on the way in and rebuilt from its repair packets.",
                relay.fec_rebuilt,
            ),
            (
                "zego_relay_keyframe_requests",
                "Keyframe requests sent to publishers.",
                relay.keyframe_requests,
            ),
            (
                "zego_relay_cached_keyframe_starts",
                "Players started from their stream's cached keyframe instead of a keyframe request.",
                relay.cached_keyframe_starts,
            ),
            (
                "zego_relay_receiver_estimates",
                "Bandwidth estimates (REMB) sent to publishers: the lowest of their players' downlink estimates.",
                relay.receiver_estimates,
            ),
            (
                "zego_relay_datagrams_dropped",
                "Datagrams that matched no session or failed to parse.",
                relay.datagrams_dropped,
            ),
            (
                "zego_relay_overload_drops",
                "Packets a relay I/O thread dropped because it fell behind another's hand-over.",
                relay.overload_drops,
            ),
        ],
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let _ = text::encode(&mut out, &registry);
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
        assert!(text.contains("\nzego_connections_accepted_total 1\n"));
        assert!(text.ends_with("# EOF\n"));
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(' ').next().unwrap();
            let family = name.strip_suffix("_total").unwrap_or(name);
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{name}"
            );
            assert_eq!(
                text.matches(&format!("# HELP {family} ")).count(),
                1,
                "{name}"
            );
        }
    }
}
