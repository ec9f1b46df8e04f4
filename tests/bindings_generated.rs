//! The generated bindings (Python ctypes declarations, C# P/Invoke declarations, Kotlin natives and their JNI glue)
//! match the C ABI in src/ffi: `cargo run -p xtask -- bindings --check` regenerates them in memory and fails when a
//! committed file differs.

#[path = "bindings_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

#[test]
fn generated_bindings_are_up_to_date() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = support::run(
        "cargo run -p xtask -- bindings --check",
        Command::new(cargo)
            .current_dir(support::root())
            .args(["run", "-q", "-p", "xtask", "--", "bindings", "--check"]),
        // The first run builds xtask (syn, csbindgen); the check itself takes a moment.
        Duration::from_secs(1800),
    );
    support::assert_success("the bindings check", &output);
}
