//! A pull: this relay takes a stream from another relay (the origin of a cluster's stream) and publishes it to its
//! own players, pulling it once per stream however many of them play it.
//!
//! The pull is the offering side: a receive-only H.264 + Opus offer (with NACK and RTX) that the other relay
//! answers as it answers any player. Relay sessions are ICE-lite, and two lite agents never connect, so a pull is a
//! full ICE agent: controlling, checking towards the answer's candidates. Its checks go out often enough that a live
//! origin is never taken for lost.
//!
//! Each pull has a UDP socket of its own, opened by its I/O thread (see `io_loop`) and closed when the pull ends:
//! its address is the pull's host candidate, what arrives on it is the pull's and nobody else's, and what the pull
//! sends leaves from it. Sessions on the relay's shared port are told apart by their peer's address, and two pulls
//! between the same two relays (two streams of one origin, or a pull each way) would share one: on sockets of their
//! own they never meet.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::{Candidate, Rtc};

use crate::offer;
use crate::session::{RoleKind, RtcEnv};
use crate::RelayError;

/// The longest wait between a pull's ICE checks once connected (str0m's default is 3 s). A pull is lost when
/// nothing arrives from the other relay for `RelayOptions::publisher_lost_timeout` (3 s by default); on a stream
/// without media, the other relay, ICE-lite, sends only RTCP reports and its answers to these checks, so they come
/// several times within it.
const MAX_CHECK_INTERVAL: Duration = Duration::from_millis(1000);

/// What a pull keeps of its offer until the answer comes, and its own socket's address.
pub(crate) struct Pull {
    /// The address of the pull's own socket: its host candidate, the destination of what it receives and the
    /// source of what it sends.
    pub local: SocketAddr,
    /// The offer made, until its answer is accepted.
    pending: Option<SdpPendingOffer>,
    /// The m-lines offered: video, then audio.
    mids: [Mid; 2],
}

/// The `Rtc` of a new pull whose socket has the address `local`, the pull, and its SDP offer.
pub(crate) fn offer(
    env: &RtcEnv,
    local: SocketAddr,
    now: Instant,
) -> Result<(Rtc, Pull, String), RelayError> {
    let mut config = env
        .rtc_config(RoleKind::Publisher, None, None)
        .set_ice_lite(false);
    config.set_max_stun_rto(MAX_CHECK_INTERVAL);
    let mut rtc = config.build(now);
    let candidate = Candidate::host(local, "udp").map_err(|e| {
        tracing::error!(%local, "cannot announce the pull's address: {e}");
        RelayError::BadOffer("the relay cannot announce the pull's address".into())
    })?;
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    let video = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let audio = change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change
        .apply()
        .ok_or_else(|| RelayError::BadOffer("the pull's offer could not be made".into()))?;
    let pull = Pull {
        local,
        pending: Some(pending),
        mids: [video, audio],
    };
    Ok((rtc, pull, offer.to_sdp_string()))
}

impl Pull {
    /// Accepts the other relay's answer into the pull's `Rtc`: the answer's candidates are ICE's remote ones. Returns
    /// their addresses and the m-lines as negotiated. An answer that does not parse leaves the offer waiting.
    #[allow(clippy::type_complexity)]
    pub fn accept(
        &mut self,
        rtc: &mut Rtc,
        answer_sdp: &str,
    ) -> Result<(Vec<SocketAddr>, Vec<(Mid, MediaKind, Direction)>), RelayError> {
        let answer = SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| {
            tracing::debug!("unparsable answer: {e}");
            RelayError::BadOffer("the answer is not valid SDP".into())
        })?;
        let origins = candidate_addrs(answer_sdp);
        if origins.is_empty() {
            return Err(RelayError::BadOffer(
                "the answer has no UDP ICE candidate".into(),
            ));
        }
        let Some(pending) = self.pending.take() else {
            return Err(RelayError::BadOffer(
                "the pull has its answer already".into(),
            ));
        };
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(offer::refused)?;
        let medias = self
            .mids
            .iter()
            .filter_map(|&mid| {
                let media = rtc.media(mid)?;
                Some((mid, media.kind(), media.direction()))
            })
            .collect();
        Ok((origins, medias))
    }
}

/// The addresses of an SDP's UDP ICE candidates, each once.
fn candidate_addrs(sdp: &str) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        let Some(candidate) = line.strip_prefix("a=") else {
            continue;
        };
        if !candidate.starts_with("candidate:") {
            continue;
        }
        let Ok(candidate) = Candidate::from_sdp_string(candidate) else {
            continue;
        };
        if candidate.proto() == str0m::net::Protocol::Udp && !addrs.contains(&candidate.addr()) {
            addrs.push(candidate.addr());
        }
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_udp_candidates_are_read_once_each() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 108\r\n\
                   a=candidate:1 1 udp 2130706175 10.0.0.1 5000 typ host\r\n\
                   a=candidate:2 1 tcp 2130706175 10.0.0.1 5001 typ host\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=candidate:1 1 udp 2130706175 10.0.0.1 5000 typ host\r\n\
                   a=candidate:bad\r\n";
        assert_eq!(
            candidate_addrs(sdp),
            ["10.0.0.1:5000".parse::<SocketAddr>().unwrap()]
        );
    }
}
