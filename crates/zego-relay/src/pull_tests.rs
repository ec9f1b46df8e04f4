//! Two relays on one fake clock, each of two shards: relay B pulls a stream published on relay A and serves it to
//! its own players. Each relay's datagrams to the other's shared port are read by the other's shard the test names,
//! as the kernel would pick a socket by the pair of addresses; those to a pull's own socket (each pull has one, at
//! an address of its own) go to that pull.

use std::time::{Duration, Instant};

use str0m::media::KeyframeRequestKind;

use crate::sfu::Sfu;
use crate::sfu_tests::{frames_received, key, keyframe_requests, tags, Net, Sent};
use crate::shard::ShardId;
use crate::{RelayEvent, SessionId, StreamKey};

/// Each relay's shards.
const SHARDS: usize = 2;

/// The origin relay (with the publisher) and the edge relay (that pulls), with the shard of each that reads the
/// other's datagrams.
struct Cluster {
    a: Net,
    b: Net,
    a_reads_b_on: ShardId,
    b_reads_a_on: ShardId,
    /// A's datagrams no longer reach B.
    cut: bool,
}

impl Cluster {
    fn new(a_reads_b_on: ShardId, b_reads_a_on: ShardId) -> Cluster {
        let now = Instant::now();
        Cluster {
            a: Net::sharded_at(SHARDS, "10.0.0.1:5000".parse().unwrap(), 1, now),
            b: Net::sharded_at(SHARDS, "10.0.0.2:5000".parse().unwrap(), 2, now),
            a_reads_b_on,
            b_reads_a_on,
            cut: false,
        }
    }

    /// B reads A's datagrams on its shard other than the stream's origin (where its pull lives), A reads B's on
    /// shard 0.
    fn b_reading_a_off_the_origin() -> Cluster {
        let b_origin = crate::shard::origin_of(&key(), SHARDS);
        Cluster::new(0, 1 - b_origin)
    }

    /// A publisher on A's origin shard of the stream, connected. Returns its peer and session.
    fn connected_publisher(&mut self) -> (usize, SessionId) {
        let a_origin = self.a.origin();
        let (publisher, publisher_id) = self.a.join_on(true, a_origin, a_origin);
        self.run_until(Duration::from_secs(2), |c| c.a.peers[publisher].connected());
        (publisher, publisher_id)
    }

    /// Runs both relays and their peers until nothing more happens at the current time.
    fn settle(&mut self) {
        loop {
            self.a.settle();
            self.b.settle();
            let mut moved = 0;
            for (source, destination, datagram) in std::mem::take(&mut self.a.outside) {
                if self.b.owns(destination) && !self.cut {
                    let on = self.b_reads_a_on;
                    self.b
                        .receive_from_outside(on, source, destination, datagram);
                    moved += 1;
                }
            }
            for (source, destination, datagram) in std::mem::take(&mut self.b.outside) {
                if self.a.owns(destination) {
                    let on = self.a_reads_b_on;
                    self.a
                        .receive_from_outside(on, source, destination, datagram);
                    moved += 1;
                }
            }
            if moved == 0 {
                return;
            }
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let end = self.a.now + duration;
        while self.a.now < end {
            self.step();
        }
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Cluster) -> bool) {
        let end = self.a.now + limit;
        while !done(self) {
            assert!(self.a.now < end, "not within {limit:?}");
            self.step();
        }
    }

    fn step(&mut self) {
        self.a.now += Duration::from_millis(5);
        self.b.now = self.a.now;
        self.settle();
    }

    /// Frames `first..end` from A's publisher (peer 0), the first a keyframe, 33 ms apart.
    fn send_gop(&mut self, first: u32, end: u32) {
        for n in first..end {
            self.a.send_frame(0, n == first, n);
            self.run_for(Duration::from_millis(33));
        }
        self.run_for(Duration::from_millis(100));
    }

    /// B pulls the stream from A: B's pull (on the stream's origin shard of B) offers, A answers it as a player
    /// made on A's shard `on`. Returns the pull's session and A's player session for it.
    fn pull(&mut self, on: ShardId) -> (SessionId, SessionId) {
        open_pull(&mut self.b, &mut self.a, key(), on)
    }
}

/// `edge` pulls the stream `key` from `origin`: the edge's pull (on the stream's origin shard of the edge) offers,
/// the origin answers it as a player made on its shard `on`. Returns the pull's session and the origin's player
/// session for it.
fn open_pull(
    edge: &mut Net,
    origin: &mut Net,
    key: StreamKey,
    on: ShardId,
) -> (SessionId, SessionId) {
    let edge_origin = edge.origin_of(&key);
    let local = edge.new_pull_addr();
    let (pull, offer) = on_shard(edge, edge_origin, |shard, now, sent| {
        shard.pull(key.clone(), local, now, sent)
    })
    .expect("the pull is opened");
    edge.pulls.push((local, edge_origin, pull));
    let (served, answer) = on_shard(origin, on, |shard, now, sent| {
        shard.play(key, &offer, now, sent)
    })
    .expect("the origin answers the pull as a player");
    on_shard(edge, edge_origin, |shard, now, sent| {
        shard.complete_pull(pull, &answer, now, sent)
    })
    .expect("the answer completes the pull");
    (pull, served)
}

/// Calls shard `on` of `net` at its current time, then hands on what that sent.
fn on_shard<T>(
    net: &mut Net,
    on: ShardId,
    call: impl FnOnce(&mut Sfu, Instant, &mut Sent) -> T,
) -> T {
    let mut sent = Sent::default();
    let now = net.now;
    let result = call(&mut net.shards[on], now, &mut sent);
    net.pass_messages(&mut sent);
    net.deliver(sent);
    result
}

fn stream(name: &str) -> StreamKey {
    StreamKey {
        app_id: 1,
        stream_id: name.into(),
    }
}

#[test]
fn an_edge_relay_pulls_a_stream_and_serves_it_to_its_players_until_the_pull_closes() {
    // B's shared port reads A's datagrams on the shard other than the pull's: those for the pull reach it on its
    // own socket all the same. A reads B's on the shard other than its player's for the pull, which B's STUN names.
    let mut cluster = Cluster::b_reading_a_off_the_origin();
    let (a_origin, b_origin) = (cluster.a.origin(), cluster.b.origin());

    let (publisher, publisher_id) = cluster.connected_publisher();
    cluster.a.send_frame(publisher, true, 0);
    cluster.run_for(Duration::from_millis(33));

    // A serves the pull from its other shard than the stream's origin: a mirror there.
    let (pull, served) = cluster.pull(1 - a_origin);
    assert_eq!(crate::shard::shard_of_session(served), 1 - a_origin);
    assert!(
        cluster.b.shards[b_origin].is_published(&key()),
        "B's players may play the stream as soon as the pull exists"
    );
    assert_eq!(cluster.b.shards[0].counters_snapshot().pulls, 1);
    assert_eq!(cluster.b.shards[0].counters_snapshot().publishers, 0);

    // Players of B on both of its shards, before any media came through the pull.
    let (near, _) = cluster.b.join_on(false, b_origin, b_origin);
    let (far, far_id) = cluster.b.join_on(false, 1 - b_origin, b_origin);
    cluster.run_until(Duration::from_secs(3), |c| {
        c.b.events.contains(&RelayEvent::Connected(pull))
            && c.a.events.contains(&RelayEvent::Connected(served))
            && c.b.peers[near].connected()
            && c.b.peers[far].connected()
    });
    assert!(cluster.b.events.contains(&RelayEvent::Connected(far_id)));

    cluster.send_gop(1, 12);
    for player in [near, far] {
        let got = tags(&cluster.b.peers[player]);
        assert!(
            got.ends_with(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            "B's player {player} gets A's publisher's frames, from a keyframe: {got:?}"
        );
        let first = frames_received(&cluster.b.peers[player]).remove(0);
        assert!(
            first.windows(5).any(|w| w == [0, 0, 0, 1, 0x65]),
            "its first frame is a keyframe: {got:?}"
        );
    }

    // A keyframe request of a player of B reaches A's publisher through the pull.
    cluster.run_for(Duration::from_millis(600));
    let asked_before = keyframe_requests(&cluster.a.peers[publisher]);
    let peer = &mut cluster.b.peers[far];
    let mid = peer.mid;
    peer.rtc
        .writer(mid)
        .unwrap()
        .request_keyframe(None, KeyframeRequestKind::Pli)
        .unwrap();
    cluster.run_until(Duration::from_secs(1), |c| {
        keyframe_requests(&c.a.peers[publisher]) > asked_before
    });

    // The pull closes on B: its players' media ends, and A's player session for it ends.
    on_shard(&mut cluster.b, b_origin, |shard, now, sent| {
        shard.close(pull, now, sent)
    });
    assert!(cluster.b.events.contains(&RelayEvent::Disconnected(pull)));
    assert!(!cluster.b.shards[b_origin].is_published(&key()));
    assert_eq!(cluster.b.shards[0].counters_snapshot().pulls, 0);
    let before: Vec<usize> = [near, far]
        .iter()
        .map(|&p| tags(&cluster.b.peers[p]).len())
        .collect();
    cluster.send_gop(20, 26);
    let after: Vec<usize> = [near, far]
        .iter()
        .map(|&p| tags(&cluster.b.peers[p]).len())
        .collect();
    assert_eq!(before, after, "no media after the pull closed");
    cluster.run_until(Duration::from_secs(1), |c| {
        c.a.events.contains(&RelayEvent::Disconnected(served))
    });
    assert!(!cluster.a.events.iter().any(
        |e| matches!(e, RelayEvent::Disconnected(id) | RelayEvent::Lost(id) if *id == publisher_id)
    ));
}

#[test]
fn a_pull_of_a_published_stream_is_refused_and_an_answer_must_parse() {
    let mut cluster = Cluster::new(0, 0);
    let b_origin = cluster.b.origin();
    let mut sent = Sent::default();
    let now = cluster.b.now;
    let local = cluster.b.new_pull_addr();
    let (pull, _) = cluster.b.shards[b_origin]
        .pull(key(), local, now, &mut sent)
        .unwrap();
    assert!(matches!(
        cluster.b.shards[b_origin].pull(key(), local, now, &mut sent),
        Err(crate::RelayError::AlreadyPublished)
    ));
    assert!(matches!(
        cluster.b.shards[b_origin].complete_pull(pull, "not an answer", now, &mut sent),
        Err(crate::RelayError::BadOffer(_))
    ));
    assert!(matches!(
        cluster.b.shards[b_origin].complete_pull(pull + 256, "v=0\r\n", now, &mut sent),
        Err(crate::RelayError::BadOffer(_))
    ));
    cluster.settle();
}

#[test]
fn a_pull_whose_origin_goes_silent_is_lost() {
    let mut cluster = Cluster::b_reading_a_off_the_origin();
    cluster.connected_publisher();
    let (pull, _) = cluster.pull(cluster.a.origin());
    cluster.run_until(Duration::from_secs(3), |c| {
        c.b.events.contains(&RelayEvent::Connected(pull))
    });
    // Without media, the origin's answers to the pull's checks keep it alive.
    cluster.run_for(Duration::from_secs(5));
    assert!(!cluster.b.events.contains(&RelayEvent::Lost(pull)));

    // Relay A's datagrams stop reaching B.
    cluster.cut = true;
    let stopped = cluster.a.now;
    cluster.run_until(Duration::from_secs(5), |c| {
        c.b.events.contains(&RelayEvent::Lost(pull))
    });
    assert!(cluster.a.now - stopped >= Duration::from_secs(3));
}

#[test]
fn two_streams_pulled_between_the_same_relays_and_a_pull_each_way_keep_their_own_media() {
    let mut cluster = Cluster::new(0, 1);
    let (s, t, u) = (stream("s"), stream("t"), stream("u"));

    // Streams s and t published on A, u on B.
    let mut publishers = Vec::new();
    for key in [&s, &t] {
        let origin = cluster.a.origin_of(key);
        let (peer, _) = cluster.a.join_stream(key.clone(), true, origin, origin);
        publishers.push(peer);
    }
    let u_origin = cluster.b.origin_of(&u);
    let (u_publisher, _) = cluster.b.join_stream(u.clone(), true, u_origin, u_origin);
    cluster.run_until(Duration::from_secs(2), |c| {
        c.a.peers[publishers[0]].connected()
            && c.a.peers[publishers[1]].connected()
            && c.b.peers[u_publisher].connected()
    });

    // B pulls s and t from A (both served by A's shard 0), and A pulls u from B, all at once.
    let (pull_s, served_s) = open_pull(&mut cluster.b, &mut cluster.a, s.clone(), 0);
    let (pull_t, served_t) = open_pull(&mut cluster.b, &mut cluster.a, t.clone(), 0);
    let (pull_u, served_u) = open_pull(&mut cluster.a, &mut cluster.b, u.clone(), 1);

    // A player of each stream on the relay that pulls it, on both shards.
    let (player_s, _) = cluster.b.join_stream(s.clone(), false, 0, 0);
    let (player_t, _) = cluster.b.join_stream(t.clone(), false, 1, 1);
    let (player_u, _) = cluster.a.join_stream(u.clone(), false, 1, 0);
    cluster.run_until(Duration::from_secs(3), |c| {
        [pull_s, pull_t]
            .iter()
            .all(|id| c.b.events.contains(&RelayEvent::Connected(*id)))
            && c.a.events.contains(&RelayEvent::Connected(pull_u))
            && [served_s, served_t]
                .iter()
                .all(|id| c.a.events.contains(&RelayEvent::Connected(*id)))
            && c.b.events.contains(&RelayEvent::Connected(served_u))
            && c.b.peers[player_s].connected()
            && c.b.peers[player_t].connected()
            && c.a.peers[player_u].connected()
    });

    // Each publisher's frames are tagged apart: s 1.., t 101.., u 201...
    for n in 0..12 {
        cluster.a.send_frame(publishers[0], n == 0, 1 + n);
        cluster.a.send_frame(publishers[1], n == 0, 101 + n);
        cluster.b.send_frame(u_publisher, n == 0, 201 + n);
        cluster.run_for(Duration::from_millis(33));
    }
    cluster.run_for(Duration::from_millis(200));
    let expect = |first: u32| (first..first + 12).collect::<Vec<u32>>();
    assert_eq!(tags(&cluster.b.peers[player_s]), expect(1), "s on B");
    assert_eq!(tags(&cluster.b.peers[player_t]), expect(101), "t on B");
    assert_eq!(tags(&cluster.a.peers[player_u]), expect(201), "u on A");
    for pull in [pull_s, pull_t] {
        assert!(!cluster.b.events.iter().any(|e| matches!(
            e,
            RelayEvent::Disconnected(id) | RelayEvent::Lost(id) if *id == pull
        )));
    }
}
