//! Building a peer connection the way every publish and play needs it, and driving its offer/answer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    CongestionControlBuilder, NackResponderBuilder, ReceiverReportBuilder, SenderReportBuilder,
    Slot, TwccSenderBuilder,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};

use super::arrival_loss::{self, ArrivalCounters, ArrivalLoss};
use super::audio_rtx::AudioRtx;
use super::congestion::{CongestionState, RelayFeedback, SendPacer, WithRepairStreams};
use super::encoder_control::EncoderControl;
use super::fec_receiver::FecReceiver;
use super::fec_sender::FecSender;
use super::keyframe_requests::{self, KeyframeRequestForwarder};
use super::liveness::{self, HeardTap, LastHeard};
use super::read_tap::{PassThrough, ReadTap};
use super::runtime::HandleRuntime;
use super::TransportConfig;
use zego_rtp::{
    AUDIO_CLOCK_RATE, FEC_PAYLOAD_TYPE, H264_FMTP, H264_PAYLOAD_TYPE, H264_RTX_PAYLOAD_TYPE,
    OPUS_PAYLOAD_TYPE, OPUS_RTX_PAYLOAD_TYPE, VIDEO_CLOCK_RATE,
};

/// The FEC decoder sits just above the receiver reports: they count the path's loss before FEC repairs any of it,
/// which is what the relay sizes its protection by. Below the NACK logic and the frame buffer, which see a
/// recovered packet like any other.
const FEC_DECODER_SLOT: usize = 10_500;
/// Audio retransmissions become their originals just wire-ward of the FEC decoder, so everything above sees a
/// retransmitted audio packet like any other (`audio_rtx`).
const AUDIO_RTX_SLOT: usize = 10_400;
/// Receiver reports go out this often: the relay sizes the repair it sends a player by their loss and starts it
/// after two lossy ones, so a player on a lossy path is protected about a second after it connects (webrtc's
/// default of one report a second took three). Each is a few dozen bytes.
const RECEIVER_REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// How long ICE gathering may take before the offer goes out with what was gathered.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long ICE + DTLS may take after the answer.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// ICE liveness. webrtc 0.21 counts only STUN toward "last received" (media and RTCP do not refresh it), so ICE
/// alone would judge a path by its keepalive answers: with 30% loss each way a check succeeds only half the time.
/// Checks every 250 ms (about every 400 ms in practice) make long runs of misses rare, and a disconnection is
/// confirmed against everything else that arrives (`liveness`). ICE's own failure, which tears the transport down
/// for good, waits long enough that only a path with no keepalive answer for 23 s reaches it.
const ICE_KEEPALIVE: Duration = Duration::from_millis(250);
const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(3);
const ICE_FAILED_AFTER: Duration = Duration::from_secs(20);
/// A disconnected connection may come back (the next keepalive answer does it); it counts as lost only if it has
/// not within this time and nothing else (media, RTCP) has arrived for as long.
const DISCONNECTED_GRACE: Duration = Duration::from_secs(2);
/// Where the relay's feedback is read (transport-wide feedback for the uplink loss, REMB for the players'
/// estimate): just application-ward of the congestion controller.
const RELAY_FEEDBACK_SLOT: usize = 1_500;
/// The transport-wide congestion control header extension (the relay reports every packet's arrival).
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The stream a publishing peer's congestion control is sized for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamRates {
    pub video_bps: u32,
    /// Audio on the wire, headers included.
    pub audio_bps: u32,
}

/// Congestion control of a publishing peer: the stream it is sized for and where its estimate goes.
struct Congestion {
    state: Arc<CongestionState>,
    rates: StreamRates,
}

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
    runtime: tokio::runtime::Handle,
    /// When the relay last sent anything that passed decryption.
    heard: LastHeard,
    /// Itself, for the task that waits out a disconnection.
    me: std::sync::Weak<Events>,
}

impl Events {
    /// Reports the loss of a connection that had been up, once, unless we closed it ourselves.
    fn report_failure(&self, state: RTCPeerConnectionState) {
        if self.connected.load(Ordering::Acquire)
            && !self.closing.load(Ordering::Acquire)
            && !self.failure_reported.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(%state, "media transport lost after it had connected");
            (self.on_failure)();
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        self.state.send_replace(state);
        match state {
            RTCPeerConnectionState::Connected => self.connected.store(true, Ordering::Release),
            // Closed without our close: the remote ended it.
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.report_failure(state)
            }
            // Lost only if it stays so: a lossy path dips here and comes back with the next keepalive answer.
            RTCPeerConnectionState::Disconnected if self.connected.load(Ordering::Acquire) => {
                let mut watch = self.state.subscribe();
                let recovered = async move {
                    watch
                        .wait_for(|s| *s == RTCPeerConnectionState::Connected)
                        .await
                        .is_ok()
                };
                let events = self.me.clone();
                let heard = self.heard.clone();
                self.runtime.spawn(async move {
                    if liveness::outlasts_disconnection(recovered, &heard, DISCONNECTED_GRACE).await
                    {
                        tracing::debug!("the peer connection recovered from disconnected");
                    } else if let Some(events) = events.upgrade() {
                        events.report_failure(RTCPeerConnectionState::Disconnected);
                    }
                });
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(on_track) = &self.on_track {
            on_track(track);
        }
    }
}

/// What the interceptors count for the engine.
#[derive(Clone, Default)]
struct InterceptorCounters {
    /// Media packets rebuilt from repair packets (players).
    fec_recovered: Arc<AtomicU64>,
    /// Repair packets sent (publishers).
    fec_sent: Arc<AtomicU64>,
    /// Video packets as they arrived, before any repair (players).
    video_arrivals: Arc<ArrivalCounters>,
    /// When anything last arrived from the relay.
    heard: LastHeard,
}

/// One peer connection to the relay.
pub(crate) struct Peer {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    counters: InterceptorCounters,
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
        Peer::build(config, role, None, runtime, on_failure, on_track).await
    }

    /// A publishing peer whose send rate follows the relay's transport-wide feedback, and the encoder's input from
    /// it (bitrate under the estimate, keyframe requests).
    pub async fn new_publisher(
        config: &TransportConfig,
        rates: StreamRates,
        runtime: tokio::runtime::Handle,
        on_failure: FailureCallback,
    ) -> Result<(Peer, Arc<EncoderControl>), PeerError> {
        let state = CongestionState::new(rates.video_bps, rates.audio_bps, Instant::now());
        let control = Arc::new(EncoderControl::new(state.clone()));
        let peer = Peer::build(
            config,
            PeerRole::Publisher,
            Some(Congestion { state, rates }),
            runtime,
            on_failure,
            None,
        )
        .await?;
        Ok((peer, control))
    }

    async fn build(
        config: &TransportConfig,
        role: PeerRole,
        congestion: Option<Congestion>,
        runtime: tokio::runtime::Handle,
        on_failure: FailureCallback,
        on_track: Option<TrackCallback>,
    ) -> Result<Peer, PeerError> {
        let media = media_engine(congestion.is_some()).map_err(|e| format!("media engine: {e}"))?;
        let counters = InterceptorCounters::default();
        let registry = interceptors(role, congestion, &counters);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathering_tx, gathering) = watch::channel(RTCIceGatheringState::New);
        let events = Arc::new_cyclic(|me| Events {
            state: state_tx,
            gathering: gathering_tx,
            connected: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            failure_reported: AtomicBool::new(false),
            on_failure,
            on_track,
            runtime: runtime.clone(),
            heard: counters.heard.clone(),
            me: me.clone(),
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
                Some(ICE_DISCONNECTED_AFTER),
                Some(ICE_FAILED_AFTER),
                Some(ICE_KEEPALIVE),
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
            counters,
            state,
            gathering,
        })
    }

    pub fn connection(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Media packets rebuilt from repair packets so far.
    pub fn fec_recovered(&self) -> u64 {
        self.counters.fec_recovered.load(Ordering::Relaxed)
    }

    /// Repair packets sent so far.
    pub fn fec_sent(&self) -> u64 {
        self.counters.fec_sent.load(Ordering::Relaxed)
    }

    /// Video packets sent to this player and missing on arrival so far, before FEC or retransmissions.
    pub fn video_arrivals(&self) -> &ArrivalCounters {
        &self.counters.video_arrivals
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

/// RTX of audio. webrtc's `MIME_TYPE_RTX` is the video one, and a codec is matched to the remote's by its full
/// MIME type.
const MIME_TYPE_AUDIO_RTX: &str = "audio/rtx";

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
                        // Players send their downlink's estimate; the relay passes the lowest to the publisher.
                        feedback("goog-remb", ""),
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
        _ => vec![
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: AUDIO_CLOCK_RATE,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    // Lost audio is asked for again on both legs to the relay: a player asks itself, while its
                    // jitter buffer still has time for the packet (src/player/receive/mod.rs); a publisher answers
                    // (webrtc's NACK responder, on the audio SSRC itself).
                    rtcp_feedback: vec![feedback("nack", "")],
                },
                payload_type: OPUS_PAYLOAD_TYPE,
            },
            // The relay resends audio only as RTX (RFC 4588), as it does video.
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_AUDIO_RTX.to_owned(),
                    clock_rate: AUDIO_CLOCK_RATE,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={OPUS_PAYLOAD_TYPE}"),
                    rtcp_feedback: vec![],
                },
                payload_type: OPUS_RTX_PAYLOAD_TYPE,
            },
        ],
    }
}

/// The repair format: a player offers to take it, a publisher to send it.
fn fec_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: zego_fec::MIME_TYPE.to_owned(),
            clock_rate: zego_fec::CLOCK_RATE,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
        payload_type: FEC_PAYLOAD_TYPE,
    }
}

/// The codecs (the repair format too, which the relay sends to players and takes from publishers), and with
/// `transport_cc` the transport-wide sequence number extension and `transport-cc` feedback on every codec, so the
/// relay reports the arrival of each packet.
fn media_engine(transport_cc: bool) -> webrtc::error::Result<MediaEngine> {
    let mut media = MediaEngine::default();
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        for codec in codecs(kind) {
            media.register_codec(codec, kind)?;
        }
        if transport_cc {
            media.register_feedback(
                RTCPFeedback {
                    typ: "transport-cc".to_owned(),
                    parameter: String::new(),
                },
                kind,
            );
            media.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: TRANSPORT_CC_URI.to_owned(),
                },
                kind,
                None,
            )?;
        }
    }
    // After H.264 and its RTX, so the video m-line lists the media format first.
    media.register_codec(fec_codec(), RtpCodecKind::Video)?;
    Ok(media)
}

/// NACK (generation and answering), sender and receiver reports; publishers also let keyframe requests through,
/// and with congestion control number their packets, estimate from the feedback and pace.
fn interceptors(
    role: PeerRole,
    congestion: Option<Congestion>,
    counters: &InterceptorCounters,
) -> Registry {
    let registry = Registry::new()
        // Players ask for missing video themselves (src/player/receive/nack.rs): once at once, then once per round trip
        // while the frame buffer still wants the packet, which webrtc's fixed-interval generator cannot do.
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::ReceiverReport,
            ReceiverReportBuilder::new()
                .with_interval(RECEIVER_REPORT_INTERVAL)
                .build(),
        )
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(
            Slot::from(liveness::SLOT),
            ReadTap::tap(HeardTap(counters.heard.clone())),
        );
    let registry = match congestion {
        Some(cc) => {
            let estimator = cc.state.estimator(cc.rates.video_bps, cc.rates.audio_bps);
            registry
                .with(
                    Slot::CongestionControl,
                    WithRepairStreams(CongestionControlBuilder::new(estimator).build()),
                )
                .with(
                    Slot::TwccSender,
                    WithRepairStreams(TwccSenderBuilder::new().build()),
                )
                .with(Slot::Pacer, SendPacer::new(cc.state.clone()))
                .with(
                    Slot::FecEncoder,
                    PassThrough::new(FecSender::new(cc.state.clone(), counters.fec_sent.clone())),
                )
                // Next to the wire on the read leg, before anything consumes the feedback.
                .with(
                    Slot::from(RELAY_FEEDBACK_SLOT),
                    ReadTap::tap(RelayFeedback::new(cc.state)),
                )
        }
        None => registry,
    };
    match role {
        PeerRole::Publisher => registry.with(
            Slot::from(keyframe_requests::SLOT),
            ReadTap::tap(KeyframeRequestForwarder),
        ),
        PeerRole::Player => registry
            .with(
                Slot::from(arrival_loss::SLOT),
                ReadTap::tap(ArrivalLoss::new(counters.video_arrivals.clone())),
            )
            .with(
                Slot::from(FEC_DECODER_SLOT),
                PassThrough::new(FecReceiver::new(counters.fec_recovered.clone())),
            )
            .with(
                Slot::from(AUDIO_RTX_SLOT),
                PassThrough::new(AudioRtx::default()),
            ),
    }
}
