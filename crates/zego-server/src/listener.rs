//! The HTTP listener: accepts TCP connections within a cap (in all and per client address) and serves each with a
//! deadline for its request head and an idle timeout, so that connections that send nothing, or dribble, cannot
//! hold every file descriptor of the server.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::connection::WARN_PERIOD;
use crate::rate::WarnLimiter;

/// Kernel send buffer of a signaling connection. The bounded per-connection queue is the real buffer; a small
/// kernel buffer keeps memory per connection bounded and lets a client that stopped reading be noticed soon.
const SIGNALING_SEND_BUFFER: usize = 64 * 1024;
/// Pause after an accept error that is not about one connection (out of file descriptors), so that the loop does
/// not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The caps and timeouts of the listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves HTTP on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Mutex::new(OpenConnections::default()));
    let mut warnings = WarnLimiter::new(WARN_PERIOD);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_about_one_connection(&e) => continue,
            Err(e) => {
                if let Some(suppressed) = warnings.allow(Instant::now()) {
                    tracing::warn!(suppressed, "cannot accept a connection: {e}");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&open, peer.ip(), &limits) else {
            if let Some(suppressed) = warnings.allow(Instant::now()) {
                tracing::warn!(
                    %peer,
                    suppressed,
                    "connection refused: too many open connections"
                );
            }
            continue;
        };
        tune(&tcp);
        let stream = GuardedStream::new(tcp, slot, limits.idle_timeout);
        connections.spawn(serve_connection(
            stream,
            router.clone(),
            limits.header_read_timeout,
            shutdown.clone(),
        ));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One HTTP/1 connection; a WebSocket upgrade ends it here and goes on in the task the upgrade spawned.
async fn serve_connection(
    stream: GuardedStream,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("HTTP connection ended: {e}");
            }
            return;
        }
        _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Signaling messages are small and latency matters: no Nagle delay, and a small kernel send buffer.
fn tune(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    if let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(SIGNALING_SEND_BUFFER) {
        tracing::debug!("cannot size the send buffer: {e}");
    }
}

/// Errors that concern only the connection being accepted (it was reset before being taken).
fn is_about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One open connection's place in the count; given back when the connection is dropped.
#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<OpenConnections>>,
    ip: IpAddr,
}

impl Slot {
    /// A slot for a connection from `ip`, unless a cap is reached.
    fn take(
        open: &Arc<Mutex<OpenConnections>>,
        ip: IpAddr,
        limits: &ListenerLimits,
    ) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut counts = open.lock();
        if counts.total >= limits.max_connections {
            return None;
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= limits.max_connections_per_ip {
            return None;
        }
        *from_ip += 1;
        counts.total += 1;
        Some(Slot {
            open: open.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.lock();
        counts.total -= 1;
        if let Some(from_ip) = counts.per_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream that fails reads after [`ListenerLimits::idle_timeout`] without data, and holds its connection
/// [`Slot`] for as long as it lives (through a WebSocket upgrade too).
pub struct GuardedStream {
    inner: TcpStream,
    idle_timeout: Duration,
    last_read: tokio::time::Instant,
    idle: Pin<Box<tokio::time::Sleep>>,
    _slot: Slot,
}

impl GuardedStream {
    fn new(inner: TcpStream, slot: Slot, idle_timeout: Duration) -> Self {
        let now = tokio::time::Instant::now();
        GuardedStream {
            inner,
            idle_timeout,
            last_read: now,
            idle: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            _slot: slot,
        }
    }

    /// Ready with an error once nothing has been read for the idle timeout. The timer is moved forward lazily,
    /// when it fires, rather than on every read.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last_read + self.idle_timeout;
            if deadline <= tokio::time::Instant::now() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing received within the idle timeout",
                ));
            }
            self.idle.as_mut().reset(deadline);
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_read = tokio::time::Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits(max: usize, per_ip: usize) -> ListenerLimits {
        ListenerLimits {
            max_connections: max,
            max_connections_per_ip: per_ip,
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn slots_are_capped_in_all_and_per_address_and_given_back() {
        let open = Arc::new(Mutex::new(OpenConnections::default()));
        let v4 = Ipv4Addr::new(192, 0, 2, 1);
        let a = IpAddr::V4(v4);
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let limits = limits(3, 2);
        let a1 = Slot::take(&open, a, &limits).unwrap();
        let _a2 = Slot::take(&open, a, &limits).unwrap();
        assert!(Slot::take(&open, a, &limits).is_none(), "per-address cap");
        // The same address written as IPv4-mapped IPv6 counts as the same client.
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert!(Slot::take(&open, mapped, &limits).is_none());
        let _b1 = Slot::take(&open, b, &limits).unwrap();
        assert!(Slot::take(&open, c, &limits).is_none(), "global cap");
        drop(a1);
        let _c1 = Slot::take(&open, c, &limits).unwrap();
        assert_eq!(open.lock().total, 3);
    }
}
