//! zego-bench: measures zego-express the way a viewer experiences the stream — glass-to-glass latency read off
//! the decoded pixels, first-frame times, frames rendered and missing, freezes, audio gaps — and what it costs
//! in CPU, with the server, the publisher and the player each in a process of its own. The last line on stdout
//! is one JSON object with every number; a readable summary goes to stderr.

mod analysis;
mod browser;
mod child;
mod cli;
mod components;
mod cpu;
mod proto;
mod report;
mod role;
mod run;
mod scenario;
mod stats;
mod targets;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};

use crate::cli::{Cli, Role};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.role.role);
    if let Some(role) = cli.role.role {
        let result = match role {
            Role::Server => role::server::run(&cli.role),
            Role::Publisher => role::publisher::run(&cli.role),
            Role::Player => role::player::run(&cli.role),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                proto::send(&proto::Report::Error {
                    at_us: proto::now_us(),
                    what: e.clone(),
                    code: 0,
                });
                tracing::error!(role = child::role_name(role), "{e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.list {
        for s in scenario::all() {
            println!("{:10} {}", s.name, s.description);
        }
        println!(
            "{:10} 1280x720@30 2.5 Mb/s through --up and --down impairments",
            "custom"
        );
        for (name, description) in browser::all() {
            println!("{name:10} {description}");
        }
        return ExitCode::SUCCESS;
    }
    match bench(&cli) {
        Ok((result, all_ran)) => {
            report::print_summary(&result);
            println!(
                "{}",
                serde_json::to_string(&result).expect("results serialize")
            );
            if all_ran {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("zego-bench: {e}");
            println!("{}", json!({ "bench": "zego-bench", "error": e }));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(role: Option<Role>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,rtc_dtls=error,zego_bench=info")
    });
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match role {
        // Role logs are told apart by the thread names and the role field of their errors; keep them short.
        Some(_) => subscriber.without_time().init(),
        None => subscriber.init(),
    }
}

/// Runs the chosen scenarios; false in the second place when one of them could not be run to the end.
fn bench(cli: &Cli) -> Result<(Value, bool), String> {
    // The browser scenarios need Chromium and node; they run only when named.
    let browser_scenarios: Vec<&String> = cli
        .scenario
        .iter()
        .filter(|name| !cli.all && browser::is_browser(name))
        .collect();
    let scenarios = if cli.all {
        scenario::all()
    } else {
        cli.scenario
            .iter()
            .filter(|name| !browser::is_browser(name))
            .map(|name| {
                if name == "custom" {
                    for spec in [&cli.up, &cli.down] {
                        spec.parse::<zego_netsim::Impairment>()
                            .map_err(|e| format!("impairment {spec:?}: {e}"))?;
                    }
                    return Ok(scenario::custom(&cli.up, &cli.down));
                }
                scenario::find(name).ok_or_else(|| {
                    let names: Vec<&str> = scenario::all().iter().map(|s| s.name).collect();
                    let browser: Vec<&str> = browser::all().iter().map(|(n, _)| *n).collect();
                    format!(
                        "unknown scenario {name:?}; known: {}, custom, {}",
                        names.join(", "),
                        browser.join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if !(cli.duration.is_finite() && cli.duration >= 1.0 && cli.duration <= 3600.0) {
        return Err(format!(
            "--duration must be between 1 and 3600 seconds, got {}",
            cli.duration
        ));
    }
    let options = run::Options {
        duration: Duration::from_secs_f64(if cli.quick {
            cli.duration.min(5.0)
        } else {
            cli.duration
        }),
        quick: cli.quick,
        play_trials: cli.trials.unwrap_or(if cli.quick { 5 } else { 20 }),
        publish_trials: cli.publish_trials.unwrap_or(if cli.quick { 2 } else { 5 }),
        seed: cli.seed,
        media_threads: cli.role.media_threads,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-netsim")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;

    // Codec cost first, while nothing else runs on the machine.
    let mut components = Vec::new();
    if !cli.no_components {
        let mut videos: Vec<scenario::Video> = scenarios.iter().map(|s| s.video).collect();
        videos.dedup();
        videos.sort_by_key(|v| std::cmp::Reverse(v.width));
        videos.dedup();
        for video in videos {
            match components::measure(video, if cli.quick { 60 } else { 300 }) {
                Ok(cost) => components.push(json!(cost)),
                Err(e) => components.push(json!({ "video": video, "error": e })),
            }
        }
    }

    let mut results = Vec::new();
    for scenario in &scenarios {
        tracing::info!(scenario = scenario.name, "{}", scenario.description);
        results.push(run::run(scenario, &options, &runtime));
    }
    for name in browser_scenarios {
        tracing::info!(scenario = name.as_str(), "in headless Chromium");
        results.push(browser::run(name, options.duration, options.play_trials));
    }
    let all_ran = results.iter().all(|r| r.get("error").is_none());
    let (passed, missed): (Vec<&Value>, Vec<&Value>) = results
        .iter()
        .flat_map(|r| r["targets"].as_array().into_iter().flatten())
        .partition(|v| v["pass"].as_bool() == Some(true));
    let missed_names: Vec<String> = results
        .iter()
        .flat_map(|r| {
            let scenario = r["name"].as_str().unwrap_or("?").to_owned();
            r["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["pass"].as_bool() != Some(true))
                .map(move |v| format!("{scenario}.{}", v["name"].as_str().unwrap_or("?")))
        })
        .collect();
    let result = json!({
        "bench": "zego-bench",
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "machine": machine(),
        "window_s": options.duration.as_secs_f64(),
        "quick": cli.quick,
        "components": components,
        "scenarios": results,
        "targets": { "passed": passed.len(), "missed": missed.len(), "missed_names": missed_names },
    });
    Ok((result, all_ran))
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned());
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
    })
}
