//! Process-wide logging for the C ABI: one tracing subscriber, installed on first use, whose level changes at run
//! time (a reloadable filter) and whose lines go to a file, an app callback, or stderr when neither is set.
//!
//! Dependencies' lines (tracing events and `log` records alike) take the same way under the same level, except that
//! until the app sets a level only their errors pass: a library's notice is not the app's concern. Every line is
//! plain text without terminal colour codes, with secrets replaced by [`zego_protocol::redact::secrets`].
//!
//! Nothing here holds a lock while app code runs: the callback is copied out of its slot first, so a callback that
//! logs, changes the level, or swaps the callback does not deadlock. A callback that logs does not see its own
//! lines (they would recurse); they still reach the file.

use std::cell::Cell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// Whether the app chose a level; until then dependencies log errors only.
static LEVEL_CHOSEN: AtomicBool = AtomicBool::new(false);
/// The crates whose targets are this SDK's own; every other target is a dependency's.
const OWN_TARGET_PREFIX: &str = "zego_";
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
        .map_err(|_| LogError::ForeignSubscriber)?;
    LEVEL_CHOSEN.store(true, Ordering::Relaxed);
    // `log` records are dropped before they become events unless the `log` crate's own maximum lets them through.
    log::set_max_level(log_level_filter(level));
    Ok(())
}

fn log_level_filter(level: LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(Level::ERROR) => log::LevelFilter::Error,
        Some(Level::WARN) => log::LevelFilter::Warn,
        Some(Level::INFO) => log::LevelFilter::Info,
        Some(Level::DEBUG) => log::LevelFilter::Debug,
        Some(Level::TRACE) => log::LevelFilter::Trace,
    }
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
        // A `log` record names its own target in a field; the event's is the bridge's.
        let target = text.log_target.as_deref().unwrap_or(meta.target());
        let dependency = !target.starts_with(OWN_TARGET_PREFIX);
        if dependency && *meta.level() != Level::ERROR && !LEVEL_CHOSEN.load(Ordering::Relaxed) {
            return;
        }
        let message = format!("{target}: {}{}", text.message, text.fields);
        let message = plain_text(&message);
        let message = zego_protocol::redact::secrets(&message);

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

/// `text` without terminal escape sequences (colour codes some dependencies put in their messages).
fn plain_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // CSI `ESC [ params final`: skip to the final byte (@ to ~); a lone ESC is dropped.
        if chars.next_if_eq(&'[').is_some() {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out.into()
}

/// Collects the `message` field and appends the others as ` key=value`. The fields the `log` bridge adds
/// (`log.target`, `log.file`, ...) are not appended: the target is kept apart, and where the dependency was built
/// says nothing to the app.
#[derive(Default)]
struct TextVisitor {
    message: String,
    fields: String,
    log_target: Option<String>,
}

impl Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "log.target" => self.log_target = Some(value.to_owned()),
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}
