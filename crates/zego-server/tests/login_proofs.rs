//! app_sign proofs: a proof is spent only by a login that succeeds, one user's logins cannot lock out another's,
//! and a proof minted before the server started is refused after it.

mod common;

use common::*;
use zego_protocol::error;
use zego_protocol::message::{ClientMessage, Credentials};
use zego_server::{ServerConfig, DEV_APP_ID};

fn with_max_members(mut login: ClientMessage, max: u32) -> ClientMessage {
    if let ClientMessage::Login {
        max_member_count, ..
    } = &mut login
    {
        *max_member_count = max;
    }
    login
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_does_not_spend_its_proof() {
    let server = start(ServerConfig::default()).await;
    let first = with_max_members(
        login_message(0, DEV_APP_ID, "small", "a", dev_proof("a", "small")),
        1,
    );
    let (mut a, _) = Client::join_with(&server.ws_url(), first).await;

    // The room is full: the login is refused after its proof was checked.
    let proof = dev_proof("b", "small");
    let mut b = Client::connect(&server.ws_url()).await;
    let reply = b
        .login(login_message(0, DEV_APP_ID, "small", "b", proof.clone()))
        .await;
    assert_eq!(reply.code, error::ROOM_MAX_MEMBER_COUNT);

    // Once there is room, the same proof gets in: the refusal did not spend it.
    let reply = a.request(|req_id| ClientMessage::Logout { req_id }).await;
    assert_eq!(reply.code, 0);
    let reply = b
        .login(login_message(0, DEV_APP_ID, "small", "b", proof.clone()))
        .await;
    assert_eq!(reply.code, 0, "{reply:?}");

    // Spent by that success, it cannot be used again.
    let mut c = Client::connect(&server.ws_url()).await;
    let reply = c
        .login(login_message(0, DEV_APP_ID, "small", "b", proof))
        .await;
    assert_eq!(reply.code, error::ROOM_AUTHENTICATION_FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_logins_do_not_lock_out_another() {
    let server = start(ServerConfig::default()).await;
    // One user logs in again and again (each login kicks the previous one) until its own bound stops it.
    let mut refused = None;
    for i in 0..1000 {
        let mut client = Client::connect(&server.ws_url()).await;
        let reply = client
            .login(login_message(
                0,
                DEV_APP_ID,
                "room",
                "greedy",
                dev_proof("greedy", "room"),
            ))
            .await;
        if reply.code != 0 {
            refused = Some((i, reply.code));
            break;
        }
    }
    let (logins, code) = refused.expect("one user's logins are bounded");
    assert_eq!(
        code,
        error::ROOM_RATE_LIMITED_LOGIN,
        "after {logins} logins"
    );
    // Everyone else logs in as usual.
    for user in ["alice", "bob"] {
        let (mut client, _) = Client::join(&server.ws_url(), user, "room").await;
        assert_eq!(client.heartbeat().await.code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_minted_before_a_restart_is_refused_after_it() {
    let proof = dev_proof("u", "room");
    let Credentials::AppSign { timestamp_ms, .. } = &proof else {
        unreachable!()
    };
    // The server starts strictly after the proof's millisecond.
    while unix_ms() <= *timestamp_ms {
        std::thread::yield_now();
    }
    let server = start(ServerConfig::default()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let reply = client
        .login(login_message(0, DEV_APP_ID, "room", "u", proof))
        .await;
    // Transient: a client that signs afresh (as the SDK does on every attempt) gets in.
    assert_eq!(reply.code, error::ROOM_RATE_LIMITED_LOGIN);
    let reply = client
        .login(login_message(
            0,
            DEV_APP_ID,
            "room",
            "u",
            dev_proof("u", "room"),
        ))
        .await;
    assert_eq!(reply.code, 0, "{reply:?}");
}
