//! JNI natives for the Kotlin/Java binding (`bindings/kotlin`, class `zego.express.ffi.Native`), built into the
//! same library as the C ABI when the `jni` feature is on.
//!
//! `generated.rs` is written by `cargo run -p xtask -- bindings` from src/ffi: one native per C function, which
//! converts its Java arguments and calls the C function, and one trampoline per callback type, which turns the C
//! arguments into Java objects and calls the registered Kotlin listener. `glue.rs` holds the conversions they
//! share.

#[allow(
    non_snake_case,
    dead_code,
    unused_mut,
    unused_variables,
    unused_imports,
    clippy::too_many_arguments,
    clippy::missing_safety_doc
)]
mod generated;
mod glue;
