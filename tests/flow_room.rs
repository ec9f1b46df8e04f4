//! The room session through the Rust API, against the embedded server: login, room events, IM, codes, kicks,
//! and surviving broken connections.

mod flow_support;

use std::time::Duration;

use flow_support::*;
use zego_express::config::{
    EngineProfile, PlayerConfig, PublishChannel, RoomConfig, RoomState, RoomStateChangedReason,
    Scenario, StreamResourceMode,
};
use zego_express::error;
use zego_express::event::Event;
use zego_express::Engine;
use zego_protocol::message::UpdateType;
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID};

const T: Duration = Duration::from_secs(10);

fn changed(reason: RoomStateChangedReason) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::RoomStateChanged { reason: r, .. } if *r == reason)
}

fn reasons(recorder: &Recorder) -> Vec<(RoomStateChangedReason, u32)> {
    recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::RoomStateChanged {
                reason, error_code, ..
            } => Some((*reason, *error_code)),
            _ => None,
        })
        .collect()
}

#[test]
fn create_checks_the_profile() {
    let sink = Recorder::default().sink();
    let with = |app_id, app_sign: &str, server: &str| {
        let profile = EngineProfile {
            app_id,
            app_sign: app_sign.into(),
            scenario: Scenario::Default,
            server: server.into(),
        };
        Engine::create(profile, sink.clone()).map(|e| e.destroy())
    };
    let sign = zego_server::DEV_APP_SIGN;
    assert_eq!(
        with(0, sign, "ws://127.0.0.1:1/ws"),
        Err(error::ENGINE_APP_ID_INCORRECT)
    );
    assert_eq!(
        with(1, "abc", "ws://127.0.0.1:1/ws"),
        Err(error::ENGINE_APP_SIGN_INCORRECT)
    );
    assert_eq!(
        with(1, &"g".repeat(64), "ws://127.0.0.1:1/ws"),
        Err(error::ENGINE_APP_SIGN_INCORRECT)
    );
    assert_eq!(
        with(1, sign, "127.0.0.1:1"),
        Err(error::ENGINE_SERVER_ADDRESS_INVALID)
    );
    assert_eq!(
        with(1, sign, "ws://127.0.0.1/ws"),
        Err(error::ENGINE_SERVER_ADDRESS_INVALID)
    );
    assert_eq!(with(1, "", "ws://127.0.0.1:1/ws"), Ok(()));
    assert_eq!(with(1, sign, "ws://127.0.0.1:1/ws"), Ok(()));
}

#[test]
fn login_tells_the_room_and_logout_leaves_it() {
    let server = server();
    let (a, rec_a) = engine(server.ws_url());
    let (b, rec_b) = engine(server.ws_url());
    a.login_room("room-1", user("alice"), notify_users())
        .unwrap();
    rec_a.wait_for(
        "alice logged in",
        T,
        changed(RoomStateChangedReason::Logined),
    );
    assert_eq!(
        reasons(&rec_a),
        [
            (RoomStateChangedReason::Logining, 0),
            (RoomStateChangedReason::Logined, 0)
        ]
    );
    let states: Vec<RoomState> = rec_a
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::RoomStateUpdate { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(states, [RoomState::Connecting, RoomState::Connected]);
    let key_seq = a.set_room_extra_info("room-1", "topic", "cats").unwrap();
    rec_a.wait_for("extra info set", T, |e| {
        matches!(e, Event::RoomSetRoomExtraInfoResult { error_code: 0, seq, key, .. } if *seq == key_seq && key == "topic")
    });

    b.login_room("room-1", user("bob"), notify_users()).unwrap();
    rec_b.wait_for("bob logged in", T, changed(RoomStateChangedReason::Logined));
    // Bob's first user list is everyone else; he never hears of himself.
    let first = rec_b.wait_for("bob's first user list", T, |e| {
        matches!(e, Event::RoomUserUpdate { .. })
    });
    match first {
        Event::RoomUserUpdate {
            update_type: UpdateType::Add,
            users,
            room_id,
        } => {
            assert_eq!(room_id, "room-1");
            assert_eq!(users, [user("alice")]);
        }
        other => panic!("{other:?}"),
    }
    rec_b.wait_for("the room extra info", T, |e| {
        matches!(e, Event::RoomExtraInfoUpdate { infos, .. } if infos[0].key == "topic" && infos[0].value == "cats")
    });
    rec_a.wait_for("alice hears bob", T, |e| {
        matches!(e, Event::RoomUserUpdate { update_type: UpdateType::Add, users, .. } if users == &[user("bob")])
    });

    // IM both ways.
    let seq = b.send_broadcast_message("room-1", "hello all").unwrap();
    rec_b.wait_for("broadcast result", T, |e| {
        matches!(e, Event::ImSendBroadcastMessageResult { error_code: 0, seq: s, message_id, .. } if *s == seq && *message_id > 0)
    });
    rec_a.wait_for("alice gets the broadcast", T, |e| {
        matches!(e, Event::ImRecvBroadcastMessage { messages, .. }
            if messages[0].message == "hello all" && messages[0].from_user == user("bob"))
    });
    let seq = a
        .send_custom_command("room-1", "ping", &["bob".to_owned()])
        .unwrap();
    rec_a.wait_for("command result", T, |e| matches!(e, Event::ImSendCustomCommandResult { error_code: 0, seq: s, .. } if *s == seq));
    rec_b.wait_for("bob gets the command", T, |e| {
        matches!(e, Event::ImRecvCustomCommand { command, from_user, .. } if command == "ping" && from_user == &user("alice"))
    });

    b.logout_room(None).unwrap();
    rec_b.wait_for("bob logged out", T, changed(RoomStateChangedReason::Logout));
    rec_a.wait_for("alice hears bob leave", T, |e| {
        matches!(e, Event::RoomUserUpdate { update_type: UpdateType::Delete, users, .. } if users == &[user("bob")])
    });
    // Logged out, bob may log in again.
    b.login_room("room-2", user("bob"), RoomConfig::default())
        .unwrap();
    rec_b.wait_for_after(0, "bob in room-2", T, |e| {
        matches!(e, Event::RoomStateChanged { room_id, reason: RoomStateChangedReason::Logined, .. } if room_id == "room-2")
    });
    a.destroy();
    b.destroy();
}

#[test]
fn calls_are_checked_before_anything_is_sent() {
    let server = server();
    let (a, rec) = engine(server.ws_url());
    assert_eq!(
        a.start_publishing("s1", PublishChannel::Main),
        Err(error::COMMON_NOT_LOGGED_IN)
    );
    assert_eq!(
        a.start_playing("s1", PlayerConfig::default()),
        Err(error::COMMON_NOT_LOGGED_IN)
    );
    assert_eq!(
        a.send_broadcast_message("r", "hi"),
        Err(error::IM_WRONG_ROOM)
    );
    assert_eq!(
        a.login_room("", user("u"), RoomConfig::default()),
        Err(error::ROOM_ROOM_ID_NULL)
    );
    assert_eq!(
        a.login_room("a b", user("u"), RoomConfig::default()),
        Err(error::ROOM_ROOM_ID_INVALID_CHARACTER)
    );
    assert_eq!(
        a.login_room("r", user(&"u".repeat(65)), RoomConfig::default()),
        Err(error::ROOM_USER_ID_TOO_LONG)
    );

    a.login_room("r", user("u"), RoomConfig::default()).unwrap();
    assert_eq!(
        a.login_room("r2", user("u"), RoomConfig::default()),
        Err(error::ROOM_COUNT_EXCEED)
    );
    assert_eq!(
        a.send_broadcast_message("other", "hi"),
        Err(error::IM_WRONG_ROOM)
    );
    assert_eq!(
        a.send_broadcast_message("r", ""),
        Err(error::IM_CONTENT_NULL)
    );
    assert_eq!(
        a.send_broadcast_message("r", &"m".repeat(1025)),
        Err(error::IM_CONTENT_TOO_LONG)
    );
    assert_eq!(
        a.send_custom_command("r", &"m".repeat(1025), &[]),
        Err(error::IM_CONTENT_TOO_LONG)
    );
    assert_eq!(
        a.set_room_extra_info("r", "", "v"),
        Err(error::ROOM_EXTRA_INFO_KEY_TOO_LONG)
    );
    assert_eq!(
        a.set_room_extra_info("other", "k", "v"),
        Err(error::ROOM_NOT_LOGGED_IN_THAT_ROOM)
    );
    assert_eq!(
        a.set_stream_extra_info(&"x".repeat(1025), PublishChannel::Main),
        Err(error::PUBLISHER_EXTRA_INFO_TOO_LONG)
    );
    assert_eq!(
        a.start_publishing("", PublishChannel::Main),
        Err(error::COMMON_STREAM_ID_NULL)
    );
    assert_eq!(
        a.start_publishing("a b", PublishChannel::Main),
        Err(error::COMMON_STREAM_ID_INVALID_CHARACTER)
    );
    assert_eq!(
        a.start_publishing(&"s".repeat(257), PublishChannel::Main),
        Err(error::COMMON_STREAM_ID_TOO_LONG)
    );
    let cdn = PlayerConfig {
        resource_mode: StreamResourceMode::OnlyCdn,
    };
    assert_eq!(
        a.start_playing("s1", cdn),
        Err(error::PLAYER_RESOURCE_MODE_UNSUPPORTED)
    );
    assert_eq!(
        a.stop_playing("never-played"),
        Err(error::PLAYER_STREAM_NOT_PLAYED)
    );
    assert_eq!(
        a.set_play_volume("never-played", 50),
        Err(error::PLAYER_STREAM_NOT_PLAYED)
    );
    assert_eq!(
        a.logout_room(Some("other")),
        Err(error::ROOM_NOT_LOGGED_IN_THAT_ROOM)
    );
    assert_eq!(a.renew_token("r", ""), Err(error::ROOM_TOKEN_FORMAT_ERROR));
    rec.wait_for("logged in", T, changed(RoomStateChangedReason::Logined));
    a.destroy();
}

#[test]
fn a_wrong_app_sign_fails_the_login() {
    let server = server();
    let recorder = Recorder::default();
    let mut profile = profile(server.ws_url());
    profile.app_sign = "ff".repeat(32);
    let engine = Engine::create(profile, recorder.sink()).unwrap();
    engine
        .login_room("r", user("u"), RoomConfig::default())
        .unwrap();
    recorder.wait_for(
        "login failed",
        T,
        changed(RoomStateChangedReason::LoginFailed),
    );
    let reasons = reasons(&recorder);
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[1].0, RoomStateChangedReason::LoginFailed);
    assert!(
        [
            error::ENGINE_APP_SIGN_INCORRECT,
            error::ROOM_AUTHENTICATION_FAILED
        ]
        .contains(&reasons[1].1),
        "refused with {}",
        reasons[1].1
    );
    // The failed room is gone: another login is allowed.
    assert_eq!(
        engine.login_room("r", user("u"), RoomConfig::default()),
        Ok(())
    );
    engine.destroy();
}

#[test]
fn an_unreachable_server_fails_with_connect_failed() {
    init_logging();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (engine, recorder) = engine(&format!("ws://127.0.0.1:{port}/ws"));
    engine
        .login_room("r", user("u"), RoomConfig::default())
        .unwrap();
    recorder.wait_for(
        "login failed",
        T,
        changed(RoomStateChangedReason::LoginFailed),
    );
    assert_eq!(
        reasons(&recorder)[1],
        (
            RoomStateChangedReason::LoginFailed,
            error::ROOM_CONNECT_FAILED
        )
    );
    engine.destroy();
}

#[test]
fn the_same_user_elsewhere_kicks_the_first_out() {
    let server = server();
    let (first, rec_first) = engine(server.ws_url());
    let (second, rec_second) = engine(server.ws_url());
    first
        .login_room("r", user("same"), RoomConfig::default())
        .unwrap();
    rec_first.wait_for("first in", T, changed(RoomStateChangedReason::Logined));
    second
        .login_room("r", user("same"), RoomConfig::default())
        .unwrap();
    rec_second.wait_for("second in", T, changed(RoomStateChangedReason::Logined));
    rec_first.wait_for("first kicked", T, changed(RoomStateChangedReason::KickOut));
    assert_eq!(
        reasons(&rec_first).last(),
        Some(&(
            RoomStateChangedReason::KickOut,
            error::ROOM_KICKED_OUT_SAME_USER
        ))
    );
    rec_first.wait_for("disconnected", T, |e| {
        matches!(
            e,
            Event::RoomStateUpdate {
                state: RoomState::Disconnected,
                ..
            }
        )
    });
    // Kicked out means out: no reconnecting.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!reasons(&rec_first)
        .iter()
        .any(|(r, _)| *r == RoomStateChangedReason::Reconnecting));
    first.destroy();
    second.destroy();
}

#[test]
fn a_cut_connection_resumes_the_session_and_reports_what_changed() {
    let server = server();
    let relay = TcpRelay::start(server.http_addr());
    let (a, rec_a) = engine(&relay.ws_url());
    let (b, rec_b) = engine(server.ws_url());
    a.login_room("r", user("alice"), notify_users()).unwrap();
    rec_a.wait_for("alice in", T, changed(RoomStateChangedReason::Logined));

    // The network goes away; while it is away, bob arrives and sets the room's extra info.
    relay.set_open(false);
    relay.cut();
    rec_a.wait_for(
        "reconnecting",
        T,
        changed(RoomStateChangedReason::Reconnecting),
    );
    assert!(reasons(&rec_a).contains(&(
        RoomStateChangedReason::Reconnecting,
        error::ROOM_CONNECTION_BROKEN_RETRYING
    )));
    b.login_room("r", user("bob"), notify_users()).unwrap();
    rec_b.wait_for("bob in", T, changed(RoomStateChangedReason::Logined));
    b.set_room_extra_info("r", "k", "v").unwrap();
    rec_b.wait_for("set", T, |e| {
        matches!(e, Event::RoomSetRoomExtraInfoResult { error_code: 0, .. })
    });

    relay.set_open(true);
    rec_a.wait_for(
        "reconnected",
        T,
        changed(RoomStateChangedReason::Reconnected),
    );
    // What happened meanwhile arrives as increments.
    rec_a.wait_for("bob, as an increment", T, |e| {
        matches!(e, Event::RoomUserUpdate { update_type: UpdateType::Add, users, .. } if users == &[user("bob")])
    });
    rec_a.wait_for(
        "the extra info, as an increment",
        T,
        |e| matches!(e, Event::RoomExtraInfoUpdate { infos, .. } if infos[0].value == "v"),
    );
    // The session was resumed: bob never saw alice leave.
    assert!(!rec_b.events().iter().any(|e| matches!(
        e,
        Event::RoomUserUpdate {
            update_type: UpdateType::Delete,
            ..
        }
    )));
    // And the room works again both ways.
    a.send_broadcast_message("r", "back").unwrap();
    rec_b.wait_for("bob gets it", T, |e| matches!(e, Event::ImRecvBroadcastMessage { messages, .. } if messages[0].message == "back"));
    a.destroy();
    b.destroy();
}

#[test]
fn a_restarted_server_gets_a_new_session() {
    init_logging();
    let config = ServerConfig {
        heartbeat_interval: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let server = EmbeddedServer::start(config.clone()).unwrap();
    let (http, media) = (server.http_addr(), server.media_addr());
    let url = server.ws_url().to_owned();
    let (a, rec_a) = engine(&url);
    a.login_room("r", user("alice"), RoomConfig::default())
        .unwrap();
    rec_a.wait_for("in", T, changed(RoomStateChangedReason::Logined));
    server.stop();
    rec_a.wait_for(
        "reconnecting",
        T,
        changed(RoomStateChangedReason::Reconnecting),
    );
    let server = EmbeddedServer::start(ServerConfig {
        listen: http,
        media_bind: media,
        ..config
    })
    .unwrap();
    rec_a.wait_for(
        "reconnected",
        T,
        changed(RoomStateChangedReason::Reconnected),
    );
    let (b, rec_b) = engine(server.ws_url());
    b.login_room("r", user("bob"), notify_users()).unwrap();
    // Alice is a member of the new server's room.
    rec_b.wait_for("bob sees alice", T, |e| {
        matches!(e, Event::RoomUserUpdate { update_type: UpdateType::Add, users, .. } if users == &[user("alice")])
    });
    a.destroy();
    b.destroy();
}

#[test]
fn reconnecting_gives_up_after_the_window() {
    let server = server();
    let relay = TcpRelay::start(server.http_addr());
    let (a, rec) = engine(&relay.ws_url());
    a.set_reconnect_window(Duration::from_secs(2)).unwrap();
    a.login_room("r", user("alice"), RoomConfig::default())
        .unwrap();
    rec.wait_for("in", T, changed(RoomStateChangedReason::Logined));
    relay.set_open(false);
    relay.cut();
    rec.wait_for(
        "reconnecting",
        T,
        changed(RoomStateChangedReason::Reconnecting),
    );
    let started = std::time::Instant::now();
    rec.wait_for(
        "gave up",
        T,
        changed(RoomStateChangedReason::ReconnectFailed),
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up after {:?}",
        started.elapsed()
    );
    assert_eq!(
        reasons(&rec).last(),
        Some(&(
            RoomStateChangedReason::ReconnectFailed,
            error::ROOM_RECONNECT_RETRY_TIMEOUT
        ))
    );
    rec.wait_for("disconnected", T, |e| {
        matches!(e, Event::RoomStateUpdate { state: RoomState::Disconnected, error_code, .. } if *error_code == error::ROOM_RECONNECT_RETRY_TIMEOUT)
    });
    // Out of the room: a new login is allowed.
    relay.set_open(true);
    let mark = rec.len();
    a.login_room("r", user("alice"), RoomConfig::default())
        .unwrap();
    rec.wait_for_after(
        mark,
        "in again",
        T,
        changed(RoomStateChangedReason::Logined),
    );
    a.destroy();
}

#[test]
fn several_engines_in_one_process_are_independent() {
    let server = server();
    let engines: Vec<(Engine, Recorder)> = (0..3).map(|_| engine(server.ws_url())).collect();
    for (i, (e, _)) in engines.iter().enumerate() {
        e.login_room(
            &format!("room-{i}"),
            user(&format!("user-{i}")),
            RoomConfig::default(),
        )
        .unwrap();
    }
    for (_, rec) in &engines {
        rec.wait_for("in", T, changed(RoomStateChangedReason::Logined));
    }
    let mut engines = engines.into_iter();
    let (first, _) = engines.next().unwrap();
    first.destroy();
    // The others are unaffected.
    for (i, (e, rec)) in engines.enumerate() {
        let seq = e
            .send_broadcast_message(&format!("room-{}", i + 1), "still here")
            .unwrap();
        rec.wait_for("sent", T, |ev| matches!(ev, Event::ImSendBroadcastMessageResult { error_code: 0, seq: s, .. } if *s == seq));
        e.destroy();
    }
    let _ = DEV_APP_ID;
}

#[test]
fn a_silent_connection_is_found_by_its_heartbeats() {
    init_logging();
    let config = ServerConfig {
        heartbeat_interval: Duration::from_millis(300),
        heartbeat_timeout: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let server = EmbeddedServer::start(config).unwrap();
    let relay = TcpRelay::start(server.http_addr());
    let (a, rec) = engine(&relay.ws_url());
    a.login_room("r", user("alice"), RoomConfig::default())
        .unwrap();
    rec.wait_for("in", T, changed(RoomStateChangedReason::Logined));
    // Nothing closes: the path just stops carrying anything.
    relay.freeze();
    let frozen = std::time::Instant::now();
    rec.wait_for(
        "reconnecting",
        T,
        changed(RoomStateChangedReason::Reconnecting),
    );
    let noticed = frozen.elapsed();
    // Two heartbeat intervals and a margin, not the server's 10 s timeout.
    assert!(
        noticed < Duration::from_secs(3),
        "noticed after {noticed:?}"
    );
    rec.wait_for(
        "reconnected",
        T,
        changed(RoomStateChangedReason::Reconnected),
    );
    a.destroy();
}

#[test]
fn a_login_without_a_reply_times_out() {
    init_logging();
    // A WebSocket server that accepts and then says nothing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let mute = std::thread::spawn(move || {
        runtime.block_on(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            tokio::time::sleep(Duration::from_secs(15)).await;
            drop(ws);
        })
    });
    let (engine, recorder) = engine(&format!("ws://127.0.0.1:{port}/ws"));
    engine
        .login_room("r", user("u"), RoomConfig::default())
        .unwrap();
    let started = std::time::Instant::now();
    recorder.wait_for(
        "login failed",
        Duration::from_secs(15),
        changed(RoomStateChangedReason::LoginFailed),
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "gave up after {:?}",
        started.elapsed()
    );
    assert_eq!(
        reasons(&recorder)[1],
        (
            RoomStateChangedReason::LoginFailed,
            error::ROOM_LOGIN_TIMEOUT
        )
    );
    engine.destroy();
    drop(mute);
}

fn token(user_id: &str, lifetime_s: i64, payload: String) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = zego_protocol::token04::Claims {
        app_id: DEV_APP_ID,
        user_id: user_id.into(),
        nonce: rand::random::<i32>() as i64,
        ctime: now,
        expire: now + lifetime_s,
        payload,
    };
    zego_protocol::token04::generate(
        zego_server::DEV_SERVER_SECRET,
        &claims,
        zego_protocol::token04::Mode::Gcm,
        None,
    )
    .unwrap()
}

#[test]
fn tokens_log_in_warn_before_they_expire_and_renew() {
    let server = server();
    let recorder = Recorder::default();
    // No app_sign at all: every login brings a token.
    let mut profile = profile(server.ws_url());
    profile.app_sign.clear();
    let e = Engine::create(profile, recorder.sink()).unwrap();
    assert_eq!(
        e.login_room("r", user("u"), RoomConfig::default()),
        Err(error::ROOM_NO_TOKEN_NO_APP_SIGN)
    );

    // Someone else's token is refused.
    let config = |token: String| RoomConfig {
        token,
        ..RoomConfig::default()
    };
    e.login_room("r", user("u"), config(token("other", 3600, String::new())))
        .unwrap();
    recorder.wait_for("refused", T, changed(RoomStateChangedReason::LoginFailed));
    assert_eq!(
        reasons(&recorder)[1],
        (
            RoomStateChangedReason::LoginFailed,
            error::ROOM_TOKEN_USER_ID_ERROR
        )
    );

    // A token that expires within the server's notice period is warned about at once.
    e.login_room("r", user("u"), config(token("u", 20, String::new())))
        .unwrap();
    recorder.wait_for("in", T, changed(RoomStateChangedReason::Logined));
    recorder.wait_for(
        "will expire",
        T,
        |e| matches!(e, Event::RoomTokenWillExpire { remain_seconds, .. } if *remain_seconds <= 20),
    );
    assert_eq!(
        e.renew_token("other-room", &token("u", 3600, String::new())),
        Err(error::ROOM_NOT_LOGGED_IN_THAT_ROOM)
    );
    e.renew_token("r", &token("u", 3600, String::new()))
        .unwrap();
    // What is not a Token04 at all is refused at once, with the code the server would give.
    assert_eq!(
        e.renew_token("r", "garbage"),
        Err(error::ROOM_TOKEN_VERSION_ERROR)
    );
    assert_eq!(
        e.renew_token("r", "04garbage!"),
        Err(error::ROOM_TOKEN_FORMAT_ERROR)
    );
    // A bad renewal is reported as a debug error with the server's code.
    e.renew_token("r", &token("someone-else", 3600, String::new()))
        .unwrap();
    recorder.wait_for("bad renewal reported", T, |e| {
        matches!(e, Event::DebugError { code, func_name, .. } if *code == error::ROOM_TOKEN_USER_ID_ERROR && func_name == "renew_token")
    });
    assert_eq!(
        recorder
            .events()
            .iter()
            .filter(|e| matches!(e, Event::DebugError { .. }))
            .count(),
        1,
        "the good renewal reports nothing"
    );
    e.destroy();
}

#[tokio::test]
async fn destroy_works_inside_an_async_runtime() {
    let server = server();
    let (a, rec) = engine(server.ws_url());
    a.login_room("r", user("u"), RoomConfig::default()).unwrap();
    let rec2 = rec.clone();
    tokio::task::spawn_blocking(move || {
        rec2.wait_for("in", T, changed(RoomStateChangedReason::Logined))
    })
    .await
    .unwrap();
    // On a runtime thread (here a current-thread runtime's only thread): no panic, no deadlock.
    a.destroy();
    drop(server);
}
