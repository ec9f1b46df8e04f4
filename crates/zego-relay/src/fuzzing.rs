//! The relay's parsers as plain functions for the fuzz targets (`fuzz/`): how a datagram is read before str0m
//! sees it, the publisher's repair stream, and the SDP the relay reads and edits. Built only with the `fuzzing`
//! feature.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::media::Mid;
use str0m::net::DatagramRecv;

use crate::fec::{FecReceiver, MediaPacket};
use crate::fec_sdp;
use crate::session::{self, RoleKind, RtcEnv, Session};
use crate::shard;

/// What the I/O loop makes of one datagram before str0m: whether str0m takes it at all (STUN is parsed here),
/// and whether the relay treats it as RTP rather than RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramRead {
    pub taken: bool,
    pub rtp: bool,
}

pub fn read_datagram(datagram: &[u8]) -> DatagramRead {
    DatagramRead {
        taken: DatagramRecv::try_from(datagram).is_ok(),
        rtp: session::is_rtp(datagram),
    }
}

/// The I/O thread a STUN request names in the relay's ICE ufrag (read for any datagram from an address no thread
/// knows), and the most there can be.
pub fn shard_of_stun(datagram: &[u8]) -> (Option<usize>, usize) {
    (shard::shard_of_stun(datagram), shard::MAX_SHARDS)
}

/// A media packet rebuilt from a publisher's repair stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub ssrc: u32,
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// A publisher's repair stream as the relay receives it.
pub struct RepairReceiver(FecReceiver);

impl RepairReceiver {
    pub fn new(media_ssrc: u32, media_pt: u8, repair_ssrc: u32, repair_pt: u8) -> Self {
        RepairReceiver(FecReceiver::new(
            media_ssrc,
            media_pt,
            repair_ssrc,
            repair_pt,
        ))
    }

    /// A media packet str0m delivered (extended sequence number): whether to forward it, and what it let rebuild.
    pub fn on_media(
        &mut self,
        ssrc: u32,
        seq: u64,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        arrival: Instant,
    ) -> (bool, Vec<Rebuilt>) {
        let packet = MediaPacket {
            ssrc,
            seq,
            timestamp,
            marker,
            arrival,
            ext: Default::default(),
            payload: Arc::from(payload),
        };
        let mut rebuilt = Vec::new();
        let forward = self.0.on_media(&packet, &mut rebuilt);
        (forward, rebuilt.into_iter().map(Rebuilt::from).collect())
    }

    /// A repair packet's payload: what it let rebuild.
    pub fn on_repair(&mut self, payload: &[u8], now: Instant) -> Vec<Rebuilt> {
        let mut rebuilt = Vec::new();
        self.0.on_repair(payload, now, &mut rebuilt);
        rebuilt.into_iter().map(Rebuilt::from).collect()
    }

    pub fn rebuilt_count(&self) -> u64 {
        self.0.rebuilt_count
    }
}

impl From<MediaPacket> for Rebuilt {
    fn from(p: MediaPacket) -> Self {
        Rebuilt {
            ssrc: p.ssrc,
            seq: p.seq,
            timestamp: p.timestamp,
            marker: p.marker,
            payload: p.payload.to_vec(),
        }
    }
}

/// The repair format's payload type the relay reads from an offer's video section.
pub fn offered_fec_pt(offer_sdp: &str) -> Option<u8> {
    fec_sdp::offered_pt(offer_sdp)
}

/// The media and repair SSRCs of a publisher's `a=ssrc-group:FEC-FR`, as the relay reads them from its offer.
pub fn offered_fec_group(offer_sdp: &str) -> Option<(u32, u32)> {
    fec_sdp::offered_group(offer_sdp)
}

/// The answer with the repair format added to the section of `mid` (and the repair stream the relay sends).
pub fn announce_fec(answer: &str, mid: &str, pt: u8, sent: Option<(u32, u32)>) -> String {
    fec_sdp::announce(
        answer,
        Mid::from(mid),
        pt.into(),
        sent.map(|(media, repair)| (media.into(), repair.into())),
    )
}

/// Answers an offer as the relay does for a publisher or a player: the SDP answer, or why the offer was refused.
pub fn accept(publisher: bool, offer_sdp: &str) -> Result<String, String> {
    // One certificate for every call, as the relay has: making one per offer would dwarf the work measured.
    static ENV: OnceLock<Result<RtcEnv, String>> = OnceLock::new();
    let env = ENV
        .get_or_init(|| RtcEnv::new(SocketAddr::from(([127, 0, 0, 1], 5004)), 0))
        .as_ref()
        .map_err(Clone::clone)?;
    let role = if publisher {
        RoleKind::Publisher
    } else {
        RoleKind::Player
    };
    Session::accept(1, role, "s", offer_sdp, env, Instant::now())
        .map(|(_, answer)| answer)
        .map_err(|e| e.to_string())
}

/// Whether str0m reads this as an SDP answer, as a peer built on it would.
pub fn answer_parses(answer: &str) -> bool {
    str0m::change::SdpAnswer::from_sdp_string(answer).is_ok()
}
