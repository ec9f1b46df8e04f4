//! The player's audio jitter buffer fed arbitrary packet sequences: reordered, lost, duplicated, late, jumping,
//! with timestamps that do or do not follow, and time passing. The invariants are checked by
//! `zego_express::fuzzing::run_audio` after every step.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zego_express::fuzzing::{run_audio, AudioStep};

#[derive(Arbitrary, Debug)]
struct Input {
    first_seq: u16,
    first_timestamp: u32,
    steps: Vec<StepIn>,
}

#[derive(Arbitrary, Debug)]
enum StepIn {
    Packet {
        /// Relative to the previous packet: reordering, loss, duplicates and jumps.
        seq_step: i16,
        /// 20 ms frames after the previous packet's, or any timestamp.
        timestamp: Timestamp,
    },
    /// Milliseconds.
    Wait(u16),
}

#[derive(Arbitrary, Debug)]
enum Timestamp {
    Frames(i8),
    Any(u32),
}

fuzz_target!(|input: Input| {
    let mut seq = input.first_seq;
    let mut timestamp = input.first_timestamp;
    let steps: Vec<AudioStep> = input
        .steps
        .iter()
        .take(4096)
        .map(|s| match s {
            StepIn::Packet {
                seq_step,
                timestamp: ts,
            } => {
                seq = seq.wrapping_add(*seq_step as u16);
                timestamp = match ts {
                    Timestamp::Frames(n) => timestamp.wrapping_add((*n as i32 * 960) as u32),
                    Timestamp::Any(t) => *t,
                };
                AudioStep::Packet { seq, timestamp }
            }
            StepIn::Wait(ms) => AudioStep::Wait(Duration::from_millis(u64::from(*ms))),
        })
        .collect();
    run_audio(&steps);
});
