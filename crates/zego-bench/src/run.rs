//! One scenario from start to end: the network, the three role processes, the steady-state window, the
//! first-frame trials, and what the numbers say against the targets.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use zego_netsim::{Direction, Impairment, NetSim, NetSimHandle, NetSimStats};

use crate::analysis::{self, Smoothness};
use crate::child::RoleProcess;
use crate::cli::Role;
use crate::cpu::{round1, CpuSample, CpuUse};
use crate::proto::{Command, Report, WindowRecord};
use crate::scenario::{Goal, Path, Scenario, CAP_KBPS};
use crate::stats::Summary;
use crate::targets::{judge, judge_flag, Bound, Verdict};

pub struct Options {
    pub duration: Duration,
    pub quick: bool,
    pub play_trials: u32,
    pub publish_trials: u32,
    pub seed: u64,
    /// The relay's I/O threads (0: one per core).
    pub media_threads: usize,
}

const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Waiting for a published stream includes the publisher's own connect and first keyframe.
const PUBLISH_FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds each trial phase so a broken path cannot stretch a run without limit.
const TRIALS_BUDGET: Duration = Duration::from_secs(60);
/// How often the relay's counters are read during the window (the rate timeline's resolution).
const RATE_POLL: Duration = Duration::from_millis(250);
/// The latency target a capped or lossy stream must get back under.
const RECOVERED_MS: f64 = 300.0;

/// Runs one scenario. Whatever was measured before a failure is kept, next to an `error`.
pub fn run(scenario: &Scenario, options: &Options, runtime: &tokio::runtime::Runtime) -> Value {
    let mut out = json!({
        "name": scenario.name,
        "conditions": {
            "description": scenario.description,
            "video": scenario.video,
            "path": scenario.path,
            "window_s": options.duration.as_secs_f64(),
            "seed": options.seed,
        },
    });
    if let Err(e) = run_phases(scenario, options, runtime, &mut out) {
        tracing::error!(scenario = scenario.name, error = %e, "scenario failed");
        out["error"] = json!(e);
    }
    out
}

/// The roles of one run.
struct Roles {
    server: RoleProcess,
    publisher: RoleProcess,
    player: RoleProcess,
}

fn run_phases(
    scenario: &Scenario,
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    out: &mut Value,
) -> Result<(), String> {
    let netsim = start_netsim(scenario, options.seed, runtime)?;
    let result = with_netsim(scenario, options, netsim.as_ref(), out);
    if let Some(netsim) = netsim {
        out["netsim"] = netsim_json(&netsim.stats());
        runtime.block_on(netsim.shutdown());
    }
    result
}

fn with_netsim(
    scenario: &Scenario,
    options: &Options,
    netsim: Option<&NetSimHandle>,
    out: &mut Value,
) -> Result<(), String> {
    let mut roles = start_roles(scenario, options, netsim, out)?;
    let result = measure(scenario, options, netsim, &mut roles, out);
    let Roles {
        server,
        publisher,
        player,
    } = roles;
    let player_history = player.quit();
    let publisher_history = publisher.quit();
    server.quit();
    out["errors_reported"] = json!(errors(&[
        ("publisher", &publisher_history),
        ("player", &player_history)
    ]));
    result
}

fn start_netsim(
    scenario: &Scenario,
    seed: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<NetSimHandle>, String> {
    let Path::Impaired { up, down, .. } = &scenario.path else {
        return Ok(None);
    };
    // The relay must know the server's media port before the server starts (it announces the relay), so the
    // port is picked here and handed to the server.
    let port = free_udp_port()?;
    let upstream = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let listen = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
    let netsim = runtime
        .block_on(
            NetSim::new(listen, upstream)
                .up(parse(up)?)
                .down(parse(down)?)
                .seed(seed)
                .start(),
        )
        .map_err(|e| format!("cannot start the impairment relay: {e}"))?;
    Ok(Some(netsim))
}

fn parse(spec: &str) -> Result<Impairment, String> {
    spec.parse()
        .map_err(|e| format!("impairment {spec:?}: {e}"))
}

fn free_udp_port() -> Result<u16, String> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free UDP port: {e}"))?;
    socket
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Starts the server, logs the publisher in and publishes, then logs the player in and plays until the first
/// frame (the cold start, with fresh engines, reported on its own).
fn start_roles(
    scenario: &Scenario,
    options: &Options,
    netsim: Option<&NetSimHandle>,
    out: &mut Value,
) -> Result<Roles, String> {
    let mut server_args = vec![
        "--media-port".to_owned(),
        netsim.map_or(0, |n| n.upstream_addr().port()).to_string(),
        "--media-threads".to_owned(),
        options.media_threads.to_string(),
    ];
    if let Some(netsim) = netsim {
        server_args.extend(["--announce".to_owned(), netsim.local_addr().to_string()]);
    }
    let mut server = RoleProcess::spawn(Role::Server, &server_args)?;
    let ws_url = server.wait_for(STARTUP_TIMEOUT, "ServerReady", |r| match r {
        Report::ServerReady { ws_url, .. } => Some(ws_url.clone()),
        _ => None,
    })?;

    let video = scenario.video;
    let client_args: Vec<String> = [
        ("--ws", ws_url),
        ("--width", video.width.to_string()),
        ("--height", video.height.to_string()),
        ("--fps", video.fps.to_string()),
        ("--bitrate-kbps", video.bitrate_kbps.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect();

    let mut publisher = RoleProcess::spawn(Role::Publisher, &client_args)?;
    publisher.wait_for(STARTUP_TIMEOUT, "login", |r| {
        matches!(r, Report::LoggedIn { .. }).then_some(())
    })?;
    publisher.send(Command::Publish)?;
    let called = publisher.wait_for(STARTUP_TIMEOUT, "start_publishing", publish_called)?;
    let publishing = publisher.wait_for(STARTUP_TIMEOUT, "PUBLISHING", publisher_state(2))?;

    let mut player = RoleProcess::spawn(Role::Player, &client_args)?;
    player.wait_for(STARTUP_TIMEOUT, "login", |r| {
        matches!(r, Report::LoggedIn { .. }).then_some(())
    })?;
    player.send(Command::Play)?;
    // A bad enough network may delay the first frame past the timeout; the window still shows what the viewer
    // gets, so that is recorded rather than fatal.
    let cold = player.wait_for(STARTUP_TIMEOUT, "first rendered frame", first_frame);
    out["cold_start"] = json!({
        "publish_to_publishing_ms": round1(publishing.saturating_sub(called) as f64 / 1000.0),
        "play_to_first_frame_ms": cold.as_ref().ok().map(|c| round1(c.1)),
        "error": cold.err(),
    });
    Ok(Roles {
        server,
        publisher,
        player,
    })
}

fn measure(
    scenario: &Scenario,
    options: &Options,
    netsim: Option<&NetSimHandle>,
    roles: &mut Roles,
    out: &mut Value,
) -> Result<(), String> {
    // Warm up: let rate control and the jitter buffers settle before anything is counted.
    let warmup = Duration::from_secs_f64(if options.quick {
        scenario.warmup_s.min(2.0)
    } else {
        scenario.warmup_s
    });
    let before_window = warmup.saturating_sub(Duration::from_secs(1));
    std::thread::sleep(before_window);
    let pre = netsim.map(|n| (Instant::now(), n.stats()));
    std::thread::sleep(warmup - before_window);

    let window = steady_window(scenario, options, netsim, roles, pre, out)?;
    let latency = Summary::of(&analysis::latencies_ms(&window));
    let smooth = analysis::smoothness(&window, scenario.video.fps);
    out["glass_to_glass_ms"] = json!(latency);
    out["smoothness"] = json!(smooth);
    // The delay the audio jitter buffer added: each played packet's wait for its tick.
    let buffered: Vec<f64> = window
        .audio_buffered_us
        .iter()
        .map(|&us| us as f64 / 1000.0)
        .collect();
    out["audio_buffered_ms"] = json!(Summary::of(&buffered));
    out["audio_glass_to_glass_ms"] = json!(Summary::of(&analysis::audio_latencies_ms(&window)));
    out["av_offset_ms"] = json!(Summary::of(&analysis::av_offsets_ms(&window)));
    out["audio_marks"] = json!(analysis::marks(&window));
    out["timeline_1s"] = json!(analysis::timeline(&window, 1000));
    out["quality"] = quality_json(&roles.publisher.history, &roles.player.history, &window);

    let play = play_trials(options, roles);
    out["first_frame_play_ms"] = json!(play);
    let publish = publish_trials(options, roles);
    out["first_frame_publish_ms"] = json!(publish);

    let verdicts = verdicts(scenario, &window, latency, &smooth, &play, out);
    out["targets"] = json!(verdicts);
    Ok(())
}

/// The measurement window: CPU of every process, what the player rendered, and (behind the relay) the rate
/// the path carried every 250 ms.
fn steady_window(
    scenario: &Scenario,
    options: &Options,
    netsim: Option<&NetSimHandle>,
    roles: &mut Roles,
    pre: Option<(Instant, NetSimStats)>,
    out: &mut Value,
) -> Result<WindowRecord, String> {
    let pids = [
        ("server", roles.server.pid()),
        ("publisher", roles.publisher.pid()),
        ("player", roles.player.pid()),
        ("bench", std::process::id()),
    ];
    roles.player.send(Command::StartWindow)?;
    let cpu_before: Vec<CpuSample> = pids.iter().map(|(_, pid)| CpuSample::take(*pid)).collect();
    let start = Instant::now();
    let mut rates = Vec::new();
    if let Some(netsim) = netsim {
        rates.push((start, netsim.stats()));
        if let Path::Impaired {
            from_window_start: Some((up, down)),
            ..
        } = &scenario.path
        {
            netsim
                .set_impairment(Direction::Up, parse(up)?)
                .map_err(|e| e.to_string())?;
            netsim
                .set_impairment(Direction::Down, parse(down)?)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut next = start + RATE_POLL;
    while start.elapsed() < options.duration {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += RATE_POLL;
        if let Some(netsim) = netsim {
            rates.push((Instant::now(), netsim.stats()));
        }
        roles.server.drain();
        roles.publisher.drain();
        roles.player.drain();
    }
    let cpu_after: Vec<CpuSample> = pids.iter().map(|(_, pid)| CpuSample::take(*pid)).collect();
    roles.player.send(Command::EndWindow)?;
    let window = roles
        .player
        .wait_for(STARTUP_TIMEOUT, "window record", |r| match r {
            Report::Window(w) => Some((**w).clone()),
            _ => None,
        })?;

    let mut cpu = serde_json::Map::new();
    for (((name, _), before), after) in pids.iter().zip(&cpu_before).zip(&cpu_after) {
        let usage: CpuUse = before.until(after);
        // The bench process only does work worth reporting when it runs the impairment relay.
        if *name != "bench" || netsim.is_some() {
            let key = if *name == "bench" {
                "bench_with_netsim"
            } else {
                name
            };
            cpu.insert(key.to_owned(), json!(usage));
        }
    }
    out["cpu"] = Value::Object(cpu);
    if netsim.is_some() {
        out["path_rate"] = rate_json(scenario, &window, pre, &rates, start);
    }
    Ok(window)
}

#[derive(Debug, Clone, Serialize)]
struct Trials {
    requested: u32,
    ok: u32,
    failed: u32,
    #[serde(flatten)]
    summary: Option<Summary>,
    /// Every trial's time, in order.
    samples: Vec<f64>,
    /// Where the time goes: each step's time from the call, over the trials (play trials).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    steps_ms: BTreeMap<String, Summary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<String>,
}

/// start_playing -> PlayerRenderVideoFirstFrame while the stream is running, `play_trials` times.
fn play_trials(options: &Options, roles: &mut Roles) -> Trials {
    let player = &mut roles.player;
    let mut times = Vec::new();
    let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let budget = Instant::now() + TRIALS_BUDGET;
    for _ in 0..options.play_trials {
        if Instant::now() > budget {
            failures.push(format!(
                "stopped after {} trials: the {TRIALS_BUDGET:?} budget ran out",
                times.len()
            ));
            break;
        }
        let mut seen = Vec::new();
        let trial = (|| -> Result<f64, String> {
            player.send(Command::StopPlay)?;
            // Let the old peer close and the relay forget it, as a viewer switching back would.
            std::thread::sleep(Duration::from_millis(500));
            player.send(Command::Play)?;
            player.wait_for(FIRST_FRAME_TIMEOUT, "first rendered frame", |r| match r {
                Report::PlayMilestone {
                    stage,
                    since_play_ms,
                } => {
                    seen.push((stage.clone(), *since_play_ms));
                    None
                }
                other => first_frame(other).map(|(_, ms)| ms),
            })
        })();
        match trial {
            Ok(ms) => {
                times.push(ms);
                for (stage, ms) in seen {
                    steps.entry(stage).or_default().push(ms);
                }
                steps.entry("rendered".into()).or_default().push(ms);
            }
            Err(e) => failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut trials = trials(options.play_trials, times, failures);
    trials.steps_ms = steps
        .into_iter()
        .filter_map(|(stage, samples)| Some((stage, Summary::of(&samples)?)))
        .collect();
    trials
}

/// start_publishing -> the waiting player's first rendered frame, `publish_trials` times. Both times are on the
/// shared wall clock of two processes on one machine.
fn publish_trials(options: &Options, roles: &mut Roles) -> Trials {
    let Roles {
        publisher, player, ..
    } = roles;
    let mut times = Vec::new();
    let mut to_publishing = Vec::new();
    let mut failures = Vec::new();
    let budget = Instant::now() + TRIALS_BUDGET;
    for _ in 0..options.publish_trials {
        if Instant::now() > budget {
            failures.push(format!(
                "stopped after {} trials: the {TRIALS_BUDGET:?} budget ran out",
                times.len()
            ));
            break;
        }
        let trial = (|| -> Result<(f64, f64), String> {
            player.send(Command::StopPlay)?;
            publisher.send(Command::Unpublish)?;
            // Not every path reports NO_PUBLISH on a local stop; the pause below covers it either way.
            let _ = publisher.wait_for(Duration::from_secs(2), "NO_PUBLISH", publisher_state(0));
            std::thread::sleep(Duration::from_millis(500));
            // The player asks for a stream that is not there yet and waits for it.
            player.send(Command::Play)?;
            let _ = player.wait_for(Duration::from_secs(2), "PLAY_REQUESTING", |r| {
                matches!(r, Report::PlayerState { state: 1, .. }).then_some(())
            });
            std::thread::sleep(Duration::from_millis(300));
            publisher.send(Command::Publish)?;
            let called = publisher.wait_for(STARTUP_TIMEOUT, "start_publishing", publish_called)?;
            let rendered = player
                .wait_for(
                    PUBLISH_FIRST_FRAME_TIMEOUT,
                    "first rendered frame",
                    first_frame,
                )?
                .0;
            let publishing = publisher
                .wait_for(Duration::from_secs(1), "PUBLISHING", publisher_state(2))
                .ok();
            let ms = |t: u64| t.saturating_sub(called) as f64 / 1000.0;
            Ok((ms(rendered), publishing.map_or(f64::NAN, ms)))
        })();
        match trial {
            Ok((rendered, publishing)) => {
                times.push(rendered);
                if publishing.is_finite() {
                    to_publishing.push(publishing);
                }
            }
            Err(e) => failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut trials = trials(options.publish_trials, times, failures);
    if let Some(summary) = Summary::of(&to_publishing) {
        trials.steps_ms.insert("publishing".into(), summary);
    }
    trials
}

fn trials(requested: u32, times: Vec<f64>, failures: Vec<String>) -> Trials {
    Trials {
        requested,
        ok: times.len() as u32,
        failed: requested - times.len() as u32,
        summary: Summary::of(&times),
        samples: times.iter().map(|t| round1(*t)).collect(),
        steps_ms: BTreeMap::new(),
        failures,
    }
}

fn publish_called(report: &Report) -> Option<u64> {
    match report {
        Report::PublishCalled { at_us } => Some(*at_us),
        _ => None,
    }
}

fn publisher_state(want: i32) -> impl FnMut(&Report) -> Option<u64> {
    move |report| match report {
        Report::PublisherState { at_us, state, .. } if *state == want => Some(*at_us),
        _ => None,
    }
}

fn first_frame(report: &Report) -> Option<(u64, f64)> {
    match report {
        Report::FirstFrame {
            at_us,
            since_play_ms,
        } => Some((*at_us, *since_play_ms)),
        _ => None,
    }
}

/// The rate the path carried, how fast the publisher came under a cap, and the latency once it had.
fn rate_json(
    scenario: &Scenario,
    window: &WindowRecord,
    pre: Option<(Instant, NetSimStats)>,
    rates: &[(Instant, NetSimStats)],
    start: Instant,
) -> Value {
    let kbps =
        |bytes: u64, over: Duration| bytes as f64 * 8.0 / over.as_secs_f64().max(1e-3) / 1000.0;
    let before_cap = match (pre, rates.first()) {
        (Some((t0, s0)), Some((t1, s1))) => Some(round1(kbps(
            s1.up.received_bytes.saturating_sub(s0.up.received_bytes),
            t1.duration_since(t0),
        ))),
        _ => None,
    };
    // Rates over the last second, every 250 ms.
    let lookback = (Duration::from_secs(1).as_millis() / RATE_POLL.as_millis()) as usize;
    let mut timeline = Vec::new();
    for i in 1..rates.len() {
        let j = i.saturating_sub(lookback);
        let (t0, s0) = &rates[j];
        let (t1, s1) = &rates[i];
        let span = t1.duration_since(*t0);
        timeline.push(json!({
            "t_s": round1(t1.duration_since(start).as_secs_f64() * 100.0) / 100.0,
            "up_offered_kbps": round1(kbps(s1.up.received_bytes - s0.up.received_bytes, span)),
            "up_delivered_kbps": round1(kbps(s1.up.forwarded_bytes - s0.up.forwarded_bytes, span)),
            "down_delivered_kbps": round1(kbps(s1.down.forwarded_bytes - s0.down.forwarded_bytes, span)),
            "up_queue_drops": s1.up.dropped_queue - s0.up.dropped_queue,
            "down_queue_drops": s1.down.dropped_queue - s0.down.dropped_queue,
        }));
    }
    let mut value = json!({
        "before_window_up_kbps": before_cap,
        "note": "1 s averages of UDP payload through the impairment relay; up = publisher media + player RTCP, down = player media + publisher RTCP",
        "timeline": timeline,
    });
    if scenario.goals.contains(&Goal::RateCap) {
        value["adaptation"] = adaptation_json(window, &timeline);
    }
    value
}

/// When the publisher's offered rate first fits under the cap (and when it stays there), and the latency after.
fn adaptation_json(window: &WindowRecord, timeline: &[Value]) -> Value {
    let points: Vec<(f64, f64)> = timeline
        .iter()
        .filter_map(|p| Some((p["t_s"].as_f64()?, p["up_offered_kbps"].as_f64()?)))
        .collect();
    let first_under = points
        .iter()
        .find(|(_, kbps)| *kbps <= CAP_KBPS)
        .map(|(t, _)| *t);
    // From here on the rate never again exceeds the cap by more than 10%.
    let stays_under = points
        .iter()
        .rposition(|(_, kbps)| *kbps > CAP_KBPS * 1.1)
        .map_or(points.first().map(|p| p.0), |i| {
            points.get(i + 1).map(|p| p.0)
        });
    let after = first_under.map(|t| {
        let from = window.start_us + ((t + 1.0) * 1_000_000.0) as u64;
        let latencies: Vec<f64> = window
            .frames
            .iter()
            .filter(|f| f[0] >= from && f[1] != 0)
            .map(|f| (f[0] as f64 - f[1] as f64) / 1000.0)
            .collect();
        Summary::of(&latencies)
    });
    let buckets = analysis::timeline(window, 1000);
    let recovered = buckets
        .iter()
        .rposition(|b| b.p95_ms.is_none_or(|p95| p95 > RECOVERED_MS))
        .map_or(Some(0.0), |i| buckets.get(i + 1).map(|b| b.t_s));
    json!({
        "cap_kbps": CAP_KBPS,
        "first_under_cap_s": first_under,
        "stays_under_cap_from_s": stays_under,
        "latency_after_adaptation_ms": after.flatten(),
        "latency_p95_under_300ms_from_s": recovered,
    })
}

/// The quality reports and state changes both engines gave during the window, timed from its start.
fn quality_json(publisher: &[Report], player: &[Report], window: &WindowRecord) -> Value {
    let in_window = |at: u64| at >= window.start_us && at <= window.end_us;
    let t = |at: u64| round1(at.saturating_sub(window.start_us) as f64 / 1_000_000.0);
    let pick = |history: &[Report]| -> (Vec<Value>, Vec<Value>) {
        let mut quality = Vec::new();
        let mut states = Vec::new();
        for report in history {
            match report {
                Report::PublisherQuality { at_us, quality: q } if in_window(*at_us) => {
                    quality.push(json!({"t_s": t(*at_us), "quality": q}))
                }
                Report::PlayerQuality { at_us, quality: q } if in_window(*at_us) => {
                    quality.push(json!({"t_s": t(*at_us), "quality": q}))
                }
                Report::PublisherState {
                    at_us,
                    state,
                    error_code,
                }
                | Report::PlayerState {
                    at_us,
                    state,
                    error_code,
                } if in_window(*at_us) => {
                    states.push(json!({"t_s": t(*at_us), "state": state, "error_code": error_code}))
                }
                _ => {}
            }
        }
        (quality, states)
    };
    let (publish, publish_states) = pick(publisher);
    let (play, play_states) = pick(player);
    json!({
        "publisher": publish,
        "player": play,
        "publisher_states": publish_states,
        "player_states": play_states,
    })
}

fn netsim_json(stats: &NetSimStats) -> Value {
    json!({
        "up": format!("{}", stats.up),
        "down": format!("{}", stats.down),
        "up_loss_ratio": round1(stats.up.loss_ratio() * 1000.0) / 1000.0,
        "down_loss_ratio": round1(stats.down.loss_ratio() * 1000.0) / 1000.0,
    })
}

/// Error reports from the roles, at most a few per role, so a broken run says why.
fn errors(histories: &[(&str, &[Report])]) -> Vec<String> {
    histories
        .iter()
        .flat_map(|(role, history)| {
            history
                .iter()
                .filter_map(move |r| match r {
                    Report::Error { what, code, .. } => Some(format!("{role}: {what} -> {code}")),
                    _ => None,
                })
                .take(5)
        })
        .collect()
}

/// A count over the window, per 30 s.
fn per_30s(count: u64, window_s: f64) -> Option<f64> {
    (window_s > 0.0).then(|| (count as f64 * 30.0 / window_s * 10.0).round() / 10.0)
}

fn verdicts(
    scenario: &Scenario,
    window: &WindowRecord,
    latency: Option<Summary>,
    smooth: &Smoothness,
    play: &Trials,
    out: &Value,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for goal in scenario.goals {
        match goal {
            Goal::CleanLatency => {
                verdicts.push(judge(
                    "glass_to_glass_p50_ms",
                    "ms",
                    Bound::AtMost(40.0),
                    latency.map(|l| l.p50),
                ));
                verdicts.push(judge(
                    "glass_to_glass_p99_ms",
                    "ms",
                    Bound::AtMost(80.0),
                    latency.map(|l| l.p99),
                ));
            }
            Goal::FirstFrame => {
                verdicts.push(judge(
                    "first_frame_play_p50_ms",
                    "ms",
                    Bound::AtMost(100.0),
                    play.summary.map(|s| s.p50),
                ));
            }
            Goal::Loss10 => {
                verdicts.push(judge(
                    "glass_to_glass_p95_ms",
                    "ms",
                    Bound::AtMost(300.0),
                    latency.map(|l| l.p95),
                ));
                verdicts.push(judge(
                    "rendered_ratio",
                    "",
                    Bound::AtLeast(0.98),
                    smooth.rendered_ratio,
                ));
                verdicts.push(judge(
                    "longest_freeze_ms",
                    "ms",
                    Bound::AtMost(500.0),
                    Some(smooth.longest_freeze_ms),
                ));
                verdicts.push(judge(
                    "audio_gaps_per_30s",
                    "",
                    Bound::AtMost(0.0),
                    per_30s(smooth.audio_gaps, smooth.window_s),
                ));
            }
            Goal::Loss30 | Goal::Loss50 => {
                // Still playing: PLAYING at the end and frames rendered in the window's last 5 seconds.
                let tail = window.end_us.saturating_sub(5_000_000);
                let recent = window.frames.iter().filter(|f| f[0] >= tail).count();
                verdicts.push(judge_flag(
                    "still_playing",
                    "PLAYING at the end, frames in the last 5 s",
                    window.final_state == 2 && recent > 0,
                ));
                verdicts.push(judge(
                    "rendered_ratio",
                    "",
                    Bound::AtLeast(0.90),
                    smooth.rendered_ratio,
                ));
                if *goal == Goal::Loss30 {
                    verdicts.push(judge(
                        "audio_gaps_per_30s",
                        "",
                        Bound::AtMost(2.0),
                        per_30s(smooth.audio_gaps, smooth.window_s),
                    ));
                } else {
                    verdicts.push(judge(
                        "longest_audio_gap_ms",
                        "ms",
                        Bound::AtMost(200.0),
                        Some(smooth.longest_audio_gap_ms),
                    ));
                }
            }
            Goal::RateCap => {
                let adaptation = &out["path_rate"]["adaptation"];
                verdicts.push(judge(
                    "adapted_under_cap_s",
                    "s",
                    Bound::AtMost(5.0),
                    adaptation["first_under_cap_s"].as_f64(),
                ));
                verdicts.push(judge(
                    "latency_after_adaptation_p95_ms",
                    "ms",
                    Bound::AtMost(RECOVERED_MS),
                    adaptation["latency_after_adaptation_ms"]["p95"].as_f64(),
                ));
            }
        }
    }
    verdicts
}
