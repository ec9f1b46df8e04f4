//! Command line: what a user runs, plus the hidden flags the bench passes to its own role processes.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "zego-bench",
    about = "End-to-end benchmark of zego-express as a viewer sees it: glass-to-glass latency, first frame, \
             smoothness and CPU cost, on a clean or impaired loopback network. The last stdout line is one JSON object."
)]
pub struct Cli {
    /// Scenario(s) to run, comma separated (see --list); `custom` takes its network from --up and --down.
    #[arg(long, default_value = "clean", value_delimiter = ',')]
    pub scenario: Vec<String>,

    /// Run every scenario.
    #[arg(long)]
    pub all: bool,

    /// Print the scenarios and exit.
    #[arg(long)]
    pub list: bool,

    /// Length of the steady-state measurement window, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,

    /// Smoke run: a 5 s window and a few first-frame trials.
    #[arg(long)]
    pub quick: bool,

    /// start_playing -> first rendered frame trials with the stream running (default 20; 5 with --quick).
    #[arg(long)]
    pub trials: Option<u32>,

    /// start_publishing -> player's first rendered frame trials (default 5; 2 with --quick).
    #[arg(long)]
    pub publish_trials: Option<u32>,

    /// Scenario `custom`: impairment of client -> server packets, e.g. "delay=50ms,loss=10%".
    #[arg(long, default_value = "clean")]
    pub up: String,

    /// Scenario `custom`: impairment of server -> client packets.
    #[arg(long, default_value = "clean")]
    pub down: String,

    /// Seed of the impairment relay's random loss and jitter.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,

    /// Skip the in-process codec cost measurement (encode/decode time per frame).
    #[arg(long)]
    pub no_components: bool,

    #[command(flatten)]
    pub role: RoleArgs,
}

/// Which process this is. Only the bench itself passes these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Server,
    Publisher,
    Player,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RoleArgs {
    #[arg(long, hide = true)]
    pub role: Option<Role>,
    /// Server: UDP media port to bind on 127.0.0.1 (0 = any).
    #[arg(long, hide = true, default_value_t = 0)]
    pub media_port: u16,
    /// Server: media address to announce in ICE candidates (the impairment relay).
    #[arg(long, hide = true)]
    pub announce: Option<SocketAddr>,
    /// The server's media relay I/O threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub media_threads: usize,
    /// Publisher/player: signaling URL.
    #[arg(long, hide = true, default_value = "")]
    pub ws: String,
    #[arg(long, hide = true, default_value = "bench-room")]
    pub room: String,
    #[arg(long, hide = true, default_value = "bench-stream")]
    pub stream: String,
    #[arg(long, hide = true, default_value_t = 1280)]
    pub width: u32,
    #[arg(long, hide = true, default_value_t = 720)]
    pub height: u32,
    #[arg(long, hide = true, default_value_t = 30)]
    pub fps: u32,
    #[arg(long, hide = true, default_value_t = 2500)]
    pub bitrate_kbps: u32,
}
