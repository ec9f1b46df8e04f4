//! Clients that try to exhaust the server (connections that never finish their request, frames announced huge before
//! login, floods of unreadable frames) are cut off, and real clients keep being served meanwhile. The attackers
//! connect from 127.0.0.2, another loopback address, so that the per-address cap falls on them and not on the
//! real client at 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use zego_protocol::error;
use zego_protocol::limits;
use zego_protocol::message::{ClientMessage, ServerMessage};
use zego_server::ServerConfig;

const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection to the server from the attacker's address.
async fn attacker_connect(server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((ATTACKER, 0)))
        .expect("127.0.0.2 is a loopback address on Linux");
    socket.connect(server).await.expect("TCP connect")
}

/// Reads until the server closes the connection; `Err` if it is still open after `patience`.
async fn closed_within(stream: &mut TcpStream, patience: Duration) -> Result<(), ()> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(()),
            Ok(Ok(0) | Err(_)) => return Ok(()),
            // An HTTP error response before the close is fine.
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends an upgrade request one byte at a time, never finishing it, until the server closes the connection.
/// Returns whether it did within `patience`.
async fn dribble(mut stream: TcpStream, patience: Duration) -> bool {
    let request = b"GET /ws HTTP/1.1\r\nHost: zego\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Pad: ";
    let deadline = tokio::time::Instant::now() + patience;
    let mut buf = [0u8; 256];
    let mut next = request.iter().chain(std::iter::repeat(&b'a'));
    while tokio::time::Instant::now() < deadline {
        let byte = *next.next().unwrap();
        if stream.write_all(&[byte]).await.is_err() {
            return true;
        }
        let read = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_dribbling_connections_are_closed_while_real_clients_log_in() {
    let server = start(ServerConfig {
        max_connections_per_ip: 100,
        header_read_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .await;
    let addr = server.http_addr();

    // 300 connections: 50 dribble an upgrade request, 250 say nothing. 200 are over the per-address cap.
    let mut dribblers = Vec::new();
    for _ in 0..50 {
        let stream = attacker_connect(addr).await;
        dribblers.push(tokio::spawn(dribble(stream, PATIENCE)));
    }
    let mut silent = Vec::new();
    for _ in 0..250 {
        silent.push(attacker_connect(addr).await);
    }

    // Meanwhile a real client logs in and is served.
    let (mut client, _) = Client::join(&server.ws_url(), "real", "room").await;
    assert_eq!(client.heartbeat().await.code, 0);

    for (i, stream) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(stream, PATIENCE).await.is_ok(),
            "silent connection {i} is still open"
        );
    }
    for (i, dribbler) in dribblers.into_iter().enumerate() {
        assert!(
            dribbler.await.unwrap(),
            "dribbling connection {i} is still open"
        );
    }
    // The attack is over and the real session never noticed it.
    assert_eq!(client.heartbeat().await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_cap_is_turned_away_and_others_are_not() {
    let server = start(ServerConfig {
        max_connections_per_ip: 20,
        // Long enough that only the cap can explain a close within the test.
        header_read_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    })
    .await;
    let addr = server.http_addr();

    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(attacker_connect(addr).await);
    }
    let mut over = attacker_connect(addr).await;
    assert!(
        closed_within(&mut over, PATIENCE).await.is_ok(),
        "the 21st connection from one address is closed at once"
    );
    let (mut client, _) = Client::join(&server.ws_url(), "real", "room").await;
    assert_eq!(client.heartbeat().await.code, 0);

    // Closing its connections gives the address its slots back.
    drop(held);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stream = attacker_connect(addr).await;
        let url = server.ws_url();
        let handshake =
            tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(stream));
        if let Ok(Ok(_)) = tokio::time::timeout(PATIENCE, handshake).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the address never got a slot back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A masked client frame header announcing a text frame of `len` bytes.
fn text_frame_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    header
}

/// Waits for the server to close the connection: an error before the close must be 1002092 and the close code
/// 1009. Either may be lost when the server resets a connection with unread input, which is a close too.
async fn expect_closed_as_too_large(client: &mut Client) {
    loop {
        match client.next().await {
            None => break,
            Some(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, error::PROTOCOL_MESSAGE_TOO_LARGE)
            }
            Some(other) => panic!("expected the too-large error, got {other:?}"),
        }
    }
    if let Some(Some((code, _))) = &client.closed {
        assert_eq!(*code, 1009);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_frame_before_login_is_cut_off_at_once() {
    let server = start(ServerConfig {
        // The login timeout: long enough that only the frame cap can explain a close within the test.
        heartbeat_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    })
    .await;

    // A 1 MiB text frame of which only the header is sent: refused with its code as soon as the header arrives.
    let mut client = Client::connect(&server.ws_url()).await;
    let MaybeTlsStream::Plain(tcp) = client.ws_mut().get_mut() else {
        unreachable!("plain ws://")
    };
    tcp.write_all(&text_frame_header(1 << 20)).await.unwrap();
    match client.next().await {
        Some(ServerMessage::Error { code, .. }) => {
            assert_eq!(code, error::PROTOCOL_MESSAGE_TOO_LARGE)
        }
        other => panic!("expected the too-large error, got {other:?}"),
    }
    assert_eq!(
        client.expect_closed().await.map(|(code, _)| code),
        Some(1009)
    );

    // The same with 16 KiB of it sent, then nothing.
    let mut client = Client::connect(&server.ws_url()).await;
    let MaybeTlsStream::Plain(tcp) = client.ws_mut().get_mut() else {
        unreachable!("plain ws://")
    };
    tcp.write_all(&text_frame_header(1 << 20)).await.unwrap();
    let _ = tcp.write_all(&[b'x'; 16 * 1024]).await;
    expect_closed_as_too_large(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_small_before_login_and_normal_after() {
    let server = start(ServerConfig::default()).await;

    // Just over the pre-login cap, sent whole: refused, connection closed.
    let mut client = Client::connect(&server.ws_url()).await;
    let over_cap = format!(
        r#"{{"type":"heartbeat","req_id":1,"pad":"{}"}}"#,
        "x".repeat(limits::PRE_LOGIN_MESSAGE_MAX)
    );
    client.send_text(&over_cap).await;
    expect_closed_as_too_large(&mut client).await;

    // After login, the same frame, and larger ones up to the normal limit, are read.
    let (mut client, _) = Client::join(&server.ws_url(), "u", "room").await;
    let pad = "x".repeat(limits::MESSAGE_MAX / 2);
    client
        .send_text(&format!(
            r#"{{"type":"heartbeat","req_id":50,"pad":"{pad}"}}"#
        ))
        .await;
    let reply = client.reply_to(50).await;
    assert_ne!(reply.code, error::PROTOCOL_MESSAGE_TOO_LARGE);
    assert_eq!(client.heartbeat().await.code, 0);

    // Logged out, the small cap applies again.
    let reply = client
        .request(|req_id| ClientMessage::Logout { req_id })
        .await;
    assert_eq!(reply.code, 0);
    client.send_text(&over_cap).await;
    expect_closed_as_too_large(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_frames_count_toward_the_request_rate() {
    let server = start(ServerConfig::default()).await;
    let (mut client, _) = Client::join(&server.ws_url(), "u", "room").await;
    let frames = 3 * limits::REQUESTS_PER_SECOND as usize;
    for _ in 0..frames {
        client.send_text("{not json").await;
    }
    let mut limited = 0;
    for _ in 0..frames {
        match client.next().await {
            Some(ServerMessage::Error { code, .. }) if code == error::ROOM_RATE_LIMITED_REQUEST => {
                limited += 1
            }
            Some(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, error::PROTOCOL_MALFORMED_MESSAGE)
            }
            Some(ServerMessage::OnlineUserCount { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        limited > 0,
        "{frames} unreadable frames were never rate limited"
    );
    // The rate limit holds back readable requests too, with their req_id, until the window passes.
    client.send_text(r#"{"type":"teleport","req_id":77}"#).await;
    let reply = client.reply_to(77).await;
    assert!(
        [
            error::ROOM_RATE_LIMITED_REQUEST,
            error::PROTOCOL_UNKNOWN_MESSAGE
        ]
        .contains(&reply.code),
        "{reply:?}"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while client.heartbeat().await.code != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still rate limited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
