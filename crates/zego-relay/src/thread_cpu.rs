//! CPU time of the relay's I/O thread, for benchmarks and operators.
//!
//! Read from `/proc/self/task/<tid>/schedstat` (nanoseconds on CPU), so any thread can ask without unsafe code.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Remembers which kernel thread to ask about; `0` means none (not started, ended, or not Linux).
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadCpuClock {
    tid: Arc<AtomicU32>,
}

impl ThreadCpuClock {
    /// Called on the thread to be measured.
    pub fn register_current_thread(&self) {
        if let Some(tid) = current_tid() {
            self.tid.store(tid, Ordering::Relaxed);
        }
    }

    /// Called when the measured thread ends, so a later reading never names a reused thread id.
    pub fn unregister(&self) {
        self.tid.store(0, Ordering::Relaxed);
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        let tid = self.tid.load(Ordering::Relaxed);
        if tid == 0 {
            return None;
        }
        let schedstat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
        let nanos: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }
}

/// `/proc/thread-self` links to `<pid>/task/<tid>`.
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}
