//! Playing streams. Functions validate and return at once; the outcome arrives through `player_state_update`, and
//! decoded media through `custom_video_render_remote_frame` and `player_audio_data`. Thread-safe and callable from
//! inside callbacks.

use std::ffi::{c_char, c_int};

use zego_protocol::error;

use crate::config::{PlayerConfig, StreamResourceMode};
use crate::ffi::handle::{self, zego_engine};
use crate::ffi::input::{self, ffi_code};
use crate::ffi::types::zego_player_config;

/// Plays `stream_id` from the room the engine is logged in to. `config` may be NULL for the defaults (the
/// real-time path). Progress: `player_state_update` (PLAY_REQUESTING, then PLAYING; a stream that is not published
/// yet reports PLAY_REQUESTING with 1004002 and plays as soon as it is). Playing a stream already being played
/// changes nothing.
///
/// Returns 0, or: 1000001 bad handle; 1000015/1000016/1000014 stream_id NULL or empty / bad characters / longer
/// than 256 bytes; 1000008 an unknown resource mode; 1004072 a resource mode with no path on this server (the CDN
/// modes); 1000002 not logged in.
#[no_mangle]
pub extern "C" fn zego_start_playing_stream(
    engine: zego_engine,
    stream_id: *const c_char,
    config: *const zego_player_config,
) -> c_int {
    ffi_code!("zego_start_playing_stream", {
        handle::with_engine(engine, |engine| {
            let stream_id = unsafe { input::stream_id(stream_id) }?;
            let config = match unsafe { input::optional_reference(config) } {
                None => PlayerConfig::default(),
                Some(config) => PlayerConfig {
                    resource_mode: StreamResourceMode::from_value(config.resource_mode)?,
                },
            };
            config.validate()?;
            engine.start_playing(stream_id, config)
        })
    })
}

/// Stops playing `stream_id`.
///
/// Returns 0, or: 1000001 bad handle; 1000014..1000016 bad stream_id; 1004011 that stream is not being played.
#[no_mangle]
pub extern "C" fn zego_stop_playing_stream(engine: zego_engine, stream_id: *const c_char) -> c_int {
    ffi_code!("zego_stop_playing_stream", {
        handle::with_engine(engine, |engine| {
            engine.stop_playing(unsafe { input::stream_id(stream_id) }?)
        })
    })
}

/// Sets the playback volume of `stream_id`: 0..=200, 100 = as received (applies to `player_audio_data` too).
///
/// Returns 0, or: 1000001 bad handle; 1000014..1000016 bad stream_id; 1000008 volume out of range; 1004011 that
/// stream is not being played.
#[no_mangle]
pub extern "C" fn zego_set_play_volume(
    engine: zego_engine,
    stream_id: *const c_char,
    volume: c_int,
) -> c_int {
    ffi_code!("zego_set_play_volume", {
        handle::with_engine(engine, |engine| {
            let stream_id = unsafe { input::stream_id(stream_id) }?;
            let volume = u32::try_from(volume)
                .ok()
                .filter(|v| *v <= 200)
                .ok_or(error::COMMON_INVALID_PARAMETER)?;
            engine.set_play_volume(stream_id, volume)
        })
    })
}

/// Stops (`mute` true) or resumes receiving the audio of `stream_id`.
///
/// Returns 0, or: 1000001 bad handle; 1000014..1000016 bad stream_id; 1004011 that stream is not being played.
#[no_mangle]
pub extern "C" fn zego_mute_play_stream_audio(
    engine: zego_engine,
    stream_id: *const c_char,
    mute: bool,
) -> c_int {
    ffi_code!("zego_mute_play_stream_audio", {
        handle::with_engine(engine, |engine| {
            engine.mute_play_stream_audio(unsafe { input::stream_id(stream_id) }?, mute)
        })
    })
}

/// Stops (`mute` true) or resumes receiving the video of `stream_id`.
///
/// Returns 0, or: 1000001 bad handle; 1000014..1000016 bad stream_id; 1004011 that stream is not being played.
#[no_mangle]
pub extern "C" fn zego_mute_play_stream_video(
    engine: zego_engine,
    stream_id: *const c_char,
    mute: bool,
) -> c_int {
    ffi_code!("zego_mute_play_stream_video", {
        handle::with_engine(engine, |engine| {
            engine.mute_play_stream_video(unsafe { input::stream_id(stream_id) }?, mute)
        })
    })
}
