//! Forged and garbage datagrams from a session's own address: dropped without a log line each.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::lossy_proxy::{LossyProxy, ProxySocket};
use common::*;
use parking_lot::Mutex;
use zego_relay::RelayEvent;

/// Everything logged at WARN and above, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, text: &str) -> usize {
        self.text().lines().filter(|l| l.contains(text)).count()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

/// An SRTP packet of the given stream that no key signed.
fn forged_rtp(ssrc: u32, pt: u8, seq: u16) -> Vec<u8> {
    let mut packet = vec![0x80, pt & 0x7F];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..100).map(|_| rand::random::<u8>()));
    packet
}

/// An SRTCP sender report that no key signed: header, sender SSRC, garbage, E flag and index, tag.
fn forged_rtcp(index: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 200, 0x00, 0x06];
    packet.extend_from_slice(&rand::random::<u32>().to_be_bytes());
    packet.extend((0..20).map(|_| rand::random::<u8>()));
    packet.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
    packet.extend((0..16).map(|_| rand::random::<u8>()));
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_srtp_costs_one_log_line() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let proxy_socket = ProxySocket::bind().await;
    let relay = start_relay_announcing(Some(proxy_socket.addr)).await;
    let proxy = LossyProxy::start(
        proxy_socket,
        relay.local_addr(),
        u64::MAX,
        Arc::new(AtomicBool::new(false)),
    );
    let mut events = relay.events();
    let publisher = Publisher::connect(&relay, key("forged")).await;
    wait_event(
        &mut events,
        RelayEvent::Connected(publisher.peer.session),
        Duration::from_secs(1),
    )
    .await;
    // Real audio first, so that the relay knows the stream the forged packets claim to be of.
    for _ in 0..5 {
        publisher.send_audio(Bytes::from_static(&[0xA5; 80])).await;
    }
    wait_for("the publisher's audio", Duration::from_secs(3), || {
        relay.metrics().packets_received >= 5
    })
    .await;
    let upstreams = proxy.upstreams();
    assert_eq!(upstreams.len(), 1, "only the publisher is behind the proxy");
    let from_publisher = &upstreams[0];

    let (ssrc, pt) = publisher.audio_stream();
    for n in 0..200u16 {
        let forged = forged_rtp(ssrc, pt, 30_000 + n);
        from_publisher
            .send_to(&forged, relay.local_addr())
            .await
            .unwrap();
        let forged = forged_rtcp(u32::from(n) + 1000);
        from_publisher
            .send_to(&forged, relay.local_addr())
            .await
            .unwrap();
        if n % 50 == 0 {
            // Paced a little, so the socket's buffers never drop any of it.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The report comes within a housekeeping round; what the flood could still log comes meanwhile, if at all.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while log.lines_with("peer input rejected") == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = log.text();
    let per_packet = text
        .lines()
        .filter(|l| l.contains("decrypt") && !l.contains("peer input rejected"))
        .count();
    assert_eq!(per_packet, 0, "one report, not a line per packet:\n{text}");
    assert_eq!(log.lines_with("peer input rejected"), 1, "{text}");
    assert_eq!(
        relay.metrics().publishers,
        1,
        "the publisher is not affected"
    );
    publisher.peer.close().await;
    relay.shutdown().await;
}
