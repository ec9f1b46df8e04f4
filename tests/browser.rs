//! The web SDK in a real browser against the embedded server, with the native SDK on the other side: headless
//! Chromium (its fake camera and microphone) driven by `tests/browser/driver.mjs` through Playwright. Media both
//! ways, room events both ways, a session that resumes after its WebSocket breaks, a token renewed before it
//! expires, and a stream ID another publisher already holds.
//!
//! Needs node, `npm ci --prefix tests/browser` and /usr/bin/chromium. Without them each test says why and passes,
//! unless CI=true, where they must be there.

mod flow_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_support::*;
use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use zego_express::config::{PlayerConfig, PlayerState, PublishChannel, PublisherState};
use zego_express::event::Event;
use zego_express::Engine;
use zego_protocol::message::UpdateType;

use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

const T: Duration = Duration::from_secs(15);
const ROOM: &str = "browser-room";
/// The page's user.
const WEB: &str = "web";
/// The native SDK's user.
const NATIVE: &str = "native";

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the browser tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not installed".into());
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Some(
            "playwright-core is not installed: run `npm ci --prefix tests/browser`".into(),
        );
    }
    let chromium = chromium();
    if !chromium.exists() {
        return Some(format!(
            "{} does not exist (Debian package chromium)",
            chromium.display()
        ));
    }
    None
}

/// One browser test at a time: a Chromium, a server and a native engine each already load the two cores of the
/// machines this runs on, and the tests wait on real time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The server the page and the native SDK meet on (with the lock of [`ONE_AT_A_TIME`]), or None (the test is
/// skipped) without a browser outside CI.
fn web_server(config: ServerConfig) -> Option<(MutexGuard<'static, ()>, EmbeddedServer)> {
    if let Some(why) = missing_prerequisite() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser tests must run in CI, but {why}"
        );
        eprintln!("skipped: {why}");
        return None;
    }
    let turn = ONE_AT_A_TIME.lock();
    init_logging();
    Some((
        turn,
        EmbeddedServer::start(config).expect("the embedded server starts"),
    ))
}

/// What every scenario's args start with.
fn base_args(server: &EmbeddedServer) -> Value {
    json!({
        "origin": format!("http://{}", server.http_addr()),
        "ws": server.ws_url(),
        "appID": DEV_APP_ID,
        "appSign": DEV_APP_SIGN,
        "room": ROOM,
        "userID": WEB,
        "timeoutMs": 50_000,
    })
}

fn with(mut args: Value, more: Value) -> Value {
    let (Value::Object(a), Value::Object(m)) = (&mut args, more) else {
        unreachable!("args are objects")
    };
    a.extend(m);
    args
}

/// One run of the node driver: lines it printed arrive on `lines`, `go` answers its `waitGo`.
struct Page {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
    seen: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    scenario: String,
}

impl Page {
    fn start(scenario: &str, args: Value) -> Page {
        let mut child = Command::new("node")
            .arg(browser_dir().join("driver.mjs"))
            .arg(scenario)
            .arg(args.to_string())
            .env("CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs the driver");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Page {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
            scenario: scenario.into(),
        }
    }

    /// The next line matching `pred`; fails on the driver's error line, its exit, or after `timeout`.
    fn wait_line(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.get("error").is_some() {
                        self.fail(&format!("the page failed while waiting for {what}"));
                    }
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("timed out after {timeout:?} waiting for {what}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("the driver exited while waiting for {what}"))
                }
            }
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines: Vec<String> = self.seen.iter().map(|l| format!("  {l}")).collect();
        panic!(
            "browser scenario {}: {why}\nstdout:\n{}\nstderr:\n{}",
            self.scenario,
            lines.join("\n"),
            self.stderr.lock()
        );
    }

    /// Waits for the driver's `{"step": name}` line.
    fn step(&mut self, name: &str) -> Value {
        self.wait_line(&format!("step {name}"), T * 2, |l| l["step"] == name)
    }

    /// Lets the page's `waitGo(name)` go on.
    fn go(&mut self, name: &str) {
        self.go_with(name, json!({}));
    }

    /// Like [`Page::go`], with more fields for the page.
    fn go_with(&mut self, name: &str, more: Value) {
        let line = with(json!({ "go": name }), more);
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("the driver reads stdin");
    }

    /// The scenario's result; the driver must exit successfully.
    fn done(mut self) -> Value {
        let result = self.wait_line("the result", T * 3, |l| l.get("done").is_some());
        eprintln!("{}: {result}", self.scenario);
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait().expect("the driver's status") {
                Some(status) if status.success() => return result,
                Some(status) => self.fail(&format!("the driver exited with {status}")),
                None if Instant::now() > deadline => self.fail("the driver did not exit"),
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
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

fn logged_in(rec: &Recorder) {
    rec.wait_for("the native login", T, |e| {
        matches!(e, Event::RoomStateChanged { reason, .. }
            if *reason == zego_express::config::RoomStateChangedReason::Logined)
    });
}

fn user_update(update: UpdateType, user_id: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::RoomUserUpdate { update_type, users, .. }
            if *update_type == update && users.iter().any(|u| u.user_id == user_id))
    }
}

fn stream_update(update: UpdateType, stream_id: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::RoomStreamUpdate { update_type, streams, .. }
            if *update_type == update && streams.iter().any(|s| s.stream_id == stream_id))
    }
}

/// The native SDK logged in to the room and publishing its synthetic camera and tone as `stream_id`.
fn native_publisher(server: &EmbeddedServer, stream_id: &str) -> (Engine, Recorder) {
    let (native, rec) = engine(server.ws_url());
    native
        .login_room(ROOM, user(NATIVE), notify_users())
        .unwrap();
    logged_in(&rec);
    native
        .start_publishing(stream_id, PublishChannel::Main)
        .unwrap();
    rec.wait_for("native publishing", T, |e| {
        matches!(e, Event::PublisherStateUpdate { stream_id: s, state: PublisherState::Publishing, .. }
            if s == stream_id)
    });
    (native, rec)
}

#[test]
fn native_plays_what_the_browser_publishes() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let mut page = Page::start(
        "publish-camera",
        with(
            base_args(&server),
            json!({ "streamID": "web-cam", "width": 640, "height": 360 }),
        ),
    );
    page.step("publishing");

    let (native, rec) = engine(server.ws_url());
    native
        .login_room(ROOM, user(NATIVE), notify_users())
        .unwrap();
    logged_in(&rec);
    native
        .start_playing("web-cam", PlayerConfig::default())
        .unwrap();
    rec.wait_for("playing the page's stream", T, |e| {
        matches!(e, Event::PlayerStateUpdate { stream_id, state: PlayerState::Playing, .. } if stream_id == "web-cam")
    });
    rec.wait_for(
        "the first video frame",
        T,
        |e| matches!(e, Event::PlayerRecvVideoFirstFrame { stream_id } if stream_id == "web-cam"),
    );
    rec.wait_until("30 decoded frames", T, |r| r.frame_count("web-cam") >= 30);
    rec.wait_until("decoded audio", T, |r| r.audio_frames() >= 25);
    let last = *rec.frames("web-cam").last().unwrap();
    assert!(
        last.width >= 160 && last.height >= 90,
        "decoded {}x{}",
        last.width,
        last.height
    );

    page.go("stop");
    page.done();
    rec.wait_for(
        "the page's stream ends",
        T,
        stream_update(UpdateType::Delete, "web-cam"),
    );
    native.destroy();
}

/// What a page that played the native stream reports: 30 frames shown at the size the native side encodes, and
/// video and audio decoded.
fn assert_played_what_is_encoded(played: &Value, native: &Engine) {
    let video = native.video_config(PublishChannel::Main);
    assert!(played["frames"].as_u64().unwrap() >= 30, "{played}");
    assert_eq!(
        (played["width"].as_u64(), played["height"].as_u64()),
        (
            Some(u64::from(video.encode_width)),
            Some(u64::from(video.encode_height))
        ),
        "the browser shows what the native side encodes: {played}"
    );
    let stats = &played["stats"];
    assert!(
        stats["video"]["framesDecoded"].as_u64().unwrap() >= 30,
        "{stats}"
    );
    assert!(
        stats["audio"]["totalSamplesReceived"].as_u64().unwrap() > 0,
        "{stats}"
    );
}

#[test]
fn browser_plays_what_the_native_sdk_publishes() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let (native, _rec) = native_publisher(&server, "native-cam");

    let played = Page::start(
        "play",
        with(
            base_args(&server),
            json!({ "streamID": "native-cam", "frames": 30 }),
        ),
    )
    .done();

    assert_eq!(
        (
            played["videoTracks"].as_u64(),
            played["audioTracks"].as_u64()
        ),
        (Some(1), Some(1)),
        "one MediaStream with a video and an audio track: {played}"
    );
    assert_played_what_is_encoded(&played, &native);
    assert!(
        played["live"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["readyState"] == "live"),
        "{played}"
    );
    native.destroy();
}

/// A WHEP player that is not ours (Chromium's WebRTC, driven by a page with no SDK: fetch and RTCPeerConnection)
/// plays what the native SDK publishes, and appears in the room as a user until it DELETEs its session.
#[test]
fn a_whep_player_in_chromium_plays_what_the_native_sdk_publishes() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let (native, rec) = native_publisher(&server, "native-whep");
    let viewer = format!("{WEB}-whep");
    let mut page = Page::start(
        "whep-play",
        with(
            base_args(&server),
            json!({ "streamID": "native-whep", "frames": 30, "token": token(&viewer, unix_secs() + 600) }),
        ),
    );
    let playing = page.step("playing");
    eprintln!("whep-play: {playing}");
    rec.wait_for(
        "the WHEP viewer joins the room",
        T,
        user_update(UpdateType::Add, &viewer),
    );
    page.go("delete");
    let played = page.done();
    rec.wait_for(
        "the WHEP viewer leaves the room",
        T,
        user_update(UpdateType::Delete, &viewer),
    );

    let post = &played["post"];
    assert_eq!(post["status"], 201, "{played}");
    assert_eq!(post["contentType"], "application/sdp", "{played}");
    assert_eq!(
        (
            post["streams"].as_u64(),
            post["videoTracks"].as_u64(),
            post["audioTracks"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "one MediaStream with a video and an audio track: {played}"
    );
    assert_played_what_is_encoded(&played, &native);
    assert_eq!(played["deleteStatus"], 200, "{played}");
    native.destroy();
}

#[test]
fn room_events_reach_both_sides() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let mut page = Page::start(
        "events",
        with(
            base_args(&server),
            json!({ "streamID": "web-cam", "nativeUserID": NATIVE, "nativeStreamID": "native-cam" }),
        ),
    );
    page.step("logged-in");
    let (native, rec) = native_publisher(&server, "native-cam");
    rec.wait_for(
        "the page's user (in the login's ADD)",
        T,
        user_update(UpdateType::Add, WEB),
    );
    page.step("saw-native");
    page.step("publishing");
    rec.wait_for(
        "the page's stream ADD",
        T,
        stream_update(UpdateType::Add, "web-cam"),
    );

    page.go("stop-publishing");
    rec.wait_for(
        "the page's stream DELETE",
        T,
        stream_update(UpdateType::Delete, "web-cam"),
    );
    native.stop_publishing(PublishChannel::Main).unwrap();
    native.logout_room(Some(ROOM)).unwrap();
    page.step("saw-native-leave");

    let mark = rec.len();
    native
        .login_room(ROOM, user(NATIVE), notify_users())
        .unwrap();
    rec.wait_for_after(
        mark,
        "the page's user again",
        T,
        user_update(UpdateType::Add, WEB),
    );
    page.go("logout");
    let result = page.done();
    rec.wait_for_after(
        mark,
        "the page's user DELETE",
        T,
        user_update(UpdateType::Delete, WEB),
    );
    let reason: Value =
        serde_json::from_str(result["streamDeleteExtendedData"].as_str().unwrap()).unwrap();
    assert_eq!(
        reason["stream_delete_reason"][0],
        json!({ "code": 1, "stream_id": "native-cam" }),
        "stopped by its publisher"
    );
    native.destroy();
}

#[test]
fn browser_resumes_after_its_websocket_breaks() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let (native, rec) = native_publisher(&server, "native-cam");
    let relay = TcpRelay::start(server.http_addr());
    let mut page = Page::start(
        "reconnect",
        with(
            base_args(&server),
            json!({ "ws": relay.ws_url(), "streamID": "native-cam" }),
        ),
    );
    page.step("playing");
    rec.wait_for("the page in the room", T, user_update(UpdateType::Add, WEB));
    relay.cut();
    page.step("resumed");
    let result = page.done();

    let reasons: Vec<&str> = result["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["RECONNECTING", "RECONNECTED"], "{result}");
    assert!(
        result["framesAfter"].as_u64() >= result["framesAtReconnect"].as_u64().map(|f| f + 30),
        "video kept playing: {result}"
    );
    let since: &Vec<Value> = result["sinceResume"].as_array().unwrap();
    assert!(
        !since.iter().any(|e| e[0] == "roomStreamUpdate"
            || (e[0] == "playerStateUpdate" && e[1]["state"] != "PLAYING")),
        "the play went on as it was: {result}"
    );
    assert!(
        !rec.events()
            .iter()
            .any(user_update(UpdateType::Delete, WEB)),
        "the native side never saw the page leave"
    );
    native.destroy();
}

fn token(user_id: &str, expire: i64) -> String {
    dev_token(user_id, expire, String::new())
}

#[test]
fn browser_renews_its_token_before_it_expires() {
    // Warned 4 s ahead of a 6 s token, so the whole story fits in a few seconds.
    let config = ServerConfig {
        token_expire_notice: Duration::from_secs(4),
        ..ServerConfig::default()
    };
    let Some((_turn, server)) = web_server(config) else {
        return;
    };
    let (native, rec) = engine(server.ws_url());
    native
        .login_room(ROOM, user(NATIVE), notify_users())
        .unwrap();
    logged_in(&rec);

    let mut page = Page::start(
        "token",
        with(base_args(&server), json!({ "appSign": null })),
    );
    page.step("ready");
    // Minted once the browser is up, so its start-up time does not eat the short token's life.
    let first_expire = unix_secs() + 6;
    page.go_with(
        "token",
        json!({
            "token": token(WEB, first_expire),
            "renewToken": token(WEB, unix_secs() + 3600),
            "firstExpire": first_expire,
        }),
    );
    let renewed = page.step("renewed");
    assert_eq!(renewed["renewed"], true, "{renewed}");
    let remain = renewed["remainSeconds"].as_u64().unwrap();
    assert!((1..=4).contains(&remain), "warned {remain} s ahead");
    let result = page.done();

    assert!(
        result["now"].as_i64().unwrap() > first_expire,
        "the page outlived the first token: {result}"
    );
    assert_eq!(result["kicked"], json!([]), "{result}");
    assert_eq!(result["broadcast"]["errorCode"], 0, "{result}");
    rec.wait_for("the page's message after the first expiry", T, |e| {
        matches!(e, Event::ImRecvBroadcastMessage { messages, .. }
            if messages.iter().any(|m| m.from_user.user_id == WEB))
    });
    assert!(
        !rec.events()
            .iter()
            .any(user_update(UpdateType::Delete, WEB)),
        "the page never left"
    );
    native.destroy();
}

#[test]
fn browser_cannot_publish_a_stream_id_the_native_sdk_holds() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let (native, _rec) = native_publisher(&server, "taken");
    let result = Page::start(
        "duplicate-publish",
        with(base_args(&server), json!({ "streamID": "taken" })),
    )
    .done();
    assert_eq!(
        (result["state"].as_str(), result["errorCode"].as_u64()),
        (
            Some("NO_PUBLISH"),
            Some(u64::from(
                zego_express::error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED
            ))
        ),
        "{result}"
    );
    native.destroy();
}

/// SEI both ways between the web SDK and the native SDK: what each sends with its video arrives at the other, each
/// message once, in order, unchanged.
#[test]
fn sei_crosses_between_the_browser_and_the_native_sdk() {
    let Some((_turn, server)) = web_server(ServerConfig::default()) else {
        return;
    };
    let (native, rec) = native_publisher(&server, "native-sei");
    let mut page = Page::start(
        "sei",
        with(
            base_args(&server),
            json!({ "streamID": "web-sei", "nativeStreamID": "native-sei", "messages": 5, "expect": 5 }),
        ),
    );
    page.step("ready");
    native
        .start_playing("web-sei", PlayerConfig::default())
        .unwrap();
    rec.wait_until("frames of the page's stream", T, |r| {
        r.frame_count("web-sei") >= 5
    });
    page.go("send");
    let sent: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i, 0, 0, 1, b'n', b'a', b't'])
        .collect();
    for data in &sent {
        native.send_sei(data, PublishChannel::Main).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let from_page = |rec: &Recorder| -> Vec<Vec<u8>> {
        rec.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::PlayerRecvSei { stream_id, data } if stream_id == "web-sei" => Some(data),
                _ => None,
            })
            .collect()
    };
    rec.wait_until("the page's SEI", T, |r| from_page(r).len() >= 5);
    let result = page.done();
    let expected: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i, 0, 0, 3, b'w', b'e', b'b'])
        .collect();
    assert_eq!(
        from_page(&rec),
        expected,
        "the page's SEI in the native SDK"
    );
    let received: Vec<(String, Vec<u8>)> =
        serde_json::from_value(result["received"].clone()).expect("[stream, bytes] pairs");
    assert_eq!(
        received,
        sent.iter()
            .map(|d| ("native-sei".to_owned(), d.clone()))
            .collect::<Vec<_>>(),
        "the native SEI in the page"
    );
    assert_eq!(result["refused"], json!([false, false]), "{result}");
    native.destroy();
}
