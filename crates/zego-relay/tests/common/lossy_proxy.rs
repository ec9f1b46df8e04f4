//! A UDP proxy in front of the relay that drops some of the RTP it passes towards clients, like a lossy last mile.
//! The relay announces the proxy's address, so clients reach the relay only through it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::UdpSocket;

/// The proxy's socket, bound before the relay starts so the relay can announce it.
pub struct ProxySocket {
    pub addr: SocketAddr,
    socket: UdpSocket,
}

impl ProxySocket {
    pub async fn bind() -> ProxySocket {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        ProxySocket {
            addr: socket.local_addr().unwrap(),
            socket,
        }
    }
}

pub struct LossyProxy {
    pub addr: SocketAddr,
    pub dropped: Arc<AtomicU64>,
    /// When set, nothing passes in either direction: the peers behind the proxy go silent.
    pub blackhole: Arc<std::sync::atomic::AtomicBool>,
    upstreams: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LossyProxy {
    /// Drops every `every`-th RTP datagram going to clients, once `armed` is set.
    pub fn start(
        front: ProxySocket,
        relay: SocketAddr,
        every: u64,
        armed: Arc<std::sync::atomic::AtomicBool>,
    ) -> LossyProxy {
        let addr = front.addr;
        let front = Arc::new(front.socket);
        let dropped = Arc::new(AtomicU64::new(0));
        let upstreams: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
        let upstreams_in_task = upstreams.clone();
        let counter = Arc::new(AtomicU64::new(0));
        let dropped_in_task = dropped.clone();
        let blackhole = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let blackhole_in_task = blackhole.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, client)) = front.recv_from(&mut buf).await else {
                    return;
                };
                if blackhole_in_task.load(Ordering::Relaxed) {
                    continue;
                }
                let upstream = upstreams_in_task.lock().get(&client).cloned();
                let upstream = match upstream {
                    Some(u) => u,
                    None => {
                        let u = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        upstreams_in_task.lock().insert(client, u.clone());
                        // Relay -> client, with loss.
                        let (u2, front2) = (u.clone(), front.clone());
                        let (counter, dropped, armed) =
                            (counter.clone(), dropped_in_task.clone(), armed.clone());
                        let blackhole = blackhole_in_task.clone();
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 4096];
                            while let Ok((len, _)) = u2.recv_from(&mut buf).await {
                                if blackhole.load(Ordering::Relaxed) {
                                    continue;
                                }
                                let datagram = &buf[..len];
                                let is_rtp = len >= 12
                                    && datagram[0] >> 6 == 2
                                    && !(64..96).contains(&(datagram[1] & 0x7F));
                                if is_rtp
                                    && armed.load(Ordering::Relaxed)
                                    && counter.fetch_add(1, Ordering::Relaxed) % every == every - 1
                                {
                                    dropped.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                let _ = front2.send_to(datagram, client).await;
                            }
                        });
                        u
                    }
                };
                let _ = upstream.send_to(&buf[..len], relay).await;
            }
        });
        LossyProxy {
            addr,
            dropped,
            blackhole,
            upstreams,
            task,
        }
    }

    /// The sockets the relay sees the clients behind the proxy at: what is sent from one comes, to the relay, from
    /// that client.
    pub fn upstreams(&self) -> Vec<Arc<UdpSocket>> {
        self.upstreams.lock().values().cloned().collect()
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
