//! The relay's core on a fake clock: str0m peers as publisher and player exchange datagrams with an [`Sfu`] in
//! memory, so forwarding, keyframe requests and timeouts are checked without a socket or real time. A sharded relay
//! is several cores passing their messages to each other, with each peer's datagrams read by the shard its address
//! lands on, as the kernel would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::counters::Counters;
use crate::sfu::{Outbox, Sfu};
use crate::shard::{Placement, ShardId, ShardLoad};
use crate::{RelayEvent, RelayOptions, SessionId, StreamKey};

const RELAY: &str = "10.0.0.1:5000";
const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// Datagrams the core sent, for delivery to the peers: each with the address of the pull's socket it left from
/// (none for the shared socket), its destination, and its bytes.
#[derive(Default)]
pub(crate) struct Sent(pub Vec<(Option<SocketAddr>, SocketAddr, Vec<u8>)>);

impl Outbox for Sent {
    fn send(&mut self, destination: SocketAddr, datagram: &[u8]) {
        self.0.push((None, destination, datagram.to_vec()));
    }

    fn send_from(&mut self, source: SocketAddr, destination: SocketAddr, datagram: &[u8]) {
        self.0.push((Some(source), destination, datagram.to_vec()));
    }
}

/// A browser-like peer: full ICE, frame mode, H.264 and Opus.
pub(crate) struct Peer {
    pub rtc: Rtc,
    addr: SocketAddr,
    pub mid: Mid,
    pub events: Vec<Event>,
    /// A peer that went away: it neither sends nor receives.
    gone: bool,
    /// The core's SDP answer to its offer.
    answer: String,
    /// The shard whose socket reads its datagrams.
    lands_on: ShardId,
}

impl Peer {
    fn video_pt(&self) -> str0m::media::Pt {
        self.rtc
            .codec_config()
            .find(|p| p.spec().codec == Codec::H264)
            .expect("H.264 negotiated")
            .pt()
    }

    pub fn connected(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Event::Connected))
    }
}

/// The cores (one per shard) and their peers on one fake clock.
pub(crate) struct Net {
    pub now: Instant,
    start: Instant,
    pub shards: Vec<Sfu>,
    pub peers: Vec<Peer>,
    pub events: Vec<RelayEvent>,
    /// The relay's address.
    pub relay: SocketAddr,
    /// The third byte of its peers' addresses (`10.0.<n>.x`).
    peer_net: u8,
    /// Datagrams the cores sent to addresses none of the peers has (another relay's), with their source and
    /// destination.
    pub outside: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Datagrams from outside for the cores: the shard whose socket reads each, its source, and it.
    pub inbound: Vec<(ShardId, SocketAddr, Vec<u8>)>,
    /// The pulls' own sockets: the address of each, the shard that owns it and its pull's session.
    pub pulls: Vec<(SocketAddr, ShardId, SessionId)>,
    /// Datagrams from outside for the pulls' sockets: the socket's address, the source, and the datagram.
    pub pull_inbound: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Peers whose DTLS records are replaced by [`REFUSED_CLIENT_HELLO`] on their way to the relay.
    pub corrupt_dtls: Vec<usize>,
}

/// A DTLS 1.2 ClientHello that offers no cipher suite: a server must end the handshake with a fatal alert.
const REFUSED_CLIENT_HELLO: &[u8] = &[
    22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x36, // record: handshake, DTLS 1.2, epoch 0, seq 0, 54 bytes
    1, 0, 0, 0x2a, 0, 0, 0, 0, 0, 0, 0,
    0x2a, // ClientHello, 42 bytes, message 0, one fragment
    0xfe, 0xfd, // client_version
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, // random
    0, 0, // no session id, no cookie
    0, 2, 0, 0, // one cipher suite: TLS_NULL_WITH_NULL_NULL, never negotiable
    1, 0, // no compression
];

pub(crate) fn key() -> StreamKey {
    StreamKey {
        app_id: 1,
        stream_id: "s".into(),
    }
}

impl Net {
    fn new() -> Net {
        Net::sharded(1)
    }

    fn sharded(count: usize) -> Net {
        Net::sharded_at(count, RELAY.parse().unwrap(), 1, Instant::now())
    }

    /// A relay of `count` shards at `relay`, its peers at `10.0.<peer_net>.x`, its clock at `now`.
    pub fn sharded_at(count: usize, relay: SocketAddr, peer_net: u8, now: Instant) -> Net {
        let counters = Arc::new(Counters::default());
        let load = ShardLoad::new(count);
        let shards = (0..count)
            .map(|shard| {
                let place = if count == 1 {
                    Placement::SINGLE
                } else {
                    Placement {
                        shard,
                        shards: count,
                    }
                };
                let options = RelayOptions::default();
                Sfu::new(relay, options, counters.clone(), place, load.clone(), now).unwrap()
            })
            .collect();
        Net {
            now,
            start: now,
            shards,
            peers: Vec::new(),
            events: Vec::new(),
            relay,
            peer_net,
            outside: Vec::new(),
            inbound: Vec::new(),
            pulls: Vec::new(),
            pull_inbound: Vec::new(),
            corrupt_dtls: Vec::new(),
        }
    }

    /// The address of the socket a new pull gets: on the relay's IP, a port no other pull of it has.
    pub fn new_pull_addr(&self) -> SocketAddr {
        SocketAddr::new(self.relay.ip(), 6000 + self.pulls.len() as u16)
    }

    /// Whether `addr` is one of the relay's addresses: its shared port or a pull's socket.
    pub fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.relay || self.pulls.iter().any(|p| p.0 == addr)
    }

    /// Hands a datagram from outside to the relay: to the pull whose socket `destination` is, or else to the
    /// shared socket of shard `lands_on`.
    pub fn receive_from_outside(
        &mut self,
        lands_on: ShardId,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: Vec<u8>,
    ) {
        if destination == self.relay {
            self.inbound.push((lands_on, source, datagram));
        } else {
            self.pull_inbound.push((destination, source, datagram));
        }
    }

    pub fn origin(&self) -> ShardId {
        self.origin_of(&key())
    }

    /// The origin shard of the stream `key`.
    pub fn origin_of(&self, key: &StreamKey) -> ShardId {
        crate::shard::origin_of(key, self.shards.len())
    }

    /// A peer that offers video in `direction` (and audio), answered by the core as publisher or player.
    fn join(&mut self, publisher: bool) -> (usize, SessionId) {
        let origin = self.origin();
        self.join_on(publisher, origin, origin)
    }

    /// Like [`Net::join`], with the session made on shard `shard` (a publisher's must be the origin), and the
    /// peer's datagrams read by shard `lands_on`.
    pub fn join_on(
        &mut self,
        publisher: bool,
        shard: ShardId,
        lands_on: ShardId,
    ) -> (usize, SessionId) {
        self.join_stream(key(), publisher, shard, lands_on)
    }

    /// Like [`Net::join_on`], for the stream `key`.
    pub fn join_stream(
        &mut self,
        key: StreamKey,
        publisher: bool,
        shard: ShardId,
        lands_on: ShardId,
    ) -> (usize, SessionId) {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let mut config = Rtc::builder()
            .set_crypto_provider(crypto)
            .clear_codecs()
            .enable_opus(true, false);
        config
            .codec_config()
            .add_h264(108.into(), Some(109.into()), true, 0x42e01f);
        let mut rtc = config.build(self.now);
        let addr: SocketAddr = format!("10.0.{}.{}:4000", self.peer_net, self.peers.len() + 1)
            .parse()
            .unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let direction = if publisher {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, direction, None, None, None);
        change.add_media(MediaKind::Audio, direction, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let mut sent = Sent::default();
        let core = &mut self.shards[shard];
        let (id, answer) = if publisher {
            core.publish(key, &offer.to_sdp_string(), self.now, &mut sent)
        } else {
            core.play(key, &offer.to_sdp_string(), self.now, &mut sent)
        }
        .unwrap();
        self.pass_messages(&mut sent);
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        self.peers.push(Peer {
            rtc,
            addr,
            mid,
            events: Vec::new(),
            gone: false,
            answer,
            lands_on,
        });
        self.deliver(sent);
        (self.peers.len() - 1, id)
    }

    /// Runs everyone until nothing more happens at the current time.
    pub fn settle(&mut self) {
        loop {
            let mut to_core = std::mem::take(&mut self.inbound);
            for (i, peer) in self.peers.iter_mut().enumerate().filter(|(_, p)| !p.gone) {
                peer.rtc.handle_input(Input::Timeout(self.now)).unwrap();
                loop {
                    match peer.rtc.poll_output().unwrap() {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => {
                            let dtls = (20..=63).contains(&t.contents[0]);
                            let contents = if dtls && self.corrupt_dtls.contains(&i) {
                                REFUSED_CLIENT_HELLO.to_vec()
                            } else {
                                t.contents.to_vec()
                            };
                            to_core.push((peer.lands_on, t.source, contents))
                        }
                        Output::Event(e) => peer.events.push(e),
                    }
                }
            }
            let mut sent = Sent::default();
            for (shard, source, datagram) in &to_core {
                self.shards[*shard].handle_datagram(datagram, *source, self.now, &mut sent);
            }
            let to_pulls = std::mem::take(&mut self.pull_inbound);
            for (local, source, datagram) in &to_pulls {
                if let Some(&(_, shard, id)) = self.pulls.iter().find(|p| p.0 == *local) {
                    self.shards[shard]
                        .handle_pull_datagram(id, datagram, *source, self.now, &mut sent);
                }
            }
            let messages = self.pass_messages(&mut sent);
            for core in &mut self.shards {
                core.handle_timeout(self.now, &mut sent);
            }
            let messages = messages + self.pass_messages(&mut sent);
            if to_core.is_empty() && to_pulls.is_empty() && sent.0.is_empty() && messages == 0 {
                return;
            }
            self.deliver(sent);
        }
    }

    /// Delivers what the cores tell each other until they are quiet, and collects their events; returns how many
    /// messages went.
    pub fn pass_messages(&mut self, sent: &mut Sent) -> usize {
        let mut passed = 0;
        loop {
            let mut messages = Vec::new();
            for core in &mut self.shards {
                while let Some(event) = core.poll_event() {
                    self.events.push(event);
                }
                while let Some(message) = core.poll_shard_message() {
                    messages.push(message);
                }
            }
            if messages.is_empty() {
                return passed;
            }
            passed += messages.len();
            for (shard, message) in messages {
                self.shards[shard].handle_shard_message(message, self.now, sent);
            }
        }
    }

    pub fn deliver(&mut self, sent: Sent) {
        let relay = self.relay;
        for (from, destination, datagram) in sent.0 {
            let source = from.unwrap_or(relay);
            let Some(peer) = self.peers.iter_mut().find(|p| p.addr == destination) else {
                self.outside.push((source, destination, datagram));
                continue;
            };
            if peer.gone {
                continue;
            }
            let input = Input::Receive(
                self.now,
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination,
                    contents: datagram.as_slice().try_into().unwrap(),
                },
            );
            peer.rtc.handle_input(input).unwrap();
        }
    }

    /// Moves the clock on in 5 ms steps, settling at each.
    fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.now += Duration::from_millis(5);
            self.settle();
        }
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(self.now < end, "not within {limit:?}");
            self.now += Duration::from_millis(5);
            self.settle();
        }
    }

    /// A keyframe tagged `first` and delta frames up to `end` (exclusive) from peer `from`, 33 ms apart, and the
    /// time for the last to arrive.
    fn send_gop(&mut self, from: usize, first: u32, end: u32) {
        self.send_frame(from, true, first);
        for n in first + 1..end {
            self.run_for(Duration::from_millis(33));
            self.send_frame(from, false, n);
        }
        self.run_for(Duration::from_millis(100));
    }

    /// One frame of video from peer `from`: a keyframe (SPS, PPS, IDR) or a delta frame, in Annex B.
    pub fn send_frame(&mut self, from: usize, keyframe: bool, n: u32) {
        let mut frame = Vec::new();
        let nals: Vec<Vec<u8>> = if keyframe {
            vec![SPS.to_vec(), PPS.to_vec(), slice(0x65, n)]
        } else {
            vec![slice(0x41, n)]
        };
        for nal in nals {
            frame.extend_from_slice(&[0, 0, 0, 1]);
            frame.extend_from_slice(&nal);
        }
        let wallclock = self.now;
        let rtp_time = MediaTime::new(
            (self.now - self.start).as_millis() as u64 * 90,
            Frequency::NINETY_KHZ,
        );
        let peer = &mut self.peers[from];
        let pt = peer.video_pt();
        peer.rtc
            .writer(peer.mid)
            .unwrap()
            .write(pt, wallclock, rtp_time, frame)
            .unwrap();
    }
}

/// The tag of a slice: `n` with no zero byte (for n < 255), so no start code appears inside the NAL unit.
const TAG_BIAS: u32 = 0x0101_0101;

/// A slice NAL unit of type `head`, tagged with `n`, a few hundred bytes long.
fn slice(head: u8, n: u32) -> Vec<u8> {
    let mut v = vec![head];
    v.extend_from_slice(&(n + TAG_BIAS).to_be_bytes());
    v.extend((0..300u32).map(|i| (i as u8).wrapping_mul(31) | 1));
    v
}

pub(crate) fn keyframe_requests(peer: &Peer) -> usize {
    peer.events
        .iter()
        .filter(|e| matches!(e, Event::KeyframeRequest(_)))
        .count()
}

pub(crate) fn frames_received(peer: &Peer) -> Vec<Vec<u8>> {
    peer.events
        .iter()
        .filter_map(|e| match e {
            Event::MediaData(d) if d.mid == peer.mid => Some(d.data.to_vec()),
            _ => None,
        })
        .collect()
}

/// A publisher connected and sending a delta frame every 33 ms, with a keyframe first.
fn publishing() -> (Net, usize, SessionId) {
    let mut net = Net::new();
    let (publisher, id) = net.join(true);
    net.run_until(Duration::from_secs(2), |n| n.peers[publisher].connected());
    net.send_frame(publisher, true, 0);
    net.run_for(Duration::from_millis(33));
    (net, publisher, id)
}

/// The tag of each frame received (its slice's), in order.
pub(crate) fn tags(peer: &Peer) -> Vec<u32> {
    let tag = |f: &Vec<u8>| {
        let at = f
            .windows(5)
            .position(|w| w[..4] == [0, 0, 0, 1] && (w[4] == 0x65 || w[4] == 0x41))?;
        Some(u32::from_be_bytes(f[at + 5..at + 9].try_into().ok()?) - TAG_BIAS)
    };
    frames_received(peer).iter().filter_map(tag).collect()
}

#[test]
fn a_player_joining_mid_gop_is_shown_the_cached_keyframe_then_goes_on_from_a_fresh_one() {
    let (mut net, publisher, _) = publishing();
    for n in 1..30 {
        net.send_frame(publisher, false, n);
        net.run_for(Duration::from_millis(33));
    }
    let asked_before = keyframe_requests(&net.peers[publisher]);
    let (player, _) = net.join(false);
    // The publisher goes on with delta frames until it is asked for a keyframe, and answers with one.
    let mut n = 30;
    while keyframe_requests(&net.peers[publisher]) == asked_before {
        assert!(n < 60, "the publisher was never asked for a keyframe");
        net.send_frame(publisher, false, n);
        net.run_for(Duration::from_millis(33));
        n += 1;
    }
    let first_time = |net: &Net| {
        net.peers[player].events.iter().find_map(|e| match e {
            Event::MediaData(d) if d.mid == net.peers[player].mid => Some(d.time.numer()),
            _ => None,
        })
    };
    let shown = first_time(&net).expect("the cached keyframe arrived before the live one");
    assert_eq!(tags(&net.peers[player]), [0], "the cached keyframe only");
    net.send_gop(publisher, 100, 106);

    let tags = tags(&net.peers[player]);
    assert_eq!(
        tags,
        [0, 100, 101, 102, 103, 104, 105],
        "then live from the fresh keyframe"
    );
    let times: Vec<u64> = net.peers[player]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MediaData(d) if d.mid == net.peers[player].mid => Some(d.time.numer()),
            _ => None,
        })
        .collect();
    assert_eq!(times[0], shown);
    // The fresh keyframe follows the cached one by the wall time between them (well under a second), not by the
    // stream's 2.3 s between the two pictures.
    let gap = times[1] - times[0];
    assert!(gap > 0 && gap < 90_000, "{times:?}");
    // Live pictures keep the publisher's spacing (33 ms, run in 5 ms steps: 35 ms).
    assert!(
        times.windows(2).skip(1).all(|w| w[1] - w[0] == 3150),
        "{times:?}"
    );
    assert_eq!(net.shards[0].counters_snapshot().cached_keyframe_starts, 1);
}

#[test]
fn a_players_join_asks_the_publisher_for_a_keyframe_when_none_is_cached() {
    let mut net = Net::new();
    let (publisher, publisher_id) = net.join(true);
    net.run_until(Duration::from_secs(2), |n| n.peers[publisher].connected());
    assert!(net.events.contains(&RelayEvent::Connected(publisher_id)));
    let asked_before = keyframe_requests(&net.peers[publisher]);

    let (player, player_id) = net.join(false);
    net.run_until(Duration::from_secs(2), |n| {
        keyframe_requests(&n.peers[publisher]) > asked_before
    });
    net.run_until(Duration::from_secs(2), |n| n.peers[player].connected());
    assert!(net.events.contains(&RelayEvent::Connected(player_id)));

    // The publisher answers the request with a keyframe; delta frames follow.
    net.send_gop(publisher, 1, 10);

    let tags = tags(&net.peers[player]);
    assert!(tags.len() >= 8, "{} frames arrived", tags.len());
    assert_eq!(tags.first(), Some(&1), "the player starts at the keyframe");
    assert!(
        tags.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none lost: {tags:?}"
    );
}

/// The `a=msid` value of each m-line of an SDP (by media kind), and the `a=ssrc:… msid:` values of its section.
fn msids(sdp: &str) -> Vec<(String, String, Vec<String>)> {
    sdp.split("\r\nm=")
        .skip(1)
        .map(|section| {
            let kind = section.split(' ').next().unwrap().to_owned();
            let msid = section
                .lines()
                .find_map(|l| l.strip_prefix("a=msid:"))
                .unwrap_or_else(|| panic!("no a=msid for {kind}: {sdp}"))
                .to_owned();
            let ssrc_msids = section
                .lines()
                .filter_map(|l| l.strip_prefix("a=ssrc:")?.split_once(" msid:"))
                .map(|(_, msid)| msid.to_owned())
                .collect();
            (kind, msid, ssrc_msids)
        })
        .collect()
}

#[test]
fn a_play_answer_puts_video_and_audio_in_the_published_streams_media_stream() {
    let (mut net, publisher, _) = publishing();
    let (player, _) = net.join(false);
    let answer = net.peers[player].answer.clone();
    let lines = msids(&answer);
    let [(video, video_msid, video_ssrcs), (audio, audio_msid, audio_ssrcs)] = &lines[..] else {
        panic!("two m-lines: {answer}");
    };
    assert_eq!((video.as_str(), audio.as_str()), ("video", "audio"));
    let (video_stream, video_track) = video_msid.split_once(' ').unwrap();
    let (audio_stream, audio_track) = audio_msid.split_once(' ').unwrap();
    // The published stream's id ("s"), for both.
    assert_eq!((video_stream, audio_stream), ("s", "s"), "{answer}");
    assert_ne!(video_track, audio_track);
    // The SSRC attributes say the same as the m-line's: the video's RTX too.
    assert_eq!(video_ssrcs.len(), 2, "{answer}");
    assert!(video_ssrcs.iter().all(|m| m == video_msid), "{answer}");
    assert_eq!(audio_ssrcs.len(), 1, "{answer}");
    assert!(audio_ssrcs.iter().all(|m| m == audio_msid), "{answer}");
    assert!(answer.contains("a=msid-semantic: WMS s\r\n"), "{answer}");

    // The player plays with that answer.
    net.run_until(Duration::from_secs(2), |n| n.peers[player].connected());
    net.send_frame(publisher, true, 1);
    net.run_for(Duration::from_millis(100));
    assert!(!frames_received(&net.peers[player]).is_empty());
}

#[test]
fn a_publisher_that_goes_silent_is_lost_after_the_timeout_and_a_closed_one_is_not() {
    let (mut net, publisher, publisher_id) = publishing();
    let (player, player_id) = net.join(false);
    net.run_until(Duration::from_secs(2), |n| n.peers[player].connected());

    net.peers[publisher].gone = true;
    net.run_for(Duration::from_millis(2_900));
    assert!(
        !net.events.iter().any(|e| matches!(e, RelayEvent::Lost(_))),
        "nothing is lost before the timeout: {:?}",
        net.events
    );
    net.run_for(Duration::from_millis(300));
    assert!(
        net.events.contains(&RelayEvent::Lost(publisher_id)),
        "{:?}",
        net.events
    );
    // The player is still there, waiting for the stream to come back.
    assert!(!net.events.iter().any(
        |e| matches!(e, RelayEvent::Lost(id) | RelayEvent::Disconnected(id) if *id == player_id)
    ));

    let mut sent = Sent::default();
    net.shards[0].close(player_id, net.now, &mut sent);
    assert_eq!(
        net.shards[0].poll_event(),
        Some(RelayEvent::Disconnected(player_id))
    );
    assert_eq!(net.shards[0].session_count(), 0);
}

#[test]
fn a_second_publisher_of_a_stream_replaces_the_first_and_its_players_stay() {
    let (mut net, _, first_id) = publishing();
    let (player, player_id) = net.join(false);
    net.run_until(Duration::from_secs(2), |n| n.peers[player].connected());

    let (second, second_id) = net.join(true);
    assert!(
        net.events.contains(&RelayEvent::Disconnected(first_id)),
        "{:?}",
        net.events
    );
    net.run_until(Duration::from_secs(2), |n| n.peers[second].connected());
    assert!(net.events.contains(&RelayEvent::Connected(second_id)));
    net.send_frame(second, true, 100);
    net.run_for(Duration::from_millis(100));
    let frames = frames_received(&net.peers[player]);
    assert!(
        frames.iter().any(|f| f
            .windows(5)
            .any(|w| w[0] == 0x65 && w[1..] == (100 + TAG_BIAS).to_be_bytes())),
        "the player gets the new publisher's keyframe"
    );
    assert!(!net.events.contains(&RelayEvent::Disconnected(player_id)));
}

/// Two shards: the publisher's session on the stream's origin, its datagrams read by the other shard.
fn publishing_on_two_shards() -> (Net, usize, ShardId, ShardId) {
    let mut net = Net::sharded(2);
    let origin = net.origin();
    let other = 1 - origin;
    let (publisher, _) = net.join_on(true, origin, other);
    net.run_until(Duration::from_secs(2), |n| n.peers[publisher].connected());
    net.send_frame(publisher, true, 0);
    net.run_for(Duration::from_millis(33));
    (net, publisher, origin, other)
}

#[test]
fn players_on_every_shard_get_the_stream_and_reach_its_publisher() {
    let (mut net, publisher, origin, other) = publishing_on_two_shards();
    // One player beside the publisher, one on the other shard whose datagrams the origin's socket reads.
    let (near, _) = net.join_on(false, origin, origin);
    let (far, far_id) = net.join_on(false, other, origin);
    net.run_until(Duration::from_secs(2), |n| {
        n.peers[near].connected() && n.peers[far].connected()
    });
    assert!(net.events.contains(&RelayEvent::Connected(far_id)));
    assert_eq!(crate::shard::shard_of_session(far_id), other);

    net.send_gop(publisher, 1, 10);
    let near_tags = tags(&net.peers[near]);
    assert!(
        near_tags.ends_with(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
        "{near_tags:?}"
    );
    assert_eq!(
        tags(&net.peers[far]),
        near_tags,
        "the same frames on both shards"
    );

    // A keyframe request of the far player reaches the publisher.
    let asked_before = keyframe_requests(&net.peers[publisher]);
    net.run_for(Duration::from_millis(600));
    let peer = &mut net.peers[far];
    let mid = peer.mid;
    peer.rtc
        .writer(mid)
        .unwrap()
        .request_keyframe(None, str0m::media::KeyframeRequestKind::Pli)
        .unwrap();
    net.run_until(Duration::from_secs(1), |n| {
        keyframe_requests(&n.peers[publisher]) > asked_before
    });
}

#[test]
fn a_late_player_on_another_shard_is_shown_the_cached_keyframe() {
    let (mut net, publisher, origin, other) = publishing_on_two_shards();
    for n in 1..10 {
        net.send_frame(publisher, false, n);
        net.run_for(Duration::from_millis(33));
    }
    let (player, _) = net.join_on(false, other, other);
    let mut n = 10;
    while tags(&net.peers[player]).is_empty() {
        assert!(n < 40, "no picture within a second");
        net.send_frame(publisher, false, n);
        net.run_for(Duration::from_millis(33));
        n += 1;
    }
    assert_eq!(
        tags(&net.peers[player]),
        [0],
        "the cached keyframe, from the origin"
    );
    assert_eq!(
        net.shards[origin]
            .counters_snapshot()
            .cached_keyframe_starts,
        1
    );
}

#[test]
fn a_new_publisher_reaches_the_players_of_every_shard_and_shards_forget_the_stream_after() {
    let (mut net, _, origin, other) = publishing_on_two_shards();
    let (player, player_id) = net.join_on(false, other, other);
    net.run_until(Duration::from_secs(2), |n| n.peers[player].connected());

    let (second, _) = net.join_on(true, origin, origin);
    net.run_until(Duration::from_secs(2), |n| n.peers[second].connected());
    net.send_frame(second, true, 100);
    net.run_for(Duration::from_millis(100));
    assert!(
        tags(&net.peers[player]).contains(&100),
        "the player on the other shard gets the new publisher's keyframe: {:?}",
        tags(&net.peers[player])
    );

    // The last player of the mirror leaves: it unsubscribes, and the origin keeps only its publisher's route.
    let mut sent = Sent::default();
    net.shards[other].close(player_id, net.now, &mut sent);
    net.pass_messages(&mut sent);
    assert_eq!(net.shards[other].route_count(), 0);
    assert_eq!(net.shards[origin].route_count(), 1);
    net.shards[origin].close_all(&mut sent);
    net.pass_messages(&mut sent);
    assert_eq!(net.shards[origin].route_count(), 0);
    assert_eq!(net.shards[0].counters_snapshot().players, 0);
}

/// A peer whose DTLS handshake fails and that goes on sending DTLS ends its own session only: the core that serves
/// every other session stays up (the WebRTC stack is never called on a failed handshake again) and the next peer
/// connects.
#[test]
fn a_failed_dtls_handshake_ends_its_session_and_the_relay_serves_on() {
    let mut net = Net::new();
    let (bad, id) = net.join(true);
    net.corrupt_dtls.push(bad);
    // The peer's DTLS client retransmits its ClientHello for seconds: each one reaches the core.
    net.run_for(Duration::from_secs(5));
    assert!(!net.peers[bad].connected());
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, RelayEvent::Disconnected(session) if *session == id)),
        "{:?}",
        net.events
    );
    let (good, _) = net.join(true);
    net.run_until(Duration::from_secs(5), |n| n.peers[good].connected());
}
