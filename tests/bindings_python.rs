//! The Python binding's test suite (bindings/python/tests, pytest) and examples/python/quickstart.py, run against an
//! in-process server with the cdylib cargo built for this test. Without python3 or pytest the tests are skipped
//! (failed under CI=true).

#[path = "bindings_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

/// The whole suite takes a few seconds; this bounds it when something hangs.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

fn python() -> Option<std::path::PathBuf> {
    let python = support::tool("python3", &["--version"], "apt-get install -y python3")?;
    support::tool("python3", &["-c", "import pytest"], "pip install pytest")?;
    Some(python)
}

fn command(python: &std::path::Path, server: &zego_server::EmbeddedServer) -> Command {
    let mut command = Command::new(python);
    command
        .current_dir(support::root())
        .env("PYTHONPATH", support::root().join("bindings/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("ZEGO_EXPRESS_LIB", support::cdylib())
        .envs(support::server_env(server));
    command
}

#[test]
fn python_suite_passes() {
    let Some(python) = python() else { return };
    let server = support::server();
    let output = support::run(
        "pytest bindings/python/tests",
        command(&python, &server).args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "bindings/python/tests",
        ]),
        SUITE_LIMIT,
    );
    support::assert_success("the Python suite", &output);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(" passed"),
        "pytest ran no tests"
    );
}

#[test]
fn python_quickstart_runs_the_flow() {
    let Some(python) = python() else { return };
    let server = support::server();
    let output = support::run(
        "examples/python/quickstart.py",
        command(&python, &server).args(["examples/python/quickstart.py", server.ws_url(), "20"]),
        Duration::from_secs(120),
    );
    support::assert_success("the Python quickstart", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok: "));
}
