//! What clients see when the media side fails them: offers the relay cannot use, malformed offers, and publishers
//! whose media vanishes while their signaling stays.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use tokio::net::UdpSocket;
use zego_protocol::error;
use zego_protocol::message::{
    stream_delete_reason as reason, ClientMessage, ReplyResult, ServerMessage, UpdateType,
};
use zego_server::{ServerConfig, ServerHandle};
use zego_test_kit::{candidates, sdk_media_engine, LoopbackPeer};

async fn publish(client: &mut Client, stream_id: &str, offer: &str) -> Reply {
    client
        .request(|req_id| ClientMessage::Publish {
            req_id,
            stream_id: stream_id.into(),
            extra_info: String::new(),
            sdp: offer.into(),
        })
        .await
}

async fn play(client: &mut Client, stream_id: &str, offer: &str) -> Reply {
    client
        .request(|req_id| ClientMessage::Play {
            req_id,
            stream_id: stream_id.into(),
            sdp: offer.into(),
            wait: false,
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

/// An offer of one VP8 video m-line, `direction` as a=sendonly or a=recvonly.
fn vp8_offer(direction: &str) -> String {
    let fingerprint: Vec<String> = (0..32).map(|i| format!("{:02X}", i * 7)).collect();
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        &format!("a=fingerprint:sha-256 {}", fingerprint.join(":")),
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=setup:actpass",
        "a=mid:0",
        "a=ice-ufrag:Zq3v",
        "a=ice-pwd:3nKCtYNXmFk3f0fGgnB1t9hM",
        "a=rtcp-mux",
        &format!("a={direction}"),
        "a=rtpmap:96 VP8/90000",
        "a=ssrc:1111 cname:vp8",
        "",
    ]
    .join("\r\n")
}

/// The answer's m-line of a kind.
fn m_line<'a>(answer: &'a str, kind: &str) -> &'a str {
    answer
        .lines()
        .find(|l| l.starts_with(&format!("m={kind} ")))
        .unwrap_or_else(|| panic!("no {kind} m-line in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_the_relay_cannot_use_are_refused_naming_what_is_missing() {
    let server = start(ServerConfig::default()).await;
    let (mut a, _) = Client::join(&server.ws_url(), "a", "room").await;

    let reply = publish(&mut a, "vp8", &vp8_offer("sendonly")).await;
    assert_eq!(reply.code, error::COMMON_INVALID_PARAMETER, "{reply:?}");
    assert!(
        reply
            .message
            .contains("video: no H.264 (constrained baseline, main or high profile"),
        "{reply:?}"
    );
    assert!(reply.message.contains("offered: VP8/90000"), "{reply:?}");

    let peer = LoopbackPeer::publisher().await;
    let reply = publish(&mut a, "live", &peer.offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    peer.accept(&answer(&reply)).await;
    let reply = play(&mut a, "live", &vp8_offer("recvonly")).await;
    assert_eq!(reply.code, error::COMMON_INVALID_PARAMETER, "{reply:?}");
    assert!(reply.message.contains("offered: VP8/90000"), "{reply:?}");

    // Usable audio beside unusable video: answered, with the video rejected in a form the peer takes.
    let peer = LoopbackPeer::publisher().await;
    // High 4:4:4 Predictive: an H.264 profile the relay does not take.
    let offer = peer
        .offer
        .replace("profile-level-id=42e01f", "profile-level-id=f4001f");
    let reply = publish(&mut a, "audio-only", &offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    let answer = answer(&reply);
    let video = m_line(&answer, "video");
    assert!(video.starts_with("m=video 0 UDP/TLS/RTP/SAVPF "), "{video}");
    assert!(
        video.split_whitespace().count() > 3,
        "a rejected m-line keeps a format: {video}"
    );
    peer.accept(&answer).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_offers_are_refused_without_the_server_s_internals() {
    let server = start(ServerConfig::default()).await;
    let (mut a, _) = Client::join(&server.ws_url(), "a", "room").await;
    let real = LoopbackPeer::publisher().await.offer;
    let offers = [
        "x".to_owned(),
        "v=0".to_owned(),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video".to_owned(),
        real[..real.len() / 3].to_owned(),
        real.replacen("UDP/TLS/RTP/SAVPF ", "UDP/TLS/RTP/SAVPF x", 1),
        real.replacen("a=fingerprint:sha-256 ", "a=fingerprint:sha-256 zz", 1),
        real.replacen("a=rtpmap:102 ", "a=rtpmap:x ", 1),
    ];
    for offer in &offers {
        let reply = publish(&mut a, "bad", offer).await;
        assert_eq!(
            reply.code,
            error::COMMON_INVALID_PARAMETER,
            "{offer:?}: {reply:?}"
        );
        for internal in [
            "0x",
            "PointerOffset",
            ".rs",
            "/home",
            "/root",
            "/usr",
            "/work",
            "src/",
        ] {
            assert!(
                !reply.message.contains(internal),
                "{internal:?} in {:?}",
                reply.message
            );
        }
    }
    server.shutdown().await;
}

/// A UDP proxy in front of the relay (which announces it) that can cut one client off, as if its process were
/// killed: nothing from it or to it passes any more.
struct CuttingProxy {
    addr: SocketAddr,
    cut: Arc<Mutex<HashSet<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    async fn bind() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    }

    fn start(front: UdpSocket, relay: SocketAddr) -> CuttingProxy {
        let addr = front.local_addr().unwrap();
        let front = Arc::new(front);
        let cut: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
        let cut_in_task = cut.clone();
        let task = tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, client)) = front.recv_from(&mut buf).await else {
                    return;
                };
                if cut_in_task.lock().contains(&client) {
                    continue;
                }
                let upstream = match upstreams.get(&client) {
                    Some(u) => u.clone(),
                    None => {
                        let u = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        upstreams.insert(client, u.clone());
                        let (u2, front2, cut) = (u.clone(), front.clone(), cut_in_task.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 4096];
                            while let Ok((len, _)) = u2.recv_from(&mut buf).await {
                                if !cut.lock().contains(&client) {
                                    let _ = front2.send_to(&buf[..len], client).await;
                                }
                            }
                        });
                        u
                    }
                };
                let _ = upstream.send_to(&buf[..len], relay).await;
            }
        });
        CuttingProxy { addr, cut, task }
    }

    /// Cuts off the peer whose offer this is.
    fn cut_off(&self, offer: &str) {
        let mut cut = self.cut.lock();
        for (ip, port) in candidates(offer) {
            cut.insert(SocketAddr::new(ip.parse().unwrap(), port));
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server whose relay is reached through a proxy that can cut peers off.
async fn start_behind_proxy() -> (ServerHandle, CuttingProxy) {
    let (front, front_addr) = CuttingProxy::bind().await;
    let server = start(ServerConfig {
        media_announce: Some(front_addr),
        ..ServerConfig::default()
    })
    .await;
    let proxy = CuttingProxy::start(front, server.media_addr());
    assert_eq!(proxy.addr, front_addr);
    (server, proxy)
}

/// Waits for the deletion of `stream_id` with `code`, and for the end of the watcher's play of it; prints how long
/// that took (the number docs/reliability.md records).
async fn expect_deleted(watcher: &mut Client, stream_id: &str, code: u32, within: Duration) {
    let start = Instant::now();
    let deadline = start + within;
    let (mut deleted, mut play_stopped) = (false, false);
    let mut seen = Vec::new();
    while !(deleted && play_stopped) {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match watcher.next_within(left).await {
            Ok(Some(msg)) => msg,
            _ => panic!("not deleted within {within:?}; saw {seen:?}"),
        };
        match &msg {
            ServerMessage::StreamUpdate {
                update_type: UpdateType::Delete,
                streams,
                reasons,
                ..
            } if streams[0].stream_id == stream_id => {
                assert_eq!(reasons[0].code, code, "{msg:?}");
                deleted = true;
            }
            ServerMessage::PlayStopped {
                stream_id: s,
                code: c,
            } if s == stream_id => {
                assert_eq!(*c, code, "{msg:?}");
                play_stopped = true;
            }
            _ => {}
        }
        seen.push(msg);
    }
    eprintln!(
        "{stream_id}: deleted {:?} after its media stopped",
        start.elapsed()
    );
}

/// A publisher live in a room with a watcher playing it; returns (publisher's client, its peer, watcher).
async fn live_stream(
    server: &ServerHandle,
    stream_id: &str,
) -> (Client, LoopbackPeer, Client, LoopbackPeer) {
    let mut publisher_peer = LoopbackPeer::publisher().await;
    let mut player_peer = LoopbackPeer::player(sdk_media_engine(), None).await;
    let (mut publisher, _) = Client::join(&server.ws_url(), "publisher", "room").await;
    let (mut watcher, _) = Client::join(&server.ws_url(), "watcher", "room").await;
    let reply = publish(&mut publisher, stream_id, &publisher_peer.offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    publisher_peer.accept(&answer(&reply)).await;
    publisher_peer.wait_connected().await;
    let reply = play(&mut watcher, stream_id, &player_peer.offer).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    player_peer.accept(&answer(&reply)).await;
    player_peer.wait_connected().await;
    (publisher, publisher_peer, watcher, player_peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_media_vanishes_loses_its_stream_within_seconds_while_its_signaling_stays(
) {
    let (server, proxy) = start_behind_proxy().await;
    let (mut publisher, publisher_peer, mut watcher, _player_peer) =
        live_stream(&server, "vanishing").await;

    proxy.cut_off(&publisher_peer.offer);
    expect_deleted(
        &mut watcher,
        "vanishing",
        reason::HEARTBEAT_TIMEOUT,
        Duration::from_secs(5),
    )
    .await;
    // Its signaling session is still there: it may publish again.
    assert_eq!(publisher.heartbeat().await.code, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_publisher_loses_its_stream_long_before_its_heartbeat_times_out() {
    let (server, proxy) = start_behind_proxy().await;
    let (publisher, publisher_peer, mut watcher, _player_peer) =
        live_stream(&server, "killed").await;

    // Media and signaling end at once, without a logout (the default heartbeat timeout is 30 s).
    proxy.cut_off(&publisher_peer.offer);
    drop(publisher);
    expect_deleted(
        &mut watcher,
        "killed",
        reason::HEARTBEAT_TIMEOUT,
        Duration::from_secs(5),
    )
    .await;
    server.shutdown().await;
}
