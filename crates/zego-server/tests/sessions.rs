//! Keeping sessions: heartbeat timeouts, resuming after a broken connection, token expiry and renewal.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zego_protocol::error;
use zego_protocol::message::{ClientMessage, Credentials, ReplyResult, ServerMessage, UpdateType};
use zego_server::{ServerConfig, DEV_APP_ID};

fn short_heartbeats() -> ServerConfig {
    ServerConfig {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(800),
        ..ServerConfig::default()
    }
}

/// Heartbeats every 100 ms until `until`, handing over every event that arrives meanwhile.
async fn keep_alive_until(
    client: &mut Client,
    until: impl Fn(&ServerMessage) -> bool,
    limit: Duration,
) -> Vec<ServerMessage> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "gave up waiting; saw {seen:?}");
        let reply = client.heartbeat().await;
        assert_eq!(reply.code, 0);
        while let Ok(Some(msg)) = client.next_within(Duration::from_millis(100)).await {
            let done = until(&msg);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_is_removed_after_the_heartbeat_timeout() {
    let server = start(short_heartbeats()).await;
    let url = server.ws_url();
    let (gone, _) = Client::join(&url, "gone", "room").await;
    let (mut watcher, result) = Client::join(&url, "watcher", "room").await;
    let ReplyResult::Login {
        heartbeat_interval_ms,
        heartbeat_timeout_ms,
        ..
    } = result
    else {
        panic!()
    };
    assert_eq!((heartbeat_interval_ms, heartbeat_timeout_ms), (100, 800));

    // The connection drops without a logout: the session lingers (it may resume) until the timeout.
    let dropped_at = Instant::now();
    drop(gone);
    let seen = keep_alive_until(
        &mut watcher,
        |m| {
            matches!(
                m,
                ServerMessage::UserUpdate {
                    update_type: UpdateType::Delete,
                    ..
                }
            )
        },
        Duration::from_secs(5),
    )
    .await;
    let waited = dropped_at.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "removed after {waited:?}, before the timeout"
    );
    assert_eq!(
        seen.last(),
        Some(&ServerMessage::UserUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Delete,
            users: vec![user("gone")]
        })
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_but_silent_client_is_removed_and_disconnected() {
    let server = start(short_heartbeats()).await;
    let (mut silent, _) = Client::join(&server.ws_url(), "silent", "room").await;
    let closed = silent.expect_closed().await;
    assert_eq!(closed, Some((1000, "heartbeat timeout".into())));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_keeps_its_place_and_nobody_hears_of_it() {
    let server = start(short_heartbeats()).await;
    let url = server.ws_url();
    let (first_connection, _) = Client::join(&url, "mobile", "room").await;
    let session_id = first_connection.session_id.clone().unwrap();
    let (mut watcher, _) = Client::join(&url, "watcher", "room").await;
    drop(first_connection);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut login = login_message(0, DEV_APP_ID, "room", "mobile", dev_proof("mobile", "room"));
    if let ClientMessage::Login { resume_session, .. } = &mut login {
        *resume_session = Some(session_id.clone());
    }
    let (mut resumed, result) = Client::join_with(&url, login.clone()).await;
    let ReplyResult::Login {
        session_id: again,
        users,
        ..
    } = result
    else {
        panic!()
    };
    assert_eq!(again, session_id);
    assert_eq!(users, vec![user("mobile"), user("watcher")]);

    // Well past the original timeout, with heartbeats on the new connection: still there, no events at all.
    for _ in 0..12 {
        assert_eq!(resumed.heartbeat().await.code, 0);
        assert_eq!(watcher.heartbeat().await.code, 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.expect_quiet(Duration::ZERO).await;

    // Resuming again while the previous connection is still open closes that one.
    let (_third, _) = Client::join_with(&url, {
        let mut login = login;
        if let ClientMessage::Login { credentials, .. } = &mut login {
            *credentials = dev_proof("mobile", "room");
        }
        login
    })
    .await;
    assert_eq!(
        resumed.expect_closed().await,
        Some((1000, "session resumed on another connection".into()))
    );
    watcher.expect_quiet(Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_warns_before_expiry_can_be_renewed_and_kicks_when_it_expires() {
    let server = start(ServerConfig {
        token_expire_notice: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await;
    let url = server.ws_url();
    let login = |lifetime| {
        login_message(
            0,
            DEV_APP_ID,
            "room",
            "holder",
            Credentials::Token {
                token: dev_token("holder", lifetime, room_privilege("room", true, None)),
            },
        )
    };
    let (mut holder, _) = Client::join_with(&url, login(4)).await;
    let (mut watcher, _) = Client::join(&url, "watcher", "room").await;

    let started = Instant::now();
    assert!(matches!(
        holder.event().await,
        ServerMessage::UserUpdate {
            update_type: UpdateType::Add,
            ..
        }
    ));
    let ServerMessage::TokenWillExpire {
        room_id,
        remain_seconds,
    } = holder.event().await
    else {
        panic!()
    };
    assert_eq!(room_id, "room");
    assert!((1..=2).contains(&remain_seconds), "{remain_seconds}");
    assert!(started.elapsed() <= Duration::from_secs(3));

    // Renewed for 4 s more: no kick at the first expiry.
    let renewed = dev_token("holder", 6, room_privilege("room", true, None));
    let reply = holder
        .request(|req_id| ClientMessage::RenewToken {
            req_id,
            token: renewed,
        })
        .await;
    assert_eq!(reply.code, 0);
    let Some(ReplyResult::RenewToken { token_expire_time }) = reply.result else {
        panic!()
    };
    assert!(token_expire_time.abs_diff(unix_ms() / 1000 + 6) <= 1);
    // A token for someone else is refused and changes nothing.
    let reply = holder
        .request(|req_id| ClientMessage::RenewToken {
            req_id,
            token: dev_token("intruder", 600, None),
        })
        .await;
    assert_eq!(reply.code, error::ROOM_TOKEN_USER_ID_ERROR);

    // Not renewed again: warned, then kicked with 1002056, and the others see the user leave.
    let mut events = Vec::new();
    while let Some(msg) = holder
        .next_within(Duration::from_secs(9))
        .await
        .expect("kicked in time")
    {
        events.push(msg);
    }
    assert!(
        matches!(events[0], ServerMessage::TokenWillExpire { .. }),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&ServerMessage::Kicked {
            room_id: "room".into(),
            code: error::ROOM_KICKED_OUT_TOKEN_EXPIRED
        })
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not kicked at the first expiry"
    );
    assert!(matches!(
        watcher.event().await,
        ServerMessage::UserUpdate {
            update_type: UpdateType::Delete,
            ..
        }
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_logs_in_is_closed_after_the_heartbeat_timeout() {
    let server = start(short_heartbeats()).await;
    let mut idle = Client::connect(&server.ws_url()).await;
    let opened = Instant::now();
    assert_eq!(idle.expect_closed().await, Some((1008, "no login".into())));
    assert!(opened.elapsed() >= Duration::from_millis(700));

    // After a logout the wait starts again.
    let (mut client, _) = Client::join(&server.ws_url(), "u", "room").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        client
            .request(|req_id| ClientMessage::Logout { req_id })
            .await
            .code,
        0
    );
    let logged_out = Instant::now();
    assert_eq!(
        client.expect_closed().await,
        Some((1008, "no login".into()))
    );
    assert!(logged_out.elapsed() >= Duration::from_millis(700));
    server.shutdown().await;
}
