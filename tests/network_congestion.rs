//! The publisher on a constrained path, through the public API: its media crosses an impairment relay
//! (`zego_netsim`) on the way to the embedded server's relay. Under a bandwidth cap on its uplink, or on a viewer's
//! downlink, the encoder comes down below the cap; under random loss the quality callback reports the loss the
//! uplink really has.

mod flow_support;

use std::time::{Duration, Instant};

use flow_support::*;
use zego_express::config::{PlayerConfig, PublishChannel, PublisherState, RoomConfig, VideoConfig};
use zego_express::event::{Event, PublishQuality};
use zego_express::Engine;
use zego_netsim::{Direction, Impairment, NetSim, NetSimHandle};
use zego_server::{EmbeddedServer, ServerConfig};

const T: Duration = Duration::from_secs(10);

/// An embedded server whose media port is reached only through the impairment relay.
struct Rig {
    runtime: tokio::runtime::Runtime,
    netsim: NetSimHandle,
    server: EmbeddedServer,
}

impl Rig {
    fn start() -> Rig {
        init_logging();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let media_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let netsim = runtime
            .block_on(
                NetSim::new("127.0.0.1:0".parse().unwrap(), media_port)
                    .seed(7)
                    .start(),
            )
            .unwrap();
        let server = EmbeddedServer::start(ServerConfig {
            media_bind: media_port,
            media_announce: Some(netsim.local_addr()),
            ..ServerConfig::default()
        })
        .unwrap();
        Rig {
            runtime,
            netsim,
            server,
        }
    }

    fn impair_uplink(&self, spec: &str) {
        let impairment: Impairment = spec.parse().unwrap();
        self.netsim
            .set_impairment(Direction::Up, impairment)
            .unwrap();
    }

    fn stop(self) {
        self.server.stop();
        self.runtime.block_on(self.netsim.shutdown());
    }
}

/// Publishes 1280x720 at 30 fps and 2.5 Mb/s and waits until the stream is up.
fn publish_720p(url: &str) -> (Engine, Recorder) {
    let (engine, recorder) = engine(url);
    let hd = VideoConfig {
        capture_width: 1280,
        capture_height: 720,
        encode_width: 1280,
        encode_height: 720,
        fps: 30,
        bitrate_kbps: 2500,
        keyframe_interval_s: 2,
    };
    engine.set_video_config(hd, PublishChannel::Main).unwrap();
    engine
        .login_room("r", user("anchor"), RoomConfig::default())
        .unwrap();
    engine.start_publishing("s", PublishChannel::Main).unwrap();
    recorder.wait_for("publishing", T, |e| {
        matches!(
            e,
            Event::PublisherStateUpdate {
                state: PublisherState::Publishing,
                error_code: 0,
                ..
            }
        )
    });
    (engine, recorder)
}

/// The publisher's quality reports recorded after the first `skip` events.
fn qualities_after(recorder: &Recorder, skip: usize) -> Vec<PublishQuality> {
    recorder
        .events()
        .into_iter()
        .skip(skip)
        .filter_map(|e| match e {
            Event::PublisherQualityUpdate { quality, .. } => Some(quality),
            _ => None,
        })
        .collect()
}

/// Waits for the next quality report after the first `skip` events.
fn next_quality(recorder: &Recorder, skip: usize) -> (usize, PublishQuality) {
    let event = recorder.wait_for_after(skip, "a publish quality report", T, |e| {
        matches!(e, Event::PublisherQualityUpdate { .. })
    });
    let Event::PublisherQualityUpdate { quality, .. } = event else {
        unreachable!()
    };
    let at = recorder
        .events()
        .iter()
        .enumerate()
        .skip(skip)
        .find(|(_, e)| matches!(e, Event::PublisherQualityUpdate { .. }))
        .map(|(i, _)| i + 1)
        .unwrap();
    (at, quality)
}

/// No publisher state change after the first `skip` events (the stream was already publishing then).
fn stayed_publishing(recorder: &Recorder, skip: usize) -> bool {
    !recorder.events().iter().skip(skip).any(|e| {
        matches!(e, Event::PublisherStateUpdate { state, .. } if *state != PublisherState::Publishing)
    })
}

/// Waits until the publisher has adapted to a 1 Mb/s cap that began just now: a whole report interval sent under
/// it, with the encoder's target below it, within 15 s. Returns where that report is in the events, and the report.
fn adapt_to_1_mbps(recorder: &Recorder, mark: usize) -> (usize, PublishQuality) {
    let capped_at = Instant::now();
    let deadline = capped_at + Duration::from_secs(15);
    let mut skip = mark;
    loop {
        let (at, q) = next_quality(recorder, skip);
        skip = at;
        if q.video_kbps + q.audio_kbps < 950.0 && q.target_bitrate_kbps < 900.0 {
            return (at, q);
        }
        assert!(
            Instant::now() < deadline,
            "still above the cap {:?} after it began: {:?}",
            capped_at.elapsed(),
            qualities_after(recorder, mark)
        );
    }
}

/// Over the next report interval: the report, and how many of the packets offered to one direction of the path it
/// tail-dropped.
fn next_interval_drops(
    rig: &Rig,
    recorder: &Recorder,
    skip: usize,
    direction: Direction,
) -> (PublishQuality, u64, u64) {
    let stats = || {
        let stats = rig.netsim.stats();
        match direction {
            Direction::Up => stats.up,
            Direction::Down => stats.down,
        }
    };
    let before = stats();
    let (_, report) = next_quality(recorder, skip);
    let after = stats();
    (
        report,
        after.dropped_queue - before.dropped_queue,
        after.received_packets - before.received_packets,
    )
}

#[test]
fn under_a_1_mbps_uplink_cap_the_encoder_comes_down_below_the_cap() {
    let rig = Rig::start();
    let (engine, recorder) = publish_720p(rig.server.ws_url());
    let (mark, clean) = next_quality(&recorder, 0);
    let first = mark;
    assert!(
        clean.target_bitrate_kbps >= 2400.0,
        "a clean uplink keeps the configured bitrate: {clean:?}"
    );

    rig.impair_uplink("rate=1mbit,queue=100ms");
    let (skip, adapted) = adapt_to_1_mbps(&recorder, mark);
    // Fits: over the next report interval the bottleneck forwards nearly everything it is offered.
    let (settled, tail_dropped, offered) =
        next_interval_drops(&rig, &recorder, skip, Direction::Up);
    assert!(
        (tail_dropped as f64) < offered as f64 * 0.05,
        "{tail_dropped} of {offered} packets tail-dropped after adapting ({adapted:?}, then {settled:?})"
    );
    assert!(settled.video_kbps > 200.0, "video still flows: {settled:?}");
    assert!(
        stayed_publishing(&recorder, first),
        "the publish never broke"
    );
    engine.destroy();
    rig.stop();
}

#[test]
fn under_a_1_mbps_cap_on_the_viewers_downlink_the_publisher_comes_down_below_the_cap() {
    let rig = Rig::start();
    let url = rig.server.ws_url();
    let (engine, recorder) = publish_720p(url);
    let (viewer, seen) = flow_support::engine(url);
    viewer
        .login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    viewer.start_playing("s", PlayerConfig::default()).unwrap();
    seen.wait_for("the viewer's first frame", T, |e| {
        matches!(e, Event::PlayerRenderVideoFirstFrame { .. })
    });
    let (mark, clean) = next_quality(&recorder, recorder.len());
    let first = mark;
    assert!(
        clean.target_bitrate_kbps >= 2400.0,
        "a clean path keeps the configured bitrate: {clean:?}"
    );

    // Only the way from the server to the clients is capped (the publisher receives nothing but RTCP on it): the
    // publisher's own estimate sees a clean uplink, and only the viewer's estimate, passed on by the relay, can
    // bring it down.
    rig.netsim
        .set_impairment(Direction::Down, "rate=1mbit,queue=100ms".parse().unwrap())
        .unwrap();
    let (skip, adapted) = adapt_to_1_mbps(&recorder, mark);
    // The relay still retransmits what the viewer's queue dropped before the publisher came down, and those
    // retransmissions cross the same queue: one report interval for that to end.
    let (skip, _) = next_quality(&recorder, skip);
    // Fits: over the next report interval the viewer's bottleneck forwards nearly everything it is offered, and
    // the viewer keeps seeing new frames.
    let frames_before = seen.frame_count("s");
    let (settled, tail_dropped, offered) =
        next_interval_drops(&rig, &recorder, skip, Direction::Down);
    assert!(
        (tail_dropped as f64) < offered as f64 * 0.05,
        "{tail_dropped} of {offered} packets tail-dropped towards the viewer after adapting ({adapted:?}, then {settled:?})"
    );
    assert!(
        seen.frame_count("s") > frames_before + 30,
        "the viewer still renders"
    );
    assert!(
        flow_support::metric(&rig.server, "zego_relay_receiver_estimates_total") > 0,
        "the relay passed the viewer's estimate on"
    );
    assert!(
        stayed_publishing(&recorder, first),
        "the publish never broke"
    );
    viewer.destroy();
    engine.destroy();
    rig.stop();
}

#[test]
fn the_reported_uplink_loss_is_the_loss_the_uplink_has() {
    let rig = Rig::start();
    let (engine, recorder) = publish_720p(rig.server.ws_url());
    let (mark, clean) = next_quality(&recorder, 0);
    let first = mark;
    assert!(clean.packet_lost_rate < 0.01, "clean: {clean:?}");

    rig.impair_uplink("loss=10%");
    // The interval that straddles the change is skipped; the next one is all under loss.
    let (mark, _) = next_quality(&recorder, mark);
    let before = rig.netsim.stats().up;
    let (_, lossy) = next_quality(&recorder, mark);
    let after = rig.netsim.stats().up;
    let dropped = (after.dropped_loss - before.dropped_loss) as f64;
    let offered = (after.received_packets - before.received_packets) as f64;
    let actual = dropped / offered;
    assert!(
        (0.06..0.14).contains(&actual),
        "the simulated loss is about 10%: {actual}"
    );
    assert!(
        (lossy.packet_lost_rate - actual).abs() < 0.03,
        "reported {:.3}, the uplink lost {actual:.3} ({lossy:?})",
        lossy.packet_lost_rate
    );
    assert!(
        stayed_publishing(&recorder, first),
        "the publish never broke"
    );
    engine.destroy();
    rig.stop();
}

#[test]
fn the_publish_survives_30_percent_loss_each_way() {
    let rig = Rig::start();
    let (engine, recorder) = publish_720p(rig.server.ws_url());
    let first = recorder.len();
    rig.impair_uplink("loss=30%");
    rig.netsim
        .set_impairment(Direction::Down, "loss=30%".parse().unwrap())
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        assert!(
            stayed_publishing(&recorder, first),
            "the publish broke under 30% loss: {:?}",
            recorder.events().iter().skip(first).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, q) = next_quality(&recorder, recorder.len());
    assert!(q.video_send_fps > 5.0, "video still goes out: {q:?}");
    assert!(
        (0.2..0.4).contains(&q.packet_lost_rate),
        "the reported loss is the uplink's: {q:?}"
    );
    engine.destroy();
    rig.stop();
}
