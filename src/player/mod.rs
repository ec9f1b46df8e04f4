//! One played stream: receive (webrtc, on the runtime) -> decode (a thread per media kind) -> render (events).

mod decode;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod jitter_buffer;
#[cfg(test)]
mod media_path_tests;
mod quality;
mod receive;
mod render;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::media_stream::track_remote::TrackRemote;
use zego_protocol::error::{self, ErrorCode};

use crate::config::PlayerConfig;
use crate::event::EventSender;
use crate::transport::{MediaNotice, Peer, PeerRole, TransportConfig};

type Result<T> = std::result::Result<T, ErrorCode>;

/// Counters of one play, read by the quality reporter.
#[derive(Default)]
pub(super) struct Counters {
    pub video_packets: AtomicU64,
    pub video_bytes: AtomicU64,
    pub video_frames_received: AtomicU64,
    pub video_frames_decoded: AtomicU64,
    pub video_frames_rendered: AtomicU64,
    /// Access units the decoder rejected (should stay 0: broken frames never reach it).
    pub decode_errors: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub audio_packets: AtomicU64,
    pub audio_bytes: AtomicU64,
    pub audio_frames_decoded: AtomicU64,
    pub audio_concealed: AtomicU64,
    /// Audio packets the sequence numbers say were sent, and those of them that had not arrived when a later one
    /// did (loss before retransmission).
    pub audio_packets_expected: AtomicU64,
    pub audio_packets_missed: AtomicU64,
    /// Capture-to-render delay of the last rendered frame that carried a readable stamp.
    pub last_delay_us: AtomicU64,
    pub delay_sum_us: AtomicU64,
    pub delay_samples: AtomicU64,
    /// The playout stage's current target delay (the jitter buffer's depth).
    pub playout_delay_us: AtomicU64,
    /// Time between frames beyond the freeze threshold, summed (a freeze is added when it ends).
    pub frozen_us: AtomicU64,
    /// When the last frame was rendered, so a freeze still going on counts too.
    pub last_render: Mutex<Option<std::time::Instant>>,
}

/// What the player's tasks and threads share.
pub(super) struct PlayerShared {
    pub stream_id: String,
    pub events: EventSender,
    pub volume: AtomicU32,
    pub audio_muted: AtomicBool,
    pub video_muted: AtomicBool,
    /// Latest round-trip estimate in microseconds (0 until one is measured), for how often missing packets are asked
    /// for and how long gaps wait for them. Loopback and LAN round trips are well under a millisecond.
    pub rtt_us: AtomicU32,
    pub counters: Counters,
    pub recv_video_first: AtomicBool,
    pub recv_audio_first: AtomicBool,
    pub render_first: AtomicBool,
    /// Set when the play ends; decode threads stop at their next item.
    pub stopped: AtomicBool,
    /// The next audio packet to play, as its sequence number with `receive::AUDIO_PLAYHEAD_SET` (0 before there is
    /// one): retransmissions of the packets before it would come too late.
    pub audio_playhead: AtomicU32,
}

impl PlayerShared {
    /// A stream's state before anything arrived: full volume, nothing muted, no first frame yet.
    pub(super) fn new(stream_id: &str, events: EventSender) -> Self {
        PlayerShared {
            stream_id: stream_id.to_owned(),
            events,
            volume: AtomicU32::new(100),
            audio_muted: AtomicBool::new(false),
            video_muted: AtomicBool::new(false),
            rtt_us: AtomicU32::new(0),
            counters: Counters::default(),
            recv_video_first: AtomicBool::new(false),
            recv_audio_first: AtomicBool::new(false),
            render_first: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            audio_playhead: AtomicU32::new(0),
        }
    }
}

impl PlayerShared {
    /// Records a round-trip measurement (milliseconds, fractional).
    pub fn set_rtt(&self, rtt_ms: f64) {
        if rtt_ms.is_finite() && rtt_ms >= 0.0 {
            // At least 1 µs: 0 means none measured.
            let us = (rtt_ms * 1000.0).round().clamp(1.0, f64::from(u32::MAX));
            self.rtt_us.store(us as u32, Ordering::Relaxed);
        }
    }

    /// The latest round trip, once one is measured.
    pub fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(u64::from(us))),
        }
    }
}

/// One offer/answer round with the relay and everything it started.
struct Session {
    peer: Arc<Peer>,
    /// Track readers and the quality reporter.
    tasks: Tasks,
    /// Decode threads, started when the tracks arrive.
    threads: Threads,
}

pub(crate) struct Player {
    shared: Arc<PlayerShared>,
    runtime: tokio::runtime::Handle,
    transport: TransportConfig,
    notices: UnboundedSender<MediaNotice>,
    session: Mutex<Option<Session>>,
}

impl Player {
    pub fn new(
        stream_id: &str,
        config: PlayerConfig,
        events: EventSender,
        notices: UnboundedSender<MediaNotice>,
        runtime: tokio::runtime::Handle,
        transport: TransportConfig,
    ) -> Player {
        // Every supported resource mode (see `PlayerConfig::validate`) takes the same real-time path.
        let _ = config;
        Player {
            shared: Arc::new(PlayerShared::new(stream_id, events)),
            runtime,
            transport,
            notices,
            session: Mutex::new(None),
        }
    }

    /// Creates the receive-only (video + audio) peer, waits for ICE gathering and returns the SDP offer. A play
    /// already under way is closed first.
    pub async fn create_offer(&self) -> Result<String> {
        self.close().await;
        let shared = self.shared.clone();
        shared.stopped.store(false, Ordering::Release);
        for flag in [
            &shared.recv_video_first,
            &shared.recv_audio_first,
            &shared.render_first,
        ] {
            flag.store(false, Ordering::Release);
        }
        let tasks = Tasks::default();
        let threads = Threads::default();

        let notices = self.notices.clone();
        let stream_id = shared.stream_id.clone();
        let on_failure = Box::new(move || {
            let _ = notices.send(MediaNotice::PlayerTransportFailed {
                stream_id: stream_id.clone(),
            });
        });
        let on_track = {
            let (shared, tasks, threads, runtime) = (
                shared.clone(),
                tasks.clone(),
                threads.clone(),
                self.runtime.clone(),
            );
            Box::new(move |track: Arc<dyn TrackRemote>| {
                start_track(track, shared.clone(), &tasks, &threads, &runtime);
            })
        };
        let peer = Peer::new(
            &self.transport,
            PeerRole::Player,
            self.runtime.clone(),
            on_failure,
            Some(on_track),
        )
        .await
        .map_err(|e| {
            tracing::error!(stream_id = %self.shared.stream_id, "{e}");
            error::PLAYER_INNER_ERROR
        })?;
        let peer = Arc::new(peer);
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            if let Err(e) = peer.add_receiver(kind).await {
                tracing::error!(stream_id = %self.shared.stream_id, "{e}");
                peer.close().await;
                return Err(error::PLAYER_INNER_ERROR);
            }
        }
        let offer = match peer.offer().await {
            Ok(sdp) => sdp,
            Err(e) => {
                tracing::error!(stream_id = %self.shared.stream_id, "{e}");
                peer.close().await;
                return Err(error::PLAYER_INNER_ERROR);
            }
        };
        *self.session.lock() = Some(Session {
            peer,
            tasks,
            threads,
        });
        Ok(offer)
    }

    /// Applies the relay's answer and waits (bounded) until connected; quality reports start then.
    pub async fn accept_answer(&self, sdp: &str) -> Result<()> {
        let Some((peer, tasks)) = self
            .session
            .lock()
            .as_ref()
            .map(|s| (s.peer.clone(), s.tasks.clone()))
        else {
            return Err(error::PLAYER_PLAY_FAILED);
        };
        if let Err(e) = peer.accept_answer(sdp).await {
            tracing::warn!(stream_id = %self.shared.stream_id, "play transport did not connect: {e}");
            return Err(error::PLAYER_PLAY_FAILED);
        }
        tracing::info!(stream_id = %self.shared.stream_id, "play transport connected");
        let reporter = self
            .runtime
            .spawn(quality::report(peer, self.shared.clone()));
        tasks.lock().push(reporter);
        Ok(())
    }

    /// 0..=200, 100 = as received.
    pub fn set_volume(&self, volume: u32) {
        self.shared.volume.store(volume.min(200), Ordering::Relaxed);
    }

    pub fn mute_audio(&self, mute: bool) {
        self.shared.audio_muted.store(mute, Ordering::Relaxed);
    }

    pub fn mute_video(&self, mute: bool) {
        self.shared.video_muted.store(mute, Ordering::Relaxed);
    }

    /// Closes the peer and joins its decode threads.
    pub async fn close(&self) {
        let Some(session) = self.session.lock().take() else {
            return;
        };
        self.shared.stopped.store(true, Ordering::Release);
        let c = &self.shared.counters;
        tracing::debug!(
            stream_id = %self.shared.stream_id,
            frames = c.video_frames_rendered.load(Ordering::Relaxed),
            keyframe_requests = c.keyframe_requests.load(Ordering::Relaxed),
            decode_errors = c.decode_errors.load(Ordering::Relaxed),
            fec_recovered = session.peer.fec_recovered(),
            audio_concealed = c.audio_concealed.load(Ordering::Relaxed),
            "closing the play"
        );
        // On its own task, so a caller that stops waiting (a timeout) does not leave the teardown half done.
        let stream_id = self.shared.stream_id.clone();
        let teardown = self.runtime.spawn(async move {
            session.peer.close().await;
            // The readers end with the peer; aborting them also drops their senders, which ends the decode
            // threads. Awaiting each one makes sure none starts a thread after the threads are collected below.
            let tasks: Vec<_> = session.tasks.lock().drain(..).collect();
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
            let threads: Vec<JoinHandle<()>> = session.threads.lock().drain(..).collect();
            join_threads(threads).await;
            tracing::debug!(%stream_id, "play closed");
        });
        if let Err(e) = teardown.await {
            tracing::error!(stream_id = %self.shared.stream_id, "closing the play failed: {e}");
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        if let Some(session) = self.session.get_mut().take() {
            // Not closed through `close`: stop everything without waiting; the threads end on their own.
            self.shared.stopped.store(true, Ordering::Release);
            session.peer.mark_closing();
            for task in session.tasks.lock().drain(..) {
                task.abort();
            }
            let peer = session.peer;
            self.runtime.spawn(async move { peer.close().await });
        }
    }
}

type Threads = Arc<Mutex<Vec<JoinHandle<()>>>>;
type Tasks = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// Starts the reader task of a track that arrived; it starts the decode thread of the track's kind.
fn start_track(
    track: Arc<dyn TrackRemote>,
    shared: Arc<PlayerShared>,
    tasks: &Tasks,
    threads: &Threads,
    runtime: &tokio::runtime::Handle,
) {
    let threads = threads.clone();
    let task = runtime.spawn(async move {
        let kind = track.kind().await;
        let label: String = shared.stream_id.chars().take(8).collect();
        match kind {
            RtpCodecKind::Video => {
                let (au_tx, au_rx) = std::sync::mpsc::channel();
                let (feedback_tx, feedback_rx) = tokio::sync::mpsc::unbounded_channel();
                let thread_shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("zego-vdec-{label}"))
                    .spawn(move || decode::video_thread(au_rx, thread_shared, feedback_tx));
                match spawned {
                    Ok(handle) => threads.lock().push(handle),
                    Err(e) => {
                        tracing::error!("cannot start the video decode thread: {e}");
                        return;
                    }
                }
                receive::read_video_track(track, shared, au_tx, feedback_rx).await;
            }
            RtpCodecKind::Audio => {
                let (packet_tx, packet_rx) = std::sync::mpsc::channel();
                let thread_shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("zego-adec-{label}"))
                    .spawn(move || decode::audio_thread(packet_rx, thread_shared));
                match spawned {
                    Ok(handle) => threads.lock().push(handle),
                    Err(e) => {
                        tracing::error!("cannot start the audio decode thread: {e}");
                        return;
                    }
                }
                receive::read_audio_track(track, shared, packet_tx).await;
            }
            other => tracing::debug!("ignoring a {other} track"),
        }
    });
    tasks.lock().push(task);
}

/// Joins decode threads off the runtime's worker threads when possible.
async fn join_threads(threads: Vec<JoinHandle<()>>) {
    if threads.is_empty() {
        return;
    }
    let join_all = move || {
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a decode thread panicked");
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            if let Err(e) = handle.spawn_blocking(join_all).await {
                tracing::error!("joining decode threads failed: {e}");
            }
        }
        Err(_) => join_all(),
    }
}
