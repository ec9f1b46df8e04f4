//! One peer connection: a str0m `Rtc` in RTP mode plus what the relay knows about its tracks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::{Codec, CodecConfig, CodecSpec, FormatParams, PayloadParams};
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, ExtensionValues, RtpWrite, Ssrc, StreamRx};
use str0m::{
    Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig, RtcError,
};

use crate::counters::Counters;
use crate::fec::{FecReceiver, FecSender, MediaPacket};
use crate::msid_sdp;
use crate::offer;
use crate::pull::{self, Pull};
use crate::rewrite::{SeqTimeRewriter, SourceId};
use crate::shard::{self, ShardId};
use crate::{audio_rtx_sdp, fec_sdp};
use crate::{RelayError, SessionId};
use zego_rtp::{
    AUDIO_CLOCK_RATE, H264_PAYLOAD_TYPE, H264_PROFILE_LEVEL_ID, H264_RTX_PAYLOAD_TYPE,
    OPUS_PAYLOAD_TYPE, VIDEO_CLOCK_RATE,
};

/// Packets kept per player stream to answer NACKs: over a second of 720p video at several Mb/s.
const RTX_CACHE_PACKETS: usize = 2000;
/// A retransmission older than this is too late for any player's frame buffer.
const RTX_CACHE_AGE: Duration = Duration::from_millis(1500);
/// Share of a player stream's bytes (over the last second) that may be retransmissions before queued ones are
/// dropped: 30 % random loss needs about 0.3.
const RTX_RATIO_CAP: f32 = 0.5;
/// How often a player's receiver reports are summed up for its FEC level.
const PLAYER_STATS_INTERVAL: Duration = Duration::from_millis(500);
/// With FEC, the video and its repair stream share an m-line, and str0m tells streams of one m-line apart by RID
/// only: a stream without one matches any lookup of the m-line. So both get a RID (the players' extension map has
/// no RID extension, so neither goes on the wire).
const VIDEO_RID: &str = "v";
const REPAIR_RID: &str = "fec";

/// The H.264 formats the relay takes, preferred first: (payload type, its RTX payload type, packetization mode 1,
/// profile-level-id). The SDK's own (constrained baseline, mode 1) first; then what WHIP encoders offer: single NAL
/// unit mode (0), Main, High and Constrained High. The level is negotiable (RFC 6184 8.2.2): any level of these profiles matches.
/// Packets are forwarded as they come: a mode 0 stream is valid mode 1 for a player, and Main and High go to a
/// player under the payload type it negotiated (the SDK's decoder and browsers take them; no B-frames).
const H264_FORMATS: &[(u8, u8, bool, u32)] = &[
    (
        H264_PAYLOAD_TYPE,
        H264_RTX_PAYLOAD_TYPE,
        true,
        H264_PROFILE_LEVEL_ID,
    ),
    (100, 101, false, H264_PROFILE_LEVEL_ID),
    (102, 103, true, 0x4d001f),
    (104, 105, false, 0x4d001f),
    (106, 107, true, 0x64001f),
    (112, 113, false, 0x64001f),
    // Constrained High (High without B-frames), as browsers name it.
    (114, 115, true, 0x640c1f),
    (116, 117, false, 0x640c1f),
];

/// What every session of a shard shares: crypto, one DTLS certificate (generating one per peer would cost a key
/// generation per join), the address to announce, and the shard's prefix of ICE ufrags.
pub(crate) struct RtcEnv {
    pub crypto: Arc<CryptoProvider>,
    pub cert: DtlsCert,
    pub announced: SocketAddr,
    ufrag_prefix: String,
}

impl RtcEnv {
    pub fn new(announced: SocketAddr, shard: ShardId) -> Result<Self, String> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or("the crypto provider cannot make a DTLS certificate")?;
        Ok(RtcEnv {
            crypto,
            cert,
            announced,
            ufrag_prefix: shard::ufrag_prefix(shard),
        })
    }

    fn new_rtc(
        &self,
        role: RoleKind,
        fec_pt: Option<u8>,
        audio_rtx_pt: Option<u8>,
        now: Instant,
    ) -> Rtc {
        self.rtc_config(role, fec_pt, audio_rtx_pt).build(now)
    }

    /// The configuration of a session's `Rtc`: ICE-lite, RTP mode, the relay's formats, and what `role` needs.
    /// With `audio_rtx_pt` (the offer's RTX payload type for Opus) the audio is repaired by NACK and RTX.
    pub fn rtc_config(
        &self,
        role: RoleKind,
        fec_pt: Option<u8>,
        audio_rtx_pt: Option<u8>,
    ) -> RtcConfig {
        // The ufrag names the shard, so that a peer's STUN read by another shard's socket finds its session.
        let random = IceCreds::new();
        let credentials = IceCreds {
            ufrag: format!("{}{}", self.ufrag_prefix, random.ufrag),
            pass: random.pass,
        };
        let mut config = Rtc::builder()
            .set_local_ice_credentials(credentials)
            .set_ice_lite(true)
            // Packets are forwarded as they arrive instead of being reassembled into frames.
            .set_rtp_mode(true)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs();
        match audio_rtx_pt {
            Some(rtx) => {
                let mut opus = PayloadParams::new(
                    OPUS_PAYLOAD_TYPE.into(),
                    Some(rtx.into()),
                    CodecSpec {
                        codec: Codec::Opus,
                        clock_rate: Frequency::FORTY_EIGHT_KHZ,
                        channels: Some(2),
                        format: FormatParams {
                            min_p_time: Some(10),
                            use_inband_fec: Some(true),
                            ..Default::default()
                        },
                    },
                );
                opus.set_fb_nack(true);
                *config.codec_config() = CodecConfig::new_from_payload_params(vec![opus]);
            }
            None => config = config.enable_opus(true, false),
        }
        for &(pt, rtx, mode_1, profile_level_id) in H264_FORMATS {
            config
                .codec_config()
                .add_h264(pt.into(), Some(rtx.into()), mode_1, profile_level_id);
        }
        if role == RoleKind::Player {
            // Towards players the relay forwards as it receives and adapts nothing, so transport-wide congestion
            // feedback would only cost: each report is parsed for a bandwidth estimate nobody uses.
            let mut extensions = ExtensionMap::empty();
            extensions.set(1, Extension::AudioLevel);
            extensions.set(4, Extension::RtpMid);
            extensions.set(13, Extension::VideoOrientation);
            config = config
                .set_extension_map(extensions)
                .set_stats_interval(Some(PLAYER_STATS_INTERVAL));
        }
        if let Some(pt) = fec_pt {
            // Not negotiated by str0m (it has no FEC format); declared so that it sends (to a player) and takes
            // (from a publisher) packets of this payload type, and added to the answer by `fec_sdp::announce`.
            config.codec_config().add_config(
                pt.into(),
                None,
                Codec::Unknown,
                Frequency::NINETY_KHZ,
                None,
                FormatParams::default(),
            );
        }
        config
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleKind {
    Publisher,
    Player,
}

/// The incoming tracks of a publisher, told apart by payload type.
#[derive(Debug, Default)]
pub(crate) struct PublisherTracks {
    /// The video m-line and its preferred H.264 payload type.
    video: Option<(Mid, Pt)>,
    /// Every H.264 payload type negotiated on the video m-line: a publisher may send any of them.
    video_pts: Vec<Pt>,
    audio: Option<Pt>,
    /// When the publisher sends repair packets with its video (boxed: most publishers on clean paths never use it).
    fec: Option<Box<FecReceiver>>,
}

/// One outgoing track of a player.
#[derive(Debug)]
pub(crate) struct OutTrack {
    mid: Mid,
    ssrc: Ssrc,
    rtx: Option<Ssrc>,
    pt: Pt,
    rewriter: SeqTimeRewriter,
    /// Video only: nothing is sent until a keyframe starts, so the decoder never starts mid-GOP.
    waiting_keyframe: bool,
    /// Video only, when the player takes repair packets: its repair stream (boxed: most tracks have none).
    fec: Option<Box<RepairStream>>,
}

/// A player's repair stream.
#[derive(Debug)]
pub(crate) struct RepairStream {
    ssrc: Ssrc,
    pt: Pt,
    sender: FecSender,
}

#[derive(Debug, Default)]
pub(crate) struct PlayerTracks {
    video: Option<OutTrack>,
    audio: Option<OutTrack>,
}

// One per session, built once and never moved again: boxing the player's side would only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Role {
    Publisher(PublisherTracks),
    Player(PlayerTracks),
}

/// What a session hands to the relay after being driven.
// Media is the common case; boxing it would allocate per packet, while the output buffer is reused.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum SessionOutput {
    Connected,
    /// Media from a publisher.
    Media(MediaKind, MediaPacket),
    /// A player asks for a keyframe.
    KeyframeRequest,
    /// A player's estimate of what its downlink can receive (REMB), in bits per second.
    DownlinkEstimate(u64),
}

pub(crate) struct Session {
    pub id: SessionId,
    pub route: u64,
    pub role: Role,
    rtc: Rtc,
    pub created_at: Instant,
    pub last_rx: Instant,
    pub connected: bool,
    /// Player: connected, but its side may not have its SRTP keys yet (see `Sfu::on_connected`): what comes for it
    /// meanwhile is held here and written once they are ([`Session::release_held`]). Sent at once, a keyframe it
    /// cannot decrypt would leave it with delta frames and nothing to show.
    pub held: Option<Vec<HeldPacket>>,
    /// When the peer's first DTLS record arrived (its ClientHello): with the moment DTLS completes, a measure of the
    /// round trip before any RTT estimate exists.
    pub first_dtls_at: Option<Instant>,
    pub next_timeout: Instant,
    /// When the session was last driven by a timeout.
    pub last_driven: Instant,
    /// Media was written since the session was last driven by a timeout.
    pub dirty: bool,
    /// Source addresses indexed for this session, to forget them with it.
    pub addrs: Vec<SocketAddr>,
    /// Why the session ended, once it has.
    pub gone: Option<&'static str>,
    /// The WebRTC stack failed on this session (a DTLS handshake that failed leaves it unusable, and it panics when
    /// called again): nothing calls into it any more, and the session goes.
    broken: bool,
    /// It ended because the peer vanished (nothing arrived from it any more), not by a close.
    pub lost: bool,
    /// Player: its latest downlink estimate (bits per second) and when it came.
    pub downlink_estimate: Option<(u64, Instant)>,
    /// A pull from another relay (a publisher of the stream to this relay's players), see `pull`.
    pub pull: Option<Box<Pull>>,
}

impl Session {
    /// Builds the session for an offer of `stream_id` and returns it with the SDP answer.
    pub fn accept(
        id: SessionId,
        role: RoleKind,
        stream_id: &str,
        offer_sdp: &str,
        env: &RtcEnv,
        now: Instant,
    ) -> Result<(Session, String), RelayError> {
        let offer = offer::parse(offer_sdp)?;
        let offered = offer::offered_lines(offer_sdp);
        let fec_pt = fec_sdp::offered_pt(offer_sdp);
        let audio_rtx_pt = audio_rtx_sdp::offered_pt(offer_sdp);
        // A publisher's repair stream: the media and repair SSRCs its offer groups.
        let fec_group = match role {
            RoleKind::Publisher => fec_pt.and(fec_sdp::offered_group(offer_sdp)),
            RoleKind::Player => None,
        };
        let mut rtc = env.new_rtc(role, fec_pt, audio_rtx_pt, now);
        let candidate = Candidate::host(env.announced, "udp").map_err(|e| {
            tracing::error!(announced = %env.announced, "cannot announce the relay's address: {e}");
            RelayError::BadOffer("the relay cannot announce its address".into())
        })?;
        rtc.add_local_candidate(candidate);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(offer::refused)?;

        let mut answer = offer::reject_formatless_lines(&answer.to_sdp_string());
        let next_timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(_) => {}
                Err(e) => return Err(offer::refused(e)),
            }
        };
        let rejected = offer::rejected_lines(&answer);

        // str0m reports m-lines as events only once DTLS is up; the answer names them now.
        let medias: Vec<(Mid, MediaKind, Direction)> = answer
            .lines()
            .filter_map(|line| line.trim_end().strip_prefix("a=mid:"))
            .filter_map(|mid| {
                let media = rtc.media(Mid::from(mid))?;
                Some((media.mid(), media.kind(), media.direction()))
            })
            .collect();

        let role = match role {
            RoleKind::Publisher => {
                let mut tracks = publisher_tracks(&rtc, &medias);
                if tracks.video.is_none() && tracks.audio.is_none() {
                    return Err(offer::nothing_usable(role, &offered, &rejected));
                }
                if audio_rtx_pt.is_some() {
                    ask_for_lost_audio(&mut rtc, &medias);
                }
                if let (Some(pt), Some((media_ssrc, repair_ssrc)), Some((mid, video_pt))) =
                    (fec_pt, fec_group, tracks.video)
                {
                    answer = fec_sdp::announce(&answer, mid, pt.into(), None);
                    tracks.fec = Some(Box::new(FecReceiver::new(
                        media_ssrc,
                        *video_pt,
                        repair_ssrc,
                        pt,
                    )));
                }
                Role::Publisher(tracks)
            }
            RoleKind::Player => {
                let mut tracks = player_tracks(&mut rtc, &medias);
                if tracks.video.is_none() && tracks.audio.is_none() {
                    return Err(offer::nothing_usable(role, &offered, &rejected));
                }
                if let (Some(pt), Some(video)) = (fec_pt, tracks.video.as_mut()) {
                    if let Some(repair) = add_repair_stream(&mut rtc, video, pt) {
                        answer = fec_sdp::announce(
                            &answer,
                            video.mid,
                            repair.pt,
                            Some((video.ssrc, repair.ssrc)),
                        );
                        video.fec = Some(repair);
                    }
                }
                let sent = [(&tracks.video, "video"), (&tracks.audio, "audio")];
                let sent: Vec<(Mid, &str)> = sent
                    .into_iter()
                    .filter_map(|(track, name)| Some((track.as_ref()?.mid, name)))
                    .collect();
                answer = msid_sdp::one_stream(&answer, &msid_sdp::stream_id(stream_id), &sent);
                Role::Player(tracks)
            }
        };
        if !rejected.is_empty() {
            answer = offer::complete_rejected_lines(&answer, &offered)?;
        }

        Ok((Session::new(id, role, rtc, next_timeout, now), answer))
    }

    fn new(id: SessionId, role: Role, rtc: Rtc, next_timeout: Instant, now: Instant) -> Session {
        Session {
            id,
            route: 0,
            role,
            rtc,
            created_at: now,
            last_rx: now,
            connected: false,
            held: None,
            first_dtls_at: None,
            next_timeout,
            last_driven: now,
            dirty: false,
            addrs: Vec::new(),
            gone: None,
            broken: false,
            lost: false,
            downlink_estimate: None,
            pull: None,
        }
    }

    /// Builds a pull of a stream from another relay and returns it with the SDP offer for that relay (see `pull`).
    /// It publishes the stream here once [`Session::complete_pull`] has its answer.
    /// `local` is the address of the pull's own socket.
    pub fn offer_pull(
        id: SessionId,
        env: &RtcEnv,
        local: SocketAddr,
        now: Instant,
    ) -> Result<(Session, String), RelayError> {
        let (mut rtc, pull, offer) = pull::offer(env, local, now)?;
        let next_timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(_) => {}
                Err(e) => return Err(offer::refused(e)),
            }
        };
        let role = Role::Publisher(PublisherTracks::default());
        let mut session = Session::new(id, role, rtc, next_timeout, now);
        session.pull = Some(Box::new(pull));
        Ok((session, offer))
    }

    /// Completes a pull with the other relay's answer: its tracks are known and ICE starts towards the answer's
    /// candidates. Returns the other relay's addresses.
    pub fn complete_pull(
        &mut self,
        answer_sdp: &str,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) -> Result<Vec<SocketAddr>, RelayError> {
        let Some(pull) = self.pull.as_mut() else {
            return Err(RelayError::BadOffer("the session is not a pull".into()));
        };
        let (origins, medias) = pull.accept(&mut self.rtc, answer_sdp)?;
        let tracks = publisher_tracks(&self.rtc, &medias);
        if tracks.video.is_none() && tracks.audio.is_none() {
            return Err(RelayError::BadOffer(
                "the answer accepts neither H.264 video nor Opus audio".into(),
            ));
        }
        self.role = Role::Publisher(tracks);
        self.drain(outbox, outputs, counters);
        Ok(origins)
    }

    /// A session that brings a stream to this relay's players: a publisher's, or a pull from another relay.
    pub fn is_publisher(&self) -> bool {
        matches!(self.role, Role::Publisher(_))
    }

    /// A pull from another relay.
    pub fn is_pull(&self) -> bool {
        self.pull.is_some()
    }

    /// A pull's own socket address: where its datagrams arrive and leave from.
    pub fn pull_addr(&self) -> Option<SocketAddr> {
        self.pull.as_ref().map(|p| p.local)
    }

    pub fn accepts(&self, input: &Input) -> bool {
        self.rtc.accepts(input)
    }

    /// Feeds one datagram and drains the results.
    pub fn receive(
        &mut self,
        now: Instant,
        input: Input,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) {
        self.last_rx = now;
        if self.broken || self.gone.is_some() {
            // Ending: the stack is not fed again (after a failed handshake it cannot take input).
            Counters::add(&counters.datagrams_dropped, 1);
            return;
        }
        let handled = self.guarded(|s| s.rtc.handle_input(input));
        match handled {
            Some(Ok(())) => {}
            Some(Err(RtcError::Dtls(e))) if !self.connected => {
                // A handshake that failed cannot be resumed, and the stack must not see this peer's DTLS again (a
                // DTLS error once connected is a bad record, which the stack drops and goes on).
                tracing::debug!(session = self.id, "DTLS failed: {e}");
                Counters::add(&counters.datagrams_dropped, 1);
                self.broken = true;
                self.gone = Some("the DTLS handshake failed");
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(session = self.id, "input rejected: {e}");
                Counters::add(&counters.datagrams_dropped, 1);
                if !self.rtc.is_alive() {
                    self.gone = Some("the peer's input ended the connection");
                }
            }
            None => return,
        }
        self.drain(outbox, outputs, counters);
    }

    /// Runs `f` on the session; a panic in the WebRTC stack ends this session only, not the relay thread that
    /// serves every other one. None when it panicked.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::error!(
                    session = self.id,
                    "the WebRTC stack failed on this session; it is closed"
                );
                self.broken = true;
                self.gone = Some("internal error");
                None
            }
        }
    }

    /// Drives time forward and drains the results.
    pub fn timeout(
        &mut self,
        now: Instant,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) {
        self.dirty = false;
        self.last_driven = now;
        if self.broken {
            return;
        }
        match self.guarded(|s| s.rtc.handle_input(Input::Timeout(now))) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(session = self.id, "timeout handling failed: {e}");
                self.rtc.disconnect();
                self.gone = Some("internal error");
            }
            None => return,
        }
        self.drain(outbox, outputs, counters);
    }

    /// Asks the publisher for a keyframe. False when its video stream is not known yet.
    pub fn request_keyframe(
        &mut self,
        now: Instant,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) -> bool {
        self.feed_back_on_video(now, outbox, outputs, counters, |stream| {
            stream.request_keyframe(KeyframeRequestKind::Pli)
        })
    }

    /// Publisher: tells it what its players can receive (REMB for its video). False when its video stream is not
    /// known yet.
    pub fn send_receiver_estimate(
        &mut self,
        bps: u64,
        now: Instant,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) -> bool {
        self.feed_back_on_video(now, outbox, outputs, counters, |stream| {
            stream.request_remb(Bitrate::bps(bps))
        })
    }

    /// Publisher: queues RTCP feedback on its video stream and sends it now. False when that stream is not known
    /// yet.
    fn feed_back_on_video(
        &mut self,
        now: Instant,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
        feedback: impl FnOnce(&mut StreamRx),
    ) -> bool {
        let Role::Publisher(PublisherTracks {
            video: Some((mid, _)),
            fec,
            ..
        }) = &self.role
        else {
            return false;
        };
        if !self.connected {
            return false;
        }
        let media_ssrc = fec.as_ref().map(|f| Ssrc::from(f.media_ssrc()));
        let mut api = self.rtc.direct_api();
        // With FEC the repair stream shares the m-line (and, with no RID, any lookup by it): look up by SSRC.
        let stream = match media_ssrc {
            Some(ssrc) => api.stream_rx(&ssrc),
            None => api.stream_rx_by_mid(*mid, None),
        };
        let Some(stream) = stream else {
            return false;
        };
        feedback(stream);
        self.drain(outbox, outputs, counters);
        // Feedback goes out with the RTCP produced on the next timeout: do it now rather than waiting.
        self.timeout(now, outbox, outputs, counters);
        true
    }

    /// Player: its SRTP keys are in place now; writes what was held for it meanwhile, in order. Returns whether
    /// anything was written (as [`Session::forward`]).
    pub fn release_held(&mut self, counters: &Counters) -> bool {
        let Some(held) = self.held.take() else {
            return false;
        };
        let mut wrote = false;
        for h in &held {
            wrote |= self.forward(h.source, h.kind, &h.packet, h.opens_keyframe, counters);
        }
        wrote
    }

    /// Player: after a cached keyframe, its video waits for the next live keyframe, which continues the player's
    /// stream right after the cached one (see `keyframe_cache`).
    pub fn after_cached_keyframe(&mut self) {
        if let Role::Player(PlayerTracks { video: Some(v), .. }) = &mut self.role {
            v.waiting_keyframe = true;
            v.rewriter.restart();
        }
    }

    /// Player: from now on video waits for the next keyframe (the publisher changed).
    pub fn restart_video(&mut self) {
        if let Role::Player(PlayerTracks { video: Some(v), .. }) = &mut self.role {
            v.waiting_keyframe = true;
        }
    }

    /// Player: whether video is held back until a keyframe.
    pub fn waiting_keyframe(&self) -> bool {
        matches!(&self.role, Role::Player(PlayerTracks { video: Some(v), .. }) if v.waiting_keyframe)
    }

    /// Player: queues one forwarded packet; `opens_keyframe` says the packet is the first of an access unit that
    /// is a keyframe, where waiting video may start. Returns whether it was written (the session then needs a
    /// timeout to send it, see [`Session::dirty`]).
    pub fn forward(
        &mut self,
        source: SourceId,
        kind: MediaKind,
        packet: &MediaPacket,
        opens_keyframe: bool,
        counters: &Counters,
    ) -> bool {
        if !self.connected || self.gone.is_some() {
            return false;
        }
        if let Some(held) = &mut self.held {
            // A few milliseconds of the stream; beyond the bound the player starts from the cached keyframe.
            if held.len() < MAX_HELD {
                held.push(HeldPacket {
                    source,
                    kind,
                    packet: packet.clone(),
                    opens_keyframe,
                });
            }
            return false;
        }
        let Role::Player(tracks) = &mut self.role else {
            return false;
        };
        let track = match kind {
            MediaKind::Video => tracks.video.as_mut(),
            MediaKind::Audio => tracks.audio.as_mut(),
        };
        let Some(track) = track else {
            return false;
        };
        if track.waiting_keyframe {
            if !opens_keyframe {
                return false;
            }
            track.waiting_keyframe = false;
        }
        let Some((seq, time)) =
            track
                .rewriter
                .map(source, packet.seq, packet.timestamp, packet.arrival)
        else {
            return false;
        };

        // Only what describes the media travels on; transport extensions (TWCC, send time) are str0m's own. The
        // MID goes on every packet (str0m would stop once the player acknowledges the SSRC), so that a packet is
        // matched to its m-line whichever packets before it were lost.
        let ext = ExtensionValues {
            audio_level: packet.ext.audio_level,
            voice_activity: packet.ext.voice_activity,
            video_orientation: packet.ext.video_orientation,
            mid: Some(track.mid),
            ..Default::default()
        };

        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx(&track.ssrc) else {
            return false;
        };
        stream.write_rtp(
            RtpWrite::new(
                track.pt,
                seq.into(),
                time,
                packet.arrival,
                packet.payload.clone(),
            )
            .marker(packet.marker)
            .ext_vals(ext)
            // Kept in str0m's per-stream send buffer (the payload is shared with every other player) to answer
            // NACKs with RTX.
            .nackable(true),
        );
        Counters::add(&counters.packets_forwarded, 1);
        Counters::add(&counters.bytes_forwarded, packet.payload.len() as u64);

        if let Some(repair) = track.fec.as_mut() {
            let repairs = repair
                .sender
                .on_media(seq, time, packet.marker, &packet.payload);
            if !repairs.is_empty() {
                if let Some(stream) = api.stream_tx(&repair.ssrc) {
                    for r in repairs {
                        Counters::add(&counters.repair_packets, 1);
                        stream.write_rtp(
                            RtpWrite::new(
                                repair.pt,
                                r.seq.into(),
                                r.timestamp,
                                packet.arrival,
                                Arc::<[u8]>::from(&r.payload[..]),
                            )
                            // A lost repair packet is not worth a round trip: the NACK for the media is.
                            .nackable(false),
                        );
                    }
                }
            }
        }
        true
    }

    /// Drains after a write without transmitting: the str0m contract is one drain per mutation, and the packets
    /// themselves leave on the next timeout (see [`Session::timeout`]).
    pub fn drain_after_write(
        &mut self,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) {
        self.drain(outbox, outputs, counters);
    }

    /// Starts a graceful close (RTCP BYE, DTLS close_notify) and sends what that produces.
    pub fn close(&mut self, outbox: &mut impl Outbox, counters: &Counters) {
        if self.broken {
            return;
        }
        if self.rtc.close().is_ok() {
            let mut ignored = Vec::new();
            self.drain(outbox, &mut ignored, counters);
        }
        self.rtc.disconnect();
    }

    fn drain(
        &mut self,
        outbox: &mut impl Outbox,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) {
        if self.broken {
            return;
        }
        loop {
            let Some(output) = self.guarded(|s| s.rtc.poll_output()) else {
                return;
            };
            match output {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    if self.is_retransmission(&t.contents) {
                        Counters::add(&counters.retransmissions, 1);
                    }
                    if self.pull.is_some() {
                        // A pull has a socket of its own, whose address str0m names as the source.
                        outbox.send_from(t.source, t.destination, &t.contents);
                    } else {
                        outbox.send(t.destination, &t.contents);
                    }
                }
                Ok(Output::Event(event)) => self.on_event(event, outputs, counters),
                Err(e) => {
                    tracing::warn!(session = self.id, "session failed: {e}");
                    self.rtc.disconnect();
                    self.gone = Some("internal error");
                    break;
                }
            }
        }
        if !self.rtc.is_alive() && self.gone.is_none() {
            self.gone = Some("connection closed");
        }
    }

    fn on_event(
        &mut self,
        event: Event,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) {
        match event {
            Event::Connected => {
                self.connected = true;
                outputs.push((self.id, SessionOutput::Connected));
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                // ICE-lite gives up on a peer whose consent checks stopped.
                self.gone = Some("ICE disconnected");
                self.lost = self.connected;
            }
            Event::Closed => self.gone = Some("the peer closed the connection"),
            Event::RtpPacket(packet) => {
                let Role::Publisher(tracks) = &mut self.role else {
                    return;
                };
                let pt = packet.header.payload_type;
                if let Some(fec) = tracks.fec.as_mut() {
                    if fec.is_repair(*packet.header.ssrc, *pt) {
                        let mut rebuilt = Vec::new();
                        fec.on_repair(&packet.payload, packet.timestamp, &mut rebuilt);
                        Self::push_rebuilt(self.id, rebuilt, outputs, counters);
                        return;
                    }
                }
                let kind = if tracks.video_pts.contains(&pt) {
                    MediaKind::Video
                } else if tracks.audio == Some(pt) {
                    MediaKind::Audio
                } else {
                    return;
                };
                let packet = MediaPacket::from(packet);
                let mut rebuilt = Vec::new();
                if kind == MediaKind::Video {
                    if let Some(fec) = tracks.fec.as_mut() {
                        if !fec.on_media(&packet, &mut rebuilt) {
                            // Rebuilt already and forwarded: this is str0m's retransmission of it.
                            return;
                        }
                    }
                }
                Counters::add(&counters.packets_received, 1);
                Counters::add(&counters.bytes_received, packet.payload.len() as u64);
                outputs.push((self.id, SessionOutput::Media(kind, packet)));
                Self::push_rebuilt(self.id, rebuilt, outputs, counters);
            }
            Event::KeyframeRequest(_) => {
                if matches!(self.role, Role::Player(_)) {
                    outputs.push((self.id, SessionOutput::KeyframeRequest));
                }
            }
            Event::EgressBitrateEstimate(BweKind::Remb { estimate, .. }) => {
                if let Role::Player(tracks) = &mut self.role {
                    // A player sends its estimate only while its downlink queues: loss there is congestion, and
                    // repair packets would add to it. Its receiver reports can show the loss before their round
                    // trip shows the queue.
                    if let Some(repair) = tracks.video.as_mut().and_then(|v| v.fec.as_mut()) {
                        if repair.sender.coder.level.active() {
                            tracing::debug!(
                                session = self.id,
                                "FEC towards the player stops: its downlink queues"
                            );
                        }
                        repair.sender.coder.level.report_queue(self.last_rx);
                    }
                    outputs.push((self.id, SessionOutput::DownlinkEstimate(estimate.as_u64())));
                }
            }
            Event::MediaEgressStats(stats) => {
                if let Role::Player(PlayerTracks {
                    video:
                        Some(OutTrack {
                            mid,
                            fec: Some(repair),
                            ..
                        }),
                    ..
                }) = &mut self.role
                {
                    if stats.mid == *mid && stats.rid == Some(Rid::from(VIDEO_RID)) {
                        let level = &mut repair.sender.coder.level;
                        let was = level.active();
                        level.report(stats.timestamp, stats.loss, stats.rtt);
                        if level.active() != was {
                            tracing::debug!(
                                session = self.id,
                                loss = ?stats.loss,
                                rtt = ?stats.rtt,
                                "FEC towards the player {}",
                                if was { "stops" } else { "starts" }
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn push_rebuilt(
        id: SessionId,
        rebuilt: Vec<MediaPacket>,
        outputs: &mut Vec<(SessionId, SessionOutput)>,
        counters: &Counters,
    ) {
        Counters::add(&counters.fec_rebuilt, rebuilt.len() as u64);
        outputs.extend(
            rebuilt
                .into_iter()
                .map(|p| (id, SessionOutput::Media(MediaKind::Video, p))),
        );
    }

    /// RTX packets carry the RTX SSRC in their (unencrypted) RTP header; the relay only sends them for NACKs.
    fn is_retransmission(&self, datagram: &[u8]) -> bool {
        let Role::Player(tracks) = &self.role else {
            return false;
        };
        if !is_rtp(datagram) {
            return false;
        }
        let ssrc = Ssrc::from(u32::from_be_bytes([
            datagram[8],
            datagram[9],
            datagram[10],
            datagram[11],
        ]));
        [&tracks.video, &tracks.audio]
            .into_iter()
            .flatten()
            .any(|t| t.rtx == Some(ssrc))
    }
}

/// An RTP packet (not RTCP, which shares the port): version 2, and a payload type outside RTCP's 64..96 range.
pub(crate) fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(64..96).contains(&(datagram[1] & 0x7F))
}

/// A packet for a player held until its SRTP keys are in place (see [`Session::held`]).
pub(crate) struct HeldPacket {
    source: SourceId,
    kind: MediaKind,
    packet: MediaPacket,
    opens_keyframe: bool,
}

/// The most packets held for a player while its SRTP keys may be missing: a keyframe of a high-rate stream.
const MAX_HELD: usize = 1024;

/// Where a session's datagrams go.
pub(crate) trait Outbox {
    /// A datagram from the relay's shared socket (its one media port).
    fn send(&mut self, destination: SocketAddr, datagram: &[u8]);
    /// A datagram of a pull, from the pull's own socket, whose address is `source` (see `pull`).
    fn send_from(&mut self, source: SocketAddr, destination: SocketAddr, datagram: &[u8]);
}

fn negotiated_pt(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    negotiated_pts(rtc, mid, codec).first().copied()
}

/// The payload types of `codec` negotiated on an m-line, in the relay's order of preference.
fn negotiated_pts(rtc: &Rtc, mid: Mid, codec: Codec) -> Vec<Pt> {
    let Some(media) = rtc.media(mid) else {
        return Vec::new();
    };
    let remote = media.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| p.spec().codec == codec && remote.contains(&p.pt()))
        .map(|p| p.pt())
        .collect()
}

/// str0m asks for lost packets only on a stream whose sender announced an RTX SSRC; the SDK's publisher answers
/// audio NACKs on the audio SSRC itself (webrtc gives audio no RTX stream), so the audio streams are told to ask.
fn ask_for_lost_audio(rtc: &mut Rtc, medias: &[(Mid, MediaKind, Direction)]) {
    let mut api = rtc.direct_api();
    for &(mid, kind, direction) in medias {
        if kind != MediaKind::Audio || !direction.is_receiving() {
            continue;
        }
        match api.stream_rx_by_mid(mid, None) {
            Some(stream) => stream.suppress_nack(false),
            None => tracing::debug!(%mid, "no audio stream yet to ask for lost packets"),
        }
    }
}

fn publisher_tracks(rtc: &Rtc, medias: &[(Mid, MediaKind, Direction)]) -> PublisherTracks {
    let mut tracks = PublisherTracks::default();
    for &(mid, kind, direction) in medias {
        if !direction.is_receiving() {
            continue;
        }
        match kind {
            MediaKind::Video if tracks.video.is_none() => {
                tracks.video_pts = negotiated_pts(rtc, mid, Codec::H264);
                tracks.video = tracks.video_pts.first().map(|&pt| (mid, pt));
            }
            MediaKind::Audio if tracks.audio.is_none() => {
                tracks.audio = negotiated_pt(rtc, mid, Codec::Opus)
            }
            _ => {}
        }
    }
    tracks
}

fn player_tracks(rtc: &mut Rtc, medias: &[(Mid, MediaKind, Direction)]) -> PlayerTracks {
    let mut tracks = PlayerTracks::default();
    for &(mid, kind, direction) in medias {
        if !direction.is_sending() {
            continue;
        }
        let (codec, clock_rate) = match kind {
            MediaKind::Video if tracks.video.is_none() => (Codec::H264, VIDEO_CLOCK_RATE),
            MediaKind::Audio if tracks.audio.is_none() => (Codec::Opus, AUDIO_CLOCK_RATE),
            _ => continue,
        };
        let Some(pt) = negotiated_pt(rtc, mid, codec) else {
            continue;
        };
        let mut api = rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            continue;
        };
        // str0m's default clears queued retransmissions once they exceed 15 % of the bytes sent in the last
        // second; a player on a 10-30 % lossy path needs that much and more to be repaired. Players ask once
        // per round trip (src/player/receive/nack.rs in the SDK), so the cap only guards against a misbehaving one.
        stream.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
        let (ssrc, rtx) = (stream.ssrc(), stream.rtx());
        let track = OutTrack {
            mid,
            ssrc,
            rtx,
            pt,
            rewriter: SeqTimeRewriter::new(clock_rate),
            waiting_keyframe: kind == MediaKind::Video,
            fec: None,
        };
        match kind {
            MediaKind::Video => tracks.video = Some(track),
            MediaKind::Audio => tracks.audio = Some(track),
        }
    }
    tracks
}

/// Declares the repair stream of a player's video on its m-line, and declares the video again (same SSRCs) with a
/// RID of its own, see [`VIDEO_RID`].
fn add_repair_stream(rtc: &mut Rtc, video: &OutTrack, pt: u8) -> Option<Box<RepairStream>> {
    let mut api = rtc.direct_api();
    let mid = video.mid;
    if !api.remove_stream_tx(video.ssrc) {
        return None;
    }
    api.declare_stream_tx(video.ssrc, video.rtx, mid, Some(Rid::from(VIDEO_RID)))
        .set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
    let ssrc = loop {
        let ssrc = Ssrc::from(rand::random::<u32>());
        if ssrc != video.ssrc && Some(ssrc) != video.rtx {
            break ssrc;
        }
    };
    let stream = api.declare_stream_tx(ssrc, None, mid, Some(Rid::from(REPAIR_RID)));
    // Repair packets are never retransmitted.
    stream.set_rtx_cache(0, Duration::ZERO, None);
    let sender = FecSender::new(*video.pt);
    Some(Box::new(RepairStream {
        ssrc,
        pt: pt.into(),
        sender,
    }))
}

/// A received datagram as str0m input. Its destination is the relay's announced address: that is the local ICE
/// candidate, even when the socket is bound to another address behind a NAT or an impairment relay.
pub(crate) fn receive_input<'a>(
    now: Instant,
    source: SocketAddr,
    announced: SocketAddr,
    contents: str0m::net::DatagramRecv<'a>,
) -> Input<'a> {
    Input::Receive(
        now,
        Receive {
            proto: Protocol::Udp,
            source,
            destination: announced,
            contents,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An offer whose video section carries only Opus: str0m takes the section and writes it with no format.
    fn offer_with_opus_as_video(direction: &str) -> String {
        let transport = "c=IN IP4 0.0.0.0\r\na=ice-ufrag:Fz3k\r\na=ice-pwd:9LuUbKTo8dZ1Ab7ZQ2kYsC2L\r\n\
            a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CB:E9:71:EF:\
            0C:FA:7E:0B:8A:23:C5:71:8A:3B:41:E3:0E:2D:9C:5E:11\r\na=setup:actpass\r\na=rtcp-mux\r\n";
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{transport}a=mid:0\r\na={direction}\r\n\
             a=rtpmap:111 opus/48000/2\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 111\r\n{transport}a=mid:1\r\na={direction}\r\n\
             a=rtpmap:111 opus/48000/2\r\n"
        )
    }

    /// An audio-only offer as the SDK makes it: Opus with NACK and its RTX format, an SSRC and no RTX SSRC.
    fn sdk_audio_offer(direction: &str) -> String {
        let transport = "c=IN IP4 0.0.0.0\r\na=ice-ufrag:Fz3k\r\na=ice-pwd:9LuUbKTo8dZ1Ab7ZQ2kYsC2L\r\n\
            a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CB:E9:71:EF:\
            0C:FA:7E:0B:8A:23:C5:71:8A:3B:41:E3:0E:2D:9C:5E:11\r\na=setup:actpass\r\na=rtcp-mux\r\n";
        let ssrc = if direction == "sendonly" {
            "a=msid:s s-audio\r\na=ssrc:1111 cname:s\r\n"
        } else {
            ""
        };
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\n{transport}a=mid:0\r\na={direction}\r\n\
             a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtcp-fb:111 nack\r\n\
             a=rtpmap:110 rtx/48000\r\na=fmtp:110 apt=111\r\n{ssrc}"
        )
    }

    #[test]
    fn audio_offered_with_rtx_is_answered_with_nack_and_rtx_and_asked_for_when_lost() {
        let env = RtcEnv::new(SocketAddr::from(([127, 0, 0, 1], 5004)), 0).unwrap();
        for (role, direction) in [
            (RoleKind::Player, "recvonly"),
            (RoleKind::Publisher, "sendonly"),
        ] {
            let offer = sdk_audio_offer(direction);
            let (mut session, answer) = Session::accept(1, role, "s", &offer, &env, Instant::now())
                .unwrap_or_else(|e| panic!("{direction}: {e}"));
            assert!(answer.contains("a=rtcp-fb:111 nack\r\n"), "{answer}");
            assert!(answer.contains("a=rtpmap:110 rtx/48000"), "{answer}");
            assert!(answer.contains("a=fmtp:110 apt=111"), "{answer}");
            let mut api = session.rtc.direct_api();
            match role {
                // The relay resends a player's lost audio as RTX.
                RoleKind::Player => {
                    let stream = api.stream_tx_by_mid(Mid::from("0"), None).unwrap();
                    assert!(stream.rtx().is_some(), "{answer}");
                }
                // And asks a publisher for its lost audio: the stream is there to be told so.
                RoleKind::Publisher => assert!(api.stream_rx(&Ssrc::from(1111)).is_some()),
            }
        }
        // Without RTX in the offer (browsers), the audio format is answered as before.
        let plain = sdk_audio_offer("recvonly")
            .replace(" 111 110\r\n", " 111\r\n")
            .replace("a=rtpmap:110 rtx/48000\r\na=fmtp:110 apt=111\r\n", "");
        let (_, answer) =
            Session::accept(1, RoleKind::Player, "s", &plain, &env, Instant::now()).unwrap();
        assert!(!answer.contains("a=rtcp-fb:111 nack"), "{answer}");
    }

    #[test]
    fn a_video_section_offering_only_audio_is_answered_as_rejected() {
        let env = RtcEnv::new(SocketAddr::from(([127, 0, 0, 1], 5004)), 0).unwrap();
        for (role, direction) in [
            (RoleKind::Player, "recvonly"),
            (RoleKind::Publisher, "sendonly"),
        ] {
            let offer = offer_with_opus_as_video(direction);
            let (session, answer) = Session::accept(1, role, "s", &offer, &env, Instant::now())
                .unwrap_or_else(|e| panic!("{direction}: {e}"));
            assert!(
                str0m::change::SdpAnswer::from_sdp_string(&answer).is_ok(),
                "{answer}"
            );
            assert!(answer.contains("a=group:BUNDLE 0\r\n"), "{answer}");
            assert!(answer.contains("m=audio 9 "), "{answer}");
            assert!(
                answer.contains("m=video 0 UDP/TLS/RTP/SAVPF 111\r\n"),
                "{answer}"
            );
            match session.role {
                Role::Player(tracks) => {
                    assert!(tracks.video.is_none() && tracks.audio.is_some())
                }
                Role::Publisher(tracks) => {
                    assert!(tracks.video.is_none() && tracks.audio.is_some())
                }
            }
        }
    }

    #[test]
    fn rtp_and_rtcp_are_told_apart() {
        let packet = [0x90, 108, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7];
        assert!(is_rtp(&packet));
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(!is_rtp(&rtcp));
        assert!(!is_rtp(&packet[..11]));
    }
}
