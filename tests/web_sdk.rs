//! The web SDK's unit tests (web/sdk/test, Node's built-in test runner): its room session, publish and play
//! state machines and input checks run without a browser; and the debug page's pixel stamp (web/debug/test).
//! Without `node` the test is skipped (failed under CI=true).

#[path = "bindings_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

/// The suite takes a few seconds; this bounds it when something hangs.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn web_sdk_suite_passes() {
    let Some(node) = support::tool(
        "node",
        &["--version"],
        "apt-get install -y nodejs (20 or later)",
    ) else {
        return;
    };
    let what = "node --test web/sdk/test/ web/debug/test/";
    let output = support::run(
        what,
        Command::new(node)
            .args(["--test", "web/sdk/test/", "web/debug/test/"])
            .current_dir(support::root()),
        SUITE_LIMIT,
    );
    support::assert_success(what, &output);
    let passed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok());
    assert!(passed.is_some_and(|n| n > 0), "{what} ran no tests");
}
