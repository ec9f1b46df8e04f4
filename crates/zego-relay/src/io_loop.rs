//! The relay's I/O thread: owns the UDP socket and the clock, and drives the sans-IO [`Sfu`] with them.
//!
//! It runs a current-thread tokio runtime of its own so it can wait on the socket, the command channel and the
//! core's next deadline at once. Each wake-up reads a batch of datagrams into the core, then lets time pass in it
//! (players that got media transmit it), passes its events on and flushes what the socket could not take at once.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::counters::Counters;
use crate::sfu::{Outbox, Sfu};
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
    Close(SessionId),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Datagrams read per wake-up before players transmit: batching lets one str0m timeout per player send a burst.
const RECV_BATCH: usize = 64;
/// Larger than any datagram a WebRTC peer sends; anything bigger is garbage anyway.
const RECV_BUFFER: usize = 4096;
/// Datagrams kept while the socket's send buffer is full; beyond this the oldest are dropped.
const MAX_SEND_BACKLOG: usize = 8192;
/// Send errors are logged at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

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

pub(crate) struct IoLoop {
    local_addr: SocketAddr,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<RelayEvent>,
    sfu: Sfu,
}

enum Flow {
    Continue,
    Stop,
}

impl IoLoop {
    pub fn new(
        local_addr: SocketAddr,
        announced: SocketAddr,
        options: RelayOptions,
        commands: mpsc::UnboundedReceiver<Command>,
        events: broadcast::Sender<RelayEvent>,
        counters: Arc<Counters>,
    ) -> Result<Self, String> {
        Ok(IoLoop {
            local_addr,
            commands,
            events,
            sfu: Sfu::new(announced, options, counters, Instant::now())?,
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

            if received == RECV_BATCH {
                // More is waiting: read on before sleeping.
                continue;
            }

            let deadline = self.sfu.poll_timeout(now);
            let backlog = !outbox.backlog.is_empty();
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

    fn pass_events(&mut self) {
        while let Some(event) = self.sfu.poll_event() {
            let _ = self.events.send(event);
        }
    }
}

/// The socket, with a backlog for the rare moments its send buffer is full.
pub(crate) struct SocketOutbox {
    socket: UdpSocket,
    backlog: VecDeque<(SocketAddr, Vec<u8>)>,
    last_error_log: Option<Instant>,
}

impl SocketOutbox {
    fn new(socket: UdpSocket) -> Self {
        SocketOutbox {
            socket,
            backlog: VecDeque::new(),
            last_error_log: None,
        }
    }

    fn flush(&mut self) {
        while let Some((destination, datagram)) = self.backlog.front() {
            match self.socket.try_send_to(datagram, *destination) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.log_error(&e),
                Ok(_) => {}
            }
            self.backlog.pop_front();
        }
    }

    fn log_error(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now >= t + ERROR_LOG_INTERVAL)
        {
            self.last_error_log = Some(now);
            tracing::warn!("send failed: {e}");
        }
    }
}

impl Outbox for SocketOutbox {
    fn send(&mut self, destination: SocketAddr, datagram: &[u8]) {
        if self.backlog.is_empty() {
            match self.socket.try_send_to(datagram, destination) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.log_error(&e);
                    return;
                }
            }
        }
        if self.backlog.len() >= MAX_SEND_BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back((destination, datagram.to_vec()));
    }
}
