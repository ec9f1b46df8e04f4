//! WebRTC peers made with the `webrtc` crate (the SDK's stack), so that publish and play carry real SDP offers.
//! Only loopback addresses are gathered.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};

use zego_rtp::H264_FMTP;

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
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
}

/// A peer connection with its offer made.
pub struct MediaPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub offer: String,
    state: watch::Receiver<RTCPeerConnectionState>,
}

fn codecs() -> (RTCRtpCodec, RTCRtpCodec) {
    (
        RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: zego_rtp::VIDEO_CLOCK_RATE,
            channels: 0,
            sdp_fmtp_line: H264_FMTP.to_owned(),
            rtcp_feedback: vec![],
        },
        RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: zego_rtp::AUDIO_CLOCK_RATE,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
    )
}

fn media_engine() -> MediaEngine {
    let (video, audio) = codecs();
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: video,
                payload_type: 102,
            },
            RtpCodecKind::Video,
        )
        .unwrap();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: audio,
                payload_type: zego_rtp::OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .unwrap();
    media
}

fn track(kind: RtpCodecKind, codec: RTCRtpCodec) -> Arc<TrackLocalStaticSample> {
    let ssrc = rand::random::<u32>();
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

impl MediaPeer {
    async fn build() -> (
        Arc<dyn PeerConnection>,
        watch::Receiver<bool>,
        watch::Receiver<RTCPeerConnectionState>,
    ) {
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let mut media = media_engine();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
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
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("peer connection");
        (Arc::new(pc), gathered, state)
    }

    async fn offer(
        pc: Arc<dyn PeerConnection>,
        mut gathered: watch::Receiver<bool>,
        state: watch::Receiver<RTCPeerConnectionState>,
    ) -> MediaPeer {
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer)
            .await
            .expect("local description");
        tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
            .await
            .expect("ICE gathering completes")
            .unwrap();
        let offer = pc.local_description().await.expect("offer made").sdp;
        MediaPeer { pc, offer, state }
    }

    /// A publisher as the SDK makes it: send-only H.264 and Opus.
    pub async fn publisher() -> MediaPeer {
        let (pc, gathered, state) = Self::build().await;
        let (video, audio) = codecs();
        for (kind, codec) in [(RtpCodecKind::Video, video), (RtpCodecKind::Audio, audio)] {
            pc.add_transceiver_from_track(
                track(kind, codec) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await
            .unwrap();
        }
        Self::offer(pc, gathered, state).await
    }

    /// A player: receive-only video and audio.
    pub async fn player() -> MediaPeer {
        let (pc, gathered, state) = Self::build().await;
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
        Self::offer(pc, gathered, state).await
    }

    /// Applies the server's answer; fails if it is not a valid answer to our offer.
    pub async fn accept(&self, answer: &str) {
        self.pc
            .set_remote_description(
                RTCSessionDescription::answer(answer.to_owned()).expect("an answer"),
            )
            .await
            .expect("the relay's answer is accepted");
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

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// The ICE candidates of an SDP, as (address, port).
pub fn candidates(sdp: &str) -> Vec<(String, u16)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            let fields: Vec<&str> = c.split_whitespace().collect();
            (fields[4].to_owned(), fields[5].parse().unwrap())
        })
        .collect()
}
