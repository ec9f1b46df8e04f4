//! The browser scenarios: headless Chromium (driven by `tests/browser/driver.mjs`) on one side of the server, the
//! native SDK on the other, all on loopback.
//!
//! - `native-to-browser`: the native synthetic camera (its capture time stamped into the pixels) played by the
//!   web SDK; the page reads the stamp of every frame it shows (requestVideoFrameCallback, canvas, the server's
//!   `/debug/stamp.js`) against the wall-clock time the frame is expected on screen (`performance.timeOrigin` +
//!   the callback's `expectedDisplayTime`), split at the arrival of its last packet (`receiveTime`). Also the page's
//!   startPlayingStream -> first shown frame, and Chromium's own jitter buffer delay over the window (getStats
//!   inbound-rtp jitterBufferDelay / jitterBufferEmittedCount).
//! - `browser-to-native`: a canvas the page stamps on every frame (`drawStamp`), published with the web SDK and
//!   played by the native SDK, which reads the stamps as it does for native streams.
//!
//! The stamp carries wall-clock unix microseconds, so both clocks are the machine's one clock. The server and the
//! native engine run in this process; the browser in its own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use zego_express::config::{
    EngineProfile, PlayerConfig, PublishChannel, PublisherState, RoomConfig, Scenario,
    StreamResourceMode, VideoConfig,
};
use zego_express::event::{Event, EventSink};
use zego_express::Engine;
use zego_protocol::message::User;
use zego_protocol::token04;
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN, DEV_SERVER_SECRET};

use crate::proto::now_us;
use crate::scenario::{Video, HD};
use crate::stats::Summary;

pub const NATIVE_TO_BROWSER: &str = "native-to-browser";
pub const BROWSER_TO_NATIVE: &str = "browser-to-native";
pub const NATIVE_TO_WHEP: &str = "native-to-whep";
pub const WHIP_TO_NATIVE: &str = "whip-to-native";

/// The browser scenarios with what they do, for `--list`.
pub fn all() -> [(&'static str, &'static str); 4] {
    [
        (
            NATIVE_TO_BROWSER,
            "1280x720@30 2.5 Mb/s from the native SDK, played in headless Chromium (web SDK), direct loopback",
        ),
        (
            BROWSER_TO_NATIVE,
            "1280x720@30 2.5 Mb/s stamped canvas published from headless Chromium (web SDK), played natively",
        ),
        (
            NATIVE_TO_WHEP,
            "1280x720@30 2.5 Mb/s from the native SDK, played by a WHEP player (headless Chromium, no SDK)",
        ),
        (
            WHIP_TO_NATIVE,
            "1280x720@30 2.5 Mb/s stamped canvas published by a WHIP client (headless Chromium, no SDK), played natively",
        ),
    ]
}

pub fn is_browser(name: &str) -> bool {
    all().iter().any(|(n, _)| *n == name)
}

const ROOM: &str = "bench-room";
const STREAM: &str = "bench-stream";
/// The page's user id (its WHIP or WHEP sessions are users of their own, this id with `-whip` or `-whep`).
const PAGE_USER: &str = "bench-web";
const WAIT: Duration = Duration::from_secs(20);

/// Runs one browser scenario; whatever was measured before a failure is kept next to an `error`.
pub fn run(name: &str, window: Duration, trials: u32) -> Value {
    let video = HD;
    let description = all()
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, d)| *d);
    let mut out = json!({
        "name": name,
        "conditions": {
            "description": description,
            "video": video,
            "path": { "kind": "direct" },
            "window_s": window.as_secs_f64(),
            "browser": chromium().display().to_string(),
        },
    });
    let result = match name {
        NATIVE_TO_BROWSER => native_to_browser(video, window, trials, false, &mut out),
        NATIVE_TO_WHEP => native_to_browser(video, window, trials, true, &mut out),
        WHIP_TO_NATIVE => browser_to_native(video, window, trials, true, &mut out),
        _ => browser_to_native(video, window, trials, false, &mut out),
    };
    if let Err(e) = result {
        tracing::error!(scenario = name, error = %e, "scenario failed");
        out["error"] = json!(e);
    }
    out
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

fn driver_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/driver.mjs")
}

/// A Token04 for the page's WHIP or WHEP user (`bench-web-whip`, `bench-web-whep`): any room, any stream.
fn http_token(kind: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let claims = token04::Claims {
        app_id: DEV_APP_ID,
        user_id: format!("{PAGE_USER}-{kind}"),
        nonce: rand::random::<i32>().into(),
        ctime: now,
        expire: now + 3600,
        payload: String::new(),
    };
    token04::generate(DEV_SERVER_SECRET, &claims, token04::Mode::Gcm, None)
        .expect("a token of the development app")
}

/// The native SDK publishes; the page plays with the web SDK, or over WHEP with `whep`.
fn native_to_browser(
    video: Video,
    window: Duration,
    trials: u32,
    whep: bool,
    out: &mut Value,
) -> Result<(), String> {
    let server = start_server()?;
    let native = Native::start(&server, "bench-native")?;
    native.publish(video)?;
    let mut page = Page::start(
        "bench-play",
        json!({
            "streamID": STREAM,
            "seconds": window.as_secs_f64(),
            "warmupSeconds": 2,
            "trials": trials.max(1),
            // ZEGO_BENCH_VIDEO_ONLY=1: play without the audio track, to see what audio/video sync adds.
            "audio": std::env::var("ZEGO_BENCH_VIDEO_ONLY").as_deref() != Ok("1"),
            "whep": whep,
            "token": if whep { http_token("whep") } else { String::new() },
            "timeoutMs": (window.as_secs_f64() * 1000.0) as u64 + 30_000 + u64::from(trials) * 5_000,
        }),
        &server,
    )?;
    let result = page.done(window + Duration::from_secs(30 + 5 * u64::from(trials)))?;
    native.engine.destroy();

    let latencies = numbers(&result["latenciesMs"]);
    let first = numbers(&result["firstFrameMs"]);
    out["glass_to_glass_ms"] = json!(Summary::of(&latencies));
    // The same frames split at the arrival of their last packet (requestVideoFrameCallback's receiveTime).
    out["capture_to_received_ms"] = json!(Summary::of(&numbers(&result["toReceivedMs"])));
    out["received_to_shown_ms"] = json!(Summary::of(&numbers(&result["receivedToShownMs"])));
    out["frames_shown"] = result["frames"].clone();
    out["frames_decoded"] = result["framesDecoded"].clone();
    out["stamps_read"] = result["stamped"].clone();
    out["stamps_unreadable"] = result["unreadable"].clone();
    out["shown_size"] = json!([result["width"], result["height"]]);
    out["first_frame_play_ms"] = trials_json(trials.max(1), &first);
    out["jitter_buffer_delay_ms"] = json!({
        "video": result["jitterBufferDelayMs"]["video"].as_f64().map(crate::cpu::round1),
        "audio": result["jitterBufferDelayMs"]["audio"].as_f64().map(crate::cpu::round1),
    });
    out["browser_video_per_frame_ms"] = json!({
        "decode": result["decodeMs"].as_f64().map(crate::cpu::round1),
        "received_to_decoded": result["processingDelayMs"].as_f64().map(crate::cpu::round1),
    });
    out["played_audio"] = result["audio"].clone();
    if latencies.is_empty() {
        return Err("the page read no stamp".into());
    }
    Ok(())
}

/// The page publishes a stamped canvas with the web SDK, or over WHIP with `whip`; the native SDK plays.
fn browser_to_native(
    video: Video,
    window: Duration,
    trials: u32,
    whip: bool,
    out: &mut Value,
) -> Result<(), String> {
    let server = start_server()?;
    let mut page = Page::start(
        "bench-publish",
        json!({
            "streamID": STREAM,
            "width": video.width,
            "height": video.height,
            "fps": video.fps,
            "bitrateKbps": video.bitrate_kbps,
            "whip": whip,
            "token": if whip { http_token("whip") } else { String::new() },
            "timeoutMs": (window.as_secs_f64() * 1000.0) as u64 + 60_000 + u64::from(trials) * 10_000,
        }),
        &server,
    )?;
    page.step("publishing", WAIT)?;
    let native = Native::start(&server, "bench-native")?;

    // First-frame trials: start_playing -> first decoded frame, then the steady play the window measures.
    let mut first = Vec::new();
    for _ in 0..trials.max(1) {
        native.record.lock().frames.clear();
        let started = Instant::now();
        native.play()?;
        native.wait("the first frame", WAIT, |r| !r.frames.is_empty())?;
        first.push(started.elapsed().as_secs_f64() * 1000.0);
        if first.len() < trials as usize {
            native
                .engine
                .stop_playing(STREAM)
                .map_err(|c| format!("stop_playing failed with {c}"))?;
        }
    }
    std::thread::sleep(Duration::from_secs(2)); // warm-up, as the native scenarios
    native.record.lock().frames.clear();
    std::thread::sleep(window);
    let frames = std::mem::take(&mut native.record.lock().frames);
    page.go("stop")?;
    let result = page.done(WAIT)?;
    native.engine.destroy();

    let stamped: Vec<f64> = frames
        .iter()
        .filter(|f| f.0 > 0)
        .map(|&(captured, shown)| shown.saturating_sub(captured) as f64 / 1000.0)
        .collect();
    out["glass_to_glass_ms"] = json!(Summary::of(&stamped));
    out["frames_shown"] = json!(frames.len());
    out["stamps_unreadable"] = json!(frames.len() - stamped.len());
    out["frames_drawn"] = result["drawn"].clone();
    out["first_frame_play_ms"] = trials_json(trials.max(1), &first);
    if stamped.is_empty() {
        return Err("the native player read no stamp".into());
    }
    Ok(())
}

/// First-frame trials in the shape of the native scenarios' (requested, ok, the summary, every sample).
fn trials_json(requested: u32, times: &[f64]) -> Value {
    let mut value = json!({
        "requested": requested,
        "ok": times.len(),
        "samples": times.iter().map(|t| crate::cpu::round1(*t)).collect::<Vec<_>>(),
    });
    if let (Some(v), Ok(Value::Object(summary))) = (
        value.as_object_mut(),
        serde_json::to_value(Summary::of(times)),
    ) {
        v.extend(summary);
    }
    value
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn start_server() -> Result<EmbeddedServer, String> {
    EmbeddedServer::start(ServerConfig::default()).map_err(|e| format!("the server: {e}"))
}

#[derive(Default)]
struct Record {
    /// (capture time from the stamp, 0 if unreadable; when the frame was delivered), unix microseconds.
    frames: Vec<(u64, u64)>,
    publishing: bool,
    errors: Vec<String>,
}

/// The native SDK's side of a run.
struct Native {
    engine: Engine,
    record: Arc<Mutex<Record>>,
}

impl Native {
    fn start(server: &EmbeddedServer, user_id: &str) -> Result<Native, String> {
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = record.clone();
        let sink: EventSink = Arc::new(move |event: &Event| {
            let mut rec = rec.lock();
            match event {
                Event::RemoteVideoFrame { frame, .. } => {
                    rec.frames.push((frame.capture_time_us, now_us()));
                }
                Event::PublisherStateUpdate { state, .. } => {
                    rec.publishing = *state == PublisherState::Publishing;
                }
                Event::RoomStateUpdate {
                    error_code,
                    extended_data,
                    ..
                } if *error_code != 0 => {
                    rec.errors
                        .push(format!("room {error_code}: {extended_data}"));
                }
                _ => {}
            }
        });
        let profile = EngineProfile {
            app_id: DEV_APP_ID,
            app_sign: DEV_APP_SIGN.to_owned(),
            scenario: Scenario::Default,
            server: server.ws_url().to_owned(),
        };
        let engine =
            Engine::create(profile, sink).map_err(|c| format!("Engine::create failed with {c}"))?;
        let user = User {
            user_id: user_id.to_owned(),
            user_name: user_id.to_owned(),
        };
        engine
            .login_room(ROOM, user, RoomConfig::default())
            .map_err(|c| format!("login_room failed with {c}"))?;
        Ok(Native { engine, record })
    }

    fn publish(&self, video: Video) -> Result<(), String> {
        let config = VideoConfig {
            capture_width: video.width,
            capture_height: video.height,
            encode_width: video.width,
            encode_height: video.height,
            fps: video.fps,
            bitrate_kbps: video.bitrate_kbps,
            ..VideoConfig::default()
        };
        self.engine
            .set_video_config(config, PublishChannel::Main)
            .map_err(|c| format!("set_video_config failed with {c}"))?;
        self.engine
            .start_publishing(STREAM, PublishChannel::Main)
            .map_err(|c| format!("start_publishing failed with {c}"))?;
        self.wait("native publishing", WAIT, |r| r.publishing)
    }

    fn play(&self) -> Result<(), String> {
        let config = PlayerConfig {
            resource_mode: StreamResourceMode::OnlyL3,
        };
        self.engine
            .start_playing(STREAM, config)
            .map_err(|c| format!("start_playing failed with {c}"))
    }

    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Record) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let rec = self.record.lock();
                if done(&rec) {
                    return Ok(());
                }
                if let Some(e) = rec.errors.first() {
                    return Err(format!("native side, waiting for {what}: {e}"));
                }
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The browser's side: one run of the node driver (see tests/browser/driver.mjs for its lines).
struct Page {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
}

impl Page {
    fn start(scenario: &str, args: Value, server: &EmbeddedServer) -> Result<Page, String> {
        let mut all = json!({
            "origin": format!("http://{}", server.http_addr()),
            "ws": server.ws_url(),
            "appID": DEV_APP_ID,
            "appSign": DEV_APP_SIGN,
            "room": ROOM,
            "userID": PAGE_USER,
        });
        if let (Some(all), Value::Object(more)) = (all.as_object_mut(), args) {
            all.extend(more);
        }
        let driver = driver_path();
        let mut child = Command::new("node")
            .arg(&driver)
            .arg(scenario)
            .arg(all.to_string())
            .env("CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run node {}: {e} (needs node and `npm ci --prefix tests/browser`)",
                    driver.display()
                )
            })?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Ok(Page {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    fn wait_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|e| format!("the browser, waiting for {what}: {e}"))?;
            if let Some(error) = line.get("error") {
                return Err(format!("the browser: {}", error.as_str().unwrap_or("?")));
            }
            if pred(&line) {
                return Ok(line);
            }
        }
    }

    fn step(&mut self, name: &str, timeout: Duration) -> Result<Value, String> {
        self.wait_line(name, timeout, |l| l["step"] == name)
    }

    fn go(&mut self, name: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{}", json!({ "go": name }))
            .map_err(|e| format!("the browser's stdin: {e}"))
    }

    fn done(&mut self, timeout: Duration) -> Result<Value, String> {
        let result = self.wait_line("the result", timeout, |l| l.get("done").is_some())?;
        self.stdin.take();
        let _ = self.child.wait();
        Ok(result)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
