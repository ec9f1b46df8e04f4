//! The UDP side: one listening socket for clients, one loopback socket per client towards the server, and a
//! scheduler task per direction that releases packets when their [`Link`] says so.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::impairment::{Impairment, ImpairmentError};
use crate::link::{Link, DEFAULT_MAX_HELD_BYTES};
use crate::stats::NetSimStats;

/// Largest UDP payload; every receive buffer has room for it so nothing is truncated.
const MAX_DATAGRAM: usize = 65_536;

/// Which way packets travel through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client -> server.
    Up,
    /// Server -> client.
    Down,
}

/// Configuration of a relay; [`NetSim::start`] binds its sockets and starts it.
#[derive(Debug, Clone)]
pub struct NetSim {
    listen: SocketAddr,
    upstream: SocketAddr,
    up: Impairment,
    down: Impairment,
    seed: Option<u64>,
    idle_timeout: Duration,
    max_clients: usize,
    max_held_bytes: usize,
}

impl NetSim {
    /// A clean relay that will listen on `listen` for clients and forward to `upstream`.
    /// Both must be loopback addresses; use port 0 in `listen` to let the OS choose.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        Self {
            listen,
            upstream,
            up: Impairment::default(),
            down: Impairment::default(),
            seed: None,
            idle_timeout: Duration::from_secs(60),
            max_clients: 256,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
        }
    }

    /// Impairment for client -> server packets.
    pub fn up(mut self, impairment: Impairment) -> Self {
        self.up = impairment;
        self
    }

    /// Impairment for server -> client packets.
    pub fn down(mut self, impairment: Impairment) -> Self {
        self.down = impairment;
        self
    }

    /// Seeds the random choices (loss, jitter, reordering, duplication) so runs are reproducible.
    /// Packets of several clients interleave as the OS delivers them, so exact reproduction needs one client.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How long a client may stay silent in both directions before its upstream socket is closed (default 60 s).
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Most clients mapped at once (default 256); datagrams from further new addresses are dropped.
    pub fn max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients;
        self
    }

    /// Memory bound, per direction, for packets waiting in the relay (default 16 MiB).
    pub fn max_held_bytes(mut self, max_held_bytes: usize) -> Self {
        self.max_held_bytes = max_held_bytes;
        self
    }

    /// Binds the listening socket and starts forwarding.
    ///
    /// Fails with `InvalidInput` when an address is not loopback or an impairment is invalid.
    pub async fn start(self) -> io::Result<NetSimHandle> {
        for (what, addr) in [("listen", self.listen), ("upstream", self.upstream)] {
            if !addr.ip().is_loopback() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{what} address {addr} is not loopback; the relay only works on loopback"
                    ),
                ));
            }
        }
        if self.upstream.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "upstream address needs a port",
            ));
        }
        for impairment in [&self.up, &self.down] {
            impairment.validate().map_err(invalid_input)?;
        }

        let listener = Arc::new(UdpSocket::bind(self.listen).await?);
        let local_addr = listener.local_addr()?;
        let (up_seed, down_seed) = match self.seed {
            // Different streams per direction, both fixed by the one seed.
            Some(seed) => (Some(seed), Some(seed ^ 0x9e37_79b9_7f4a_7c15)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            up: Lane::new(Link::new(self.up, up_seed).with_max_held_bytes(self.max_held_bytes)),
            down: Lane::new(
                Link::new(self.down, down_seed).with_max_held_bytes(self.max_held_bytes),
            ),
            clients: Mutex::new(HashMap::new()),
            rejected: AtomicU64::new(0),
            epoch: Instant::now(),
        });

        let tasks = vec![
            tokio::spawn(accept_clients(
                shared.clone(),
                listener.clone(),
                self.upstream,
                self.max_clients,
            )),
            tokio::spawn(remove_idle_clients(shared.clone(), self.idle_timeout)),
            tokio::spawn(run_lane(shared.up.clone())),
            tokio::spawn(run_lane(shared.down.clone())),
        ];
        tracing::info!(listen = %local_addr, upstream = %self.upstream, "netsim relay started");
        Ok(NetSimHandle {
            shared,
            local_addr,
            upstream: self.upstream,
            tasks,
        })
    }
}

/// Starts a relay listening on `listen` that forwards to `upstream` with the given impairments.
///
/// Shorthand for `NetSim::new(listen, upstream).up(up).down(down).start()`.
pub async fn start(
    listen: SocketAddr,
    upstream: SocketAddr,
    up: Impairment,
    down: Impairment,
) -> io::Result<NetSimHandle> {
    NetSim::new(listen, upstream)
        .up(up)
        .down(down)
        .start()
        .await
}

/// A running relay. Dropping it stops every task without waiting; [`NetSimHandle::shutdown`] also waits.
pub struct NetSimHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl NetSimHandle {
    /// The address clients send to (the one to announce in ICE candidates).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server address packets are forwarded to.
    pub fn upstream_addr(&self) -> SocketAddr {
        self.upstream
    }

    /// Replaces the impairment of one direction; packets arriving from now on get it. Packets already
    /// waiting keep their release times, and later packets of the same client still leave after them.
    pub fn set_impairment(
        &self,
        direction: Direction,
        impairment: Impairment,
    ) -> Result<(), ImpairmentError> {
        impairment.validate()?;
        tracing::info!(?direction, %impairment, "netsim impairment changed");
        let lane = self.shared.lane(direction);
        lane.link.lock().set_impairment(impairment);
        lane.wake.notify_one();
        Ok(())
    }

    /// The impairment one direction currently applies.
    pub fn impairment(&self, direction: Direction) -> Impairment {
        self.shared.lane(direction).link.lock().impairment().clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NetSimStats {
        NetSimStats {
            up: self.shared.up.link.lock().stats(),
            down: self.shared.down.link.lock().stats(),
            clients: self.shared.clients.lock().len(),
            rejected_packets: self.shared.rejected.load(Ordering::Relaxed),
        }
    }

    /// Stops forwarding, closes every socket and waits until all tasks have ended. Waiting packets are discarded.
    pub async fn shutdown(mut self) {
        let mut tasks = std::mem::take(&mut self.tasks).into_iter();
        // The acceptor first, so no client is added while the table is emptied.
        if let Some(acceptor) = tasks.next() {
            acceptor.abort();
            let _ = acceptor.await;
        }
        let tasks: Vec<JoinHandle<()>> = tasks.collect();
        let clients: Vec<Client> = self
            .shared
            .clients
            .lock()
            .drain()
            .map(|(_, client)| client)
            .collect();
        for client in &clients {
            client.reader.abort();
        }
        for client in clients {
            let _ = client.reader.await;
        }
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        // Waiting packets hold the listening socket; drop them so the port is free when this returns.
        for lane in [&self.shared.up, &self.shared.down] {
            let mut link = lane.link.lock();
            let impairment = link.impairment().clone();
            *link = Link::new(impairment, None);
        }
        tracing::info!(listen = %self.local_addr, "netsim relay stopped");
    }
}

impl Drop for NetSimHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for client in self.shared.clients.lock().values() {
            client.reader.abort();
        }
    }
}

/// A packet on its way out, with the socket it leaves by.
#[derive(Clone)]
struct Packet {
    data: Arc<[u8]>,
    via: Arc<UdpSocket>,
    /// `None` for the connected upstream sockets.
    to: Option<SocketAddr>,
}

/// One direction: its link, and the scheduler's wake-up when an earlier deadline appears.
struct Lane {
    link: Mutex<Link<SocketAddr, Packet>>,
    wake: Notify,
}

impl Lane {
    fn new(link: Link<SocketAddr, Packet>) -> Arc<Self> {
        Arc::new(Self {
            link: Mutex::new(link),
            wake: Notify::new(),
        })
    }

    fn admit(&self, client: SocketAddr, packet: Packet) {
        let len = packet.data.len();
        let now = Instant::now();
        let mut link = self.link.lock();
        let before = link.next_release();
        link.push(now, client, packet, len);
        let after = link.next_release();
        drop(link);
        // The scheduler already sleeps until `before`; it only needs waking for something sooner.
        let sooner = match (before, after) {
            (None, Some(_)) => true,
            (Some(before), Some(after)) => after < before,
            _ => false,
        };
        if sooner {
            self.wake.notify_one();
        }
    }
}

struct Client {
    socket: Arc<UdpSocket>,
    /// Milliseconds since `Shared::epoch` of the last packet in either direction.
    last_seen: Arc<AtomicU64>,
    reader: JoinHandle<()>,
}

struct Shared {
    up: Arc<Lane>,
    down: Arc<Lane>,
    clients: Mutex<HashMap<SocketAddr, Client>>,
    rejected: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn lane(&self, direction: Direction) -> &Lane {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Receives from clients, gives each new source address its own upstream socket, and feeds the up lane.
async fn accept_clients(
    shared: Arc<Shared>,
    listener: Arc<UdpSocket>,
    upstream: SocketAddr,
    max_clients: usize,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match listener.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) => {
                pause_after_error("receive from clients", &err).await;
                continue;
            }
        };
        if from == upstream {
            tracing::debug!(%from, "dropping datagram sent by the server to the client port");
            continue;
        }
        let known = shared.clients.lock().get(&from).map(|client| {
            client.last_seen.store(shared.millis(), Ordering::Relaxed);
            client.socket.clone()
        });
        let socket = match known {
            Some(socket) => socket,
            None => {
                if shared.clients.lock().len() >= max_clients {
                    shared.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%from, max_clients, "client table full, dropping datagram");
                    continue;
                }
                match open_client(&shared, &listener, from, upstream).await {
                    Ok(socket) => socket,
                    Err(err) => {
                        tracing::warn!(%from, %err, "could not open an upstream socket for a new client");
                        shared.rejected.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
        };
        let packet = Packet {
            data: Arc::from(&buf[..len]),
            via: socket,
            to: None,
        };
        shared.up.admit(from, packet);
    }
}

/// Binds a loopback socket for `client`, connected to the server so only the server's replies reach it.
async fn open_client(
    shared: &Arc<Shared>,
    listener: &Arc<UdpSocket>,
    client: SocketAddr,
    upstream: SocketAddr,
) -> io::Result<Arc<UdpSocket>> {
    let loopback = match upstream.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let socket = UdpSocket::bind(SocketAddr::new(loopback, 0)).await?;
    socket.connect(upstream).await?;
    let socket = Arc::new(socket);
    let last_seen = Arc::new(AtomicU64::new(shared.millis()));
    tracing::debug!(%client, via = %socket.local_addr()?, "new netsim client");
    let reader = tokio::spawn(read_server(
        shared.clone(),
        socket.clone(),
        listener.clone(),
        client,
        last_seen.clone(),
    ));
    shared.clients.lock().insert(
        client,
        Client {
            socket: socket.clone(),
            last_seen,
            reader,
        },
    );
    Ok(socket)
}

/// Receives the server's replies for one client and feeds the down lane.
async fn read_server(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    last_seen: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            Err(err) => {
                pause_after_error("receive from server", &err).await;
                continue;
            }
        };
        last_seen.store(shared.millis(), Ordering::Relaxed);
        let packet = Packet {
            data: Arc::from(&buf[..len]),
            via: listener.clone(),
            to: Some(client),
        };
        shared.down.admit(client, packet);
    }
}

/// "Port unreachable" echoes on a connected socket are routine (the server is not up yet or went away);
/// anything else is logged, with a short pause so a persistent error cannot spin a core.
async fn pause_after_error(what: &str, err: &io::Error) {
    match err.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
            tracing::trace!(%err, "{what}: peer port closed");
        }
        _ => {
            tracing::warn!(%err, "{what} failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Releases one direction's packets on time.
async fn run_lane(lane: Arc<Lane>) {
    let mut due: Vec<(SocketAddr, Packet)> = Vec::new();
    loop {
        let next = {
            let mut link = lane.link.lock();
            let now = Instant::now();
            while let Some(released) = link.poll_release(now) {
                due.push(released);
            }
            link.next_release()
        };
        let mut errors = 0;
        for (_, packet) in due.drain(..) {
            let sent = match packet.to {
                Some(to) => packet.via.send_to(&packet.data, to).await,
                None => packet.via.send(&packet.data).await,
            };
            if let Err(err) = sent {
                errors += 1;
                tracing::trace!(%err, "netsim send failed");
            }
        }
        if errors > 0 {
            lane.link.lock().count_send_errors(errors);
        }
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = lane.wake.notified() => {}
                }
            }
            None => lane.wake.notified().await,
        }
    }
}

/// Idles out clients that have gone quiet, closing their upstream sockets.
async fn remove_idle_clients(shared: Arc<Shared>, idle_timeout: Duration) {
    let period = (idle_timeout / 4).max(Duration::from_millis(50));
    let idle_ms = u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = shared.millis();
        let idle: Vec<(SocketAddr, Client)> = {
            let mut clients = shared.clients.lock();
            let gone: Vec<SocketAddr> = clients
                .iter()
                .filter(|(_, client)| {
                    now.saturating_sub(client.last_seen.load(Ordering::Relaxed)) >= idle_ms
                })
                .map(|(addr, _)| *addr)
                .collect();
            gone.into_iter()
                .filter_map(|addr| clients.remove(&addr).map(|client| (addr, client)))
                .collect()
        };
        for (addr, client) in idle {
            client.reader.abort();
            shared.up.link.lock().remove_flow(&addr);
            shared.down.link.lock().remove_flow(&addr);
            tracing::debug!(client = %addr, "netsim client idle, upstream socket closed");
        }
    }
}

fn invalid_input(err: ImpairmentError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, err)
}
