//! The congestion controller's parts together: estimate, pacing, feedback and the encoder's share.

use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, AttributedPacket, Packet, PacketReport, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use zego_rtp::OPUS_PAYLOAD_TYPE;

use super::estimator::*;
use super::pacer::*;
use super::state::*;
use super::*;
use crate::transport::read_tap::ReadTap;

fn rtp(now: Instant, seq: u16, payload: usize) -> TaggedPacket {
    TaggedPacket {
        now,
        transport: TransportContext::default(),
        message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                sequence_number: seq,
                ssrc: 1,
                ..Default::default()
            },
            payload: vec![0u8; payload].into(),
        })),
    }
}

fn drain(pacer: &mut SendPacer) -> usize {
    std::iter::from_fn(|| pacer.poll_write()).count()
}

#[test]
fn the_encoder_gets_the_media_share_within_floor_and_configured() {
    // 1 Mb/s: 700 kb/s for media, 68 kb/s of it audio.
    assert_eq!(video_bitrate(1_000_000.0, 2_500_000, 68_000), 632_000);
    assert_eq!(video_bitrate(50_000_000.0, 2_500_000, 68_000), 2_500_000);
    assert_eq!(video_bitrate(10_000.0, 2_500_000, 68_000), 312_500);
    assert_eq!(video_bitrate(10_000.0, 600_000, 68_000), 100_000);
    assert_eq!(video_bitrate(10_000.0, 80_000, 68_000), 80_000);
    // The starting estimate runs the configured stream at full rate.
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    assert_eq!(
        state.video_bitrate(2_500_000, 68_000, Instant::now()),
        2_500_000
    );
    assert!(!state.limited());
}

#[test]
fn feedback_loss_is_counted_from_what_the_feedback_says() {
    let state = CongestionState::new(1_000_000, 68_000, Instant::now());
    let before = state.feedback();
    let mut counter = ReadTap::tap(RelayFeedback::new(state.clone()));
    let mut feed = |count: u8, base: u16, covered: u16, arrived: usize| {
        let feedback = TransportLayerCc {
            fb_pkt_count: count,
            base_sequence_number: base,
            packet_status_count: covered,
            recv_deltas: vec![Default::default(); arrived],
            ..Default::default()
        };
        counter
            .handle_read(TaggedPacket {
                now: Instant::now(),
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(feedback)])),
            })
            .unwrap();
        assert!(counter.poll_read().is_some(), "the feedback goes on");
    };
    // Packets 0..10 covered, eight arrived (one arrival time each).
    feed(0, 0, 10, 8);
    let after = state.feedback();
    assert_eq!(
        after,
        FeedbackCounters {
            reported: 10,
            lost: 2
        }
    );
    assert_eq!(after.loss_since(&before), Some(0.2));
    assert_eq!(after.loss_since(&after), None);
    // The next feedback starts at 12: 10 and 11 were lost before it.
    feed(1, 12, 5, 5);
    assert_eq!(
        state.feedback(),
        FeedbackCounters {
            reported: 17,
            lost: 4
        }
    );
    // Feedback 2 was lost: what it covered and what came before it are unknown, not lost.
    feed(3, 40, 10, 10);
    assert_eq!(
        state.feedback(),
        FeedbackCounters {
            reported: 27,
            lost: 4
        }
    );
    // Across the wrap of both counters.
    let mut counter2 = RelayFeedback::new(state.clone());
    counter2.last = Some((255, 65_534));
    counter2.count(&TransportLayerCc {
        fb_pkt_count: 0,
        base_sequence_number: 1,
        packet_status_count: 2,
        recv_deltas: vec![Default::default(); 2],
        ..Default::default()
    });
    assert_eq!(
        state.feedback(),
        FeedbackCounters {
            reported: 32,
            lost: 7
        }
    );
}

fn report(id: u64, departure: Instant, arrival_ms: f64) -> PacketReport {
    PacketReport {
        ssrc: 1,
        id,
        rtp_sequence_number: id as u16,
        is_twcc: true,
        twcc_sequence_number: id as u16,
        size: 1250,
        arrived: true,
        departure,
        arrival: Some(Duration::from_secs_f64(arrival_ms / 1000.0)),
        ecn: Default::default(),
    }
}

#[test]
fn a_standing_queue_caps_the_estimate_below_the_delivered_rate() {
    let mut queue = StandingQueue::default();
    let start = Instant::now();
    let gcc = 1_200_000.0;
    // 1 Mb/s delivered (a 1250-byte packet every 10 ms), first through an empty queue, then through a queue
    // holding 100 ms.
    let mut id = 0;
    for batch in 0..40u64 {
        let queued = if batch < 10 { 0.0 } else { 100.0 };
        let reports: Vec<PacketReport> = (0..5)
            .map(|_| {
                id += 1;
                let sent = Duration::from_millis(id * 10);
                report(id, start + sent, 5.0 + sent.as_secs_f64() * 1000.0 + queued)
            })
            .collect();
        queue.on_reports(start + Duration::from_millis(id * 10 + 50), &reports, gcc);
        if batch < 10 {
            assert_eq!(queue.cap, None, "no queue, no cap");
        }
    }
    let cap = queue.cap.expect("capped under a standing queue");
    assert!((800_000.0..=900_000.0).contains(&cap), "cap {cap}");

    // Drained: the cap climbs back and lets go once GCC is lower.
    for _ in 0..200 {
        let reports: Vec<PacketReport> = (0..5)
            .map(|_| {
                id += 1;
                let sent = Duration::from_millis(id * 10);
                report(id, start + sent, 5.0 + sent.as_secs_f64() * 1000.0)
            })
            .collect();
        queue.on_reports(start + Duration::from_millis(id * 10 + 50), &reports, gcc);
    }
    assert_eq!(queue.cap, None);
}

#[test]
fn media_passes_at_once_while_the_network_has_room() {
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    state.video_bitrate(2_500_000, 68_000, Instant::now());
    let mut pacer = SendPacer::new(state);
    let now = Instant::now();
    // A 100-packet keyframe leaves in one go.
    for seq in 0..100 {
        pacer.handle_write(rtp(now, seq, 1200)).unwrap();
    }
    assert_eq!(drain(&mut pacer), 100);
    assert_eq!(pacer.poll_timeout(), None);
}

#[test]
fn media_is_spread_at_the_pacing_rate_when_the_network_limits_it() {
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    state.estimate(800_000.0, 800_000.0);
    state.video_bitrate(2_500_000, 68_000, Instant::now());
    assert!(state.limited() && state.pacing());
    let mut pacer = SendPacer::new(state);
    let start = Instant::now();
    // 100 packets of ~1200 bytes: ~0.97 Mbit, ~0.8 s at 1.2 Mb/s.
    for seq in 0..100 {
        pacer.handle_write(rtp(start, seq, 1200)).unwrap();
    }
    let mut sent = drain(&mut pacer);
    assert!(sent <= 4, "only a burst leaves at once, {sent} did");
    let mut now = start;
    while let Some(at) = pacer.poll_timeout() {
        assert!(at > now, "the deadline advances");
        now = at;
        pacer.handle_timeout(now).unwrap();
        sent += drain(&mut pacer);
    }
    assert_eq!(sent, 100);
    let took = now.duration_since(start).as_secs_f64();
    assert!((0.7..0.9).contains(&took), "paced over {took:.3} s");
}

#[test]
fn pacing_keeps_up_with_the_encoder_at_its_floor() {
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    // GCC at its floor, far below the encoder's floor of 312.5 kb/s.
    state.estimate(100_000.0, 100_000.0);
    assert_eq!(
        state.video_bitrate(2_500_000, 68_000, Instant::now()),
        312_500
    );
    let mut pacer = SendPacer::new(state);
    let start = Instant::now();
    // One second of 312.5 kb/s video in ~1200-byte packets, written as it is produced.
    let mut sent = 0;
    for seq in 0..32u16 {
        let at = start + Duration::from_millis(u64::from(seq) * 31);
        while let Some(due) = pacer.poll_timeout().filter(|due| *due <= at) {
            pacer.handle_timeout(due).unwrap();
        }
        pacer.handle_write(rtp(at, seq, 1200)).unwrap();
        sent += drain(&mut pacer);
    }
    assert!(sent >= 30, "{sent} of 32 left within the second");
}

#[test]
fn the_players_estimate_caps_the_stream_and_paces_it_until_it_runs_out() {
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    // The uplink is clean: GCC would carry the whole stream.
    state.estimate(4_000_000.0, 4_000_000.0);
    assert_eq!(
        state.video_bitrate(2_500_000, 68_000, Instant::now()),
        2_500_000
    );
    assert!(!state.pacing());

    // A player's downlink carries 1 Mb/s.
    let at = Instant::now();
    state.set_receiver_estimate(1_000_000.0, at);
    assert_eq!(state.target_bps(at), 1_000_000.0);
    assert_eq!(state.video_bitrate(2_500_000, 68_000, at), 632_000);
    assert!(state.limited() && state.pacing());
    let held = at + RECEIVER_ESTIMATE_HOLD - Duration::from_millis(1);
    assert_eq!(state.target_bps(held), 1_000_000.0);

    // The relay stopped repeating it (no player is limited any more): it holds no longer.
    let later = at + RECEIVER_ESTIMATE_HOLD;
    assert_eq!(state.target_bps(later), 4_000_000.0);
    assert_eq!(state.video_bitrate(2_500_000, 68_000, later), 2_500_000);
    assert!(!state.pacing());
}

#[test]
fn random_loss_alone_does_not_pace() {
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    // The loss half went to the floor; the delay half sees no queue.
    state.estimate(100_000.0, 4_000_000.0);
    assert_eq!(
        state.video_bitrate(2_500_000, 68_000, Instant::now()),
        312_500
    );
    assert!(state.limited() && !state.pacing());
    let mut pacer = SendPacer::new(state);
    let now = Instant::now();
    for seq in 0..40 {
        pacer.handle_write(rtp(now, seq, 1200)).unwrap();
    }
    assert_eq!(drain(&mut pacer), 40, "a keyframe leaves at once");
}

#[test]
fn audio_and_retransmissions_overtake_held_video() {
    let state = CongestionState::new(2_500_000, 68_000, Instant::now());
    state.estimate(800_000.0, 800_000.0);
    state.video_bitrate(2_500_000, 68_000, Instant::now());
    let mut pacer = SendPacer::new(state);
    let now = Instant::now();
    for seq in 0..50 {
        pacer.handle_write(rtp(now, seq, 1200)).unwrap();
    }
    drain(&mut pacer);
    let mut audio = rtp(now, 1000, 100);
    if let Packet::Rtp(p) = &mut audio.message.packet {
        p.header.payload_type = OPUS_PAYLOAD_TYPE;
    }
    pacer.handle_write(audio).unwrap();
    let mut repair = rtp(now, 2000, 1200);
    repair.message.add(Attribute::Retransmission);
    pacer.handle_write(repair).unwrap();
    let at = pacer.poll_timeout().unwrap();
    let mut released = Vec::new();
    let mut now = at;
    while released.len() < 2 {
        pacer.handle_timeout(now).unwrap();
        released.extend(std::iter::from_fn(|| pacer.poll_write()).map(
            |p| match p.message.packet {
                Packet::Rtp(rtp) => rtp.header.sequence_number,
                _ => 0,
            },
        ));
        now = pacer
            .poll_timeout()
            .unwrap_or(now + Duration::from_millis(1));
    }
    assert_eq!(&released[..2], &[1000, 2000], "ahead of the held video");
}

#[test]
fn retransmissions_beyond_their_share_are_dropped_at_a_bottleneck() {
    let state = CongestionState::new(1_000_000, 68_000, Instant::now());
    state.estimate(800_000.0, 800_000.0);
    state.video_bitrate(1_000_000, 68_000, Instant::now());
    assert!(state.pacing());
    let mut pacer = SendPacer::new(state.clone());
    let now = Instant::now();
    for seq in 0..50 {
        let mut packet = rtp(now, seq, 1200);
        packet.message.add(Attribute::Retransmission);
        pacer.handle_write(packet).unwrap();
    }
    // The budget holds a burst of 12 full-size packets (144 kbit): 14 of these 9.7 kbit ones.
    assert_eq!(state.rtx_dropped(), 36);
}

#[test]
fn random_loss_is_repaired_in_full() {
    let state = CongestionState::new(1_000_000, 68_000, Instant::now());
    state.estimate(100_000.0, 2_000_000.0);
    state.video_bitrate(1_000_000, 68_000, Instant::now());
    let mut pacer = SendPacer::new(state.clone());
    let now = Instant::now();
    for seq in 0..50 {
        let mut packet = rtp(now, seq, 1200);
        packet.message.add(Attribute::Retransmission);
        pacer.handle_write(packet).unwrap();
    }
    assert_eq!(drain(&mut pacer), 50);
    assert_eq!(state.rtx_dropped(), 0);
}
