//! Creating and destroying engines, error messages, the version, and render formats.

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Arc, OnceLock};

use zego_media::frame::PixelFormat;
use zego_protocol::error;
use zego_protocol::validate;

use crate::config::{EngineProfile, Scenario, VideoFrameFormat};
use crate::engine::Engine;
use crate::ffi::delivery::CallbackRegistry;
use crate::ffi::handle::{self, zego_engine};
use crate::ffi::input::{self, ffi_code, Out};
use crate::ffi::panic::ffi_panic_boundary;
use crate::ffi::types::zego_engine_profile;

/// Creates an engine and writes its handle to `*engine` (0 on failure).
///
/// Several engines may live in one process, each with its own identity, room, callbacks and callback thread.
/// The profile's strings are copied; the caller keeps ownership.
///
/// Returns 0, or: 1000008 `engine` or `profile` NULL, or an unknown `scenario`; 1001004 `app_id` 0;
/// 1001005 `app_sign` neither empty nor 64 hex characters; 1001006 `server` NULL or not `ws://host:port/path`.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn zego_engine_create(
    profile: *const zego_engine_profile,
    engine: *mut zego_engine,
) -> c_int {
    ffi_code!("zego_engine_create", {
        let out = unsafe { Out::new(engine) }?;
        let created = create(profile);
        out.write(*created.as_ref().unwrap_or(&0));
        created.map(|_| ())
    })
}

fn create(profile: *const zego_engine_profile) -> input::Result<zego_engine> {
    let profile = unsafe { input::reference(profile, error::COMMON_INVALID_PARAMETER) }?;
    if profile.app_id == 0 {
        return Err(error::ENGINE_APP_ID_INCORRECT);
    }
    let app_sign =
        unsafe { input::optional_text(profile.app_sign, error::ENGINE_APP_SIGN_INCORRECT) }?
            .unwrap_or("");
    if !app_sign.is_empty() {
        validate::app_sign(app_sign)?;
    }
    let scenario = Scenario::from_value(profile.scenario)?;
    let invalid_server = error::ENGINE_SERVER_ADDRESS_INVALID;
    let server = unsafe { input::text(profile.server, invalid_server, invalid_server) }?;
    // Engine logs go somewhere useful (stderr, warnings up) even if the app never configures logging.
    let _ = crate::log::install();
    let callbacks = CallbackRegistry::new();
    let profile = EngineProfile {
        app_id: profile.app_id,
        app_sign: app_sign.to_owned(),
        scenario,
        server: server.to_owned(),
    };
    let engine = Engine::create(profile, callbacks.sink())?;
    Ok(handle::insert(engine, callbacks))
}

/// Destroys an engine: stops previewing, publishing and playing, logs out, and joins every thread the engine
/// started. The handle is invalid from the moment this is called: concurrent and later calls with it get 1000001.
///
/// No callback of this engine starts after this returns. Called from inside one of the engine's own callbacks, it
/// tears down everything but the callback thread itself, which ends when that callback returns.
///
/// Returns 0, or: 1000001 the handle is not a live engine; 1000006 called from inside the log callback (which may
/// run inside another call on the same engine).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn zego_engine_destroy(engine: zego_engine) -> c_int {
    ffi_code!("zego_engine_destroy", {
        if crate::log::in_log_callback() {
            return Err(error::COMMON_UNSUPPORTED);
        }
        let (engine, callbacks) = handle::remove(engine)?;
        // Closed even if teardown fails, so the app's callbacks never run after this returns.
        let _close = CloseCallbacks(callbacks);
        engine.destroy();
        Ok(())
    })
}

struct CloseCallbacks(Arc<CallbackRegistry>);

impl Drop for CloseCallbacks {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The message of an error code ("Unknown error code." for codes this SDK does not know). The string is static:
/// never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn zego_get_error_message(error_code: c_int) -> *const c_char {
    ffi_panic_boundary!("zego_get_error_message", {
        static MESSAGES: OnceLock<Vec<(u32, CString)>> = OnceLock::new();
        let messages = MESSAGES.get_or_init(|| {
            error::ALL
                .iter()
                .map(|(code, _, message)| (*code, CString::new(*message).unwrap_or_default()))
                .collect()
        });
        u32::try_from(error_code)
            .ok()
            .and_then(|code| messages.binary_search_by_key(&code, |(c, _)| *c).ok())
            .map_or(c"Unknown error code.".as_ptr(), |i| messages[i].1.as_ptr())
    })
}

/// The SDK version, e.g. "0.1.0". The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn zego_get_version() -> *const c_char {
    ffi_panic_boundary!("zego_get_version", {
        const VERSION: &CStr =
            match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
                Ok(version) => version,
                Err(_) => c"unknown",
            };
        VERSION.as_ptr()
    })
}

/// Render formats a frame callback can be given; other formats are 1000006 (known) or 1000008 (not a format).
fn render_format(format: i32) -> input::Result<PixelFormat> {
    match PixelFormat::from_zego_value(format) {
        Some(format) => Ok(format),
        None => match VideoFrameFormat::from_value(format) {
            Ok(_) => Err(error::COMMON_UNSUPPORTED),
            Err(code) => Err(code),
        },
    }
}

/// Chooses the pixel format of the frames `custom_video_render_remote_frame` receives:
/// `ZEGO_VIDEO_FRAME_FORMAT_I420` (the default, no conversion), `_NV12`, `_BGRA32` or `_RGBA32`.
/// Takes effect from the next frame.
///
/// Returns 0, or: 1000001 bad handle; 1000006 a format that is not one of those four; 1000008 not a format.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn zego_set_remote_render_format(engine: zego_engine, format: i32) -> c_int {
    ffi_code!("zego_set_remote_render_format", {
        let entry = handle::get(engine)?;
        entry
            .callbacks
            .set_remote_render_format(render_format(format)?);
        Ok(())
    })
}

/// Chooses the pixel format of the frames `custom_video_render_captured_frame` receives, as
/// `zego_set_remote_render_format`.
#[no_mangle]
pub extern "C" fn zego_set_captured_render_format(engine: zego_engine, format: i32) -> c_int {
    ffi_code!("zego_set_captured_render_format", {
        let entry = handle::get(engine)?;
        entry
            .callbacks
            .set_captured_render_format(render_format(format)?);
        Ok(())
    })
}
