//! Routes what the room session and the media transports report to the publish and play tasks it concerns,
//! and ends the streams of a room that went away.

use std::sync::Weak;

use tokio::sync::mpsc;
use zego_protocol::message::ClientMessage;

use super::core::{Core, StreamEvent};
use crate::room::{Notice, SessionNotice};
use crate::transport::MediaNotice;

pub(super) async fn run(
    core: Weak<Core>,
    mut media: mpsc::UnboundedReceiver<MediaNotice>,
    mut session: mpsc::UnboundedReceiver<Notice>,
) {
    loop {
        tokio::select! {
            Some(notice) = media.recv() => {
                let Some(core) = core.upgrade() else { return };
                on_media(&core, notice);
            }
            Some(notice) = session.recv() => {
                let Some(core) = core.upgrade() else { return };
                on_session(&core, notice);
            }
            else => return,
        }
    }
}

fn on_media(core: &Core, notice: MediaNotice) {
    let state = core.state.lock();
    match notice {
        MediaNotice::PublisherTransportFailed { channel } => {
            if let Some(entry) = state.publishes.get(&channel) {
                let _ = entry.inbox.send(StreamEvent::TransportFailed);
            }
        }
        MediaNotice::PlayerTransportFailed { stream_id } => {
            if let Some(entry) = state.plays.get(&stream_id) {
                let _ = entry.inbox.send(StreamEvent::TransportFailed);
            }
        }
    }
}

fn on_session(core: &Core, notice: Notice) {
    let mut state = core.state.lock();
    let Some(room) = state.room.clone().filter(|r| r.id() == notice.session) else {
        return; // A session the app has logged out of.
    };
    let seq = notice.seq;
    match notice.kind {
        SessionNotice::Connected {
            reconnect,
            resumed,
            streams,
        } => {
            let lost = reconnect && !resumed;
            let me = room.user_id();
            let listed = |stream_id: &str| streams.iter().any(|s| s.stream_id == stream_id);
            for entry in state.publishes.values() {
                let listed = listed(&entry.stream_id);
                let _ = entry
                    .inbox
                    .send(StreamEvent::Connected { lost, listed, seq });
            }
            for (stream_id, entry) in &state.plays {
                let _ = entry.inbox.send(StreamEvent::Connected {
                    lost,
                    listed: listed(stream_id),
                    seq,
                });
            }
            if resumed {
                // Streams stopped while the connection was down whose stop did not get through.
                for stream in streams.into_iter().filter(|s| s.user.user_id == me) {
                    if !state
                        .publishes
                        .values()
                        .any(|p| p.stream_id == stream.stream_id)
                    {
                        let stream_id = stream.stream_id;
                        room.send_or_defer(|req_id| ClientMessage::StopPublish {
                            req_id,
                            stream_id,
                        });
                    }
                }
            }
        }
        SessionNotice::PlayStarted { stream_id, sdp } => {
            if let Some(entry) = state.plays.get(&stream_id) {
                let _ = entry.inbox.send(StreamEvent::Started { sdp, seq });
            }
        }
        SessionNotice::PlayStopped { stream_id, code } => {
            if let Some(entry) = state.plays.get(&stream_id) {
                let _ = entry.inbox.send(StreamEvent::Stopped { code, seq });
            }
        }
        SessionNotice::Ended { code } => core.end_room(&mut state, code),
    }
}
