//! The server process: signaling and the media relay, optionally announcing the impairment relay's address so
//! that every media packet crosses it.

use std::net::{Ipv4Addr, SocketAddr};

use zego_server::{Server, ServerConfig};

use crate::cli::RoleArgs;
use crate::proto::{self, Command, Report};

pub fn run(args: &RoleArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the server runtime: {e}"))?;
    let config = ServerConfig {
        media_bind: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), args.media_port),
        media_announce: args.announce,
        media_threads: args.media_threads,
        ..ServerConfig::default()
    };
    let server = runtime
        .block_on(Server::start(config))
        .map_err(|e| format!("server start failed: {e}"))?;
    proto::send(&Report::ServerReady {
        ws_url: server.ws_url(),
        media_addr: server.media_addr().to_string(),
        announced: server.announced_media_addr().to_string(),
    });
    // Blocks until Quit or the parent closes stdin.
    for command in proto::commands() {
        if command == Command::Quit {
            break;
        }
    }
    runtime.block_on(server.shutdown());
    proto::send(&Report::Done);
    Ok(())
}
