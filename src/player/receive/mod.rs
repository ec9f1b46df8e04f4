//! Receive, on the runtime: the track readers count what arrives, assemble video access units (with the NACK
//! requester and the downlink estimate) and hand them, and audio packets, to the decode threads.

pub(super) mod assembler;
pub(super) mod downlink;
mod nack;

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use tokio::sync::mpsc::UnboundedReceiver;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use zego_rtp::{H264_PAYLOAD_TYPE, OPUS_PAYLOAD_TYPE};

use super::PlayerShared;
use crate::event::Event;
use assembler::{AccessUnit, Assembled, FrameAssembler};
use downlink::DownlinkEstimate;
use nack::NackRequester;

/// How long a gap may hold a frame back waiting for its retransmission: a missing packet is asked for at once and
/// then about once per round trip (src/player/receive/nack.rs), so this leaves three rounds for a lost NACK or a lost
/// retransmission. Giving up costs far more (every frame until the next keyframe, which itself needs repairing on a
/// lossy path), so the wait errs long; before the round trip is known it assumes a long one.
pub(super) fn nack_wait(rtt: Option<Duration>) -> Duration {
    match rtt {
        Some(rtt) => (rtt * 3 + Duration::from_millis(100))
            .clamp(Duration::from_millis(200), Duration::from_millis(800)),
        None => UNKNOWN_RTT_WAIT,
    }
}

/// The wait for a retransmission before any round trip is measured.
const UNKNOWN_RTT_WAIT: Duration = Duration::from_millis(500);

/// Reads the video track until it ends, assembling access units for the decode thread and sending keyframe
/// requests, retransmission requests and the downlink's estimate (REMB).
pub(super) async fn read_video_track(
    track: Arc<dyn TrackRemote>,
    shared: Arc<PlayerShared>,
    decode: mpsc::Sender<AccessUnit>,
    mut decoder_feedback: UnboundedReceiver<()>,
) {
    let mut media_ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let mut assembler = FrameAssembler::new(nack_wait(shared.rtt()));
    tune(&mut assembler, &shared);
    let mut tuned_at = Instant::now();
    let mut downlink = DownlinkEstimate::default();
    loop {
        let wait = until(assembler.deadline());
        let out = tokio::select! {
            event = track.poll() => match event {
                // Only H.264 in the media's own sequence space (webrtc turns retransmissions back into it).
                Some(TrackRemoteEvent::OnRtpPacket(packet)) if packet.header.payload_type == H264_PAYLOAD_TYPE => {
                    media_ssrc = packet.header.ssrc;
                    let c = &shared.counters;
                    c.video_packets.fetch_add(1, Ordering::Relaxed);
                    c.video_bytes.fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    let h = &packet.header;
                    let now = Instant::now();
                    downlink.on_video(now, h.sequence_number, h.timestamp);
                    assembler.push(h.sequence_number, h.timestamp, h.marker, packet.payload, now)
                }
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    tracing::trace!(pt = packet.header.payload_type, "ignoring a packet that is not H.264");
                    continue;
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => continue,
            },
            Some(()) = decoder_feedback.recv() => {
                if assembler.decoder_needs_keyframe(Instant::now()) { vec![Assembled::RequestKeyframe] } else { Vec::new() }
            }
            () = wait => assembler.poll(Instant::now()),
        };
        for item in out {
            match item {
                Assembled::Frame(au) => {
                    shared
                        .counters
                        .video_frames_received
                        .fetch_add(1, Ordering::Relaxed);
                    if !shared.recv_video_first.swap(true, Ordering::AcqRel) {
                        shared.events.send(Event::PlayerRecvVideoFirstFrame {
                            stream_id: shared.stream_id.clone(),
                        });
                    }
                    if decode.send(au).is_err() {
                        return;
                    }
                }
                Assembled::RequestKeyframe => {
                    tracing::debug!(stream_id = %shared.stream_id, "asking for a keyframe");
                    shared
                        .counters
                        .keyframe_requests
                        .fetch_add(1, Ordering::Relaxed);
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    };
                    if let Err(e) = track.write_rtcp(vec![Box::new(pli)]).await {
                        tracing::debug!("cannot send a keyframe request: {e}");
                    }
                }
                Assembled::Nack(missing) => {
                    tracing::trace!(stream_id = %shared.stream_id, ?missing, "asking for retransmissions");
                    send_nack(&track, media_ssrc, &missing).await;
                }
            }
        }
        if let Some(bps) = downlink.poll(Instant::now(), received_bytes(&shared)) {
            tracing::debug!(stream_id = %shared.stream_id, bps, "downlink estimate");
            let remb = ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 0,
                bitrate: bps as f32,
                ssrcs: vec![media_ssrc],
            };
            if let Err(e) = track.write_rtcp(vec![Box::new(remb)]).await {
                tracing::debug!("cannot send the downlink estimate: {e}");
            }
        }
        // Follow the round trip: the longer it is, the longer a retransmission takes.
        if tuned_at.elapsed() >= Duration::from_millis(500) {
            tuned_at = Instant::now();
            tune(&mut assembler, &shared);
        }
    }
    tracing::debug!(
        stream_id = %shared.stream_id,
        stats = ?assembler.stats(),
        nacks = assembler.nacks_sent(),
        "video track ended"
    );
}

/// Completes at `deadline`; never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Asks the sender of `media_ssrc` for the `missing` sequence numbers again (RTCP NACK).
async fn send_nack(track: &Arc<dyn TrackRemote>, media_ssrc: u32, missing: &[u16]) {
    let nack = TransportLayerNack {
        sender_ssrc: 0,
        media_ssrc,
        nacks: nack_pairs_from_sequence_numbers(missing),
    };
    if let Err(e) = track.write_rtcp(vec![Box::new(nack)]).await {
        tracing::debug!(media_ssrc, "cannot send a NACK: {e}");
    }
}

/// Every byte of the stream received so far, video and audio, as on the wire.
fn received_bytes(shared: &PlayerShared) -> u64 {
    let c = &shared.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    downlink::wire_bytes(
        load(&c.video_bytes) + load(&c.audio_bytes),
        load(&c.video_packets) + load(&c.audio_packets),
    )
}

/// Follows the measured round trip.
fn tune(assembler: &mut FrameAssembler, shared: &PlayerShared) {
    let rtt = shared.rtt();
    assembler.set_max_wait(nack_wait(rtt));
    if let Some(rtt) = rtt {
        assembler.set_rtt(rtt);
    }
}

/// An audio packet for the decode thread.
pub(super) struct AudioPacket {
    pub sequence_number: u16,
    pub timestamp: u32,
    pub payload: Bytes,
    pub arrived: Instant,
}

/// Forwards the audio track's packets to the decode thread until the track ends, asking for the missing ones again
/// (RTCP NACK) while the jitter buffer can still play them.
pub(super) async fn read_audio_track(
    track: Arc<dyn TrackRemote>,
    shared: Arc<PlayerShared>,
    decode: mpsc::Sender<AudioPacket>,
) {
    let mut media_ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let mut nack = NackRequester::default();
    let mut highest: Option<u64> = None;
    let mut tuned_at = Instant::now();
    loop {
        let wait = until(nack.deadline());
        let missing = tokio::select! {
            event = track.poll() => match event {
                // Opus in its own sequence space (webrtc turns retransmissions back into it).
                Some(TrackRemoteEvent::OnRtpPacket(packet)) if packet.header.payload_type == OPUS_PAYLOAD_TYPE => {
                    if packet.payload.is_empty() {
                        continue;
                    }
                    media_ssrc = packet.header.ssrc;
                    let c = &shared.counters;
                    c.audio_packets.fetch_add(1, Ordering::Relaxed);
                    c.audio_bytes
                        .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    let now = Instant::now();
                    let seq = zego_rtp::seq::extend(highest, packet.header.sequence_number);
                    // A jump of more than a few seconds is a new stream, not loss.
                    let advance = highest
                        .map_or(1, |h| seq.saturating_sub(h))
                        .min(if highest.is_some_and(|h| seq > h + 500) { 1 } else { u64::MAX });
                    if advance > 0 {
                        c.audio_packets_expected.fetch_add(advance, Ordering::Relaxed);
                        c.audio_packets_missed.fetch_add(advance - 1, Ordering::Relaxed);
                        highest = Some(seq);
                    }
                    // Audio has no frames spanning packets: every packet "ends its frame", so no tail probing.
                    nack.on_packet(seq, true, now);
                    let item = AudioPacket {
                        sequence_number: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        payload: packet.payload,
                        arrived: now,
                    };
                    if decode.send(item).is_err() {
                        return;
                    }
                    Vec::new()
                }
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    tracing::trace!(pt = packet.header.payload_type, "ignoring a packet that is not Opus");
                    continue;
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => continue,
            },
            () = wait => nack.poll(Instant::now()),
        };
        // Packets before the jitter buffer's playhead would come too late.
        let playhead = shared.audio_playhead.load(Ordering::Relaxed);
        if let (Some(playhead), Some(highest)) = (audio_playhead(playhead), highest) {
            if let Some(playhead) = zego_rtp::seq::nearest(highest, playhead) {
                nack.forget_before(playhead);
            }
        }
        if !missing.is_empty() {
            tracing::trace!(stream_id = %shared.stream_id, ?missing, "asking for audio retransmissions");
            send_nack(&track, media_ssrc, &missing).await;
        }
        if tuned_at.elapsed() >= Duration::from_millis(500) {
            tuned_at = Instant::now();
            if let Some(rtt) = shared.rtt() {
                nack.set_rtt(rtt);
            }
        }
    }
    tracing::debug!(stream_id = %shared.stream_id, requested = nack.requested, "audio track ended");
}

/// The jitter buffer's playhead as shared (`AUDIO_PLAYHEAD_SET` and the sequence number), or `None` before it has one.
pub(super) fn audio_playhead(shared: u32) -> Option<u16> {
    (shared & AUDIO_PLAYHEAD_SET != 0).then_some(shared as u16)
}

/// Marks a shared audio playhead as set.
pub(super) const AUDIO_PLAYHEAD_SET: u32 = 1 << 16;
