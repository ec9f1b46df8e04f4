//! A C program (tests/c/flow.c), compiled against include/zego_express.h and linked to the cdylib, runs the whole
//! flow against an in-process server: two engines, login, preview, publish, play from inside a callback, render
//! frames in two formats, broadcast, stop, logout, destroy (one engine from inside its own callback).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

/// The whole flow takes a few seconds; this bounds it when something hangs.
const FLOW_TIMEOUT: Duration = Duration::from_secs(120);

/// target/<profile>, found from this test binary's path (target/<profile>/deps/c_abi-<hash>).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps directory");
    deps.parent().expect("profile directory").to_path_buf()
}

/// The cdylib cargo built alongside this test.
fn cdylib() -> PathBuf {
    let name = format!(
        "{}zego_express{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let dir = profile_dir();
    [dir.join(&name), dir.join("deps").join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found in {} (is crate-type cdylib built?)",
                dir.display()
            )
        })
}

fn compile_flow() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("flow");
    let lib = cdylib();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&compiler)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-g", "-I",
        ])
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/flow.c"))
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "compiling flow.c failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

#[test]
fn c_program_runs_the_whole_flow() {
    let exe = compile_flow();
    let server = EmbeddedServer::start(ServerConfig::default()).expect("server starts");

    let mut child = Command::new(&exe)
        .args([server.ws_url(), &DEV_APP_ID.to_string(), DEV_APP_SIGN])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flow starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for flow") {
            break Some(status);
        }
        if started.elapsed() > FLOW_TIMEOUT {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("flow output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    match status {
        None => panic!("flow.c did not finish within {FLOW_TIMEOUT:?}"),
        Some(status) => assert!(status.success(), "flow.c failed ({status})"),
    }
    assert!(
        stdout.contains("flow complete"),
        "flow.c exited 0 without finishing"
    );
    server.stop();
}
