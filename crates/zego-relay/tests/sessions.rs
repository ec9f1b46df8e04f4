//! Session lifecycle: closing, timeouts, rejected offers.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCSessionDescription,
};
use zego_relay::{RelayError, RelayEvent, RelayOptions};
use zego_test_kit::{add_recvonly, add_sendonly, codec, local_track, media_engine, opus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_stops_forwarding() {
    let relay = start_relay().await;
    let mut events = relay.events();
    let clip = Arc::new(EncodedClip::encode(60, 30, 300_000, 320, 240).await);
    let publisher = Arc::new(Publisher::connect(&relay, key("c")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip, b"A", stop.clone());
    let kept = Player::connect(&relay, key("c")).await;
    let closed = Player::connect(&relay, key("c")).await;
    wait_for("media to both players", Duration::from_secs(3), || {
        kept.received.audio_len() > 10 && closed.received.audio_len() > 10
    })
    .await;

    relay.close_session(closed.peer.session);
    wait_event(
        &mut events,
        RelayEvent::Disconnected(closed.peer.session),
        Duration::from_secs(1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (closed_count, kept_count) = (closed.received.audio_len(), kept.received.audio_len());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        closed.received.audio_len(),
        closed_count,
        "a closed player gets nothing more"
    );
    assert!(
        kept.received.audio_len() > kept_count + 10,
        "the other player still gets media"
    );
    assert_eq!(relay.metrics().players, 1);

    relay.close_session(publisher.peer.session);
    wait_event(
        &mut events,
        RelayEvent::Disconnected(publisher.peer.session),
        Duration::from_secs(1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (kept_count, forwarded) = (kept.received.audio_len(), relay.metrics().packets_forwarded);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kept.received.audio_len(),
        kept_count,
        "no media once the publisher is closed"
    );
    assert_eq!(relay.metrics().packets_forwarded, forwarded);
    assert_eq!(relay.metrics().publishers, 0);
    stop.store(true, Ordering::Relaxed);
    let _ = streaming.await;
    relay.shutdown().await;
}

struct NoEvents;

#[async_trait::async_trait]
impl PeerConnectionEventHandler for NoEvents {}

/// An offer from a `webrtc` crate peer with the given media engine and receive-only transceivers.
async fn recvonly_offer(media: MediaEngine) -> (impl PeerConnection, String) {
    let pc = peer_with(media).await;
    add_recvonly(&pc, &[RtpCodecKind::Video]).await;
    offer_made(pc).await
}

/// An offer from a `webrtc` crate peer with these codecs and one transceiver of each kind: sending a track of the
/// first codec of its kind, or receiving.
async fn offer_of(
    codecs: &[(RTCRtpCodec, u8, RtpCodecKind)],
    direction: RTCRtpTransceiverDirection,
    kinds: &[RtpCodecKind],
) -> (impl PeerConnection, String) {
    let pc = peer_with(media_engine(codecs)).await;
    for &kind in kinds {
        if direction == RTCRtpTransceiverDirection::Sendonly {
            let (codec, _, _) = codecs.iter().find(|(_, _, k)| *k == kind).unwrap();
            add_sendonly(&pc, local_track(kind, rand::random(), codec.clone())).await;
        } else {
            add_recvonly(&pc, &[kind]).await;
        }
    }
    offer_made(pc).await
}

async fn peer_with(media: MediaEngine) -> impl PeerConnection {
    PeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_handler(Arc::new(NoEvents))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .unwrap()
}

async fn offer_made(pc: impl PeerConnection) -> (impl PeerConnection, String) {
    let offer = pc.create_offer(None).await.unwrap();
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer).await.unwrap();
    (pc, sdp)
}

fn default_codecs() -> MediaEngine {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    media
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_connects_is_cleaned_up() {
    let relay = start_relay().await;
    let mut events = relay.events();
    let publisher = Publisher::connect(&relay, key("nc")).await;

    // The answer never reaches the player, so it never connects.
    let (_pc, offer) = recvonly_offer(default_codecs()).await;
    let (session, _answer) = relay.play(key("nc"), &offer).await.unwrap();
    assert_eq!(relay.metrics().players, 1);
    wait_event(
        &mut events,
        RelayEvent::Disconnected(session),
        test_options().connect_timeout + Duration::from_secs(1),
    )
    .await;
    assert_eq!(relay.metrics().players, 0);
    assert_eq!(
        relay.metrics().publishers,
        1,
        "the publisher is not affected"
    );
    publisher.peer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_publisher_was_replaced_before_anyone_played_it_can_be_played() {
    let relay = start_relay().await;
    let first = Publisher::connect(&relay, key("again")).await;
    // The same stream again (a publisher whose transport failed publishes anew), with no player yet.
    let second = Publisher::connect(&relay, key("again")).await;
    assert_eq!(relay.metrics().publishers, 1);
    let (_pc, offer) = recvonly_offer(default_codecs()).await;
    let played = relay.play(key("again"), &offer).await;
    assert!(played.is_ok(), "{played:?}");
    first.peer.close().await;
    second.peer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_goes_silent_is_cleaned_up() {
    let proxy_socket = common::lossy_proxy::ProxySocket::bind().await;
    let relay = start_relay_announcing(Some(proxy_socket.addr)).await;
    let proxy = common::lossy_proxy::LossyProxy::start(
        proxy_socket,
        relay.local_addr(),
        u64::MAX,
        Arc::new(AtomicBool::new(false)),
    );
    let mut events = relay.events();
    let publisher = Publisher::connect(&relay, key("silent")).await;
    wait_event(
        &mut events,
        RelayEvent::Connected(publisher.peer.session),
        Duration::from_secs(1),
    )
    .await;

    // The network path dies without a goodbye.
    proxy.blackhole.store(true, Ordering::Relaxed);
    let started = std::time::Instant::now();
    wait_event(
        &mut events,
        RelayEvent::Lost(publisher.peer.session),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the peer could have been silent a while"
    );
    assert_eq!(relay.metrics().publishers, 0);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_and_unknown_streams_are_rejected() {
    let relay = start_relay().await;

    let garbage = relay.publish(key("x"), "this is not SDP").await;
    assert!(
        matches!(garbage, Err(RelayError::BadOffer(_))),
        "{garbage:?}"
    );

    let (_pc, offer) = recvonly_offer(default_codecs()).await;
    let unknown = relay.play(key("nobody publishes this"), &offer).await;
    assert!(
        matches!(unknown, Err(RelayError::StreamNotPublished)),
        "{unknown:?}"
    );

    // A publisher offering only VP8 has nothing the relay can forward.
    let (_pc, offer) = recvonly_offer(media_engine(&[vp8_codec()])).await;
    let vp8 = relay.publish(key("vp8"), &offer).await;
    assert!(matches!(vp8, Err(RelayError::BadOffer(_))), "{vp8:?}");

    let m = relay.metrics();
    assert_eq!((m.publishers, m.players), (0, 0));
    relay.shutdown().await;
    assert!(matches!(
        relay.publish(key("y"), "v=0").await,
        Err(RelayError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_publisher_that_sends_no_media_is_not_lost() {
    let relay = start_relay().await;
    let mut events = relay.events();
    let publisher = Publisher::connect(&relay, key("quiet")).await;
    wait_event(
        &mut events,
        RelayEvent::Connected(publisher.peer.session),
        Duration::from_secs(1),
    )
    .await;

    // No media at all: only the peer's consent checks and reports arrive, for longer than a lost peer is kept.
    let quiet = RelayOptions::default().publisher_lost_timeout * 2;
    let ended = tokio::time::timeout(quiet, async {
        loop {
            match events.recv().await {
                Ok(e @ (RelayEvent::Lost(_) | RelayEvent::Disconnected(_))) => return e,
                Ok(_) => {}
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    })
    .await;
    assert!(ended.is_err(), "a live publisher was ended: {ended:?}");
    assert_eq!(relay.metrics().publishers, 1);
    publisher.peer.close().await;
    relay.shutdown().await;
}

fn refusal(result: Result<(zego_relay::SessionId, String), RelayError>) -> String {
    match result {
        Err(RelayError::BadOffer(message)) => message,
        other => panic!("not refused as a bad offer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_with_nothing_usable_is_refused_naming_what_is_missing() {
    let relay = start_relay().await;
    let (_pc, offer) = offer_of(
        &[vp8_codec()],
        RTCRtpTransceiverDirection::Sendonly,
        &[RtpCodecKind::Video],
    )
    .await;
    let message = refusal(relay.publish(key("vp8"), &offer).await);
    assert!(
        message.contains("video: no H.264 (constrained baseline, main or high profile"),
        "{message}"
    );
    assert!(message.contains("offered: VP8/90000"), "{message}");

    // H.264, but a profile the relay does not take (High 4:4:4 Predictive).
    let high444 = codec(
        MIME_TYPE_H264,
        90_000,
        0,
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=f4001f",
    );
    let (_pc, offer) = offer_of(
        &[(high444, 100, RtpCodecKind::Video)],
        RTCRtpTransceiverDirection::Sendonly,
        &[RtpCodecKind::Video],
    )
    .await;
    let message = refusal(relay.publish(key("high444"), &offer).await);
    assert!(
        message.contains("offered: H264/90000 packetization-mode=0 profile-level-id=f4001f"),
        "{message}"
    );

    let _publisher = Publisher::connect(&relay, key("live")).await;
    let (_pc, offer) = recvonly_offer(media_engine(&[vp8_codec()])).await;
    let message = refusal(relay.play(key("live"), &offer).await);
    assert!(message.starts_with("a player must receive"), "{message}");
    assert!(message.contains("offered: VP8/90000"), "{message}");
    assert_eq!(relay.metrics().players, 0);
    relay.shutdown().await;
}

/// What WHIP encoders offer besides the SDK's format: Main and High at their own levels, single NAL unit mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_high_and_single_nal_unit_h264_are_taken_from_publishers() {
    let relay = start_relay().await;
    for (n, fmtp) in [
        "packetization-mode=1;profile-level-id=640c1f",
        "packetization-mode=0;profile-level-id=640028",
        "packetization-mode=1;profile-level-id=4d0029",
        "packetization-mode=0;profile-level-id=42e01f",
        "packetization-mode=1;profile-level-id=42c015",
    ]
    .into_iter()
    .enumerate()
    {
        let h264 = codec(MIME_TYPE_H264, 90_000, 0, fmtp);
        let (_pc, offer) = offer_of(
            &[(h264, 96, RtpCodecKind::Video)],
            RTCRtpTransceiverDirection::Sendonly,
            &[RtpCodecKind::Video],
        )
        .await;
        let (_, answer) = relay
            .publish(key(&format!("encoder-{n}")), &offer)
            .await
            .unwrap_or_else(|e| panic!("{fmtp}: {e}"));
        let video = m_line(&answer, "video");
        assert!(video.starts_with("m=video 9 "), "{fmtp}: {answer}");
        let (mode, profile) = fmtp.split_once(';').unwrap();
        let answered = answer
            .lines()
            .find(|l| l.starts_with("a=fmtp:96 "))
            .unwrap_or_else(|| panic!("{fmtp}: {answer}"));
        assert!(answered.contains(mode), "{fmtp}: {answered}");
        // The profile is answered as offered or as the relay's own of the same profile.
        let profile_idc = &profile["profile-level-id=".len()..][..2];
        assert!(
            answered.contains(&format!("profile-level-id={profile_idc}")),
            "{fmtp}: {answered}"
        );
    }
    relay.shutdown().await;
}

fn vp8_codec() -> (RTCRtpCodec, u8, RtpCodecKind) {
    (codec(MIME_TYPE_VP8, 90_000, 0, ""), 96, RtpCodecKind::Video)
}

fn opus_codec() -> (RTCRtpCodec, u8, RtpCodecKind) {
    (opus(), zego_rtp::OPUS_PAYLOAD_TYPE, RtpCodecKind::Audio)
}

/// The answer's m-line of a kind.
fn m_line<'a>(answer: &'a str, kind: &str) -> &'a str {
    answer
        .lines()
        .find(|l| l.starts_with(&format!("m={kind} ")))
        .unwrap_or_else(|| panic!("no {kind} m-line in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_m_line_beside_a_usable_one_is_rejected_with_an_offered_format() {
    let relay = start_relay().await;
    let both = [RtpCodecKind::Audio, RtpCodecKind::Video];

    let (publisher_pc, offer) = offer_of(
        &[opus_codec(), vp8_codec()],
        RTCRtpTransceiverDirection::Sendonly,
        &both,
    )
    .await;
    let (_, answer) = relay.publish(key("opus-vp8"), &offer).await.unwrap();
    assert_eq!(m_line(&answer, "video"), "m=video 0 UDP/TLS/RTP/SAVPF 96");
    assert!(
        m_line(&answer, "audio").starts_with("m=audio 9 "),
        "{answer}"
    );
    publisher_pc
        .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .expect("the answer is a valid answer");

    let (player_pc, offer) = offer_of(
        &[opus_codec(), vp8_codec()],
        RTCRtpTransceiverDirection::Recvonly,
        &both,
    )
    .await;
    let (_, answer) = relay.play(key("opus-vp8"), &offer).await.unwrap();
    assert_eq!(m_line(&answer, "video"), "m=video 0 UDP/TLS/RTP/SAVPF 96");
    player_pc
        .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .expect("the answer is a valid answer");
    relay.shutdown().await;
}

/// No refusal carries a parser's internals: heap addresses, source paths.
fn assert_plain(message: &str) {
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
        assert!(!message.contains(internal), "{internal:?} in {message:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_offers_are_refused_in_plain_words() {
    let relay = start_relay().await;
    let (_pc, real) = offer_of(
        &[opus_codec(), vp8_codec()],
        RTCRtpTransceiverDirection::Sendonly,
        &[RtpCodecKind::Audio],
    )
    .await;
    let truncated = &real[..real.len() / 2];
    let bad_m_line = real.replacen("SAVPF 111", "SAVPF one-eleven", 1);
    let bad_rtpmap = real.replacen("a=rtpmap:111 ", "a=rtpmap:abc ", 1);
    let no_fingerprint: String = real
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let offers = [
        "",
        "v=0",
        "hello",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video",
        "v=0\r\n\u{0}\u{1}binary\r\n",
        truncated,
        &bad_m_line,
        &bad_rtpmap,
        &no_fingerprint,
    ];
    for offer in offers {
        match relay.publish(key("bad"), offer).await {
            Err(RelayError::BadOffer(message)) => assert_plain(&message),
            other => panic!("{offer:?} was not refused: {other:?}"),
        }
    }
    assert_eq!(relay.metrics().publishers, 0);
    relay.shutdown().await;
}
