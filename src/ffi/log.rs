//! Logging controls. The SDK logs through one process-wide subscriber, installed by the first of these calls or
//! the first `zego_engine_create`. Until configured, warnings and errors go to stderr. These settings are
//! process-wide (not per engine) and thread-safe, and may be called from inside the log callback.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use zego_protocol::error;

use crate::ffi::delivery::UserContext;
use crate::ffi::input::ffi_code;

/// Receives each log line that passes the level: its `zego_log_level` and text (valid only during the call). It
/// runs on whichever thread logged, possibly several at once, so it must be thread-safe; lines the callback itself
/// causes are not fed back into it.
pub type zego_func_log =
    Option<unsafe extern "C" fn(level: i32, message: *const c_char, user_context: *mut c_void)>;

/// Sets the level (`zego_log_level`): lines at that level and more severe are logged. Takes effect at once.
///
/// Returns 0, or: 1000008 not a `zego_log_level`; 1000006 another tracing subscriber already owns this process
/// (when the SDK is linked into a Rust program that installed its own).
#[no_mangle]
pub extern "C" fn zego_set_log_level(level: i32) -> c_int {
    ffi_code!("zego_set_log_level", {
        let filter = match level {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            5 => LevelFilter::TRACE,
            _ => return Err(error::COMMON_INVALID_PARAMETER),
        };
        crate::log::set_level(filter).map_err(|_| error::COMMON_UNSUPPORTED)
    })
}

/// Appends log lines to the file at `path` (created if missing), or stops writing to a file when `path` is NULL.
/// While a file or a callback is set, nothing goes to stderr.
///
/// Returns 0, or: 1000008 the file cannot be opened for appending; 1000006 another tracing subscriber owns this
/// process.
#[no_mangle]
pub extern "C" fn zego_set_log_file(path: *const c_char) -> c_int {
    ffi_code!("zego_set_log_file", {
        crate::log::install().map_err(|_| error::COMMON_UNSUPPORTED)?;
        let path = if path.is_null() {
            None
        } else {
            Some(path_from_c(unsafe { CStr::from_ptr(path) })?)
        };
        crate::log::set_file(path.as_deref()).map_err(|e| {
            tracing::warn!("cannot open the log file {:?}: {e}", path);
            error::COMMON_INVALID_PARAMETER
        })
    })
}

/// Sends log lines to `callback` (with `user_context`), or stops when `callback` is NULL.
///
/// Returns 0, or 1000006 when another tracing subscriber owns this process.
#[no_mangle]
pub extern "C" fn zego_set_log_callback(
    callback: zego_func_log,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!("zego_set_log_callback", {
        let callback = callback.map(|cb| {
            let context = UserContext(user_context);
            Arc::new(move |level: Level, message: &str| {
                let end = message.find('\0').unwrap_or(message.len());
                let message = CString::new(&message[..end]).unwrap_or_default();
                let context = &context;
                unsafe { cb(level_value(level), message.as_ptr(), context.0) }
            }) as crate::log::LogCallback
        });
        crate::log::set_callback(callback).map_err(|_| error::COMMON_UNSUPPORTED)
    })
}

fn level_value(level: Level) -> i32 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// File names are bytes on Unix; elsewhere they must be UTF-8.
fn path_from_c(path: &CStr) -> crate::ffi::input::Result<std::path::PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.to_bytes();
        if bytes.is_empty() {
            return Err(error::COMMON_INVALID_PARAMETER);
        }
        Ok(std::ffi::OsStr::from_bytes(bytes).into())
    }
    #[cfg(not(unix))]
    {
        match path.to_str() {
            Ok(text) if !text.is_empty() => Ok(text.into()),
            _ => Err(error::COMMON_INVALID_PARAMETER),
        }
    }
}
