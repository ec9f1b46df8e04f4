//! An I/O thread's socket as the core's [`Outbox`]: datagrams made while the core handles one input are gathered
//! and sent together, with one `sendmmsg` system call per batch on Linux instead of one `sendto` each; a fan-out
//! writes one packet to many players at once, and each call costs more than the copy that gathers them.
//!
//! A backlog holds what the socket could not take while its send buffer was full.
//!
//! The thread's pulls each have a socket of their own (see `pull`), kept here by address for what the pulls send:
//! their checks, DTLS and RTCP, a few datagrams a second, sent at once and not batched.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::sfu::Outbox;

/// Datagrams sent with one system call.
const SEND_BATCH: usize = 64;
/// Datagrams kept while the socket's send buffer is full; beyond this the oldest are dropped.
const MAX_SEND_BACKLOG: usize = 8192;
/// Send errors are logged at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct SocketOutbox {
    pub socket: UdpSocket,
    /// The gathered datagrams' bytes, one after another; kept with its capacity, so gathering allocates nothing.
    bytes: Vec<u8>,
    gathered: Vec<(SocketAddr, Range<usize>)>,
    backlog: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The sockets of this thread's pulls, by the address the pull announces (the source str0m names).
    pull_sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    last_error_log: Option<Instant>,
}

impl SocketOutbox {
    pub fn new(socket: UdpSocket) -> Self {
        SocketOutbox {
            socket,
            bytes: Vec::with_capacity(SEND_BATCH * 1500),
            gathered: Vec::with_capacity(SEND_BATCH),
            backlog: VecDeque::new(),
            pull_sockets: HashMap::new(),
            last_error_log: None,
        }
    }

    /// From now on, what a pull sends from `addr` leaves from `socket`.
    pub fn add_pull_socket(&mut self, addr: SocketAddr, socket: Arc<UdpSocket>) {
        self.pull_sockets.insert(addr, socket);
    }

    /// The pull that sent from `addr` ended: its socket closes once its reader lets it go too.
    pub fn remove_pull_socket(&mut self, addr: SocketAddr) {
        self.pull_sockets.remove(&addr);
    }

    /// Whether datagrams wait for the socket to become writable.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Sends what was gathered, then what waited in the backlog, as far as the socket takes it.
    pub fn flush(&mut self) {
        self.send_gathered();
        while let Some((destination, datagram)) = self.backlog.front() {
            match self.socket.try_send_to(datagram, *destination) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.log_error(&e),
                Ok(_) => {}
            }
            self.backlog.pop_front();
        }
    }

    fn send_gathered(&mut self) {
        let mut sent = 0;
        while sent < self.gathered.len() {
            if !self.backlog.is_empty() {
                // Behind older datagrams: keep the order.
                break;
            }
            match self.send_batch(sent) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The first datagram of the batch failed (an unreachable destination): only it is dropped.
                    self.log_error(&e);
                    sent += 1;
                }
            }
        }
        for (destination, range) in &self.gathered[sent..] {
            if self.backlog.len() >= MAX_SEND_BACKLOG {
                self.backlog.pop_front();
            }
            self.backlog
                .push_back((*destination, self.bytes[range.clone()].to_vec()));
        }
        self.gathered.clear();
        self.bytes.clear();
    }

    /// Sends gathered datagrams from `from` on, as many as one system call takes; returns how many went.
    #[cfg(target_os = "linux")]
    fn send_batch(&self, from: usize) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        use socket2::SockAddr;
        use tokio::io::Interest;

        let batch = &self.gathered[from..self.gathered.len().min(from + SEND_BATCH)];
        let addrs: Vec<SockAddr> = batch.iter().map(|(d, _)| SockAddr::from(*d)).collect();
        let mut iovecs: Vec<libc::iovec> = batch
            .iter()
            .map(|(_, range)| libc::iovec {
                iov_base: self.bytes[range.clone()].as_ptr() as *mut libc::c_void,
                iov_len: range.len(),
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = addrs
            .iter()
            .zip(iovecs.iter_mut())
            .map(|(addr, iov)| {
                // SAFETY: an all-zero msghdr is valid (no control data, no flags); the pointers set below stay
                // valid until `sendmmsg` returns, since `addrs`, `iovecs` and `self.bytes` outlive the call.
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                header.msg_hdr.msg_namelen = addr.len();
                header.msg_hdr.msg_iov = iov;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        let fd = self.socket.as_raw_fd();
        self.socket.try_io(Interest::WRITABLE, || {
            // SAFETY: `headers` holds `headers.len()` initialised entries pointing at live buffers (see above).
            let n = unsafe {
                libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, 0)
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn send_batch(&self, from: usize) -> io::Result<usize> {
        let (destination, range) = &self.gathered[from];
        self.socket
            .try_send_to(&self.bytes[range.clone()], *destination)
            .map(|_| 1)
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
        let start = self.bytes.len();
        self.bytes.extend_from_slice(datagram);
        self.gathered.push((destination, start..self.bytes.len()));
        if self.gathered.len() >= SEND_BATCH {
            self.send_gathered();
        }
    }

    fn send_from(&mut self, source: SocketAddr, destination: SocketAddr, datagram: &[u8]) {
        let Some(socket) = self.pull_sockets.get(&source) else {
            // Never the shared socket: the other side knows the pull by its own socket's address.
            tracing::debug!(%source, "no socket for a pull's datagram");
            return;
        };
        match socket.try_send_to(datagram, destination) {
            Ok(_) => {}
            // A full send buffer drops, as the network would: ICE, DTLS and RTCP retry.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => self.log_error(&e),
        }
    }
}
