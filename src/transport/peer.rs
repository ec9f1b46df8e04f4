//! Building a peer connection the way every publish and play needs it, and driving its offer/answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, SenderReportBuilder, Slot,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};

use super::keyframe_requests::{self, KeyframeRequestForwarder};
use super::runtime::HandleRuntime;
use super::TransportConfig;

/// The H.264 format the relay takes and gives: constrained baseline level 3.1, non-interleaved packetization.
pub(crate) const H264_PAYLOAD_TYPE: u8 = 108;
pub(crate) const H264_RTX_PAYLOAD_TYPE: u8 = 109;
pub(crate) const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
pub(crate) const OPUS_PAYLOAD_TYPE: u8 = 111;
pub(crate) const VIDEO_CLOCK_RATE: u32 = 90_000;
pub(crate) const AUDIO_CLOCK_RATE: u32 = 48_000;

/// How long ICE gathering may take before the offer goes out with what was gathered.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long ICE + DTLS may take after the answer.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// NACKs go out this often while packets are missing: a retransmission can fill a gap within about this time
/// plus a round trip (webrtc's default of 100 ms would hold every repaired frame that long).
const NACK_INTERVAL: Duration = Duration::from_millis(20);

/// Which direction a peer carries media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerRole {
    /// Sends H.264 + Opus; keyframe requests are delivered to the application.
    Publisher,
    /// Receives video + audio.
    Player,
}

pub(crate) type TrackCallback = Box<dyn Fn(Arc<dyn TrackRemote>) + Send + Sync>;
pub(crate) type FailureCallback = Box<dyn Fn() + Send + Sync>;

/// Receives the connection's events on webrtc's driver task: record and hand off, never block.
struct Events {
    state: watch::Sender<RTCPeerConnectionState>,
    gathering: watch::Sender<RTCIceGatheringState>,
    connected: AtomicBool,
    /// Set by our own close so the teardown is not reported as a failure.
    closing: AtomicBool,
    failure_reported: AtomicBool,
    on_failure: FailureCallback,
    on_track: Option<TrackCallback>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        match state {
            RTCPeerConnectionState::Connected => self.connected.store(true, Ordering::Release),
            // Closed without our close: the remote ended it.
            RTCPeerConnectionState::Disconnected
            | RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed
                if self.connected.load(Ordering::Acquire)
                    && !self.closing.load(Ordering::Acquire)
                    && !self.failure_reported.swap(true, Ordering::AcqRel) =>
            {
                tracing::warn!(%state, "media transport lost after it had connected");
                (self.on_failure)();
            }
            _ => {}
        }
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(on_track) = &self.on_track {
            on_track(track);
        }
    }
}

/// One peer connection to the relay.
pub(crate) struct Peer {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathering: watch::Receiver<RTCIceGatheringState>,
}

/// A transport error as text for the logs; callers map it to a ZEGO code.
pub(crate) type PeerError = String;

impl Peer {
    pub async fn new(
        config: &TransportConfig,
        role: PeerRole,
        runtime: tokio::runtime::Handle,
        on_failure: FailureCallback,
        on_track: Option<TrackCallback>,
    ) -> Result<Peer, PeerError> {
        let mut media = media_engine().map_err(|e| format!("media engine: {e}"))?;
        let registry = interceptors(&mut media, role);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathering_tx, gathering) = watch::channel(RTCIceGatheringState::New);
        let events = Arc::new(Events {
            state: state_tx,
            gathering: gathering_tx,
            connected: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            failure_reported: AtomicBool::new(false),
            on_failure,
            on_track,
        });
        // Checks every few milliseconds connect a loopback pair in ~10 ms instead of ~200 ms; the attempt count
        // keeps the overall budget at about a second either way.
        let (check_interval, attempts) = if config.loopback {
            (Duration::from_millis(5), 200)
        } else {
            (Duration::from_millis(25), 60)
        };
        let settings = SettingEngineBuilder::new()
            // mDNS would send multicast and hide addresses the relay cannot resolve.
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(check_interval), Some(attempts))
            .with_ice_timeouts(
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(1)),
            )
            .with_include_loopback_candidate(config.loopback)
            .build();
        let bind: Vec<String> = config.bind_addrs();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(events.clone() as Arc<dyn PeerConnectionEventHandler>)
            .with_runtime(HandleRuntime::new(runtime))
            .with_udp_addrs(bind)
            .build()
            .await
            .map_err(|e| format!("cannot create the peer connection: {e}"))?;
        Ok(Peer {
            pc: Arc::new(pc),
            events,
            state,
            gathering,
        })
    }

    pub fn connection(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Creates the offer, applies it, waits for ICE gathering (bounded) and returns the SDP with its candidates.
    pub async fn offer(&self) -> Result<String, PeerError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| format!("create offer: {e}"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| format!("set local description: {e}"))?;
        let mut gathering = self.gathering.clone();
        let gathered = tokio::time::timeout(GATHER_TIMEOUT, async {
            gathering
                .wait_for(|s| *s == RTCIceGatheringState::Complete)
                .await
                .is_ok()
        })
        .await;
        if gathered != Ok(true) {
            tracing::warn!(
                "ICE gathering did not complete in time; offering the candidates gathered so far"
            );
        }
        let local = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| "no local description".to_string())?;
        Ok(local.sdp)
    }

    /// Applies the relay's answer and waits until the connection is up (ICE + DTLS), at most `CONNECT_TIMEOUT`.
    pub async fn accept_answer(&self, sdp: &str) -> Result<(), PeerError> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())
            .map_err(|e| format!("bad SDP answer: {e}"))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| format!("set remote description: {e}"))?;
        let mut state = self.state.clone();
        let outcome = tokio::time::timeout(CONNECT_TIMEOUT, async {
            state
                .wait_for(|s| {
                    matches!(
                        s,
                        RTCPeerConnectionState::Connected
                            | RTCPeerConnectionState::Failed
                            | RTCPeerConnectionState::Closed
                    )
                })
                .await
                .map(|s| *s)
        })
        .await;
        match outcome {
            Ok(Ok(RTCPeerConnectionState::Connected)) => Ok(()),
            Ok(Ok(s)) => Err(format!("the connection ended while connecting ({s})")),
            Ok(Err(_)) => Err("the connection was dropped while connecting".into()),
            Err(_) => Err(format!("not connected after {CONNECT_TIMEOUT:?}")),
        }
    }

    /// Adds a receive-only transceiver of `kind`.
    pub async fn add_receiver(&self, kind: RtpCodecKind) -> Result<(), PeerError> {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        let transceiver = self
            .pc
            .add_transceiver_from_kind(kind, Some(init))
            .await
            .map_err(|e| format!("cannot add a {kind} transceiver: {e}"))?;
        // Stated explicitly: webrtc maps a retransmission (RTX) back to its original packet through the
        // receiver's codec list, which stays empty on the offering side unless it is set here. Without it, RTX
        // packets would reach the track unconverted, in their own sequence space.
        transceiver
            .set_codec_preferences(codecs(kind))
            .await
            .map_err(|e| format!("cannot set the {kind} codecs: {e}"))
    }

    /// Closes the connection; not reported as a failure.
    pub async fn close(&self) {
        self.events.closing.store(true, Ordering::Release);
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the peer connection: {e}");
        }
    }

    /// Marks the peer as closing without waiting (teardown from synchronous code); dropping it then stops it.
    pub fn mark_closing(&self) {
        self.events.closing.store(true, Ordering::Release);
    }
}

/// The codecs of one media kind, as registered and offered.
pub(crate) fn codecs(kind: RtpCodecKind) -> Vec<RTCRtpCodecParameters> {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    match kind {
        RtpCodecKind::Video => vec![
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_H264.to_owned(),
                    clock_rate: VIDEO_CLOCK_RATE,
                    channels: 0,
                    sdp_fmtp_line: H264_FMTP.to_owned(),
                    rtcp_feedback: vec![
                        feedback("nack", ""),
                        feedback("nack", "pli"),
                        feedback("ccm", "fir"),
                    ],
                },
                payload_type: H264_PAYLOAD_TYPE,
            },
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_RTX.to_owned(),
                    clock_rate: VIDEO_CLOCK_RATE,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={H264_PAYLOAD_TYPE}"),
                    rtcp_feedback: vec![],
                },
                payload_type: H264_RTX_PAYLOAD_TYPE,
            },
        ],
        _ => vec![RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: AUDIO_CLOCK_RATE,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: OPUS_PAYLOAD_TYPE,
        }],
    }
}

fn media_engine() -> webrtc::error::Result<MediaEngine> {
    let mut media = MediaEngine::default();
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        for codec in codecs(kind) {
            media.register_codec(codec, kind)?;
        }
    }
    Ok(media)
}

/// NACK (generation and answering), sender and receiver reports; publishers also let keyframe requests through.
fn interceptors(_media: &mut MediaEngine, role: PeerRole) -> Registry {
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(NACK_INTERVAL)
                .with_max_nacks_per_packet(10)
                .build(),
        )
        .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
        .with(Slot::SenderReport, SenderReportBuilder::new().build());
    match role {
        PeerRole::Publisher => registry.with(
            Slot::from(keyframe_requests::SLOT),
            KeyframeRequestForwarder::default(),
        ),
        PeerRole::Player => registry,
    }
}
