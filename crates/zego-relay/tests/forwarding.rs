//! Media through the relay between peers made with the `webrtc` crate, as the SDK makes them.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::h264_source::nal_units;
use common::*;
use zego_relay::RelayEvent;
use zego_rtp::h264::begins_idr_or_sps;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_receive_the_publishers_h264_and_opus_byte_for_byte() {
    // Two I/O threads: the players are served by different ones, and one of them by another than the publisher's.
    let relay = start_relay_with(None, 2).await;
    let clip = Arc::new(EncodedClip::encode(60, 30, 400_000, 320, 240).await);
    let mut events = relay.events();

    let publisher = Arc::new(Publisher::connect(&relay, key("s1")).await);
    wait_event(
        &mut events,
        RelayEvent::Connected(publisher.peer.session),
        Duration::from_secs(2),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip.clone(), b"A", stop.clone());

    let a = Player::connect(&relay, key("s1")).await;
    let b = Player::connect(&relay, key("s1")).await;
    assert_ne!(
        relay.io_thread_of(a.peer.session),
        relay.io_thread_of(b.peer.session)
    );
    wait_for(
        "both players to get 2 s of audio and some video",
        Duration::from_secs(10),
        || a.received.got(100, 30) && b.received.got(100, 30),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Video: what each player reassembles are exactly the encoder's access units, in order.
    let sent_nals: HashSet<&[u8]> = clip.frames.iter().flat_map(|f| nal_units(f)).collect();
    for player in [&a, &b] {
        let video = player.received.video.lock().clone();
        assert!(
            begins_idr_or_sps(&video[0].payload),
            "player {} starts at a keyframe",
            player.peer.session
        );
        assert!(
            gaps(&video).is_empty(),
            "no video lost on loopback: {:?}",
            gaps(&video)
        );
        let units = depacketize_h264(&video);
        assert!(units.len() > 10);
        for unit in &units {
            for nal in nal_units(unit) {
                assert!(
                    sent_nals.contains(nal),
                    "a NAL unit the publisher never sent ({} bytes)",
                    nal.len()
                );
            }
        }
        // Consecutive access units are consecutive frames of the clip.
        let index = |unit: &bytes::Bytes| {
            clip.frames
                .iter()
                .position(|f| f == unit)
                .unwrap_or_else(|| {
                    let nals: Vec<(u8, usize)> =
                        nal_units(unit).map(|n| (n[0] & 0x1F, n.len())).collect();
                    let frames: Vec<Vec<(u8, usize)>> = clip
                        .frames
                        .iter()
                        .map(|f| nal_units(f).map(|n| (n[0] & 0x1F, n.len())).collect())
                        .collect();
                    panic!("not an access unit of the clip: {nals:?}; clip: {frames:?}")
                })
        };
        let indexes: Vec<usize> = units.iter().map(index).collect();
        for w in indexes.windows(2) {
            // The next frame, or the first (an IDR picture) when the publisher answered a keyframe request.
            assert!(
                w[1] == (w[0] + 1) % clip.frames.len() || w[1] == 0,
                "frames in order: {indexes:?}"
            );
        }
        assert!(EncodedClip::is_idr(&units[0]));
    }

    // The two players got the same RTP payloads where their receptions overlap.
    // A player that joined with a keyframe cached was shown it first, then went on from a fresh keyframe: the live
    // part starts at its second picture.
    let live = |video: Vec<Packet>| {
        let cached = relay.metrics().cached_keyframe_starts > 0;
        let skip = video
            .iter()
            .position(|p| p.timestamp != video[0].timestamp)
            .filter(|_| cached)
            .unwrap_or(0);
        video[skip..].to_vec()
    };
    let (va, vb) = (
        live(a.received.video.lock().clone()),
        live(b.received.video.lock().clone()),
    );
    let (aa, ab) = (
        a.received.audio.lock().clone(),
        b.received.audio.lock().clone(),
    );
    assert!(gaps(&aa).is_empty() && gaps(&ab).is_empty());
    for (what, a, b) in [("video", &va, &vb), ("audio", &aa, &ab)] {
        // Align on a payload that occurs once in each stream: parameter sets repeat at every keyframe, and the
        // clip's first picture comes again whenever the publisher answers a keyframe request.
        let once = |stream: &[Packet], p: &Packet| {
            let mut hits = stream
                .iter()
                .enumerate()
                .filter(|(_, q)| q.payload == p.payload);
            match (hits.next(), hits.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        };
        let (j, i) = b
            .iter()
            .find_map(|p| Some((once(b, p)?, once(a, p)?)))
            .expect("the streams overlap");
        assert!(i >= j, "{what}: b started after a");
        let start = i - j;
        let overlap = (a.len() - start).min(b.len());
        assert!(overlap > 30, "{what}: {overlap} packets in common");
        for k in 0..overlap {
            assert_eq!(
                a[start + k].payload,
                b[k].payload,
                "{what} payload {k} differs"
            );
        }
    }
    // Audio payloads are the publisher's, in order.
    for w in aa.windows(2) {
        let n = |p: &Packet| u64::from_be_bytes(p.payload[1..9].try_into().unwrap());
        assert_eq!(n(&w[1]), n(&w[0]) + 1);
        assert_eq!(&w[0].payload[..1], b"A");
    }

    let m = relay.metrics();
    assert_eq!((m.publishers, m.players), (1, 2));
    assert!(m.packets_received > 0 && m.bytes_received > 0);
    let got: u64 = [&a, &b]
        .iter()
        .map(|p| (p.received.video_len() + p.received.audio_len()) as u64)
        .sum();
    assert!(
        m.packets_forwarded >= got,
        "forwarded {} < received by players {got}",
        m.packets_forwarded
    );
    // One request serves both players when both join before its keyframe comes.
    assert!(
        m.keyframe_requests + m.cached_keyframe_starts >= 1,
        "the players started at a keyframe asked for or cached: {m:?}"
    );
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_player_is_shown_the_cached_keyframe_and_goes_on_from_a_fresh_one() {
    let relay = start_relay().await;
    // One IDR picture per 5 s unless asked: a player starting fast shows the cache worked, and one that goes on
    // shows the relay asked for a fresh keyframe.
    let clip = Arc::new(EncodedClip::encode(150, 150, 400_000, 320, 240).await);
    let publisher = Arc::new(Publisher::connect(&relay, key("late")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip.clone(), b"A", stop.clone());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let requests_before = publisher.keyframe_requests();

    let joined = std::time::Instant::now();
    let player = Player::connect(&relay, key("late")).await;
    wait_for(
        "the late player's first video",
        Duration::from_secs(3),
        || player.received.video_len() > 0,
    )
    .await;
    let waited = joined.elapsed();
    wait_for("a few frames more", Duration::from_secs(3), || {
        player.received.video_len() > 40
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();

    let video = player.received.video.lock().clone();
    assert!(
        begins_idr_or_sps(&video[0].payload),
        "first video packet opens a keyframe: {:02x?}",
        &video[0].payload[..4]
    );
    assert!(EncodedClip::is_idr(&depacketize_h264(&video)[0]));
    assert!(gaps(&video).is_empty());
    assert!(
        publisher.keyframe_requests() > requests_before,
        "the publisher got a PLI"
    );
    assert_eq!(relay.metrics().cached_keyframe_starts, 1);
    let idrs = depacketize_h264(&video)
        .iter()
        .filter(|unit| EncodedClip::is_idr(unit))
        .count();
    assert!(idrs >= 2, "the cached keyframe, then the fresh one");
    assert!(
        waited < Duration::from_secs(1),
        "the player waited {waited:?} for its first picture"
    );
    relay.shutdown().await;
}

/// A player (a browser most of all) syncs audio with video only within one media stream: both tracks of a play
/// come in the stream named after the published one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_gets_the_audio_and_video_of_a_stream_in_one_media_stream() {
    let relay = start_relay().await;
    let clip = Arc::new(EncodedClip::encode(30, 30, 400_000, 320, 240).await);
    let publisher = Arc::new(Publisher::connect(&relay, key("room7_cam-1")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip, b"A", stop.clone());

    let player = Player::connect(&relay, key("room7_cam-1")).await;
    wait_for(
        "the player's audio and video",
        Duration::from_secs(5),
        || player.received.audio_len() > 0 && player.received.video_len() > 0,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();

    let mut tracks = player.received.tracks.lock().clone();
    tracks.sort_by_key(|(kind, _, _)| format!("{kind:?}"));
    let [(audio, audio_stream, audio_track), (video, video_stream, video_track)] = &tracks[..]
    else {
        panic!("one audio and one video track: {tracks:?}");
    };
    assert_eq!(format!("{audio:?} {video:?}"), "Audio Video");
    assert_eq!(audio_stream, "room7_cam-1", "{tracks:?}");
    assert_eq!(video_stream, "room7_cam-1", "{tracks:?}");
    assert_ne!(audio_track, video_track);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_do_not_disturb_a_running_stream() {
    let relay = start_relay().await;
    let clip = Arc::new(EncodedClip::encode(60, 30, 400_000, 320, 240).await);
    let publisher = Arc::new(Publisher::connect(&relay, key("g")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip, b"A", stop.clone());
    let player = Player::connect(&relay, key("g")).await;
    wait_for("media to flow", Duration::from_secs(3), || {
        player.received.video_len() > 10
    })
    .await;

    let garbage = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay.local_addr();
    let dropped_before = relay.metrics().datagrams_dropped;
    let mut sent = 0u64;
    for i in 0..2000u32 {
        let mut datagram: Vec<u8> = (0..(i as usize * 7) % 1400)
            .map(|_| rand::random())
            .collect();
        // Shapes that pass the first demultiplexing byte: STUN, DTLS, RTP, RTCP; and empty or one-byte ones.
        match i % 6 {
            0 if datagram.len() >= 20 => datagram[..4].copy_from_slice(&[0x00, 0x01, 0x00, 0x00]),
            1 if !datagram.is_empty() => datagram[0] = 22,
            2 if datagram.len() >= 2 => datagram[..2].copy_from_slice(&[0x80, 0x66]),
            3 if datagram.len() >= 2 => datagram[..2].copy_from_slice(&[0x81, 0xC9]),
            4 => datagram.truncate(1),
            _ => {}
        }
        garbage.send_to(&datagram, relay_addr).await.unwrap();
        sent += 1;
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let at_end_of_garbage = player.received.video_len();
    wait_for("media to keep flowing", Duration::from_secs(3), || {
        player.received.video_len() > at_end_of_garbage + 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();

    let video = player.received.video.lock().clone();
    let audio = player.received.audio.lock().clone();
    assert!(gaps(&video).is_empty(), "video lost: {:?}", gaps(&video));
    assert!(gaps(&audio).is_empty(), "audio lost: {:?}", gaps(&audio));
    assert_eq!(
        relay.metrics().datagrams_dropped - dropped_before,
        sent,
        "every garbage datagram was dropped"
    );
    assert_eq!(
        player.peer.state(),
        webrtc::peer_connection::RTCPeerConnectionState::Connected
    );
    assert_eq!(
        publisher.peer.state(),
        webrtc::peer_connection::RTCPeerConnectionState::Connected
    );
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_publisher_replaces_the_old_one_and_players_continue_seamlessly() {
    let relay = start_relay().await;
    let clip_a = Arc::new(EncodedClip::encode_variant(60, 30, 400_000, 320, 240, 0).await);
    let clip_b = Arc::new(EncodedClip::encode_variant(60, 30, 400_000, 320, 240, 1).await);
    let mut events = relay.events();

    let a = Arc::new(Publisher::connect(&relay, key("r")).await);
    let stop_a = Arc::new(AtomicBool::new(false));
    let streaming_a = a.stream(clip_a.clone(), b"A", stop_a.clone());
    let player = Player::connect(&relay, key("r")).await;
    wait_for(
        "media from the first publisher",
        Duration::from_secs(3),
        || player.received.video_len() > 20,
    )
    .await;

    // The same user restores its media over a new peer connection; the old one keeps sending for a while.
    let b = Arc::new(Publisher::connect(&relay, key("r")).await);
    wait_event(
        &mut events,
        RelayEvent::Disconnected(a.peer.session),
        Duration::from_secs(2),
    )
    .await;
    let stop_b = Arc::new(AtomicBool::new(false));
    let streaming_b = b.stream(clip_b.clone(), b"B", stop_b.clone());
    wait_for(
        "audio from the second publisher",
        Duration::from_secs(3),
        || {
            player
                .received
                .audio
                .lock()
                .iter()
                .filter(|p| p.payload[0] == b'B')
                .count()
                > 25
        },
    )
    .await;
    stop_a.store(true, Ordering::Relaxed);
    stop_b.store(true, Ordering::Relaxed);
    let _ = tokio::join!(streaming_a, streaming_b);

    let video = player.received.video.lock().clone();
    let audio = player.received.audio.lock().clone();
    for (what, packets) in [("video", &video), ("audio", &audio)] {
        assert!(
            gaps(packets).is_empty(),
            "{what} sequence numbers continue: {:?}",
            gaps(packets)
        );
        assert!(
            packets.iter().all(|p| p.ssrc == packets[0].ssrc),
            "{what} keeps one SSRC"
        );
        for w in packets.windows(2) {
            let step = w[1].timestamp.wrapping_sub(w[0].timestamp);
            assert!(
                step < 90_000,
                "{what} timestamps move forward by less than a second: {step}"
            );
        }
    }
    let tags: Vec<u8> = audio.iter().map(|p| p.payload[0]).collect();
    let switch = tags.iter().position(|&t| t == b'B').unwrap();
    assert!(tags[..switch].iter().all(|&t| t == b'A') && tags[switch..].iter().all(|&t| t == b'B'));

    // Video: the first publisher's pictures, then the second's starting with an IDR picture.
    let units = depacketize_h264(&video);
    let first_b = units
        .iter()
        .position(|u| clip_b.frames.contains(u))
        .expect("pictures of the new publisher");
    assert!(units[..first_b].iter().all(|u| clip_a.frames.contains(u)));
    assert!(units[first_b..].iter().all(|u| clip_b.frames.contains(u)));
    assert!(
        EncodedClip::is_idr(&units[first_b]),
        "the new publisher's video starts at a keyframe"
    );
    let m = relay.metrics();
    assert_eq!((m.publishers, m.players), (1, 1));
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacks_from_a_lossy_player_are_answered_with_retransmissions() {
    let proxy_socket = common::lossy_proxy::ProxySocket::bind().await;
    let relay = start_relay_announcing(Some(proxy_socket.addr)).await;
    let armed = Arc::new(AtomicBool::new(false));
    let proxy =
        common::lossy_proxy::LossyProxy::start(proxy_socket, relay.local_addr(), 12, armed.clone());

    let clip = Arc::new(EncodedClip::encode(60, 30, 400_000, 320, 240).await);
    let publisher = Arc::new(Publisher::connect(&relay, key("n")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip.clone(), b"A", stop.clone());
    let player = Player::connect(&relay, key("n")).await;
    wait_for("media to flow", Duration::from_secs(3), || {
        player.received.video_len() > 5
    })
    .await;

    armed.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    armed.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dropped = proxy.dropped.load(Ordering::Relaxed);
    let retransmissions = relay.metrics().retransmissions;
    eprintln!("dropped {dropped}, retransmitted {retransmissions}");
    assert!(dropped >= 20, "the proxy dropped {dropped} packets");
    assert!(retransmissions > 0, "the relay retransmitted");

    // Every video packet arrived, late or not.
    let mut seqs: Vec<u64> = Vec::new();
    let mut roc = 0u64;
    let mut last: Option<u16> = None;
    for p in player.received.video.lock().iter() {
        if let Some(l) = last {
            if p.seq < 0x1000 && l > 0xF000 {
                roc += 1;
            }
        }
        last = Some(p.seq);
        seqs.push((roc << 16) | u64::from(p.seq));
    }
    seqs.sort_unstable();
    seqs.dedup();
    let missing = (seqs[seqs.len() - 1] - seqs[0] + 1) - seqs.len() as u64;
    assert_eq!(
        missing, 0,
        "{missing} video packets never arrived ({dropped} dropped, {retransmissions} resent)"
    );
    relay.shutdown().await;
}
