//! Audio of a played stream: RTP -> Opus decode with loss concealment (own thread) -> volume/mute -> output.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use zego_media::OpusDecoder;

use super::PlayerShared;
use crate::event::{AudioFrame, Event};

/// WebRTC audio runs at 48 kHz.
const SAMPLE_RATE: u32 = 48_000;
/// Losses longer than this many packets are not concealed (the stream paused or restarted).
const MAX_CONCEALED_PACKETS: u16 = 5;

pub(super) struct AudioPacket {
    pub sequence_number: u16,
    pub payload: Bytes,
}

/// Forwards the audio track's packets to the decode thread until the track ends.
pub(super) async fn read_track(
    track: Arc<dyn TrackRemote>,
    shared: Arc<PlayerShared>,
    decode: mpsc::Sender<AudioPacket>,
) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                if packet.payload.is_empty() {
                    continue;
                }
                let c = &shared.counters;
                c.audio_packets.fetch_add(1, Ordering::Relaxed);
                c.audio_bytes
                    .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                let item = AudioPacket {
                    sequence_number: packet.header.sequence_number,
                    payload: packet.payload,
                };
                if decode.send(item).is_err() {
                    return;
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// Where decoded audio goes: the speaker (feature `devices`, when one opens) or the PCM callback.
struct Output {
    #[cfg(feature = "devices")]
    speaker: Option<zego_media::devices::Speaker>,
}

impl Output {
    fn open() -> Output {
        #[cfg(feature = "devices")]
        {
            let speaker = match zego_media::devices::Speaker::open(2) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("no speaker, delivering audio through the callback: {e}");
                    None
                }
            };
            Output { speaker }
        }
        #[cfg(not(feature = "devices"))]
        Output {}
    }

    fn play(&mut self, shared: &PlayerShared, pcm: &[i16], channels: u16) {
        #[cfg(feature = "devices")]
        if let Some(speaker) = &mut self.speaker {
            let stereo: Vec<i16> = if channels == 1 {
                pcm.iter().flat_map(|&s| [s, s]).collect()
            } else {
                pcm.to_vec()
            };
            if let Err(e) = speaker.write(&stereo) {
                tracing::warn!("speaker failed, delivering audio through the callback: {e}");
                self.speaker = None;
            } else {
                return;
            }
        }
        shared.events.send(Event::RemoteAudioFrame {
            stream_id: shared.stream_id.clone(),
            frame: Arc::new(AudioFrame {
                samples: pcm.to_vec(),
                sample_rate: SAMPLE_RATE,
                channels,
            }),
        });
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

/// Scales by `volume` percent (0..=200) with saturation.
pub(super) fn apply_volume(pcm: &mut [i16], volume: u32) {
    if volume == 100 {
        return;
    }
    for s in pcm.iter_mut() {
        *s = (i32::from(*s) * volume as i32 / 100).clamp(i32::from(i16::MIN), i32::from(i16::MAX))
            as i16;
    }
}

/// The decode thread: conceals lost packets (FEC from the next packet, else PLC), applies volume and mute, and
/// plays or delivers each 20 ms frame. Ends when the reader goes away.
pub(super) fn decode_thread(rx: mpsc::Receiver<AudioPacket>, shared: Arc<PlayerShared>) {
    let mut output = Output::open();
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
                    let concealed = if i + 1 == missing {
                        dec.decode_fec(&packet.payload, &mut pcm)
                    } else {
                        dec.decode(None, &mut pcm)
                    };
                    if concealed.is_ok() {
                        shared
                            .counters
                            .audio_concealed
                            .fetch_add(1, Ordering::Relaxed);
                        deliver(&shared, &mut output, &mut pcm, channels);
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
                deliver(&shared, &mut output, &mut pcm, channels);
            }
            Err(e) => tracing::debug!("undecodable Opus packet: {e}"),
        }
    }
}

fn deliver(shared: &PlayerShared, output: &mut Output, pcm: &mut [i16], channels: u16) {
    if shared.audio_muted.load(Ordering::Relaxed) || pcm.is_empty() {
        return;
    }
    apply_volume(pcm, shared.volume.load(Ordering::Relaxed));
    output.play(shared, pcm, channels);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_scales_and_saturates() {
        let mut pcm = vec![1000, -1000, 30000, -30000];
        apply_volume(&mut pcm, 200);
        assert_eq!(pcm, vec![2000, -2000, i16::MAX, i16::MIN]);
        apply_volume(&mut pcm, 0);
        assert!(pcm.iter().all(|&s| s == 0));
    }

    #[test]
    fn channel_count_comes_from_the_toc_byte() {
        assert_eq!(packet_channels(&[0x7C]), 2);
        assert_eq!(packet_channels(&[0x78]), 1);
        assert_eq!(packet_channels(&[]), 1);
    }
}
