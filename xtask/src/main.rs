//! Project automation.
//!
//! `cargo run -p xtask -- bindings` regenerates the low-level declarations of every language binding from the
//! C ABI in src/ffi (the same Rust definitions cbindgen turns into include/zego_express.h):
//! Python ctypes prototypes and structs, C# P/Invoke declarations (csbindgen), Kotlin `external` functions with
//! their JNI glue in src/jni, and, for each language, the enums, error codes and struct classes. The web SDK's
//! web/sdk/codes.js (error codes, limits) comes from crates/zego-protocol alone.
//! `cargo run -p xtask -- bindings --check` writes nothing and fails when a committed file is stale.

mod csharp;
mod errors;
mod jni;
mod kotlin;
mod lower;
mod model;
mod names;
mod protocol;
mod python;
mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// One generated file: where it goes and what it holds.
struct Output {
    path: PathBuf,
    text: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bindings") => bindings(args.iter().skip(1).any(|a| a == "--check")),
        _ => {
            eprintln!("usage: cargo run -p xtask -- bindings [--check]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn bindings(check: bool) -> Result<(), String> {
    let root = root();
    let ffi_dir = root.join("src/ffi");
    let model = model::Model::load(&ffi_dir)?;
    let protocol_src = root.join("crates/zego-protocol/src");
    let errors = errors::load(&protocol_src.join("error.rs"))?;
    let scratch = root.join("target/xtask");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;

    let kotlin_dir = root.join("bindings/kotlin/src/main/kotlin/zego/express");
    let outputs = vec![
        Output {
            path: root.join("bindings/python/zego_express/_native.py"),
            text: python::native(&model)?,
        },
        Output {
            path: root.join("bindings/python/zego_express/_types.py"),
            text: python::types(&model, &errors)?,
        },
        Output {
            path: root.join("bindings/csharp/src/NativeMethods.g.cs"),
            text: csharp::native_methods(&ffi_dir, &scratch)?,
        },
        Output {
            path: root.join("bindings/csharp/src/Types.g.cs"),
            text: csharp::types(&model, &errors)?,
        },
        Output {
            path: kotlin_dir.join("Types.g.kt"),
            text: kotlin::types(&model, &errors)?,
        },
        Output {
            path: kotlin_dir.join("ffi/Native.g.kt"),
            text: kotlin::native(&model)?,
        },
        Output {
            path: root.join("src/jni/generated.rs"),
            text: rustfmt(&jni::glue(&model)?)?,
        },
        Output {
            path: root.join("web/sdk/codes.js"),
            text: web::codes(
                &errors,
                &protocol::limits(&protocol_src.join("limits.rs"))?,
                &protocol::user_name_format_ranges(&protocol_src.join("validate.rs"))?,
                protocol::protocol_version(&protocol_src.join("message.rs"))?,
            ),
        },
    ];

    let mut stale = Vec::new();
    for out in &outputs {
        let current = std::fs::read_to_string(&out.path).unwrap_or_default();
        if current == out.text {
            continue;
        }
        let shown = out
            .path
            .strip_prefix(&root)
            .unwrap_or(&out.path)
            .display()
            .to_string();
        if check {
            stale.push(shown);
        } else {
            if let Some(dir) = out.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&out.path, &out.text).map_err(|e| format!("{shown}: {e}"))?;
            println!("wrote {shown}");
        }
    }
    if !stale.is_empty() {
        return Err(format!(
            "generated bindings are stale: {}. Run `cargo run -p xtask -- bindings` and commit the result.",
            stale.join(", ")
        ));
    }
    if check {
        println!("bindings are up to date ({} files)", outputs.len());
    }
    Ok(())
}

/// Formats generated Rust the way `cargo fmt` will, so the committed file passes `cargo fmt --check`.
fn rustfmt(source: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("rustfmt stdin")?
        .write_all(source.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt rejected the generated JNI glue: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}
