//! Destroying an engine from anywhere: an app thread, a callback (on the callback thread), or a thread of a
//! tokio runtime.
//!
//! The work (logout, closing transports, joining media threads, shutting the runtime down) runs on a dedicated
//! thread, because blocking on the runtime is not allowed from inside any runtime. The caller waits for it,
//! except on one of the engine's own runtime threads, which the shutdown would otherwise wait on. The callback
//! thread is stopped last, by the caller: it is not joined when the caller is the callback thread itself.

use std::sync::Arc;
use std::time::Duration;

use super::core::Core;
use super::{Engine, RUNTIME_THREAD_NAME};

/// Logout waits this long for the server's reply (and the session task to end).
const LOGOUT_WAIT: Duration = Duration::from_millis(1200);
/// Publish and play tasks get this long to close their transports and players.
const TASKS_WAIT: Duration = Duration::from_secs(3);
/// Tasks still running after the above are dropped after this.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

pub(super) fn run(engine: &mut Engine) {
    let Some(runtime) = engine.runtime.take() else {
        return;
    };
    let callback = engine.callback.take();
    let core = engine.core.clone();
    let on_own_runtime = std::thread::current().name() == Some(RUNTIME_THREAD_NAME);
    // On a runtime thread the caller does not wait, so the teardown thread stops the callback thread too.
    let (callback_here, callback_there) = if on_own_runtime {
        (None, callback)
    } else {
        (callback, None)
    };
    let work = move || {
        stop(&core, runtime);
        if let Some(mut callback) = callback_there {
            callback.stop();
        }
    };
    match std::thread::Builder::new()
        .name("zego-teardown".into())
        .spawn(work)
    {
        Ok(thread) => {
            if !on_own_runtime {
                let _ = thread.join();
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start the teardown thread; the engine leaks")
        }
    }
    if let Some(mut callback) = callback_here {
        callback.stop();
    }
    tracing::info!("engine destroyed");
}

/// Everything but the callback thread, on a thread that is not a runtime thread.
fn stop(core: &Arc<Core>, runtime: tokio::runtime::Runtime) {
    let (room, tasks, slots) = {
        let mut state = core.state.lock();
        let room = state.room.take();
        for entry in state.publishes.drain().map(|(_, e)| e) {
            entry.cancel.cancel();
        }
        for entry in state.plays.drain().map(|(_, e)| e) {
            entry.cancel.cancel();
        }
        state.previews.clear();
        let slots: Vec<_> = state.publishers.drain().map(|(_, s)| s).collect();
        (room, std::mem::take(&mut state.tasks), slots)
    };
    runtime.block_on(async {
        if let Some(room) = &room {
            room.logout_quietly();
        }
        let tasks = futures_util::future::join_all(tasks);
        if tokio::time::timeout(TASKS_WAIT, tasks).await.is_err() {
            tracing::warn!("publish/play tasks did not finish in time");
        }
        if let Some(room) = &room {
            room.finished(LOGOUT_WAIT).await;
        }
    });
    for slot in slots {
        slot.publisher.shutdown();
    }
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
}
