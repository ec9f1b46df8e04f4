//! examples/c/quickstart.c, built by the README's own C build lines (linked to the shared library with an rpath, and
//! to the static library with the system libraries it names), runs the flow against an in-process server. The
//! quickstart sets no log at all, so its stderr shows what the SDK prints unasked: no line of a dependency's.
//! Without a C compiler the test is skipped (failed under CI=true).

#[path = "bindings_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The `cc app.c ...` lines of the README's "Use it from C" section.
fn readme_build_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Use it from C"))
        .expect("README has a \"Use it from C\" section");
    section
        .lines()
        .filter(|l| l.starts_with("cc app.c "))
        .map(str::to_owned)
        .collect()
}

/// A directory laid out as the README assumes: `app.c` (the quickstart), `include/` and `target/release/` holding
/// the libraries cargo built for this test.
fn readme_tree(out_dir: &Path) -> PathBuf {
    let tree = out_dir.join("readme");
    let _ = std::fs::remove_dir_all(&tree);
    let release = tree.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    let root = support::root();
    std::fs::copy(root.join("examples/c/quickstart.c"), tree.join("app.c")).unwrap();
    std::os::unix::fs::symlink(root.join("include"), tree.join("include")).unwrap();
    let shared = support::cdylib();
    let staticlib = ["", "deps"]
        .iter()
        .map(|d| support::profile_dir().join(d).join("libzego_express.a"))
        .find(|p| p.is_file())
        .expect("libzego_express.a built with the cdylib");
    std::os::unix::fs::symlink(&shared, release.join(shared.file_name().unwrap())).unwrap();
    std::os::unix::fs::symlink(&staticlib, release.join("libzego_express.a")).unwrap();
    tree
}

/// Log lines on stderr whose target is not one of the SDK's crates.
fn dependency_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            let (Some(time), Some(level), Some(target)) =
                (words.next(), words.next(), words.next())
            else {
                return false;
            };
            let is_log_line = time.contains('.')
                && time
                    .split('.')
                    .all(|p| p.chars().all(|c| c.is_ascii_digit()))
                && ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level);
            (is_log_line && !target.starts_with("zego_")) || line.contains("log.file=")
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(unix)]
#[test]
fn c_quickstart_builds_as_the_readme_says_and_runs_the_flow() {
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Some(cc) = support::tool(&compiler, &["--version"], "apt-get install -y gcc") else {
        return;
    };
    let lines = readme_build_lines();
    assert_eq!(
        lines.len(),
        2,
        "the README names a shared and a static build: {lines:?}"
    );
    assert!(lines[0].contains("-lzego_express") && lines[0].contains("-rpath"));
    assert!(lines[1].contains("libzego_express.a"));

    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_c");
    let tree = readme_tree(&out_dir);
    let server = support::server();
    for (line, kind) in lines.iter().zip(["shared", "static"]) {
        let command = format!("{} {}", cc.display(), line.strip_prefix("cc ").unwrap());
        let _ = std::fs::remove_file(tree.join("app"));
        let output = support::run(
            &format!("the README's {kind} build"),
            Command::new("sh")
                .arg("-c")
                .arg(&command)
                .current_dir(&tree),
            Duration::from_secs(300),
        );
        support::assert_success(&format!("{kind}: {line}"), &output);
        let exe = tree.join(format!("app-{kind}"));
        std::fs::rename(tree.join("app"), &exe).unwrap();

        // No LD_LIBRARY_PATH: the shared build finds the library through its rpath, the static one needs none.
        let output = support::run(
            &format!("the quickstart, {kind}"),
            Command::new(&exe)
                .args([server.ws_url(), "20"])
                .envs(support::server_env(&server))
                .env_remove("LD_LIBRARY_PATH"),
            Duration::from_secs(120),
        );
        support::assert_success(&format!("the C quickstart, {kind}"), &output);
        assert!(String::from_utf8_lossy(&output.stdout).contains("frames decoded"));
        let noise = dependency_lines(&output.stderr);
        assert!(
            noise.is_empty(),
            "{kind}: dependencies logged to stderr of an app that set no log:\n{}",
            noise.join("\n")
        );
    }
}
