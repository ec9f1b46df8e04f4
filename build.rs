//! Generates the C header from `src/ffi` with cbindgen, with every error code of `zego_protocol::error::ALL` as a
//! `ZEGO_ERROR_*` define.
//!
//! The header always goes to `$OUT_DIR/zego_express.h`. The committed `include/zego_express.h` is written only
//! when it is missing or when `ZEGO_UPDATE_HEADER=1` is set, so a build never edits a tracked file behind anyone's
//! back; `tests/ffi_header.rs` fails while the two differ.

use std::path::PathBuf;

/// The error table itself, so the header's codes cannot drift from the one definition.
#[allow(dead_code)]
#[path = "crates/zego-protocol/src/error.rs"]
mod error;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // cbindgen reads the whole crate, so any source change may change the header.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=crates/zego-protocol/src/error.rs");
    println!("cargo:rerun-if-env-changed=ZEGO_UPDATE_HEADER");

    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    let mut config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(e) => panic!("cbindgen.toml: {e}"),
    };
    config.after_includes = Some(error_defines());

    // A source file that does not parse (someone mid-edit) fails the compile anyway with a better message; the
    // header is simply not regenerated this time.
    let bindings = match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => bindings,
        Err(e) => {
            println!("cargo:warning=include/zego_express.h not regenerated: {e}");
            return;
        }
    };
    bindings.write_to_file(out_dir.join("zego_express.h"));

    let committed = crate_dir.join("include").join("zego_express.h");
    let update = std::env::var("ZEGO_UPDATE_HEADER").is_ok_and(|v| v == "1");
    if update || !committed.exists() {
        bindings.write_to_file(&committed);
    }
}

/// `#define ZEGO_ERROR_<NAME> <code>` for every known code, each with its message as documentation.
fn error_defines() -> String {
    let mut text = String::from(
        "\n/* Error codes: 1000000 + module * 1000 + n (modules: 0 common, 1 engine, 2 room, 3 publisher, 4 player,\n * 9 IM). zego_get_error_message(code) returns the message. */\n",
    );
    for (code, name, message) in error::ALL {
        text.push_str(&format!(
            "/** {message} */\n#define ZEGO_ERROR_{name} {code}\n"
        ));
    }
    text
}
