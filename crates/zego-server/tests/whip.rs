//! WHIP ingest and WHEP playback over HTTP: their answers and refusals, and a WHIP publisher as a user with a stream
//! in its room. A third-party WHIP client (GStreamer's) is tested against the SDK in `tests/whip_gstreamer.rs`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zego_protocol::error;
use zego_protocol::message::{
    stream_delete_reason as reason, ClientMessage, ReplyResult, ServerMessage, StreamInfo,
    UpdateType, User,
};
use zego_server::{ServerConfig, DEV_APP_ID};
use zego_test_kit::{sdk_media_engine, LoopbackPeer};

/// An HTTP response: status, headers (lowercase names), body.
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// The ZEGO code of a refusal's JSON body.
    fn code(&self) -> u32 {
        let body: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("a JSON body: {}", self.body));
        body["code"].as_u64().expect("a code") as u32
    }
}

/// One HTTP/1.1 request on its own connection.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status: status.parse().unwrap(),
        headers,
        body: body.to_owned(),
    }
}

fn publish_token(user_id: &str, room_id: &str, streams: Option<&[&str]>) -> String {
    dev_token(user_id, 3600, room_privilege(room_id, true, streams))
}

fn play_token(user_id: &str, room_id: &str) -> String {
    dev_token(user_id, 3600, room_privilege(room_id, false, None))
}

/// POSTs an offer to `path` with this token (if any) and content type.
async fn offer(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    sdp: &str,
) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http(addr, "POST", path, &headers, sdp).await
}

fn whip_path(stream_id: &str, user_id: &str, room_id: &str) -> String {
    format!("/whip/{DEV_APP_ID}/{stream_id}?user_id={user_id}&room_id={room_id}")
}

fn whep_path(stream_id: &str, user_id: &str, room_id: &str) -> String {
    format!("/whep/{DEV_APP_ID}/{stream_id}?user_id={user_id}&room_id={room_id}")
}

fn assert_cors(response: &Response) {
    assert_eq!(response.header("access-control-allow-origin"), "*");
    assert!(response
        .header("access-control-allow-headers")
        .contains("If-Match"));
    assert!(response
        .header("access-control-expose-headers")
        .contains("Location"));
}

fn assert_refused(response: &Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.code(), code, "{}", response.body);
    assert_cors(response);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_answers_and_refusals_follow_rfc_9725_with_zego_codes() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let sdp = LoopbackPeer::publisher().await.offer;
    let path = whip_path("live", "obs", "room");
    let token = publish_token("obs", "room", None);

    let preflight = http(addr, "OPTIONS", &path, &[], "").await;
    assert_eq!(preflight.status, 204);
    assert_cors(&preflight);
    assert!(preflight
        .header("access-control-allow-methods")
        .contains("POST"));

    let r = offer(addr, &path, Some(&token), "text/plain", &sdp).await;
    assert_refused(&r, 415, error::COMMON_INVALID_PARAMETER);
    let r = offer(addr, &path, None, "application/sdp", &sdp).await;
    assert_refused(&r, 401, error::ROOM_NO_TOKEN_NO_APP_SIGN);
    let r = offer(addr, &path, Some("04garbage"), "application/sdp", &sdp).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let other_user = publish_token("someone-else", "room", None);
    let r = offer(addr, &path, Some(&other_user), "application/sdp", &sdp).await;
    assert_refused(&r, 401, error::ROOM_TOKEN_USER_ID_ERROR);
    let no_publish = play_token("obs", "room");
    let r = offer(addr, &path, Some(&no_publish), "application/sdp", &sdp).await;
    assert_refused(&r, 403, error::PUBLISHER_AUTH_FAILED);
    let other_stream = publish_token("obs", "room", Some(&["other"]));
    let r = offer(addr, &path, Some(&other_stream), "application/sdp", &sdp).await;
    assert_refused(&r, 403, error::PUBLISHER_AUTH_FAILED);
    let other_room = publish_token("obs", "elsewhere", None);
    let r = offer(addr, &path, Some(&other_room), "application/sdp", &sdp).await;
    assert_refused(&r, 403, error::ROOM_AUTHENTICATION_FAILED);
    let r = offer(
        addr,
        "/whip/999/live?user_id=obs&room_id=room",
        Some(&token),
        "application/sdp",
        &sdp,
    )
    .await;
    assert_refused(&r, 404, error::ENGINE_APP_ID_INCORRECT);
    let r = offer(
        addr,
        &format!("/whip/{DEV_APP_ID}/live"),
        Some(&token),
        "application/sdp",
        &sdp,
    )
    .await;
    assert_refused(&r, 400, error::COMMON_INVALID_PARAMETER);
    assert!(r.body.contains("user_id"), "{}", r.body);
    let vp8_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let r = offer(addr, &path, Some(&token), "application/sdp", vp8_only).await;
    assert_refused(&r, 400, error::COMMON_INVALID_PARAMETER);
    assert!(r.body.len() > 40, "the relay's reason: {}", r.body);
    // Refusals left nobody behind: the same user may publish now.
    let created = offer(addr, &path, Some(&token), "application/sdp", &sdp).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_cors(&created);
    assert_eq!(created.header("content-type"), "application/sdp");
    assert!(created.body.contains("a=ice-lite"), "{}", created.body);
    let location = created.header("location").to_owned();
    assert!(location.starts_with("/whip/session/"), "{location}");
    assert!(location.len() >= "/whip/session/".len() + 32, "{location}");
    let etag = created.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // Stream ids are unique per app, against WHIP and WebSocket publishers alike.
    let second = publish_token("obs2", "room", None);
    let r = offer(
        addr,
        &whip_path("live", "obs2", "room"),
        Some(&second),
        "application/sdp",
        &LoopbackPeer::publisher().await.offer,
    )
    .await;
    assert_refused(&r, 409, error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED);
    let (mut sdk, _) = Client::join(&server.ws_url(), "sdk", "room").await;
    let sdk_offer = LoopbackPeer::publisher().await.offer;
    let reply = sdk
        .request(|req_id| ClientMessage::Publish {
            req_id,
            stream_id: "live".into(),
            extra_info: String::new(),
            sdp: sdk_offer,
        })
        .await;
    assert_eq!(reply.code, error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED);

    // Trickle ICE is accepted and ignored (the relay is ICE-lite); an ICE restart is not supported.
    let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 UDP 2130706431 127.0.0.1 5000 typ host\r\n";
    let trickle = [("Content-Type", "application/trickle-ice-sdpfrag")];
    let r = http(addr, "PATCH", &location, &trickle, frag).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_cors(&r);
    let with_etag = [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("If-Match", etag.as_str()),
    ];
    let r = http(addr, "PATCH", &location, &with_etag, frag).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let stale = [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("If-Match", "\"stale\""),
    ];
    let r = http(addr, "PATCH", &location, &stale, frag).await;
    assert_eq!(r.status, 412, "{}", r.body);
    let restart = [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("If-Match", "*"),
    ];
    let r = http(addr, "PATCH", &location, &restart, frag).await;
    assert_refused(&r, 422, error::COMMON_INVALID_PARAMETER);
    assert!(
        r.body.contains("ICE restart is not supported"),
        "{}",
        r.body
    );
    let r = http(
        addr,
        "PATCH",
        &location,
        &[("Content-Type", "application/sdp")],
        frag,
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = http(addr, "OPTIONS", &location, &[], "").await;
    assert_eq!(r.status, 204);
    assert_cors(&r);

    let r = http(addr, "DELETE", &location, &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_cors(&r);
    let r = http(addr, "DELETE", &location, &[], "").await;
    assert_refused(&r, 404, error::COMMON_INVALID_PARAMETER);
    let r = http(addr, "PATCH", "/whip/session/nope", &trickle, frag).await;
    assert_refused(&r, 404, error::COMMON_INVALID_PARAMETER);
    // A WHIP resource is not a WHEP one.
    let again = offer(addr, &path, Some(&token), "application/sdp", &sdp).await;
    assert_eq!(again.status, 201, "{}", again.body);
    let whep_location = again.header("location").replace("/whip/", "/whep/");
    let r = http(addr, "DELETE", &whep_location, &[], "").await;
    assert_eq!(r.status, 404, "{}", r.body);
    server.shutdown().await;
}

fn stream(user_id: &str, stream_id: &str, extra_info: &str) -> StreamInfo {
    StreamInfo {
        user: User {
            user_id: user_id.into(),
            user_name: user_id.into(),
        },
        stream_id: stream_id.into(),
        extra_info: extra_info.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publisher_is_a_user_with_a_stream_until_deleted() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let (mut viewer, _) = Client::join(&server.ws_url(), "viewer", "room").await;
    let mut publisher = LoopbackPeer::publisher().await;
    let path = format!("{}&extra_info=from-obs", whip_path("cam", "obs", "room"));
    let token = publish_token("obs", "room", Some(&["cam"]));
    let created = offer(
        addr,
        &path,
        Some(&token),
        "application/sdp",
        &publisher.offer,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    publisher.accept(&created.body).await;
    publisher.wait_connected().await;

    let obs = User {
        user_id: "obs".into(),
        user_name: "obs".into(),
    };
    assert_eq!(
        viewer.event().await,
        ServerMessage::UserUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Add,
            users: vec![obs.clone()],
        }
    );
    assert_eq!(
        viewer.event().await,
        ServerMessage::StreamUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Add,
            streams: vec![stream("obs", "cam", "from-obs")],
            reasons: vec![],
        }
    );
    // A later login finds both in its snapshot.
    let (_late, snapshot) = Client::join(&server.ws_url(), "late", "room").await;
    let ReplyResult::Login { users, streams, .. } = snapshot else {
        panic!()
    };
    assert!(users.contains(&obs), "{users:?}");
    assert_eq!(streams, vec![stream("obs", "cam", "from-obs")]);
    assert!(matches!(
        viewer.event().await,
        ServerMessage::UserUpdate { .. }
    ));

    // A WHEP player of the stream, whose resource ends with the stream.
    let mut player = LoopbackPeer::player(sdk_media_engine(), None).await;
    let whep = offer(
        addr,
        &whep_path("cam", "watcher", "room"),
        Some(&play_token("watcher", "room")),
        "application/sdp",
        &player.offer,
    )
    .await;
    assert_eq!(whep.status, 201, "{}", whep.body);
    assert!(whep.header("location").starts_with("/whep/session/"));
    player.accept(&whep.body).await;
    player.wait_connected().await;
    assert!(matches!(
        viewer.event().await,
        ServerMessage::UserUpdate { .. }
    ));

    let r = http(addr, "DELETE", created.header("location"), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        viewer.event().await,
        ServerMessage::StreamUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Delete,
            streams: vec![stream("obs", "cam", "from-obs")],
            reasons: vec![zego_protocol::message::StreamDeleteReason {
                stream_id: "cam".into(),
                code: reason::STOPPED,
            }],
        }
    );
    assert_eq!(
        viewer.event().await,
        ServerMessage::UserUpdate {
            room_id: "room".into(),
            update_type: UpdateType::Delete,
            users: vec![obs],
        }
    );
    // The WHEP viewer's play stopped with the stream, so its session left too.
    let ServerMessage::UserUpdate {
        update_type: UpdateType::Delete,
        users,
        ..
    } = viewer.event().await
    else {
        panic!("the WHEP viewer leaves")
    };
    assert_eq!(users[0].user_id, "watcher");
    let r = http(addr, "DELETE", whep.header("location"), &[], "").await;
    assert_eq!(r.status, 404, "{}", r.body);
    publisher.close().await;
    player.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_follows_the_play_rules() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let player = LoopbackPeer::player(sdk_media_engine(), None).await;
    let path = whep_path("nothing", "watcher", "room");
    let r = offer(addr, &path, None, "application/sdp", &player.offer).await;
    assert_refused(&r, 401, error::ROOM_NO_TOKEN_NO_APP_SIGN);
    let token = play_token("watcher", "room");
    let r = offer(addr, &path, Some(&token), "application/sdp", &player.offer).await;
    assert_refused(&r, 404, error::PLAYER_STREAM_NOT_EXIST);
    let r = offer(addr, &path, Some(&token), "application/json", &player.offer).await;
    assert_refused(&r, 415, error::COMMON_INVALID_PARAMETER);
    let preflight = http(addr, "OPTIONS", &path, &[], "").await;
    assert_eq!(preflight.status, 204);
    assert_cors(&preflight);
    // A refused play left no user in the room.
    let (_c, snapshot) = Client::join(&server.ws_url(), "check", "room").await;
    let ReplyResult::Login { users, .. } = snapshot else {
        panic!()
    };
    assert_eq!(users.len(), 1, "{users:?}");
    server.shutdown().await;
}

fn packets_forwarded(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("zego_relay_packets_forwarded_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The relay reports a WHIP publisher's end like any publisher's: its stream is deleted, and then its user leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publisher_whose_media_ends_leaves_the_room() {
    let server = start(ServerConfig {
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await;
    let (mut viewer, _) = Client::join(&server.ws_url(), "viewer", "room").await;
    let mut publisher = LoopbackPeer::publisher().await;
    let token = publish_token("obs", "room", None);
    let created = offer(
        server.http_addr(),
        &whip_path("cam", "obs", "room"),
        Some(&token),
        "application/sdp",
        &publisher.offer,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    publisher.accept(&created.body).await;
    publisher.wait_connected().await;
    assert!(matches!(
        viewer.event().await,
        ServerMessage::UserUpdate { .. }
    ));
    assert!(matches!(
        viewer.event().await,
        ServerMessage::StreamUpdate { .. }
    ));

    // The peer closes (DTLS close): after the publisher's grace, its stream goes with reason 5, then its user.
    publisher.close().await;
    let ended = Instant::now();
    let mut events = Vec::new();
    while events.len() < 2 && ended.elapsed() < Duration::from_secs(10) {
        assert_eq!(viewer.heartbeat().await.code, 0);
        if let Ok(Some(event)) = viewer.next_within(Duration::from_millis(300)).await {
            events.push(event);
        }
    }
    let [ServerMessage::StreamUpdate {
        update_type: UpdateType::Delete,
        reasons,
        ..
    }, ServerMessage::UserUpdate {
        update_type: UpdateType::Delete,
        users,
        ..
    }] = &events[..]
    else {
        panic!("a stream delete, then a user delete: {events:?}")
    };
    assert_eq!(reasons[0].code, reason::DISCONNECTED, "{reasons:?}");
    assert_eq!(users[0].user_id, "obs");
    assert!(ended.elapsed() < Duration::from_secs(8));
    let r = http(
        server.http_addr(),
        "DELETE",
        created.header("location"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    server.shutdown().await;
}

/// Media published over WHIP reaches a player over WHEP: the relay forwards the publisher's audio packets to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_from_a_whip_publisher_to_a_whep_player() {
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
    use zego_test_kit::{add_sendonly, default_interceptors, h264, local_track, opus};

    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let mut media = sdk_media_engine();
    let registry = default_interceptors(&mut media);
    let mut publisher = LoopbackPeer::build(media, registry, None).await;
    let (video_ssrc, audio_ssrc) = (rand::random(), rand::random());
    let audio = local_track(RtpCodecKind::Audio, audio_ssrc, opus());
    add_sendonly(
        &*publisher.pc,
        local_track(RtpCodecKind::Video, video_ssrc, h264()),
    )
    .await;
    add_sendonly(&*publisher.pc, audio.clone()).await;
    publisher.make_offer().await;
    let created = offer(
        addr,
        &whip_path("live", "obs", "room"),
        Some(&publish_token("obs", "room", None)),
        "application/sdp",
        &publisher.offer,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    publisher.accept(&created.body).await;
    publisher.wait_connected().await;

    let mut player = LoopbackPeer::player(sdk_media_engine(), None).await;
    let played = offer(
        addr,
        &whep_path("live", "viewer", "room"),
        Some(&play_token("viewer", "room")),
        "application/sdp",
        &player.offer,
    )
    .await;
    assert_eq!(played.status, 201, "{}", played.body);
    player.accept(&played.body).await;
    player.wait_connected().await;

    let opus_pt = payload_type(&created.body, "opus/");
    assert_eq!(packets_forwarded(&server.metrics_text()), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0u32;
    while packets_forwarded(&server.metrics_text()) < 25 {
        assert!(
            Instant::now() < deadline,
            "{sent} packets sent, {} forwarded",
            packets_forwarded(&server.metrics_text())
        );
        let mut payload = b"whip audio ".to_vec();
        payload.extend_from_slice(&sent.to_be_bytes());
        audio
            .sample_writer(audio_ssrc, opus_pt)
            .write_sample(&rtc::media::Sample {
                data: bytes::Bytes::from(payload),
                duration: Duration::from_millis(20),
                ..rtc::media::Sample::new(std::time::Instant::now())
            })
            .await
            .expect("audio sample");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.close().await;
    player.close().await;
    server.shutdown().await;
}

/// The payload type an SDP gives an encoding (its first `a=rtpmap` of that name).
fn payload_type(sdp: &str, encoding: &str) -> u8 {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|l| l.split_once(' '))
        .find(|(_, e)| e.to_ascii_lowercase().starts_with(encoding))
        .and_then(|(pt, _)| pt.parse().ok())
        .unwrap_or_else(|| panic!("no {encoding} in {sdp}"))
}
