//! `zego_register_<name>_callback`: one per callback type. Each stores a function pointer and a `user_context`
//! on one engine; NULL unregisters. A registration replaces the previous one of the same type and applies to events
//! delivered after it returns. Thread-safe, and callable from inside callbacks.
//!
//! Returns 0, or 1000001 when the handle is not a live engine.

use std::ffi::{c_int, c_void};

use crate::ffi::callbacks::*;
use crate::ffi::delivery::{CallbackTable, Slot, UserContext};
use crate::ffi::handle::{self, zego_engine};
use crate::ffi::input::{self, ffi_code};

/// Stores `callback` and `user_context` in the slot `pick` selects.
fn register<F>(
    engine: zego_engine,
    pick: impl FnOnce(&mut CallbackTable) -> &mut Slot<F>,
    callback: F,
    user_context: *mut c_void,
) -> input::Result<()> {
    let entry = handle::get(engine)?;
    entry.callbacks.set(
        pick,
        Slot {
            callback,
            context: UserContext(user_context),
        },
    );
    Ok(())
}

/// Registers a `zego_func_debug_error` for an API error the engine wants the app to notice.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_debug_error_callback(
    engine: zego_engine,
    callback: zego_func_debug_error,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_debug_error_callback",
        register(engine, |t| &mut t.debug_error, callback, user_context)
    )
}

/// Registers a `zego_func_engine_state_update` for engine state changes.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_engine_state_update_callback(
    engine: zego_engine,
    callback: zego_func_engine_state_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_engine_state_update_callback",
        register(
            engine,
            |t| &mut t.engine_state_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_state_update` for room connection state changes.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_state_update_callback(
    engine: zego_engine,
    callback: zego_func_room_state_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_state_update_callback",
        register(engine, |t| &mut t.room_state_update, callback, user_context)
    )
}

/// Registers a `zego_func_room_state_changed` for room state changes with their reasons.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_state_changed_callback(
    engine: zego_engine,
    callback: zego_func_room_state_changed,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_state_changed_callback",
        register(
            engine,
            |t| &mut t.room_state_changed,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_user_update` for users joining and leaving the room.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_user_update_callback(
    engine: zego_engine,
    callback: zego_func_room_user_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_user_update_callback",
        register(engine, |t| &mut t.room_user_update, callback, user_context)
    )
}

/// Registers a `zego_func_room_online_user_count_update` for the room's online user count (every 30 s).
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_online_user_count_update_callback(
    engine: zego_engine,
    callback: zego_func_room_online_user_count_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_online_user_count_update_callback",
        register(
            engine,
            |t| &mut t.room_online_user_count_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_stream_update` for streams added to and deleted from the room.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_stream_update_callback(
    engine: zego_engine,
    callback: zego_func_room_stream_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_stream_update_callback",
        register(
            engine,
            |t| &mut t.room_stream_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_stream_extra_info_update` for stream extra info changes in the room.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_stream_extra_info_update_callback(
    engine: zego_engine,
    callback: zego_func_room_stream_extra_info_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_stream_extra_info_update_callback",
        register(
            engine,
            |t| &mut t.room_stream_extra_info_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_extra_info_update` for room extra info changes.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_extra_info_update_callback(
    engine: zego_engine,
    callback: zego_func_room_extra_info_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_extra_info_update_callback",
        register(
            engine,
            |t| &mut t.room_extra_info_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_token_will_expire` for the login token nearing expiry.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_token_will_expire_callback(
    engine: zego_engine,
    callback: zego_func_room_token_will_expire,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_token_will_expire_callback",
        register(
            engine,
            |t| &mut t.room_token_will_expire,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_room_set_room_extra_info_result` for results of `zego_set_room_extra_info`.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_room_set_room_extra_info_result_callback(
    engine: zego_engine,
    callback: zego_func_room_set_room_extra_info_result,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_room_set_room_extra_info_result_callback",
        register(
            engine,
            |t| &mut t.room_set_room_extra_info_result,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_publisher_state_update` for publish state changes.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_publisher_state_update_callback(
    engine: zego_engine,
    callback: zego_func_publisher_state_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_publisher_state_update_callback",
        register(
            engine,
            |t| &mut t.publisher_state_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_publisher_quality_update` for publishing quality reports.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_publisher_quality_update_callback(
    engine: zego_engine,
    callback: zego_func_publisher_quality_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_publisher_quality_update_callback",
        register(
            engine,
            |t| &mut t.publisher_quality_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_publisher_captured_video_first_frame` for the first captured video frame of a channel.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_publisher_captured_video_first_frame_callback(
    engine: zego_engine,
    callback: zego_func_publisher_captured_video_first_frame,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_publisher_captured_video_first_frame_callback",
        register(
            engine,
            |t| &mut t.publisher_captured_video_first_frame,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_publisher_update_stream_extra_info_result` for results of `zego_set_stream_extra_info`.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_publisher_update_stream_extra_info_result_callback(
    engine: zego_engine,
    callback: zego_func_publisher_update_stream_extra_info_result,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_publisher_update_stream_extra_info_result_callback",
        register(
            engine,
            |t| &mut t.publisher_update_stream_extra_info_result,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_state_update` for play state changes.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_state_update_callback(
    engine: zego_engine,
    callback: zego_func_player_state_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_state_update_callback",
        register(
            engine,
            |t| &mut t.player_state_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_quality_update` for playing quality reports.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_quality_update_callback(
    engine: zego_engine,
    callback: zego_func_player_quality_update,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_quality_update_callback",
        register(
            engine,
            |t| &mut t.player_quality_update,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_recv_video_first_frame` for the first video received of a played stream.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_recv_video_first_frame_callback(
    engine: zego_engine,
    callback: zego_func_player_recv_video_first_frame,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_recv_video_first_frame_callback",
        register(
            engine,
            |t| &mut t.player_recv_video_first_frame,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_recv_audio_first_frame` for the first audio received of a played stream.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_recv_audio_first_frame_callback(
    engine: zego_engine,
    callback: zego_func_player_recv_audio_first_frame,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_recv_audio_first_frame_callback",
        register(
            engine,
            |t| &mut t.player_recv_audio_first_frame,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_recv_sei` for the SEI of played streams. NULL unregisters. The callback runs on
/// this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_recv_sei_callback(
    engine: zego_engine,
    callback: zego_func_player_recv_sei,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_recv_sei_callback",
        register(engine, |t| &mut t.player_recv_sei, callback, user_context)
    )
}

/// Registers a `zego_func_player_render_video_first_frame` for the first video frame rendered of a played stream.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_render_video_first_frame_callback(
    engine: zego_engine,
    callback: zego_func_player_render_video_first_frame,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_render_video_first_frame_callback",
        register(
            engine,
            |t| &mut t.player_render_video_first_frame,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_video_size_changed` for resolution changes of played streams.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_video_size_changed_callback(
    engine: zego_engine,
    callback: zego_func_player_video_size_changed,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_video_size_changed_callback",
        register(
            engine,
            |t| &mut t.player_video_size_changed,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_im_recv_broadcast_message` for broadcast messages received.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_im_recv_broadcast_message_callback(
    engine: zego_engine,
    callback: zego_func_im_recv_broadcast_message,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_im_recv_broadcast_message_callback",
        register(
            engine,
            |t| &mut t.im_recv_broadcast_message,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_im_recv_custom_command` for custom commands received.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_im_recv_custom_command_callback(
    engine: zego_engine,
    callback: zego_func_im_recv_custom_command,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_im_recv_custom_command_callback",
        register(
            engine,
            |t| &mut t.im_recv_custom_command,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_im_send_broadcast_message_result` for results of `zego_send_broadcast_message`.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_im_send_broadcast_message_result_callback(
    engine: zego_engine,
    callback: zego_func_im_send_broadcast_message_result,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_im_send_broadcast_message_result_callback",
        register(
            engine,
            |t| &mut t.im_send_broadcast_message_result,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_im_send_custom_command_result` for results of `zego_send_custom_command`.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_im_send_custom_command_result_callback(
    engine: zego_engine,
    callback: zego_func_im_send_custom_command_result,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_im_send_custom_command_result_callback",
        register(
            engine,
            |t| &mut t.im_send_custom_command_result,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_custom_video_capture_start` for a custom video source starting to want frames.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_custom_video_capture_start_callback(
    engine: zego_engine,
    callback: zego_func_custom_video_capture_start,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_custom_video_capture_start_callback",
        register(
            engine,
            |t| &mut t.custom_video_capture_start,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_custom_video_capture_stop` for a custom video source no longer wanting frames.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_custom_video_capture_stop_callback(
    engine: zego_engine,
    callback: zego_func_custom_video_capture_stop,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_custom_video_capture_stop_callback",
        register(
            engine,
            |t| &mut t.custom_video_capture_stop,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_custom_video_render_remote_frame` for decoded frames of played streams.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_custom_video_render_remote_frame_callback(
    engine: zego_engine,
    callback: zego_func_custom_video_render_remote_frame,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_custom_video_render_remote_frame_callback",
        register(
            engine,
            |t| &mut t.custom_video_render_remote_frame,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_custom_video_render_captured_frame` for captured frames (preview).
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_custom_video_render_captured_frame_callback(
    engine: zego_engine,
    callback: zego_func_custom_video_render_captured_frame,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_custom_video_render_captured_frame_callback",
        register(
            engine,
            |t| &mut t.custom_video_render_captured_frame,
            callback,
            user_context
        )
    )
}

/// Registers a `zego_func_player_audio_data` for decoded PCM audio of played streams.
/// NULL unregisters. The callback runs on this engine's callback thread.
#[no_mangle]
pub extern "C" fn zego_register_player_audio_data_callback(
    engine: zego_engine,
    callback: zego_func_player_audio_data,
    user_context: *mut c_void,
) -> c_int {
    ffi_code!(
        "zego_register_player_audio_data_callback",
        register(engine, |t| &mut t.player_audio_data, callback, user_context)
    )
}
