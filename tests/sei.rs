//! SEI end to end: app data sent with `send_sei` reaches the players of the stream through the relay, each message
//! once, in order, unchanged, just before the frame it rode on; ZEGO-defined and user-unregistered messages; the
//! limits of the original (4096 bytes, 30 a second) and the state checks.

mod flow_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_support::*;
use parking_lot::Mutex;
use zego_express::config::{
    PlayerConfig, PublishChannel, PublisherState, RoomConfig, SeiType, StreamResourceMode,
};
use zego_express::error;
use zego_express::event::Event;

const T: Duration = Duration::from_secs(10);
const MAIN: PublishChannel = PublishChannel::Main;

/// What the viewer's callback thread saw: each SEI with the number of the frame delivered right after it.
#[derive(Default)]
struct Seen {
    pending: Vec<Vec<u8>>,
    sei: Vec<(Vec<u8>, u64)>,
}

/// The payload of message `i`: its index, the number of the anchor's newest captured frame when it was sent, and
/// bytes that need emulation prevention in the bitstream.
fn payload(i: u32, captured: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&i.to_be_bytes());
    p.extend_from_slice(&captured.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 3, 0, 0, 2]);
    p.extend((0..200u32).map(|b| (b * 7 + i) as u8));
    p
}

#[test]
fn sei_reaches_players_in_order_with_its_frame() {
    let server = server();
    let (anchor, anchor_rec) = engine(server.ws_url());
    // The newest frame number the anchor captured (and so stamped into the stream), from its preview.
    let captured = Arc::new(Mutex::new(0u64));
    {
        let captured = captured.clone();
        anchor_rec.set_hook(move |e| {
            if let Event::CapturedVideoFrame { frame, .. } = e {
                *captured.lock() = frame.frame_number;
            }
        });
    }
    anchor
        .login_room("r", user("anchor"), RoomConfig::default())
        .unwrap();
    assert_eq!(
        anchor.send_sei(b"too early", MAIN),
        Err(error::PUBLISHER_NO_DATA),
        "not publishing"
    );
    anchor.start_preview(MAIN).unwrap();
    anchor.start_publishing("s", MAIN).unwrap();
    anchor_rec.wait_for("publishing", T, |e| {
        matches!(
            e,
            Event::PublisherStateUpdate {
                state: PublisherState::Publishing,
                ..
            }
        )
    });

    let (viewer, viewer_rec) = engine(server.ws_url());
    let seen = Arc::new(Mutex::new(Seen::default()));
    {
        let seen = seen.clone();
        viewer_rec.set_hook(move |e| {
            let mut seen = seen.lock();
            match e {
                Event::PlayerRecvSei { stream_id, data } if stream_id == "s" => {
                    seen.pending.push(data.clone())
                }
                Event::RemoteVideoFrame { stream_id, frame } if stream_id == "s" => {
                    for data in std::mem::take(&mut seen.pending) {
                        seen.sei.push((data, frame.frame_number));
                    }
                }
                _ => {}
            }
        });
    }
    viewer
        .login_room("r", user("viewer"), RoomConfig::default())
        .unwrap();
    viewer
        .start_playing(
            "s",
            PlayerConfig {
                resource_mode: StreamResourceMode::OnlyL3,
            },
        )
        .unwrap();
    viewer_rec.wait_until("the stream plays", T, |r| r.frame_count("s") >= 5);

    // 20 messages, one every 60 ms (under the limit of 30 a second).
    let mut sent = Vec::new();
    for i in 0..20u32 {
        let p = payload(i, *captured.lock());
        anchor.send_sei(&p, MAIN).unwrap();
        sent.push(p);
        std::thread::sleep(Duration::from_millis(60));
    }
    let deadline = Instant::now() + T;
    while seen.lock().sei.len() < sent.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = std::mem::take(&mut seen.lock().sei);
    let data: Vec<&Vec<u8>> = got.iter().map(|(d, _)| d).collect();
    assert_eq!(
        data,
        sent.iter().collect::<Vec<_>>(),
        "every message once, in order, unchanged"
    );
    for (d, frame) in &got {
        // Sent after frame `captured` was captured, it rides that frame or one of the next few.
        let captured = u64::from_be_bytes(d[4..12].try_into().unwrap());
        assert!(
            (captured..captured + 10).contains(frame),
            "a message sent at captured frame {captured} came with frame {frame}"
        );
    }

    // User-unregistered messages arrive with their UUID.
    anchor.set_sei_config(SeiType::UserUnregister);
    assert_eq!(
        anchor.send_sei(&[1; 15], MAIN),
        Err(error::COMMON_INVALID_PARAMETER),
        "shorter than the UUID"
    );
    let uuid_and_data: Vec<u8> = (0..16u8).chain(*b"unregistered").collect();
    anchor.send_sei(&uuid_and_data, MAIN).unwrap();
    let deadline = Instant::now() + T;
    while seen.lock().sei.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        seen.lock().sei.first().map(|(d, _)| d.clone()),
        Some(uuid_and_data)
    );
    anchor.set_sei_config(SeiType::ZegoDefined);

    // The limits: size, and 30 a second (once the last second's messages have left the window).
    assert_eq!(
        anchor.send_sei(&[], MAIN),
        Err(error::PUBLISHER_SEI_DATA_NULL)
    );
    assert_eq!(
        anchor.send_sei(&[0; 4097], MAIN),
        Err(error::PUBLISHER_SEI_DATA_TOO_LONG)
    );
    std::thread::sleep(Duration::from_millis(1050));
    let burst: Vec<_> = (0..31).map(|_| anchor.send_sei(b"burst", MAIN)).collect();
    assert!(burst[..30].iter().all(Result::is_ok), "{burst:?}");
    assert_eq!(burst[30], Err(error::PUBLISHER_SEI_TOO_FREQUENT));
    let deadline = Instant::now() + T;
    while seen.lock().sei.len() < 1 + 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen.lock().sei.len(), 31, "the whole burst arrives");

    // Stopping the publish leaves nothing behind for the next one.
    anchor.stop_publishing(MAIN).unwrap();
    assert_eq!(
        anchor.send_sei(b"after", MAIN),
        Err(error::PUBLISHER_NO_DATA)
    );
    anchor.destroy();
    viewer.destroy();
}
