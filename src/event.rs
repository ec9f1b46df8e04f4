//! Everything the engine tells the app, as one typed stream, delivered on ONE dedicated callback thread.
//!
//! Producers (room session, publishers, players) call [`EventSender::send`] from any thread without holding
//! engine locks; the callback thread hands each [`Event`] to the sink (the C ABI's callback table, or a Rust
//! closure in tests). Because the sink runs on its own thread with no engine lock held, an app may call any API
//! from inside a callback. Video frames are bounded: when the app is slower than the stream, frames are dropped
//! (counted) rather than queued without limit; state events are never dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use zego_media::frame::VideoFrame;
use zego_protocol::error::ErrorCode;
use zego_protocol::message::{BroadcastMessage, RoomExtraInfo, StreamInfo, UpdateType, User};

use crate::config::{
    EngineState, PlayerState, PublishChannel, PublisherState, RoomState, RoomStateChangedReason,
};

/// Publish quality, reported every few seconds while publishing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishQuality {
    pub video_capture_fps: f64,
    pub video_encode_fps: f64,
    pub video_send_fps: f64,
    pub video_kbps: f64,
    pub audio_capture_fps: f64,
    pub audio_send_fps: f64,
    pub audio_kbps: f64,
    /// Round-trip time to the server, from RTCP.
    pub rtt_ms: u32,
    /// Fraction of packets lost on the way to the server (0.0..=1.0) before retransmission, from the relay's
    /// transport-wide congestion feedback (RTCP receiver reports when there is none).
    pub packet_lost_rate: f64,
    /// 0 excellent, 1 good, 2 medium, 3 bad, 4 die.
    pub level: i32,
    pub total_send_bytes: u64,
    /// The encoder's current target bitrate (after congestion control).
    pub target_bitrate_kbps: f64,
}

/// Play quality, reported every few seconds while playing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayQuality {
    pub video_recv_fps: f64,
    pub video_decode_fps: f64,
    pub video_render_fps: f64,
    pub video_kbps: f64,
    /// Fraction of time the video was frozen (no new frame for > 200 ms).
    pub video_break_rate: f64,
    pub audio_recv_fps: f64,
    pub audio_kbps: f64,
    pub rtt_ms: u32,
    /// Fraction of packets lost on the way from the server (0.0..=1.0) before retransmission: video from the
    /// sequence-number gaps seen on arrival, audio from RTCP statistics.
    pub packet_lost_rate: f64,
    /// Capture-to-render delay in ms when the capture time is known, else the jitter-buffer delay.
    pub delay_ms: u32,
    pub level: i32,
    pub total_recv_bytes: u64,
}

/// A decoded audio chunk for the PCM callback (when no speaker is used).
#[derive(Debug, Clone)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    pub channels: u16,
    /// Made up by the decoder's loss concealment for a packet that never arrived (not rebuilt from in-band FEC).
    pub concealed: bool,
    /// How long the packet of this audio waited in the jitter buffer for its tick: the delay the buffer added
    /// (`None` for audio made up or rebuilt from the next packet).
    pub buffered: Option<std::time::Duration>,
}

#[derive(Debug, Clone)]
pub enum Event {
    DebugError {
        code: ErrorCode,
        func_name: String,
        info: String,
    },
    EngineStateUpdate {
        state: EngineState,
    },
    RoomStateUpdate {
        room_id: String,
        state: RoomState,
        error_code: ErrorCode,
        extended_data: String,
    },
    RoomStateChanged {
        room_id: String,
        reason: RoomStateChangedReason,
        error_code: ErrorCode,
        extended_data: String,
    },
    RoomUserUpdate {
        room_id: String,
        update_type: UpdateType,
        users: Vec<User>,
    },
    RoomOnlineUserCountUpdate {
        room_id: String,
        count: u32,
    },
    RoomStreamUpdate {
        room_id: String,
        update_type: UpdateType,
        streams: Vec<StreamInfo>,
        extended_data: String,
    },
    RoomStreamExtraInfoUpdate {
        room_id: String,
        streams: Vec<StreamInfo>,
    },
    RoomExtraInfoUpdate {
        room_id: String,
        infos: Vec<RoomExtraInfo>,
    },
    RoomTokenWillExpire {
        room_id: String,
        remain_seconds: u32,
    },
    RoomSetRoomExtraInfoResult {
        error_code: ErrorCode,
        room_id: String,
        key: String,
        seq: i32,
    },
    PublisherStateUpdate {
        stream_id: String,
        state: PublisherState,
        error_code: ErrorCode,
        extended_data: String,
    },
    PublisherQualityUpdate {
        stream_id: String,
        quality: PublishQuality,
    },
    PublisherCapturedVideoFirstFrame {
        channel: PublishChannel,
    },
    PublisherUpdateStreamExtraInfoResult {
        error_code: ErrorCode,
        seq: i32,
    },
    PlayerStateUpdate {
        stream_id: String,
        state: PlayerState,
        error_code: ErrorCode,
        extended_data: String,
    },
    PlayerQualityUpdate {
        stream_id: String,
        quality: PlayQuality,
    },
    PlayerRecvVideoFirstFrame {
        stream_id: String,
    },
    PlayerRecvAudioFirstFrame {
        stream_id: String,
    },
    PlayerRenderVideoFirstFrame {
        stream_id: String,
    },
    /// App data sent with the frame that follows (`send_sei`).
    PlayerRecvSei {
        stream_id: String,
        data: Vec<u8>,
    },
    PlayerVideoSizeChanged {
        stream_id: String,
        width: u32,
        height: u32,
    },
    ImRecvBroadcastMessage {
        room_id: String,
        messages: Vec<BroadcastMessage>,
    },
    ImRecvCustomCommand {
        room_id: String,
        from_user: User,
        command: String,
    },
    ImSendBroadcastMessageResult {
        room_id: String,
        error_code: ErrorCode,
        message_id: u64,
        seq: i32,
    },
    ImSendCustomCommandResult {
        room_id: String,
        error_code: ErrorCode,
        seq: i32,
    },
    CustomVideoCaptureStart {
        channel: PublishChannel,
    },
    CustomVideoCaptureStop {
        channel: PublishChannel,
    },
    /// A decoded frame of a played stream (the render callback).
    RemoteVideoFrame {
        stream_id: String,
        frame: Arc<VideoFrame>,
    },
    /// A captured frame of a publish channel (the preview render callback).
    CapturedVideoFrame {
        channel: PublishChannel,
        frame: Arc<VideoFrame>,
    },
    /// Decoded audio of a played stream, when no speaker device plays it.
    RemoteAudioFrame {
        stream_id: String,
        frame: Arc<AudioFrame>,
    },
}

impl Event {
    fn is_frame(&self) -> bool {
        matches!(
            self,
            Event::RemoteVideoFrame { .. }
                | Event::CapturedVideoFrame { .. }
                | Event::RemoteAudioFrame { .. }
        )
    }
}

/// Receives every event on the callback thread.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Frames allowed to wait for the callback thread before new ones are dropped.
const MAX_QUEUED_FRAMES: usize = 8;

enum Job {
    Event(Event),
    Stop,
}

/// The sending side: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct EventSender {
    tx: std::sync::mpsc::Sender<Job>,
    queued_frames: Arc<AtomicUsize>,
    dropped_frames: Arc<AtomicUsize>,
}

impl EventSender {
    /// Queues an event for the callback thread. Returns false when the event was dropped (a frame while the app
    /// is behind, or anything after the engine stopped).
    pub fn send(&self, event: Event) -> bool {
        if event.is_frame()
            && self.queued_frames.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_FRAMES
        {
            self.queued_frames.fetch_sub(1, Ordering::AcqRel);
            self.dropped_frames.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.tx.send(Job::Event(event)).is_ok()
    }

    /// Frames dropped because the app's callbacks were slower than the streams.
    pub fn dropped_frames(&self) -> usize {
        self.dropped_frames.load(Ordering::Relaxed)
    }
}

/// Owns the callback thread.
pub struct CallbackThread {
    sender: EventSender,
    thread: Option<JoinHandle<()>>,
}

impl CallbackThread {
    pub fn start(sink: EventSink) -> std::io::Result<CallbackThread> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let queued_frames = Arc::new(AtomicUsize::new(0));
        let queued = queued_frames.clone();
        let thread = std::thread::Builder::new()
            .name("zego-callback".into())
            .spawn(move || {
                while let Ok(Job::Event(event)) = rx.recv() {
                    let frame = event.is_frame();
                    // A panicking app callback must not take the callback thread (and every later event) with it.
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(&event)));
                    if result.is_err() {
                        tracing::error!("an event callback panicked; the event was dropped");
                    }
                    if frame {
                        queued.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })?;
        Ok(CallbackThread {
            sender: EventSender {
                tx,
                queued_frames,
                dropped_frames: Arc::new(AtomicUsize::new(0)),
            },
            thread: Some(thread),
        })
    }

    pub fn sender(&self) -> EventSender {
        self.sender.clone()
    }

    /// Delivers what is queued, then ends the thread. Called from an app callback (on the callback thread
    /// itself), it returns without joining, and the thread ends after that callback returns.
    pub fn stop(&mut self) {
        let _ = self.sender.tx.send(Job::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for CallbackThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True on the engine's callback thread (the API uses it to avoid waiting on itself).
pub fn on_callback_thread() -> bool {
    std::thread::current().name() == Some("zego-callback")
}
