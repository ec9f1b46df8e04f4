//! Decode, a thread per media kind: H.264 access units to frames (with the capture stamp read back from the
//! pixels) and Opus packets to PCM (with loss concealment); each goes on to render on the same thread.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use zego_media::{stamp, H264Decoder, OpusDecoder};

use super::receive::assembler::AccessUnit;
use super::receive::AudioPacket;
use super::render::{deliver_sei, AudioOut, VideoRender};
use super::PlayerShared;
use crate::event::Event;

pub(super) const SAMPLE_RATE: u32 = 48_000;
/// Losses longer than this many packets are not concealed (the stream paused or restarted).
const MAX_CONCEALED_PACKETS: u16 = 5;

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

/// The decode thread: conceals lost packets (FEC from the next packet, else PLC), applies volume and mute, and
/// plays or delivers each 20 ms frame. Ends when the reader goes away.
pub(super) fn audio_thread(rx: mpsc::Receiver<AudioPacket>, shared: Arc<PlayerShared>) {
    let mut output = AudioOut::open();
    let mut decoder: Option<OpusDecoder> = None;
    let mut expected: Option<u16> = None;
    let mut pcm = Vec::new();
    while let Ok(packet) = rx.recv() {
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        let channels = packet_channels(&packet.payload);
        if decoder.as_ref().is_none_or(|d| d.channels() != channels) {
            match OpusDecoder::new(SAMPLE_RATE, channels) {
                Ok(d) => decoder = Some(d),
                Err(e) => {
                    tracing::error!("cannot create the Opus decoder: {e}");
                    return;
                }
            }
            expected = None;
        }
        let Some(dec) = decoder.as_mut() else { return };
        if let Some(expected) = expected {
            let ahead = packet.sequence_number.wrapping_sub(expected) as i16;
            if ahead < 0 {
                continue; // late or duplicate: its time has passed
            }
            let missing = ahead as u16;
            if (1..=MAX_CONCEALED_PACKETS).contains(&missing) {
                for i in 0..missing {
                    // The packet before this one may ride in it (in-band FEC); the others are made up.
                    let from_fec = i + 1 == missing;
                    let concealed = if from_fec {
                        dec.decode_fec(&packet.payload, &mut pcm)
                    } else {
                        dec.decode(None, &mut pcm)
                    };
                    if concealed.is_ok() {
                        shared
                            .counters
                            .audio_concealed
                            .fetch_add(1, Ordering::Relaxed);
                        output.deliver(&shared, &mut pcm, channels, !from_fec);
                    }
                }
            }
        }
        expected = Some(packet.sequence_number.wrapping_add(1));
        match dec.decode(Some(&packet.payload), &mut pcm) {
            Ok(_) => {
                shared
                    .counters
                    .audio_frames_decoded
                    .fetch_add(1, Ordering::Relaxed);
                if !shared.recv_audio_first.swap(true, Ordering::AcqRel) {
                    shared.events.send(Event::PlayerRecvAudioFirstFrame {
                        stream_id: shared.stream_id.clone(),
                    });
                }
                output.deliver(&shared, &mut pcm, channels, false);
            }
            Err(e) => tracing::debug!("undecodable Opus packet: {e}"),
        }
    }
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
