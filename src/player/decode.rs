//! Decode, a thread per media kind: H.264 access units to frames (with the capture stamp read back from the
//! pixels) and Opus packets to PCM on the jitter buffer's clock (with loss concealment); each goes on to render on
//! the same thread.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use zego_media::{stamp, H264Decoder, OpusDecoder};

use super::jitter_buffer::{merge, AudioJitterBuffer, Decision};
use super::receive::assembler::AccessUnit;
use super::receive::{AudioPacket, AUDIO_PLAYHEAD_SET};
use super::render::{deliver_sei, AudioOut, VideoRender};
use super::PlayerShared;
use crate::event::Event;

pub(super) const SAMPLE_RATE: u32 = 48_000;

/// The video decode thread: decodes access units in order, reads the capture stamp back from the pixels and
/// renders the frames. Ends when the reader goes away.
pub(super) fn video_thread(
    rx: mpsc::Receiver<AccessUnit>,
    shared: Arc<PlayerShared>,
    feedback: UnboundedSender<()>,
) {
    let mut decoder = match H264Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot create the H.264 decoder: {e}");
            return;
        }
    };
    let mut need_keyframe = false;
    let mut render = VideoRender::default();
    while let Ok(au) = rx.recv() {
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        let sei = zego_rtp::sei::app_data(&au.data);
        if need_keyframe && !au.keyframe {
            deliver_sei(&shared, sei);
            continue;
        }
        let decoded = match decoder.decode(&au.data) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                deliver_sei(&shared, sei);
                continue;
            }
            Err(e) => {
                deliver_sei(&shared, sei);
                tracing::debug!(stream_id = %shared.stream_id, "decode failed, waiting for a keyframe: {e}");
                need_keyframe = true;
                shared
                    .counters
                    .decode_errors
                    .fetch_add(1, Ordering::Relaxed);
                let _ = feedback.send(());
                continue;
            }
        };
        need_keyframe = false;
        let c = &shared.counters;
        c.video_frames_decoded.fetch_add(1, Ordering::Relaxed);
        let mut frame = decoded;
        match stamp::read(&frame) {
            Some(s) => {
                frame.capture_time_us = s.capture_time_us;
                frame.frame_number = s.frame_number;
            }
            None => frame.capture_time_us = 0,
        }
        render.show(&shared, frame, au.rtp_timestamp, au.completed_at, sei);
    }
}

/// Channel count of an Opus packet, from the stereo flag of its TOC byte (RFC 6716 section 3.1).
fn packet_channels(payload: &[u8]) -> u16 {
    if payload.first().is_some_and(|toc| toc & 0x04 != 0) {
        2
    } else {
        1
    }
}

/// The audio thread: packets wait in the jitter buffer (src/player/jitter_buffer.rs) and leave it on a steady clock,
/// one frame per tick, decoded, rebuilt from in-band FEC, concealed or merged as it decides; then volume and mute,
/// and the speaker or the PCM callback. Ends when the reader goes away.
pub(super) fn audio_thread(rx: mpsc::Receiver<AudioPacket>, shared: Arc<PlayerShared>) {
    let mut output = AudioOut::open();
    let mut decoder: Option<OpusDecoder> = None;
    let mut buffer = AudioJitterBuffer::default();
    let mut pcm = Vec::new();
    let mut second = Vec::new();
    loop {
        let received = match buffer.deadline() {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        let decision = match received {
            Ok(packet) => {
                buffer.push(
                    packet.sequence_number,
                    packet.timestamp,
                    packet.payload,
                    packet.arrived,
                );
                share_playhead(&shared, &buffer);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => buffer.pull(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        share_playhead(&shared, &buffer);
        let c = &shared.counters;
        match decision {
            Decision::Idle => {}
            Decision::Play(packet) => {
                let Some(dec) = decoder_for(&mut decoder, &packet) else {
                    return;
                };
                let channels = dec.channels();
                match dec.decode(Some(&packet), &mut pcm) {
                    Ok(_) => {
                        c.audio_frames_decoded.fetch_add(1, Ordering::Relaxed);
                        if !shared.recv_audio_first.swap(true, Ordering::AcqRel) {
                            shared.events.send(Event::PlayerRecvAudioFirstFrame {
                                stream_id: shared.stream_id.clone(),
                            });
                        }
                        output.deliver(&shared, &mut pcm, channels, false, buffer.last_wait());
                    }
                    Err(e) => tracing::debug!("undecodable Opus packet: {e}"),
                }
            }
            Decision::Repair(next) => {
                let Some(dec) = decoder_for(&mut decoder, &next) else {
                    return;
                };
                let channels = dec.channels();
                if dec.decode_fec(&next, &mut pcm).is_ok() {
                    c.audio_concealed.fetch_add(1, Ordering::Relaxed);
                    output.deliver(&shared, &mut pcm, channels, false, None);
                }
            }
            Decision::Conceal => {
                // Before the first packet there is nothing to continue.
                if let Some(dec) = decoder.as_mut() {
                    if dec.decode(None, &mut pcm).is_ok() {
                        c.audio_concealed.fetch_add(1, Ordering::Relaxed);
                        output.deliver(&shared, &mut pcm, dec.channels(), true, None);
                    }
                }
            }
            Decision::Accelerate(first, next) => {
                let Some(dec) = decoder_for(&mut decoder, &first) else {
                    return;
                };
                let channels = dec.channels();
                let a = dec.decode(Some(&first), &mut pcm);
                let b = dec.decode(Some(&next), &mut second);
                if a.is_ok() && b.is_ok() {
                    c.audio_frames_decoded.fetch_add(2, Ordering::Relaxed);
                    merge(&mut pcm, &second, channels);
                    output.deliver(&shared, &mut pcm, channels, false, buffer.last_wait());
                } else if b.is_ok() {
                    output.deliver(&shared, &mut second, channels, false, None);
                } else if a.is_ok() {
                    output.deliver(&shared, &mut pcm, channels, false, buffer.last_wait());
                }
            }
        }
    }
    let stats = buffer.stats();
    tracing::debug!(
        stream_id = %shared.stream_id,
        ?stats,
        mean_wait_ms = stats.mean_wait().as_secs_f64() * 1000.0,
        target_ms = buffer.target().as_secs_f64() * 1000.0,
        level_ms = buffer.level().as_secs_f64() * 1000.0,
        "audio playout ended"
    );
}

/// Tells the audio reader where playout is, so it stops asking for packets that would come too late.
fn share_playhead(shared: &PlayerShared, buffer: &AudioJitterBuffer) {
    let playhead = buffer
        .playhead()
        .map_or(0, |seq| AUDIO_PLAYHEAD_SET | u32::from(seq as u16));
    shared.audio_playhead.store(playhead, Ordering::Relaxed);
}

/// The decoder for `packet`'s channel count (a new one when the count changes); `None` if none can be made.
fn decoder_for<'a>(
    decoder: &'a mut Option<OpusDecoder>,
    packet: &[u8],
) -> Option<&'a mut OpusDecoder> {
    let channels = packet_channels(packet);
    if decoder.as_ref().is_none_or(|d| d.channels() != channels) {
        match OpusDecoder::new(SAMPLE_RATE, channels) {
            Ok(d) => *decoder = Some(d),
            Err(e) => {
                tracing::error!("cannot create the Opus decoder: {e}");
                return None;
            }
        }
    }
    decoder.as_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_count_comes_from_the_toc_byte() {
        assert_eq!(packet_channels(&[0x7C]), 2);
        assert_eq!(packet_channels(&[0x78]), 1);
        assert_eq!(packet_channels(&[]), 1);
    }
}
