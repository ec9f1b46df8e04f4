//! The table behind `zego_engine` handles. A handle is an integer (slot index + generation), never a pointer:
//! garbage, stale and destroyed handles are looked up, fail to match, and get 1000001 without anything being
//! dereferenced. Destroy invalidates the handle before tearing the engine down, so calls racing with destroy fail
//! cleanly instead of touching a half-destroyed engine.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use zego_protocol::error::{self, ErrorCode};

use crate::engine::Engine;
use crate::ffi::delivery::CallbackRegistry;

/// An engine handle. 0 is never a valid handle.
pub type zego_engine = u64;

/// What a live handle refers to.
pub(crate) struct EngineEntry {
    /// `None` once destroy has taken the engine. Calls hold a read lock only for the duration of one call (they
    /// never wait on the network), so destroy's write lock waits at most for calls already running.
    engine: RwLock<Option<Engine>>,
    pub(crate) callbacks: Arc<CallbackRegistry>,
}

struct Slot {
    generation: u32,
    entry: Option<Arc<EngineEntry>>,
}

struct HandleTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static TABLE: Mutex<HandleTable> = Mutex::new(HandleTable {
    slots: Vec::new(),
    free: Vec::new(),
});

fn encode(index: u32, generation: u32) -> zego_engine {
    (u64::from(generation) << 32) | (u64::from(index) + 1)
}

/// Slot index and generation of a handle; `None` for values no handle ever has.
fn decode(handle: zego_engine) -> Option<(u32, u32)> {
    let index = (handle & 0xffff_ffff).checked_sub(1)?;
    Some((index as u32, (handle >> 32) as u32))
}

/// Registers a new engine and returns its handle.
pub(crate) fn insert(engine: Engine, callbacks: Arc<CallbackRegistry>) -> zego_engine {
    let entry = Arc::new(EngineEntry {
        engine: RwLock::new(Some(engine)),
        callbacks,
    });
    let mut table = TABLE.lock();
    let index = match table.free.pop() {
        Some(index) => index,
        None => {
            table.slots.push(Slot {
                generation: 1,
                entry: None,
            });
            (table.slots.len() - 1) as u32
        }
    };
    let slot = &mut table.slots[index as usize];
    slot.entry = Some(entry);
    encode(index, slot.generation)
}

/// The entry of a live handle, or 1000001.
pub(crate) fn get(handle: zego_engine) -> Result<Arc<EngineEntry>, ErrorCode> {
    let (index, generation) = decode(handle).ok_or(error::COMMON_ENGINE_NOT_CREATED)?;
    let table = TABLE.lock();
    match table.slots.get(index as usize) {
        Some(Slot {
            generation: g,
            entry: Some(entry),
        }) if *g == generation => Ok(entry.clone()),
        _ => Err(error::COMMON_ENGINE_NOT_CREATED),
    }
}

/// Invalidates the handle and hands back its engine for teardown; 1000001 when the handle is not live.
pub(crate) fn remove(handle: zego_engine) -> Result<(Engine, Arc<CallbackRegistry>), ErrorCode> {
    let (index, generation) = decode(handle).ok_or(error::COMMON_ENGINE_NOT_CREATED)?;
    let entry = {
        let mut table = TABLE.lock();
        let slot = match table.slots.get_mut(index as usize) {
            Some(slot) if slot.generation == generation && slot.entry.is_some() => slot,
            _ => return Err(error::COMMON_ENGINE_NOT_CREATED),
        };
        let entry = slot.entry.take();
        // Generation 0 is skipped so that handle values stay non-zero-generation after wrapping.
        slot.generation = slot.generation.checked_add(1).unwrap_or(1);
        table.free.push(index);
        entry
    };
    let entry = entry.ok_or(error::COMMON_ENGINE_NOT_CREATED)?;
    // Waits for calls that looked the handle up before it was invalidated; later ones already fail.
    let engine = entry
        .engine
        .write()
        .take()
        .ok_or(error::COMMON_ENGINE_NOT_CREATED)?;
    Ok((engine, entry.callbacks.clone()))
}

/// Runs `f` on the engine of a live handle. The engine's read lock is recursive, so a log callback that calls the
/// API on the thread already inside a call does not deadlock.
pub(crate) fn with_engine<T>(
    handle: zego_engine,
    f: impl FnOnce(&Engine) -> Result<T, ErrorCode>,
) -> Result<T, ErrorCode> {
    let entry = get(handle)?;
    let guard = entry.engine.read_recursive();
    let engine = guard.as_ref().ok_or(error::COMMON_ENGINE_NOT_CREATED)?;
    f(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_zero_is_never_valid() {
        assert_eq!(decode(encode(0, 1)), Some((0, 1)));
        assert_eq!(decode(encode(41, 7)), Some((41, 7)));
        assert_ne!(encode(0, 1), 0);
        assert_eq!(decode(0), None);
        assert_eq!(decode(0xdead_beef_0000_0000), None);
    }

    #[test]
    fn unknown_handles_are_rejected_without_lookup_side_effects() {
        for handle in [
            0,
            1,
            42,
            u64::MAX,
            0x0000_0001_ffff_ffff,
            encode(1_000_000, 1),
        ] {
            assert_eq!(
                get(handle).err(),
                Some(error::COMMON_ENGINE_NOT_CREATED),
                "{handle:#x}"
            );
            assert_eq!(
                remove(handle).err(),
                Some(error::COMMON_ENGINE_NOT_CREATED),
                "{handle:#x}"
            );
        }
    }
}
