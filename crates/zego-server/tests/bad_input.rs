//! Whatever a client sends, it gets its error code and everyone else keeps being served.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use zego_protocol::error;
use zego_protocol::limits;
use zego_protocol::message::{ClientMessage, ServerMessage};
use zego_server::ServerConfig;

fn error_code(msg: Option<ServerMessage>) -> u32 {
    match msg {
        Some(ServerMessage::Error { code, .. }) => code,
        other => panic!("expected an Error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_get_errors_and_the_connection_stays() {
    let server = start(ServerConfig::default()).await;
    let (mut client, _) = Client::join(&server.ws_url(), "u", "room").await;

    client.send_text("{not json").await;
    assert_eq!(
        error_code(client.next().await),
        error::PROTOCOL_MALFORMED_MESSAGE
    );
    client.send_text("[1, 2, 3]").await;
    assert_eq!(
        error_code(client.next().await),
        error::PROTOCOL_MALFORMED_MESSAGE
    );
    client.send_text(r#"{"type":"teleport"}"#).await;
    assert_eq!(
        error_code(client.next().await),
        error::PROTOCOL_UNKNOWN_MESSAGE
    );

    // With a readable req_id, the answer is a Reply to it.
    client.send_text(r#"{"type":"teleport","req_id":41}"#).await;
    let reply = client.reply_to(41).await;
    assert_eq!(reply.code, error::PROTOCOL_UNKNOWN_MESSAGE);
    client
        .send_text(r#"{"type":"publish","req_id":42,"stream_id":7}"#)
        .await;
    let reply = client.reply_to(42).await;
    assert_eq!(reply.code, error::PROTOCOL_MALFORMED_MESSAGE);
    assert!(
        reply.message.contains("stream_id") || reply.message.contains("invalid type"),
        "{}",
        reply.message
    );

    client.send_message(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(
        error_code(client.next().await),
        error::PROTOCOL_MALFORMED_MESSAGE
    );

    let big = format!(
        r#"{{"type":"heartbeat","req_id":43,"pad":"{}"}}"#,
        "x".repeat(limits::MESSAGE_MAX)
    );
    client.send_text(&big).await;
    assert_eq!(
        error_code(client.next().await),
        error::PROTOCOL_MESSAGE_TOO_LARGE
    );

    // Still logged in and served.
    assert_eq!(client.heartbeat().await.code, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_the_websocket_layer_cannot_read_get_an_error_then_a_close() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();

    let mut client = Client::connect(&url).await;
    client
        .send_message(Message::Frame(Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
    assert_eq!(
        error_code(client.next().await),
        error::PROTOCOL_MALFORMED_MESSAGE
    );
    assert_eq!(client.expect_closed().await.map(|c| c.0), Some(1007));

    // Beyond what is read at all: the connection ends (the error goes out first, if TCP delivers it).
    let mut client = Client::connect(&url).await;
    let huge = "x".repeat(8 * limits::MESSAGE_MAX + 1);
    let _ = tokio::time::timeout(
        PATIENCE,
        futures_util::SinkExt::send(client.ws_mut(), Message::text(huge)),
    )
    .await;
    match client.next_within(PATIENCE).await {
        Ok(Some(ServerMessage::Error { code, .. })) => {
            assert_eq!(code, error::PROTOCOL_MESSAGE_TOO_LARGE)
        }
        Ok(None) => {}
        other => panic!("{other:?}"),
    }

    // The server is fine.
    let (mut other, _) = Client::join(&url, "fine", "room").await;
    assert_eq!(other.heartbeat().await.code, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_sender_does_not_disturb_the_room() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let (mut sender, _) = Client::join(&url, "sender", "room").await;
    let (mut receiver, _) = Client::join(&url, "receiver", "room").await;
    let (mut garbage, _) = Client::join(&url, "garbage", "room").await;
    sender.event().await;
    sender.event().await;
    receiver.event().await;

    let spam = tokio::spawn(async move {
        let kinds = [
            "nonsense",
            r#"{"type":"x"}"#,
            r#"{"type":"play","req_id":1}"#,
            "{}",
            "null",
        ];
        for i in 0..600 {
            garbage.send_text(kinds[i % kinds.len()]).await;
            if i % 3 == 0 {
                garbage.send_message(Message::binary(vec![0u8; 64])).await;
            }
        }
        let mut errors = 0;
        while let Ok(Some(msg)) = garbage.next_within(Duration::from_millis(500)).await {
            if matches!(
                msg,
                ServerMessage::Error { .. } | ServerMessage::Reply { .. }
            ) {
                errors += 1;
            }
        }
        errors
    });

    let started = Instant::now();
    for i in 0..5 {
        let reply = sender
            .request(|req_id| ClientMessage::SendBroadcastMessage {
                req_id,
                message: format!("still here {i}"),
            })
            .await;
        assert_eq!(reply.code, 0);
        let ServerMessage::BroadcastMessage { messages, .. } = receiver.event().await else {
            panic!()
        };
        assert_eq!(messages[0].message, format!("still here {i}"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served promptly: {:?}",
        started.elapsed()
    );
    let errors = spam.await.unwrap();
    assert_eq!(errors, 800, "one error per bad frame");
    // Bad frames count toward the request rate: those beyond it are counted as rate limited, not read.
    let metrics = server.metrics_text();
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert_eq!(
        counter("zego_signaling_bad_messages_total") + counter("zego_signaling_rate_limited_total"),
        800,
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_rate_limited() {
    let server = start(ServerConfig::default()).await;
    let (mut client, _) = Client::join(&server.ws_url(), "flood", "room").await;
    let total = limits::REQUESTS_PER_SECOND as u64 + 50;
    let first = client.next_req();
    for req_id in first..first + total {
        client.send(&ClientMessage::Heartbeat { req_id }).await;
    }
    let mut limited = 0;
    for req_id in first..first + total {
        let reply = client.reply_to(req_id).await;
        if reply.code == error::ROOM_RATE_LIMITED_REQUEST {
            limited += 1;
        } else {
            assert_eq!(reply.code, 0);
        }
    }
    // The login counted too.
    assert!((50..=51).contains(&limited), "{limited}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_without_slowing_the_room() {
    let server = start(ServerConfig {
        send_queue_capacity: 8,
        ..ServerConfig::default()
    })
    .await;
    let url = server.ws_url();
    let (mut slow, _) = Client::join_with_small_receive_buffer(&url, "slow", "room").await;
    let (mut watcher, _) = Client::join(&url, "watcher", "room").await;
    let mut senders = Vec::new();
    for i in 0..4 {
        let (sender, _) = Client::join(&url, &format!("sender{i}"), "room").await;
        senders.push(sender);
    }
    // slow reads nothing from here on. The senders push 1 KB commands at it until the server gives up on it.
    let started = Instant::now();
    let command = "c".repeat(limits::CUSTOM_COMMAND_MAX);
    let mut disconnected = false;
    while started.elapsed() < Duration::from_secs(30) {
        for sender in &mut senders {
            let reply = sender
                .request(|req_id| ClientMessage::SendCustomCommand {
                    req_id,
                    command: command.clone(),
                    to_user_ids: vec!["slow".into()],
                })
                .await;
            assert!(matches!(reply.code, 0 | error::ROOM_RATE_LIMITED_REQUEST));
        }
        if server
            .metrics_text()
            .contains("\nzego_slow_reader_disconnects_total 1\n")
        {
            disconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(disconnected, "the slow reader was dropped");

    // The others never waited on it.
    let reply = senders[0]
        .request(|req_id| ClientMessage::SendBroadcastMessage {
            req_id,
            message: "after".into(),
        })
        .await;
    assert_eq!(reply.code, 0);
    loop {
        if let ServerMessage::BroadcastMessage { messages, .. } = watcher.event().await {
            assert_eq!(messages[0].message, "after");
            break;
        }
    }
    // The slow client finds its connection gone once it reads again.
    slow.expect_closed().await;
    server.shutdown().await;
}
