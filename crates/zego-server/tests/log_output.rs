//! The server's log written to a file: plain text without terminal colour codes, and, at TRACE where the WebSocket
//! layer dumps every frame, no login token or signature.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use zego_protocol::message::Credentials;
use zego_server::DEV_APP_ID;

const BINARY: &str = env!("CARGO_BIN_EXE_zego-server");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_is_plain_text_without_secrets() {
    let dir = std::env::temp_dir().join(format!("zego-server-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--media",
            "127.0.0.1:0",
            "--log",
            "trace",
        ])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let ws_url = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("ws="))
        .unwrap_or_else(|| panic!("no ws= in {line:?}"))
        .to_owned();

    let token = dev_token("alice", 600, None);
    let (alice, _) = Client::join_with(
        &ws_url,
        login_message(
            0,
            DEV_APP_ID,
            "room",
            "alice",
            Credentials::Token {
                token: token.clone(),
            },
        ),
    )
    .await;
    let proof = dev_proof("bob", "room");
    let Credentials::AppSign { signature, .. } = &proof else {
        unreachable!()
    };
    let signature = signature.clone();
    let (bob, _) =
        Client::join_with(&ws_url, login_message(0, DEV_APP_ID, "room", "bob", proof)).await;
    alice.close().await;
    bob.close().await;

    // The login frames are in the log once it has seen both (it is written line by line as the server runs).
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.matches("<redacted>").count() >= 2 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        !text.contains('\x1b'),
        "colour codes in a log file:\n{text}"
    );
    assert!(
        text.matches("<redacted>").count() >= 2,
        "the login frames were not logged at TRACE:\n{text}"
    );
    for secret in [&token, &signature] {
        let probe = &secret[2..34];
        let hex: String = probe.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !text.contains(probe) && !text.contains(&hex),
            "a secret was logged:\n{text}"
        );
    }
}
