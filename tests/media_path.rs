//! The media path through the public API: an anchor engine publishes the synthetic camera and microphone, an
//! audience engine plays the stream through the embedded server's relay on loopback. Frames arrive decodable and
//! in order, the capture stamp survives the trip (glass-to-glass latency), and mute, volume and destroy behave.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use zego_express::config::{
    EngineProfile, PlayerConfig, PublishChannel, RoomConfig, RoomStateChangedReason, Scenario,
    VideoConfig,
};
use zego_express::event::Event;
use zego_express::Engine;
use zego_protocol::message::User;
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Every event with the wall clock at which the app saw it.
struct Seen {
    at_us: u64,
    event: Event,
}

fn engine(server: &str) -> (Engine, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let profile = EngineProfile {
        app_id: DEV_APP_ID,
        app_sign: DEV_APP_SIGN.into(),
        scenario: Scenario::Default,
        server: server.into(),
    };
    let engine = Engine::create(
        profile,
        Arc::new(move |e: &Event| {
            let _ = tx.lock().send(Seen {
                at_us: now_us(),
                event: e.clone(),
            });
        }),
    )
    .expect("engine");
    (engine, rx)
}

fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        user_name: id.into(),
    }
}

/// Waits for an event matching `pred`, returning it; panics after `timeout`.
fn wait_for(
    rx: &mpsc::Receiver<Seen>,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Seen {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) if pred(&seen.event) => return seen,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {timeout:?}"),
        }
    }
}

/// Drains events for `duration`, handing each to `f`.
fn collect(rx: &mpsc::Receiver<Seen>, duration: Duration, mut f: impl FnMut(&Seen)) {
    let until = Instant::now() + duration;
    while let Ok(seen) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        f(&seen);
        if Instant::now() >= until {
            break;
        }
    }
}

/// Lets what is already queued for the app (up to a few frames behind the callback thread) arrive, and drops it:
/// what comes afterwards was produced after the last API call.
fn settle(rx: &mpsc::Receiver<Seen>) {
    std::thread::sleep(Duration::from_millis(200));
    while rx.try_recv().is_ok() {}
}

fn logged_in(e: &Event) -> bool {
    matches!(
        e,
        Event::RoomStateChanged {
            reason: RoomStateChangedReason::Logined,
            ..
        }
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn the_audience_sees_the_anchor_frames_in_order_within_milliseconds() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = EmbeddedServer::start(ServerConfig::default()).expect("server");
    let (anchor, anchor_events) = engine(server.ws_url());
    let (audience, audience_events) = engine(server.ws_url());
    let t = Duration::from_secs(10);

    anchor
        .login_room("media", user("anchor"), RoomConfig::default())
        .unwrap();
    wait_for(&anchor_events, "anchor login", t, logged_in);
    let config = VideoConfig {
        fps: 30,
        bitrate_kbps: 1000,
        ..VideoConfig::default()
    };
    anchor
        .set_video_config(config, PublishChannel::Main)
        .unwrap();
    anchor
        .start_publishing("media-stream", PublishChannel::Main)
        .unwrap();
    wait_for(&anchor_events, "the first captured frame", t, |e| {
        matches!(
            e,
            Event::PublisherCapturedVideoFirstFrame {
                channel: PublishChannel::Main
            }
        )
    });

    audience
        .login_room("media", user("audience"), RoomConfig::default())
        .unwrap();
    wait_for(&audience_events, "audience login", t, logged_in);
    audience
        .start_playing("media-stream", PlayerConfig::default())
        .unwrap();
    wait_for(
        &audience_events,
        "the first rendered frame",
        t,
        |e| matches!(e, Event::PlayerRenderVideoFirstFrame { stream_id } if stream_id == "media-stream"),
    );

    // Steady state: every frame decodable, in capture order, with its stamp.
    let (mut numbers, mut latencies_ms, mut audio) = (Vec::new(), Vec::new(), 0);
    let mut quality = None;
    collect(
        &audience_events,
        Duration::from_millis(3500),
        |seen| match &seen.event {
            Event::RemoteVideoFrame { frame, .. } => {
                assert!(
                    frame.capture_time_us > 0,
                    "the capture stamp must survive encoding"
                );
                numbers.push(frame.frame_number);
                latencies_ms.push(seen.at_us.saturating_sub(frame.capture_time_us) as f64 / 1000.0);
            }
            Event::RemoteAudioFrame { frame, .. } => {
                audio += 1;
                assert_eq!(frame.sample_rate, 48_000);
            }
            Event::PlayerQualityUpdate { quality: q, .. } => quality = Some(q.clone()),
            _ => {}
        },
    );
    assert!(
        numbers.len() >= 80,
        "only {} frames in 3.5 s at 30 fps",
        numbers.len()
    );
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "out of order: {numbers:?}"
    );
    assert!(audio >= 120, "only {audio} audio frames in 3.5 s");
    let quality = quality.expect("a play quality report");
    assert!(
        quality.video_decode_fps > 25.0 && quality.delay_ms < 100,
        "{quality:?}"
    );
    latencies_ms.sort_by(f64::total_cmp);
    let (p50, p90) = (
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.9),
    );
    println!("capture -> render callback through the relay: p50 {p50:.1} ms, p90 {p90:.1} ms ({} frames)", numbers.len());
    assert!(p50 < 50.0, "p50 {p50} ms on loopback");

    // Muted video sends nothing; unmuted, it comes back.
    anchor
        .mute_publish_stream_video(true, PublishChannel::Main)
        .unwrap();
    settle(&audience_events);
    let mut during_mute = 0;
    collect(&audience_events, Duration::from_millis(700), |seen| {
        if matches!(seen.event, Event::RemoteVideoFrame { .. }) {
            during_mute += 1;
        }
    });
    assert_eq!(
        during_mute, 0,
        "frames arrived while the anchor's video was muted"
    );
    anchor
        .mute_publish_stream_video(false, PublishChannel::Main)
        .unwrap();
    wait_for(&audience_events, "video after unmute", t, |e| {
        matches!(e, Event::RemoteVideoFrame { .. })
    });

    // Volume 0 plays silence; a muted stream delivers no audio.
    audience.set_play_volume("media-stream", 0).unwrap();
    settle(&audience_events);
    let seen = wait_for(&audience_events, "audio at volume 0", t, |e| {
        matches!(e, Event::RemoteAudioFrame { .. })
    });
    let Event::RemoteAudioFrame { frame, .. } = seen.event else {
        unreachable!()
    };
    assert!(frame.samples.iter().all(|&s| s == 0));
    audience
        .mute_play_stream_audio("media-stream", true)
        .unwrap();
    settle(&audience_events);
    let mut muted_audio = 0;
    collect(&audience_events, Duration::from_millis(500), |seen| {
        if matches!(seen.event, Event::RemoteAudioFrame { .. }) {
            muted_audio += 1;
        }
    });
    assert_eq!(muted_audio, 0);

    let started = Instant::now();
    audience.destroy();
    anchor.destroy();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "destroy took {:?}",
        started.elapsed()
    );
    server.stop();
}
