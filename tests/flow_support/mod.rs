//! What the flow tests share: an embedded server, an event recorder with bounded waits, and a TCP relay that
//! can cut every connection through it (a broken network, without touching the server).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use zego_express::config::{EngineProfile, RoomConfig, Scenario};
use zego_express::event::{Event, EventSink};
use zego_express::Engine;
use zego_protocol::message::User;
use zego_protocol::token04::{self, Claims, Mode};
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN, DEV_SERVER_SECRET};

/// Logs go to the test output when RUST_LOG is set.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub fn server() -> EmbeddedServer {
    init_logging();
    EmbeddedServer::start(ServerConfig::default()).expect("the embedded server starts")
}

pub fn profile(server: &str) -> EngineProfile {
    EngineProfile {
        app_id: DEV_APP_ID,
        app_sign: DEV_APP_SIGN.into(),
        scenario: Scenario::Default,
        server: server.into(),
    }
}

pub fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        user_name: format!("{id} name"),
    }
}

pub fn notify_users() -> RoomConfig {
    RoomConfig {
        is_user_status_notify: true,
        ..RoomConfig::default()
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Token04 of the development app for `user_id`, valid until `expire` (unix seconds), with this payload (empty:
/// any room, any stream).
pub fn dev_token(user_id: &str, expire: i64, payload: String) -> String {
    let claims = Claims {
        app_id: DEV_APP_ID,
        user_id: user_id.into(),
        nonce: rand::random::<i32>().into(),
        ctime: unix_secs(),
        expire,
        payload,
    };
    token04::generate(DEV_SERVER_SECRET, &claims, Mode::Gcm, None).unwrap()
}

/// A decoded frame as the render callback saw it.
#[derive(Debug, Clone, Copy)]
pub struct SeenFrame {
    pub frame_number: u64,
    pub capture_time_us: u64,
    pub rendered_us: u64,
    pub width: u32,
    pub height: u32,
}

type Hook = Box<dyn FnMut(&Event) + Send>;

#[derive(Default)]
struct Recorded {
    events: Vec<Event>,
    frames: Vec<(String, SeenFrame)>,
    captured_frames: usize,
    audio_frames: usize,
}

/// Keeps every event (frames as [`SeenFrame`]s) and lets a test wait for one.
#[derive(Clone, Default)]
pub struct Recorder {
    recorded: Arc<Mutex<Recorded>>,
    changed: Arc<Condvar>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl Recorder {
    pub fn sink(&self) -> EventSink {
        let recorder = self.clone();
        Arc::new(move |event: &Event| recorder.record(event))
    }

    fn record(&self, event: &Event) {
        if let Some(hook) = self.hook.lock().as_mut() {
            hook(event);
        }
        let mut recorded = self.recorded.lock();
        match event {
            Event::RemoteVideoFrame { stream_id, frame } => recorded.frames.push((
                stream_id.clone(),
                SeenFrame {
                    frame_number: frame.frame_number,
                    capture_time_us: frame.capture_time_us,
                    rendered_us: now_us(),
                    width: frame.width,
                    height: frame.height,
                },
            )),
            Event::CapturedVideoFrame { .. } => recorded.captured_frames += 1,
            Event::RemoteAudioFrame { .. } => recorded.audio_frames += 1,
            other => recorded.events.push(other.clone()),
        }
        self.changed.notify_all();
    }

    /// Runs on the callback thread before each event is recorded (to call the API from a callback).
    pub fn set_hook(&self, hook: impl FnMut(&Event) + Send + 'static) {
        *self.hook.lock() = Some(Box::new(hook));
    }

    pub fn events(&self) -> Vec<Event> {
        self.recorded.lock().events.clone()
    }

    pub fn frames(&self, stream_id: &str) -> Vec<SeenFrame> {
        self.recorded
            .lock()
            .frames
            .iter()
            .filter(|(s, _)| s == stream_id)
            .map(|(_, f)| *f)
            .collect()
    }

    pub fn frame_count(&self, stream_id: &str) -> usize {
        self.recorded
            .lock()
            .frames
            .iter()
            .filter(|(s, _)| s == stream_id)
            .count()
    }

    pub fn captured_frames(&self) -> usize {
        self.recorded.lock().captured_frames
    }

    pub fn audio_frames(&self) -> usize {
        self.recorded.lock().audio_frames
    }

    /// The first recorded event (from the start) matching `pred`, waiting up to `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Event) -> bool) -> Event {
        self.wait_for_after(0, what, timeout, pred)
    }

    /// Like [`Recorder::wait_for`], among the events recorded after the first `skip`.
    pub fn wait_for_after(
        &self,
        skip: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        let deadline = Instant::now() + timeout;
        let mut recorded = self.recorded.lock();
        loop {
            if let Some(event) = recorded.events.iter().skip(skip).find(|e| pred(e)) {
                return event.clone();
            }
            if self.changed.wait_until(&mut recorded, deadline).timed_out() {
                let recent: Vec<String> = recorded
                    .events
                    .iter()
                    .rev()
                    .take(30)
                    .rev()
                    .map(|e| format!("  {e:?}"))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; recent events:\n{}",
                    recent.join("\n")
                );
            }
        }
    }

    /// Waits until `cond` holds on the recorder.
    pub fn wait_until(&self, what: &str, timeout: Duration, cond: impl Fn(&Recorder) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn len(&self) -> usize {
        self.recorded.lock().events.len()
    }
}

/// An engine with its recorder.
pub fn engine(server: &str) -> (Engine, Recorder) {
    let recorder = Recorder::default();
    let engine = Engine::create(profile(server), recorder.sink()).expect("engine created");
    (engine, recorder)
}

/// What the relay does to the connections it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Forward.
    None,
    /// Stop forwarding but keep the sockets open: a path that went silent.
    Freeze(u64),
    /// Close the sockets: a path that broke.
    Drop(u64),
}

/// Forwards TCP connections from a loopback port to `target`. [`TcpRelay::cut`] breaks every connection through
/// it, [`TcpRelay::freeze`] silences them, and `set_open(false)` refuses new ones, like a network that went away.
pub struct TcpRelay {
    addr: SocketAddr,
    /// Where new connections go: [`TcpRelay::set_target`] moves them, as a name resolving elsewhere does.
    target: Arc<Mutex<SocketAddr>>,
    open: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<Cut>,
    generation: Mutex<u64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TcpRelay {
    pub fn start(target: SocketAddr) -> TcpRelay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let cut = tokio::sync::watch::channel(Cut::None).0;
        let (open2, cut2) = (open.clone(), cut.clone());
        let target = Arc::new(Mutex::new(target));
        let target2 = target.clone();
        runtime.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !open2.load(Ordering::SeqCst) {
                    continue; // Dropped: the client sees the connection reset.
                }
                let mut cut = cut2.subscribe();
                cut.mark_unchanged();
                let target = *target2.lock();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                        _ = cut.changed() => {}
                    }
                    let frozen = matches!(*cut.borrow_and_update(), Cut::Freeze(_));
                    if frozen {
                        // Hold both sockets, silent, until the relay is cut or dropped.
                        let _ = cut
                            .wait_for(|c| matches!(c, Cut::Drop(_)))
                            .await
                            .map(|_| ());
                    }
                });
            }
        });
        TcpRelay {
            addr,
            target,
            open,
            cut,
            generation: Mutex::new(0),
            runtime: Some(runtime),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn next(&self) -> u64 {
        let mut generation = self.generation.lock();
        *generation += 1;
        *generation
    }

    /// Closes every connection through the relay.
    pub fn cut(&self) {
        let g = self.next();
        self.cut.send_replace(Cut::Drop(g));
    }

    /// Every connection through the relay stops carrying anything, without closing.
    pub fn freeze(&self) {
        let g = self.next();
        self.cut.send_replace(Cut::Freeze(g));
    }

    /// New connections go to `target` from now on.
    pub fn set_target(&self, target: SocketAddr) {
        *self.target.lock() = target;
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// A counter's value from the server's `/metrics` endpoint.
pub fn metric(server: &EmbeddedServer, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut http = std::net::TcpStream::connect(server.http_addr()).expect("the metrics endpoint");
    http.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        http,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    http.read_to_string(&mut text).expect("the metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}
