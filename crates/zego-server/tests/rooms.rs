//! Room events over real WebSockets: snapshot then increments, user-status opt-in, isolation of rooms and apps,
//! extra info, broadcast messages, custom commands, online counts, and their limits.

mod common;

use std::time::Duration;

use common::*;
use zego_protocol::error;
use zego_protocol::message::{ClientMessage, ReplyResult, ServerMessage, UpdateType};
use zego_server::{ServerConfig, DEV_APP_ID};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_a_snapshot_then_increments_if_they_asked_for_user_events() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let (mut a, _) = Client::join(&url, "a", "room").await;
    let (mut b, snapshot) = Client::join(&url, "b", "room").await;
    let ReplyResult::Login {
        users,
        online_count,
        ..
    } = snapshot
    else {
        panic!()
    };
    assert_eq!(users, vec![user("a"), user("b")]);
    assert_eq!(online_count, 2);
    assert_eq!(
        a.event().await,
        ServerMessage::UserUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Add,
            users: vec![user("b")]
        }
    );

    // c does not want user events: an empty user list, and nothing when d comes and goes.
    let mut quiet_login = login_message(0, DEV_APP_ID, "room", "c", dev_proof("c", "room"));
    if let ClientMessage::Login {
        is_user_status_notify,
        ..
    } = &mut quiet_login
    {
        *is_user_status_notify = false;
    }
    let (mut c, snapshot) = Client::join_with(&url, quiet_login).await;
    let ReplyResult::Login {
        users,
        online_count,
        ..
    } = snapshot
    else {
        panic!()
    };
    assert!(users.is_empty());
    assert_eq!(online_count, 3);
    for watcher in [&mut a, &mut b] {
        assert!(
            matches!(watcher.event().await, ServerMessage::UserUpdate { update_type: UpdateType::Add, users, .. } if users == vec![user("c")])
        );
    }
    let (d, _) = Client::join(&url, "d", "room").await;
    let reply = {
        let mut d = d;
        let reply = d.request(|req_id| ClientMessage::Logout { req_id }).await;
        d.close().await;
        reply
    };
    assert_eq!(reply.code, 0);
    for watcher in [&mut a, &mut b] {
        assert!(matches!(
            watcher.event().await,
            ServerMessage::UserUpdate {
                update_type: UpdateType::Add,
                ..
            }
        ));
        assert_eq!(
            watcher.event().await,
            ServerMessage::UserUpdate {
                room_id: "room".into(),
                update_type: UpdateType::Delete,
                users: vec![user("d")]
            }
        );
    }
    c.expect_quiet(QUIET).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_apps_do_not_hear_each_other() {
    let server = start(two_apps()).await;
    let url = server.ws_url();
    let (mut here, _) = Client::join(&url, "here", "room").await;
    let (mut other_room, _) = Client::join(&url, "other-room", "room-2").await;
    let other_app_login = |user_id: &str| {
        login_message(
            0,
            OTHER_APP_ID,
            "room",
            user_id,
            app_sign_proof(OTHER_APP_ID, OTHER_APP_SIGN, user_id, "room"),
        )
    };
    let (mut other_app, _) = Client::join_with(&url, other_app_login("other-app")).await;
    // The same user_id in another app is a different user: nobody is kicked.
    let (mut same_name, _) = Client::join_with(&url, other_app_login("here")).await;
    assert!(matches!(
        other_app.event().await,
        ServerMessage::UserUpdate {
            update_type: UpdateType::Add,
            ..
        }
    ));

    let (_newcomer, _) = Client::join(&url, "newcomer", "room").await;
    assert!(matches!(
        here.event().await,
        ServerMessage::UserUpdate {
            update_type: UpdateType::Add,
            ..
        }
    ));
    let reply = here
        .request(|req_id| ClientMessage::SendBroadcastMessage {
            req_id,
            message: "hello room".into(),
        })
        .await;
    assert_eq!(reply.code, 0);
    let reply = here
        .request(|req_id| ClientMessage::SetRoomExtraInfo {
            req_id,
            key: "topic".into(),
            value: "rust".into(),
        })
        .await;
    assert_eq!(reply.code, 0);

    other_room.expect_quiet(QUIET).await;
    other_app.expect_quiet(Duration::ZERO).await;
    same_name.expect_quiet(Duration::ZERO).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_extra_info_reaches_the_others_and_the_next_snapshot() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let (mut a, _) = Client::join(&url, "a", "room").await;
    let (mut b, _) = Client::join(&url, "b", "room").await;
    a.event().await;
    let reply = a
        .request(|req_id| ClientMessage::SetRoomExtraInfo {
            req_id,
            key: "topic".into(),
            value: "latency".into(),
        })
        .await;
    assert_eq!(reply.code, 0);
    let ServerMessage::RoomExtraInfoUpdate { room_id, infos } = b.event().await else {
        panic!()
    };
    assert_eq!(room_id, "room");
    assert_eq!(
        (infos[0].key.as_str(), infos[0].value.as_str()),
        ("topic", "latency")
    );
    assert_eq!(infos[0].update_user, user("a"));
    assert!(infos[0].update_time_ms.abs_diff(unix_ms()) < 5_000);
    a.expect_quiet(QUIET).await;

    let (_c, snapshot) = Client::join(&url, "c", "room").await;
    let ReplyResult::Login {
        room_extra_info, ..
    } = snapshot
    else {
        panic!()
    };
    assert_eq!(room_extra_info, infos);

    // Limits: the key, the value, ten updates per second.
    let reply = a
        .request(|req_id| ClientMessage::SetRoomExtraInfo {
            req_id,
            key: "k".repeat(129),
            value: String::new(),
        })
        .await;
    assert_eq!(reply.code, error::ROOM_EXTRA_INFO_KEY_TOO_LONG);
    let reply = a
        .request(|req_id| ClientMessage::SetRoomExtraInfo {
            req_id,
            key: "k".into(),
            value: "v".repeat(4097),
        })
        .await;
    assert_eq!(reply.code, error::ROOM_EXTRA_INFO_VALUE_TOO_LONG);
    let mut codes = Vec::new();
    for i in 0..12 {
        let reply = a
            .request(|req_id| ClientMessage::SetRoomExtraInfo {
                req_id,
                key: "topic".into(),
                value: format!("v{i}"),
            })
            .await;
        codes.push(reply.code);
    }
    assert!(
        codes.contains(&error::ROOM_RATE_LIMITED_EXTRA_INFO),
        "{codes:?}"
    );
    assert!(codes.iter().filter(|c| **c == 0).count() <= 10);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_messages_are_numbered_checked_and_rate_limited() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let (mut a, _) = Client::join(&url, "a", "room").await;
    let (mut b, _) = Client::join(&url, "b", "room").await;
    a.event().await;

    let mut codes = Vec::new();
    for i in 0..12 {
        let reply = a
            .request(|req_id| ClientMessage::SendBroadcastMessage {
                req_id,
                message: format!("message {i}"),
            })
            .await;
        codes.push(reply.code);
        if reply.code == 0 {
            let Some(ReplyResult::BroadcastMessage { message_id }) = reply.result else {
                panic!()
            };
            let ServerMessage::BroadcastMessage { room_id, messages } = b.event().await else {
                panic!()
            };
            assert_eq!(room_id, "room");
            assert_eq!(messages[0].message_id, message_id);
            assert_eq!(messages[0].message, format!("message {i}"));
            assert_eq!(messages[0].from_user, user("a"));
        }
    }
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 10, "{codes:?}");
    assert_eq!(codes[10..], [error::IM_BROADCAST_RATE_EXCEEDED; 2]);
    b.expect_quiet(QUIET).await;
    a.expect_quiet(Duration::ZERO).await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let empty = a
        .request(|req_id| ClientMessage::SendBroadcastMessage {
            req_id,
            message: String::new(),
        })
        .await;
    assert_eq!(empty.code, error::IM_CONTENT_NULL);
    let long = a
        .request(|req_id| ClientMessage::SendBroadcastMessage {
            req_id,
            message: "x".repeat(1025),
        })
        .await;
    assert_eq!(long.code, error::IM_CONTENT_TOO_LONG);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_commands_go_to_the_chosen_users_within_limits() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let (mut a, _) = Client::join(&url, "a", "room").await;
    let (mut b, _) = Client::join(&url, "b", "room").await;
    let (mut c, _) = Client::join(&url, "c", "room").await;
    let (mut elsewhere, _) = Client::join(&url, "d", "room-2").await;
    a.event().await;
    a.event().await;
    b.event().await;

    let reply = a
        .request(|req_id| ClientMessage::SendCustomCommand {
            req_id,
            command: "only b".into(),
            to_user_ids: vec!["b".into(), "d".into()],
        })
        .await;
    assert_eq!(reply.code, 0);
    assert_eq!(
        b.event().await,
        ServerMessage::CustomCommand {
            room_id: "room".into(),
            from_user: user("a"),
            command: "only b".into()
        }
    );
    c.expect_quiet(QUIET).await;
    elsewhere.expect_quiet(Duration::ZERO).await;

    let reply = a
        .request(|req_id| ClientMessage::SendCustomCommand {
            req_id,
            command: "everyone".into(),
            to_user_ids: vec![],
        })
        .await;
    assert_eq!(reply.code, 0);
    for other in [&mut b, &mut c] {
        assert!(
            matches!(other.event().await, ServerMessage::CustomCommand { command, .. } if command == "everyone")
        );
    }

    let mut codes = Vec::new();
    for _ in 0..22 {
        let reply = a
            .request(|req_id| ClientMessage::SendCustomCommand {
                req_id,
                command: "spam".into(),
                to_user_ids: vec!["b".into()],
            })
            .await;
        codes.push(reply.code);
    }
    assert!(
        codes.contains(&error::ROOM_RATE_LIMITED_REQUEST),
        "{codes:?}"
    );
    let long = a
        .request(|req_id| ClientMessage::SendCustomCommand {
            req_id,
            command: "x".repeat(1025),
            to_user_ids: vec![],
        })
        .await;
    assert!(matches!(
        long.code,
        error::IM_CONTENT_TOO_LONG | error::ROOM_RATE_LIMITED_REQUEST
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_count_arrives_every_interval() {
    let server = start(ServerConfig {
        online_count_interval: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let url = server.ws_url();
    let (mut a, _) = Client::join(&url, "a", "room").await;
    let (_b, _) = Client::join(&url, "b", "room").await;
    a.event().await;
    let started = tokio::time::Instant::now();
    let mut counts = Vec::new();
    while counts.len() < 3 {
        match a.next().await {
            Some(ServerMessage::OnlineUserCount { room_id, count }) => {
                assert_eq!(room_id, "room");
                counts.push(count);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(counts, vec![2, 2, 2]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    server.shutdown().await;
}
