//! Test peers for the relay: a publisher and players made with the `webrtc` crate (the SDK's WebRTC stack), real
//! H.264 from openh264, and a few helpers. Everything talks to 127.0.0.1 only.

#![allow(dead_code)]

pub mod h264_source;
pub mod keyframe_requests;
pub mod lossy_proxy;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::RTCRtpTransceiverInit;
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};
use zego_relay::{Relay, RelayConfig, RelayEvent, RelayOptions, SessionId, StreamKey};

pub use h264_source::EncodedClip;

pub use zego_rtp::H264_FMTP;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn test_options() -> RelayOptions {
    RelayOptions {
        connect_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(4),
        ..RelayOptions::default()
    }
}

pub async fn start_relay() -> Relay {
    start_relay_announcing(None).await
}

pub async fn start_relay_announcing(announce: Option<std::net::SocketAddr>) -> Relay {
    init_tracing();
    Relay::start_with_options(
        RelayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            announce,
        },
        test_options(),
    )
    .await
    .expect("relay starts")
}

pub fn key(stream_id: &str) -> StreamKey {
    StreamKey {
        app_id: 1,
        stream_id: stream_id.into(),
    }
}

/// Waits until `condition` holds, polling; panics with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for one relay event.
pub async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<RelayEvent>,
    wanted: RelayEvent,
    timeout: Duration,
) {
    tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(e) if e == wanted => return,
                Ok(_) => {}
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {wanted:?} within {timeout:?}"));
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    received: Option<Arc<Received>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(received) = self.received.clone() else {
            return;
        };
        let kind = track.kind().await;
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    received.push(kind, packet);
                }
            }
        });
    }
}

/// One RTP packet as a player got it.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Bytes,
    pub at: Instant,
}

#[derive(Default)]
pub struct Received {
    pub video: Mutex<Vec<Packet>>,
    pub audio: Mutex<Vec<Packet>>,
}

impl Received {
    fn push(&self, kind: RtpCodecKind, packet: rtc::rtp::Packet) {
        if packet.payload.is_empty() {
            return;
        }
        let p = Packet {
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            ssrc: packet.header.ssrc,
            marker: packet.header.marker,
            payload: packet.payload,
            at: Instant::now(),
        };
        match kind {
            RtpCodecKind::Video => self.video.lock().push(p),
            RtpCodecKind::Audio => self.audio.lock().push(p),
            _ => {}
        }
    }

    pub fn video_len(&self) -> usize {
        self.video.lock().len()
    }

    pub fn audio_len(&self) -> usize {
        self.audio.lock().len()
    }
}

/// A `webrtc` crate peer connection, connected to the relay.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    pub session: SessionId,
    state: watch::Receiver<RTCPeerConnectionState>,
}

impl Peer {
    async fn build(
        media: MediaEngine,
        registry: Registry,
        received: Option<Arc<Received>>,
    ) -> (
        Arc<dyn PeerConnection>,
        watch::Receiver<bool>,
        watch::Receiver<RTCPeerConnectionState>,
    ) {
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(Duration::from_millis(5)), None)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                gathered: gathered_tx,
                state: state_tx,
                received,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("peer connection");
        (Arc::new(pc), gathered, state)
    }

    /// Offer, answer from the relay, and wait until connected.
    async fn negotiate(
        pc: Arc<dyn PeerConnection>,
        mut gathered: watch::Receiver<bool>,
        state: watch::Receiver<RTCPeerConnectionState>,
        answer_of: impl AsyncFnOnce(String) -> (SessionId, String),
    ) -> Peer {
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer)
            .await
            .expect("local description");
        tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
            .await
            .expect("ICE gathering completes")
            .unwrap();
        let offer = pc.local_description().await.expect("offer made").sdp;
        let (session, answer) = answer_of(offer).await;
        pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .expect("the relay's answer is accepted");
        let mut peer = Peer { pc, session, state };
        peer.wait_connected().await;
        peer
    }

    pub async fn wait_connected(&mut self) {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .expect("connects within 5 s")
        .unwrap();
    }

    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// A publisher with one H.264 and one Opus track, as the SDK makes it.
pub struct Publisher {
    pub peer: Peer,
    video: Arc<TrackLocalStaticSample>,
    audio: Arc<TrackLocalStaticSample>,
    video_pt: u8,
    audio_pt: u8,
    video_ssrc: u32,
    audio_ssrc: u32,
    keyframe_requests: Arc<AtomicU64>,
}

impl Publisher {
    pub async fn connect(relay: &Relay, key: StreamKey) -> Publisher {
        let video_codec = RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: zego_rtp::VIDEO_CLOCK_RATE,
            channels: 0,
            sdp_fmtp_line: H264_FMTP.to_owned(),
            rtcp_feedback: vec![],
        };
        let audio_codec = RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: zego_rtp::AUDIO_CLOCK_RATE,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        };
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: video_codec.clone(),
                    payload_type: 102,
                },
                RtpCodecKind::Video,
            )
            .unwrap();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: audio_codec.clone(),
                    payload_type: zego_rtp::OPUS_PAYLOAD_TYPE,
                },
                RtpCodecKind::Audio,
            )
            .unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        // Last in the chain, after the interceptors that act on RTCP themselves.
        let registry = registry.with(
            rtc::interceptor::Slot::from(14_000),
            keyframe_requests::KeyframeRequestsToApp::default(),
        );
        let (pc, gathered, state) = Peer::build(media, registry, None).await;

        let video_ssrc = rand::random::<u32>();
        let audio_ssrc = rand::random::<u32>();
        let video = local_track(RtpCodecKind::Video, video_ssrc, video_codec);
        let audio = local_track(RtpCodecKind::Audio, audio_ssrc, audio_codec);
        let video_sender = pc
            .add_track(video.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let audio_sender = pc
            .add_track(audio.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();

        let peer = Peer::negotiate(pc, gathered, state, async |offer| {
            relay.publish(key, &offer).await.expect("publish accepted")
        })
        .await;

        let pt = async |sender: &Arc<dyn webrtc::rtp_transceiver::RtpSender>| {
            sender.get_parameters().await.unwrap().rtp_parameters.codecs[0].payload_type
        };
        let keyframe_requests = Arc::new(AtomicU64::new(0));
        // An encoder answers a keyframe request with an IDR picture; the streaming task does that.
        let (track, requests) = (video.clone(), keyframe_requests.clone());
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                    continue;
                };
                let n = packets
                    .iter()
                    .filter(|p| keyframe_requests::is_keyframe_request(p.as_ref()))
                    .count();
                requests.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        Publisher {
            video_pt: pt(&video_sender).await,
            audio_pt: pt(&audio_sender).await,
            peer,
            video,
            audio,
            video_ssrc,
            audio_ssrc,
            keyframe_requests,
        }
    }

    /// The SSRC and payload type of its audio.
    pub fn audio_stream(&self) -> (u32, u8) {
        (self.audio_ssrc, self.audio_pt)
    }

    /// Keyframe requests (PLI/FIR) that reached this publisher.
    pub fn keyframe_requests(&self) -> u64 {
        self.keyframe_requests.load(Ordering::Relaxed)
    }

    pub async fn send_video(&self, access_unit: Bytes) {
        self.video
            .sample_writer(self.video_ssrc, self.video_pt)
            .write_sample(&Sample {
                data: access_unit,
                duration: Duration::from_millis(33),
                ..Sample::new(Instant::now())
            })
            .await
            .expect("video sample");
    }

    pub async fn send_audio(&self, payload: Bytes) {
        self.audio
            .sample_writer(self.audio_ssrc, self.audio_pt)
            .write_sample(&Sample {
                data: payload,
                duration: Duration::from_millis(20),
                ..Sample::new(Instant::now())
            })
            .await
            .expect("audio sample");
    }

    /// Streams the clip (looping) at 30 fps and one audio payload per 20 ms until `stop` is set. Audio payloads
    /// are `audio_tag` followed by a counter, so every one is distinct and tells its publisher.
    pub fn stream(
        self: &Arc<Self>,
        clip: Arc<EncodedClip>,
        audio_tag: &'static [u8],
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let publisher = self.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut frames = 0u64;
            let mut audio = 0u64;
            let mut clip_index = 0usize;
            let mut requests_served = publisher.keyframe_requests();
            while !stop.load(Ordering::Relaxed) {
                let now = tokio::time::Instant::now();
                if now >= start + Duration::from_millis(frames * 1000 / 30) {
                    let requests = publisher.keyframe_requests();
                    if requests > requests_served {
                        // Asked for a keyframe: restart the clip, whose first frame is an IDR picture.
                        requests_served = requests;
                        clip_index = 0;
                    }
                    let frame = clip.frames[clip_index].clone();
                    clip_index = (clip_index + 1) % clip.frames.len();
                    publisher.send_video(frame).await;
                    frames += 1;
                }
                if now >= start + Duration::from_millis(audio * 20) {
                    let mut payload = audio_tag.to_vec();
                    payload.extend_from_slice(&audio.to_be_bytes());
                    payload.resize(80, 0xA5);
                    publisher.send_audio(Bytes::from(payload)).await;
                    audio += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    }
}

pub fn local_track(
    kind: RtpCodecKind,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> Arc<TrackLocalStaticSample> {
    Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                format!("stream-{kind}"),
                format!("track-{kind}-{ssrc}"),
                format!("label-{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            ),
        )
        .unwrap(),
    )
}

/// A receive-only player, with the `webrtc` crate's default codecs and interceptors (NACK, reports).
pub struct Player {
    pub peer: Peer,
    pub received: Arc<Received>,
}

impl Player {
    pub async fn connect(relay: &Relay, key: StreamKey) -> Player {
        let received = Arc::new(Received::default());
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        let (pc, gathered, state) = Peer::build(media, registry, Some(received.clone())).await;
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await
            .unwrap();
        }
        let peer = Peer::negotiate(pc, gathered, state, async |offer| {
            relay.play(key, &offer).await.expect("play accepted")
        })
        .await;
        Player { peer, received }
    }
}

/// Reassembles the complete H.264 access units (Annex-B) in RTP payloads: one ends at a marker bit; one cut short
/// (its timestamp changes before its marker) is left out.
pub fn depacketize_h264(packets: &[Packet]) -> Vec<Bytes> {
    use rtc::rtp::codec::h264::H264Packet;
    use rtc::rtp::packetizer::Depacketizer;

    let mut depacketizer = H264Packet::default();
    let mut units = Vec::new();
    let mut current = Vec::new();
    let mut timestamp = None;
    for p in packets {
        if timestamp != Some(p.timestamp) {
            current.clear();
            depacketizer = H264Packet::default();
            timestamp = Some(p.timestamp);
        }
        let nal = depacketizer
            .depacketize(&p.payload)
            .expect("valid H.264 payload");
        current.extend_from_slice(&nal);
        if p.marker {
            units.push(Bytes::from(std::mem::take(&mut current)));
        }
    }
    units
}

/// 16-bit sequence numbers are consecutive across the list.
pub fn gaps(packets: &[Packet]) -> Vec<(u16, u16)> {
    packets
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .map(|w| (w[0].seq, w[1].seq))
        .collect()
}
