//! A cancellation flag that tasks can await: set once, seen by every clone.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub(crate) struct Cancel(Arc<watch::Sender<bool>>);

impl Default for Cancel {
    fn default() -> Self {
        Cancel(Arc::new(watch::channel(false).0))
    }
}

impl Cancel {
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once [`Cancel::cancel`] has been called (at once if it already was).
    pub async fn cancelled(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = rx.wait_for(|cancelled| *cancelled).await;
    }
}
