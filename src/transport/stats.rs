//! The numbers the quality callbacks need, read from webrtc's statistics (RTCP reports, ICE checks).

use std::time::Instant;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::stats::ice_candidate_pair::RTCStatsIceCandidatePairState;
use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};

/// Counters of one direction of one media kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct StreamCounters {
    pub packets: u64,
    pub bytes: u64,
    /// Inbound: packets lost (cumulative, from sequence numbers).
    pub packets_lost: i64,
    /// Outbound: fraction lost reported by the remote's last receiver report (0.0..=1.0).
    pub remote_fraction_lost: Option<f64>,
    /// Outbound: round-trip time from the remote's last receiver report, in seconds.
    pub remote_rtt_s: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TransportStats {
    /// Round-trip time of the selected ICE candidate pair (STUN checks), in seconds.
    pub ice_rtt_s: Option<f64>,
    pub outbound_video: StreamCounters,
    pub outbound_audio: StreamCounters,
    pub inbound_video: StreamCounters,
    pub inbound_audio: StreamCounters,
}

impl TransportStats {
    /// Best round-trip estimate in milliseconds: RTCP when measured, else ICE.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.outbound_video
            .remote_rtt_s
            .or(self.outbound_audio.remote_rtt_s)
            .or(self.ice_rtt_s)
            .map(|s| s * 1000.0)
    }
}

pub(crate) async fn collect(pc: &dyn PeerConnection) -> TransportStats {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let mut out = TransportStats::default();
    for entry in report.iter() {
        match entry {
            RTCStatsReportEntry::IceCandidatePair(pair) => {
                let selected =
                    pair.nominated || pair.state == RTCStatsIceCandidatePairState::Succeeded;
                if selected && pair.current_round_trip_time > 0.0 {
                    out.ice_rtt_s = Some(pair.current_round_trip_time);
                }
            }
            RTCStatsReportEntry::OutboundRtp(s) => {
                let rtp = &s.sent_rtp_stream_stats;
                let counters = match rtp.rtp_stream_stats.kind {
                    RtpCodecKind::Video => &mut out.outbound_video,
                    RtpCodecKind::Audio => &mut out.outbound_audio,
                    _ => continue,
                };
                counters.packets += rtp.packets_sent;
                counters.bytes += rtp.bytes_sent;
            }
            RTCStatsReportEntry::RemoteInboundRtp(s) => {
                let counters = match s.received_rtp_stream_stats.rtp_stream_stats.kind {
                    RtpCodecKind::Video => &mut out.outbound_video,
                    RtpCodecKind::Audio => &mut out.outbound_audio,
                    _ => continue,
                };
                if s.round_trip_time_measurements > 0 {
                    counters.remote_rtt_s = Some(s.round_trip_time);
                    counters.remote_fraction_lost = Some(s.fraction_lost);
                }
            }
            RTCStatsReportEntry::InboundRtp(s) => {
                let rtp = &s.received_rtp_stream_stats;
                let counters = match rtp.rtp_stream_stats.kind {
                    RtpCodecKind::Video => &mut out.inbound_video,
                    RtpCodecKind::Audio => &mut out.inbound_audio,
                    _ => continue,
                };
                counters.packets += rtp.packets_received;
                counters.bytes += s.bytes_received;
                counters.packets_lost += rtp.packets_lost;
            }
            _ => {}
        }
    }
    out
}

/// ZEGO's quality level (0 excellent .. 4 die) from loss, round trip and delay.
pub(crate) fn quality_level(loss: f64, rtt_ms: f64, delay_ms: f64) -> i32 {
    let by_loss = match loss {
        l if l < 0.01 => 0,
        l if l < 0.03 => 1,
        l if l < 0.08 => 2,
        l if l < 0.20 => 3,
        _ => 4,
    };
    let by_rtt = match rtt_ms {
        r if r < 100.0 => 0,
        r if r < 200.0 => 1,
        r if r < 400.0 => 2,
        r if r < 800.0 => 3,
        _ => 4,
    };
    let by_delay = match delay_ms {
        d if d < 200.0 => 0,
        d if d < 400.0 => 1,
        d if d < 800.0 => 2,
        d if d < 1500.0 => 3,
        _ => 4,
    };
    by_loss.max(by_rtt).max(by_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_level_takes_the_worst_signal() {
        assert_eq!(quality_level(0.0, 5.0, 30.0), 0);
        assert_eq!(quality_level(0.05, 5.0, 30.0), 2);
        assert_eq!(quality_level(0.0, 900.0, 30.0), 4);
        assert_eq!(quality_level(0.0, 5.0, 500.0), 2);
    }
}
