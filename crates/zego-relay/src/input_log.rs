//! Warnings the WebRTC stack logs about peer input, counted and logged once per period.
//!
//! str0m logs one WARN per SRTP or SRTCP packet it cannot decrypt, so a flood of forged packets would become a
//! flood of log lines. While the relay feeds a datagram to a session, a subscriber in front of the one in effect
//! takes the stack's warnings and counts them; [`InputLog::report`] logs the count and the latest of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

/// The relay's own events are never held back.
const OWN_TARGET: &str = env!("CARGO_CRATE_NAME");

/// Counts the WebRTC stack's warnings about peer input and logs them at most once per period.
pub(crate) struct InputLog {
    dispatch: Dispatch,
    held: Arc<Held>,
    period: Duration,
    last_report: Option<Instant>,
}

/// What the subscriber took since the last report.
#[derive(Default)]
struct Held {
    count: AtomicU64,
    latest: Mutex<String>,
}

impl InputLog {
    /// Wraps the subscriber in effect on the calling thread.
    pub fn new(period: Duration) -> Self {
        let inner = tracing::dispatcher::get_default(Dispatch::clone);
        let held = Arc::new(Held::default());
        let dispatch = Dispatch::new(Holding {
            inner,
            held: held.clone(),
            max_level: LevelFilter::current().max(LevelFilter::WARN),
        });
        InputLog {
            dispatch,
            held,
            period,
            last_report: None,
        }
    }

    /// Runs `feed` (a session taking a datagram) with the stack's warnings held back.
    pub fn feed<R>(&self, feed: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, feed)
    }

    /// Logs what was held back, unless the last report is more recent than the period.
    pub fn report(&mut self, now: Instant) {
        if self.held.count.load(Ordering::Relaxed) == 0
            || self.last_report.is_some_and(|t| now < t + self.period)
        {
            return;
        }
        let count = self.held.count.swap(0, Ordering::Relaxed);
        let latest = std::mem::take(&mut *self.held.latest.lock());
        self.last_report = Some(now);
        tracing::warn!(
            count,
            latest = %latest,
            "peer input rejected by the WebRTC stack (logged at most every {:?})",
            self.period
        );
    }
}

/// The subscriber in front: the stack's warnings are counted, everything else goes on to `inner`.
struct Holding {
    inner: Dispatch,
    held: Arc<Held>,
    /// The most verbose level anything logs at: what `inner` and the others in effect take, and WARN.
    max_level: LevelFilter,
}

fn held_back(metadata: &Metadata<'_>) -> bool {
    metadata.is_event()
        && *metadata.level() <= Level::WARN
        && !metadata.target().starts_with(OWN_TARGET)
}

impl Subscriber for Holding {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if held_back(metadata) {
            Interest::always()
        } else {
            self.inner.register_callsite(metadata)
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        held_back(metadata) || self.inner.enabled(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max_level)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values)
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows)
    }

    fn event(&self, event: &Event<'_>) {
        if !held_back(event.metadata()) {
            self.inner.event(event);
            return;
        }
        self.held.count.fetch_add(1, Ordering::Relaxed);
        let mut latest = self.held.latest.lock();
        latest.clear();
        event.record(&mut Message(&mut latest));
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span)
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span)
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
}

/// The `message` field of an event.
struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stacks_warnings_are_counted_and_the_relays_own_pass() {
        let log = InputLog::new(Duration::from_secs(10));
        log.feed(|| {
            for _ in 0..3 {
                tracing::warn!(target: "str0m::rtp::srtp", "Failed to decrypt SRTCP");
            }
            tracing::warn!("the relay's own");
        });
        assert_eq!(log.held.count.load(Ordering::Relaxed), 3);
        assert_eq!(*log.held.latest.lock(), "Failed to decrypt SRTCP");
    }

    #[test]
    fn a_report_empties_the_count_once_per_period() {
        let mut log = InputLog::new(Duration::from_secs(10));
        let warn = || tracing::warn!(target: "str0m", "bad input");
        log.feed(warn);
        let now = Instant::now();
        log.report(now);
        assert_eq!(log.held.count.load(Ordering::Relaxed), 0);
        log.feed(warn);
        log.report(now + Duration::from_secs(1));
        assert_eq!(
            log.held.count.load(Ordering::Relaxed),
            1,
            "held until the period is over"
        );
        log.report(now + Duration::from_secs(10));
        assert_eq!(log.held.count.load(Ordering::Relaxed), 0);
    }
}
