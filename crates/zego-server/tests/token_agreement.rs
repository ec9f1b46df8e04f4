//! `zego-server token verify` and the server's login agree on every kind of token: what one accepts the other
//! accepts, and what one refuses the other refuses with the same code.

mod common;

use std::process::Command;

use common::*;
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::limits;
use zego_protocol::message::Credentials;
use zego_protocol::token04::{self, Claims, Mode, Privilege};
use zego_server::{ServerConfig, DEV_APP_ID, DEV_SERVER_SECRET};

const BINARY: &str = env!("CARGO_BIN_EXE_zego-server");
const USER: &str = "u";
const ROOM: &str = "room";

fn now() -> i64 {
    (unix_ms() / 1000) as i64
}

/// A token of the dev secret with these claims' fields.
fn mint(app_id: u32, user_id: &str, lifetime_s: i64, payload: &str, mode: Mode) -> String {
    let claims = Claims {
        app_id,
        user_id: user_id.into(),
        nonce: rand::random::<i32>() as i64,
        ctime: now(),
        expire: now() + lifetime_s,
        payload: payload.into(),
    };
    token04::generate(DEV_SERVER_SECRET, &claims, mode, None).unwrap()
}

fn room_payload(room_id: &str, login: bool) -> String {
    Privilege {
        room_id: room_id.into(),
        login_room: login,
        publish: true,
        stream_id_list: None,
    }
    .to_payload()
}

/// (name, token, the code both must give; 0 is accepted).
fn table() -> Vec<(&'static str, String, ErrorCode)> {
    let valid = mint(DEV_APP_ID, USER, 600, &room_payload(ROOM, true), Mode::Gcm);
    let other_secret = token04::generate(
        OTHER_SERVER_SECRET,
        &token04::decode(DEV_SERVER_SECRET, &valid).unwrap().0,
        Mode::Gcm,
        None,
    )
    .unwrap();
    vec![
        ("valid", valid.clone(), 0),
        (
            "valid legacy",
            mint(DEV_APP_ID, USER, 600, &room_payload(ROOM, true), Mode::Cbc),
            0,
        ),
        (
            "basic, empty payload",
            mint(DEV_APP_ID, USER, 600, "", Mode::Gcm),
            0,
        ),
        (
            "basic, JSON payload",
            mint(DEV_APP_ID, USER, 600, r#"{"demoPayload":""}"#, Mode::Gcm),
            0,
        ),
        (
            "expired",
            mint(DEV_APP_ID, USER, -5, "", Mode::Gcm),
            error::ROOM_TOKEN_EXPIRED,
        ),
        (
            "wrong app",
            mint(DEV_APP_ID + 1, USER, 600, "", Mode::Gcm),
            error::ROOM_TOKEN_APP_ID_ERROR,
        ),
        (
            "wrong user",
            mint(DEV_APP_ID, "v", 600, "", Mode::Gcm),
            error::ROOM_TOKEN_USER_ID_ERROR,
        ),
        (
            "wrong room",
            mint(
                DEV_APP_ID,
                USER,
                600,
                &room_payload("elsewhere", true),
                Mode::Gcm,
            ),
            error::ROOM_AUTHENTICATION_FAILED,
        ),
        (
            "no login privilege",
            mint(DEV_APP_ID, USER, 600, &room_payload(ROOM, false), Mode::Gcm),
            error::ROOM_AUTHENTICATION_FAILED,
        ),
        ("wrong secret", other_secret, error::ROOM_TOKEN_INNER_ERROR),
        ("garbage", "hello".into(), error::ROOM_TOKEN_VERSION_ERROR),
        ("bad base64", "04!!!".into(), error::ROOM_TOKEN_FORMAT_ERROR),
        (
            "trailing newline",
            format!("{valid}\n"),
            error::ROOM_TOKEN_FORMAT_ERROR,
        ),
        (
            "too long",
            format!("04{}", "A".repeat(limits::TOKEN_MAX)),
            error::ROOM_TOKEN_FORMAT_ERROR,
        ),
        ("empty", String::new(), error::ROOM_NO_TOKEN_NO_APP_SIGN),
    ]
}

/// `token verify` with every check the login makes; the code it reports (0 when valid) and its report.
fn cli_verdict(token: &str) -> (ErrorCode, String) {
    let output = Command::new(BINARY)
        .args(["token", "verify", "--secret", DEV_SERVER_SECRET])
        .args(["--app-id", &DEV_APP_ID.to_string(), "--user-id", USER])
        .args(["--room-id", ROOM, "--", token])
        .output()
        .unwrap();
    let report = String::from_utf8(output.stdout).unwrap();
    let last = report.lines().last().unwrap_or_default().to_owned();
    let code = match last.strip_prefix("invalid: ") {
        Some(rest) => rest.split(' ').next().unwrap().parse().unwrap(),
        None => {
            assert!(last.starts_with("valid"), "{report}");
            0
        }
    };
    assert_eq!(output.status.success(), code == 0, "{report}");
    (code, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_verify_and_login_agree_on_every_kind_of_token() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    for (name, token, expected) in table() {
        let mut client = Client::connect(&url).await;
        let credentials = Credentials::Token {
            token: token.clone(),
        };
        let reply = client
            .login(login_message(1, DEV_APP_ID, ROOM, USER, credentials))
            .await;
        let (cli, report) = tokio::task::spawn_blocking(move || cli_verdict(&token))
            .await
            .unwrap();
        assert_eq!(reply.code, expected, "{name}: login said {reply:?}");
        assert_eq!(cli, expected, "{name}: token verify said\n{report}");
        client.close().await;
    }
    server.shutdown().await;
}
