//! The C ABI over [`crate::engine::Engine`]: handle-based functions named after the ZEGO Express C API, ZEGO error
//! codes as `int` return values, results through out-parameters, and app callbacks on the engine's callback thread.
//! `include/zego_express.h` is generated from this module by cbindgen (see `build.rs`).
//!
//! This layer only converts and validates. Every `extern "C"` body runs inside one panic boundary
//! ([`panic`]); pointers are turned into Rust values only through [`input`]; engines are reached only through the
//! handle table ([`handle`]), so no handle value is ever dereferenced.
//!
//! The contract for every function: a non-null pointer argument points to what its type says, for the duration of
//! the call. NULL is always checked and answered with an error code.

// The functions are safe to call from C given the contract above; like rustls-ffi, they are not `unsafe fn`
// because their callers are C programs, and every dereference happens in `input`.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
// C names: `zego_engine_profile`, `zego_func_room_state_update`, as in the original C API.
#![allow(non_camel_case_types)]

pub mod callbacks;
pub(crate) mod delivery;
pub mod engine;
pub mod enums;
pub mod handle;
pub(crate) mod input;
pub mod log;
pub(crate) mod panic;
pub mod player;
pub mod publisher;
pub mod registration;
pub mod room;
pub mod types;

pub use callbacks::*;
pub use engine::*;
pub use enums::*;
pub use handle::zego_engine;
pub use log::*;
pub use player::*;
pub use publisher::*;
pub use registration::*;
pub use room::*;
pub use types::*;
