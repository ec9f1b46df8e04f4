//! One of the relay's I/O threads: owns its UDP socket (one of several on the same port) and the clock, and drives
//! its sans-IO [`Sfu`] with them.
//!
//! It runs a current-thread tokio runtime of its own so it can wait on the socket, the command channel, the other
//! shards' messages and the core's next deadline at once. Each wake-up reads a batch of datagrams and of messages
//! into the core, then lets time pass in it (players that got media transmit it), passes its events and messages
//! on and flushes what the socket could not take at once.
//!
//! A pull opened on this thread gets a UDP socket of its own (see `pull`), bound to the relay's address on a port
//! the system picks, and closed when the pull's session ends. A task on this thread's runtime reads it and hands its
//! datagrams to the loop, tagged with the pull's session; the loop feeds them to that session alone.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::counters::Counters;
use crate::sfu::Sfu;
use crate::shard::{Placement, ShardLoad, ShardMsg};
use crate::socket_outbox::SocketOutbox;
use crate::thread_cpu::ThreadCpuClock;
use crate::{RelayError, RelayEvent, RelayOptions, SessionId, StreamKey};

type Reply = oneshot::Sender<Result<(SessionId, String), RelayError>>;

pub(crate) enum Command {
    Publish {
        key: StreamKey,
        offer: String,
        reply: Reply,
    },
    Play {
        key: StreamKey,
        offer: String,
        reply: Reply,
    },
    /// Asked of a stream's origin shard.
    Pull {
        key: StreamKey,
        reply: Reply,
    },
    /// Asked of the pull's shard.
    CompletePull {
        id: SessionId,
        answer: String,
        reply: oneshot::Sender<Result<(), RelayError>>,
    },
    /// Asked of a stream's origin shard.
    IsPublished {
        key: StreamKey,
        reply: oneshot::Sender<bool>,
    },
    Close(SessionId),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Datagrams read per wake-up before players transmit: batching lets one str0m timeout per player send a burst.
const RECV_BATCH: usize = 64;
/// Batches of other shards' messages taken per wake-up (a batch is what another shard made in one of its wake-ups),
/// so that the socket is read between them.
const SHARD_BATCHES: usize = 4;
/// Larger than any datagram a WebRTC peer sends; anything bigger is garbage anyway.
const RECV_BUFFER: usize = 4096;
/// Datagrams of the pulls' own sockets read but not yet taken by the loop; beyond this their readers wait, and the
/// sockets' receive buffers fill and drop as the shared socket's would.
const PULL_QUEUE: usize = 1024;

pub(crate) fn run_thread(
    io_loop: IoLoop,
    socket: std::net::UdpSocket,
    cpu_clock: ThreadCpuClock,
    ready: oneshot::Sender<io::Result<()>>,
) {
    cpu_clock.register_current_thread();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let socket = match UdpSocket::from_std(socket) {
            Ok(socket) => socket,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        io_loop.run(SocketOutbox::new(socket)).await;
    });
    cpu_clock.unregister();
    tracing::info!("media relay stopped");
}

/// Messages between shards go in batches: one channel send per peer shard and wake-up, not per packet.
pub(crate) type ShardBatch = Vec<ShardMsg>;

/// How an I/O thread reaches the others.
pub(crate) struct ShardLinks {
    pub inbox: mpsc::UnboundedReceiver<ShardBatch>,
    /// Every shard's inbox, this one's included (unused), by shard.
    pub peers: Vec<mpsc::UnboundedSender<ShardBatch>>,
}

/// A datagram a pull's own socket read.
struct PullDatagram {
    /// The pull's session.
    id: SessionId,
    source: SocketAddr,
    data: Vec<u8>,
}

/// A pull's own socket, as the loop keeps it: the socket itself is shared by its reader and the outbox.
struct PullSocket {
    /// The address the pull announces (its host candidate, and the source of what it sends).
    addr: SocketAddr,
    reader: JoinHandle<()>,
}

pub(crate) struct IoLoop {
    local_addr: SocketAddr,
    /// The relay's announced address, whose IP the pulls' sockets announce too.
    announced: SocketAddr,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<RelayEvent>,
    links: ShardLinks,
    /// Messages made in this wake-up, per peer shard.
    outgoing: Vec<ShardBatch>,
    /// This thread's pulls' sockets, by session.
    pulls: HashMap<SessionId, PullSocket>,
    /// What the pulls' sockets read, and the sender their readers get.
    pull_datagrams: mpsc::Receiver<PullDatagram>,
    pull_datagrams_tx: mpsc::Sender<PullDatagram>,
    sfu: Sfu,
}

enum Flow {
    Continue,
    Stop,
}

impl IoLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        local_addr: SocketAddr,
        announced: SocketAddr,
        options: RelayOptions,
        place: Placement,
        load: Arc<ShardLoad>,
        commands: mpsc::UnboundedReceiver<Command>,
        links: ShardLinks,
        events: broadcast::Sender<RelayEvent>,
        counters: Arc<Counters>,
    ) -> Result<Self, String> {
        let outgoing = (0..place.shards).map(|_| Vec::new()).collect();
        let (pull_datagrams_tx, pull_datagrams) = mpsc::channel(PULL_QUEUE);
        Ok(IoLoop {
            local_addr,
            announced,
            commands,
            events,
            links,
            outgoing,
            pulls: HashMap::new(),
            pull_datagrams,
            pull_datagrams_tx,
            sfu: Sfu::new(announced, options, counters, place, load, Instant::now())?,
        })
    }

    async fn run(mut self, mut outbox: SocketOutbox) {
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            // Commands first, so a stream of media never starves signaling.
            while let Ok(command) = self.commands.try_recv() {
                if let Flow::Stop = self.on_command(command, &mut outbox) {
                    return;
                }
            }

            let mut batches = 0;
            while batches < SHARD_BATCHES {
                let Ok(batch) = self.links.inbox.try_recv() else {
                    break;
                };
                batches += 1;
                self.on_shard_batch(batch, &mut outbox);
            }

            let mut received = 0;
            while received < RECV_BATCH {
                match outbox.socket.try_recv_from(&mut buf) {
                    Ok((len, source)) => {
                        received += 1;
                        self.sfu
                            .handle_datagram(&buf[..len], source, Instant::now(), &mut outbox);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!("receive failed: {e}");
                        break;
                    }
                }
            }

            let mut pulled = 0;
            while pulled < RECV_BATCH {
                let Ok(datagram) = self.pull_datagrams.try_recv() else {
                    break;
                };
                pulled += 1;
                self.on_pull_datagram(datagram, &mut outbox);
            }

            let now = Instant::now();
            self.sfu.handle_timeout(now, &mut outbox);
            self.pass_events(&mut outbox);
            outbox.flush();

            if received == RECV_BATCH || pulled == RECV_BATCH || batches == SHARD_BATCHES {
                // More is waiting: read on before sleeping.
                continue;
            }

            let deadline = self.sfu.poll_timeout(now);
            let backlog = outbox.has_backlog();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if let Flow::Stop = self.on_command(command, &mut outbox) {
                            return;
                        }
                    }
                    None => {
                        // Every handle is gone: nobody can use the relay any more.
                        self.close_all(&mut outbox);
                        return;
                    }
                },
                batch = self.links.inbox.recv() => {
                    if let Some(batch) = batch {
                        self.on_shard_batch(batch, &mut outbox);
                    }
                }
                _ = outbox.socket.readable() => {}
                datagram = self.pull_datagrams.recv() => {
                    // Never closed: the loop holds a sender.
                    if let Some(datagram) = datagram {
                        self.on_pull_datagram(datagram, &mut outbox);
                    }
                }
                _ = outbox.socket.writable(), if backlog => {}
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    fn on_command(&mut self, command: Command, outbox: &mut SocketOutbox) -> Flow {
        let now = Instant::now();
        let flow = match command {
            Command::Publish { key, offer, reply } => {
                let _ = reply.send(self.sfu.publish(key, &offer, now, outbox));
                Flow::Continue
            }
            Command::Play { key, offer, reply } => {
                let _ = reply.send(self.sfu.play(key, &offer, now, outbox));
                Flow::Continue
            }
            Command::Pull { key, reply } => {
                let _ = reply.send(self.open_pull(key, now, outbox));
                Flow::Continue
            }
            Command::CompletePull { id, answer, reply } => {
                let _ = reply.send(self.sfu.complete_pull(id, &answer, now, outbox));
                Flow::Continue
            }
            Command::IsPublished { key, reply } => {
                let _ = reply.send(self.sfu.is_published(&key));
                Flow::Continue
            }
            Command::Close(id) => {
                self.sfu.close(id, now, outbox);
                Flow::Continue
            }
            Command::Shutdown { reply } => {
                self.close_all(outbox);
                let _ = reply.send(());
                Flow::Stop
            }
        };
        self.pass_events(outbox);
        flow
    }

    fn close_all(&mut self, outbox: &mut SocketOutbox) {
        self.sfu.close_all(outbox);
        self.pass_events(outbox);
        outbox.flush();
        tracing::debug!(addr = %self.local_addr, "all sessions closed");
    }

    fn on_shard_batch(&mut self, batch: ShardBatch, outbox: &mut SocketOutbox) {
        let now = Instant::now();
        for message in batch {
            self.sfu.handle_shard_message(message, now, outbox);
        }
        self.pass_events(outbox);
    }

    /// Opens a pull: its own socket first, on the relay's IP and a port the system picks, then its session.
    fn open_pull(
        &mut self,
        key: StreamKey,
        now: Instant,
        outbox: &mut SocketOutbox,
    ) -> Result<(SessionId, String), RelayError> {
        // Buffers as large as the shared port's: a pull carries a whole stream, keyframe bursts included.
        let socket = crate::bind_socket(SocketAddr::new(self.local_addr.ip(), 0), false)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        // The announced IP, as for the shared port (the relay's address behind a one-to-one NAT); the port is the
        // socket's own.
        let addr = SocketAddr::new(self.announced.ip(), socket.local_addr()?.port());
        outbox.add_pull_socket(addr, socket.clone());
        let (id, offer) = match self.sfu.pull(key, addr, now, outbox) {
            Ok(pull) => pull,
            Err(e) => {
                outbox.remove_pull_socket(addr);
                return Err(e);
            }
        };
        let reader = tokio::spawn(read_pull(id, socket, self.pull_datagrams_tx.clone()));
        self.pulls.insert(id, PullSocket { addr, reader });
        tracing::debug!(session = id, %addr, "pull socket opened");
        Ok((id, offer))
    }

    fn on_pull_datagram(&mut self, datagram: PullDatagram, outbox: &mut SocketOutbox) {
        let PullDatagram { id, source, data } = datagram;
        self.sfu
            .handle_pull_datagram(id, &data, source, Instant::now(), outbox);
    }

    /// Closes the socket of a pull whose session ended.
    fn close_pull_socket(&mut self, id: SessionId, outbox: &mut SocketOutbox) {
        if let Some(pull) = self.pulls.remove(&id) {
            outbox.remove_pull_socket(pull.addr);
            pull.reader.abort();
            tracing::debug!(session = id, addr = %pull.addr, "pull socket closed");
        }
    }

    /// Passes on the core's events, and its messages to other shards, one batch per shard. A pull's session that
    /// ended takes its socket with it.
    fn pass_events(&mut self, outbox: &mut SocketOutbox) {
        while let Some(event) = self.sfu.poll_event() {
            if let RelayEvent::Disconnected(id) | RelayEvent::Lost(id) = event {
                if !self.pulls.is_empty() {
                    self.close_pull_socket(id, outbox);
                }
            }
            let _ = self.events.send(event);
        }
        while let Some((shard, message)) = self.sfu.poll_shard_message() {
            if let Some(batch) = self.outgoing.get_mut(shard) {
                batch.push(message);
            }
        }
        for (shard, batch) in self.outgoing.iter_mut().enumerate() {
            if !batch.is_empty() {
                let batch = std::mem::take(batch);
                // A shard that stopped (the relay shuts down) needs nothing any more.
                let _ = self.links.peers[shard].send(batch);
            }
        }
    }
}

/// Reads a pull's own socket until the pull ends (its task is aborted) or the loop is gone.
async fn read_pull(id: SessionId, socket: Arc<UdpSocket>, to_loop: mpsc::Sender<PullDatagram>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, source)) => {
                let data = buf[..len].to_vec();
                if to_loop
                    .send(PullDatagram { id, source, data })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => tracing::debug!(session = id, "a pull's receive failed: {e}"),
        }
    }
}
