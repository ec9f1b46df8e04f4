//! `zego-netsim`: run the impairment relay from the command line until Ctrl-C.
//!
//! Prints the listening address on the first line of stdout so scripts can pick it up.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use zego_netsim::{Impairment, NetSim};

/// A UDP relay that adds delay, jitter, loss, reordering and a rate cap between clients and a server.
///
/// Impairments are written as `delay=50ms,jitter=10ms,loss=10%,burst=1%/30%/100%,reorder=1%,rate=1mbit,
/// queue=100ms,duplicate=0.5%`; any subset, in any order.
#[derive(Debug, Parser)]
#[command(name = "zego-netsim", version)]
struct Args {
    /// Loopback address clients send to (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Loopback address of the server's media port.
    #[arg(long)]
    upstream: SocketAddr,
    /// Impairment for client -> server packets.
    #[arg(long, default_value = "clean")]
    up: Impairment,
    /// Impairment for server -> client packets.
    #[arg(long, default_value = "clean")]
    down: Impairment,
    /// Seed for reproducible random choices.
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds a silent client keeps its upstream socket.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Most clients mapped at once.
    #[arg(long, default_value_t = 256)]
    max_clients: usize,
    /// Log the counters every this many seconds (0: only at exit).
    #[arg(long, default_value_t = 5)]
    stats_interval: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let mut netsim = NetSim::new(args.listen, args.upstream)
        .up(args.up)
        .down(args.down)
        .idle_timeout(Duration::from_secs(args.idle_timeout.max(1)))
        .max_clients(args.max_clients);
    if let Some(seed) = args.seed {
        netsim = netsim.seed(seed);
    }
    let relay = match netsim.start().await {
        Ok(relay) => relay,
        Err(err) => {
            eprintln!("zego-netsim: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", relay.local_addr());

    let period = Duration::from_secs(args.stats_interval.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = ticker.tick(), if args.stats_interval > 0 => tracing::info!(stats = %relay.stats(), "netsim"),
            signal = tokio::signal::ctrl_c() => {
                if let Err(err) = signal {
                    tracing::warn!(%err, "cannot wait for Ctrl-C, stopping");
                }
                break;
            }
        }
    }
    tracing::info!(stats = %relay.stats(), "netsim final counters");
    relay.shutdown().await;
    ExitCode::SUCCESS
}
