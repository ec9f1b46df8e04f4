//! The C# binding (bindings/csharp) compiled with Mono's `mcs`, its self-contained test runner
//! (bindings/csharp/tests) and examples/csharp/Quickstart.cs, run on `mono` against an in-process server with the
//! cdylib cargo built for this test. Without mcs or mono the tests are skipped (failed under CI=true).

#[path = "bindings_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const INSTALL: &str = "apt-get install -y mono-mcs mono-runtime";

fn toolchain() -> Option<()> {
    support::tool("mcs", &["--version"], INSTALL)?;
    support::tool("mono", &["--version"], INSTALL)?;
    Some(())
}

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cs"))
        .collect();
    files.sort();
    files
}

/// Compiles the binding plus `extra` into `exe`.
fn compile(exe: &Path, extra: &[PathBuf]) {
    let root = support::root();
    let output = support::run(
        "mcs",
        Command::new("mcs")
            .args(["-unsafe", "-warnaserror+", "-nowarn:1591", "-debug"])
            .arg(format!("-out:{}", exe.display()))
            .args(sources(&root.join("bindings/csharp/src")))
            .args(extra),
        Duration::from_secs(180),
    );
    support::assert_success("compiling the C# binding", &output);
}

fn mono(exe: &Path, args: &[&str], server: &zego_server::EmbeddedServer) -> Command {
    let lib = support::cdylib();
    let mut command = Command::new("mono");
    command
        .arg("--debug")
        .arg(exe)
        .args(args)
        // Mono resolves [DllImport("zego_express")] through the dynamic loader's search path.
        .env("LD_LIBRARY_PATH", lib.parent().unwrap())
        .envs(support::server_env(server));
    command
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_csharp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn csharp_suite_passes() {
    if toolchain().is_none() {
        return;
    }
    let exe = out_dir().join("tests.exe");
    compile(
        &exe,
        &sources(&support::root().join("bindings/csharp/tests")),
    );
    let server = support::server();
    let output = support::run(
        "the C# tests",
        &mut mono(&exe, &[], &server),
        Duration::from_secs(300),
    );
    support::assert_success("the C# suite", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains(" passed, 0 failed"));
}

#[test]
fn csharp_quickstart_runs_the_flow() {
    if toolchain().is_none() {
        return;
    }
    let exe = out_dir().join("quickstart.exe");
    compile(
        &exe,
        &[support::root().join("examples/csharp/Quickstart.cs")],
    );
    let server = support::server();
    let output = support::run(
        "examples/csharp/Quickstart.cs",
        &mut mono(&exe, &[server.ws_url(), "20"], &server),
        Duration::from_secs(120),
    );
    support::assert_success("the C# quickstart", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("frames decoded"));
}
