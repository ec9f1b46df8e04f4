//! A server restarted on the same ports: players hear their stream went with the lost connection (delete reason
//! 5, "disconnected", not 1, "stopped by the user"), and video is back within two seconds of the server
//! answering again, whether it shut down cleanly or its connections were simply cut.

mod flow_support;

use std::time::{Duration, Instant};

use flow_support::*;
use zego_express::config::{
    PlayerConfig, PublishChannel, RoomConfig, RoomStateChangedReason, StreamResourceMode,
};
use zego_express::event::Event;
use zego_protocol::message::UpdateType;
use zego_server::{EmbeddedServer, ServerConfig};

const T: Duration = Duration::from_secs(15);
/// Long enough for reconnect attempts to have backed off as far as they go.
const OUTAGE: Duration = Duration::from_secs(5);
/// From the server answering again to a new frame on the viewer's screen.
const VIDEO_BACK_WITHIN: Duration = Duration::from_secs(2);

fn reason(wanted: RoomStateChangedReason) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::RoomStateChanged { reason, .. } if *reason == wanted)
}

/// The delete reasons the viewer was given for `stream`, after the first `skip` events.
fn delete_reasons(recorder: &Recorder, skip: usize, stream: &str) -> Vec<u64> {
    recorder
        .events()
        .iter()
        .skip(skip)
        .filter_map(|e| match e {
            Event::RoomStreamUpdate {
                update_type: UpdateType::Delete,
                extended_data,
                ..
            } => Some(extended_data.clone()),
            _ => None,
        })
        .flat_map(|data| {
            let json: serde_json::Value = serde_json::from_str(&data).unwrap();
            json["stream_delete_reason"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|r| r["stream_id"] == stream)
        .map(|r| r["code"].as_u64().unwrap())
        .collect()
}

/// Publishes and plays through `server` reached at `url`, takes it away (`cut`, then a stop), brings it back on
/// the same ports after an outage, and checks what the viewer saw.
fn restart(url: &str, server: EmbeddedServer, cut: impl FnOnce()) {
    let (http, media) = (server.http_addr(), server.media_addr());
    let (a, rec_a) = engine(url);
    a.login_room("r", user("anchor"), RoomConfig::default())
        .unwrap();
    a.start_publishing("s", PublishChannel::Main).unwrap();
    let (v, rec_v) = engine(url);
    v.login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    v.start_playing(
        "s",
        PlayerConfig {
            resource_mode: StreamResourceMode::OnlyL3,
        },
    )
    .unwrap();
    rec_v.wait_until("frames", T, |r| r.frame_count("s") >= 5);

    cut();
    server.stop();
    rec_v.wait_for(
        "viewer reconnecting",
        T,
        reason(RoomStateChangedReason::Reconnecting),
    );
    rec_a.wait_for(
        "anchor reconnecting",
        T,
        reason(RoomStateChangedReason::Reconnecting),
    );
    let mark_v = rec_v.len();
    std::thread::sleep(OUTAGE);

    let server = EmbeddedServer::start(ServerConfig {
        listen: http,
        media_bind: media,
        ..ServerConfig::default()
    })
    .unwrap();
    let back = Instant::now();
    let back_us = now_us();
    rec_v.wait_until("video after the restart", T, |r| {
        r.frames("s").iter().any(|f| f.rendered_us > back_us)
    });
    let took = back.elapsed();
    eprintln!("video back {took:?} after the server");
    assert!(
        took < VIDEO_BACK_WITHIN,
        "video came back {took:?} after the server did"
    );
    let reasons = delete_reasons(&rec_v, mark_v, "s");
    assert!(
        reasons.iter().all(|&code| code == 5),
        "a stream lost with the server is deleted as disconnected (5): {reasons:?}"
    );
    a.destroy();
    v.destroy();
    server.stop();
}

#[test]
fn video_is_back_soon_after_a_clean_restart() {
    let server = server();
    let url = server.ws_url().to_owned();
    restart(&url, server, || {});
}

#[test]
fn video_is_back_soon_after_the_server_dies() {
    // Signaling goes through a relay that drops every connection without a close frame, as a killed server does.
    let server = server();
    let relay = TcpRelay::start(server.http_addr());
    let url = relay.ws_url();
    restart(&url, server, || relay.cut());
}
