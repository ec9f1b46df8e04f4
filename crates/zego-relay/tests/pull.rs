//! One relay pulls streams from another (origin → edge), both on loopback with two I/O threads each: the edge's
//! players get the origin publisher's media through the one pull of each stream, also when several streams are
//! pulled between the two relays at once.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::h264_source::nal_units;
use common::*;
use tokio::sync::broadcast::Receiver;
use zego_relay::{Relay, RelayError, RelayEvent, SessionId};
use zego_rtp::h264::begins_idr_or_sps;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_relay_pulls_streams_for_its_players_until_each_pull_is_closed() {
    let origin = start_relay_with(None, 2).await;
    let edge = start_relay_with(None, 2).await;
    let clip = Arc::new(EncodedClip::encode(60, 30, 400_000, 320, 240).await);

    // A stream's pull lives on the edge's I/O thread its key names, which reads the pull's own socket; the origin
    // serves it on whichever of its threads the kernel gives the pull's datagrams. Two streams whose pulls live on
    // different threads of the edge, one after the other.
    let thread_of_pull = async |stream: &str| {
        let (pull, _) = edge.pull(key(stream)).await.expect("the pull is opened");
        edge.close_session(pull);
        edge.io_thread_of(pull)
    };
    let first = thread_of_pull("s1").await;
    let mut second = None;
    for n in 2..64 {
        let stream = format!("s{n}");
        if thread_of_pull(&stream).await != first {
            second = Some(stream);
            break;
        }
    }
    let second = second.expect("a stream whose pull lives on the other I/O thread");
    for stream in ["s1", second.as_str()] {
        pull_round(&origin, &edge, &clip, stream).await;
    }
    edge.shutdown().await;
    origin.shutdown().await;
}

/// A publisher of `stream` on the origin, the edge's pull of it and two players on the edge, until the pull is
/// closed.
async fn pull_round(origin: &Relay, edge: &Relay, clip: &Arc<EncodedClip>, stream: &str) {
    let mut relays = Relays::new(origin, edge);

    let publisher = Arc::new(Publisher::connect(origin, key(stream)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = publisher.stream(clip.clone(), b"A", stop.clone());

    let (pull, served) = relays.open_pull(stream).await;
    assert!(matches!(
        edge.pull(key(stream)).await,
        Err(RelayError::AlreadyPublished)
    ));
    let m = edge.metrics();
    assert_eq!((m.pulls, m.publishers), (1, 0));

    // The edge's players join before anything came through the pull, on both of its I/O threads.
    let a = Player::connect(edge, key(stream)).await;
    let b = Player::connect(edge, key(stream)).await;
    assert_ne!(
        edge.io_thread_of(a.peer.session),
        edge.io_thread_of(b.peer.session)
    );
    relays.wait_connected(&[(pull, served)]).await;
    wait_for(
        "both of the edge's players to get audio and video",
        Duration::from_secs(10),
        || playing(&a) && playing(&b),
    )
    .await;

    for player in [&a, &b] {
        assert_plays(player, clip, b"A");
    }

    // The pull is closed: the edge's players get no more media, and the origin's session for it ends.
    relays.close_pull((pull, served)).await;
    let after_close = (counts(&a), counts(&b));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!((counts(&a), counts(&b)), after_close, "media ended");
    assert_eq!(edge.metrics().pulls, 0);
    assert_eq!(origin.metrics().publishers, 1);

    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();
    publisher.peer.close().await;
    for player in [a, b] {
        edge.close_session(player.peer.session);
        player.peer.close().await;
    }
    origin.close_session(publisher.peer.session);
}

/// What a player got decodes from its first packet: the encoder's own access units of `clip`, from a keyframe, and
/// the audio of the publisher whose payloads start with `audio_tag`.
fn assert_plays(player: &Player, clip: &EncodedClip, audio_tag: &[u8]) {
    let sent_nals: HashSet<&[u8]> = clip.frames.iter().flat_map(|f| nal_units(f)).collect();
    let video = player.received.video.lock().clone();
    assert!(begins_idr_or_sps(&video[0].payload), "starts at a keyframe");
    let units = depacketize_h264(&video);
    assert!(units.len() > 10);
    assert!(EncodedClip::is_idr(&units[0]));
    for unit in &units {
        assert!(
            nal_units(unit).all(|nal| sent_nals.contains(nal)),
            "a NAL unit the publisher never sent"
        );
    }
    let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
    let mut pictures = 0;
    for unit in &units {
        if decoder.decode(unit).expect("decodable").is_some() {
            pictures += 1;
        }
    }
    assert!(pictures > 10, "{pictures} pictures decoded");
    let audio = player.received.audio.lock().clone();
    assert!(!audio.is_empty());
    assert!(audio.iter().all(|p| p.payload.starts_with(audio_tag)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_streams_pulled_from_one_origin_at_once_play_apart_and_closing_one_pull_leaves_the_other(
) {
    let origin = start_relay_with(None, 2).await;
    let edge = start_relay_with(None, 2).await;
    let mut relays = Relays::new(&origin, &edge);
    // Clips that share no picture, and audio tagged per stream: what a player gets tells its stream.
    let mut clips = Vec::new();
    for variant in 0..2 {
        let clip = EncodedClip::encode_variant(60, 30, 400_000, 320, 240, variant).await;
        clips.push(Arc::new(clip));
    }
    let streams = ["one", "two"];
    let tags: [&'static [u8]; 2] = [b"A", b"B"];

    let stop = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    let mut streaming = Vec::new();
    for i in 0..2 {
        let publisher = Arc::new(Publisher::connect(&origin, key(streams[i])).await);
        streaming.push(publisher.stream(clips[i].clone(), tags[i], stop.clone()));
        publishers.push(publisher);
    }

    // Both pulls between the same two relays, open at the same time.
    let mut pulls = Vec::new();
    for stream in streams {
        pulls.push(relays.open_pull(stream).await);
    }
    assert_eq!(edge.metrics().pulls, 2);
    let mut players = Vec::new();
    for stream in streams {
        players.push(Player::connect(&edge, key(stream)).await);
    }
    relays.wait_connected(&pulls).await;
    wait_for(
        "both streams' players to get audio and video",
        Duration::from_secs(10),
        || players.iter().all(playing),
    )
    .await;
    for i in 0..2 {
        assert_plays(&players[i], &clips[i], tags[i]);
    }

    // The first pull closes: its player's media ends, the other stream plays on through its own pull.
    relays.close_pull(pulls[0]).await;
    let (stopped, going) = (counts(&players[0]), counts(&players[1]));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        counts(&players[0]),
        stopped,
        "the closed pull's media ended"
    );
    let (video, audio) = counts(&players[1]);
    assert!(
        video > going.0 + 10 && audio > going.1 + 25,
        "the other pull goes on: {going:?} then {:?}",
        (video, audio)
    );
    assert_eq!(edge.metrics().pulls, 1);
    assert!(!ended_since(&mut relays.edge_events, pulls[1].0));
    assert_plays(&players[1], &clips[1], tags[1]);

    stop.store(true, Ordering::Relaxed);
    for task in streaming {
        task.await.unwrap();
    }
    for publisher in publishers {
        publisher.peer.close().await;
    }
    for player in players {
        player.peer.close().await;
    }
    edge.shutdown().await;
    origin.shutdown().await;
}

/// An origin relay and an edge relay that pulls from it, with the events of each from when this was made.
struct Relays<'a> {
    origin: &'a Relay,
    edge: &'a Relay,
    origin_events: Receiver<RelayEvent>,
    edge_events: Receiver<RelayEvent>,
}

impl<'a> Relays<'a> {
    fn new(origin: &'a Relay, edge: &'a Relay) -> Relays<'a> {
        Relays {
            origin,
            edge,
            origin_events: origin.events(),
            edge_events: edge.events(),
        }
    }

    /// The edge pulls `stream`: it offers, the origin answers as it answers a player, the edge completes. Returns
    /// the pull's session on the edge and the origin's session serving it.
    async fn open_pull(&self, stream: &str) -> (SessionId, SessionId) {
        let (pull, offer) = self
            .edge
            .pull(key(stream))
            .await
            .expect("the pull is opened");
        let (served, answer) = self
            .origin
            .play(key(stream), &offer)
            .await
            .expect("the origin answers");
        self.edge
            .complete_pull(pull, &answer)
            .await
            .expect("the answer completes the pull");
        (pull, served)
    }

    /// Waits until both ends of every pull are connected, in any order.
    async fn wait_connected(&mut self, pulls: &[(SessionId, SessionId)]) {
        let connected = |ids: Vec<SessionId>| ids.into_iter().map(RelayEvent::Connected).collect();
        let pulled = connected(pulls.iter().map(|p| p.0).collect());
        wait_events(&mut self.edge_events, pulled, Duration::from_secs(5)).await;
        let served = connected(pulls.iter().map(|p| p.1).collect());
        wait_events(&mut self.origin_events, served, Duration::from_secs(5)).await;
    }

    /// Closes a pull on the edge, waits until both of its ends are disconnected, and a little longer for media
    /// already on its way to the players.
    async fn close_pull(&mut self, (pull, served): (SessionId, SessionId)) {
        self.edge.close_session(pull);
        let timeout = Duration::from_secs(2);
        wait_event(
            &mut self.edge_events,
            RelayEvent::Disconnected(pull),
            timeout,
        )
        .await;
        wait_event(
            &mut self.origin_events,
            RelayEvent::Disconnected(served),
            timeout,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The player has got some audio and video.
fn playing(player: &Player) -> bool {
    player.received.got(50, 30)
}

/// The video and audio packets a player has got.
fn counts(player: &Player) -> (usize, usize) {
    (player.received.video_len(), player.received.audio_len())
}

/// Waits for every one of `wanted`, in any order.
async fn wait_events(
    events: &mut Receiver<RelayEvent>,
    mut wanted: Vec<RelayEvent>,
    timeout: Duration,
) {
    let waited = tokio::time::timeout(timeout, async {
        while !wanted.is_empty() {
            match events.recv().await {
                Ok(event) => wanted.retain(|w| *w != event),
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "no {wanted:?} within {timeout:?}");
}

/// Whether the events not yet received include the end of session `id` (they are taken).
fn ended_since(events: &mut Receiver<RelayEvent>, id: SessionId) -> bool {
    let mut ended = false;
    while let Ok(event) = events.try_recv() {
        ended |= matches!(event, RelayEvent::Disconnected(e) | RelayEvent::Lost(e) if e == id);
    }
    ended
}
