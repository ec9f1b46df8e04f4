//! One publish channel: capture (a thread) -> encode (a thread per medium) -> send (webrtc, on the runtime).
//!
//! Capture runs while the channel previews or publishes. Frames reach the encoder through a one-slot mailbox, so
//! a slow encoder always encodes the newest picture. Encoding happens only while a transport is connected (the
//! "sink" is installed); the first frame after that, every keyframe interval, and every keyframe request from the
//! relay produce an IDR. The transport steers the encoder through its [`EncoderControl`] (bitrate, keyframes).

mod audio;
mod audio_protection;
mod capture;
mod encode;
mod mailbox;
mod quality;
mod scale;
mod sei;
pub(crate) use sei::check as check_sei;
mod send;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use rtc::media_stream::MediaStreamTrack;

use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc::UnboundedSender;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::Track;
use webrtc::rtp_transceiver::RtpSender;
use zego_media::frame::VideoFrame;
use zego_media::stamp::{self, Stamp};
use zego_protocol::error::{self, ErrorCode};

use self::mailbox::Mailbox;
use crate::config::{
    AudioConfig, AudioSourceType, PublishChannel, SeiType, VideoConfig, VideoSourceType,
};
use crate::event::{Event, EventSender};
use crate::transport::congestion::audio_wire_bps;
use crate::transport::peer::codecs;
use crate::transport::{EncoderControl, MediaNotice, Peer, StreamRates, TransportConfig};
use zego_rtp::{H264_PAYLOAD_TYPE, OPUS_PAYLOAD_TYPE};

type Result<T> = std::result::Result<T, ErrorCode>;

/// Wall-clock unix microseconds: the clock of capture times and of the pixel stamp.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub video: VideoConfig,
    pub audio: AudioConfig,
    pub video_source: VideoSourceType,
    pub audio_source: AudioSourceType,
}

/// A captured picture on its way to the encoder.
pub(super) struct Captured {
    pub frame: Arc<VideoFrame>,
    /// The pixels carry the capture stamp (synthetic camera), to be redrawn after scaling.
    pub stamped: bool,
}

/// Encoded media on its way to the sending task.
pub(super) struct EncodedSample {
    pub data: Bytes,
    /// How far the RTP clock advances after this sample. webrtc adds a sample's duration after packetizing it, and
    /// can only jump the clock over unsent frames by also skipping sequence numbers (which a receiver takes for
    /// loss it can never repair), so each sample carries the interval that preceded it: the RTP clock follows
    /// capture time one sample behind, and never drifts from it when frames are dropped or muted.
    pub duration: Duration,
    pub keyframe: bool,
}

/// Where encoders put their output while a transport is connected.
pub(super) struct Sink {
    pub video: UnboundedSender<EncodedSample>,
    pub audio: UnboundedSender<EncodedSample>,
    /// The transport's input to the video encoder.
    pub encoder: Arc<EncoderControl>,
    /// Stamped frames handed to the encoder for this stream so far: the stream numbers its frames from 1, whatever
    /// the preview showed before it started.
    pub frames: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub video_captured: AtomicU64,
    /// Captured frames never encoded: replaced in the mailbox before the encoder took them, or left out to keep the
    /// output within the congestion controller's target.
    pub video_dropped: AtomicU64,
    pub video_encoded: AtomicU64,
    pub video_sent: AtomicU64,
    pub video_sent_bytes: AtomicU64,
    pub audio_captured: AtomicU64,
    pub audio_sent: AtomicU64,
    pub audio_sent_bytes: AtomicU64,
    pub keyframes_requested: AtomicU64,
}

/// What the channel's threads and tasks share.
pub(super) struct Shared {
    pub channel: PublishChannel,
    pub events: EventSender,
    pub settings: Mutex<Settings>,
    pub previewing: AtomicBool,
    pub video_muted: AtomicBool,
    pub audio_muted: AtomicBool,
    pub sink: Mutex<Option<Sink>>,
    /// Capture -> encoder, newest frame wins.
    pub frames: Mailbox<Captured>,
    pub counters: Counters,
    /// The audio encoder's bitrate in kb/s while in-band FEC raised it above the configured one, else 0: the video
    /// encoder's share of the estimate leaves room for it.
    pub audio_fec_kbps: AtomicU32,
    /// SEI waiting for the next encoded frame.
    pub sei: Mutex<sei::SeiOutbox>,
    /// PublisherCapturedVideoFirstFrame was sent for the current capture run.
    first_frame_reported: AtomicBool,
    /// Capture threads are running (custom frames are taken only then).
    capturing: AtomicBool,
    custom_frame_number: AtomicU64,
}

impl Shared {
    /// A frame leaves capture: first-frame event, preview, and the encoder while publishing.
    pub fn deliver(&self, mut frame: VideoFrame, stamped: bool) {
        let streaming = match self.sink.lock().as_mut() {
            Some(sink) => {
                if stamped {
                    sink.frames += 1;
                    let stamp = Stamp {
                        capture_time_us: frame.capture_time_us,
                        frame_number: sink.frames,
                    };
                    stamp::draw(&mut frame, stamp);
                }
                true
            }
            None => false,
        };
        let frame = Arc::new(frame);
        self.counters.video_captured.fetch_add(1, Ordering::Relaxed);
        if !self.first_frame_reported.swap(true, Ordering::AcqRel) {
            self.events.send(Event::PublisherCapturedVideoFirstFrame {
                channel: self.channel,
            });
        }
        if self.previewing.load(Ordering::Relaxed) {
            self.events.send(Event::CapturedVideoFrame {
                channel: self.channel,
                frame: frame.clone(),
            });
        }
        if streaming && self.frames.put(Captured { frame, stamped }) {
            self.counters.video_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The body of a media thread: runs until its stop flag is set.
type ThreadBody = fn(Arc<Shared>, Arc<AtomicBool>);

/// The capture, encode and audio threads of one capture run.
struct Threads {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    fn wake(&self) {
        for h in &self.handles {
            h.thread().unpark();
        }
    }

    /// Asks the threads to end; `join` waits for them.
    fn stop(&self, shared: &Shared) {
        self.stop.store(true, Ordering::Release);
        shared.frames.close();
        self.wake();
    }

    fn join(self) {
        for h in self.handles {
            if h.join().is_err() {
                tracing::error!("a publisher media thread panicked");
            }
        }
    }
}

#[derive(Default)]
struct Control {
    previewing: bool,
    /// A transport exists (offer made, not yet closed).
    publishing: bool,
    threads: Option<Threads>,
    shut_down: bool,
}

/// One offer/answer round with the relay and what it started.
struct Session {
    stream_id: String,
    peer: Arc<Peer>,
    encoder: Arc<EncoderControl>,
    video: (Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>),
    audio: (Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>),
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub(crate) struct Publisher {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    transport: TransportConfig,
    notices: UnboundedSender<MediaNotice>,
    control: Mutex<Control>,
    session: Mutex<Option<Session>>,
}

impl Publisher {
    pub fn new(
        channel: PublishChannel,
        events: EventSender,
        notices: UnboundedSender<MediaNotice>,
        runtime: tokio::runtime::Handle,
        transport: TransportConfig,
    ) -> Publisher {
        Publisher {
            shared: Arc::new(Shared {
                channel,
                events,
                settings: Mutex::new(Settings {
                    video: VideoConfig::default(),
                    audio: AudioConfig::default(),
                    video_source: VideoSourceType::Synthetic,
                    audio_source: AudioSourceType::Synthetic,
                }),
                previewing: AtomicBool::new(false),
                video_muted: AtomicBool::new(false),
                audio_muted: AtomicBool::new(false),
                sink: Mutex::new(None),
                frames: Mailbox::default(),
                counters: Counters::default(),
                audio_fec_kbps: AtomicU32::new(0),
                sei: Mutex::new(sei::SeiOutbox::default()),
                first_frame_reported: AtomicBool::new(false),
                capturing: AtomicBool::new(false),
                custom_frame_number: AtomicU64::new(0),
            }),
            runtime,
            transport,
            notices,
            control: Mutex::new(Control::default()),
            session: Mutex::new(None),
        }
    }

    /// Applies at once: the bitrate on the next frame; a new size or frame rate with a new encoder (and so a
    /// keyframe).
    pub fn set_video_config(&self, cfg: VideoConfig) -> Result<()> {
        cfg.validate()?;
        self.shared.settings.lock().video = cfg;
        self.wake_threads();
        Ok(())
    }

    pub fn video_config(&self) -> VideoConfig {
        self.shared.settings.lock().video
    }

    pub fn set_audio_config(&self, cfg: AudioConfig) -> Result<()> {
        cfg.validate()?;
        self.shared.settings.lock().audio = cfg;
        self.wake_threads();
        Ok(())
    }

    /// Camera without the `devices` feature: COMMON_UNSUPPORTED.
    pub fn set_video_source(&self, src: VideoSourceType) -> Result<()> {
        if src == VideoSourceType::Camera && !cfg!(feature = "devices") {
            return Err(error::COMMON_UNSUPPORTED);
        }
        self.shared.settings.lock().video_source = src;
        self.wake_threads();
        Ok(())
    }

    /// Microphone without the `devices` feature: COMMON_UNSUPPORTED.
    pub fn set_audio_source(&self, src: AudioSourceType) -> Result<()> {
        if src == AudioSourceType::Microphone && !cfg!(feature = "devices") {
            return Err(error::COMMON_UNSUPPORTED);
        }
        self.shared.settings.lock().audio_source = src;
        self.wake_threads();
        Ok(())
    }

    /// A frame for a Custom source. COMMON_UNSUPPORTED when the source is not Custom, COMMON_INVALID_PARAMETER for
    /// an inconsistent frame. Frames sent while the channel neither previews nor publishes are dropped.
    pub fn send_custom_video_frame(&self, mut frame: VideoFrame) -> Result<()> {
        if self.shared.settings.lock().video_source != VideoSourceType::Custom {
            return Err(error::COMMON_UNSUPPORTED);
        }
        frame
            .validate()
            .map_err(|_| error::COMMON_INVALID_PARAMETER)?;
        if !self.shared.capturing.load(Ordering::Acquire) {
            tracing::trace!(channel = ?self.shared.channel, "custom frame dropped: not capturing");
            return Ok(());
        }
        if frame.capture_time_us == 0 {
            frame.capture_time_us = unix_micros();
        }
        let number = self
            .shared
            .custom_frame_number
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if frame.frame_number == 0 {
            frame.frame_number = number;
        }
        self.shared.deliver(frame, false);
        Ok(())
    }

    pub fn start_preview(&self) -> Result<()> {
        let mut control = self.control.lock();
        if control.shut_down {
            return Err(error::COMMON_ENGINE_NOT_CREATED);
        }
        control.previewing = true;
        self.shared.previewing.store(true, Ordering::Release);
        self.ensure_threads(&mut control)
    }

    pub fn stop_preview(&self) {
        let threads = {
            let mut control = self.control.lock();
            control.previewing = false;
            self.shared.previewing.store(false, Ordering::Release);
            self.idle_threads(&mut control)
        };
        if let Some(t) = threads {
            t.join();
        }
    }

    /// Muted video sends nothing; capture (and preview) go on.
    pub fn mute_video(&self, mute: bool) {
        self.shared.video_muted.store(mute, Ordering::Release);
    }

    /// Muted audio sends nothing.
    pub fn mute_audio(&self, mute: bool) {
        self.shared.audio_muted.store(mute, Ordering::Release);
    }

    /// Queues `data` for the next encoded video frame (see [`sei::SeiOutbox::push`] for the codes).
    pub fn send_sei(&self, data: &[u8], kind: SeiType) -> Result<()> {
        self.shared.sei.lock().push(data, kind, Instant::now())
    }

    /// Creates the peer (send-only H.264 + Opus), waits for ICE gathering, returns the SDP offer; starts capture.
    /// A transport already open is closed first.
    pub async fn create_offer(&self, stream_id: &str) -> Result<String> {
        if self.control.lock().shut_down {
            return Err(error::COMMON_ENGINE_NOT_CREATED);
        }
        self.close_session().await;
        let channel = self.shared.channel;
        let notices = self.notices.clone();
        let on_failure = Box::new(move || {
            let _ = notices.send(MediaNotice::PublisherTransportFailed { channel });
        });
        let (video_bps, audio_bps) = {
            let settings = self.shared.settings.lock();
            (
                settings.video.bitrate_kbps * 1000,
                audio_wire_bps(settings.audio.bitrate_kbps),
            )
        };
        let (peer, encoder) = Peer::new_publisher(
            &self.transport,
            StreamRates {
                video_bps,
                audio_bps,
            },
            self.runtime.clone(),
            on_failure,
        )
        .await
        .map_err(|e| {
            tracing::error!(?channel, "{e}");
            error::PUBLISHER_INNER_ERROR
        })?;
        let peer = Arc::new(peer);
        let tracks = async {
            let video = add_track(&peer, stream_id, RtpCodecKind::Video).await?;
            let audio = add_track(&peer, stream_id, RtpCodecKind::Audio).await?;
            let offer = peer.offer().await?;
            Ok::<_, String>((video, audio, offer))
        };
        let (video, audio, offer) = match tracks.await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(?channel, "cannot prepare the publish offer: {e}");
                peer.close().await;
                return Err(error::PUBLISHER_INNER_ERROR);
            }
        };
        let started = {
            let mut control = self.control.lock();
            if control.shut_down {
                Err(error::COMMON_ENGINE_NOT_CREATED)
            } else {
                control.publishing = true;
                self.ensure_threads(&mut control)
            }
        };
        if let Err(code) = started {
            peer.close().await;
            return Err(code);
        }
        *self.session.lock() = Some(Session {
            stream_id: stream_id.to_owned(),
            peer,
            encoder,
            video,
            audio,
            tasks: Vec::new(),
        });
        Ok(offer)
    }

    /// Applies the relay's answer and waits (bounded) until connected; media flows from then on.
    /// PUBLISHER_INNER_ERROR without an offer or for an unusable answer, PUBLISHER_NETWORK_INTERRUPTED_RETRYING when
    /// the transport does not connect in time.
    pub async fn accept_answer(&self, sdp: &str) -> Result<()> {
        let Some(peer) = self.session.lock().as_ref().map(|s| s.peer.clone()) else {
            return Err(error::PUBLISHER_INNER_ERROR);
        };
        let channel = self.shared.channel;
        if let Err(e) = peer.accept_answer(sdp).await {
            tracing::warn!(?channel, "publish transport did not connect: {e}");
            return Err(if peer.connection().remote_description().await.is_some() {
                error::PUBLISHER_NETWORK_INTERRUPTED_RETRYING
            } else {
                error::PUBLISHER_INNER_ERROR
            });
        }
        let Some((stream_id, encoder, video, audio)) = self.session.lock().as_ref().map(|s| {
            (
                s.stream_id.clone(),
                s.encoder.clone(),
                s.video.clone(),
                s.audio.clone(),
            )
        }) else {
            return Err(error::PUBLISHER_INNER_ERROR);
        };
        let video_pt = negotiated_payload_type(&video.1)
            .await
            .unwrap_or(H264_PAYLOAD_TYPE);
        let audio_pt = negotiated_payload_type(&audio.1)
            .await
            .unwrap_or(OPUS_PAYLOAD_TYPE);
        let video_ssrc = video.0.ssrcs().await.first().copied().unwrap_or(0);
        let audio_ssrc = audio.0.ssrcs().await.first().copied().unwrap_or(0);

        let (video_tx, video_rx) = tokio::sync::mpsc::unbounded_channel();
        let (audio_tx, audio_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = &self.shared;
        let tasks = vec![
            self.runtime.spawn(send::send(
                video.0.clone(),
                video_ssrc,
                video_pt,
                send::Kind::Video,
                video_rx,
                shared.clone(),
            )),
            self.runtime.spawn(send::send(
                audio.0.clone(),
                audio_ssrc,
                audio_pt,
                send::Kind::Audio,
                audio_rx,
                shared.clone(),
            )),
            self.runtime.spawn(send::keyframe_requests(
                video.0.clone(),
                encoder.clone(),
                shared.clone(),
            )),
            self.runtime.spawn(quality::report(
                peer.clone(),
                encoder.clone(),
                shared.clone(),
                stream_id,
            )),
        ];
        let mut session = self.session.lock();
        match session.as_mut() {
            Some(s) if Arc::ptr_eq(&s.peer, &peer) => s.tasks = tasks,
            // Closed while connecting.
            _ => {
                tasks.iter().for_each(|t| t.abort());
                return Err(error::PUBLISHER_INNER_ERROR);
            }
        }
        *shared.sink.lock() = Some(Sink {
            video: video_tx,
            audio: audio_tx,
            encoder,
            frames: 0,
        });
        tracing::info!(?channel, "publish transport connected");
        Ok(())
    }

    /// Closes the peer; capture keeps running only while previewing.
    pub async fn close_transport(&self) {
        // Decided before the first await, so a caller that stops waiting still leaves a consistent state.
        let threads = {
            let mut control = self.control.lock();
            control.publishing = false;
            self.idle_threads(&mut control)
        };
        self.shared.sei.lock().clear();
        self.close_session().await;
        if let Some(t) = threads {
            join_off_runtime(t).await;
        }
    }

    /// Stops everything and joins its threads (engine destroy). Safe from the callback thread: none of the threads
    /// waits for it.
    pub fn shutdown(&self) {
        let threads = {
            let mut control = self.control.lock();
            control.shut_down = true;
            control.previewing = false;
            control.publishing = false;
            self.shared.previewing.store(false, Ordering::Release);
            control.threads.take()
        };
        *self.shared.sink.lock() = None;
        if let Some(session) = self.session.lock().take() {
            session.peer.mark_closing();
            session.tasks.iter().for_each(|t| t.abort());
            let peer = session.peer;
            // Best effort: the close handshake needs the runtime, which may be shutting down too.
            self.runtime.spawn(async move { peer.close().await });
        }
        if let Some(t) = threads {
            t.stop(&self.shared);
            t.join();
        }
        self.shared.capturing.store(false, Ordering::Release);
    }

    async fn close_session(&self) {
        let Some(session) = self.session.lock().take() else {
            return;
        };
        *self.shared.sink.lock() = None;
        session.peer.mark_closing();
        // On its own task, so a caller that stops waiting (a timeout) does not leave the teardown half done.
        let channel = self.shared.channel;
        let teardown = self.runtime.spawn(async move {
            for t in session.tasks {
                t.abort();
                let _ = t.await;
            }
            session.peer.close().await;
            tracing::debug!(
                ?channel,
                stream_id = %session.stream_id,
                fec_sent = session.peer.fec_sent(),
                "publish transport closed"
            );
        });
        if let Err(e) = teardown.await {
            tracing::error!(?channel, "closing the publish transport failed: {e}");
        }
    }

    /// Starts the capture threads unless they run.
    fn ensure_threads(&self, control: &mut Control) -> Result<()> {
        if control.threads.is_some() {
            return Ok(());
        }
        let shared = &self.shared;
        shared.frames.reopen();
        shared.first_frame_reported.store(false, Ordering::Release);
        let stop = Arc::new(AtomicBool::new(false));
        let label = format!("{:?}", shared.channel).to_lowercase();
        let mut handles = Vec::new();
        let bodies: [(&str, ThreadBody); 3] = [
            ("cap", capture::run),
            ("venc", encode::run),
            ("aud", audio::run),
        ];
        for (name, body) in bodies {
            let (thread_shared, thread_stop) = (shared.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("zego-{name}-{label}"))
                .spawn(move || body(thread_shared, thread_stop));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::error!("cannot start a media thread: {e}");
                    let partial = Threads { stop, handles };
                    partial.stop(shared);
                    partial.join();
                    return Err(error::ENGINE_INNER_ERROR);
                }
            }
        }
        shared.capturing.store(true, Ordering::Release);
        control.threads = Some(Threads { stop, handles });
        Ok(())
    }

    /// Stops the threads when nothing needs capture any more; returns them to be joined outside the lock.
    fn idle_threads(&self, control: &mut Control) -> Option<Threads> {
        if control.previewing || control.publishing {
            return None;
        }
        let threads = control.threads.take()?;
        self.shared.capturing.store(false, Ordering::Release);
        threads.stop(&self.shared);
        Some(threads)
    }

    fn wake_threads(&self) {
        if let Some(t) = &self.control.lock().threads {
            t.wake();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Joins threads without holding up a runtime worker for long.
async fn join_off_runtime(threads: Threads) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            if let Err(e) = handle.spawn_blocking(move || threads.join()).await {
                tracing::error!("joining publisher threads failed: {e}");
            }
        }
        Err(_) => threads.join(),
    }
}

/// Adds a send-only track of `kind` with a fresh SSRC.
async fn add_track(
    peer: &Peer,
    stream_id: &str,
    kind: RtpCodecKind,
) -> std::result::Result<(Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>), String> {
    let codec = codecs(kind)
        .into_iter()
        .next()
        .ok_or_else(|| format!("no {kind} codec"))?
        .rtp_codec;
    let track = MediaStreamTrack::new(
        stream_id.to_owned(),
        format!("{stream_id}-{kind}"),
        format!("{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(rand::random::<u32>()),
                ..Default::default()
            },
            active: true,
            codec,
            ..Default::default()
        }],
    );
    let track = Arc::new(
        TrackLocalStaticSample::new(Instant::now(), track)
            .map_err(|e| format!("{kind} track: {e}"))?,
    );
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        ..Default::default()
    };
    let transceiver = peer
        .connection()
        .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
        .await
        .map_err(|e| format!("add {kind} transceiver: {e}"))?;
    let sender = transceiver
        .sender()
        .await
        .map_err(|e| format!("{kind} sender: {e}"))?
        .ok_or_else(|| format!("the {kind} transceiver has no sender"))?;
    Ok((track, sender))
}

async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>) -> Option<u8> {
    sender
        .get_parameters()
        .await
        .ok()?
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CallbackThread;
    use std::sync::mpsc;
    use zego_media::stamp;

    struct Rig {
        runtime: tokio::runtime::Runtime,
        callbacks: CallbackThread,
        events: mpsc::Receiver<Event>,
    }

    fn rig() -> Rig {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let callbacks = CallbackThread::start(Arc::new(move |e: &Event| {
            let _ = tx.lock().send(e.clone());
        }))
        .unwrap();
        Rig {
            runtime,
            callbacks,
            events,
        }
    }

    fn publisher(rig: &Rig) -> Publisher {
        let (notices, _) = tokio::sync::mpsc::unbounded_channel();
        Publisher::new(
            PublishChannel::Main,
            rig.callbacks.sender(),
            notices,
            rig.runtime.handle().clone(),
            TransportConfig { loopback: true },
        )
    }

    fn drain(events: &mpsc::Receiver<Event>, for_: Duration) -> Vec<Event> {
        let until = Instant::now() + for_;
        let mut out = Vec::new();
        while let Ok(e) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
            out.push(e);
        }
        out
    }

    fn previews(events: &[Event]) -> Vec<Arc<VideoFrame>> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::CapturedVideoFrame { frame, .. } => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn preview_delivers_stamped_frames_at_the_configured_rate() {
        let rig = rig();
        let p = publisher(&rig);
        let cfg = VideoConfig {
            capture_width: 320,
            capture_height: 180,
            fps: 20,
            ..VideoConfig::default()
        };
        p.set_video_config(cfg).unwrap();
        p.start_preview().unwrap();
        let events = drain(&rig.events, Duration::from_millis(1000));
        let frames = previews(&events);
        assert!(
            (17..=23).contains(&frames.len()),
            "{} frames in 1 s at 20 fps",
            frames.len()
        );
        let firsts = events
            .iter()
            .filter(|e| matches!(e, Event::PublisherCapturedVideoFirstFrame { .. }))
            .count();
        assert_eq!(firsts, 1);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!((f.width, f.height), (320, 180));
            assert_eq!(f.frame_number, i as u64 + 1);
            let s = stamp::read(f).expect("the capture stamp is in the pixels");
            assert_eq!(
                (s.capture_time_us, s.frame_number),
                (f.capture_time_us, f.frame_number)
            );
        }
        // Paced by the wall clock: 50 ms apart on average, without drift.
        let span = frames.last().unwrap().capture_time_us - frames[0].capture_time_us;
        let mean_ms = span as f64 / 1000.0 / (frames.len() - 1) as f64;
        assert!(
            (45.0..=55.0).contains(&mean_ms),
            "frames {mean_ms:.1} ms apart"
        );

        p.stop_preview();
        drain(&rig.events, Duration::from_millis(100));
        assert!(
            previews(&drain(&rig.events, Duration::from_millis(200))).is_empty(),
            "preview stopped"
        );
        p.shutdown();
    }

    #[test]
    fn a_stream_numbers_its_frames_from_one() {
        let rig = rig();
        let p = publisher(&rig);
        p.set_video_config(VideoConfig {
            capture_width: 320,
            capture_height: 180,
            fps: 30,
            ..VideoConfig::default()
        })
        .unwrap();
        p.start_preview().unwrap();
        assert!(previews(&drain(&rig.events, Duration::from_millis(300))).len() > 3);
        // The transport connects: what is captured from now on is the stream's.
        let (video, _video_rx) = tokio::sync::mpsc::unbounded_channel();
        let (audio, _audio_rx) = tokio::sync::mpsc::unbounded_channel();
        let now = std::time::Instant::now();
        let congestion = crate::transport::congestion::CongestionState::new(1_000_000, 68_000, now);
        *p.shared.sink.lock() = Some(Sink {
            video,
            audio,
            encoder: Arc::new(EncoderControl::new(congestion)),
            frames: 0,
        });
        let streamed = previews(&drain(&rig.events, Duration::from_millis(300)));
        *p.shared.sink.lock() = None;
        let numbers: Vec<u64> = streamed.iter().map(|f| f.frame_number).collect();
        // At most one frame captured before the sink was installed is delivered after it.
        let first = numbers
            .iter()
            .position(|&n| n == 1)
            .expect("frame 1 of the stream");
        assert!(first <= 1, "{numbers:?}");
        for (i, f) in streamed[first..].iter().enumerate() {
            assert_eq!(f.frame_number, i as u64 + 1, "{numbers:?}");
            assert_eq!(stamp::read(f).unwrap().frame_number, f.frame_number);
        }
        p.shutdown();
    }

    #[test]
    fn custom_frames_are_previewed_and_checked() {
        let rig = rig();
        let p = publisher(&rig);
        let black = VideoFrame::new_black(64, 48);
        assert_eq!(
            p.send_custom_video_frame(black.clone()),
            Err(error::COMMON_UNSUPPORTED)
        );
        p.set_video_source(VideoSourceType::Custom).unwrap();
        // Not capturing yet: accepted and dropped.
        assert_eq!(p.send_custom_video_frame(black.clone()), Ok(()));
        p.start_preview().unwrap();
        let started = drain(&rig.events, Duration::from_millis(100));
        assert!(started.iter().any(|e| matches!(
            e,
            Event::CustomVideoCaptureStart {
                channel: PublishChannel::Main
            }
        )));
        assert!(
            previews(&started).is_empty(),
            "no synthetic frames for a custom source"
        );

        p.send_custom_video_frame(black.clone()).unwrap();
        let mut broken = black.clone();
        broken.y.truncate(10);
        assert_eq!(
            p.send_custom_video_frame(broken),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        let frames = previews(&drain(&rig.events, Duration::from_millis(100)));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].width, frames[0].height, frames[0].frame_number),
            (64, 48, 1)
        );
        assert!(
            frames[0].capture_time_us > 0,
            "a missing capture time means now"
        );

        p.set_video_source(VideoSourceType::Synthetic).unwrap();
        let switched = drain(&rig.events, Duration::from_millis(300));
        assert!(switched
            .iter()
            .any(|e| matches!(e, Event::CustomVideoCaptureStop { .. })));
        assert!(
            !previews(&switched).is_empty(),
            "the synthetic camera took over"
        );
        #[cfg(not(feature = "devices"))]
        assert_eq!(
            p.set_video_source(VideoSourceType::Camera),
            Err(error::COMMON_UNSUPPORTED)
        );
        let bad = VideoConfig {
            fps: 0,
            ..VideoConfig::default()
        };
        assert_eq!(
            p.set_video_config(bad),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        assert_eq!(p.video_config(), VideoConfig::default());
        p.shutdown();
    }

    #[test]
    fn shutdown_from_the_callback_thread_returns() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let slot: Arc<std::sync::OnceLock<Arc<Publisher>>> = Arc::default();
        let (done_tx, done) = mpsc::channel();
        let done_tx = Mutex::new(done_tx);
        let (frames_tx, frames) = mpsc::channel();
        let frames_tx = Mutex::new(frames_tx);
        let target = slot.clone();
        let mut callbacks = CallbackThread::start(Arc::new(move |e: &Event| {
            if let Event::CapturedVideoFrame { .. } = e {
                let _ = frames_tx.lock().send(());
                if let Some(p) = target.get() {
                    let t = Instant::now();
                    p.shutdown();
                    let _ = done_tx.lock().send(t.elapsed());
                }
            }
        }))
        .unwrap();
        let (notices, _) = tokio::sync::mpsc::unbounded_channel();
        let p = Arc::new(Publisher::new(
            PublishChannel::Third,
            callbacks.sender(),
            notices,
            runtime.handle().clone(),
            TransportConfig { loopback: true },
        ));
        let _ = slot.set(p.clone());
        p.start_preview().unwrap();
        let took = done
            .recv_timeout(Duration::from_secs(3))
            .expect("shutdown returned on the callback thread");
        assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
        while frames.recv_timeout(Duration::from_millis(200)).is_ok() {}
        assert!(
            frames.recv_timeout(Duration::from_millis(300)).is_err(),
            "capture stopped"
        );
        assert_eq!(p.start_preview(), Err(error::COMMON_ENGINE_NOT_CREATED));
        callbacks.stop();
    }
}
