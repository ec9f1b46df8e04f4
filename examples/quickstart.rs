//! Quickstart: a server, an anchor and a viewer in one process.
//!
//! The anchor (engine A) logs in, previews and publishes the synthetic camera and microphone; the viewer (engine B)
//! logs in, hears that the stream was added and plays it with ONLY_L3. Every callback is printed as one line. At
//! the end it reports the first-frame time (start_playing -> first rendered frame) and the glass-to-glass latency
//! read from the capture time stamped into the pixels, and saves one received frame as a PNG.
//!
//! ```text
//! cargo run --release --example quickstart [-- --width 1280 --height 720 --fps 30 --seconds 5]
//! ```
//! Exits 0 on success, 1 with a message naming the step that failed.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use zego_express::config::{
    EngineProfile, PlayerConfig, PlayerState, PublishChannel, PublisherState, RoomConfig,
    RoomStateChangedReason, Scenario, StreamResourceMode, VideoConfig,
};
use zego_express::event::{Event, EventSink};
use zego_express::Engine;
use zego_media::frame::VideoFrame;
use zego_protocol::message::{UpdateType, User};
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

const ROOM: &str = "quickstart";
const STREAM: &str = "quickstart-stream";
/// Each step gets this long before the quickstart gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole run, however it goes.
const WATCHDOG: Duration = Duration::from_secs(25);

struct Options {
    width: u32,
    height: u32,
    fps: u32,
    seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        width: 640,
        height: 360,
        fps: 30,
        seconds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} wants a number, got {value:?}"))
        };
        match flag.as_str() {
            "--width" => options.width = number()? as u32,
            "--height" => options.height = number()? as u32,
            "--fps" => options.fps = number()? as u32,
            "--seconds" => options.seconds = number()?.clamp(1, 20),
            other => {
                return Err(format!(
                    "unknown flag {other}; flags: --width --height --fps --seconds"
                ))
            }
        }
    }
    Ok(options)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One readable line per callback (frames are counted, not printed).
fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::RemoteVideoFrame { .. } | Event::CapturedVideoFrame { .. } | Event::RemoteAudioFrame { .. } => return None,
        Event::DebugError { code, func_name, info } => format!("debug_error {func_name}: {code} {info}"),
        Event::EngineStateUpdate { state } => format!("engine_state {state:?}"),
        Event::RoomStateUpdate { .. } => return None, // The same transition as RoomStateChanged, in the old form.
        Event::RoomStateChanged { room_id, reason, error_code, .. } => {
            format!("room_state_changed room={room_id} reason={reason:?} code={error_code}")
        }
        Event::RoomUserUpdate { update_type, users, .. } => format!(
            "room_user_update {update_type:?} [{}]",
            users.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>().join(", ")
        ),
        Event::RoomOnlineUserCountUpdate { count, .. } => format!("room_online_user_count {count}"),
        Event::RoomStreamUpdate { update_type, streams, extended_data, .. } => format!(
            "room_stream_update {update_type:?} [{}] {extended_data}",
            streams.iter().map(|s| format!("{} by {}", s.stream_id, s.user.user_id)).collect::<Vec<_>>().join(", ")
        ),
        Event::PublisherStateUpdate { stream_id, state, error_code, .. } => {
            format!("publisher_state stream={stream_id} {state:?} code={error_code}")
        }
        Event::PlayerStateUpdate { stream_id, state, error_code, .. } => {
            format!("player_state stream={stream_id} {state:?} code={error_code}")
        }
        Event::PublisherQualityUpdate { stream_id, quality } => format!(
            "publish_quality stream={stream_id} capture={:.0}fps send={:.0}fps video={:.0}kbps audio={:.0}kbps rtt={}ms loss={:.1}%",
            quality.video_capture_fps,
            quality.video_send_fps,
            quality.video_kbps,
            quality.audio_kbps,
            quality.rtt_ms,
            quality.packet_lost_rate * 100.0
        ),
        Event::PlayerQualityUpdate { stream_id, quality } => format!(
            "play_quality stream={stream_id} recv={:.0}fps render={:.0}fps video={:.0}kbps delay={}ms loss={:.1}%",
            quality.video_recv_fps,
            quality.video_render_fps,
            quality.video_kbps,
            quality.delay_ms,
            quality.packet_lost_rate * 100.0
        ),
        Event::PublisherCapturedVideoFirstFrame { channel } => format!("captured_video_first_frame channel={channel:?}"),
        Event::PlayerRecvVideoFirstFrame { stream_id } => format!("recv_video_first_frame stream={stream_id}"),
        Event::PlayerRecvAudioFirstFrame { stream_id } => format!("recv_audio_first_frame stream={stream_id}"),
        Event::PlayerRenderVideoFirstFrame { stream_id } => format!("render_video_first_frame stream={stream_id}"),
        Event::PlayerVideoSizeChanged { stream_id, width, height } => {
            format!("video_size_changed stream={stream_id} {width}x{height}")
        }
        other => format!("{other:?}"),
    })
}

/// What the viewer's render callback collects.
#[derive(Default)]
struct Rendered {
    first_frame_at: Option<Instant>,
    /// Glass-to-glass latency of each rendered frame, while measuring.
    latencies_us: Vec<u64>,
    measuring: bool,
    frames: u64,
    unstamped: u64,
    last_frame_number: Option<u64>,
    out_of_order: u64,
    saved: Option<Arc<VideoFrame>>,
}

/// Prints each event as `[time] WHO line` and forwards it (frames aside) to the main thread.
fn sink(
    who: &'static str,
    started: Instant,
    tx: mpsc::Sender<(&'static str, Event)>,
    rendered: Option<Arc<Mutex<Rendered>>>,
) -> EventSink {
    let tx = Mutex::new(tx);
    Arc::new(move |event: &Event| {
        if let (Some(rendered), Event::RemoteVideoFrame { frame, .. }) = (&rendered, event) {
            let mut r = rendered.lock();
            r.first_frame_at.get_or_insert_with(Instant::now);
            r.frames += 1;
            if frame.capture_time_us == 0 {
                r.unstamped += 1;
            } else if r.measuring {
                r.latencies_us
                    .push(now_us().saturating_sub(frame.capture_time_us));
                if r.saved.is_none() {
                    r.saved = Some(frame.clone());
                }
            }
            if r.last_frame_number
                .is_some_and(|last| frame.frame_number <= last)
            {
                r.out_of_order += 1;
            }
            r.last_frame_number = Some(frame.frame_number);
            return;
        }
        if let Some(line) = describe(event) {
            println!("[{:7.3}s] {who} {line}", started.elapsed().as_secs_f64());
            let _ = tx.lock().send((who, event.clone()));
        }
    })
}

/// Waits for an event of `who` matching `pred`; fails naming the step.
fn wait(
    rx: &mpsc::Receiver<(&'static str, Event)>,
    step: &str,
    who: &str,
    pred: impl Fn(&Event) -> bool,
) -> Result<Event, String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((w, event)) if w == who => {
                if pred(&event) {
                    return Ok(event);
                }
                // A failure on the way is reported at once rather than after the timeout.
                match &event {
                    Event::RoomStateChanged {
                        reason: RoomStateChangedReason::LoginFailed,
                        error_code,
                        ..
                    }
                    | Event::PublisherStateUpdate {
                        state: PublisherState::NoPublish,
                        error_code,
                        ..
                    }
                    | Event::PlayerStateUpdate {
                        state: PlayerState::NoPlay,
                        error_code,
                        ..
                    } if *error_code != 0 => {
                        return Err(format!(
                            "{step}: failed with code {error_code} ({})",
                            zego_express::error::message(*error_code)
                        ));
                    }
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(_) => return Err(format!("{step}: nothing after {STEP_TIMEOUT:?}")),
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)] as f64 / 1000.0
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn save_png(frame: &VideoFrame, path: &PathBuf) -> Result<(), String> {
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), frame.width, frame.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| format!("png: {e}"))?;
    writer
        .write_image_data(&frame.to_rgba())
        .map_err(|e| format!("png: {e}"))?;
    Ok(())
}

fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let server = EmbeddedServer::start(ServerConfig::default())
        .map_err(|e| format!("starting the server: {e}"))?;
    println!(
        "server: signaling {}  media udp {}",
        server.ws_url(),
        server.media_addr()
    );

    let (tx, rx) = mpsc::channel();
    let rendered = Arc::new(Mutex::new(Rendered::default()));
    let profile = EngineProfile {
        app_id: DEV_APP_ID,
        app_sign: DEV_APP_SIGN.into(),
        scenario: Scenario::Broadcast,
        server: server.ws_url().into(),
    };
    let anchor = Engine::create(profile.clone(), sink("A", started, tx.clone(), None))
        .map_err(|code| format!("creating engine A: code {code}"))?;
    let viewer = Engine::create(profile, sink("B", started, tx, Some(rendered.clone())))
        .map_err(|code| format!("creating engine B: code {code}"))?;

    let video = VideoConfig {
        capture_width: options.width,
        capture_height: options.height,
        encode_width: options.width,
        encode_height: options.height,
        fps: options.fps,
        bitrate_kbps: (options.width * options.height * options.fps / 10_000).clamp(300, 8_000),
        keyframe_interval_s: 2,
    };
    anchor
        .set_video_config(video, PublishChannel::Main)
        .map_err(|code| format!("video config rejected: code {code}"))?;
    println!(
        "video: {}x{} @ {} fps, {} kb/s, keyframe every {} s (synthetic camera + synthetic microphone)",
        video.encode_width, video.encode_height, video.fps, video.bitrate_kbps, video.keyframe_interval_s
    );

    let anchor_user = User {
        user_id: "anchor".into(),
        user_name: "Anchor".into(),
    };
    let viewer_user = User {
        user_id: "viewer".into(),
        user_name: "Viewer".into(),
    };
    let room_config = RoomConfig {
        is_user_status_notify: true,
        ..RoomConfig::default()
    };
    let call = |what: &str, result: zego_express::engine::Result<()>| {
        result.map_err(|code| {
            format!(
                "{what}: code {code} ({})",
                zego_express::error::message(code)
            )
        })
    };

    call(
        "A login_room",
        anchor.login_room(ROOM, anchor_user, room_config.clone()),
    )?;
    wait(&rx, "A logs in", "A", |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Logined,
                ..
            }
        )
    })?;
    call(
        "A start_preview",
        anchor.start_preview(PublishChannel::Main),
    )?;
    call(
        "A start_publishing",
        anchor.start_publishing(STREAM, PublishChannel::Main),
    )?;
    wait(&rx, "A publishes", "A", |e| {
        matches!(
            e,
            Event::PublisherStateUpdate {
                state: PublisherState::Publishing,
                ..
            }
        )
    })?;

    call(
        "B login_room",
        viewer.login_room(ROOM, viewer_user, room_config),
    )?;
    wait(
        &rx,
        "B hears of the stream",
        "B",
        |e| matches!(e, Event::RoomStreamUpdate { update_type: UpdateType::Add, streams, .. } if streams.iter().any(|s| s.stream_id == STREAM)),
    )?;
    let play_called = Instant::now();
    call(
        "B start_playing",
        viewer.start_playing(
            STREAM,
            PlayerConfig {
                resource_mode: StreamResourceMode::OnlyL3,
            },
        ),
    )?;
    wait(&rx, "B plays", "B", |e| {
        matches!(
            e,
            Event::PlayerStateUpdate {
                state: PlayerState::Playing,
                ..
            }
        )
    })?;
    wait(&rx, "B renders the first frame", "B", |e| {
        matches!(e, Event::PlayerRenderVideoFirstFrame { .. })
    })?;
    let first_frame = rendered
        .lock()
        .first_frame_at
        .map(|t| t.duration_since(play_called))
        .ok_or("the first-frame callback came before any frame")?;

    // Let the encoder settle for a moment, then measure.
    std::thread::sleep(Duration::from_millis(500));
    rendered.lock().measuring = true;
    println!(
        "measuring glass-to-glass latency for {} s ...",
        options.seconds
    );
    // Quality callbacks and other events keep printing meanwhile.
    let measure_end = Instant::now() + Duration::from_secs(options.seconds);
    while Instant::now() < measure_end {
        let _ = rx.recv_timeout(measure_end.saturating_duration_since(Instant::now()));
    }
    let (mut latencies, frames, unstamped, out_of_order, saved) = {
        let mut r = rendered.lock();
        r.measuring = false;
        (
            std::mem::take(&mut r.latencies_us),
            r.frames,
            r.unstamped,
            r.out_of_order,
            r.saved.clone(),
        )
    };

    call("B stop_playing", viewer.stop_playing(STREAM))?;
    call(
        "A stop_publishing",
        anchor.stop_publishing(PublishChannel::Main),
    )?;
    call("A stop_preview", anchor.stop_preview(PublishChannel::Main))?;
    call("B logout_room", viewer.logout_room(None))?;
    call("A logout_room", anchor.logout_room(None))?;
    wait(&rx, "A logs out", "A", |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Logout,
                ..
            }
        )
    })?;
    let destroying = Instant::now();
    viewer.destroy();
    anchor.destroy();
    let destroy_time = destroying.elapsed();
    server.stop();

    if latencies.is_empty() {
        return Err(format!("no stamped frame was rendered while measuring ({frames} frames, {unstamped} unstamped)"));
    }
    latencies.sort_unstable();
    let path = target_dir().join("quickstart-frame.png");
    let frame = saved.ok_or("no frame to save")?;
    save_png(&frame, &path)?;

    println!();
    println!("results");
    println!(
        "  first frame:          {:.1} ms (start_playing -> first rendered frame)",
        first_frame.as_secs_f64() * 1000.0
    );
    println!(
        "  glass-to-glass:       p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms  over {} frames in {} s ({:.1} fps)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 1.0),
        latencies.len(),
        options.seconds,
        latencies.len() as f64 / options.seconds as f64
    );
    println!("  frames rendered:      {frames} ({unstamped} without a readable stamp, {out_of_order} out of order)");
    println!(
        "  saved frame:          {} ({}x{}, frame #{})",
        path.display(),
        frame.width,
        frame.height,
        frame.frame_number
    );
    println!(
        "  destroy took:         {:.0} ms",
        destroy_time.as_secs_f64() * 1000.0
    );
    println!(
        "  total:                {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if out_of_order > 0 {
        return Err(format!("{out_of_order} frames were rendered out of order"));
    }
    Ok(())
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("quickstart: {message}");
            std::process::exit(2);
        }
    };
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("quickstart: FAILED: still running after {WATCHDOG:?}");
        std::process::exit(1);
    });
    match run(&options) {
        Ok(()) => println!("quickstart: OK"),
        Err(message) => {
            eprintln!("quickstart: FAILED: {message}");
            std::process::exit(1);
        }
    }
}
