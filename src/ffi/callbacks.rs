//! The C callback types, one per event.
//!
//! Every callback runs on the engine's callback thread, one at a time, in the order the events happened, with no
//! SDK lock held: a callback may call any API function of any engine, including `zego_engine_destroy` of its own
//! engine. Strings and arrays passed to a callback are owned by the SDK and valid only during that call; copy what
//! you keep. `user_context` is passed back untouched; the app makes whatever it points to usable from the
//! callback thread.

use std::ffi::{c_char, c_int, c_void};

use crate::ffi::types::{
    zego_audio_frame_param, zego_broadcast_message_info, zego_play_stream_quality,
    zego_publish_stream_quality, zego_room_extra_info, zego_stream, zego_user,
    zego_video_frame_param,
};

/// An API error the engine wants the app to notice (`func_name` is the API that failed, `info` the details).
pub type zego_func_debug_error = Option<
    unsafe extern "C" fn(
        error_code: c_int,
        func_name: *const c_char,
        info: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// The engine started (first preview, publish or play) or stopped (`zego_engine_state`).
pub type zego_func_engine_state_update =
    Option<unsafe extern "C" fn(state: i32, user_context: *mut c_void)>;

/// The room's connection state (`zego_room_state`) changed; `error_code` says why it is not connected, with the
/// codes listed at `zego_func_room_state_changed`.
pub type zego_func_room_state_update = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        state: i32,
        error_code: c_int,
        extended_data: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// The room's state changed, with the reason (`zego_room_state_changed_reason`) and the error code that goes with it.
///
/// login_failed, from the SDK: 1002030 the server cannot be reached; 1002031 no login reply in time; 1002099 an
/// unexpected reply. From the server: 1001004 app_id unknown to it; 1001005 app_sign signature wrong; 1002033
/// authentication failed (a stale or replayed signature, or a token without the login privilege for this room);
/// 1002067 neither a token nor an app_sign; 1002074 token not decryptable with the app's secret; 1002075 token
/// malformed or longer than 2048 bytes; 1002076 token for another app_id; 1002077 token for another user_id;
/// 1002078 token expired; 1002079 token version not 04; 1002080 token nonce of the wrong length; 1002034 room
/// full; 1002071 logins too frequent; 1002005..1002007 bad user_id, 1002008..1002010 bad user_name,
/// 1002011..1002013 bad room_id; 1002072 requests too frequent; 1002090..1002092 a request the server could not
/// read; 1002093 protocol version not supported.
///
/// reconnecting: 1002051. reconnect_failed: 1002053 gave up after the reconnect window, or a login_failed code
/// when the server refused the session on reconnecting. kick_out: 1002050 same user_id logged in elsewhere,
/// 1002055 by the server, 1002056 token expired. logined, reconnected and logout: 0.
pub type zego_func_room_state_changed = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        reason: i32,
        error_code: c_int,
        extended_data: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// Users joined or left (`zego_update_type`). After login, one ADD with everyone present, then increments.
/// Needs `zego_room_config.is_user_status_notify`.
pub type zego_func_room_user_update = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        update_type: i32,
        user_list: *const zego_user,
        user_count: u32,
        user_context: *mut c_void,
    ),
>;

/// The number of users in the room, every 30 s.
pub type zego_func_room_online_user_count_update =
    Option<unsafe extern "C" fn(room_id: *const c_char, count: u32, user_context: *mut c_void)>;

/// Streams were published or stopped in the room (`zego_update_type`). After login, one ADD with every stream.
/// A DELETE carries `{"stream_delete_reason":[{"stream_id":..,"code":N}]}` in `extended_data` (1 stopped,
/// 2 heartbeat timeout, 3 repeated login, 4 kicked out, 5 disconnected, 6 removed by server).
pub type zego_func_room_stream_update = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        update_type: i32,
        stream_list: *const zego_stream,
        stream_count: u32,
        extended_data: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// Streams in the room changed their extra info.
pub type zego_func_room_stream_extra_info_update = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        stream_list: *const zego_stream,
        stream_count: u32,
        user_context: *mut c_void,
    ),
>;

/// Room extra info entries changed.
pub type zego_func_room_extra_info_update = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        room_extra_info_list: *const zego_room_extra_info,
        room_extra_info_count: u32,
        user_context: *mut c_void,
    ),
>;

/// The login token expires in `remain_time_in_second` seconds (30 s before); renew it with `zego_renew_token`.
pub type zego_func_room_token_will_expire = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        remain_time_in_second: u32,
        user_context: *mut c_void,
    ),
>;

/// Result of `zego_set_room_extra_info`; `seq` is the value that call returned.
pub type zego_func_room_set_room_extra_info_result = Option<
    unsafe extern "C" fn(
        error_code: c_int,
        room_id: *const c_char,
        key: *const c_char,
        seq: c_int,
        user_context: *mut c_void,
    ),
>;

/// A published stream's state (`zego_publisher_state`) changed; `error_code` says why it is not publishing
/// (e.g. 1003028 stream_id already published, 1003072 auth failed).
pub type zego_func_publisher_state_update = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        state: i32,
        error_code: c_int,
        extended_data: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// Publishing quality, every 3 s while publishing.
pub type zego_func_publisher_quality_update = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        quality: *const zego_publish_stream_quality,
        user_context: *mut c_void,
    ),
>;

/// The first video frame of a publish channel (`zego_publish_channel`) was captured.
pub type zego_func_publisher_captured_video_first_frame =
    Option<unsafe extern "C" fn(channel: i32, user_context: *mut c_void)>;

/// Result of `zego_set_stream_extra_info`; `seq` is the value that call returned.
pub type zego_func_publisher_update_stream_extra_info_result =
    Option<unsafe extern "C" fn(error_code: c_int, seq: c_int, user_context: *mut c_void)>;

/// A played stream's state (`zego_player_state`) changed; `error_code` says why it is not playing
/// (e.g. 1004002 with PLAY_REQUESTING: the stream does not exist yet and plays once published).
pub type zego_func_player_state_update = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        state: i32,
        error_code: c_int,
        extended_data: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// Playing quality, every 3 s while playing.
pub type zego_func_player_quality_update = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        quality: *const zego_play_stream_quality,
        user_context: *mut c_void,
    ),
>;

/// The first video packet of a played stream arrived.
pub type zego_func_player_recv_video_first_frame =
    Option<unsafe extern "C" fn(stream_id: *const c_char, user_context: *mut c_void)>;

/// The first audio packet of a played stream arrived.
pub type zego_func_player_recv_audio_first_frame =
    Option<unsafe extern "C" fn(stream_id: *const c_char, user_context: *mut c_void)>;

/// The first video frame of a played stream was decoded and handed to rendering.
pub type zego_func_player_render_video_first_frame =
    Option<unsafe extern "C" fn(stream_id: *const c_char, user_context: *mut c_void)>;

/// App data the publisher sent with `zego_send_sei` (`data_length` bytes, valid during the call), delivered just
/// before the render callback of the frame it rode on: ZEGO-defined messages as sent, user-unregistered ones with
/// their 16-byte UUID first.
pub type zego_func_player_recv_sei = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        data: *const u8,
        data_length: u32,
        user_context: *mut c_void,
    ),
>;

/// A played stream's video resolution changed (also reported once for the first frame).
pub type zego_func_player_video_size_changed = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        width: u32,
        height: u32,
        user_context: *mut c_void,
    ),
>;

/// Broadcast messages arrived in a room.
pub type zego_func_im_recv_broadcast_message = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        message_list: *const zego_broadcast_message_info,
        message_count: u32,
        user_context: *mut c_void,
    ),
>;

/// A custom command arrived from `from_user`.
pub type zego_func_im_recv_custom_command = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        from_user: *const zego_user,
        command: *const c_char,
        user_context: *mut c_void,
    ),
>;

/// Result of `zego_send_broadcast_message`; `seq` is the value that call returned.
pub type zego_func_im_send_broadcast_message_result = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        message_id: u64,
        error_code: c_int,
        seq: c_int,
        user_context: *mut c_void,
    ),
>;

/// Result of `zego_send_custom_command`; `seq` is the value that call returned.
pub type zego_func_im_send_custom_command_result = Option<
    unsafe extern "C" fn(
        room_id: *const c_char,
        error_code: c_int,
        seq: c_int,
        user_context: *mut c_void,
    ),
>;

/// A channel with a custom video source starts wanting frames (`zego_send_custom_video_capture_frame`).
pub type zego_func_custom_video_capture_start =
    Option<unsafe extern "C" fn(channel: i32, user_context: *mut c_void)>;

/// A channel with a custom video source no longer wants frames.
pub type zego_func_custom_video_capture_stop =
    Option<unsafe extern "C" fn(channel: i32, user_context: *mut c_void)>;

/// A decoded frame of a played stream. `data[i]` / `data_length[i]` are the planes (4 entries; unused ones NULL
/// and 0) in the format set by `zego_set_remote_render_format` (I420 by default); `param` gives the format, size,
/// strides, capture time and frame number. Frames are dropped, never queued without bound, when the callback is
/// slower than the stream.
pub type zego_func_custom_video_render_remote_frame = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        data: *const *const u8,
        data_length: *const u32,
        param: *const zego_video_frame_param,
        user_context: *mut c_void,
    ),
>;

/// A captured frame of a publish channel (`zego_publish_channel`) while previewing or publishing, as
/// `zego_func_custom_video_render_remote_frame`, in the format set by `zego_set_captured_render_format`.
pub type zego_func_custom_video_render_captured_frame = Option<
    unsafe extern "C" fn(
        data: *const *const u8,
        data_length: *const u32,
        param: *const zego_video_frame_param,
        channel: i32,
        user_context: *mut c_void,
    ),
>;

/// Decoded audio of a played stream: `sample_count` interleaved signed 16-bit samples (all channels).
pub type zego_func_player_audio_data = Option<
    unsafe extern "C" fn(
        stream_id: *const c_char,
        samples: *const i16,
        sample_count: u32,
        param: *const zego_audio_frame_param,
        user_context: *mut c_void,
    ),
>;
