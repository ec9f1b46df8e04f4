//! The relay over real UDP sockets on 127.0.0.1: a client socket, the relay, and a plain server socket.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use zego_netsim::{Direction, Impairment, NetSim, NetSimHandle};

const TEST_LIMIT: Duration = Duration::from_secs(20);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn imp(text: &str) -> Impairment {
    text.parse().unwrap()
}

/// What a server socket saw: arrival time, source, payload.
type Seen = Arc<Mutex<Vec<(Instant, SocketAddr, Vec<u8>)>>>;

/// A server on loopback that records every datagram and, when `echo` is set, sends it back to its source.
async fn server(echo: bool) -> (SocketAddr, Seen, JoinHandle<()>) {
    let socket = UdpSocket::bind(loopback()).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            record
                .lock()
                .push((Instant::now(), from, buf[..len].to_vec()));
            if echo {
                let _ = socket.send_to(&buf[..len], from).await;
            }
        }
    });
    (addr, seen, task)
}

/// A client socket that records everything it receives in a background task.
struct Client {
    socket: Arc<UdpSocket>,
    received: Seen,
    task: JoinHandle<()>,
}

impl Client {
    async fn new() -> Self {
        let socket = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
        let received: Seen = Arc::default();
        let (reader, record) = (socket.clone(), received.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, from)) = reader.recv_from(&mut buf).await {
                record
                    .lock()
                    .push((Instant::now(), from, buf[..len].to_vec()));
            }
        });
        Self {
            socket,
            received,
            task,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Sends `count` packets `[tag, seq as u32 BE, padding...]` of `len` bytes, pausing every `batch` packets
    /// so loopback socket buffers never overflow. Returns the send instant of each.
    async fn send_numbered(
        &self,
        to: SocketAddr,
        tag: u8,
        count: u32,
        len: usize,
        batch: u32,
    ) -> Vec<Instant> {
        let mut sent = Vec::with_capacity(count as usize);
        for seq in 0..count {
            let mut packet = vec![0u8; len.max(5)];
            packet[0] = tag;
            packet[1..5].copy_from_slice(&seq.to_be_bytes());
            sent.push(Instant::now());
            self.socket.send_to(&packet, to).await.unwrap();
            if (seq + 1) % batch == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        sent
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn seq_of(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[1..5].try_into().unwrap())
}

/// Waits until `seen` holds `count` datagrams, or `within` passes; returns how many it holds.
async fn wait_for(seen: &Seen, count: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let have = seen.lock().len();
        if have >= count || Instant::now() >= deadline {
            return have;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the relay has nothing left to release in either direction.
async fn settle(relay: &NetSimHandle) {
    let mut last = relay.stats();
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = relay.stats();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Packets that arrived after a packet with a higher sequence number.
fn late_packets(seqs: &[u32]) -> usize {
    let mut highest = None;
    let mut late = 0;
    for &seq in seqs {
        match highest {
            Some(high) if seq < high => late += 1,
            _ => highest = Some(seq),
        }
    }
    late
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_relay_passes_everything_in_order_both_ways_and_keeps_clients_apart() {
    timeout(TEST_LIMIT, async {
        let (server_addr, server_seen, _server) = server(true).await;
        let relay = NetSim::new(loopback(), server_addr).start().await.unwrap();
        let (a, b) = (Client::new().await, Client::new().await);

        let (sent_a, sent_b) = tokio::join!(
            a.send_numbered(relay.local_addr(), b'A', 300, 200, 10),
            b.send_numbered(relay.local_addr(), b'B', 300, 200, 10),
        );
        assert_eq!((sent_a.len(), sent_b.len()), (300, 300));
        assert_eq!(
            wait_for(&a.received, 300, Duration::from_secs(5)).await,
            300
        );
        assert_eq!(
            wait_for(&b.received, 300, Duration::from_secs(5)).await,
            300
        );

        for (client, tag) in [(&a, b'A'), (&b, b'B')] {
            let received = client.received.lock();
            assert!(
                received
                    .iter()
                    .all(|(_, from, _)| *from == relay.local_addr()),
                "replies come from the relay"
            );
            assert!(
                received.iter().all(|(_, _, payload)| payload[0] == tag),
                "no reply of the other client"
            );
            let seqs: Vec<u32> = received
                .iter()
                .map(|(_, _, payload)| seq_of(payload))
                .collect();
            assert_eq!(seqs, (0..300).collect::<Vec<_>>(), "every echo, in order");
        }

        // The server saw one distinct loopback address per client, never the clients' own addresses.
        let seen = server_seen.lock().clone();
        let sources: HashSet<SocketAddr> = seen.iter().map(|(_, from, _)| *from).collect();
        assert_eq!(sources.len(), 2);
        assert!(sources
            .iter()
            .all(|src| src.ip().is_loopback() && *src != a.addr() && *src != b.addr()));
        for tag in [b'A', b'B'] {
            let from: HashSet<SocketAddr> = seen
                .iter()
                .filter(|(_, _, payload)| payload[0] == tag)
                .map(|(_, from, _)| *from)
                .collect();
            assert_eq!(
                from.len(),
                1,
                "each client maps to exactly one upstream address"
            );
        }

        let stats = relay.stats();
        assert_eq!(stats.clients, 2);
        assert_eq!(
            (stats.up.received_packets, stats.up.forwarded_packets),
            (600, 600)
        );
        assert_eq!(
            (stats.down.received_packets, stats.down.forwarded_packets),
            (600, 600)
        );
        assert_eq!(stats.up.forwarded_bytes, 600 * 200);
        relay.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_at_least_the_configured_delay_each_way() {
    timeout(TEST_LIMIT, async {
        let (server_addr, _, _server) = server(true).await;
        let relay = NetSim::new(loopback(), server_addr)
            .up(imp("delay=40ms"))
            .down(imp("delay=30ms,jitter=5ms"))
            .start()
            .await
            .unwrap();
        let client = Client::new().await;
        let mut sent = Vec::new();
        for _ in 0..10 {
            sent.extend(client.send_numbered(relay.local_addr(), 0, 1, 50, 1).await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            wait_for(&client.received, 10, Duration::from_secs(3)).await,
            10
        );
        let rtts: Vec<Duration> = client
            .received
            .lock()
            .iter()
            .zip(&sent)
            .map(|((at, _, _), sent)| *at - *sent)
            .collect();
        for rtt in &rtts {
            // 40 ms up plus at least 25 ms down.
            assert!(
                *rtt >= Duration::from_millis(65),
                "round trip {rtt:?} shorter than the delay"
            );
            assert!(
                *rtt < Duration::from_millis(500),
                "round trip {rtt:?} far beyond the delay"
            );
        }
        relay.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_loss_drops_close_to_the_configured_share() {
    timeout(TEST_LIMIT, async {
        for (loss, text) in [(0.10, "loss=10%"), (0.30, "loss=30%")] {
            let (server_addr, seen, _server) = server(false).await;
            let relay = NetSim::new(loopback(), server_addr)
                .up(imp(text))
                .seed(2024)
                .start()
                .await
                .unwrap();
            let client = Client::new().await;
            client
                .send_numbered(relay.local_addr(), 0, 2000, 100, 20)
                .await;
            settle(&relay).await;

            let stats = relay.stats();
            let arrived = seen.lock().len() as u64;
            assert_eq!(stats.up.received_packets, 2000);
            assert_eq!(
                arrived, stats.up.forwarded_packets,
                "only the loss model drops"
            );
            assert_eq!(stats.up.dropped_loss + stats.up.forwarded_packets, 2000);
            let share = 1.0 - arrived as f64 / 2000.0;
            eprintln!("{text}: {:.2}% of 2000 dropped", share * 100.0);
            assert!(
                (share - loss).abs() < 0.03,
                "{text}: {:.1}% dropped",
                share * 100.0
            );
            relay.shutdown().await;
        }
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_cap_limits_throughput_near_the_cap() {
    timeout(TEST_LIMIT, async {
        let (server_addr, seen, _server) = server(false).await;
        let relay = NetSim::new(loopback(), server_addr)
            .up(imp("rate=1mbit,queue=100ms"))
            .start()
            .await
            .unwrap();
        let client = Client::new().await;
        // Offer about 2 mbit/s (1000 B every 4 ms) for 2 s.
        let mut ticker = tokio::time::interval(Duration::from_millis(4));
        for seq in 0..500u32 {
            ticker.tick().await;
            let mut packet = vec![0u8; 1000];
            packet[1..5].copy_from_slice(&seq.to_be_bytes());
            client
                .socket
                .send_to(&packet, relay.local_addr())
                .await
                .unwrap();
        }
        settle(&relay).await;

        let seen = seen.lock().clone();
        let first = seen.first().unwrap().0;
        let last = seen.last().unwrap().0;
        // Bytes after the first packet, over the time they took to arrive.
        let bits = (seen.len() - 1) as f64 * 1000.0 * 8.0;
        let rate = bits / (last - first).as_secs_f64();
        eprintln!("rate=1mbit: measured {:.0} kbit/s", rate / 1000.0);
        assert!(
            (850_000.0..1_150_000.0).contains(&rate),
            "measured {:.0} kbit/s through a 1 mbit/s cap",
            rate / 1000.0
        );
        let stats = relay.stats();
        assert!(
            stats.up.dropped_queue > 100,
            "excess load is tail-dropped: {}",
            stats.up
        );
        assert_eq!(seen.len() as u64, stats.up.forwarded_packets);
        let seqs: Vec<u32> = seen.iter().map(|(_, _, payload)| seq_of(payload)).collect();
        assert_eq!(late_packets(&seqs), 0);
        relay.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordering_happens_only_when_asked() {
    timeout(TEST_LIMIT, async {
        for (text, want_reordering) in [
            ("delay=5ms,jitter=20ms", false),
            ("delay=5ms,jitter=5ms,reorder=10%", true),
        ] {
            let (server_addr, seen, _server) = server(false).await;
            let relay = NetSim::new(loopback(), server_addr)
                .up(imp(text))
                .seed(11)
                .start()
                .await
                .unwrap();
            let client = Client::new().await;
            client
                .send_numbered(relay.local_addr(), 0, 500, 100, 1)
                .await;
            assert_eq!(
                wait_for(&seen, 500, Duration::from_secs(5)).await,
                500,
                "{text}: nothing lost"
            );

            let seqs: Vec<u32> = seen
                .lock()
                .iter()
                .map(|(_, _, payload)| seq_of(payload))
                .collect();
            let late = late_packets(&seqs);
            let stats = relay.stats();
            eprintln!("{text}: {late} of 500 arrived late");
            assert_eq!(
                late as u64, stats.up.reordered,
                "{text}: counter matches what the server saw"
            );
            if want_reordering {
                assert!(
                    (20..=100).contains(&late),
                    "{text}: {late} of 500 reordered, expected about 50"
                );
            } else {
                assert_eq!(late, 0, "{text}: jitter alone must keep order");
            }
            relay.shutdown().await;
        }
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_impairment_takes_effect_at_run_time() {
    timeout(TEST_LIMIT, async {
        let (server_addr, _, _server) = server(true).await;
        let relay = NetSim::new(loopback(), server_addr).start().await.unwrap();
        let client = Client::new().await;
        let ping = |n: usize| {
            let client = &client;
            let to = relay.local_addr();
            async move {
                let sent = client.send_numbered(to, 0, 1, 20, 1).await[0];
                let got = wait_for(&client.received, n, Duration::from_millis(600)).await;
                (got >= n).then(|| client.received.lock()[n - 1].0 - sent)
            }
        };

        let clean = ping(1).await.expect("clean path answers");
        assert!(
            clean < Duration::from_millis(40),
            "clean round trip {clean:?}"
        );

        relay
            .set_impairment(Direction::Up, imp("delay=80ms"))
            .unwrap();
        assert_eq!(relay.impairment(Direction::Up), imp("delay=80ms"));
        let delayed = ping(2).await.expect("delayed path answers");
        assert!(
            delayed >= Duration::from_millis(80),
            "round trip {delayed:?} after adding 80 ms"
        );

        relay
            .set_impairment(Direction::Down, imp("loss=100%"))
            .unwrap();
        assert_eq!(ping(3).await, None, "replies are lost");
        assert_eq!(relay.stats().down.dropped_loss, 1);

        relay
            .set_impairment(Direction::Up, Impairment::default())
            .unwrap();
        relay
            .set_impairment(Direction::Down, Impairment::default())
            .unwrap();
        // The lost reply never comes; the next one is the third to arrive.
        assert!(ping(3).await.is_some(), "clean again");

        let bad = Impairment {
            loss: 2.0,
            ..Default::default()
        };
        assert!(relay.set_impairment(Direction::Up, bad).is_err());
        relay.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_everything_and_frees_the_ports() {
    timeout(TEST_LIMIT, async {
        let (server_addr, seen, _server) = server(true).await;
        let relay = NetSim::new(loopback(), server_addr)
            .down(imp("delay=300ms"))
            .start()
            .await
            .unwrap();
        let relay_addr = relay.local_addr();
        let client = Client::new().await;
        client.send_numbered(relay_addr, 0, 1, 20, 1).await;
        // The server answers at once; the relay holds the answer for 300 ms.
        assert_eq!(wait_for(&seen, 1, Duration::from_secs(2)).await, 1);
        let mapping = seen.lock()[0].1;
        assert_eq!(relay.stats().clients, 1);

        timeout(Duration::from_secs(2), relay.shutdown())
            .await
            .expect("shutdown finishes promptly");

        // The waiting answer was discarded, and nothing new gets through.
        client.send_numbered(relay_addr, 0, 1, 20, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            client.received.lock().is_empty(),
            "the held answer is never delivered"
        );
        assert_eq!(
            seen.lock().len(),
            1,
            "nothing reaches the server after shutdown"
        );
        // Both the listening socket and the client's upstream socket are closed.
        drop(
            UdpSocket::bind(relay_addr)
                .await
                .expect("listening port released"),
        );
        drop(
            UdpSocket::bind(mapping)
                .await
                .expect("upstream port released"),
        );
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_forgotten_and_come_back_on_their_next_packet() {
    timeout(TEST_LIMIT, async {
        let (server_addr, seen, _server) = server(true).await;
        let relay = NetSim::new(loopback(), server_addr)
            .idle_timeout(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        let client = Client::new().await;
        client.send_numbered(relay.local_addr(), 0, 1, 20, 1).await;
        assert_eq!(
            wait_for(&client.received, 1, Duration::from_secs(2)).await,
            1
        );
        let first_mapping = seen.lock()[0].1;

        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(relay.stats().clients, 0, "idle client removed");
        // Its upstream socket is closed, so its port can be bound again.
        drop(
            UdpSocket::bind(first_mapping)
                .await
                .expect("upstream socket closed"),
        );

        client.send_numbered(relay.local_addr(), 0, 1, 20, 1).await;
        assert_eq!(
            wait_for(&client.received, 2, Duration::from_secs(2)).await,
            2
        );
        assert_eq!(relay.stats().clients, 1);
        relay.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn refuses_addresses_off_loopback_and_invalid_impairments() {
    let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let off_loopback: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = NetSim::new(off_loopback, server)
        .start()
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = NetSim::new(loopback(), "192.0.2.1:5000".parse().unwrap())
        .start()
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let bad = Impairment {
        duplicate: -0.5,
        ..Default::default()
    };
    let err = NetSim::new(loopback(), server)
        .down(bad)
        .start()
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("duplicate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_table_is_bounded() {
    timeout(TEST_LIMIT, async {
        let (server_addr, seen, _server) = server(false).await;
        let relay = NetSim::new(loopback(), server_addr)
            .max_clients(2)
            .start()
            .await
            .unwrap();
        let clients = [
            Client::new().await,
            Client::new().await,
            Client::new().await,
        ];
        for client in &clients {
            client.send_numbered(relay.local_addr(), 0, 1, 20, 1).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        settle(&relay).await;
        let stats = relay.stats();
        assert_eq!(stats.clients, 2);
        assert_eq!(stats.rejected_packets, 1);
        assert_eq!(seen.lock().len(), 2);
        relay.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[test]
fn handle_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<NetSimHandle>();
}
