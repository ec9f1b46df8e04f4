//! Publishing and playing with real WebRTC offers: answers from the relay, stream events and their reasons,
//! stream id ownership, waiting plays, token privileges.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zego_protocol::error;
use zego_protocol::message::{
    stream_delete_reason as reason, ClientMessage, Credentials, ReplyResult, ServerMessage,
    StreamInfo, UpdateType,
};
use zego_server::{ServerConfig, ServerHandle, DEV_APP_ID};
use zego_test_kit::{candidates, sdk_media_engine, LoopbackPeer};

async fn publish(client: &mut Client, stream_id: &str, offer: &str) -> Reply {
    client
        .request(|req_id| ClientMessage::Publish {
            req_id,
            stream_id: stream_id.into(),
            extra_info: format!("extra of {stream_id}"),
            sdp: offer.into(),
        })
        .await
}

async fn play(client: &mut Client, stream_id: &str, offer: &str, wait: bool) -> Reply {
    client
        .request(|req_id| ClientMessage::Play {
            req_id,
            stream_id: stream_id.into(),
            sdp: offer.into(),
            wait,
        })
        .await
}

fn answer(reply: &Reply) -> String {
    match &reply.result {
        Some(ReplyResult::Publish { sdp }) => sdp.clone(),
        Some(ReplyResult::Play { sdp: Some(sdp), .. }) => sdp.clone(),
        other => panic!("no answer in {reply:?} ({other:?})"),
    }
}

/// Publishes `stream_id` from a fresh publisher peer; returns the peer with the answer applied.
async fn publish_new(client: &mut Client, stream_id: &str) -> LoopbackPeer {
    let peer = LoopbackPeer::publisher().await;
    let reply = publish(client, stream_id, &peer.offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    peer.accept(&answer(&reply)).await;
    peer
}

fn stream_of(user_id: &str, stream_id: &str) -> StreamInfo {
    StreamInfo {
        user: user(user_id),
        stream_id: stream_id.into(),
        extra_info: format!("extra of {stream_id}"),
    }
}

async fn room_with(server: &ServerHandle, users: &[&str]) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for user_id in users {
        let (client, _) = Client::join(&server.ws_url(), user_id, "room").await;
        for earlier in &mut clients {
            assert!(matches!(
                earlier.event().await,
                ServerMessage::UserUpdate {
                    update_type: UpdateType::Add,
                    ..
                }
            ));
        }
        clients.push(client);
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_play_get_answers_with_one_candidate_at_the_media_address_and_connect() {
    let server = start(ServerConfig::default()).await;
    let mut room = room_with(&server, &["host", "viewer"]).await;
    let [host, viewer] = &mut room[..] else {
        unreachable!()
    };

    let mut publisher = LoopbackPeer::publisher().await;
    let reply = publish(host, "live", &publisher.offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    let sdp = answer(&reply);
    assert!(sdp.contains("a=ice-lite"), "{sdp}");
    let media = server.media_addr();
    let found = candidates(&sdp);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|(ip, port)| *ip == media.ip().to_string() && *port == media.port()),
        "{found:?}"
    );
    let mut distinct = found.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 1, "one candidate: {found:?}");
    publisher.accept(&sdp).await;
    publisher.wait_connected().await;

    assert_eq!(
        viewer.event().await,
        ServerMessage::StreamUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Add,
            streams: vec![stream_of("host", "live")],
            reasons: vec![]
        }
    );
    let mut player = LoopbackPeer::player(sdk_media_engine(), None).await;
    let reply = play(viewer, "live", &player.offer, false).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    player.accept(&answer(&reply)).await;
    player.wait_connected().await;

    // Someone arriving later finds the stream in the login snapshot.
    let (_late, snapshot) = Client::join(&server.ws_url(), "late", "room").await;
    let ReplyResult::Login { streams, .. } = snapshot else {
        panic!()
    };
    assert_eq!(streams, vec![stream_of("host", "live")]);
    let metrics = server.metrics_text();
    assert!(metrics.contains("\nzego_streams 1\n"), "{metrics}");
    assert!(metrics.contains("\nzego_players 1\n"), "{metrics}");
    publisher.close().await;
    player.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_id_belongs_to_its_publisher_who_may_publish_it_again() {
    let server = start(ServerConfig::default()).await;
    let mut room = room_with(&server, &["a", "b"]).await;
    let [a, b] = &mut room[..] else {
        unreachable!()
    };
    let _first = publish_new(a, "s").await;
    b.event().await;

    let intruder = LoopbackPeer::publisher().await;
    let reply = publish(b, "s", &intruder.offer).await;
    assert_eq!(reply.code, error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED);
    assert!(reply.result.is_none());

    // The owner restoring its media publishes again from a new peer connection: accepted, nobody told.
    let _restored = publish_new(a, "s").await;
    b.expect_quiet(Duration::from_millis(300)).await;

    // Stopped by its owner: the id is free again.
    let reply = a
        .request(|req_id| ClientMessage::StopPublish {
            req_id,
            stream_id: "s".into(),
        })
        .await;
    assert_eq!(reply.code, 0);
    let ServerMessage::StreamUpdate {
        update_type: UpdateType::Delete,
        reasons,
        ..
    } = b.event().await
    else {
        panic!()
    };
    assert_eq!(reasons[0].code, reason::STOPPED);
    let _now_b = publish_new(b, "s").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_user_s_streams_go_with_reason_3_and_its_players_stop() {
    let server = start(ServerConfig::default()).await;
    let mut room = room_with(&server, &["dup", "viewer"]).await;
    let [dup, viewer] = &mut room[..] else {
        unreachable!()
    };
    let _publisher = publish_new(dup, "dup-stream").await;
    viewer.event().await;
    let player = LoopbackPeer::player(sdk_media_engine(), None).await;
    assert_eq!(
        play(viewer, "dup-stream", &player.offer, false).await.code,
        0
    );

    let (_again, _) = Client::join(&server.ws_url(), "dup", "room").await;
    assert!(matches!(
        dup.next().await,
        Some(ServerMessage::Kicked {
            code: error::ROOM_KICKED_OUT_SAME_USER,
            ..
        })
    ));
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(viewer.event().await);
    }
    assert_eq!(
        events[0],
        ServerMessage::PlayStopped {
            stream_id: "dup-stream".into(),
            code: reason::REPEATED_LOGIN
        }
    );
    assert!(matches!(&events[1],
        ServerMessage::StreamUpdate { update_type: UpdateType::Delete, reasons, .. }
            if reasons[0].code == reason::REPEATED_LOGIN && reasons[0].stream_id == "dup-stream"));
    assert!(
        matches!(&events[2], ServerMessage::UserUpdate { update_type: UpdateType::Delete, users, .. } if users == &vec![user("dup")])
    );
    assert!(
        matches!(&events[3], ServerMessage::UserUpdate { update_type: UpdateType::Add, users, .. } if users == &vec![user("dup")])
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_play_starts_when_the_stream_is_published() {
    let server = start(ServerConfig::default()).await;
    // The player is in another room: streams of the app can be played from anywhere in it.
    let (mut viewer, _) = Client::join(&server.ws_url(), "viewer", "lobby").await;
    let (mut host, _) = Client::join(&server.ws_url(), "host", "stage").await;

    let mut player = LoopbackPeer::player(sdk_media_engine(), None).await;
    let reply = play(&mut viewer, "soon", &player.offer, true).await;
    assert_eq!(reply.code, error::PLAYER_STREAM_NOT_EXIST);
    assert_eq!(
        reply.result,
        Some(ReplyResult::Play {
            sdp: None,
            waiting: true
        })
    );

    let mut publisher = publish_new(&mut host, "soon").await;
    let ServerMessage::PlayStarted { stream_id, sdp } = viewer.event().await else {
        panic!()
    };
    assert_eq!(stream_id, "soon");
    player.accept(&sdp).await;
    publisher.wait_connected().await;
    player.wait_connected().await;

    // The stream goes: its player hears PlayStopped (not a stream event of a room it is not in).
    let reply = host
        .request(|req_id| ClientMessage::StopPublish {
            req_id,
            stream_id: "soon".into(),
        })
        .await;
    assert_eq!(reply.code, 0);
    assert_eq!(
        viewer.event().await,
        ServerMessage::PlayStopped {
            stream_id: "soon".into(),
            code: reason::STOPPED
        }
    );
    viewer.expect_quiet(Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_of_missing_streams_and_bad_offers_are_refused() {
    let server = start(ServerConfig::default()).await;
    let (mut client, _) = Client::join(&server.ws_url(), "c", "room").await;
    let player = LoopbackPeer::player(sdk_media_engine(), None).await;
    let reply = play(&mut client, "nothing", &player.offer, false).await;
    assert_eq!(
        (reply.code, reply.result),
        (error::PLAYER_STREAM_NOT_EXIST, None)
    );
    let reply = client
        .request(|req_id| ClientMessage::StopPlay {
            req_id,
            stream_id: "nothing".into(),
        })
        .await;
    assert_eq!(reply.code, error::PLAYER_STREAM_NOT_PLAYED);

    let reply = publish(&mut client, "s", "v=0\r\nnot an offer\r\n").await;
    assert_eq!(reply.code, error::COMMON_INVALID_PARAMETER);
    assert!(reply.message.contains("SDP"), "{}", reply.message);
    // The refused publish left nothing behind: a real offer for the same id works.
    let _peer = publish_new(&mut client, "s").await;
    let reply = publish(&mut client, "bad id", &player.offer).await;
    assert_eq!(reply.code, error::COMMON_STREAM_ID_INVALID_CHARACTER);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_extra_info_updates_reach_the_room() {
    let server = start(ServerConfig::default()).await;
    let mut room = room_with(&server, &["a", "b"]).await;
    let [a, b] = &mut room[..] else {
        unreachable!()
    };
    let _peer = publish_new(a, "s").await;
    b.event().await;
    let reply = a
        .request(|req_id| ClientMessage::SetStreamExtraInfo {
            req_id,
            stream_id: "s".into(),
            extra_info: "now with captions".into(),
        })
        .await;
    assert_eq!(reply.code, 0);
    let ServerMessage::StreamExtraInfoUpdate { room_id, streams } = b.event().await else {
        panic!()
    };
    assert_eq!(room_id, "room");
    assert_eq!(streams[0].extra_info, "now with captions");
    let reply = b
        .request(|req_id| ClientMessage::SetStreamExtraInfo {
            req_id,
            stream_id: "s".into(),
            extra_info: "hijack".into(),
        })
        .await;
    assert_eq!(reply.code, error::PUBLISHER_UPDATE_EXTRA_INFO_FAILED);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_publisher_s_stream_is_deleted_with_reason_2() {
    let server = start(ServerConfig {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(1500),
        ..ServerConfig::default()
    })
    .await;
    // The offer is built before the room so that the silent publisher has the whole timeout for
    // its publish, however slowly a loaded machine builds peers.
    let peer = LoopbackPeer::publisher().await;
    let mut room = room_with(&server, &["dying", "watcher"]).await;
    let mut watcher = room.pop().unwrap();
    let mut dying = room.pop().unwrap();
    let reply = publish(&mut dying, "last-words", &peer.offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    drop(dying);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen.iter().any(|m| {
        matches!(
            m,
            ServerMessage::UserUpdate {
                update_type: UpdateType::Delete,
                ..
            }
        )
    }) {
        assert!(Instant::now() < deadline, "{seen:?}");
        assert_eq!(watcher.heartbeat().await.code, 0);
        while let Ok(Some(msg)) = watcher.next_within(Duration::from_millis(100)).await {
            seen.push(msg);
        }
    }
    let deletes: Vec<&ServerMessage> = seen
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMessage::StreamUpdate {
                    update_type: UpdateType::Delete,
                    ..
                }
            )
        })
        .collect();
    let ServerMessage::StreamUpdate {
        streams, reasons, ..
    } = deletes[0]
    else {
        unreachable!()
    };
    assert_eq!(streams[0].stream_id, "last-words");
    assert_eq!(reasons[0].code, reason::HEARTBEAT_TIMEOUT);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_privileges_decide_what_may_be_published() {
    let server = start(ServerConfig::default()).await;
    let url = server.ws_url();
    let join = |user_id: &'static str, privilege| {
        let token = dev_token(user_id, 600, privilege);
        Client::join_with(
            &url,
            login_message(0, DEV_APP_ID, "room", user_id, Credentials::Token { token }),
        )
    };
    let (mut viewer, _) = join("viewer", room_privilege("room", false, None)).await;
    let offer = LoopbackPeer::publisher().await;
    assert_eq!(
        publish(&mut viewer, "v", &offer.offer).await.code,
        error::PUBLISHER_AUTH_FAILED
    );

    let (mut host, _) = join("host", room_privilege("room", true, Some(&["main"]))).await;
    assert_eq!(
        publish(&mut host, "other", &offer.offer).await.code,
        error::PUBLISHER_AUTH_FAILED
    );
    let _peer = publish_new(&mut host, "main").await;

    // While publishing, a renewed token must keep allowing it.
    let weaker = dev_token("host", 900, room_privilege("room", false, None));
    let reply = host
        .request(|req_id| ClientMessage::RenewToken {
            req_id,
            token: weaker,
        })
        .await;
    assert_eq!(reply.code, error::ROOM_RENEWED_TOKEN_NO_PUBLISH_PRIVILEGE);
    let same = dev_token("host", 900, room_privilege("room", true, Some(&["main"])));
    let reply = host
        .request(|req_id| ClientMessage::RenewToken {
            req_id,
            token: same,
        })
        .await;
    assert_eq!(reply.code, 0);
    server.shutdown().await;
}
