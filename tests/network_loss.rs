//! Playing through a lossy network: the impairment relay (zego-netsim) sits between both engines and the embedded
//! server's media port, so every media packet crosses it. With loss on the path the player still renders frames in
//! capture order (retransmissions repair what is lost, nothing undecodable reaches the screen), and its quality
//! callback reports the loss the path really has. An anchor whose uplink loses packets adds Opus in-band FEC to its
//! audio.

mod flow_support;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_support::metric;
use parking_lot::Mutex;
use zego_express::config::{
    AudioConfig, EngineProfile, PlayerConfig, PublishChannel, RoomConfig, RoomStateChangedReason,
    Scenario, VideoConfig,
};
use zego_express::event::{Event, PlayQuality, PublishQuality};
use zego_express::Engine;
use zego_netsim::{Direction, Impairment, NetSim, NetSimHandle};
use zego_protocol::message::User;
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

const T: Duration = Duration::from_secs(15);

fn engine(server: &str) -> (Engine, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let profile = EngineProfile {
        app_id: DEV_APP_ID,
        app_sign: DEV_APP_SIGN.into(),
        scenario: Scenario::Default,
        server: server.into(),
    };
    let engine = Engine::create(
        profile,
        Arc::new(move |e: &Event| {
            let _ = tx.lock().send(e.clone());
        }),
    )
    .expect("engine");
    (engine, rx)
}

fn wait_for(rx: &mpsc::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) {
    let until = Instant::now() + T;
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(e) if pred(&e) => return,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {T:?}"),
        }
    }
}

fn logged_in(e: &Event) -> bool {
    matches!(
        e,
        Event::RoomStateChanged {
            reason: RoomStateChangedReason::Logined,
            ..
        }
    )
}

/// An embedded server whose media port is reached only through an impairment relay.
struct LossyPath {
    runtime: tokio::runtime::Runtime,
    netsim: Option<NetSimHandle>,
    server: EmbeddedServer,
}

impl LossyPath {
    fn start(up: Impairment, down: Impairment) -> LossyPath {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let media = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let netsim = runtime
            .block_on(
                NetSim::new("127.0.0.1:0".parse().unwrap(), media)
                    .up(up)
                    .down(down)
                    .seed(11)
                    .start(),
            )
            .expect("netsim");
        let server = EmbeddedServer::start(ServerConfig {
            media_bind: media,
            media_announce: Some(netsim.local_addr()),
            ..ServerConfig::default()
        })
        .expect("server");
        LossyPath {
            runtime,
            netsim: Some(netsim),
            server,
        }
    }

    fn netsim(&self) -> &NetSimHandle {
        self.netsim.as_ref().unwrap()
    }

    /// An anchor publishing the synthetic camera at 30 fps, and a viewer playing it, both logged in.
    fn anchor_and_viewer(&self) -> (Engine, Engine, mpsc::Receiver<Event>) {
        let url = self.server.ws_url();
        let (anchor, anchor_events) = engine(url);
        anchor
            .login_room("lossy", user("anchor"), RoomConfig::default())
            .unwrap();
        wait_for(&anchor_events, "the anchor's login", logged_in);
        anchor
            .set_video_config(
                VideoConfig {
                    fps: 30,
                    bitrate_kbps: 800,
                    ..VideoConfig::default()
                },
                PublishChannel::Main,
            )
            .unwrap();
        anchor.start_publishing("s", PublishChannel::Main).unwrap();
        let (viewer, viewer_events) = engine(url);
        viewer
            .login_room("lossy", user("viewer"), RoomConfig::default())
            .unwrap();
        wait_for(&viewer_events, "the viewer's login", logged_in);
        viewer.start_playing("s", PlayerConfig::default()).unwrap();
        wait_for(&viewer_events, "the first rendered frame", |e| {
            matches!(e, Event::PlayerRenderVideoFirstFrame { .. })
        });
        (anchor, viewer, viewer_events)
    }
}

impl Drop for LossyPath {
    fn drop(&mut self) {
        if let Some(netsim) = self.netsim.take() {
            self.runtime.block_on(netsim.shutdown());
        }
    }
}

fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        user_name: id.into(),
    }
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// What the viewer saw over `window`: rendered frame numbers and quality reports.
fn watch(events: &mpsc::Receiver<Event>, window: Duration) -> (Vec<u64>, Vec<PlayQuality>) {
    let until = Instant::now() + window;
    let (mut numbers, mut reports) = (Vec::new(), Vec::new());
    while let Ok(e) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
        match e {
            Event::RemoteVideoFrame { frame, .. } => numbers.push(frame.frame_number),
            Event::PlayerQualityUpdate { quality, .. } => reports.push(quality),
            _ => {}
        }
    }
    (numbers, reports)
}

#[test]
fn with_ten_percent_loss_each_way_the_viewer_still_renders_frames_in_order() {
    init_logs();
    let lossy: Impairment = "delay=20ms,loss=10%".parse().unwrap();
    let path = LossyPath::start(lossy.clone(), lossy);
    let (anchor, viewer, events) = path.anchor_and_viewer();

    let (numbers, _) = watch(&events, Duration::from_secs(8));
    println!("netsim: {:?}", path.netsim().stats());
    assert!(!numbers.is_empty(), "nothing rendered under loss");
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "frames out of order: {numbers:?}"
    );
    // Both hops lose 10 %, so about one packet in five needs a retransmission: nearly every frame is repaired.
    let span = numbers.last().unwrap() - numbers.first().unwrap() + 1;
    let rendered = numbers.len() as f64 / span as f64;
    println!(
        "rendered {} of {span} frames ({:.1} %)",
        numbers.len(),
        rendered * 100.0
    );
    assert!(
        rendered >= 0.9,
        "only {:.1} % of the frames rendered",
        rendered * 100.0
    );
    // The relay saw the viewer's loss in its receiver reports and protects its video with repair packets.
    let repair_packets = metric(&path.server, "zego_relay_repair_packets_total");
    println!("repair packets: {repair_packets}");
    assert!(repair_packets > 0, "no FEC towards a lossy viewer");
    // The anchor saw its uplink loss in the relay's transport-wide feedback and protects its video too; the relay
    // rebuilt lost packets from it.
    let rebuilt = metric(&path.server, "zego_relay_fec_rebuilt_total");
    println!("packets rebuilt from the anchor's FEC: {rebuilt}");
    assert!(rebuilt > 0, "no FEC from a lossy anchor");

    viewer.stop_playing("s").unwrap();
    anchor.stop_publishing(PublishChannel::Main).unwrap();
    drop((viewer, anchor));
}

#[test]
fn the_viewers_quality_reports_the_loss_the_path_has() {
    init_logs();
    let path = LossyPath::start(Impairment::default(), "loss=10%".parse().unwrap());
    let (anchor, viewer, events) = path.anchor_and_viewer();
    // Only what happens from here on: the reports cover 3 s each.
    let before = path.netsim().stats().down;
    let (_, reports) = watch(&events, Duration::from_millis(6500));
    let after = path.netsim().stats().down;
    let dropped = (after.dropped_loss - before.dropped_loss) as f64
        / (after.received_packets - before.received_packets).max(1) as f64;
    let reported: Vec<f64> = reports.iter().map(|q| q.packet_lost_rate).collect();
    println!(
        "path dropped {:.1} %, viewer reported {reported:?}",
        dropped * 100.0
    );
    assert!(!reported.is_empty(), "no quality report in 6.5 s");
    let mean = reported.iter().sum::<f64>() / reported.len() as f64;
    assert!(
        (mean - dropped).abs() < 0.04,
        "viewer reports {:.1} % loss, the path dropped {:.1} %",
        mean * 100.0,
        dropped * 100.0
    );

    viewer.stop_playing("s").unwrap();
    anchor.stop_publishing(PublishChannel::Main).unwrap();
    drop((viewer, anchor));
}

/// The anchor's publish quality reports over `window`.
fn publish_reports(events: &mpsc::Receiver<Event>, window: Duration) -> Vec<PublishQuality> {
    let until = Instant::now() + window;
    let mut reports = Vec::new();
    while let Ok(e) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
        if let Event::PublisherQualityUpdate { quality, .. } = e {
            reports.push(quality);
        }
    }
    reports
}

#[test]
fn an_anchor_whose_uplink_loses_packets_adds_opus_fec_to_its_audio() {
    init_logs();
    let path = LossyPath::start(Impairment::default(), Impairment::default());
    let (anchor, events) = engine(path.server.ws_url());
    anchor
        .login_room("fec", user("anchor"), RoomConfig::default())
        .unwrap();
    wait_for(&events, "the anchor's login", logged_in);
    // Speech at 16 kb/s: too little for Opus to carry a copy of each frame without being given more.
    anchor
        .set_audio_config(
            AudioConfig {
                bitrate_kbps: 16,
                channels: 1,
            },
            PublishChannel::Main,
        )
        .unwrap();
    anchor.start_publishing("a", PublishChannel::Main).unwrap();
    let clean = publish_reports(&events, Duration::from_millis(6500));
    let clean: Vec<f64> = clean.iter().map(|q| q.audio_kbps).collect();

    path.netsim()
        .set_impairment(Direction::Up, "loss=10%".parse().unwrap())
        .unwrap();
    let lossy = publish_reports(&events, Duration::from_millis(6500));
    let lossy: Vec<f64> = lossy.iter().map(|q| q.audio_kbps).collect();
    println!("audio kb/s on a clean uplink {clean:?}, at 10 % loss {lossy:?}");
    assert!(
        !clean.is_empty() && clean.iter().all(|&k| k < 22.0),
        "the configured 16 kb/s on a clean uplink: {clean:?}"
    );
    // Told to expect the loss, the encoder carries each frame's copy at the bitrate that takes it.
    assert!(
        lossy.last().is_some_and(|&k| k > 26.0),
        "in-band FEC at 32 kb/s under loss: {lossy:?}"
    );
    anchor.stop_publishing(PublishChannel::Main).unwrap();
}

/// Played audio over `window`: (chunks, concealed chunks).
fn audio_played(events: &mpsc::Receiver<Event>, window: Duration) -> (u64, u64) {
    let until = Instant::now() + window;
    let (mut chunks, mut concealed) = (0, 0);
    while let Ok(e) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
        if let Event::RemoteAudioFrame { frame, .. } = e {
            chunks += 1;
            concealed += u64::from(frame.concealed);
        }
    }
    (chunks, concealed)
}

#[test]
fn lost_audio_is_asked_for_again_on_both_hops_and_played_in_time() {
    init_logs();
    // A third of the packets a viewer should get are lost before repair. In-band FEC alone rebuilds a lost packet
    // only when the next one arrived, so about one packet in nine would be concealed.
    // Joined on a clean path (joining through loss waits on the DTLS handshake's own retransmission timers, which
    // is not what this test is about), then the loss starts.
    let path = LossyPath::start(Impairment::default(), Impairment::default());
    let (anchor, _viewer, events) = path.anchor_and_viewer();
    for direction in [Direction::Up, Direction::Down] {
        path.netsim()
            .set_impairment(direction, "delay=10ms,loss=20%".parse().unwrap())
            .unwrap();
    }
    // The jitter buffer settles on waiting for a retransmission first.
    let _ = audio_played(&events, Duration::from_secs(3));
    let (chunks, concealed) = audio_played(&events, Duration::from_secs(8));
    let share = concealed as f64 / chunks.max(1) as f64;
    println!(
        "{concealed} of {chunks} audio chunks concealed ({:.1} %)",
        share * 100.0
    );
    assert!(
        chunks > 300,
        "audio plays on a steady clock: {chunks} chunks in 8 s"
    );
    assert!(
        share < 0.04,
        "retransmitted audio is played instead of concealed: {concealed} of {chunks}"
    );
    anchor.stop_publishing(PublishChannel::Main).unwrap();
}
