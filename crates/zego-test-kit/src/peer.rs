//! Loopback-only peer connections: they gather 127.0.0.1 candidates only and offer once gathering is complete, so
//! tests never reach beyond the host; send-only publishers and receive-only players as the SDK makes them.

use std::sync::Arc;
use std::time::Duration;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};

use crate::media::{h264, local_track, opus, sdk_media_engine};

/// How long ICE gathering may take.
const GATHERING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take once the answer is applied.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Called with each remote track and its kind.
pub type OnTrack = Box<dyn Fn(Arc<dyn TrackRemote>, RtpCodecKind) + Send + Sync>;

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    on_track: Option<OnTrack>,
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
        let Some(on_track) = &self.on_track else {
            return;
        };
        let kind = track.kind().await;
        on_track(track, kind);
    }
}

/// The `webrtc` crate's default interceptors (NACK, reports) for the codecs of `media`.
pub fn default_interceptors(media: &mut MediaEngine) -> Registry {
    register_default_interceptors(Registry::new(), media).unwrap()
}

/// A peer connection on 127.0.0.1 whose ICE gathering and connection state are watched.
pub struct LoopbackPeer {
    pub pc: Arc<dyn PeerConnection>,
    /// The offer with its candidates, once `make_offer` made it.
    pub offer: String,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

impl LoopbackPeer {
    pub async fn build(
        media: MediaEngine,
        registry: Registry,
        on_track: Option<OnTrack>,
    ) -> LoopbackPeer {
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
                on_track,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("peer connection");
        LoopbackPeer {
            pc: Arc::new(pc),
            offer: String::new(),
            gathered,
            state,
        }
    }

    /// A publisher as the SDK makes it: send-only H.264 and Opus, each with a random SSRC; offered.
    pub async fn publisher() -> LoopbackPeer {
        let mut media = sdk_media_engine();
        let registry = default_interceptors(&mut media);
        let mut peer = Self::build(media, registry, None).await;
        for (kind, codec) in [(RtpCodecKind::Video, h264()), (RtpCodecKind::Audio, opus())] {
            add_sendonly(&*peer.pc, local_track(kind, rand::random(), codec)).await;
        }
        peer.make_offer().await;
        peer
    }

    /// A player: receive-only video and audio in the codecs of `media`, with the default interceptors; offered.
    pub async fn player(mut media: MediaEngine, on_track: Option<OnTrack>) -> LoopbackPeer {
        let registry = default_interceptors(&mut media);
        let mut peer = Self::build(media, registry, on_track).await;
        add_recvonly(&*peer.pc, &[RtpCodecKind::Video, RtpCodecKind::Audio]).await;
        peer.make_offer().await;
        peer
    }

    /// Makes the offer and keeps it in `offer` once ICE gathering is complete, candidates included.
    pub async fn make_offer(&mut self) {
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc
            .set_local_description(offer)
            .await
            .expect("local description");
        tokio::time::timeout(GATHERING_TIMEOUT, self.gathered.wait_for(|g| *g))
            .await
            .expect("ICE gathering completes")
            .unwrap();
        self.offer = self.pc.local_description().await.expect("offer made").sdp;
    }

    /// Applies the relay's answer; fails if it is not a valid answer to the offer.
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
            CONNECT_TIMEOUT,
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

/// Adds a send-only transceiver around `track`.
pub async fn add_sendonly(pc: &dyn PeerConnection, track: Arc<TrackLocalStaticSample>) {
    pc.add_transceiver_from_track(
        track as Arc<dyn TrackLocal>,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        }),
    )
    .await
    .unwrap();
}

/// Adds a receive-only transceiver of each kind.
pub async fn add_recvonly(pc: &dyn PeerConnection, kinds: &[RtpCodecKind]) {
    for &kind in kinds {
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
