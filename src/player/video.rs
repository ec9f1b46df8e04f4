//! Video of a played stream: RTP -> access units (on the runtime, cheap) -> H.264 decode (own thread) -> render.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use zego_media::{stamp, H264Decoder};

use super::assembler::{AccessUnit, Assembled, FrameAssembler};
use super::downlink::{self, DownlinkEstimate};
use super::playout::Playout;
use super::PlayerShared;
use crate::event::Event;
use crate::publisher::unix_micros;
use zego_rtp::H264_PAYLOAD_TYPE;

/// A frame later than this after the previous one counts as a freeze.
pub(super) const FREEZE_THRESHOLD: Duration = Duration::from_millis(200);

/// How long a gap may hold a frame back waiting for its retransmission: a missing packet is asked for at once and
/// then about once per round trip (src/player/nack.rs), so this leaves three rounds for a lost NACK or a lost
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
pub(super) async fn read_track(
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
        let deadline = assembler.deadline();
        let wait = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
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
                    let nack = TransportLayerNack {
                        sender_ssrc: 0,
                        media_ssrc,
                        nacks: nack_pairs_from_sequence_numbers(&missing),
                    };
                    if let Err(e) = track.write_rtcp(vec![Box::new(nack)]).await {
                        tracing::debug!("cannot send a NACK: {e}");
                    }
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

/// The decode thread: decodes access units in order, reads the capture stamp back from the pixels and delivers
/// the frames. Ends when the reader goes away.
pub(super) fn decode_thread(
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
    let mut playout = Playout::default();
    let mut size = (0, 0);
    let mut last_render: Option<Instant> = None;
    while let Ok(au) = rx.recv() {
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        if need_keyframe && !au.keyframe {
            continue;
        }
        let decoded = match decoder.decode(&au.data) {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(e) => {
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
        if (frame.width, frame.height) != size {
            size = (frame.width, frame.height);
            shared.events.send(Event::PlayerVideoSizeChanged {
                stream_id: shared.stream_id.clone(),
                width: size.0,
                height: size.1,
            });
        }
        if shared.video_muted.load(Ordering::Relaxed) {
            continue;
        }
        // Held (at most the playout bound) so that frames repaired late do not make the others stutter.
        let show_at = playout.schedule(au.rtp_timestamp, au.completed_at);
        shared
            .counters
            .playout_delay_us
            .store(playout.target().as_micros() as u64, Ordering::Relaxed);
        let hold = show_at.saturating_duration_since(Instant::now());
        if !hold.is_zero() {
            std::thread::sleep(hold);
        }
        let now = Instant::now();
        if let Some(prev) = last_render {
            let gap = now.duration_since(prev);
            if gap > FREEZE_THRESHOLD {
                c.frozen_us
                    .fetch_add(gap.as_micros() as u64, Ordering::Relaxed);
            }
        }
        last_render = Some(now);
        *c.last_render.lock() = Some(now);
        if frame.capture_time_us > 0 {
            let delay = unix_micros().saturating_sub(frame.capture_time_us);
            c.last_delay_us.store(delay, Ordering::Relaxed);
            c.delay_sum_us.fetch_add(delay, Ordering::Relaxed);
            c.delay_samples.fetch_add(1, Ordering::Relaxed);
        }
        let delivered = shared.events.send(Event::RemoteVideoFrame {
            stream_id: shared.stream_id.clone(),
            frame: Arc::new(frame),
        });
        if delivered {
            c.video_frames_rendered.fetch_add(1, Ordering::Relaxed);
            if !shared.render_first.swap(true, Ordering::AcqRel) {
                shared.events.send(Event::PlayerRenderVideoFirstFrame {
                    stream_id: shared.stream_id.clone(),
                });
            }
        }
    }
}
