//! The whole SDK flow through the Rust API against the embedded server: login, publish, the stream-added event,
//! play, decoded frames in order, stop, logout, destroy; and the ways it must not break.

mod flow_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_support::*;
use parking_lot::Mutex;
use zego_express::config::{
    EngineState, PlayerConfig, PlayerState, PublishChannel, PublisherState, RoomConfig,
    RoomStateChangedReason, StreamResourceMode, VideoConfig,
};
use zego_express::error;
use zego_express::event::Event;
use zego_express::Engine;
use zego_protocol::message::UpdateType;
use zego_server::{EmbeddedServer, ServerConfig};

const T: Duration = Duration::from_secs(10);

fn l3() -> PlayerConfig {
    PlayerConfig {
        resource_mode: StreamResourceMode::OnlyL3,
    }
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

fn publisher_state(stream: &str, state: PublisherState, code: u32) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::PublisherStateUpdate { stream_id, state: s, error_code, .. }
            if stream_id == stream && *s == state && *error_code == code)
    }
}

fn player_state(stream: &str, state: PlayerState, code: u32) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::PlayerStateUpdate { stream_id, state: s, error_code, .. }
            if stream_id == stream && *s == state && *error_code == code)
    }
}

fn stream_added(stream: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Add, streams, .. }
            if streams.iter().any(|s| s.stream_id == stream))
    }
}

fn publisher_states(rec: &Recorder, stream: &str) -> Vec<(PublisherState, u32)> {
    rec.events()
        .iter()
        .filter_map(|e| match e {
            Event::PublisherStateUpdate {
                stream_id,
                state,
                error_code,
                ..
            } if stream_id == stream => Some((*state, *error_code)),
            _ => None,
        })
        .collect()
}

fn player_states(rec: &Recorder, stream: &str) -> Vec<(PlayerState, u32)> {
    rec.events()
        .iter()
        .filter_map(|e| match e {
            Event::PlayerStateUpdate {
                stream_id,
                state,
                error_code,
                ..
            } if stream_id == stream => Some((*state, *error_code)),
            _ => None,
        })
        .collect()
}

/// Waits until `count` more frames of `stream` were rendered.
fn frames_arrive(rec: &Recorder, stream: &str, count: usize) {
    let start = rec.frame_count(stream);
    rec.wait_until(&format!("{count} frames of {stream}"), T, |r| {
        r.frame_count(stream) >= start + count
    });
}

/// An anchor publishing `stream` from the synthetic camera, logged in to `room`.
fn anchor(url: &str, room: &str, user_id: &str, stream: &str) -> (Engine, Recorder) {
    let (e, rec) = engine(url);
    e.login_room(room, user(user_id), RoomConfig::default())
        .unwrap();
    e.start_publishing(stream, PublishChannel::Main).unwrap();
    rec.wait_for(
        "publishing",
        T,
        publisher_state(stream, PublisherState::Publishing, 0),
    );
    (e, rec)
}

#[test]
fn publish_play_stop_logout_destroy() {
    let server = server();
    let (a, rec_a) = engine(server.ws_url());
    let (b, rec_b) = engine(server.ws_url());

    a.login_room("live", user("anchor"), RoomConfig::default())
        .unwrap();
    rec_a.wait_for("anchor logged in", T, logged_in);
    a.start_preview(PublishChannel::Main).unwrap();
    rec_a.wait_for("engine started", T, |e| {
        matches!(
            e,
            Event::EngineStateUpdate {
                state: EngineState::Start
            }
        )
    });
    rec_a.wait_for("first captured frame", T, |e| {
        matches!(e, Event::PublisherCapturedVideoFirstFrame { .. })
    });
    a.start_publishing("s1", PublishChannel::Main).unwrap();
    assert_eq!(
        a.start_publishing("s2", PublishChannel::Main),
        Err(error::PUBLISHER_CHANNEL_ALREADY_PUBLISHING)
    );
    rec_a.wait_for(
        "publishing",
        T,
        publisher_state("s1", PublisherState::Publishing, 0),
    );
    assert_eq!(
        publisher_states(&rec_a, "s1"),
        [
            (PublisherState::PublishRequesting, 0),
            (PublisherState::Publishing, 0)
        ]
    );
    assert!(
        rec_a.captured_frames() > 0,
        "the preview renders captured frames"
    );

    b.login_room("live", user("viewer"), RoomConfig::default())
        .unwrap();
    let added = rec_b.wait_for("the stream is announced", T, stream_added("s1"));
    match added {
        Event::RoomStreamUpdate { streams, .. } => assert_eq!(streams[0].user, user("anchor")),
        _ => unreachable!(),
    }
    b.start_playing("s1", l3()).unwrap();
    rec_b.wait_for("playing", T, player_state("s1", PlayerState::Playing, 0));
    rec_b.wait_for("first frame rendered", T, |e| {
        matches!(e, Event::PlayerRenderVideoFirstFrame { .. })
    });
    frames_arrive(&rec_b, "s1", 30);

    // Decoded frames carry the publisher's frame numbers and capture times, in order.
    let frames = rec_b.frames("s1");
    assert!(
        frames
            .windows(2)
            .all(|w| w[0].frame_number < w[1].frame_number),
        "frame numbers increase"
    );
    assert!(
        frames.iter().all(|f| f.capture_time_us > 0),
        "every frame's stamp is readable"
    );
    let last = frames.last().unwrap();
    assert_eq!((last.width, last.height), (640, 360));
    let latency_ms = last.rendered_us.saturating_sub(last.capture_time_us) as f64 / 1000.0;
    assert!(latency_ms < 1000.0, "glass-to-glass {latency_ms} ms");

    b.stop_playing("s1").unwrap();
    rec_b.wait_for("not playing", T, player_state("s1", PlayerState::NoPlay, 0));
    assert_eq!(b.stop_playing("s1"), Err(error::PLAYER_STREAM_NOT_PLAYED));
    a.stop_publishing(PublishChannel::Main).unwrap();
    rec_a.wait_for(
        "not publishing",
        T,
        publisher_state("s1", PublisherState::NoPublish, 0),
    );
    rec_b.wait_for("the stream is gone", T, |e| {
        matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Delete, extended_data, .. }
            if extended_data.contains("stream_delete_reason"))
    });
    a.stop_preview(PublishChannel::Main).unwrap();
    rec_a.wait_for("engine stopped", T, |e| {
        matches!(
            e,
            Event::EngineStateUpdate {
                state: EngineState::Stop
            }
        )
    });
    a.logout_room(None).unwrap();
    b.logout_room(Some("live")).unwrap();
    rec_a.wait_for("logged out", T, |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Logout,
                ..
            }
        )
    });
    let started = Instant::now();
    a.destroy();
    b.destroy();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "destroy took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_second_publisher_of_a_stream_id_is_refused() {
    let server = server();
    let (first, _rec_first) = anchor(server.ws_url(), "r", "first", "taken");
    let (second, rec_second) = engine(server.ws_url());
    second
        .login_room("r", user("second"), RoomConfig::default())
        .unwrap();
    second
        .start_publishing("taken", PublishChannel::Main)
        .unwrap();
    rec_second.wait_for(
        "refused",
        T,
        publisher_state(
            "taken",
            PublisherState::NoPublish,
            error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED,
        ),
    );
    assert_eq!(
        publisher_states(&rec_second, "taken"),
        [
            (PublisherState::PublishRequesting, 0),
            (
                PublisherState::NoPublish,
                error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED
            )
        ]
    );
    // The channel is free again.
    second
        .start_publishing("mine", PublishChannel::Main)
        .unwrap();
    rec_second.wait_for(
        "publishing its own",
        T,
        publisher_state("mine", PublisherState::Publishing, 0),
    );
    first.destroy();
    second.destroy();
}

#[test]
fn a_missing_stream_is_played_once_published_and_again_after_a_break() {
    let server = server();
    let (viewer, rec_v) = engine(server.ws_url());
    viewer
        .login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    viewer.start_playing("later", l3()).unwrap();
    rec_v.wait_for(
        "waiting",
        T,
        player_state(
            "later",
            PlayerState::PlayRequesting,
            error::PLAYER_STREAM_NOT_EXIST,
        ),
    );

    let (a, rec_a) = anchor(server.ws_url(), "r", "anchor", "later");
    rec_v.wait_for("playing", T, player_state("later", PlayerState::Playing, 0));
    frames_arrive(&rec_v, "later", 10);

    // The publisher goes away: the player waits for the stream again, and plays when it is back.
    let mark = rec_v.len();
    a.stop_publishing(PublishChannel::Main).unwrap();
    rec_v.wait_for_after(
        mark,
        "waiting again",
        T,
        player_state(
            "later",
            PlayerState::PlayRequesting,
            error::PLAYER_STREAM_NOT_EXIST,
        ),
    );
    let mark = rec_v.len();
    a.start_publishing("later", PublishChannel::Main).unwrap();
    rec_v.wait_for_after(
        mark,
        "playing again",
        T,
        player_state("later", PlayerState::Playing, 0),
    );
    frames_arrive(&rec_v, "later", 10);
    assert!(rec_a
        .events()
        .iter()
        .any(publisher_state("later", PublisherState::Publishing, 0)));
    a.destroy();
    viewer.destroy();
}

#[test]
fn the_aux_channel_publishes_a_second_stream() {
    let server = server();
    let (a, rec_a) = engine(server.ws_url());
    a.login_room("r", user("anchor"), RoomConfig::default())
        .unwrap();
    let small = VideoConfig {
        capture_width: 320,
        capture_height: 180,
        encode_width: 320,
        encode_height: 180,
        ..VideoConfig::default()
    };
    a.set_video_config(small, PublishChannel::Aux).unwrap();
    assert_eq!(a.video_config(PublishChannel::Aux), small);
    a.start_publishing("main", PublishChannel::Main).unwrap();
    a.start_publishing("aux", PublishChannel::Aux).unwrap();
    assert_eq!(
        a.start_publishing("main", PublishChannel::Third),
        Err(error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED)
    );
    rec_a.wait_for(
        "main publishing",
        T,
        publisher_state("main", PublisherState::Publishing, 0),
    );
    rec_a.wait_for(
        "aux publishing",
        T,
        publisher_state("aux", PublisherState::Publishing, 0),
    );

    let (v, rec_v) = engine(server.ws_url());
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing("main", l3()).unwrap();
    v.start_playing("aux", l3()).unwrap();
    frames_arrive(&rec_v, "main", 10);
    frames_arrive(&rec_v, "aux", 10);
    let aux = *rec_v.frames("aux").last().unwrap();
    assert_eq!((aux.width, aux.height), (320, 180));
    let main = *rec_v.frames("main").last().unwrap();
    assert_eq!((main.width, main.height), (640, 360));
    a.destroy();
    v.destroy();
}

#[test]
fn logout_stops_publishing_and_playing() {
    let server = server();
    let (a, rec_a) = anchor(server.ws_url(), "r", "anchor", "s");
    let (v, rec_v) = engine(server.ws_url());
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing("s", l3()).unwrap();
    rec_v.wait_for("playing", T, player_state("s", PlayerState::Playing, 0));
    v.logout_room(None).unwrap();
    rec_v.wait_for("no play", T, player_state("s", PlayerState::NoPlay, 0));
    rec_v.wait_for("engine stopped", T, |e| {
        matches!(
            e,
            Event::EngineStateUpdate {
                state: EngineState::Stop
            }
        )
    });
    a.logout_room(None).unwrap();
    rec_a.wait_for(
        "no publish",
        T,
        publisher_state("s", PublisherState::NoPublish, 0),
    );
    assert_eq!(a.stop_playing("s"), Err(error::PLAYER_STREAM_NOT_PLAYED));
    assert_eq!(
        a.start_publishing("s", PublishChannel::Main),
        Err(error::COMMON_NOT_LOGGED_IN)
    );
    a.destroy();
    v.destroy();
}

#[test]
fn destroy_while_streams_run_is_prompt() {
    let server = server();
    let (a, _rec_a) = anchor(server.ws_url(), "r", "anchor", "s");
    a.start_preview(PublishChannel::Main).unwrap();
    let (v, rec_v) = engine(server.ws_url());
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing("s", l3()).unwrap();
    frames_arrive(&rec_v, "s", 5);
    let started = Instant::now();
    v.destroy();
    a.destroy();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "destroy took {:?}",
        started.elapsed()
    );
    // Whatever was queued was delivered; nothing comes after destroy.
    let seen = rec_v.len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rec_v.len(), seen);
}

#[test]
fn the_api_works_from_inside_callbacks() {
    let server = server();
    let (a, _rec_a) = anchor(server.ws_url(), "r", "anchor", "s");

    let recorder = Recorder::default();
    let slot: Arc<Mutex<Option<Engine>>> = Arc::new(Mutex::new(None));
    let destroyed_in_callback = Arc::new(AtomicBool::new(false));
    let played_from_callback = Arc::new(AtomicBool::new(false));
    recorder.set_hook({
        let slot = slot.clone();
        let destroyed = destroyed_in_callback.clone();
        let played = played_from_callback.clone();
        move |event| match event {
            // Play what is announced, from the announcement itself.
            Event::RoomStreamUpdate {
                update_type: UpdateType::Add,
                streams,
                ..
            } => {
                if let Some(engine) = slot.lock().as_ref() {
                    for s in streams {
                        engine.start_playing(&s.stream_id, l3()).unwrap();
                        played.store(true, Ordering::SeqCst);
                    }
                }
            }
            // And destroy the engine from the first rendered frame.
            Event::PlayerRenderVideoFirstFrame { .. } => {
                let engine = slot.lock().take();
                if let Some(engine) = engine {
                    engine.destroy();
                    destroyed.store(true, Ordering::SeqCst);
                }
            }
            _ => {}
        }
    });
    // The engine is in the slot before anything can be announced.
    *slot.lock() = Some(Engine::create(profile(server.ws_url()), recorder.sink()).unwrap());
    slot.lock()
        .as_ref()
        .unwrap()
        .login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    recorder.wait_until("destroyed from a callback", T, |_| {
        destroyed_in_callback.load(Ordering::SeqCst)
    });
    assert!(played_from_callback.load(Ordering::SeqCst));
    assert!(slot.lock().is_none());
    a.destroy();
}

#[test]
fn two_engines_publish_and_play_each_other() {
    let server = server();
    let (a, rec_a) = anchor(server.ws_url(), "call", "alice", "alice-cam");
    let (b, rec_b) = anchor(server.ws_url(), "call", "bob", "bob-cam");
    a.start_playing("bob-cam", l3()).unwrap();
    b.start_playing("alice-cam", l3()).unwrap();
    frames_arrive(&rec_a, "bob-cam", 15);
    frames_arrive(&rec_b, "alice-cam", 15);
    // Destroying one leaves the other working.
    b.destroy();
    rec_a.wait_for("bob's stream ends", T, |e| {
        matches!(
            e,
            Event::RoomStreamUpdate {
                update_type: UpdateType::Delete,
                ..
            }
        )
    });
    let (c, rec_c) = engine(server.ws_url());
    c.login_room("call", user("carol"), RoomConfig::default())
        .unwrap();
    c.start_playing("alice-cam", l3()).unwrap();
    frames_arrive(&rec_c, "alice-cam", 10);
    a.destroy();
    c.destroy();
}

#[test]
fn streams_come_back_after_the_server_restarts() {
    init_logging();
    let server = EmbeddedServer::start(ServerConfig::default()).unwrap();
    let (http, media) = (server.http_addr(), server.media_addr());
    let url = server.ws_url().to_owned();
    let (a, rec_a) = anchor(&url, "r", "anchor", "s");
    let (v, rec_v) = engine(&url);
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing("s", l3()).unwrap();
    frames_arrive(&rec_v, "s", 5);

    server.stop();
    rec_a.wait_for("anchor reconnecting", T, |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Reconnecting,
                ..
            }
        )
    });
    let (mark_a, mark_v) = (rec_a.len(), rec_v.len());
    let server = EmbeddedServer::start(ServerConfig {
        listen: http,
        media_bind: media,
        ..ServerConfig::default()
    })
    .unwrap();
    rec_a.wait_for_after(mark_a, "anchor reconnected", T, |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Reconnected,
                ..
            }
        )
    });
    // The new server knows nothing: the SDK publishes and plays again by itself.
    rec_a.wait_for_after(
        mark_a,
        "publishing again",
        T,
        publisher_state("s", PublisherState::Publishing, 0),
    );
    rec_v.wait_for_after(
        mark_v,
        "playing again",
        T,
        player_state("s", PlayerState::Playing, 0),
    );
    frames_arrive(&rec_v, "s", 10);
    a.destroy();
    v.destroy();
    server.stop();
}

#[test]
fn a_player_survives_a_cut_signaling_connection() {
    let server = server();
    let relay = TcpRelay::start(server.http_addr());
    let (a, _rec_a) = anchor(server.ws_url(), "r", "anchor", "s");
    let (v, rec_v) = engine(&relay.ws_url());
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing("s", l3()).unwrap();
    frames_arrive(&rec_v, "s", 5);
    relay.cut();
    rec_v.wait_for("reconnecting", T, |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Reconnecting,
                ..
            }
        )
    });
    rec_v.wait_for("reconnected", T, |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Reconnected,
                ..
            }
        )
    });
    // The session was resumed: the media path never stopped and the play stayed as it was.
    frames_arrive(&rec_v, "s", 10);
    assert_eq!(
        player_states(&rec_v, "s"),
        [(PlayerState::PlayRequesting, 0), (PlayerState::Playing, 0)]
    );
    a.destroy();
    v.destroy();
}

#[test]
fn publishing_needs_the_tokens_publish_privilege() {
    let server = server();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let privilege = zego_protocol::token04::Privilege {
        room_id: "r".into(),
        login_room: true,
        publish: false,
        stream_id_list: None,
    };
    let claims = zego_protocol::token04::Claims {
        app_id: zego_server::DEV_APP_ID,
        user_id: "watcher".into(),
        nonce: 7,
        ctime: now,
        expire: now + 3600,
        payload: privilege.to_payload(),
    };
    let token = zego_protocol::token04::generate(
        zego_server::DEV_SERVER_SECRET,
        &claims,
        zego_protocol::token04::Mode::Gcm,
        None,
    )
    .unwrap();
    let (e, rec) = engine(server.ws_url());
    e.login_room(
        "r",
        user("watcher"),
        RoomConfig {
            token,
            ..RoomConfig::default()
        },
    )
    .unwrap();
    e.start_publishing("not-allowed", PublishChannel::Main)
        .unwrap();
    rec.wait_for(
        "refused",
        T,
        publisher_state(
            "not-allowed",
            PublisherState::NoPublish,
            error::PUBLISHER_AUTH_FAILED,
        ),
    );
    e.destroy();
}

#[test]
fn a_broken_media_path_is_repaired_by_publishing_and_playing_again() {
    use zego_netsim::{Direction, Impairment, NetSim};
    init_logging();
    // Media goes through an impairment relay the test can black out; signaling stays direct.
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
        .block_on(NetSim::new("127.0.0.1:0".parse().unwrap(), media_port).start())
        .unwrap();
    let server = EmbeddedServer::start(ServerConfig {
        media_bind: media_port,
        media_announce: Some(netsim.local_addr()),
        ..ServerConfig::default()
    })
    .unwrap();
    let (a, rec_a) = anchor(server.ws_url(), "r", "anchor", "s");
    let (v, rec_v) = engine(server.ws_url());
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing("s", l3()).unwrap();
    frames_arrive(&rec_v, "s", 5);

    let blackout: Impairment = "loss=100%".parse().unwrap();
    netsim
        .set_impairment(Direction::Up, blackout.clone())
        .unwrap();
    netsim.set_impairment(Direction::Down, blackout).unwrap();
    rec_a.wait_for(
        "the publisher retries",
        T,
        publisher_state(
            "s",
            PublisherState::PublishRequesting,
            error::PUBLISHER_NETWORK_INTERRUPTED_RETRYING,
        ),
    );
    // The player notices its own path is down, or hears first that the relay gave the publisher up for lost (the
    // stream is deleted, and the play waits for it to come back).
    rec_v.wait_for("the player retries or waits", T, |e| {
        player_state(
            "s",
            PlayerState::PlayRequesting,
            error::PLAYER_NETWORK_INTERRUPTED,
        )(e) || player_state(
            "s",
            PlayerState::PlayRequesting,
            error::PLAYER_STREAM_NOT_EXIST,
        )(e)
    });
    let (mark_a, mark_v) = (rec_a.len(), rec_v.len());
    netsim
        .set_impairment(Direction::Up, Impairment::default())
        .unwrap();
    netsim
        .set_impairment(Direction::Down, Impairment::default())
        .unwrap();
    rec_a.wait_for_after(
        mark_a,
        "publishing again",
        T,
        publisher_state("s", PublisherState::Publishing, 0),
    );
    rec_v.wait_for_after(
        mark_v,
        "playing again",
        T,
        player_state("s", PlayerState::Playing, 0),
    );
    frames_arrive(&rec_v, "s", 10);
    a.destroy();
    v.destroy();
    server.stop();
    runtime.block_on(netsim.shutdown());
}
