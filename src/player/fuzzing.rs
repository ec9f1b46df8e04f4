//! The video receive path without I/O (frame assembler, NACK requester, playout) driven by a list of steps, with
//! the invariants it keeps checked after each one. The fuzz targets (`fuzz/`) feed it arbitrary packet sequences;
//! built only with the `fuzzing` feature.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::receive::assembler::{Assembled, FrameAssembler, KEYFRAME_REQUEST_INTERVAL};
use super::render::Playout;

/// Most sequence numbers one NACK may carry: every missing packet the requester tracks, and the probe before the
/// first packet and the tail after the newest.
const MAX_NACKED: usize = 1000 + 4 + 1;
/// The playout stage's cap on its target delay.
const MAX_TARGET: Duration = Duration::from_millis(400);
/// The playout stage never holds a frame longer than this after its arrival: its target delay plus the transit
/// above the fastest recent frame that it tolerates before starting over (and a millisecond of rounding).
const MAX_HOLD: Duration = Duration::from_millis(400 + 3000 + 1);

/// One thing that happens to a played video track.
#[derive(Debug, Clone)]
pub enum Step {
    /// An RTP packet of the video track arrives.
    Packet {
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: Vec<u8>,
    },
    /// Time passes, then the owner polls (as the player does at [`FrameAssembler::deadline`]).
    Wait(Duration),
    /// A new round-trip estimate.
    Rtt(Duration),
    /// A new bound on how long a gap may block a frame.
    MaxWait(Duration),
    /// The decoder could not use a frame.
    DecoderNeedsKeyframe,
}

/// What a run produced, for the caller's own checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub frames: u64,
    pub keyframes: u64,
    pub keyframe_requests: u64,
    pub nacked: u64,
}

/// Runs the steps through a fresh assembler and playout stage, asserting after each step that:
/// every frame is non-empty Annex-B and the first one after a (re)start is a keyframe; keyframe requests keep
/// their interval; NACKs are bounded; the assembler's statistics count what it returned; the next deadline lies
/// in the future once polled (as the owner polls at once a deadline a new bound made due); and playout shows each
/// frame no earlier than its arrival and not far after it.
pub fn run(max_wait: Duration, steps: &[Step]) -> Outcome {
    let start = Instant::now();
    let mut now = start;
    let mut assembler = FrameAssembler::new(max_wait);
    let mut playout = Playout::default();
    let mut outcome = Outcome::default();
    let mut need_keyframe = true;
    let mut last_request: Option<Instant> = None;
    let mut pushed = 0usize;
    let mut framed_packets = 0usize;

    for step in steps {
        let mut out = match step {
            Step::Packet {
                seq,
                timestamp,
                marker,
                payload,
            } => {
                pushed += 1;
                assembler.push(*seq, *timestamp, *marker, Bytes::from(payload.clone()), now)
            }
            Step::Wait(d) => {
                now += *d;
                assembler.poll(now)
            }
            Step::Rtt(rtt) => {
                assembler.set_rtt(*rtt);
                Vec::new()
            }
            Step::MaxWait(d) => {
                assembler.set_max_wait(*d);
                Vec::new()
            }
            Step::DecoderNeedsKeyframe => {
                need_keyframe = true;
                if assembler.decoder_needs_keyframe(now) {
                    vec![Assembled::RequestKeyframe]
                } else {
                    Vec::new()
                }
            }
        };
        // A new bound may end a wait at once: the owner polls whenever the deadline it reads is due.
        if !matches!(step, Step::Packet { .. } | Step::Wait(_))
            && assembler.deadline().is_some_and(|d| d <= now)
        {
            out.extend(assembler.poll(now));
        }
        for item in out {
            match item {
                Assembled::Frame(unit) => {
                    assert!(!unit.data.is_empty(), "an empty access unit");
                    assert!(unit.packets > 0, "a frame of no packets");
                    assert_eq!(unit.completed_at, now, "a frame completed at another time");
                    assert!(
                        !need_keyframe || unit.keyframe,
                        "a delta frame where only a keyframe can be decoded"
                    );
                    need_keyframe = false;
                    outcome.frames += 1;
                    outcome.keyframes += u64::from(unit.keyframe);
                    framed_packets += unit.packets;
                    assert!(
                        framed_packets <= pushed,
                        "frames of more packets than arrived"
                    );
                    let show_at = playout.schedule(unit.rtp_timestamp, unit.completed_at);
                    assert!(
                        show_at >= unit.completed_at,
                        "a frame shown before it arrived"
                    );
                    assert!(
                        show_at <= unit.completed_at + MAX_HOLD,
                        "a frame held {:?}",
                        show_at - unit.completed_at
                    );
                    assert!(
                        playout.target() <= MAX_TARGET,
                        "playout target beyond its cap"
                    );
                }
                Assembled::RequestKeyframe => {
                    if let Some(last) = last_request {
                        assert!(
                            now.duration_since(last) >= KEYFRAME_REQUEST_INTERVAL,
                            "keyframe requests closer than their interval"
                        );
                    }
                    last_request = Some(now);
                    outcome.keyframe_requests += 1;
                }
                Assembled::Nack(seqs) => {
                    assert!(!seqs.is_empty(), "an empty NACK");
                    assert!(seqs.len() <= MAX_NACKED, "a NACK of {} packets", seqs.len());
                    outcome.nacked += seqs.len() as u64;
                }
            }
        }
        let stats = assembler.stats();
        assert_eq!(stats.frames, outcome.frames, "frames counted");
        assert_eq!(
            stats.keyframe_requests, outcome.keyframe_requests,
            "keyframe requests counted"
        );
        assert_eq!(assembler.nacks_sent(), outcome.nacked, "NACKs counted");
        if let Some(deadline) = assembler.deadline() {
            assert!(
                deadline > now,
                "a deadline that is already due after polling"
            );
        }
    }
    outcome
}
