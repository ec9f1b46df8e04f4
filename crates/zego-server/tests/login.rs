//! Logging in with app_sign or Token04, each refusal with its code, logout, and the same-user kick.

mod common;

use common::*;
use zego_protocol::error;
use zego_protocol::message::{ClientMessage, Credentials, ReplyResult, ServerMessage, UpdateType};
use zego_server::{ServerConfig, DEV_APP_ID};

async fn refused(url: &str, login: ClientMessage) -> u32 {
    let mut client = Client::connect(url).await;
    let reply = client.login(login).await;
    assert!(reply.result.is_none());
    reply.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_sign_login_and_logout() {
    let server = start(ServerConfig::default()).await;
    let (mut alice, result) = Client::join(&server.ws_url(), "alice", "room").await;
    let ReplyResult::Login {
        session_id,
        heartbeat_interval_ms,
        heartbeat_timeout_ms,
        token_expire_time,
        users,
        online_count,
        ..
    } = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(session_id.len(), 32);
    assert_eq!(
        (heartbeat_interval_ms, heartbeat_timeout_ms),
        (10_000, 30_000)
    );
    assert_eq!(token_expire_time, None);
    assert_eq!(users, vec![user("alice")]);
    assert_eq!(online_count, 1);

    let reply = alice
        .request(|req_id| ClientMessage::Logout { req_id })
        .await;
    assert_eq!(reply.code, 0);
    // Logged out, the connection stays usable: requests say "not logged in", and a new login works.
    let reply = alice.heartbeat().await;
    assert_eq!(reply.code, error::COMMON_NOT_LOGGED_IN);
    let reply = alice
        .login(login_message(
            0,
            DEV_APP_ID,
            "room2",
            "alice",
            dev_proof("alice", "room2"),
        ))
        .await;
    assert_eq!(reply.code, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_login_reports_its_expiry() {
    let server = start(ServerConfig::default()).await;
    let token = dev_token("bob", 3600, room_privilege("room", true, None));
    let (_bob, result) = Client::join_with(
        &server.ws_url(),
        login_message(0, DEV_APP_ID, "room", "bob", Credentials::Token { token }),
    )
    .await;
    let ReplyResult::Login {
        token_expire_time, ..
    } = result
    else {
        panic!()
    };
    let expected = unix_ms() / 1000 + 3600;
    assert!(token_expire_time.unwrap().abs_diff(expected) <= 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_refusal_has_its_code() {
    let server = start(two_apps()).await;
    let url = server.ws_url();
    let token = |t: String| Credentials::Token { token: t };
    let login =
        |app_id, user_id: &str, credentials| login_message(1, app_id, "room", user_id, credentials);

    // No credentials at all.
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", token(String::new()))).await,
        error::ROOM_NO_TOKEN_NO_APP_SIGN
    );
    let empty_sign = Credentials::AppSign {
        timestamp_ms: unix_ms(),
        nonce: "n".into(),
        signature: String::new(),
    };
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", empty_sign)).await,
        error::ROOM_NO_TOKEN_NO_APP_SIGN
    );
    // Unknown app; the other app's app_sign for the dev app.
    assert_eq!(
        refused(&url, login(999, "u", dev_proof("u", "room"))).await,
        error::ENGINE_APP_ID_INCORRECT
    );
    let wrong_sign = app_sign_proof(DEV_APP_ID, OTHER_APP_SIGN, "u", "room");
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", wrong_sign)).await,
        error::ENGINE_APP_SIGN_INCORRECT
    );
    // A stale signature, and one replayed.
    let Credentials::AppSign { nonce, .. } = dev_proof("u", "room") else {
        unreachable!()
    };
    let key = zego_protocol::validate::app_sign(zego_server::DEV_APP_SIGN).unwrap();
    let old = unix_ms() - 11 * 60 * 1000;
    let stale = Credentials::AppSign {
        timestamp_ms: old,
        signature: zego_protocol::signature::sign(&key, DEV_APP_ID, "u", "room", old, &nonce),
        nonce,
    };
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", stale)).await,
        error::ROOM_AUTHENTICATION_FAILED
    );
    let proof = dev_proof("u", "room");
    let (first, _) = Client::join_with(&url, login(DEV_APP_ID, "u", proof.clone())).await;
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", proof)).await,
        error::ROOM_AUTHENTICATION_FAILED
    );
    first.close().await;

    // Token failures: 1002074..1002080 and the room privilege.
    let good = dev_token("u", 600, None);
    assert_eq!(
        refused(
            &url,
            login(DEV_APP_ID, "u", token(format!("05{}", &good[2..])))
        )
        .await,
        error::ROOM_TOKEN_VERSION_ERROR
    );
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", token("04!!!".into()))).await,
        error::ROOM_TOKEN_FORMAT_ERROR
    );
    let other_secret = {
        let claims = zego_protocol::token04::Claims {
            app_id: DEV_APP_ID,
            user_id: "u".into(),
            nonce: 1,
            ctime: 0,
            expire: (unix_ms() / 1000) as i64 + 600,
            payload: String::new(),
        };
        zego_protocol::token04::generate(
            OTHER_SERVER_SECRET,
            &claims,
            zego_protocol::token04::Mode::Gcm,
            None,
        )
        .unwrap()
    };
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", token(other_secret))).await,
        error::ROOM_TOKEN_INNER_ERROR
    );
    assert_eq!(
        refused(&url, login(OTHER_APP_ID, "u", token(good.clone()))).await,
        error::ROOM_TOKEN_INNER_ERROR,
        "another app's secret cannot open it"
    );
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "v", token(good))).await,
        error::ROOM_TOKEN_USER_ID_ERROR
    );
    assert_eq!(
        refused(
            &url,
            login(DEV_APP_ID, "u", token(dev_token("u", -5, None)))
        )
        .await,
        error::ROOM_TOKEN_EXPIRED
    );
    let elsewhere = dev_token("u", 600, room_privilege("another-room", true, None));
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", token(elsewhere))).await,
        error::ROOM_AUTHENTICATION_FAILED
    );
    let too_long = "0".repeat(zego_protocol::limits::TOKEN_MAX + 1);
    assert_eq!(
        refused(&url, login(DEV_APP_ID, "u", token(too_long))).await,
        error::ROOM_TOKEN_FORMAT_ERROR
    );

    // Bad identities and protocol versions.
    let mut bad_version = login(DEV_APP_ID, "u", dev_proof("u", "room"));
    if let ClientMessage::Login {
        protocol_version, ..
    } = &mut bad_version
    {
        *protocol_version = 999;
    }
    assert_eq!(
        refused(&url, bad_version).await,
        error::PROTOCOL_VERSION_UNSUPPORTED
    );
    assert_eq!(
        refused(
            &url,
            login_message(1, DEV_APP_ID, "a room", "u", dev_proof("u", "a room"))
        )
        .await,
        error::ROOM_ROOM_ID_INVALID_CHARACTER
    );
    assert_eq!(
        refused(
            &url,
            login_message(1, DEV_APP_ID, "room", "", dev_proof("", "room"))
        )
        .await,
        error::ROOM_USER_ID_NULL
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_must_come_first_and_only_once() {
    let server = start(ServerConfig::default()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let reply = client.heartbeat().await;
    assert_eq!(reply.code, error::COMMON_NOT_LOGGED_IN);
    let reply = client
        .request(|req_id| ClientMessage::SendBroadcastMessage {
            req_id,
            message: "hi".into(),
        })
        .await;
    assert_eq!(reply.code, error::COMMON_NOT_LOGGED_IN);
    let reply = client
        .login(login_message(
            0,
            DEV_APP_ID,
            "room",
            "u",
            dev_proof("u", "room"),
        ))
        .await;
    assert_eq!(reply.code, 0);
    let reply = client
        .login(login_message(
            0,
            DEV_APP_ID,
            "room2",
            "u",
            dev_proof("u", "room2"),
        ))
        .await;
    assert_eq!(reply.code, error::ROOM_COUNT_EXCEED);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_of_a_user_kicks_the_first_everywhere_in_the_app() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let (mut first, _) = Client::join(&url, "dup", "room-a").await;
    let (mut watcher, _) = Client::join(&url, "watcher", "room-a").await;
    assert!(matches!(
        first.event().await,
        ServerMessage::UserUpdate {
            update_type: UpdateType::Add,
            ..
        }
    ));

    // The same user logs in to another room of the app (the streams tests show its streams going with reason 3).
    let (_second, _) = Client::join(&url, "dup", "room-b").await;
    assert_eq!(
        first.next().await,
        Some(ServerMessage::Kicked {
            room_id: "room-a".into(),
            code: error::ROOM_KICKED_OUT_SAME_USER
        })
    );
    assert_eq!(first.expect_closed().await.map(|c| c.0), Some(1000));
    assert_eq!(
        watcher.event().await,
        ServerMessage::UserUpdate {
            room_id: "room-a".into(),
            update_type: UpdateType::Delete,
            users: vec![user("dup")]
        }
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_refuses_more_members() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let mut creator = login_message(0, DEV_APP_ID, "small", "a", dev_proof("a", "small"));
    if let ClientMessage::Login {
        max_member_count, ..
    } = &mut creator
    {
        *max_member_count = 2;
    }
    let (_a, _) = Client::join_with(&url, creator).await;
    let (_b, _) = Client::join(&url, "b", "small").await;
    let code = refused(
        &url,
        login_message(0, DEV_APP_ID, "small", "c", dev_proof("c", "small")),
    )
    .await;
    assert_eq!(code, error::ROOM_MAX_MEMBER_COUNT);
    server.shutdown().await;
}
