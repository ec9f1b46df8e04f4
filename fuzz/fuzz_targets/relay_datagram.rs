//! The relay's reading of a datagram before str0m (STUN parsed, DTLS / RTP / RTCP told apart by RFC 7983's first
//! byte ranges, RTP told from RTCP, the I/O thread a STUN request names) and its repair stream: a publisher's media
//! and repair packets through the relay's FEC receiver, both as coded by the real coder over a lossy path (every
//! rebuilt packet must equal the lost original) and as arbitrary hostile packets (rebuilt packets stay on the media
//! SSRC and within bounds).
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zego_fec::format::{MAX_SHARD_LEN, SHARD_HEADER_LEN};
use zego_fec::{BlockCoder, Media, ProtectionLevel};
use zego_relay::fuzzing::{read_datagram, shard_of_stun, Rebuilt, RepairReceiver};

const MEDIA_SSRC: u32 = 0x1111;
const REPAIR_SSRC: u32 = 0x2222;
const MEDIA_PT: u8 = 108;
const REPAIR_PT: u8 = 118;
/// Rebuilt sequence numbers the relay remembers (to drop their retransmissions).
const REMEMBERED_REBUILT: usize = 512;

#[derive(Arbitrary, Debug)]
enum Input {
    Datagrams(Vec<Vec<u8>>),
    Coded(Coded),
    Hostile(Vec<Hostile>),
}

/// A publisher's video coded by the real coder and sent over a lossy path.
#[derive(Arbitrary, Debug)]
struct Coded {
    first_seq: u16,
    /// Loss the coder protects against, in percent.
    loss: u8,
    packets: Vec<PacketIn>,
    /// Which packets on the wire (media and repair, in sending order) are lost, repeated.
    lost: Vec<bool>,
}

#[derive(Arbitrary, Debug)]
struct PacketIn {
    len: u16,
    fill: u8,
    marker: bool,
    new_frame: bool,
    /// The sender skips this packet (it closes the block, unprotected).
    unprotected: bool,
}

#[derive(Arbitrary, Debug)]
enum Hostile {
    Media {
        seq_step: i8,
        timestamp: u32,
        marker: bool,
        other_ssrc: bool,
        payload: Vec<u8>,
    },
    /// A repair payload with a well-formed header (version 1) and arbitrary fields.
    Repair {
        base_step: i16,
        media_count: u8,
        repair_count: u8,
        index: u8,
        shard_len: u16,
        shard: Vec<u8>,
    },
    RawRepair(Vec<u8>),
    Wait(u8),
}

fuzz_target!(|input: Input| match input {
    Input::Datagrams(datagrams) => datagrams.iter().for_each(|d| datagram(d)),
    Input::Coded(coded) => coded_path(&coded),
    Input::Hostile(ops) => hostile(&ops),
});

fn datagram(data: &[u8]) {
    let read = read_datagram(data);
    if read.taken {
        let b = data[0];
        let stun = b < 2 && data.len() >= 20;
        assert!(
            stun || (20..64).contains(&b) || (128..192).contains(&b),
            "took a datagram starting with {b}"
        );
    }
    if read.rtp {
        assert!(data.len() >= 12 && data[0] >> 6 == 2);
        assert!(!(64..96).contains(&(data[1] & 0x7F)), "RTCP read as RTP");
    }
    if let (Some(shard), max) = shard_of_stun(data) {
        assert!(shard < max, "named I/O thread {shard}");
        // Only what str0m takes for STUN (RFC 7983's first byte, a 20-byte header).
        assert!(
            data.len() >= 20 && data[0] < 2,
            "a thread named by what is not STUN"
        );
    }
}

fn coded_path(input: &Coded) {
    let start = Instant::now();
    let mut coder = BlockCoder::new(ProtectionLevel::default());
    let loss = f32::from(input.loss.min(60)) / 100.0;
    for n in 0..2 {
        coder
            .level
            .report(start + Duration::from_secs(n), Some(loss), None);
    }
    let now = start + Duration::from_secs(2);
    let mut receiver = RepairReceiver::new(MEDIA_SSRC, MEDIA_PT, REPAIR_SSRC, REPAIR_PT);
    let mut sent: BTreeMap<u64, Media> = BTreeMap::new();
    let mut delivered: BTreeSet<u64> = BTreeSet::new();
    let mut rebuilt_seqs: HashSet<u64> = HashSet::new();
    let mut wire = 0usize;
    let mut is_lost = || {
        let lost = !input.lost.is_empty() && input.lost[wire % input.lost.len()];
        wire += 1;
        lost
    };
    let mut timestamp = 0u32;
    let mut check =
        |rebuilt: Vec<Rebuilt>, sent: &BTreeMap<u64, Media>, delivered: &BTreeSet<u64>| {
            for r in rebuilt {
                let original = sent.get(&r.seq).expect("rebuilt a packet never sent");
                assert!(!delivered.contains(&r.seq), "rebuilt a packet that arrived");
                assert!(rebuilt_seqs.insert(r.seq), "rebuilt a packet twice");
                assert_eq!(r.ssrc, MEDIA_SSRC);
                assert_eq!(
                    (r.timestamp, r.marker, &r.payload[..]),
                    (original.timestamp, original.marker, &original.payload[..]),
                    "rebuilt packet differs from the original"
                );
            }
        };
    // Few packets: sequence numbers stay unique in 16 bits.
    for (i, p) in input.packets.iter().take(4096).enumerate() {
        let seq = (1u64 << 32) + u64::from(input.first_seq) + i as u64;
        if p.new_frame {
            timestamp = timestamp.wrapping_add(3000);
        }
        let media = Media {
            seq: seq as u16,
            payload_type: MEDIA_PT,
            marker: p.marker,
            timestamp,
            payload: Bytes::from(vec![p.fill; usize::from(p.len) % 1300]),
        };
        let repairs = coder.on_media(seq, (!p.unprotected).then(|| media.clone()));
        sent.insert(seq, media.clone());
        if !is_lost() {
            let (forward, rebuilt) = receiver.on_media(
                MEDIA_SSRC,
                seq,
                timestamp,
                media.marker,
                &media.payload,
                now,
            );
            delivered.insert(seq);
            check(rebuilt, &sent, &delivered);
            let _ = forward;
        }
        for repair in repairs {
            if !is_lost() {
                let rebuilt = receiver.on_repair(&repair.payload, now);
                check(rebuilt, &sent, &delivered);
            }
        }
    }
}

fn hostile(ops: &[Hostile]) {
    let mut now = Instant::now();
    let mut receiver = RepairReceiver::new(MEDIA_SSRC, MEDIA_PT, REPAIR_SSRC, REPAIR_PT);
    let mut seq: u64 = 1 << 32;
    let mut recent: VecDeque<u64> = VecDeque::new();
    let mut total = 0u64;
    for op in ops.iter().take(2048) {
        let rebuilt = match op {
            Hostile::Media {
                seq_step,
                timestamp,
                marker,
                other_ssrc,
                payload,
            } => {
                seq = seq.saturating_add_signed(i64::from(*seq_step));
                let ssrc = if *other_ssrc { 7 } else { MEDIA_SSRC };
                receiver
                    .on_media(ssrc, seq, *timestamp, *marker, payload, now)
                    .1
            }
            Hostile::Repair {
                base_step,
                media_count,
                repair_count,
                index,
                shard_len,
                shard,
            } => {
                let base = seq.wrapping_add_signed(i64::from(*base_step)) as u16;
                let mut payload = vec![1, *media_count, *repair_count, *index];
                payload.extend_from_slice(&base.to_be_bytes());
                payload.extend_from_slice(&shard_len.to_be_bytes());
                let len = usize::from(*shard_len).min(MAX_SHARD_LEN);
                payload.extend(shard.iter().copied().cycle().take(len));
                receiver.on_repair(&payload, now)
            }
            Hostile::RawRepair(payload) => receiver.on_repair(payload, now),
            Hostile::Wait(s) => {
                now += Duration::from_millis(u64::from(*s) * 50);
                Vec::new()
            }
        };
        for r in rebuilt {
            total += 1;
            assert_eq!(r.ssrc, MEDIA_SSRC);
            assert!(r.payload.len() <= MAX_SHARD_LEN - SHARD_HEADER_LEN);
            assert!(!recent.contains(&r.seq), "rebuilt {} twice", r.seq);
            if recent.len() == REMEMBERED_REBUILT {
                recent.pop_front();
            }
            recent.push_back(r.seq);
        }
        assert_eq!(receiver.rebuilt_count(), total);
    }
}
