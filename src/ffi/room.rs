//! Rooms and in-room messaging. Results of the network work arrive through callbacks; these functions validate
//! and return at once (they never wait on the network), and are thread-safe and callable from inside callbacks.

use std::ffi::{c_char, c_int};

use zego_protocol::error;
use zego_protocol::message::User;
use zego_protocol::validate;

use crate::config::RoomConfig;
use crate::ffi::handle::{self, zego_engine};
use crate::ffi::input::{self, ffi_code, Out};
use crate::ffi::types::{zego_room_config, zego_user};

/// Logs in to `room_id` as `user` (the room is created if it does not exist). `config` may be NULL for the
/// defaults (no member limit, no user notifications, log in with the engine's app_sign). Progress and the outcome
/// arrive through `room_state_update` / `room_state_changed`.
///
/// Returns 0, or: 1000001 bad handle; 1002001 already in a room; 1002005/1002006/1002007 user_id NULL or empty /
/// bad characters / too long (`user` NULL counts as a NULL user_id); 1002008/1002009/1002010 the same for
/// user_name; 1002011/1002012/1002013 the same for room_id; 1002075 token longer than 2048 bytes or not UTF-8;
/// 1002067 neither a token nor an app_sign.
#[no_mangle]
pub extern "C" fn zego_login_room(
    engine: zego_engine,
    room_id: *const c_char,
    user: *const zego_user,
    config: *const zego_room_config,
) -> c_int {
    ffi_code!("zego_login_room", {
        handle::with_engine(engine, |engine| {
            let room_id = unsafe { input::room_id(room_id) }?;
            let user = unsafe { input::reference(user, error::ROOM_USER_ID_NULL) }?;
            let user = User {
                user_id: unsafe { input::user_id(user.user_id) }?.to_owned(),
                user_name: unsafe { input::user_name(user.user_name) }?.to_owned(),
            };
            let config = match unsafe { input::optional_reference(config) } {
                None => RoomConfig::default(),
                Some(config) => {
                    let token = unsafe {
                        input::optional_text(config.token, error::ROOM_TOKEN_FORMAT_ERROR)
                    }?
                    .unwrap_or("");
                    validate::token(token)?;
                    RoomConfig {
                        max_member_count: config.max_member_count,
                        is_user_status_notify: config.is_user_status_notify,
                        token: token.to_owned(),
                    }
                }
            };
            engine.login_room(room_id, user, config)
        })
    })
}

/// Logs out of `room_id`, or of every room when `room_id` is NULL, stopping this engine's publishing and playing.
///
/// Returns 0, or: 1000001 bad handle; 1002011..1002013 bad room_id; 1002002 not logged in to that room.
#[no_mangle]
pub extern "C" fn zego_logout_room(engine: zego_engine, room_id: *const c_char) -> c_int {
    ffi_code!("zego_logout_room", {
        handle::with_engine(engine, |engine| {
            let room_id = if room_id.is_null() {
                None
            } else {
                Some(unsafe { input::room_id(room_id) }?)
            };
            engine.logout_room(room_id)
        })
    })
}

/// Replaces the login token of `room_id` before it expires (see `room_token_will_expire`). The server checks it
/// in the background; its refusal (1002074..1002080, 1002082) arrives in `debug_error` with func_name
/// "renew_token".
///
/// Returns 0, or: 1000001 bad handle; 1002011..1002013 bad room_id; 1002075 token NULL, empty, not UTF-8,
/// longer than 2048 bytes or not a Token04 layout; 1002079 not a version 04 token; 1002080 a bad nonce length;
/// 1002002 not logged in to that room.
#[no_mangle]
pub extern "C" fn zego_renew_token(
    engine: zego_engine,
    room_id: *const c_char,
    token: *const c_char,
) -> c_int {
    ffi_code!("zego_renew_token", {
        handle::with_engine(engine, |engine| {
            let room_id = unsafe { input::room_id(room_id) }?;
            let token = unsafe {
                input::text(
                    token,
                    error::ROOM_TOKEN_FORMAT_ERROR,
                    error::ROOM_TOKEN_FORMAT_ERROR,
                )
            }?;
            if token.is_empty() {
                return Err(error::ROOM_TOKEN_FORMAT_ERROR);
            }
            validate::token(token)?;
            engine.renew_token(room_id, token)
        })
    })
}

/// Sets a room extra info entry; the result arrives through `room_set_room_extra_info_result` with the sequence
/// number written to `*out_seq` (which may be NULL).
///
/// Returns 0, or: 1000001 bad handle; 1002011..1002013 bad room_id; 1002083 key NULL, empty or longer than 128
/// bytes; 1002084 value longer than 4096 bytes; 1000008 value NULL, or key/value not UTF-8; 1002002 not logged in
/// to that room.
#[no_mangle]
pub extern "C" fn zego_set_room_extra_info(
    engine: zego_engine,
    room_id: *const c_char,
    key: *const c_char,
    value: *const c_char,
    out_seq: *mut c_int,
) -> c_int {
    ffi_code!("zego_set_room_extra_info", {
        handle::with_engine(engine, |engine| {
            let out_seq = optional_out(out_seq)?;
            let room_id = unsafe { input::room_id(room_id) }?;
            let key = unsafe {
                input::text(
                    key,
                    error::ROOM_EXTRA_INFO_KEY_TOO_LONG,
                    error::COMMON_INVALID_PARAMETER,
                )
            }?;
            let value = unsafe {
                input::text(
                    value,
                    error::COMMON_INVALID_PARAMETER,
                    error::COMMON_INVALID_PARAMETER,
                )
            }?;
            validate::room_extra_info(key, value)?;
            let seq = engine.set_room_extra_info(room_id, key, value)?;
            write_seq(out_seq, seq);
            Ok(())
        })
    })
}

/// Sends a broadcast message to everyone in the room.
/// The result arrives through `im_send_broadcast_message_result` with the sequence number written to `*out_seq`
/// (which may be NULL).
///
/// Returns 0, or: 1000001 bad handle; 1002011..1002013 bad room_id; 1009001 message NULL or empty; 1009002
/// longer than 1024 bytes; 1000008 not UTF-8; 1009005 not logged in to that room.
#[no_mangle]
pub extern "C" fn zego_send_broadcast_message(
    engine: zego_engine,
    room_id: *const c_char,
    message: *const c_char,
    out_seq: *mut c_int,
) -> c_int {
    ffi_code!("zego_send_broadcast_message", {
        handle::with_engine(engine, |engine| {
            let out_seq = optional_out(out_seq)?;
            let room_id = unsafe { input::room_id(room_id) }?;
            let message = unsafe {
                input::text(
                    message,
                    error::IM_CONTENT_NULL,
                    error::COMMON_INVALID_PARAMETER,
                )
            }?;
            validate::broadcast_message(message)?;
            let seq = engine.send_broadcast_message(room_id, message)?;
            write_seq(out_seq, seq);
            Ok(())
        })
    })
}

/// Sends a custom command to the `to_user_count` users listed in `to_user_ids`, or to everyone else in the room
/// when the count is 0 (`to_user_ids` may then be NULL). The result arrives through
/// `im_send_custom_command_result` with the sequence number written to `*out_seq` (which may be NULL).
///
/// Returns 0, or: 1000001 bad handle; 1002011..1002013 bad room_id; 1009001 command NULL or empty; 1009002 longer
/// than 1024 bytes; 1000008 not UTF-8, or `to_user_ids` NULL with a non-zero count; 1002005..1002007 a bad user
/// ID in the list; 1009005 not logged in to that room.
#[no_mangle]
pub extern "C" fn zego_send_custom_command(
    engine: zego_engine,
    room_id: *const c_char,
    command: *const c_char,
    to_user_ids: *const *const c_char,
    to_user_count: usize,
    out_seq: *mut c_int,
) -> c_int {
    ffi_code!("zego_send_custom_command", {
        handle::with_engine(engine, |engine| {
            let out_seq = optional_out(out_seq)?;
            let room_id = unsafe { input::room_id(room_id) }?;
            let command = unsafe {
                input::text(
                    command,
                    error::IM_CONTENT_NULL,
                    error::COMMON_INVALID_PARAMETER,
                )
            }?;
            validate::custom_command(command)?;
            let ids = unsafe {
                input::slice(to_user_ids, to_user_count, error::COMMON_INVALID_PARAMETER)
            }?;
            let to_users = ids
                .iter()
                .map(|&id| unsafe { input::user_id(id) }.map(str::to_owned))
                .collect::<input::Result<Vec<String>>>()?;
            let seq = engine.send_custom_command(room_id, command, &to_users)?;
            write_seq(out_seq, seq);
            Ok(())
        })
    })
}

/// An optional `int *out_seq`.
fn optional_out(ptr: *mut c_int) -> input::Result<Option<Out<c_int>>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        unsafe { Out::new(ptr) }.map(Some)
    }
}

fn write_seq(out: Option<Out<c_int>>, seq: i32) {
    if let Some(out) = out {
        out.write(seq);
    }
}

/// How long a broken connection to the server is retried before the room reports RECONNECT_FAILED with 1002053
/// (the original's `room_retry_time`): at least 1 s, 1200 s (20 minutes) by default. Applies to later logins.
///
/// Returns 0, or: 1000001 bad handle; 1000008 `seconds` is 0.
#[no_mangle]
pub extern "C" fn zego_set_room_retry_time(engine: zego_engine, seconds: u32) -> c_int {
    ffi_code!("zego_set_room_retry_time", {
        handle::with_engine(engine, |engine| {
            engine.set_reconnect_window(std::time::Duration::from_secs(u64::from(seconds)))
        })
    })
}
