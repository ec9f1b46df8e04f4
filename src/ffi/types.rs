//! The C structs: what apps pass in (profile, user, configs, frame descriptions) and what callbacks receive
//! (users, streams, messages, qualities). Strings in structs are `const char *`: owned by the caller for structs
//! passed in (copied before the call returns), owned by the SDK and valid only during the callback for structs
//! passed out.

use std::ffi::c_char;

/// What an engine is created with (`zego_engine_create`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_engine_profile {
    /// The app's ID; 0 is invalid (1001004).
    pub app_id: u32,
    /// The app's signing key as 64 hex characters, or NULL / "" when every login brings a token.
    pub app_sign: *const c_char,
    /// A `zego_scenario` value.
    pub scenario: i32,
    /// The signaling URL of the server, e.g. "ws://127.0.0.1:9180/ws", or the URLs of a cluster's nodes separated by
    /// commas, tried in turn when a connection fails. Required (1001006 when NULL or invalid).
    pub server: *const c_char,
}

/// A user: who logs in, and who is in a room.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_user {
    /// Printable ASCII without spaces, 1..=64 bytes; unique per app (a second login kicks the first).
    pub user_id: *const c_char,
    /// Display name: UTF-8 without control characters, 1..=256 bytes.
    pub user_name: *const c_char,
}

/// Login options (`zego_login_room`); pass NULL for the defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_room_config {
    /// Largest number of users in the room; 0 = no limit.
    pub max_member_count: u32,
    /// Whether `room_user_update` is delivered.
    pub is_user_status_notify: bool,
    /// A Token04 (at most 2048 bytes), or NULL / "" to log in with the engine's app_sign.
    pub token: *const c_char,
}

/// Video settings of a publish channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct zego_video_config {
    pub capture_width: u32,
    pub capture_height: u32,
    /// Even, 16..=3840.
    pub encode_width: u32,
    /// Even, 16..=2160.
    pub encode_height: u32,
    /// 1..=60.
    pub fps: u32,
    /// 10..=20000.
    pub bitrate_kbps: u32,
    /// Seconds between keyframes (0..=60); keyframes are also sent whenever a player asks.
    pub keyframe_interval_s: u32,
}

/// Audio settings of a publish channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct zego_audio_config {
    /// 6..=510.
    pub bitrate_kbps: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: u32,
}

/// Playing options (`zego_start_playing_stream`); pass NULL for the defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_player_config {
    /// A `zego_stream_resource_mode` value.
    pub resource_mode: i32,
}

/// Describes a raw video frame: custom capture frames passed in, and rendered frames passed out.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct zego_video_frame_param {
    /// A `zego_video_frame_format` value.
    pub format: i32,
    /// Bytes per row of each plane: I420 uses Y, U, V; NV12 uses Y, UV; the packed formats use the first. Passing
    /// in, 0 means tightly packed.
    pub strides: [u32; 4],
    pub width: u32,
    pub height: u32,
    /// Wall-clock unix microseconds when the frame was captured. Passing in, 0 means "now". Passed out to the
    /// remote render callback, the capture time at the publisher, read from the stamp the synthetic camera draws
    /// into its pixels, so `now - capture_time_us` is the glass-to-glass latency; 0 for streams without the stamp
    /// (custom video sources).
    pub capture_time_us: u64,
    /// Increases by one per captured frame of a stream, from 1 at the first frame the stream sends (preview-only
    /// frames before it are numbered by capture), so a gap in rendered frames means frames were dropped. Passing
    /// in, 0 lets the SDK number the frames. Passed out to the remote render callback, 0 for streams without the
    /// stamp, like `capture_time_us`.
    pub frame_number: u64,
}

/// Describes a chunk of decoded audio (`player_audio_data` callback).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct zego_audio_frame_param {
    pub sample_rate: u32,
    pub channels: u32,
}

/// A stream in a room.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_stream {
    /// Who publishes it.
    pub user: zego_user,
    pub stream_id: *const c_char,
    pub extra_info: *const c_char,
}

/// A room extra info entry.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_room_extra_info {
    pub key: *const c_char,
    pub value: *const c_char,
    pub update_user: zego_user,
    /// Unix milliseconds of the server's clock.
    pub update_time: u64,
}

/// A broadcast message received in a room.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zego_broadcast_message_info {
    pub message: *const c_char,
    /// Increases per room.
    pub message_id: u64,
    /// Unix milliseconds of the server's clock.
    pub send_time: u64,
    pub from_user: zego_user,
}

/// Publishing quality, every few seconds while publishing.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct zego_publish_stream_quality {
    pub video_capture_fps: f64,
    pub video_encode_fps: f64,
    pub video_send_fps: f64,
    pub video_kbps: f64,
    pub audio_capture_fps: f64,
    pub audio_send_fps: f64,
    pub audio_kbps: f64,
    /// Round-trip time to the server, from RTCP.
    pub rtt: u32,
    /// Fraction of packets lost on the way to the server (0.0..=1.0) before retransmission.
    pub packet_lost_rate: f64,
    /// 0 excellent, 1 good, 2 medium, 3 bad, 4 die.
    pub level: i32,
    pub total_send_bytes: u64,
    /// The encoder's current target bitrate (after congestion control).
    pub target_bitrate_kbps: f64,
}

/// Playing quality, every few seconds while playing.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct zego_play_stream_quality {
    pub video_recv_fps: f64,
    pub video_decode_fps: f64,
    pub video_render_fps: f64,
    pub video_kbps: f64,
    /// Fraction of time the video was frozen (no new frame for more than 200 ms).
    pub video_break_rate: f64,
    pub audio_recv_fps: f64,
    pub audio_kbps: f64,
    pub rtt: u32,
    /// Fraction of packets lost on the way from the server (0.0..=1.0) before retransmission.
    pub packet_lost_rate: f64,
    /// Capture-to-render delay in ms when the capture time is known, else the jitter-buffer delay.
    pub delay: u32,
    /// 0 excellent, 1 good, 2 medium, 3 bad, 4 die.
    pub level: i32,
    pub total_recv_bytes: u64,
}
