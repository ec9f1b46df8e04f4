//! The server address an app gives, `ws://host:port[/path]`, read once by the URI parser the WebSocket client uses
//! (the `http` crate's): the engine refuses what is not one, and the transport keeps media on loopback when the
//! server is on this machine. Several addresses, separated by commas, name the nodes of a cluster: a connection
//! that fails moves on to the next.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::error::{self, ErrorCode};

/// A checked server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    /// A name, an IPv4 address or an IPv6 address (without brackets).
    host: String,
    port: u16,
}

impl ServerUrl {
    /// `ws://` with a host (letters, digits, dots and hyphens, or a bracketed IPv6 address), no user part, and a
    /// port other than 0; anything else is ENGINE_SERVER_ADDRESS_INVALID.
    pub fn parse(url: &str) -> Result<ServerUrl, ErrorCode> {
        let invalid = error::ENGINE_SERVER_ADDRESS_INVALID;
        let uri: Uri = url.parse().map_err(|_| invalid)?;
        if uri.scheme_str() != Some("ws") {
            return Err(invalid);
        }
        let authority = uri.authority().ok_or(invalid)?;
        if authority.as_str().contains('@') {
            return Err(invalid);
        }
        let host = authority.host();
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().map_err(|_| invalid)?.to_string(),
            None if !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                host.to_owned()
            }
            None => return Err(invalid),
        };
        let port = authority.port_u16().filter(|&p| p != 0).ok_or(invalid)?;
        url.into_client_request().map_err(|_| invalid)?;
        Ok(ServerUrl { host, port })
    }

    /// The server is on this machine: `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The most server addresses a profile may list.
pub(crate) const SERVERS_MAX: usize = 16;

/// The server addresses of a profile, in the order they are tried, and which one is tried next.
#[derive(Debug)]
pub(crate) struct Servers {
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Servers {
    /// One address, or several separated by commas (spaces around them are ignored): each must be a valid
    /// [`ServerUrl`], and there are at most [`SERVERS_MAX`].
    pub fn parse(list: &str) -> Result<Servers, ErrorCode> {
        let urls: Vec<String> = list.split(',').map(|u| u.trim().to_owned()).collect();
        if urls.len() > SERVERS_MAX {
            return Err(error::ENGINE_SERVER_ADDRESS_INVALID);
        }
        for url in &urls {
            ServerUrl::parse(url)?;
        }
        Ok(Servers {
            urls,
            current: AtomicUsize::new(0),
        })
    }

    /// Every server is on this machine.
    pub fn is_loopback(&self) -> bool {
        self.urls
            .iter()
            .all(|u| ServerUrl::parse(u).is_ok_and(|u| u.is_loopback()))
    }

    /// The address to connect to now.
    pub fn current(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()]
    }

    /// The current address failed: the next one is tried next.
    pub fn advance(&self) {
        if self.urls.len() > 1 {
            self.current.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        let one = Servers::parse("ws://127.0.0.1:1/ws").unwrap();
        assert_eq!(one.current(), "ws://127.0.0.1:1/ws");
        one.advance();
        assert_eq!(one.current(), "ws://127.0.0.1:1/ws");
        assert!(one.is_loopback());

        let list = Servers::parse("ws://127.0.0.1:1/ws, ws://10.0.0.2:2/ws").unwrap();
        assert_eq!(list.current(), "ws://127.0.0.1:1/ws");
        list.advance();
        assert_eq!(list.current(), "ws://10.0.0.2:2/ws");
        list.advance();
        assert_eq!(list.current(), "ws://127.0.0.1:1/ws", "round and round");
        assert!(!list.is_loopback(), "one is elsewhere");

        for bad in ["", ",", "ws://a:1/ws,", "ws://a:1/ws,http://b:1/"] {
            assert!(Servers::parse(bad).is_err(), "{bad:?}");
        }
        let too_many = vec!["ws://a:1/ws"; SERVERS_MAX + 1].join(",");
        assert!(Servers::parse(&too_many).is_err());
    }

    #[test]
    fn server_urls() {
        for (ok, host, port) in [
            ("ws://127.0.0.1:8080/ws", "127.0.0.1", 8080),
            ("ws://localhost:1", "localhost", 1),
            ("ws://media.example.com:443/a/b", "media.example.com", 443),
            ("ws://[::1]:9/ws", "::1", 9),
        ] {
            let url = ServerUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!((url.host.as_str(), url.port), (host, port), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1:80",
            "http://a:1/ws",
            "wss://a:1/ws",
            "ws://:80/ws",
            "ws://host/ws",
            "ws://host:0/ws",
            "ws://h st:1/",
            "ws://host:99999/",
            "ws://user@host:1/",
            "ws://[zz]:1/",
            "ws://ho_st:1/",
        ] {
            assert_eq!(
                ServerUrl::parse(bad),
                Err(error::ENGINE_SERVER_ADDRESS_INVALID),
                "{bad}"
            );
        }
    }

    #[test]
    fn loopback_servers() {
        for url in [
            "ws://127.0.0.1:8080/ws",
            "ws://localhost:1/ws",
            "ws://LOCALHOST:1",
            "ws://[::1]:443/x",
            "ws://127.0.0.2:80/ws",
        ] {
            assert!(ServerUrl::parse(url).unwrap().is_loopback(), "{url}");
        }
        for url in [
            "ws://10.0.0.1:8080/ws",
            "ws://example.com:80/ws",
            "ws://[2001:db8::1]:80/ws",
        ] {
            assert!(!ServerUrl::parse(url).unwrap().is_loopback(), "{url}");
        }
    }
}
