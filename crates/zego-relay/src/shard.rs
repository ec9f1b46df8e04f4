//! The relay on several I/O threads ("shards"), each with its own socket on the one UDP port and its own [`Sfu`]
//! core, and what their cores tell each other.
//!
//! - **Sessions** live on the shard that created them; a session id names its shard ([`shard_of_session`]).
//! - **Streams**: a stream's publisher and its route state (keyframe requests, the players' estimates) live on the
//!   stream's *origin* shard, fixed by its key ([`origin_of`]). Players go to the least loaded shard. A shard with
//!   players of a stream published elsewhere keeps a *mirror* route: it subscribes to the origin, which sends it
//!   every publisher packet once, and it writes them into its own players. Keyframe wishes and estimates go back.
//! - **Datagrams**: the kernel spreads peers over the sockets by their address (SO_REUSEPORT). A shard that reads a
//!   datagram of another shard's session hands it over: STUN names the session's shard in the relay's ICE ufrag
//!   ([`ufrag_prefix`]), and later datagrams from that address follow it. A pull from another relay is not on the
//!   shared port: it has a socket of its own on its shard (see `pull`).
//!
//! Nothing on the forwarding path takes a lock: shards share only these messages, over channels.
//!
//! [`Sfu`]: crate::sfu::Sfu

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::MediaKind;

use crate::fec::MediaPacket;
use crate::{SessionId, StreamKey};

pub(crate) type ShardId = usize;

/// A packet one shard handed to another this long ago is dropped: under overload a shard falls behind and drops,
/// as a full socket buffer does, instead of delaying everything it forwards ever more. Well above a burst's queue: a
/// keyframe of 40 packets for 500 players is 150 ms of one thread's work at 7.5 µs a packet.
pub(crate) const MAX_HANDOVER_DELAY: Duration = Duration::from_millis(500);

/// Session ids carry their shard in their low bits.
const SHARD_BITS: u32 = 8;
/// The most I/O threads a relay runs.
pub(crate) const MAX_SHARDS: usize = 1 << SHARD_BITS;

/// Where one core sits among the relay's shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub shard: ShardId,
    pub shards: usize,
}

impl Placement {
    /// A relay of one I/O thread.
    #[cfg(test)]
    pub const SINGLE: Placement = Placement {
        shard: 0,
        shards: 1,
    };

    /// The id of this shard's `n`th session.
    pub fn session_id(&self, n: u64) -> SessionId {
        (n << SHARD_BITS) | self.shard as u64
    }

    pub fn origin_of(&self, key: &StreamKey) -> ShardId {
        origin_of(key, self.shards)
    }
}

/// The shard a session lives on.
pub(crate) fn shard_of_session(id: SessionId) -> ShardId {
    (id & (MAX_SHARDS as u64 - 1)) as ShardId
}

/// The shard of a stream's publisher and route: the same for every shard and every call, so no shard needs to ask.
pub(crate) fn origin_of(key: &StreamKey, shards: usize) -> ShardId {
    if shards <= 1 {
        return 0;
    }
    // SipHash with fixed keys: stable within the process, which is all the shards share.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % shards as u64) as ShardId
}

/// The start of every ICE ufrag the shard gives out: its number, in two hex digits.
pub(crate) fn ufrag_prefix(shard: ShardId) -> String {
    format!("{shard:02x}")
}

/// The shard named by a STUN message's USERNAME (`<relay's ufrag>:<peer's ufrag>`), if the datagram is one: by
/// its first byte, as str0m demultiplexes (RFC 7983), and then by its parse.
pub(crate) fn shard_of_stun(datagram: &[u8]) -> Option<ShardId> {
    if datagram.len() < 20 || datagram[0] >= 2 {
        return None;
    }
    let message = is::stun::StunMessage::parse(datagram).ok()?;
    let (local, _) = message.split_username()?;
    let prefix = local.get(..2)?;
    usize::from_str_radix(prefix, 16).ok()
}

/// What one shard's core tells another's.
// Media is nearly every message: boxing it would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum ShardMsg {
    /// A datagram the kernel gave to the sender for a session of the receiver.
    Datagram {
        data: Vec<u8>,
        source: SocketAddr,
        at: Instant,
    },
    /// The sender's session with these addresses ended: datagrams from them are no longer its.
    Forget {
        shard: ShardId,
        addrs: Vec<SocketAddr>,
    },
    /// Mirror → origin: the sender has players of the stream (its route `route`), or has none any more.
    Subscribe {
        key: StreamKey,
        shard: ShardId,
        route: u64,
        on: bool,
    },
    /// Origin → mirror: the stream's publisher is now this session, or it has none. The first answer to a
    /// subscription; its cached keyframe is sent after it.
    Publisher {
        route: u64,
        publisher: Option<SessionId>,
    },
    /// Origin → mirror: a publisher packet, sent at `at`.
    Media {
        route: u64,
        from: SessionId,
        kind: MediaKind,
        packet: MediaPacket,
        opens_keyframe: bool,
        at: Instant,
    },
    /// Mirror → origin: its players want a keyframe.
    Keyframe { key: StreamKey, want: KeyframeWant },
    /// Mirror → origin: one of its players' downlink estimate (bits per second) and when it came.
    Estimate {
        key: StreamKey,
        player: SessionId,
        bps: u64,
        at: Instant,
    },
}

/// Why players want a keyframe, which decides how the origin's throttle takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyframeWant {
    /// A player's decoder asks (PLI/FIR).
    Now,
    /// A player joins, or went on from the cached keyframe.
    Join,
    /// A player connected without a keyframe: unless a request is on its way already.
    JoinUnlessInFlight,
    /// Players still wait: ask again when the last request is overdue.
    Retry,
}

/// Sessions per shard, for placing players where the fewest are.
#[derive(Debug)]
pub(crate) struct ShardLoad {
    sessions: Vec<AtomicU64>,
}

impl ShardLoad {
    pub fn new(shards: usize) -> Arc<ShardLoad> {
        Arc::new(ShardLoad {
            sessions: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub fn set(&self, shard: ShardId, sessions: u64) {
        if let Some(n) = self.sessions.get(shard) {
            n.store(sessions, Ordering::Relaxed);
        }
    }

    /// The shard with the fewest sessions; ties go to `preferred` (the stream's origin: no hop between shards).
    pub fn least_loaded(&self, preferred: ShardId) -> ShardId {
        let load = |s: ShardId| self.sessions[s].load(Ordering::Relaxed);
        (0..self.sessions.len()).fold(
            preferred,
            |best, s| {
                if load(s) < load(best) {
                    s
                } else {
                    best
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_name_their_shard() {
        for shard in [0, 1, 7, MAX_SHARDS - 1] {
            let place = Placement { shard, shards: 8 };
            for n in [1, 2, 1 << 40] {
                assert_eq!(shard_of_session(place.session_id(n)), shard);
            }
        }
        assert_ne!(
            Placement::SINGLE.session_id(1),
            Placement::SINGLE.session_id(2)
        );
    }

    #[test]
    fn a_streams_origin_is_stable_and_streams_spread() {
        let key = |n: u32| StreamKey {
            app_id: 1,
            stream_id: format!("s{n}"),
        };
        assert_eq!(origin_of(&key(1), 1), 0);
        let mut per_shard = [0; 4];
        for n in 0..400 {
            let origin = origin_of(&key(n), 4);
            assert_eq!(origin, origin_of(&key(n), 4));
            per_shard[origin] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 60), "{per_shard:?}");
    }

    #[test]
    fn the_least_loaded_shard_takes_the_next_player() {
        let load = ShardLoad::new(3);
        load.set(0, 5);
        load.set(1, 2);
        load.set(2, 2);
        assert_eq!(load.least_loaded(0), 1);
        assert_eq!(load.least_loaded(2), 2, "a tie goes to the preferred");
    }

    #[test]
    fn a_stun_request_names_the_shard_of_its_session() {
        let request = is::stun::StunMessage::binding_request(
            "0aXyZw:peer",
            is::stun::TransId::new(),
            false,
            0,
            0,
            false,
        );
        let mut buf = vec![0u8; 512];
        // The integrity is not what names the shard.
        let n = request
            .to_bytes(Some(b"pass"), &mut buf, |_, _| [0; 20])
            .unwrap();
        assert_eq!(shard_of_stun(&buf[..n]), Some(10));
        assert_eq!(shard_of_stun(&[0x80, 96, 0, 1]), None, "RTP");
        // The same bytes with a first byte str0m does not take for STUN (the STUN parser alone would read them).
        let mut not_stun = buf[..n].to_vec();
        not_stun[0] = 0x40;
        assert_eq!(shard_of_stun(&not_stun), None);
    }
}
