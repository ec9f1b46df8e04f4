//! Publisher -> relay -> player through a real server on loopback: frames arrive in order, decodable from the
//! first, and the glass-to-glass latency is measured from the pixel stamps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc::unbounded_channel;
use tokio_tungstenite::tungstenite::Message;
use zego_protocol::message::{ClientMessage, Credentials, ReplyResult, ServerMessage, User};
use zego_protocol::PROTOCOL_VERSION;

use super::Player;
use crate::config::{PlayerConfig, PublishChannel, VideoConfig};
use crate::event::{CallbackThread, Event};
use crate::publisher::{unix_micros, Publisher};
use crate::server_url::Servers;
use crate::transport::{MediaNotice, TransportConfig};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The smallest signaling client that logs in and trades SDP with the server.
struct Signaling {
    ws: Ws,
    next_req: u64,
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

impl Signaling {
    async fn login(url: &str, room_id: &str, user_id: &str) -> Signaling {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect to the server");
        let mut s = Signaling { ws, next_req: 1 };
        let timestamp_ms = unix_micros() / 1000;
        let nonce = format!("n{}", rand::random::<u32>());
        let app_sign = hex32(zego_server::DEV_APP_SIGN);
        let signature = zego_protocol::signature::sign(
            &app_sign,
            zego_server::DEV_APP_ID,
            user_id,
            room_id,
            timestamp_ms,
            &nonce,
        );
        let reply = s
            .request(|req_id| ClientMessage::Login {
                req_id,
                protocol_version: PROTOCOL_VERSION,
                app_id: zego_server::DEV_APP_ID,
                room_id: room_id.into(),
                user: User {
                    user_id: user_id.into(),
                    user_name: user_id.into(),
                },
                credentials: Credentials::AppSign {
                    timestamp_ms,
                    nonce,
                    signature,
                },
                is_user_status_notify: false,
                max_member_count: 0,
                resume_session: None,
            })
            .await;
        assert!(matches!(reply, (0, _)), "login failed: {reply:?}");
        s
    }

    async fn request(
        &mut self,
        make: impl FnOnce(u64) -> ClientMessage,
    ) -> (u32, Option<ReplyResult>) {
        let req = self.next_req;
        self.next_req += 1;
        let text = serde_json::to_string(&make(req)).unwrap();
        self.ws.send(Message::text(text)).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("server reply in time")
                .expect("connection open")
                .expect("websocket message");
            let Message::Text(text) = msg else { continue };
            if let Ok(ServerMessage::Reply {
                req_id,
                code,
                result,
                ..
            }) = serde_json::from_str(text.as_str())
            {
                if req_id == req {
                    return (code, result);
                }
            }
        }
    }

    async fn publish(&mut self, stream_id: &str, sdp: String) -> String {
        match self
            .request(|req_id| ClientMessage::Publish {
                req_id,
                stream_id: stream_id.into(),
                extra_info: String::new(),
                sdp,
            })
            .await
        {
            (0, Some(ReplyResult::Publish { sdp })) => sdp,
            other => panic!("publish refused: {other:?}"),
        }
    }

    async fn play(&mut self, stream_id: &str, sdp: String) -> String {
        match self
            .request(|req_id| ClientMessage::Play {
                req_id,
                stream_id: stream_id.into(),
                sdp,
                wait: false,
            })
            .await
        {
            (0, Some(ReplyResult::Play { sdp: Some(sdp), .. })) => sdp,
            other => panic!("play refused: {other:?}"),
        }
    }
}

/// Events from the callback thread, stamped with their arrival time.
fn collector() -> (
    CallbackThread,
    std::sync::mpsc::Receiver<(Instant, u64, Event)>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = parking_lot::Mutex::new(tx);
    let thread = CallbackThread::start(Arc::new(move |e: &Event| {
        let _ = tx.lock().send((Instant::now(), unix_micros(), e.clone()));
    }))
    .unwrap();
    (thread, rx)
}

/// Logs at RUST_LOG's level, shown with --nocapture.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_from_publisher_to_player_in_order_with_low_latency() {
    init_logs();
    let server = zego_server::Server::start(zego_server::ServerConfig::default())
        .await
        .expect("server");
    let url = server.ws_url();
    let transport = TransportConfig::for_servers(&Servers::parse(&url).unwrap());
    assert!(transport.loopback);
    let mut alice = Signaling::login(&url, "media-room", "alice").await;
    let mut bob = Signaling::login(&url, "media-room", "bob").await;
    let (mut callbacks, events) = collector();
    let (notices, mut notices_rx) = unbounded_channel::<MediaNotice>();
    let runtime = tokio::runtime::Handle::current();

    let publisher = Publisher::new(
        PublishChannel::Main,
        callbacks.sender(),
        notices.clone(),
        runtime.clone(),
        transport.clone(),
    );
    // Keyframes only on request: the player can only start if the relay's PLI reaches the encoder.
    let config = VideoConfig {
        fps: 30,
        keyframe_interval_s: 0,
        bitrate_kbps: 1200,
        ..VideoConfig::default()
    };
    publisher.set_video_config(config).unwrap();
    let offer = publisher.create_offer("stream-1").await.unwrap();
    assert!(offer.contains("H264") && offer.contains("opus"), "{offer}");
    // A loopback server: only loopback candidates are gathered.
    let candidates: Vec<&str> = offer
        .lines()
        .filter(|l| l.starts_with("a=candidate"))
        .collect();
    assert!(!candidates.is_empty(), "{offer}");
    assert!(
        candidates.iter().all(|c| c.contains(" 127.0.0.1 ")),
        "{candidates:?}"
    );
    let answer = alice.publish("stream-1", offer).await;
    publisher.accept_answer(&answer).await.unwrap();
    // Let the first keyframe pass before the player joins.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let player = Player::new(
        "stream-1",
        PlayerConfig::default(),
        callbacks.sender(),
        notices.clone(),
        runtime.clone(),
        transport,
    );
    let play_started = Instant::now();
    let offer = player.create_offer().await.unwrap();
    let offered = play_started.elapsed();
    let answer = bob.play("stream-1", offer).await;
    let answered = play_started.elapsed();
    player.accept_answer(&answer).await.unwrap();
    let connected = play_started.elapsed();
    println!(
        "play: offer after {offered:?}, answer after {answered:?}, connected after {connected:?}"
    );

    let mut frame_numbers = Vec::new();
    let mut latencies_ms = Vec::new();
    let mut first_frame_after = None;
    let mut seen = Vec::new();
    let mut audio_frames = 0;
    let mut play_quality = None;
    let mut publish_quality = None;
    let deadline = Instant::now() + Duration::from_millis(4500);
    while Instant::now() < deadline {
        let Ok((at, now_us, event)) = events.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        match &event {
            Event::RemoteVideoFrame { frame, .. } => {
                first_frame_after.get_or_insert(at.duration_since(play_started));
                assert!(
                    frame.capture_time_us > 0,
                    "the capture stamp must be readable after decoding"
                );
                latencies_ms.push(now_us.saturating_sub(frame.capture_time_us) as f64 / 1000.0);
                frame_numbers.push(frame.frame_number);
                assert_eq!((frame.width, frame.height), (640, 360));
            }
            Event::RemoteAudioFrame { frame, .. } => {
                audio_frames += 1;
                assert_eq!(frame.sample_rate, 48_000);
            }
            Event::PlayerQualityUpdate { quality, .. } => play_quality = Some(quality.clone()),
            Event::PublisherQualityUpdate { quality, .. } => {
                publish_quality = Some(quality.clone())
            }
            _ => {}
        }
        seen.push(std::mem::discriminant(&event));
    }

    let has = |e: Event| seen.contains(&std::mem::discriminant(&e));
    let s = || "stream-1".to_string();
    assert!(has(Event::PublisherCapturedVideoFirstFrame {
        channel: PublishChannel::Main
    }));
    assert!(has(Event::PlayerRecvVideoFirstFrame { stream_id: s() }));
    assert!(has(Event::PlayerRenderVideoFirstFrame { stream_id: s() }));
    assert!(has(Event::PlayerRecvAudioFirstFrame { stream_id: s() }));
    assert!(has(Event::PlayerVideoSizeChanged {
        stream_id: s(),
        width: 0,
        height: 0
    }));
    let first = first_frame_after.expect("no video frame rendered");
    assert!(
        first < Duration::from_millis(1500),
        "first frame took {first:?}: keyframe requests must work"
    );
    assert!(
        frame_numbers.len() >= 60,
        "only {} frames in ~4 s at 30 fps",
        frame_numbers.len()
    );
    assert!(
        frame_numbers.windows(2).all(|w| w[0] < w[1]),
        "frames out of order: {frame_numbers:?}"
    );
    assert!(audio_frames >= 100, "only {audio_frames} audio frames");

    let pq = play_quality.expect("a player quality report");
    println!("{pq:?}");
    assert!(
        pq.video_recv_fps > 20.0 && pq.video_decode_fps > 20.0 && pq.video_kbps > 50.0,
        "{pq:?}"
    );
    assert!(pq.audio_recv_fps > 40.0, "{pq:?}");
    assert!(pq.delay_ms > 0 && pq.delay_ms < 200, "{pq:?}");
    let uq = publish_quality.expect("a publisher quality report");
    println!("{uq:?}");
    assert!(
        uq.video_capture_fps > 25.0 && uq.video_encode_fps > 25.0 && uq.video_send_fps > 25.0,
        "{uq:?}"
    );
    assert!(
        uq.video_kbps > 100.0 && uq.audio_send_fps > 40.0 && uq.total_send_bytes > 0,
        "{uq:?}"
    );
    assert_eq!(uq.target_bitrate_kbps, 1200.0);

    latencies_ms.sort_by(f64::total_cmp);
    let (p50, p90) = (
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.9),
    );
    println!(
        "glass-to-glass on loopback (640x360@30, {} frames): p50 {p50:.1} ms, p90 {p90:.1} ms, max {:.1} ms; \
         first frame {first:?} after play",
        latencies_ms.len(),
        latencies_ms.last().unwrap()
    );
    assert!(p50 < 100.0, "p50 latency {p50} ms");

    // A new encode size applies live, with a keyframe.
    publisher
        .set_video_config(VideoConfig {
            encode_width: 320,
            encode_height: 180,
            ..config
        })
        .unwrap();
    let resized = tokio::task::spawn_blocking(move || {
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok((_, _, e)) =
            events.recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if let Event::RemoteVideoFrame { frame, .. } = e {
                if (frame.width, frame.height) == (320, 180) {
                    return Some((frame.frame_number, stamp_ok(&frame)));
                }
            }
        }
        None
    })
    .await
    .unwrap();
    let (_, stamped) = resized.expect("frames at the new size");
    assert!(stamped, "the stamp survives scaling");

    let t = Instant::now();
    player.close().await;
    publisher.close_transport().await;
    publisher.shutdown();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "teardown took {:?}",
        t.elapsed()
    );
    assert!(notices_rx.try_recv().is_err(), "closing is not a failure");
    callbacks.stop();
    server.shutdown().await;
}

fn stamp_ok(frame: &zego_media::VideoFrame) -> bool {
    frame.capture_time_us > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_lost_after_connecting_is_reported() {
    init_logs();
    let server = zego_server::Server::start(zego_server::ServerConfig::default())
        .await
        .expect("server");
    let url = server.ws_url();
    let transport = TransportConfig::for_servers(&Servers::parse(&url).unwrap());
    let mut alice = Signaling::login(&url, "lost-room", "alice").await;
    let (mut callbacks, _events) = collector();
    let (notices, mut notices_rx) = unbounded_channel::<MediaNotice>();
    let publisher = Publisher::new(
        PublishChannel::Aux,
        callbacks.sender(),
        notices,
        tokio::runtime::Handle::current(),
        transport,
    );
    let offer = publisher.create_offer("lost-stream").await.unwrap();
    let answer = alice.publish("lost-stream", offer).await;
    publisher.accept_answer(&answer).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(alice);
    server.shutdown().await;
    let notice = tokio::time::timeout(Duration::from_secs(12), notices_rx.recv()).await;
    assert_eq!(
        notice,
        Ok(Some(MediaNotice::PublisherTransportFailed {
            channel: PublishChannel::Aux
        }))
    );
    publisher.shutdown();
    callbacks.stop();
}

/// A UDP port that is free right now (for a server whose announced address must be known before it starts).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_survive_loss_delay_and_reordering() {
    init_logs();
    // player/publisher <-> netsim (3 % loss, 10 ms +- 3 ms each way, 1 % reordering) <-> relay
    let media: std::net::SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let path = zego_netsim::Impairment {
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        loss: 0.03,
        reorder: 0.01,
        ..Default::default()
    };
    let netsim = zego_netsim::NetSim::new("127.0.0.1:0".parse().unwrap(), media)
        .up(path.clone())
        .down(path)
        .seed(7)
        .start()
        .await
        .expect("netsim");
    let config = zego_server::ServerConfig {
        media_bind: media,
        media_announce: Some(netsim.local_addr()),
        ..Default::default()
    };
    let server = zego_server::Server::start(config).await.expect("server");
    let url = server.ws_url();
    let transport = TransportConfig::for_servers(&Servers::parse(&url).unwrap());
    let mut alice = Signaling::login(&url, "lossy-room", "alice").await;
    let mut bob = Signaling::login(&url, "lossy-room", "bob").await;
    let (mut callbacks, events) = collector();
    let (notices, _notices_rx) = unbounded_channel::<MediaNotice>();
    let runtime = tokio::runtime::Handle::current();

    let publisher = Publisher::new(
        PublishChannel::Main,
        callbacks.sender(),
        notices.clone(),
        runtime.clone(),
        transport.clone(),
    );
    publisher
        .set_video_config(VideoConfig {
            fps: 30,
            keyframe_interval_s: 2,
            ..VideoConfig::default()
        })
        .unwrap();
    let offer = publisher.create_offer("lossy").await.unwrap();
    publisher
        .accept_answer(&alice.publish("lossy", offer).await)
        .await
        .unwrap();
    let player = Player::new(
        "lossy",
        PlayerConfig::default(),
        callbacks.sender(),
        notices,
        runtime,
        transport,
    );
    let offer = player.create_offer().await.unwrap();
    player
        .accept_answer(&bob.play("lossy", offer).await)
        .await
        .unwrap();

    let result = tokio::task::spawn_blocking(move || {
        let until = Instant::now() + Duration::from_millis(5500);
        let (mut numbers, mut latencies, mut quality) = (Vec::new(), Vec::new(), None);
        while let Ok((_, now_us, e)) =
            events.recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            match e {
                Event::RemoteVideoFrame { frame, .. } => {
                    numbers.push(frame.frame_number);
                    latencies.push(now_us.saturating_sub(frame.capture_time_us) as f64 / 1000.0);
                }
                Event::PlayerQualityUpdate { quality: q, .. } => quality = Some(q),
                _ => {}
            }
        }
        (numbers, latencies, quality)
    });
    let (numbers, mut latencies, quality) = result.await.unwrap();
    let counters = &player.shared.counters;
    let decode_errors = counters
        .decode_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    let fec_recovered = player
        .session
        .lock()
        .as_ref()
        .map_or(0, |s| s.peer.fec_recovered());
    let net = netsim.stats();
    println!("netsim: {net:?}");
    println!("player quality under loss: {quality:?}");

    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "frames out of order: {numbers:?}"
    );
    assert_eq!(
        decode_errors, 0,
        "a frame with missing references (or a wrongly rebuilt packet) reached the decoder"
    );
    // At 3 % the relay's FEC may or may not start within these few seconds (it needs two lossy receiver reports in a
    // row); when it does, what it rebuilt decoded (no decode error above). `tests/network_loss.rs` checks that it
    // starts on a clearly lossy path.
    println!("packets rebuilt by FEC: {fec_recovered}");
    // 3 % packet loss each way: FEC and retransmissions repair most frames.
    let span = numbers.last().unwrap() - numbers.first().unwrap() + 1;
    let rendered = numbers.len() as f64 / span as f64;
    latencies.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies, 0.5);
    println!(
        "under loss: rendered {:.0} % of {span} frames, p50 {p50:.1} ms, p90 {:.1} ms",
        rendered * 100.0,
        percentile(&latencies, 0.9)
    );
    assert!(
        rendered > 0.8,
        "only {:.0} % of frames rendered",
        rendered * 100.0
    );
    // 20 ms of network delay, and the playout stage holds frames to cover one repair round trip (~40 ms here).
    assert!(p50 < 120.0, "p50 {p50} ms with 20 ms of network delay");

    player.close().await;
    publisher.close_transport().await;
    publisher.shutdown();
    callbacks.stop();
    server.shutdown().await;
    netsim.shutdown().await;
}
