//! WebRTC transport of the media path: one webrtc `PeerConnection` per published or played stream, through the
//! server's relay (ICE-lite, one UDP port).

mod arrival_loss;
mod audio_rtx;
pub(crate) mod congestion;
mod encoder_control;
mod fec_receiver;
mod fec_sender;
#[cfg(test)]
mod fec_test_support;
mod keyframe_requests;
mod liveness;
pub(crate) mod peer;
mod read_tap;
mod runtime;
pub(crate) mod stats;

use crate::config::PublishChannel;
use crate::server_url::Servers;

pub(crate) use encoder_control::EncoderControl;
pub(crate) use keyframe_requests::is_keyframe_request;
pub(crate) use peer::{Peer, PeerRole, StreamRates};

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
    /// Loopback when the server (every server listed) is on this machine.
    pub(crate) fn for_servers(servers: &Servers) -> TransportConfig {
        TransportConfig {
            loopback: servers.is_loopback(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_keep_media_on_loopback() {
        let config = |url| TransportConfig::for_servers(&Servers::parse(url).unwrap());
        assert!(config("ws://127.0.0.1:8080/ws").loopback);
        assert!(!config("ws://10.0.0.1:8080/ws").loopback);
        assert_eq!(
            TransportConfig { loopback: true }.bind_addrs(),
            vec!["127.0.0.1:0"]
        );
    }
}
