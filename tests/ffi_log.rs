//! Logging through the C ABI: a reloadable level, a log file, and a log callback that may itself call the API
//! (which logs) without deadlocking. One test, because logging is process-wide.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zego_express::error;
use zego_express::ffi::*;

static LINES: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
static REENTER: AtomicBool = AtomicBool::new(false);
static REENTERED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn collect(level: i32, message: *const c_char, user_context: *mut c_void) {
    assert_eq!(user_context as usize, 0x5eed);
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LINES.lock().unwrap().push((level, text));
    if REENTER.load(Ordering::SeqCst) {
        // A failing call logs (at debug) while this line is being delivered; changing the level and the callback
        // from here must not deadlock either.
        assert_eq!(
            zego_start_preview(0, 0),
            error::COMMON_ENGINE_NOT_CREATED as c_int
        );
        assert_eq!(
            zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_DEBUG as i32),
            0
        );
        assert_eq!(
            zego_set_log_callback(Some(collect), 0x5eed as *mut c_void),
            0
        );
        REENTERED.fetch_add(1, Ordering::SeqCst);
    }
}

/// An API error, which the SDK logs at debug level with its code.
fn log_an_api_error() {
    assert_eq!(
        zego_start_preview(0, 0),
        error::COMMON_ENGINE_NOT_CREATED as c_int
    );
}

fn lines_with(needle: &str) -> Vec<(i32, String)> {
    LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.contains(needle))
        .cloned()
        .collect()
}

#[test]
fn log_level_file_and_callback() {
    let context = 0x5eed as *mut c_void;
    assert_eq!(
        zego_set_log_level(6),
        error::COMMON_INVALID_PARAMETER as c_int
    );
    assert_eq!(
        zego_set_log_level(-1),
        error::COMMON_INVALID_PARAMETER as c_int
    );
    assert_eq!(zego_set_log_callback(Some(collect), context), 0);

    // Level filter: debug lines appear at DEBUG, not at WARN, and the change takes effect at once.
    assert_eq!(
        zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_DEBUG as i32),
        0
    );
    log_an_api_error();
    let debug = lines_with("code=1000001");
    assert_eq!(debug.len(), 1, "{debug:?}");
    assert_eq!(debug[0].0, zego_log_level::ZEGO_LOG_LEVEL_DEBUG as i32);
    assert!(debug[0].1.starts_with("zego_express"), "{}", debug[0].1);
    assert_eq!(
        zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_WARN as i32),
        0
    );
    log_an_api_error();
    assert_eq!(lines_with("code=1000001").len(), 1);

    // A callback that calls the API, which logs, and swaps the level and itself: no deadlock, no recursion.
    assert_eq!(
        zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_DEBUG as i32),
        0
    );
    REENTER.store(true, Ordering::SeqCst);
    log_an_api_error();
    REENTER.store(false, Ordering::SeqCst);
    assert_eq!(
        REENTERED.load(Ordering::SeqCst),
        1,
        "the nested line must not re-enter the callback"
    );

    // Log file: lines are appended; NULL closes it; a path that cannot be opened is an error.
    let path = std::env::temp_dir().join(format!("zego-ffi-log-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(zego_set_log_file(c_path.as_ptr()), 0);
    log_an_api_error();
    // A message with terminal colour codes in it (some dependencies write them) reaches the file as plain text.
    tracing::warn!("\x1b[1;31mcoloured\x1b[0m text");
    assert_eq!(zego_set_log_file(std::ptr::null()), 0);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.contains("DEBUG zego_express") && written.contains("code=1000001"),
        "{written}"
    );
    assert!(written.contains("coloured text"), "{written}");
    assert!(
        !written.contains('\x1b'),
        "colour codes in the log file: {written:?}"
    );
    log_an_api_error();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "nothing is written after the file is closed"
    );
    let _ = std::fs::remove_file(&path);
    let bad = CString::new("/nonexistent-directory/zego/x.log").unwrap();
    assert_eq!(
        zego_set_log_file(bad.as_ptr()),
        error::COMMON_INVALID_PARAMETER as c_int
    );

    // Many threads logging while the callback and level change under them.
    static DONE: AtomicUsize = AtomicUsize::new(0);
    let loggers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..5_000 {
                    log_an_api_error();
                }
                DONE.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while DONE.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline, "logging threads are stuck");
        assert_eq!(
            zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_INFO as i32),
            0
        );
        assert_eq!(zego_set_log_callback(None, null_mut()), 0);
        assert_eq!(zego_set_log_callback(Some(collect), context), 0);
        assert_eq!(
            zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_DEBUG as i32),
            0
        );
    }
    for logger in loggers {
        logger.join().unwrap();
    }

    // Unregistered: nothing more arrives.
    assert_eq!(zego_set_log_callback(None, null_mut()), 0);
    let before = LINES.lock().unwrap().len();
    log_an_api_error();
    assert_eq!(LINES.lock().unwrap().len(), before);
    assert_eq!(
        zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_WARN as i32),
        0
    );
}
