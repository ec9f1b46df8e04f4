//! One published stream: who publishes it, who plays it, and its keyframe requests.

use std::time::Duration;

use crate::SessionId;
use crate::keyframe::KeyframeThrottle;

#[derive(Debug)]
pub(crate) struct Route {
    pub publisher: Option<SessionId>,
    pub players: Vec<SessionId>,
    pub keyframes: KeyframeThrottle,
}

impl Route {
    pub fn new(keyframe_interval: Duration) -> Self {
        Route {
            publisher: None,
            players: Vec::new(),
            keyframes: KeyframeThrottle::new(keyframe_interval),
        }
    }

    pub fn remove_player(&mut self, id: SessionId) {
        self.players.retain(|&p| p != id);
    }

    /// A route without publisher and players is forgotten.
    pub fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.players.is_empty()
    }
}
