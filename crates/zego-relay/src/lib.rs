//! The media relay (SFU): every WebRTC peer of the server on ONE UDP port.
//!
//! Publishers send H.264 video and Opus audio; the relay forwards each publisher's RTP to every player of that
//! stream. The WebRTC protocol work (ICE-lite, DTLS-SRTP, RTP/RTCP) is done by the sans-IO str0m core; this crate
//! owns the socket, demultiplexes datagrams to peers, and routes media between them.
//!
//! All str0m `Rtc` instances live in sans-IO cores (`sfu`), each driven with its own socket on the one port and the
//! clock by a dedicated I/O thread (`io_loop`); there are as many as [`RelayConfig::io_threads`] says, by default one
//! per core (`shard` describes how they share the work). The async methods of [`Relay`] send commands to those
//! threads and await their replies, so nothing blocking runs on the caller's runtime.

mod audio_rtx_sdp;
mod counters;
mod fec;
mod fec_sdp;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod input_log;
mod io_loop;
mod keyframe;
mod keyframe_cache;
mod msid_sdp;
mod offer;
mod pull;
#[cfg(test)]
mod pull_tests;
mod rewrite;
mod route;
mod session;
mod sfu;
#[cfg(test)]
mod sfu_tests;
mod shard;
mod socket_outbox;
mod thread_cpu;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::counters::Counters;
use crate::io_loop::{Command, IoLoop, ShardLinks};
use crate::shard::{Placement, ShardLoad, MAX_SHARDS};
use crate::thread_cpu::ThreadCpuClock;

/// Where the relay listens and what it announces in its ICE candidate.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The one UDP socket of all media.
    pub bind: SocketAddr,
    /// The address put in the ICE candidate of every SDP answer (for a server behind NAT, or an impairment relay in
    /// front of it). Defaults to the bound address.
    pub announce: Option<SocketAddr>,
    /// I/O threads serving the port, each with its own socket (SO_REUSEPORT: the kernel spreads peers over them by
    /// address). `0` means one per core. Other systems than Linux use one.
    pub io_threads: usize,
}

impl RelayConfig {
    /// The I/O threads the relay will run.
    pub fn io_thread_count(&self) -> usize {
        if !cfg!(target_os = "linux") {
            return 1;
        }
        let threads = match self.io_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        threads.min(MAX_SHARDS)
    }
}

/// Timing knobs of the relay; [`Relay::start`] uses the defaults.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// A session whose ICE and DTLS have not completed this long after its answer was made is closed.
    pub connect_timeout: Duration,
    /// A session from which no datagram arrived for this long is closed (WebRTC peers send STUN consent checks
    /// every few seconds even without media).
    pub idle_timeout: Duration,
    /// A connected publisher from which nothing at all (media, RTCP, STUN consent checks) arrived for this long is
    /// lost: killed, or its network gone. Its session ends with [`RelayEvent::Lost`], so its stream can end long
    /// before the signaling heartbeat times out. A live peer that sends no media still sends RTCP every second and
    /// STUN every few seconds.
    pub publisher_lost_timeout: Duration,
    /// At most one keyframe request per stream is sent to its publisher in this interval.
    pub keyframe_request_interval: Duration,
    /// A player still waiting for its first keyframe asks again when the last request is overdue: twice the time
    /// the publisher took to answer lately and a margin, at most this long (and this long before any answer).
    pub keyframe_retry_after: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(10),
            publisher_lost_timeout: Duration::from_secs(3),
            keyframe_request_interval: Duration::from_millis(500),
            keyframe_retry_after: Duration::from_millis(1500),
        }
    }
}

/// A stream is identified per app.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub app_id: u32,
    pub stream_id: String,
}

/// One publisher or player peer connection.
pub type SessionId = u64;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the SDP offer was rejected: {0}")]
    BadOffer(String),
    #[error("the stream is not published")]
    StreamNotPublished,
    /// [`Relay::pull`] of a stream that has a publisher or a pull already. Publishing a published stream replaces
    /// its publisher instead (see [`Relay::publish`]).
    #[error("the stream is already published")]
    AlreadyPublished,
    #[error("the relay has shut down")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Counters since start, for `/metrics`.
///
/// `publishers`, `pulls` and `players` are the sessions open now; every other field is a total since start. Packet
/// and byte counts are of RTP media (bytes are RTP payload bytes), so `bytes_forwarded` is `bytes_received` times
/// the number of players that got it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayMetrics {
    /// Publisher sessions open now (not counting pulls).
    pub publishers: u64,
    /// Pulls open now: sessions that take a stream from another relay (see [`Relay::pull`]).
    pub pulls: u64,
    /// Player sessions open now.
    pub players: u64,
    /// RTP media packets accepted from publishers (authenticated, not duplicates).
    pub packets_received: u64,
    /// RTP payload bytes of those packets.
    pub bytes_received: u64,
    /// RTP media packets forwarded to players (first transmissions).
    pub packets_forwarded: u64,
    /// RTP payload bytes of those packets.
    pub bytes_forwarded: u64,
    /// RTX packets sent to players in answer to their NACKs.
    pub retransmissions: u64,
    /// Repair packets sent to players on lossy paths.
    pub repair_packets: u64,
    /// Publisher packets lost on the way in and rebuilt from the publisher's repair packets (forwarded like
    /// received ones, and not counted in `packets_received`).
    pub fec_rebuilt: u64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: u64,
    /// Players started from their stream's cached keyframe instead of a keyframe request.
    pub cached_keyframe_starts: u64,
    /// Estimates (REMB) sent to publishers: the lowest of what their players' downlinks can receive.
    pub receiver_estimates: u64,
    /// Datagrams no session would take: garbage, unknown senders, or input a session rejected.
    pub datagrams_dropped: u64,
    /// Packets an I/O thread dropped because it fell behind: handed to it by another I/O thread (media to forward,
    /// a datagram of one of its peers) longer ago than is of any use. Under overload the relay drops instead of
    /// delaying, as a full socket buffer does.
    pub overload_drops: u64,
}

/// What happens to sessions, for the signaling side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// ICE and DTLS completed.
    Connected(SessionId),
    /// The peer went away (DTLS close, never connected) or was closed.
    Disconnected(SessionId),
    /// The peer vanished: nothing came from it for a while after it had connected (see
    /// [`RelayOptions::publisher_lost_timeout`]), as when its process is killed. Sent instead of `Disconnected`.
    Lost(SessionId),
}

/// A handle to the running relay; cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    /// Each I/O thread's commands, by shard.
    shards: Vec<mpsc::UnboundedSender<Command>>,
    load: Arc<ShardLoad>,
    events: broadcast::Sender<RelayEvent>,
    counters: Arc<Counters>,
    local_addr: SocketAddr,
    announced_addr: SocketAddr,
    io_thread_cpu: Vec<ThreadCpuClock>,
}

/// How many session events a slow subscriber may lag behind before it misses some.
const EVENT_CAPACITY: usize = 1024;

/// Socket buffers sized for bursts of many peers' media (the kernel caps them at its maximum).
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

impl Relay {
    /// Binds the socket and starts the relay's I/O thread.
    pub async fn start(config: RelayConfig) -> io::Result<Relay> {
        Self::start_with_options(config, RelayOptions::default()).await
    }

    /// Like [`Relay::start`], with explicit timing options.
    pub async fn start_with_options(
        config: RelayConfig,
        options: RelayOptions,
    ) -> io::Result<Relay> {
        let threads = config.io_thread_count();
        let sockets = bind_sockets(config.bind, threads)?;
        let local_addr = sockets[0].local_addr()?;
        let announced_addr = config.announce.unwrap_or(local_addr);
        if announced_addr.ip().is_unspecified() {
            tracing::warn!(%announced_addr, "the relay announces an unspecified address; set RelayConfig::announce");
        }

        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let counters = Arc::new(Counters::default());
        let load = ShardLoad::new(threads);
        let (inbox_tx, inbox_rx): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
        let mut shards = Vec::with_capacity(threads);
        let mut io_thread_cpu = Vec::with_capacity(threads);
        let mut started = Vec::with_capacity(threads);
        for (shard, (socket, inbox)) in sockets.into_iter().zip(inbox_rx).enumerate() {
            let (commands, command_rx) = mpsc::unbounded_channel();
            let links = ShardLinks {
                inbox,
                peers: inbox_tx.clone(),
            };
            let io_loop = IoLoop::new(
                local_addr,
                announced_addr,
                options.clone(),
                Placement {
                    shard,
                    shards: threads,
                },
                load.clone(),
                command_rx,
                links,
                events.clone(),
                counters.clone(),
            )
            .map_err(|e| io::Error::other(format!("relay setup failed: {e}")))?;
            let cpu_clock = ThreadCpuClock::default();
            let thread_clock = cpu_clock.clone();
            let (ready_tx, ready_rx) = oneshot::channel();
            std::thread::Builder::new()
                .name(format!("zego-relay-io-{shard}"))
                .spawn(move || io_loop::run_thread(io_loop, socket, thread_clock, ready_tx))?;
            shards.push(commands);
            io_thread_cpu.push(cpu_clock);
            started.push(ready_rx);
        }
        let relay = Relay {
            inner: Arc::new(Inner {
                shards,
                load,
                events,
                counters,
                local_addr,
                announced_addr,
                io_thread_cpu,
            }),
        };
        for ready in started {
            let ready = ready
                .await
                .map_err(|_| io::Error::other("a relay I/O thread died while starting"));
            if let Err(e) = ready.and_then(|r| r) {
                relay.shutdown().await;
                return Err(e);
            }
        }

        tracing::info!(%local_addr, %announced_addr, io_threads = threads, "media relay started");
        Ok(relay)
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address announced in ICE candidates.
    pub fn announced_addr(&self) -> SocketAddr {
        self.inner.announced_addr
    }

    /// Accepts a publisher's offer (send-only H.264 + Opus) and returns its session and the SDP answer.
    ///
    /// A stream that already has a publisher gets the new one instead: the old publisher session is closed, and the
    /// players stay attached and continue with the new publisher's media, starting at a keyframe.
    pub async fn publish(
        &self,
        key: StreamKey,
        offer_sdp: &str,
    ) -> Result<(SessionId, String), RelayError> {
        let (reply, answer) = oneshot::channel();
        let origin = shard::origin_of(&key, self.inner.shards.len());
        self.send(
            origin,
            Command::Publish {
                key,
                offer: offer_sdp.to_owned(),
                reply,
            },
        )?;
        answer.await.map_err(|_| RelayError::Closed)?
    }

    /// Accepts a player's offer (receive-only video + audio) for a published stream and returns its session and the
    /// SDP answer. The publisher is asked for a keyframe at once (throttled per stream). The player goes to the I/O
    /// thread with the fewest sessions.
    pub async fn play(
        &self,
        key: StreamKey,
        offer_sdp: &str,
    ) -> Result<(SessionId, String), RelayError> {
        let origin = shard::origin_of(&key, self.inner.shards.len());
        let shard = self.inner.load.least_loaded(origin);
        if shard != origin {
            let (reply, published) = oneshot::channel();
            self.send(
                origin,
                Command::IsPublished {
                    key: key.clone(),
                    reply,
                },
            )?;
            if !published.await.map_err(|_| RelayError::Closed)? {
                return Err(RelayError::StreamNotPublished);
            }
        }
        let (reply, answer) = oneshot::channel();
        self.send(
            shard,
            Command::Play {
                key,
                offer: offer_sdp.to_owned(),
                reply,
            },
        )?;
        answer.await.map_err(|_| RelayError::Closed)?
    }

    /// Opens a session that pulls `key` from another relay: it becomes the stream's publisher in this relay (local
    /// players attach to it as to any publisher, with the keyframe cache, keyframe requests and estimates passed
    /// upstream), but it is the offering side. Returns its session id and the SDP offer (receive-only H.264 + Opus,
    /// NACK/RTX) to hand to the other relay, which answers it as it answers any player (`Relay::play`).
    /// Err(RelayError::AlreadyPublished) if the stream already has a publisher or a pull here; Err(RelayError::Io(..))
    /// if the pull's own socket (see [`Relay::complete_pull`]) cannot be opened.
    ///
    /// Players may play the stream at once; they wait for its first keyframe as with a new publisher. The session
    /// ends like any other ([`Relay::close_session`], or [`RelayEvent::Lost`] when the other relay goes silent for
    /// [`RelayOptions::publisher_lost_timeout`]). A publisher of the stream that arrives later replaces the pull.
    pub async fn pull(&self, key: StreamKey) -> Result<(SessionId, String), RelayError> {
        let (reply, offer) = oneshot::channel();
        let origin = shard::origin_of(&key, self.inner.shards.len());
        self.send(origin, Command::Pull { key, reply })?;
        offer.await.map_err(|_| RelayError::Closed)?
    }

    /// Completes a pull with the other relay's SDP answer; ICE (this side full ICE, controlling, towards the answer's
    /// host candidate) and DTLS then start. Err(BadOffer(..)) for an answer that does not parse or does not match.
    ///
    /// An answer that does not parse leaves the pull waiting for another; after any other error the pull is of no
    /// use and should be closed (else it ends after [`RelayOptions::connect_timeout`]).
    ///
    /// Each pull has a UDP socket of its own (on this relay's IP, a port the system picks, announced in the pull's
    /// offer) instead of the media port, so any number of pulls between two relays, either way, work side by side.
    pub async fn complete_pull(&self, id: SessionId, answer_sdp: &str) -> Result<(), RelayError> {
        let shard = shard::shard_of_session(id);
        if shard >= self.inner.shards.len() {
            return Err(RelayError::BadOffer(
                "no pull with this session id is open".into(),
            ));
        }
        let (reply, done) = oneshot::channel();
        let answer = answer_sdp.to_owned();
        self.send(shard, Command::CompletePull { id, answer, reply })?;
        done.await.map_err(|_| RelayError::Closed)?
    }

    /// Ends a session. Closing a publisher stops the media of its players; the signaling side tells them.
    pub fn close_session(&self, id: SessionId) {
        // After shutdown there is nothing left to close.
        let _ = self.send(shard::shard_of_session(id), Command::Close(id));
    }

    /// Session events (connected / disconnected).
    pub fn events(&self) -> broadcast::Receiver<RelayEvent> {
        self.inner.events.subscribe()
    }

    pub fn metrics(&self) -> RelayMetrics {
        self.inner.counters.snapshot()
    }

    /// CPU time the relay's I/O threads have used so far, together (Linux; `None` elsewhere or once they ended).
    pub fn io_thread_cpu_time(&self) -> Option<Duration> {
        self.io_thread_cpu_times().into_iter().sum()
    }

    /// CPU time of each I/O thread so far, by thread.
    pub fn io_thread_cpu_times(&self) -> Vec<Option<Duration>> {
        self.inner
            .io_thread_cpu
            .iter()
            .map(ThreadCpuClock::cpu_time)
            .collect()
    }

    /// The I/O threads serving the port.
    pub fn io_threads(&self) -> usize {
        self.inner.shards.len()
    }

    /// The I/O thread (from 0) that serves a session.
    pub fn io_thread_of(&self, id: SessionId) -> usize {
        shard::shard_of_session(id)
    }

    /// Closes every session and stops the I/O threads.
    pub async fn shutdown(&self) {
        let mut stopped = Vec::new();
        for shard in 0..self.inner.shards.len() {
            let (reply, done) = oneshot::channel();
            if self.send(shard, Command::Shutdown { reply }).is_ok() {
                stopped.push(done);
            }
        }
        for done in stopped {
            let _ = done.await;
        }
    }

    fn send(&self, shard: usize, command: Command) -> Result<(), RelayError> {
        // A session id naming no shard of this relay (made up, or of another relay) reaches none.
        let Some(shard) = self.inner.shards.get(shard) else {
            return Err(RelayError::Closed);
        };
        shard.send(command).map_err(|_| RelayError::Closed)
    }
}

/// The relay's sockets, all on one port: the first binds the address asked for (its port may be chosen by the
/// system), the others the same address and port.
fn bind_sockets(bind: SocketAddr, count: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let reuse_port = count > 1;
    let first = bind_socket(bind, reuse_port)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_socket(bound, reuse_port)?);
    }
    Ok(sockets)
}

/// A non-blocking UDP socket bound to `bind`, with large buffers (the shared port's, and each pull's own).
pub(crate) fn bind_socket(bind: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};

    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    // Best effort: a smaller buffer still works, it just absorbs shorter bursts.
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
        tracing::debug!("could not enlarge the receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
        tracing::debug!("could not enlarge the send buffer: {e}");
    }
    socket.bind(&bind.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
