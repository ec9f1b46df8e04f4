//! examples/c/quickstart.c, compiled against include/zego_express.h and linked to the cdylib, runs the flow against
//! an in-process server. Without a C compiler the test is skipped (failed under CI=true).

#[path = "bindings_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

#[test]
fn c_quickstart_runs_the_flow() {
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Some(cc) = support::tool(&compiler, &["--version"], "apt-get install -y gcc") else {
        return;
    };
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_c");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("quickstart");
    let lib = support::cdylib();
    let root = support::root();
    let output = support::run(
        "cc examples/c/quickstart.c",
        Command::new(cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
            .arg(root.join("include"))
            .arg(root.join("examples/c/quickstart.c"))
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()))
            .arg("-o")
            .arg(&exe),
        Duration::from_secs(120),
    );
    support::assert_success("compiling the C quickstart", &output);

    let server = support::server();
    let output = support::run(
        "examples/c/quickstart",
        Command::new(&exe)
            .args([server.ws_url(), "20"])
            .envs(support::server_env(&server)),
        Duration::from_secs(120),
    );
    support::assert_success("the C quickstart", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("frames decoded"));
}
