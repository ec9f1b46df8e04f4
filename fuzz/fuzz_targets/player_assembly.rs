//! The player's video receive path (frame assembler, NACK requester, playout) fed arbitrary packet sequences of
//! H.264 payloads: reordered, lost, duplicated, late, with time passing and the decoder asking for keyframes. The
//! invariants are checked by `zego_express::fuzzing::run` after every step.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zego_express::fuzzing::{run, Step};

#[derive(Arbitrary, Debug)]
struct Input {
    max_wait_ms: u16,
    first_seq: u16,
    steps: Vec<StepIn>,
}

#[derive(Arbitrary, Debug)]
enum StepIn {
    Packet {
        /// Relative to the previous packet: reordering, loss, duplicates and jumps.
        seq_step: i16,
        /// Frames after the previous packet's (0: same frame).
        frame_step: i8,
        marker: bool,
        nal: Nal,
    },
    Wait(u16),
    Rtt(u16),
    MaxWait(u16),
    DecoderNeedsKeyframe,
}

/// RTP payloads of the kinds an H.264 sender makes (RFC 6184), and anything else.
#[derive(Arbitrary, Debug)]
enum Nal {
    Sps,
    Pps,
    Idr(u8),
    Slice(u8),
    /// SPS, PPS and an IDR slice aggregated.
    StapA {
        sps_first: bool,
        idr_len: u8,
    },
    FuA {
        start: bool,
        end: bool,
        idr: bool,
        len: u8,
    },
    Raw(Vec<u8>),
}

impl Nal {
    fn bytes(&self) -> Vec<u8> {
        const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0];
        const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let body = |head: u8, len: u8| {
            let mut v = vec![head];
            v.extend((0..=len).map(|i| i.wrapping_mul(31) | 1));
            v
        };
        match self {
            Nal::Sps => SPS.to_vec(),
            Nal::Pps => PPS.to_vec(),
            Nal::Idr(len) => body(0x65, *len),
            Nal::Slice(len) => body(0x41, *len),
            Nal::StapA { sps_first, idr_len } => {
                let idr = body(0x65, *idr_len);
                let mut parts: Vec<&[u8]> = vec![SPS, PPS, &idr];
                if !sps_first {
                    parts.swap(0, 1);
                }
                let mut v = vec![0x78];
                for p in parts {
                    v.extend_from_slice(&(p.len() as u16).to_be_bytes());
                    v.extend_from_slice(p);
                }
                v
            }
            Nal::FuA {
                start,
                end,
                idr,
                len,
            } => {
                let kind = if *idr { 5 } else { 1 };
                let mut v = vec![0x7c, u8::from(*start) << 7 | u8::from(*end) << 6 | kind];
                v.extend((0..=*len).map(|i| i ^ 0x5a));
                v
            }
            Nal::Raw(bytes) => bytes.clone(),
        }
    }
}

fuzz_target!(|input: Input| {
    let mut seq = input.first_seq;
    let mut timestamp = 0u32;
    let steps: Vec<Step> = input
        .steps
        .iter()
        .take(4096)
        .map(|s| match s {
            StepIn::Packet {
                seq_step,
                frame_step,
                marker,
                nal,
            } => {
                seq = seq.wrapping_add_signed(*seq_step);
                timestamp = timestamp.wrapping_add_signed(i32::from(*frame_step) * 3000);
                Step::Packet {
                    seq,
                    timestamp,
                    marker: *marker,
                    payload: nal.bytes(),
                }
            }
            StepIn::Wait(ms) => Step::Wait(Duration::from_millis(u64::from(*ms))),
            StepIn::Rtt(ms) => Step::Rtt(Duration::from_millis(u64::from(*ms))),
            StepIn::MaxWait(ms) => Step::MaxWait(Duration::from_millis(u64::from(*ms))),
            StepIn::DecoderNeedsKeyframe => Step::DecoderNeedsKeyframe,
        })
        .collect();
    run(Duration::from_millis(u64::from(input.max_wait_ms)), &steps);
});
