//! The playing process: records what a viewer sees and hears — when each frame was rendered and what capture
//! time its pixels carry, when audio arrived and when its time marks were heard — and times the way to the first
//! rendered frame of every `start_playing`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use zego_express::config::{PlayerConfig, PlayerState, StreamResourceMode};
use zego_express::event::Event;
use zego_media::MarkDetector;

use super::{check, create_engine, login};
use crate::cli::RoleArgs;
use crate::cpu::round1;
use crate::proto::{self, round3, Command, PlayQualityReport, Report, WindowRecord};

#[derive(Default)]
struct Recorder {
    /// Some while a measurement window is open.
    window: Option<WindowRecord>,
    /// When `start_playing` was last called; the steps of that play are timed from here.
    play_started: Option<Instant>,
    /// The first rendered frame of the current play has been reported.
    rendered: bool,
    state: i32,
    /// Finds the synthetic microphone's time marks in the played sound; a new one per play.
    marks: Option<MarkDetector>,
}

pub fn run(args: &RoleArgs) -> Result<(), String> {
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let stream_id = args.stream.clone();
    let rec = recorder.clone();
    let engine = create_engine(args, move |event| on_event(&rec, &stream_id, event))?;
    if let Err(e) = login(&engine, args, "bench-player") {
        engine.destroy();
        return Err(e);
    }
    let config = PlayerConfig {
        resource_mode: StreamResourceMode::OnlyL3,
    };

    for command in proto::commands() {
        match command {
            Command::Play => {
                // Timed from just before the call: the call itself is part of what the viewer waits for.
                {
                    let mut rec = recorder.lock();
                    rec.play_started = Some(Instant::now());
                    rec.rendered = false;
                    rec.marks = None;
                }
                match engine.start_playing(&args.stream, config) {
                    Ok(()) => proto::send(&Report::PlayCalled {
                        at_us: proto::now_us(),
                    }),
                    Err(code) => check("start_playing", Err(code)),
                }
            }
            Command::StopPlay => {
                recorder.lock().play_started = None;
                check("stop_playing", engine.stop_playing(&args.stream));
            }
            Command::StartWindow => {
                recorder.lock().window = Some(WindowRecord {
                    start_us: proto::now_us(),
                    frames: Vec::with_capacity(4096),
                    audio: Vec::with_capacity(8192),
                    ..WindowRecord::default()
                });
            }
            Command::EndWindow => {
                let record = {
                    let mut rec = recorder.lock();
                    let state = rec.state;
                    rec.window.take().map(|mut w| {
                        w.end_us = proto::now_us();
                        w.final_state = state;
                        w
                    })
                };
                proto::send(&Report::Window(Box::new(record.unwrap_or_default())));
            }
            Command::Quit => break,
            other => tracing::warn!(?other, "not a player command"),
        }
    }
    check("logout_room", engine.logout_room(None));
    engine.destroy();
    proto::send(&Report::Done);
    Ok(())
}

/// Below -50 dBFS RMS: the synthetic microphone's tone is far above it.
fn is_silent(samples: &[i16]) -> bool {
    if samples.is_empty() {
        return true;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len() as f64).sqrt() < 32768.0 * 10f64.powf(-50.0 / 20.0)
}

fn on_event(recorder: &Mutex<Recorder>, stream_id: &str, event: &Event) {
    match event {
        Event::RemoteVideoFrame {
            stream_id: id,
            frame,
        } if id == stream_id => {
            let now = proto::now_us();
            if let Some(window) = recorder.lock().window.as_mut() {
                window
                    .frames
                    .push([now, frame.capture_time_us, frame.frame_number]);
            }
        }
        Event::RemoteAudioFrame {
            stream_id: id,
            frame,
        } if id == stream_id => {
            let now = proto::now_us();
            let per_channel = frame.samples.len() as u64 / u64::from(frame.channels.max(1));
            let duration_us = per_channel * 1_000_000 / u64::from(frame.sample_rate.max(1));
            let mut flags = 0;
            if frame.concealed {
                flags |= proto::AUDIO_CONCEALED;
            }
            if is_silent(&frame.samples) {
                flags |= proto::AUDIO_SILENT;
            }
            let mut rec = recorder.lock();
            let rate = frame.sample_rate.max(1);
            let mark = rec
                .marks
                .get_or_insert_with(|| MarkDetector::new(rate))
                .push(&frame.samples, frame.channels, frame.concealed)
                // The chunk plays from now on, right after the ones before it: a sample `ago` frames before its end
                // is heard then.
                .map(|ago| (now + duration_us).saturating_sub(ago * 1_000_000 / u64::from(rate)));
            if let Some(window) = rec.window.as_mut() {
                window.audio.push([now, duration_us, flags]);
                if let Some(waited) = frame.buffered {
                    window.audio_buffered_us.push(waited.as_micros() as u64);
                }
                window.audio_marks_us.extend(mark);
            }
        }
        Event::PlayerRenderVideoFirstFrame { stream_id: id } if id == stream_id => {
            let now = proto::now_us();
            let since_play = {
                let mut rec = recorder.lock();
                let first = !std::mem::replace(&mut rec.rendered, true);
                rec.play_started.filter(|_| first).map(|t| t.elapsed())
            };
            if let Some(since_play) = since_play {
                proto::send(&Report::FirstFrame {
                    at_us: now,
                    since_play_ms: ms(since_play),
                });
            }
        }
        Event::PlayerRecvVideoFirstFrame { stream_id: id } if id == stream_id => {
            milestone(recorder, "video_received");
        }
        Event::PlayerStateUpdate {
            stream_id: id,
            state,
            error_code,
            ..
        } if id == stream_id => {
            recorder.lock().state = state.value();
            proto::send(&Report::PlayerState {
                at_us: proto::now_us(),
                state: state.value(),
                error_code: *error_code,
            });
            if *state == PlayerState::Playing {
                milestone(recorder, "playing");
            }
        }
        Event::PlayerQualityUpdate {
            stream_id: id,
            quality,
        } if id == stream_id => proto::send(&Report::PlayerQuality {
            at_us: proto::now_us(),
            quality: PlayQualityReport {
                video_recv_fps: round1(quality.video_recv_fps),
                video_decode_fps: round1(quality.video_decode_fps),
                video_render_fps: round1(quality.video_render_fps),
                video_kbps: round1(quality.video_kbps),
                video_break_rate: round3(quality.video_break_rate),
                audio_recv_fps: round1(quality.audio_recv_fps),
                rtt_ms: quality.rtt_ms,
                packet_lost_rate: round3(quality.packet_lost_rate),
                delay_ms: quality.delay_ms,
                level: quality.level,
            },
        }),
        _ => {}
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A step of the current play on its way to the first rendered frame, timed from `start_playing`.
fn milestone(recorder: &Mutex<Recorder>, stage: &'static str) {
    let since_play = recorder.lock().play_started.map(|t| t.elapsed());
    if let Some(since_play) = since_play {
        proto::send(&Report::PlayMilestone {
            stage: stage.to_owned(),
            since_play_ms: ms(since_play),
        });
    }
}
