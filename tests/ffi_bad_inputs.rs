//! Bad input through the C ABI gets the reference's error code: NULL pointers, non-UTF-8, too long, bad
//! characters, out-of-range enums, wrong state, and invalid, stale or garbage handles. None of it needs a server:
//! the engines point at a loopback port nobody listens on and never log in successfully.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::{null, null_mut};

use zego_express::error::{self, ErrorCode};
use zego_express::ffi::*;

const APP_ID: u32 = 1_234_567_890;
const APP_SIGN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// Discard port on loopback: logins fail to connect, which these tests never wait for.
const SERVER: &str = "ws://127.0.0.1:9/ws";

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// A C string with bytes that are not UTF-8.
fn not_utf8() -> CString {
    CString::new(vec![b'a', 0xff, 0xfe]).unwrap()
}

fn create_with(
    app_id: u32,
    app_sign: *const c_char,
    scenario: i32,
    server: *const c_char,
) -> (c_int, zego_engine) {
    let profile = zego_engine_profile {
        app_id,
        app_sign,
        scenario,
        server,
    };
    let mut handle: zego_engine = 12345;
    let code = zego_engine_create(&profile, &mut handle);
    (code, handle)
}

fn create() -> zego_engine {
    let (sign, server) = (c(APP_SIGN), c(SERVER));
    let (code, handle) = create_with(
        APP_ID,
        sign.as_ptr(),
        zego_scenario::ZEGO_SCENARIO_DEFAULT as i32,
        server.as_ptr(),
    );
    assert_eq!(code, 0, "{}", message(code));
    assert_ne!(handle, 0);
    handle
}

fn message(code: c_int) -> String {
    unsafe { CStr::from_ptr(zego_get_error_message(code)) }
        .to_string_lossy()
        .into_owned()
}

/// Checks each case and reports every mismatch at once.
fn check(cases: Vec<(&str, c_int, ErrorCode)>) {
    let failures: Vec<String> = cases
        .into_iter()
        .filter(|(_, got, want)| *got != *want as c_int)
        .map(|(what, got, want)| format!("{what}: got {got} ({}), want {want}", message(got)))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

macro_rules! case {
    ($call:expr, $want:expr) => {
        (stringify!($call), $call, $want)
    };
}

#[test]
fn engine_profiles_are_validated() {
    let (sign, server) = (c(APP_SIGN), c(SERVER));
    let short_sign = c(&APP_SIGN[..63]);
    let non_hex_sign = c(&"zz".repeat(32));
    let bad_utf8 = not_utf8();
    let not_a_url = c("http://127.0.0.1:9/ws");
    let general = zego_scenario::ZEGO_SCENARIO_GENERAL as i32;
    let mut handle: zego_engine = 0;

    check(vec![
        case!(
            zego_engine_create(null(), &mut handle),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_engine_create(
                &zego_engine_profile {
                    app_id: APP_ID,
                    app_sign: sign.as_ptr(),
                    scenario: 0,
                    server: server.as_ptr()
                },
                null_mut()
            ),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            create_with(0, sign.as_ptr(), general, server.as_ptr()).0,
            error::ENGINE_APP_ID_INCORRECT
        ),
        case!(
            create_with(APP_ID, short_sign.as_ptr(), general, server.as_ptr()).0,
            error::ENGINE_APP_SIGN_INCORRECT
        ),
        case!(
            create_with(APP_ID, non_hex_sign.as_ptr(), general, server.as_ptr()).0,
            error::ENGINE_APP_SIGN_INCORRECT
        ),
        case!(
            create_with(APP_ID, bad_utf8.as_ptr(), general, server.as_ptr()).0,
            error::ENGINE_APP_SIGN_INCORRECT
        ),
        case!(
            create_with(APP_ID, sign.as_ptr(), 11, server.as_ptr()).0,
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            create_with(APP_ID, sign.as_ptr(), -1, server.as_ptr()).0,
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            create_with(APP_ID, sign.as_ptr(), general, null()).0,
            error::ENGINE_SERVER_ADDRESS_INVALID
        ),
        case!(
            create_with(APP_ID, sign.as_ptr(), general, bad_utf8.as_ptr()).0,
            error::ENGINE_SERVER_ADDRESS_INVALID
        ),
        case!(
            create_with(APP_ID, sign.as_ptr(), general, not_a_url.as_ptr()).0,
            error::ENGINE_SERVER_ADDRESS_INVALID
        ),
    ]);
    // A failed create leaves 0 in the out-parameter, never a half-made handle.
    assert_eq!(create_with(0, sign.as_ptr(), general, server.as_ptr()).1, 0);
}

#[test]
fn an_engine_without_app_sign_is_allowed_for_token_logins() {
    let server = c(SERVER);
    let empty = c("");
    for sign in [null(), empty.as_ptr()] {
        let (code, handle) = create_with(APP_ID, sign, 0, server.as_ptr());
        assert_eq!(code, 0, "{}", message(code));
        assert_eq!(zego_engine_destroy(handle), 0);
    }
}

#[test]
fn room_arguments_are_validated() {
    let h = create();
    let (room, user_id, user_name) = (c("room-1"), c("user-1"), c("User One"));
    let user = zego_user {
        user_id: user_id.as_ptr(),
        user_name: user_name.as_ptr(),
    };
    let (empty, spaced, bad_utf8) = (c(""), c("a b"), not_utf8());
    let (long_room, long_user, long_name) =
        (c(&"r".repeat(129)), c(&"u".repeat(65)), c(&"n".repeat(257)));
    let control_name = c("a\nb");
    let user_with = |id: &CString, name: &CString| zego_user {
        user_id: id.as_ptr(),
        user_name: name.as_ptr(),
    };
    let null_id = zego_user {
        user_id: null(),
        user_name: user_name.as_ptr(),
    };
    let null_name = zego_user {
        user_id: user_id.as_ptr(),
        user_name: null(),
    };
    let long_token = c(&"t".repeat(2049));
    let token_config = zego_room_config {
        max_member_count: 0,
        is_user_status_notify: true,
        token: long_token.as_ptr(),
    };
    let utf8_token_config = zego_room_config {
        max_member_count: 0,
        is_user_status_notify: true,
        token: bad_utf8.as_ptr(),
    };

    check(vec![
        case!(
            zego_login_room(h, null(), &user, null()),
            error::ROOM_ROOM_ID_NULL
        ),
        case!(
            zego_login_room(h, empty.as_ptr(), &user, null()),
            error::ROOM_ROOM_ID_NULL
        ),
        case!(
            zego_login_room(h, spaced.as_ptr(), &user, null()),
            error::ROOM_ROOM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_login_room(h, bad_utf8.as_ptr(), &user, null()),
            error::ROOM_ROOM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_login_room(h, long_room.as_ptr(), &user, null()),
            error::ROOM_ROOM_ID_TOO_LONG
        ),
        case!(
            zego_login_room(h, room.as_ptr(), null(), null()),
            error::ROOM_USER_ID_NULL
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &null_id, null()),
            error::ROOM_USER_ID_NULL
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user_with(&empty, &user_name), null()),
            error::ROOM_USER_ID_NULL
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user_with(&spaced, &user_name), null()),
            error::ROOM_USER_ID_INVALID_CHARACTER
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user_with(&bad_utf8, &user_name), null()),
            error::ROOM_USER_ID_INVALID_CHARACTER
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user_with(&long_user, &user_name), null()),
            error::ROOM_USER_ID_TOO_LONG
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &null_name, null()),
            error::ROOM_USER_NAME_NULL
        ),
        case!(
            zego_login_room(
                h,
                room.as_ptr(),
                &user_with(&user_id, &control_name),
                null()
            ),
            error::ROOM_USER_NAME_INVALID_CHARACTER
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user_with(&user_id, &bad_utf8), null()),
            error::ROOM_USER_NAME_INVALID_CHARACTER
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user_with(&user_id, &long_name), null()),
            error::ROOM_USER_NAME_TOO_LONG
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user, &token_config),
            error::ROOM_TOKEN_FORMAT_ERROR
        ),
        case!(
            zego_login_room(h, room.as_ptr(), &user, &utf8_token_config),
            error::ROOM_TOKEN_FORMAT_ERROR
        ),
        case!(
            zego_logout_room(h, spaced.as_ptr()),
            error::ROOM_ROOM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_set_room_retry_time(h, 0),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(zego_set_room_retry_time(h, 5), error::SUCCESS),
        case!(
            zego_renew_token(h, room.as_ptr(), null()),
            error::ROOM_TOKEN_FORMAT_ERROR
        ),
        case!(
            zego_renew_token(h, room.as_ptr(), empty.as_ptr()),
            error::ROOM_TOKEN_FORMAT_ERROR
        ),
        case!(
            zego_renew_token(h, null(), long_token.as_ptr()),
            error::ROOM_ROOM_ID_NULL
        ),
    ]);
    assert_eq!(zego_engine_destroy(h), 0);
}

#[test]
fn messages_and_extra_info_are_validated() {
    let h = create();
    let (room, key, value, text) = (c("room-1"), c("k"), c("v"), c("hello"));
    let (empty, bad_utf8, spaced) = (c(""), not_utf8(), c("a b"));
    let (long_key, long_value, long_message) = (
        c(&"k".repeat(129)),
        c(&"v".repeat(4097)),
        c(&"m".repeat(1025)),
    );
    let bad_ids = [c("ok"), c("not ok")];
    let bad_id_ptrs: Vec<*const c_char> = bad_ids.iter().map(|s| s.as_ptr()).collect();
    let mut seq: c_int = 0;

    check(vec![
        case!(
            zego_set_room_extra_info(h, room.as_ptr(), null(), value.as_ptr(), &mut seq),
            error::ROOM_EXTRA_INFO_KEY_TOO_LONG
        ),
        case!(
            zego_set_room_extra_info(h, room.as_ptr(), empty.as_ptr(), value.as_ptr(), &mut seq),
            error::ROOM_EXTRA_INFO_KEY_TOO_LONG
        ),
        case!(
            zego_set_room_extra_info(
                h,
                room.as_ptr(),
                long_key.as_ptr(),
                value.as_ptr(),
                &mut seq
            ),
            error::ROOM_EXTRA_INFO_KEY_TOO_LONG
        ),
        case!(
            zego_set_room_extra_info(
                h,
                room.as_ptr(),
                key.as_ptr(),
                long_value.as_ptr(),
                &mut seq
            ),
            error::ROOM_EXTRA_INFO_VALUE_TOO_LONG
        ),
        case!(
            zego_set_room_extra_info(h, room.as_ptr(), key.as_ptr(), null(), &mut seq),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_room_extra_info(h, spaced.as_ptr(), key.as_ptr(), value.as_ptr(), &mut seq),
            error::ROOM_ROOM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_send_broadcast_message(h, room.as_ptr(), null(), &mut seq),
            error::IM_CONTENT_NULL
        ),
        case!(
            zego_send_broadcast_message(h, room.as_ptr(), empty.as_ptr(), &mut seq),
            error::IM_CONTENT_NULL
        ),
        case!(
            zego_send_broadcast_message(h, room.as_ptr(), long_message.as_ptr(), &mut seq),
            error::IM_CONTENT_TOO_LONG
        ),
        case!(
            zego_send_broadcast_message(h, room.as_ptr(), bad_utf8.as_ptr(), &mut seq),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_broadcast_message(h, null(), text.as_ptr(), &mut seq),
            error::ROOM_ROOM_ID_NULL
        ),
        case!(
            zego_send_custom_command(h, room.as_ptr(), null(), null(), 0, &mut seq),
            error::IM_CONTENT_NULL
        ),
        case!(
            zego_send_custom_command(h, room.as_ptr(), long_message.as_ptr(), null(), 0, &mut seq),
            error::IM_CONTENT_TOO_LONG
        ),
        case!(
            zego_send_custom_command(h, room.as_ptr(), text.as_ptr(), null(), 2, &mut seq),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_command(
                h,
                room.as_ptr(),
                text.as_ptr(),
                bad_id_ptrs.as_ptr(),
                2,
                &mut seq
            ),
            error::ROOM_USER_ID_INVALID_CHARACTER
        ),
        // Valid, but this engine is in no room.
        case!(
            zego_send_broadcast_message(h, room.as_ptr(), text.as_ptr(), &mut seq),
            error::IM_WRONG_ROOM
        ),
    ]);
    assert_eq!(zego_engine_destroy(h), 0);
}

#[test]
fn publishing_arguments_and_state_are_validated() {
    let h = create();
    let main = zego_publish_channel::ZEGO_PUBLISH_CHANNEL_MAIN as i32;
    let (stream, empty, spaced, bad_utf8) = (c("stream-1"), c(""), c("s 1"), not_utf8());
    let (long_stream, long_info) = (c(&"s".repeat(257)), c(&"x".repeat(1025)));
    let sei = [7u8; 4097];
    let good_video = zego_video_config {
        capture_width: 640,
        capture_height: 360,
        encode_width: 640,
        encode_height: 360,
        fps: 15,
        bitrate_kbps: 600,
        keyframe_interval_s: 2,
    };
    let zero_fps = zego_video_config {
        fps: 0,
        ..good_video
    };
    let odd_width = zego_video_config {
        encode_width: 641,
        ..good_video
    };
    let huge_bitrate = zego_video_config {
        bitrate_kbps: 50_000,
        ..good_video
    };
    let three_channels = zego_audio_config {
        bitrate_kbps: 48,
        channels: 3,
    };
    let wrapping_channels = zego_audio_config {
        bitrate_kbps: 48,
        channels: 65_537,
    };
    let frame = [16u8; 640 * 360 * 3 / 2];
    let i420 = zego_video_frame_param {
        format: zego_video_frame_format::ZEGO_VIDEO_FRAME_FORMAT_I420 as i32,
        strides: [640, 320, 320, 0],
        width: 640,
        height: 360,
        capture_time_us: 0,
        frame_number: 1,
    };
    let nv21 = zego_video_frame_param {
        format: zego_video_frame_format::ZEGO_VIDEO_FRAME_FORMAT_NV21 as i32,
        ..i420
    };
    let not_a_format = zego_video_frame_param { format: 99, ..i420 };
    let zero_width = zego_video_frame_param { width: 0, ..i420 };
    let mut seq: c_int = 0;

    check(vec![
        case!(
            zego_start_publishing_stream(h, null(), main),
            error::COMMON_STREAM_ID_NULL
        ),
        case!(
            zego_start_publishing_stream(h, empty.as_ptr(), main),
            error::COMMON_STREAM_ID_NULL
        ),
        case!(
            zego_start_publishing_stream(h, long_stream.as_ptr(), main),
            error::COMMON_STREAM_ID_TOO_LONG
        ),
        case!(
            zego_start_publishing_stream(h, spaced.as_ptr(), main),
            error::COMMON_STREAM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_start_publishing_stream(h, bad_utf8.as_ptr(), main),
            error::COMMON_STREAM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_start_publishing_stream(h, stream.as_ptr(), 4),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_start_publishing_stream(h, stream.as_ptr(), -1),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_start_publishing_stream(h, stream.as_ptr(), main),
            error::COMMON_NOT_LOGGED_IN
        ),
        case!(zego_start_preview(h, 4), error::COMMON_INVALID_PARAMETER),
        case!(
            zego_stop_preview(h, i32::MIN),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_stop_publishing_stream(h, 7),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_stream_extra_info(h, null(), main, &mut seq),
            error::PUBLISHER_EXTRA_INFO_NULL
        ),
        case!(
            zego_set_stream_extra_info(h, long_info.as_ptr(), main, &mut seq),
            error::PUBLISHER_EXTRA_INFO_TOO_LONG
        ),
        case!(
            zego_set_stream_extra_info(h, bad_utf8.as_ptr(), main, &mut seq),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_mute_publish_stream_audio(h, true, 4),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_mute_publish_stream_video(h, true, -2),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_config(h, null(), main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_config(h, &zero_fps, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_config(h, &odd_width, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_config(h, &huge_bitrate, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_config(h, &good_video, 4),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_get_video_config(h, main, null_mut()),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_audio_config(h, null(), main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_audio_config(h, &three_channels, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_audio_config(h, &wrapping_channels, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_source(h, 3, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_video_source(h, 0, 4),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_audio_source(h, -1, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_video_capture_frame(h, null(), frame.len(), &i420, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_video_capture_frame(h, frame.as_ptr(), frame.len(), null(), main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_video_capture_frame(h, frame.as_ptr(), frame.len() - 1, &i420, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_video_capture_frame(h, frame.as_ptr(), frame.len(), &nv21, main),
            error::COMMON_UNSUPPORTED
        ),
        case!(
            zego_send_custom_video_capture_frame(
                h,
                frame.as_ptr(),
                frame.len(),
                &not_a_format,
                main
            ),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_video_capture_frame(h, frame.as_ptr(), frame.len(), &zero_width, main),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_custom_video_capture_frame(h, frame.as_ptr(), frame.len(), &i420, 4),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_sei(h, null(), 4, main),
            error::PUBLISHER_SEI_DATA_NULL
        ),
        case!(
            zego_send_sei(h, sei.as_ptr(), 0, main),
            error::PUBLISHER_SEI_DATA_NULL
        ),
        // The length is checked before the buffer is read: no read past it.
        case!(
            zego_send_sei(h, sei.as_ptr(), usize::MAX, main),
            error::PUBLISHER_SEI_DATA_TOO_LONG
        ),
        case!(
            zego_send_sei(h, sei.as_ptr(), 4097, main),
            error::PUBLISHER_SEI_DATA_TOO_LONG
        ),
        case!(
            zego_send_sei(h, sei.as_ptr(), 4, 9),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_send_sei(h, sei.as_ptr(), 4, main),
            error::PUBLISHER_NO_DATA
        ),
        case!(zego_set_sei_config(h, 2), error::COMMON_INVALID_PARAMETER),
        case!(zego_set_sei_config(h, -1), error::COMMON_INVALID_PARAMETER),
        case!(
            zego_set_sei_config(h, zego_sei_type::ZEGO_SEI_TYPE_USER_UNREGISTER as i32),
            error::SUCCESS
        ),
        case!(
            zego_send_sei(h, sei.as_ptr(), 15, main),
            error::COMMON_INVALID_PARAMETER
        ),
    ]);

    // The defaults come back, and a valid configuration sticks.
    let mut got = zego_video_config::default();
    assert_eq!(zego_get_video_config(h, main, &mut got), 0);
    assert_eq!(
        (got.encode_width, got.encode_height, got.fps),
        (640, 360, 15)
    );
    let hd = zego_video_config {
        capture_width: 1280,
        capture_height: 720,
        encode_width: 1280,
        encode_height: 720,
        ..good_video
    };
    assert_eq!(zego_set_video_config(h, &hd, main), 0);
    assert_eq!(zego_get_video_config(h, main, &mut got), 0);
    assert_eq!(got, hd);
    assert_eq!(zego_engine_destroy(h), 0);
}

#[test]
fn playing_arguments_and_state_are_validated() {
    let h = create();
    let (stream, spaced, long_stream) = (c("stream-1"), c("s 1"), c(&"s".repeat(257)));
    let cdn = zego_player_config {
        resource_mode: zego_stream_resource_mode::ZEGO_STREAM_RESOURCE_MODE_ONLY_CDN as i32,
    };
    let unknown_mode = zego_player_config { resource_mode: 6 };

    check(vec![
        case!(
            zego_start_playing_stream(h, null(), null()),
            error::COMMON_STREAM_ID_NULL
        ),
        case!(
            zego_start_playing_stream(h, long_stream.as_ptr(), null()),
            error::COMMON_STREAM_ID_TOO_LONG
        ),
        case!(
            zego_start_playing_stream(h, spaced.as_ptr(), null()),
            error::COMMON_STREAM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_start_playing_stream(h, stream.as_ptr(), &unknown_mode),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_start_playing_stream(h, stream.as_ptr(), &cdn),
            error::PLAYER_RESOURCE_MODE_UNSUPPORTED
        ),
        case!(
            zego_start_playing_stream(h, stream.as_ptr(), null()),
            error::COMMON_NOT_LOGGED_IN
        ),
        case!(
            zego_stop_playing_stream(h, stream.as_ptr()),
            error::PLAYER_STREAM_NOT_PLAYED
        ),
        case!(
            zego_stop_playing_stream(h, null()),
            error::COMMON_STREAM_ID_NULL
        ),
        case!(
            zego_set_play_volume(h, stream.as_ptr(), 201),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_play_volume(h, stream.as_ptr(), -1),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_play_volume(h, stream.as_ptr(), 100),
            error::PLAYER_STREAM_NOT_PLAYED
        ),
        case!(
            zego_mute_play_stream_audio(h, stream.as_ptr(), true),
            error::PLAYER_STREAM_NOT_PLAYED
        ),
        case!(
            zego_mute_play_stream_video(h, spaced.as_ptr(), true),
            error::COMMON_STREAM_ID_INVALID_CHARACTER
        ),
        case!(
            zego_set_remote_render_format(
                h,
                zego_video_frame_format::ZEGO_VIDEO_FRAME_FORMAT_NV21 as i32
            ),
            error::COMMON_UNSUPPORTED
        ),
        case!(
            zego_set_remote_render_format(h, 42),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_captured_render_format(h, -1),
            error::COMMON_INVALID_PARAMETER
        ),
        case!(
            zego_set_remote_render_format(
                h,
                zego_video_frame_format::ZEGO_VIDEO_FRAME_FORMAT_RGBA32 as i32
            ),
            error::SUCCESS
        ),
    ]);
    assert_eq!(zego_engine_destroy(h), 0);
}

unsafe extern "C" fn ignore_state(
    _: *const c_char,
    _: i32,
    _: c_int,
    _: *const c_char,
    _: *mut c_void,
) {
}

/// Every entry point with a handle argument, called with `h` and otherwise valid arguments.
fn every_handle_call(h: zego_engine) -> Vec<(&'static str, c_int)> {
    let (room, stream, key, text) = (c("room-1"), c("stream-1"), c("k"), c("hello"));
    let (user_id, user_name) = (c("user-1"), c("User One"));
    let user = zego_user {
        user_id: user_id.as_ptr(),
        user_name: user_name.as_ptr(),
    };
    let video = zego_video_config {
        capture_width: 640,
        capture_height: 360,
        encode_width: 640,
        encode_height: 360,
        fps: 15,
        bitrate_kbps: 600,
        keyframe_interval_s: 2,
    };
    let audio = zego_audio_config {
        bitrate_kbps: 48,
        channels: 1,
    };
    let frame = [16u8; 16 * 16 * 3 / 2];
    let param = zego_video_frame_param {
        format: 1,
        strides: [16, 8, 8, 0],
        width: 16,
        height: 16,
        capture_time_us: 0,
        frame_number: 0,
    };
    let mut seq = 0;
    let mut config = zego_video_config::default();
    vec![
        (
            "login_room",
            zego_login_room(h, room.as_ptr(), &user, null()),
        ),
        ("logout_room", zego_logout_room(h, null())),
        ("set_room_retry_time", zego_set_room_retry_time(h, 60)),
        (
            "renew_token",
            zego_renew_token(h, room.as_ptr(), text.as_ptr()),
        ),
        (
            "set_room_extra_info",
            zego_set_room_extra_info(h, room.as_ptr(), key.as_ptr(), text.as_ptr(), &mut seq),
        ),
        (
            "send_broadcast_message",
            zego_send_broadcast_message(h, room.as_ptr(), text.as_ptr(), &mut seq),
        ),
        (
            "send_custom_command",
            zego_send_custom_command(h, room.as_ptr(), text.as_ptr(), null(), 0, &mut seq),
        ),
        ("start_preview", zego_start_preview(h, 0)),
        ("stop_preview", zego_stop_preview(h, 0)),
        (
            "start_publishing_stream",
            zego_start_publishing_stream(h, stream.as_ptr(), 0),
        ),
        ("stop_publishing_stream", zego_stop_publishing_stream(h, 0)),
        (
            "set_stream_extra_info",
            zego_set_stream_extra_info(h, text.as_ptr(), 0, &mut seq),
        ),
        (
            "mute_publish_stream_audio",
            zego_mute_publish_stream_audio(h, true, 0),
        ),
        (
            "mute_publish_stream_video",
            zego_mute_publish_stream_video(h, true, 0),
        ),
        ("set_video_config", zego_set_video_config(h, &video, 0)),
        ("get_video_config", zego_get_video_config(h, 0, &mut config)),
        ("set_audio_config", zego_set_audio_config(h, &audio, 0)),
        ("set_video_source", zego_set_video_source(h, 0, 0)),
        ("set_audio_source", zego_set_audio_source(h, 0, 0)),
        (
            "send_custom_video_capture_frame",
            zego_send_custom_video_capture_frame(h, frame.as_ptr(), frame.len(), &param, 0),
        ),
        (
            "start_playing_stream",
            zego_start_playing_stream(h, stream.as_ptr(), null()),
        ),
        (
            "stop_playing_stream",
            zego_stop_playing_stream(h, stream.as_ptr()),
        ),
        (
            "set_play_volume",
            zego_set_play_volume(h, stream.as_ptr(), 100),
        ),
        (
            "mute_play_stream_audio",
            zego_mute_play_stream_audio(h, stream.as_ptr(), true),
        ),
        (
            "mute_play_stream_video",
            zego_mute_play_stream_video(h, stream.as_ptr(), true),
        ),
        (
            "set_remote_render_format",
            zego_set_remote_render_format(h, 1),
        ),
        (
            "set_captured_render_format",
            zego_set_captured_render_format(h, 1),
        ),
        ("set_sei_config", zego_set_sei_config(h, 0)),
        ("send_sei", zego_send_sei(h, text.as_ptr().cast(), 5, 0)),
        (
            "register_player_recv_sei_callback",
            zego_register_player_recv_sei_callback(h, None, null_mut()),
        ),
        (
            "register_room_state_update_callback",
            zego_register_room_state_update_callback(h, Some(ignore_state), null_mut()),
        ),
        (
            "register_player_state_update_callback",
            zego_register_player_state_update_callback(h, None, null_mut()),
        ),
        ("engine_destroy", zego_engine_destroy(h)),
    ]
}

fn assert_rejected(h: zego_engine) {
    for (what, code) in every_handle_call(h) {
        assert_eq!(
            code,
            error::COMMON_ENGINE_NOT_CREATED as c_int,
            "{what} with handle {h:#x}: {}",
            message(code)
        );
    }
}

#[test]
fn invalid_and_garbage_handles_are_rejected_without_being_dereferenced() {
    for h in [
        0,
        1,
        2,
        0xffff_ffff,
        u64::MAX,
        0x8000_0000_0000_0000,
        0x0000_0001_0000_0000,
        0xdead_beef_cafe_babe,
    ] {
        assert_rejected(h);
    }
    // A deterministic spray of garbage.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        assert_eq!(
            zego_start_preview(x, 0),
            error::COMMON_ENGINE_NOT_CREATED as c_int,
            "{x:#x}"
        );
        assert_eq!(
            zego_engine_destroy(x),
            error::COMMON_ENGINE_NOT_CREATED as c_int,
            "{x:#x}"
        );
    }
}

#[test]
fn destroyed_handles_stay_invalid_even_when_their_slot_is_reused() {
    let first = create();
    assert_eq!(zego_engine_destroy(first), 0);
    assert_rejected(first);
    let second = create();
    assert_ne!(second, first, "a reused slot gets a new generation");
    assert_rejected(first);
    assert_eq!(zego_start_preview(second, 0), 0);
    assert_eq!(zego_engine_destroy(second), 0);
    assert_eq!(
        zego_engine_destroy(second),
        error::COMMON_ENGINE_NOT_CREATED as c_int
    );
}

#[test]
fn engines_can_be_created_and_destroyed_many_times() {
    let mut seen = std::collections::HashSet::new();
    for round in 0..20 {
        let engines: Vec<zego_engine> = (0..3).map(|_| create()).collect();
        for &h in &engines {
            assert!(
                seen.insert(h),
                "round {round}: handle {h:#x} was handed out before"
            );
        }
        // Destroy while previewing: threads are joined, nothing leaks into the next round.
        assert_eq!(zego_start_preview(engines[0], 0), 0);
        for h in engines {
            assert_eq!(zego_engine_destroy(h), 0);
        }
    }
}

#[test]
fn error_messages_and_version_are_static_strings() {
    for (code, _, text) in error::ALL {
        assert_eq!(message(*code as c_int), *text);
    }
    assert_eq!(message(42), "Unknown error code.");
    assert_eq!(message(-1), "Unknown error code.");
    let version = unsafe { CStr::from_ptr(zego_get_version()) };
    assert_eq!(version.to_str(), Ok(env!("CARGO_PKG_VERSION")));
}
