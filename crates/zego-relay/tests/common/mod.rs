//! The relay's test peers on zego-test-kit's loopback peers: a publisher that streams real H.264 from openh264 and
//! sees keyframe requests, players that record every packet they get, and a few helpers.

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
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use webrtc::peer_connection::{MediaEngine, RTCPeerConnectionState};
use zego_relay::{Relay, RelayConfig, RelayEvent, RelayOptions, SessionId, StreamKey};
use zego_test_kit::{
    default_interceptors, h264, local_track, opus, sdk_media_engine, LoopbackPeer, OnTrack,
};

pub use h264_source::EncodedClip;

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
    start_relay_with(announce, 0).await
}

/// A relay on `io_threads` I/O threads (0: one per core).
pub async fn start_relay_with(announce: Option<std::net::SocketAddr>, io_threads: usize) -> Relay {
    zego_test_kit::init_tracing();
    Relay::start_with_options(
        RelayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            announce,
            io_threads,
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
    /// Each remote track as announced: its kind, media stream id and track id.
    pub tracks: Mutex<Vec<(RtpCodecKind, String, String)>>,
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

    /// At least `audio` audio packets and more than `video` video packets have come.
    pub fn got(&self, audio: usize, video: usize) -> bool {
        self.audio_len() >= audio && self.video_len() > video
    }
}

/// A `webrtc` crate peer connection, connected to the relay.
pub struct Peer {
    pub session: SessionId,
    connection: LoopbackPeer,
}

impl Peer {
    /// Gives the relay the offer made, applies its answer and waits until connected.
    async fn negotiate(
        mut connection: LoopbackPeer,
        answer_of: impl AsyncFnOnce(&str) -> (SessionId, String),
    ) -> Peer {
        let (session, answer) = answer_of(&connection.offer).await;
        connection.accept(&answer).await;
        connection.wait_connected().await;
        Peer {
            session,
            connection,
        }
    }

    pub fn state(&self) -> RTCPeerConnectionState {
        self.connection.state()
    }

    pub async fn close(&self) {
        self.connection.close().await;
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
        let mut media = sdk_media_engine();
        // Last in the chain, after the interceptors that act on RTCP themselves.
        let registry = default_interceptors(&mut media).with(
            rtc::interceptor::Slot::from(14_000),
            keyframe_requests::KeyframeRequestsToApp::default(),
        );
        let mut connection = LoopbackPeer::build(media, registry, None).await;

        let video_ssrc = rand::random::<u32>();
        let audio_ssrc = rand::random::<u32>();
        let video = local_track(RtpCodecKind::Video, video_ssrc, h264());
        let audio = local_track(RtpCodecKind::Audio, audio_ssrc, opus());
        let video_sender = connection
            .pc
            .add_track(video.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let audio_sender = connection
            .pc
            .add_track(audio.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        connection.make_offer().await;

        let peer = Peer::negotiate(connection, async |offer| {
            relay.publish(key, offer).await.expect("publish accepted")
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
        let on_track: OnTrack = {
            let received = received.clone();
            Box::new(move |track, kind| {
                let received = received.clone();
                tokio::spawn(async move {
                    let ids = (track.stream_id().await, track.track_id().await);
                    received.tracks.lock().push((kind, ids.0, ids.1));
                    while let Some(event) = track.poll().await {
                        if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                            received.push(kind, packet);
                        }
                    }
                });
            })
        };
        let connection = LoopbackPeer::player(media, Some(on_track)).await;
        let peer = Peer::negotiate(connection, async |offer| {
            relay.play(key, offer).await.expect("play accepted")
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
