//! Runs every WebRTC task on the engine's tokio runtime, whichever thread builds the peer.
//!
//! webrtc's own `TokioRuntime` spawns with `tokio::spawn`, which only works inside a runtime context; the engine
//! hands us a `Handle` instead, so spawning and socket registration go through that handle explicitly.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

#[derive(Debug)]
pub(crate) struct HandleRuntime {
    handle: tokio::runtime::Handle,
    inner: TokioRuntime,
}

impl HandleRuntime {
    pub fn new(handle: tokio::runtime::Handle) -> Arc<HandleRuntime> {
        Arc::new(HandleRuntime {
            handle,
            inner: TokioRuntime,
        })
    }
}

struct TaskHandle(tokio::task::JoinHandle<()>);

impl JoinHandle for TaskHandle {
    fn detach(&self) {}

    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for HandleRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        Box::new(TaskHandle(self.handle.spawn(future)))
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // Registering with the reactor needs the runtime context.
        let _guard = self.handle.enter();
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        let _guard = self.handle.enter();
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.inner.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let _guard = self.handle.enter();
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        let _guard = self.handle.enter();
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.handle.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio-handle"
    }
}
