//! WebRTC transport of the media path: one webrtc `PeerConnection` per published or played stream, through the
//! server's relay (ICE-lite, one UDP port).

mod arrival_loss;
pub(crate) mod congestion;
mod fec_receiver;
mod fec_sender;
#[cfg(test)]
mod fec_test_support;
mod keyframe_requests;
pub(crate) mod peer;
mod read_tap;
mod runtime;
pub(crate) mod stats;

use std::net::IpAddr;

use crate::config::PublishChannel;

pub(crate) use keyframe_requests::is_keyframe_request;
pub(crate) use peer::{Peer, PeerRole};

/// What the media side tells the engine about transports that broke after they had connected; the engine then
/// publishes or plays again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaNotice {
    PublisherTransportFailed { channel: PublishChannel },
    PlayerTransportFailed { stream_id: String },
}

/// How peers bind their sockets, derived from the server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransportConfig {
    /// The server is on this machine: bind and gather only 127.0.0.1.
    pub loopback: bool,
}

impl TransportConfig {
    /// Loopback when the host of the signaling URL (`ws://host:port/path`) is a loopback address or `localhost`.
    pub fn for_server_url(url: &str) -> TransportConfig {
        TransportConfig {
            loopback: url_host(url).is_some_and(is_loopback_host),
        }
    }

    /// The local UDP addresses peers bind: loopback only, or every interface.
    pub(crate) fn bind_addrs(&self) -> Vec<String> {
        if self.loopback {
            vec!["127.0.0.1:0".to_owned()]
        } else {
            vec!["0.0.0.0:0".to_owned()]
        }
    }
}

/// The host part of `scheme://[user@]host[:port][/path]`, without IPv6 brackets.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split_once(':').map_or(host_port, |(h, _)| h))
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_keep_media_on_loopback() {
        for url in [
            "ws://127.0.0.1:8080/ws",
            "ws://localhost:1/ws",
            "wss://[::1]:443/x",
            "ws://127.0.0.2/ws",
        ] {
            assert!(TransportConfig::for_server_url(url).loopback, "{url}");
        }
        for url in [
            "ws://10.0.0.1:8080/ws",
            "wss://example.com/ws",
            "ws://user@192.168.1.2:80",
            "garbage",
        ] {
            assert!(!TransportConfig::for_server_url(url).loopback, "{url}");
        }
        assert_eq!(
            TransportConfig { loopback: true }.bind_addrs(),
            vec!["127.0.0.1:0"]
        );
    }
}
