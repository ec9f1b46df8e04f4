//! What the bench process and its role processes say to each other: one JSON object per line, commands on the
//! child's stdin, reports on its stdout. Logs go to stderr so they never mix with reports.

use std::io::Write;

use serde::{Deserialize, Serialize};

/// Parent -> child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Publisher: `start_publishing`.
    Publish,
    /// Publisher: `stop_publishing`.
    Unpublish,
    /// Player: `start_playing`.
    Play,
    /// Player: `stop_playing`.
    StopPlay,
    /// Player: forget what was recorded and start a measurement window now.
    StartWindow,
    /// Player: end the window and send everything recorded in it.
    EndWindow,
    /// Every role: leave the room, destroy the engine (or stop the server) and exit.
    Quit,
}

/// Child -> parent. Times are unix microseconds on the shared wall clock (all roles run on one machine).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Report {
    /// Server: listening.
    ServerReady {
        ws_url: String,
        media_addr: String,
        announced: String,
    },
    /// Publisher or player: logged in to the room.
    LoggedIn { at_us: u64 },
    /// Publisher: `start_publishing` returned 0 at this time.
    PublishCalled { at_us: u64 },
    PublisherState {
        at_us: u64,
        state: i32,
        error_code: u32,
    },
    PublisherQuality {
        at_us: u64,
        quality: PublishQualityReport,
    },
    /// Player: `start_playing` returned 0 at this time.
    PlayCalled { at_us: u64 },
    PlayerState {
        at_us: u64,
        state: i32,
        error_code: u32,
    },
    PlayerQuality {
        at_us: u64,
        quality: PlayQualityReport,
    },
    /// Player: PlayerRenderVideoFirstFrame; `since_play_ms` is measured from the last `start_playing` call.
    FirstFrame { at_us: u64, since_play_ms: f64 },
    /// Player: a step on the way to the first frame ("playing", "video_received"), from `start_playing`.
    PlayMilestone { stage: String, since_play_ms: f64 },
    /// Player: what was rendered between StartWindow and EndWindow.
    Window(Box<WindowRecord>),
    /// An API call returned an error code, or the engine reported one.
    Error { at_us: u64, what: String, code: u32 },
    /// The role finished its Quit.
    Done,
}

/// PublisherQualityUpdate, as the bench keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublishQualityReport {
    pub video_capture_fps: f64,
    pub video_encode_fps: f64,
    pub video_send_fps: f64,
    pub video_kbps: f64,
    pub audio_kbps: f64,
    pub rtt_ms: u32,
    pub packet_lost_rate: f64,
    pub target_bitrate_kbps: f64,
    pub level: i32,
}

/// PlayerQualityUpdate, as the bench keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlayQualityReport {
    pub video_recv_fps: f64,
    pub video_decode_fps: f64,
    pub video_render_fps: f64,
    pub video_kbps: f64,
    pub video_break_rate: f64,
    pub audio_recv_fps: f64,
    pub rtt_ms: u32,
    pub packet_lost_rate: f64,
    pub delay_ms: u32,
    pub level: i32,
}

/// The decoder made this audio up for a packet that never arrived (loss concealment, not in-band FEC).
pub const AUDIO_CONCEALED: u64 = 1;
/// This audio is silence (below -50 dBFS RMS), where the source never is.
pub const AUDIO_SILENT: u64 = 2;

/// Everything the player saw during one measurement window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowRecord {
    pub start_us: u64,
    pub end_us: u64,
    /// One entry per RemoteVideoFrame: `[render_us, capture_us, frame_number]`; capture_us 0 = no readable stamp.
    pub frames: Vec<[u64; 3]>,
    /// Every RemoteAudioFrame: `[arrival_us, duration_us, flags]`, flags [`AUDIO_CONCEALED`] and [`AUDIO_SILENT`].
    pub audio: Vec<[u64; 3]>,
    /// For each audio chunk played from a packet that arrived: how long the packet waited in the player's jitter
    /// buffer, in µs.
    #[serde(default)]
    pub audio_buffered_us: Vec<u64>,
    /// When the start of each of the synthetic microphone's time marks was heard (played out by the callback), in
    /// µs (`zego_media::audio_mark`).
    #[serde(default)]
    pub audio_marks_us: Vec<u64>,
    /// The player's state when the window ended (2 = PLAYING).
    pub final_state: i32,
}

/// Writes one report as one line. Stdout is line-buffered, so the parent sees each line at once.
pub fn send(report: &Report) {
    let line = serde_json::to_string(report).expect("reports always serialize");
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone; the role ends when its stdin closes.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Wall-clock unix microseconds: the clock the publisher's camera stamps into the pixels.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Reads commands from stdin on a thread; a closed stdin (the parent went away) reads as Quit.
pub fn commands() -> std::sync::mpsc::Receiver<Command> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-commands".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Command::Quit);
                        return;
                    }
                    Ok(_) => match serde_json::from_str::<Command>(line.trim()) {
                        Ok(cmd) => {
                            if tx.send(cmd).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(line = line.trim(), error = %e, "unreadable command")
                        }
                    },
                }
            }
        })
        .expect("spawning the command reader thread");
    rx
}
