//! What the language-binding tests share: finding toolchains (a missing one fails under CI=true and skips
//! otherwise), the cdylib cargo built next to the test, an in-process server, and running a child process with a
//! time limit.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>, from this test binary's path (target/<profile>/deps/<test>-<hash>).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// The cargo profile this test was built with ("debug" or "release").
pub fn profile() -> String {
    profile_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "debug".into())
}

pub fn cdylib_name() -> String {
    format!(
        "{}zego_express{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The cdylib cargo built together with this test (same features as the test build).
pub fn cdylib() -> PathBuf {
    let dir = profile_dir();
    let name = cdylib_name();
    [dir.join(&name), dir.join("deps").join(&name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found in {}", dir.display()))
}

/// Whether CI asked for every toolchain to be present.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `program` when it runs (`program args` exits 0); otherwise fails under CI=true, or prints how to install it and
/// returns `None` so the test passes as skipped.
pub fn tool(program: &str, args: &[&str], install: &str) -> Option<PathBuf> {
    let works = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(PathBuf::from(program));
    }
    if ci() {
        panic!("{program} is required when CI=true: {install}");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests, and a skip must be visible.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: install {program} ({install}); set CI=true to make this a failure"
    );
    None
}

/// A server on loopback with its own runtime, the development app, and ephemeral ports.
pub fn server() -> EmbeddedServer {
    EmbeddedServer::start(ServerConfig::default()).expect("start the in-process server")
}

/// The environment a language suite needs to reach `server`.
pub fn server_env(server: &EmbeddedServer) -> Vec<(String, String)> {
    vec![
        ("ZEGO_SERVER_URL".into(), server.ws_url().to_owned()),
        ("ZEGO_APP_ID".into(), DEV_APP_ID.to_string()),
        ("ZEGO_APP_SIGN".into(), DEV_APP_SIGN.to_owned()),
    ]
}

/// Runs `command` to completion or kills it after `limit`. Stdout and stderr are collected (and printed, so a
/// failing test shows them).
pub fn run(what: &str, command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Readers on their own threads, so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    println!(
        "--- {what}: {status} in {:.1} s\n--- stdout\n{}\n--- stderr\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Asserts that `output` is a success, naming `what`.
pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The functions `include/zego_express.h` declares.
pub fn header_functions() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/zego_express.h"))
        .expect("include/zego_express.h (generated by cbindgen from src/ffi)");
    let mut names = Vec::new();
    for line in header.lines() {
        let line = line.trim_start();
        if line.starts_with("typedef") || line.starts_with('*') || line.starts_with("//") {
            continue;
        }
        for prefix in ["int ", "const char *", "void "] {
            if let Some(rest) = line.strip_prefix(prefix) {
                if let Some(name) = rest.split('(').next().filter(|n| n.starts_with("zego_")) {
                    if rest.contains('(') && !name.contains(' ') {
                        names.push(name.to_owned());
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The callback types `include/zego_express.h` declares (`typedef void (*zego_func_x)(...)`).
pub fn header_callbacks() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/zego_express.h")).expect("header");
    let mut names: Vec<String> = header
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("typedef void (*"))
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A name as JNI mangles it in `Java_<class>_<method>` symbols (the names here are ASCII).
pub fn jni_mangle(name: &str) -> String {
    name.replace('_', "_1").replace(['/', '.'], "_")
}

/// The JNI symbol of the Kotlin native for C function `name`.
pub fn jni_symbol(name: &str) -> String {
    format!("Java_zego_express_ffi_Native_{}", jni_mangle(name))
}

/// `zego_func_room_state_update` → `RoomStateUpdate`.
pub fn pascal_of_callback(callback: &str) -> String {
    callback
        .trim_start_matches("zego_func_")
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
