//! Process-wide logging for the C ABI: one tracing subscriber, installed on first use, whose level changes at run
//! time (a reloadable filter) and whose lines go to a file, an app callback, or stderr when neither is set.
//!
//! Nothing here holds a lock while app code runs: the callback is copied out of its slot first, so a callback that
//! logs, changes the level, or swaps the callback does not deadlock. A callback that logs does not see its own
//! lines (they would recurse); they still reach the file.

use std::cell::Cell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write as _};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Layer, Registry};

/// Receives every log line that passes the level filter: its level and the formatted text.
pub type LogCallback = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// The level a fresh process logs at: problems only, until the app asks for more.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::WARN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Another tracing subscriber was already the process default, so this one cannot be installed.
    #[error("another tracing subscriber is already installed in this process")]
    ForeignSubscriber,
}

struct Logging {
    level: reload::Handle<LevelFilter, Registry>,
    /// False when another subscriber owned the process first; the setters then report it.
    installed: bool,
}

/// Where lines go. Shared by the output layer and the setters.
struct Outputs {
    file: Mutex<Option<LineWriter<File>>>,
    callback: Mutex<Option<LogCallback>>,
}

static LOGGING: OnceLock<Logging> = OnceLock::new();
static OUTPUTS: Outputs = Outputs {
    file: Mutex::new(None),
    callback: Mutex::new(None),
};

thread_local! {
    /// Set while this thread runs the app's log callback, so lines it logs are not fed back into it.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Installs the subscriber once per process (later calls return the first result).
pub fn install() -> Result<(), LogError> {
    let logging = LOGGING.get_or_init(|| {
        let (filter, level) = reload::Layer::new(DEFAULT_LEVEL);
        let installed = tracing_subscriber::registry()
            .with(filter)
            .with(OutputLayer)
            .try_init()
            .is_ok()
            || tracing::dispatcher::get_default(|d| d.is::<OutputLayer>());
        Logging { level, installed }
    });
    if logging.installed {
        Ok(())
    } else {
        Err(LogError::ForeignSubscriber)
    }
}

/// Changes the level at run time; `LevelFilter::OFF` silences everything.
pub fn set_level(level: LevelFilter) -> Result<(), LogError> {
    install()?;
    let logging = LOGGING.get().ok_or(LogError::ForeignSubscriber)?;
    logging
        .level
        .reload(level)
        .map_err(|_| LogError::ForeignSubscriber)
}

/// Appends lines to the file at `path` (created if missing), or stops writing to a file with `None`.
pub fn set_file(path: Option<&Path>) -> Result<(), std::io::Error> {
    install().map_err(std::io::Error::other)?;
    let file = match path {
        Some(path) => Some(LineWriter::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )),
        None => None,
    };
    let old = std::mem::replace(&mut *OUTPUTS.file.lock(), file);
    // Dropping a LineWriter flushes it; do that outside the lock.
    drop(old);
    Ok(())
}

/// Sends lines to `callback`, or stops with `None`. The callback runs on whichever thread logged.
pub fn set_callback(callback: Option<LogCallback>) -> Result<(), LogError> {
    install()?;
    let old = std::mem::replace(&mut *OUTPUTS.callback.lock(), callback);
    // The old callback may own app state; release it outside the lock.
    drop(old);
    Ok(())
}

/// Writes each event to the configured outputs.
struct OutputLayer;

impl<S: Subscriber> Layer<S> for OutputLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut text = TextVisitor::default();
        event.record(&mut text);
        let message = format!("{}: {}{}", meta.target(), text.message, text.fields);

        let mut written = false;
        if let Some(file) = OUTPUTS.file.lock().as_mut() {
            let _ = writeln!(file, "{} {:>5} {}", timestamp(), meta.level(), message);
            written = true;
        }
        let callback = OUTPUTS.callback.lock().clone();
        if let Some(callback) = callback {
            written = true;
            if !IN_CALLBACK.with(Cell::get) {
                IN_CALLBACK.with(|c| c.set(true));
                let _reset = ResetOnDrop;
                callback(*meta.level(), &message);
            }
        }
        if !written {
            eprintln!("{} {:>5} {}", timestamp(), meta.level(), message);
        }
    }
}

/// Clears `IN_CALLBACK` even when the callback unwinds.
struct ResetOnDrop;

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(false));
    }
}

/// True while this thread runs the app's log callback.
pub fn in_log_callback() -> bool {
    IN_CALLBACK.with(Cell::get)
}

/// Unix time with microseconds: enough to line log files up with frame capture times.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}

/// Collects the `message` field and appends the others as ` key=value`.
#[derive(Default)]
struct TextVisitor {
    message: String,
    fields: String,
}

impl Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}
