//! The `zego-server` binary. Started bare it serves the development app on 127.0.0.1:9180 (WebSocket) and
//! 127.0.0.1:9181 (UDP media). Its first line on stdout is machine-readable:
//! `zego-server listening ws=ws://HOST:PORT/ws media=HOST:PORT http=HOST:PORT`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use zego_server::cli::{self, Cli, Command, ServeArgs, TokenCommand};
use zego_server::{open_files, Server, ServerConfig};

/// Files the server holds besides its connections: the listener, the media socket, the runtime's own.
const FILES_BESIDE_CONNECTIONS: usize = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(TokenCommand::Generate(args))) => match cli::generate(&args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot generate a token: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Token(TokenCommand::Verify(args))) => {
            let (report, valid) = cli::verify(&args);
            print!("{report}");
            if valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => serve(&cli.serve),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let (config, log) = match args.resolve() {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("zego-server: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match log {
        Some(filter) => EnvFilter::try_new(filter),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("zego-server: bad log filter: {e}");
            return ExitCode::from(2);
        }
    };
    zego_server::logging::init(filter);
    raise_open_file_limit(&config);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zego-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let handle = match Server::start(config.clone()).await {
            Ok(handle) => handle,
            Err(e) => {
                eprintln!("zego-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "zego-server listening ws={} media={} http={}",
            handle.ws_url(),
            handle.media_addr(),
            handle.http_addr()
        );
        let _ = write!(stdout, "{}", cli::how_to_connect(&handle.ws_url(), &config));
        let _ = stdout.flush();
        drop(stdout);

        wait_for_signal().await;
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Every connection is a file descriptor: the soft limit goes up to the hard limit, and a cap the limit cannot
/// hold is pointed out.
fn raise_open_file_limit(config: &ServerConfig) {
    match open_files::raise_to_hard_limit() {
        Ok((before, after)) => {
            if after.soft != before.soft {
                tracing::info!(
                    from = before.soft,
                    to = after.soft,
                    "raised the open-file limit"
                );
            }
            let needed = config
                .max_connections
                .saturating_add(FILES_BESIDE_CONNECTIONS);
            if after.soft < needed as u64 {
                tracing::warn!(
                    limit = after.soft,
                    max_connections = config.max_connections,
                    "the open-file limit is below max_connections: connections beyond it fail to be accepted"
                );
            }
        }
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
