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

/// One thing that happens to a played audio track.
#[derive(Debug, Clone)]
pub enum AudioStep {
    /// An Opus packet arrives (its payload is made by the harness, to tell the packets apart).
    Packet { seq: u16, timestamp: u32 },
    /// Time passes; the audio thread pulls at every deadline on the way.
    Wait(Duration),
}

/// What an audio run produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AudioOutcome {
    pub played: u64,
    pub rebuilt_or_concealed: u64,
}

/// Runs the steps through a fresh audio jitter buffer, pulling at each of its deadlines as the audio thread does,
/// and asserts that: every packet played was pushed, is played once, and after every packet played before it in
/// sequence order; a run of made-up frames without anything arriving is bounded; the next deadline lies in the
/// future once pulled; and the statistics count what was played.
pub fn run_audio(steps: &[AudioStep]) -> AudioOutcome {
    use super::jitter_buffer::{AudioJitterBuffer, Decision, MAX_EXPAND};

    let mut now = Instant::now();
    let mut buffer = AudioJitterBuffer::default();
    let mut outcome = AudioOutcome::default();
    // Push id -> its extended sequence number; the ids already played; the newest played.
    let mut played = Played::default();
    let mut made_up_run = 0u32;
    let mut next_id = 0u32;

    for step in steps {
        let until = match step {
            AudioStep::Packet { seq, timestamp } => {
                let payload = Bytes::from(next_id.to_be_bytes().to_vec());
                let restarts = buffer.stats().restarts;
                let ext = buffer.push(*seq, *timestamp, payload, now);
                if buffer.stats().restarts != restarts {
                    // A new stream: its order starts over, and nothing of the old one plays any more.
                    played = Played::default();
                }
                if let Some(ext) = ext {
                    played.pushed.insert(next_id, ext);
                }
                next_id += 1;
                made_up_run = 0;
                now
            }
            AudioStep::Wait(d) => now + *d,
        };
        while let Some(deadline) = buffer.deadline().filter(|d| *d <= until) {
            now = now.max(deadline);
            let before = buffer.stats();
            match buffer.pull(now) {
                Decision::Idle => {}
                Decision::Play(p) => {
                    played.play(&p);
                    outcome.played += 1;
                    made_up_run = 0;
                }
                Decision::Accelerate(a, b) => {
                    played.play(&a);
                    played.play(&b);
                    outcome.played += 2;
                    made_up_run = 0;
                }
                Decision::Repair(_) | Decision::Conceal => {
                    outcome.rebuilt_or_concealed += 1;
                    made_up_run += 1;
                    assert!(
                        made_up_run <= 2 * MAX_EXPAND + 2,
                        "{made_up_run} frames made up in a row with nothing arriving"
                    );
                }
            }
            let after = buffer.stats();
            assert!(after.played >= before.played, "statistics went back");
            if let Some(next) = buffer.deadline() {
                assert!(
                    next > now || buffer.stats() != before,
                    "a due deadline that does nothing"
                );
            }
            if buffer.deadline().is_some_and(|d| d <= now) && buffer.stats() == before {
                break;
            }
        }
        now = now.max(until);
        assert_eq!(
            buffer.stats().played,
            outcome.played,
            "packets played counted"
        );
    }
    outcome
}

/// The packets of one audio stream pushed (id -> extended sequence number) and played.
#[derive(Default)]
struct Played {
    pushed: std::collections::HashMap<u32, u64>,
    ids: std::collections::HashSet<u32>,
    newest: Option<u64>,
}

impl Played {
    fn play(&mut self, payload: &Bytes) {
        let id = u32::from_be_bytes(payload[..4].try_into().expect("the harness's payloads"));
        let seq = *self.pushed.get(&id).expect("a played packet was pushed");
        assert!(self.ids.insert(id), "packet {id} played twice");
        assert!(
            self.newest.is_none_or(|n| seq > n),
            "packet {seq} played after {:?}",
            self.newest
        );
        self.newest = Some(seq);
    }
}
