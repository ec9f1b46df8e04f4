//! A one-slot mailbox between two threads: the newest item replaces an unread one, so a slow consumer always
//! gets the latest frame instead of a growing backlog.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

pub(crate) struct Mailbox<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

struct Slot<T> {
    item: Option<T>,
    closed: bool,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            slot: Mutex::new(Slot {
                item: None,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Mailbox<T> {
    /// Stores `item`; returns true when it replaced one that was never taken.
    pub fn put(&self, item: T) -> bool {
        let replaced = self.slot.lock().item.replace(item).is_some();
        self.ready.notify_one();
        replaced
    }

    /// Waits up to `timeout` for an item. `None` on timeout or once closed.
    pub fn take(&self, timeout: Duration) -> Option<T> {
        let mut slot = self.slot.lock();
        if slot.item.is_none() && !slot.closed {
            let _ = self.ready.wait_for(&mut slot, timeout);
        }
        if slot.closed {
            return None;
        }
        slot.item.take()
    }

    /// Wakes the consumer for good; later `take`s return `None` until `reopen`.
    pub fn close(&self) {
        let mut slot = self.slot.lock();
        slot.closed = true;
        slot.item = None;
        drop(slot);
        self.ready.notify_all();
    }

    pub fn reopen(&self) {
        let mut slot = self.slot.lock();
        slot.closed = false;
        slot.item = None;
    }

    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.slot.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn the_newest_item_wins() {
        let m = Mailbox::default();
        assert!(!m.put(1));
        assert!(m.put(2));
        assert_eq!(m.take(Duration::ZERO), Some(2));
        assert_eq!(m.take(Duration::from_millis(1)), None);
    }

    #[test]
    fn close_wakes_a_waiting_consumer() {
        let m = Arc::new(Mailbox::<u32>::default());
        let waiter = {
            let m = m.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                (m.take(Duration::from_secs(5)), t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        m.close();
        let (item, waited) = waiter.join().unwrap();
        assert_eq!(item, None);
        assert!(waited < Duration::from_secs(1));
        assert!(m.is_closed());
        m.reopen();
        m.put(3);
        assert_eq!(m.take(Duration::ZERO), Some(3));
    }
}
