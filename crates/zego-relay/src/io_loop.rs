//! One of the relay's I/O threads: owns its UDP socket (one of several on the same port) and the clock, and drives
//! its sans-IO [`Sfu`] with them.
//!
//! It runs a current-thread tokio runtime of its own so it can wait on the socket, the command channel, the other
//! shards' messages and the core's next deadline at once. Each wake-up reads a batch of datagrams and of messages
//! into the core, then lets time pass in it (players that got media transmit it), passes its events and messages
//! on and flushes what the socket could not take at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

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

pub(crate) struct IoLoop {
    local_addr: SocketAddr,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<RelayEvent>,
    links: ShardLinks,
    /// Messages made in this wake-up, per peer shard.
    outgoing: Vec<ShardBatch>,
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
        Ok(IoLoop {
            local_addr,
            commands,
            events,
            links,
            outgoing,
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

            let now = Instant::now();
            self.sfu.handle_timeout(now, &mut outbox);
            self.pass_events();
            outbox.flush();

            if received == RECV_BATCH || batches == SHARD_BATCHES {
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
        self.pass_events();
        flow
    }

    fn close_all(&mut self, outbox: &mut SocketOutbox) {
        self.sfu.close_all(outbox);
        self.pass_events();
        outbox.flush();
        tracing::debug!(addr = %self.local_addr, "all sessions closed");
    }

    fn on_shard_batch(&mut self, batch: ShardBatch, outbox: &mut SocketOutbox) {
        let now = Instant::now();
        for message in batch {
            self.sfu.handle_shard_message(message, now, outbox);
        }
        self.pass_events();
    }

    /// Passes on the core's events, and its messages to other shards, one batch per shard.
    fn pass_events(&mut self) {
        while let Some(event) = self.sfu.poll_event() {
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
