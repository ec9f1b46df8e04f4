//! Session lifecycle: closing, timeouts, rejected offers.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
};
use zego_relay::{RelayError, RelayEvent};

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
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_handler(Arc::new(NoEvents))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .unwrap();
    pc.add_transceiver_from_kind(
        RtpCodecKind::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            streams: vec![],
            send_encodings: vec![],
        }),
    )
    .await
    .unwrap();
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
        RelayEvent::Disconnected(publisher.peer.session),
        Duration::from_secs(8),
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
    let mut vp8_only = MediaEngine::default();
    vp8_only
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
                payload_type: 96,
            },
            RtpCodecKind::Video,
        )
        .unwrap();
    let (_pc, offer) = recvonly_offer(vp8_only).await;
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
