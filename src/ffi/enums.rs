//! The C enums, with the reference's values. Functions take and callbacks pass these as `int32_t` (an enum value
//! out of range must be an error code, not undefined behaviour), so the enums exist for the header; the tests below
//! pin each one to the engine's own enum in `config`.

#![allow(clippy::upper_case_acronyms)]

/// Scenario of an engine (`zego_engine_profile.scenario`).
#[repr(i32)]
pub enum zego_scenario {
    ZEGO_SCENARIO_GENERAL = 0,
    ZEGO_SCENARIO_COMMUNICATION = 1,
    ZEGO_SCENARIO_LIVE = 2,
    ZEGO_SCENARIO_DEFAULT = 3,
    ZEGO_SCENARIO_STANDARD_VIDEO_CALL = 4,
    ZEGO_SCENARIO_HIGH_QUALITY_VIDEO_CALL = 5,
    ZEGO_SCENARIO_STANDARD_CHATROOM = 6,
    ZEGO_SCENARIO_HIGH_QUALITY_CHATROOM = 7,
    ZEGO_SCENARIO_BROADCAST = 8,
    ZEGO_SCENARIO_KARAOKE = 9,
    ZEGO_SCENARIO_STANDARD_VOICE_CALL = 10,
}

/// Connection state of a room (`room_state_update` callback).
#[repr(i32)]
pub enum zego_room_state {
    ZEGO_ROOM_STATE_DISCONNECTED = 0,
    ZEGO_ROOM_STATE_CONNECTING = 1,
    ZEGO_ROOM_STATE_CONNECTED = 2,
}

/// Why a room's state changed (`room_state_changed` callback).
#[repr(i32)]
pub enum zego_room_state_changed_reason {
    ZEGO_ROOM_STATE_CHANGED_REASON_LOGINING = 0,
    ZEGO_ROOM_STATE_CHANGED_REASON_LOGINED = 1,
    ZEGO_ROOM_STATE_CHANGED_REASON_LOGIN_FAILED = 2,
    ZEGO_ROOM_STATE_CHANGED_REASON_RECONNECTING = 3,
    ZEGO_ROOM_STATE_CHANGED_REASON_RECONNECTED = 4,
    ZEGO_ROOM_STATE_CHANGED_REASON_RECONNECT_FAILED = 5,
    ZEGO_ROOM_STATE_CHANGED_REASON_KICK_OUT = 6,
    ZEGO_ROOM_STATE_CHANGED_REASON_LOGOUT = 7,
    ZEGO_ROOM_STATE_CHANGED_REASON_LOGOUT_FAILED = 8,
}

/// State of a published stream (`publisher_state_update` callback).
#[repr(i32)]
pub enum zego_publisher_state {
    ZEGO_PUBLISHER_STATE_NO_PUBLISH = 0,
    ZEGO_PUBLISHER_STATE_PUBLISH_REQUESTING = 1,
    ZEGO_PUBLISHER_STATE_PUBLISHING = 2,
}

/// State of a played stream (`player_state_update` callback).
#[repr(i32)]
pub enum zego_player_state {
    ZEGO_PLAYER_STATE_NO_PLAY = 0,
    ZEGO_PLAYER_STATE_PLAY_REQUESTING = 1,
    ZEGO_PLAYER_STATE_PLAYING = 2,
}

/// Whether users or streams were added or removed.
#[repr(i32)]
pub enum zego_update_type {
    ZEGO_UPDATE_TYPE_ADD = 0,
    ZEGO_UPDATE_TYPE_DELETE = 1,
}

/// Which path a player takes (`zego_player_config.resource_mode`). This server offers the real-time path:
/// DEFAULT, ONLY_RTC and ONLY_L3 play; the CDN modes and CUSTOM return 1004072.
#[repr(i32)]
pub enum zego_stream_resource_mode {
    ZEGO_STREAM_RESOURCE_MODE_DEFAULT = 0,
    ZEGO_STREAM_RESOURCE_MODE_ONLY_CDN = 1,
    ZEGO_STREAM_RESOURCE_MODE_ONLY_L3 = 2,
    ZEGO_STREAM_RESOURCE_MODE_ONLY_RTC = 3,
    ZEGO_STREAM_RESOURCE_MODE_CDN_PLUS = 4,
    ZEGO_STREAM_RESOURCE_MODE_CUSTOM = 5,
}

/// A publish channel: an engine publishes up to four streams at once.
#[repr(i32)]
pub enum zego_publish_channel {
    ZEGO_PUBLISH_CHANNEL_MAIN = 0,
    ZEGO_PUBLISH_CHANNEL_AUX = 1,
    ZEGO_PUBLISH_CHANNEL_THIRD = 2,
    ZEGO_PUBLISH_CHANNEL_FOURTH = 3,
}

/// Engine state (`engine_state_update` callback).
#[repr(i32)]
pub enum zego_engine_state {
    ZEGO_ENGINE_STATE_START = 0,
    ZEGO_ENGINE_STATE_STOP = 1,
}

/// Pixel layouts. Custom capture frames may be I420, NV12, BGRA32 or RGBA32; rendered frames are delivered in
/// I420 (the default), NV12, BGRA32 or RGBA32.
#[repr(i32)]
pub enum zego_video_frame_format {
    ZEGO_VIDEO_FRAME_FORMAT_UNKNOWN = 0,
    ZEGO_VIDEO_FRAME_FORMAT_I420 = 1,
    ZEGO_VIDEO_FRAME_FORMAT_NV12 = 2,
    ZEGO_VIDEO_FRAME_FORMAT_NV21 = 3,
    ZEGO_VIDEO_FRAME_FORMAT_BGRA32 = 4,
    ZEGO_VIDEO_FRAME_FORMAT_RGBA32 = 5,
    ZEGO_VIDEO_FRAME_FORMAT_ARGB32 = 6,
    ZEGO_VIDEO_FRAME_FORMAT_ABGR32 = 7,
    ZEGO_VIDEO_FRAME_FORMAT_I422 = 8,
    ZEGO_VIDEO_FRAME_FORMAT_BGR24 = 9,
    ZEGO_VIDEO_FRAME_FORMAT_RGB24 = 10,
}

/// How a view scales video.
#[repr(i32)]
pub enum zego_view_mode {
    ZEGO_VIEW_MODE_ASPECT_FIT = 0,
    ZEGO_VIEW_MODE_ASPECT_FILL = 1,
    ZEGO_VIEW_MODE_SCALE_TO_FILL = 2,
}

/// Where a publish channel's video comes from (`zego_set_video_source`).
#[repr(i32)]
pub enum zego_video_source_type {
    /// The built-in synthetic camera: a moving test pattern with the capture time drawn into the pixels.
    ZEGO_VIDEO_SOURCE_TYPE_SYNTHETIC = 0,
    /// Frames the app pushes with `zego_send_custom_video_capture_frame`.
    ZEGO_VIDEO_SOURCE_TYPE_CUSTOM = 1,
    /// The first real camera (builds with the `devices` feature only; otherwise 1000006).
    ZEGO_VIDEO_SOURCE_TYPE_CAMERA = 2,
}

/// How `zego_send_sei` writes the app's data into the video (`zego_set_sei_config`).
#[repr(i32)]
pub enum zego_sei_type {
    /// ZEGO's own SEI payload type (243): the data as given.
    ZEGO_SEI_TYPE_ZEGO_DEFINED = 0,
    /// H.264 `user_data_unregistered` (payload type 5): the data must begin with a 16-byte UUID.
    ZEGO_SEI_TYPE_USER_UNREGISTER = 1,
}

/// Where a publish channel's audio comes from (`zego_set_audio_source`).
#[repr(i32)]
pub enum zego_audio_source_type {
    /// The built-in synthetic microphone: a 440 Hz tone, louder for the first 100 ms of every second (a time mark
    /// for measuring audio latency and A/V sync).
    ZEGO_AUDIO_SOURCE_TYPE_SYNTHETIC = 0,
    /// The default real microphone (builds with the `devices` feature only; otherwise 1000006).
    ZEGO_AUDIO_SOURCE_TYPE_MICROPHONE = 1,
    /// No audio is published.
    ZEGO_AUDIO_SOURCE_TYPE_NONE = 2,
}

/// Log levels (`zego_set_log_level` and the log callback). A level lets through itself and everything more severe.
#[repr(i32)]
pub enum zego_log_level {
    ZEGO_LOG_LEVEL_OFF = 0,
    ZEGO_LOG_LEVEL_ERROR = 1,
    ZEGO_LOG_LEVEL_WARN = 2,
    ZEGO_LOG_LEVEL_INFO = 3,
    ZEGO_LOG_LEVEL_DEBUG = 4,
    ZEGO_LOG_LEVEL_TRACE = 5,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;

    /// The header's values are the engine's values, variant by variant.
    #[test]
    fn c_enums_match_the_engine_enums() {
        use zego_scenario::*;
        let scenarios = [
            (ZEGO_SCENARIO_GENERAL, Scenario::General),
            (ZEGO_SCENARIO_COMMUNICATION, Scenario::Communication),
            (ZEGO_SCENARIO_LIVE, Scenario::Live),
            (ZEGO_SCENARIO_DEFAULT, Scenario::Default),
            (
                ZEGO_SCENARIO_STANDARD_VIDEO_CALL,
                Scenario::StandardVideoCall,
            ),
            (
                ZEGO_SCENARIO_HIGH_QUALITY_VIDEO_CALL,
                Scenario::HighQualityVideoCall,
            ),
            (ZEGO_SCENARIO_STANDARD_CHATROOM, Scenario::StandardChatroom),
            (
                ZEGO_SCENARIO_HIGH_QUALITY_CHATROOM,
                Scenario::HighQualityChatroom,
            ),
            (ZEGO_SCENARIO_BROADCAST, Scenario::Broadcast),
            (ZEGO_SCENARIO_KARAOKE, Scenario::Karaoke),
            (
                ZEGO_SCENARIO_STANDARD_VOICE_CALL,
                Scenario::StandardVoiceCall,
            ),
        ];
        for (c, rust) in scenarios {
            assert_eq!(Scenario::from_value(c as i32), Ok(rust));
        }
        assert!(Scenario::from_value(11).is_err());

        use zego_room_state::*;
        for (c, rust) in [
            (ZEGO_ROOM_STATE_DISCONNECTED, RoomState::Disconnected),
            (ZEGO_ROOM_STATE_CONNECTING, RoomState::Connecting),
            (ZEGO_ROOM_STATE_CONNECTED, RoomState::Connected),
        ] {
            assert_eq!(c as i32, rust.value());
        }

        use zego_room_state_changed_reason::*;
        for (c, rust) in [
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_LOGINING,
                RoomStateChangedReason::Logining,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_LOGINED,
                RoomStateChangedReason::Logined,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_LOGIN_FAILED,
                RoomStateChangedReason::LoginFailed,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_RECONNECTING,
                RoomStateChangedReason::Reconnecting,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_RECONNECTED,
                RoomStateChangedReason::Reconnected,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_RECONNECT_FAILED,
                RoomStateChangedReason::ReconnectFailed,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_KICK_OUT,
                RoomStateChangedReason::KickOut,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_LOGOUT,
                RoomStateChangedReason::Logout,
            ),
            (
                ZEGO_ROOM_STATE_CHANGED_REASON_LOGOUT_FAILED,
                RoomStateChangedReason::LogoutFailed,
            ),
        ] {
            assert_eq!(c as i32, rust.value());
        }

        use zego_publisher_state::*;
        for (c, rust) in [
            (ZEGO_PUBLISHER_STATE_NO_PUBLISH, PublisherState::NoPublish),
            (
                ZEGO_PUBLISHER_STATE_PUBLISH_REQUESTING,
                PublisherState::PublishRequesting,
            ),
            (ZEGO_PUBLISHER_STATE_PUBLISHING, PublisherState::Publishing),
        ] {
            assert_eq!(c as i32, rust.value());
        }

        use zego_player_state::*;
        for (c, rust) in [
            (ZEGO_PLAYER_STATE_NO_PLAY, PlayerState::NoPlay),
            (
                ZEGO_PLAYER_STATE_PLAY_REQUESTING,
                PlayerState::PlayRequesting,
            ),
            (ZEGO_PLAYER_STATE_PLAYING, PlayerState::Playing),
        ] {
            assert_eq!(c as i32, rust.value());
        }

        use zego_protocol::message::UpdateType;
        use zego_update_type::*;
        assert_eq!(ZEGO_UPDATE_TYPE_ADD as i32, UpdateType::Add.zego_value());
        assert_eq!(
            ZEGO_UPDATE_TYPE_DELETE as i32,
            UpdateType::Delete.zego_value()
        );

        use zego_stream_resource_mode::*;
        for (c, rust) in [
            (
                ZEGO_STREAM_RESOURCE_MODE_DEFAULT,
                StreamResourceMode::Default,
            ),
            (
                ZEGO_STREAM_RESOURCE_MODE_ONLY_CDN,
                StreamResourceMode::OnlyCdn,
            ),
            (
                ZEGO_STREAM_RESOURCE_MODE_ONLY_L3,
                StreamResourceMode::OnlyL3,
            ),
            (
                ZEGO_STREAM_RESOURCE_MODE_ONLY_RTC,
                StreamResourceMode::OnlyRtc,
            ),
            (
                ZEGO_STREAM_RESOURCE_MODE_CDN_PLUS,
                StreamResourceMode::CdnPlus,
            ),
            (ZEGO_STREAM_RESOURCE_MODE_CUSTOM, StreamResourceMode::Custom),
        ] {
            assert_eq!(StreamResourceMode::from_value(c as i32), Ok(rust));
        }

        use zego_publish_channel::*;
        for (c, rust) in [
            (ZEGO_PUBLISH_CHANNEL_MAIN, PublishChannel::Main),
            (ZEGO_PUBLISH_CHANNEL_AUX, PublishChannel::Aux),
            (ZEGO_PUBLISH_CHANNEL_THIRD, PublishChannel::Third),
            (ZEGO_PUBLISH_CHANNEL_FOURTH, PublishChannel::Fourth),
        ] {
            assert_eq!(PublishChannel::from_value(c as i32), Ok(rust));
        }

        use zego_engine_state::*;
        assert_eq!(ZEGO_ENGINE_STATE_START as i32, EngineState::Start.value());
        assert_eq!(ZEGO_ENGINE_STATE_STOP as i32, EngineState::Stop.value());

        use zego_video_frame_format::*;
        for (c, rust) in [
            (ZEGO_VIDEO_FRAME_FORMAT_UNKNOWN, VideoFrameFormat::Unknown),
            (ZEGO_VIDEO_FRAME_FORMAT_I420, VideoFrameFormat::I420),
            (ZEGO_VIDEO_FRAME_FORMAT_NV12, VideoFrameFormat::Nv12),
            (ZEGO_VIDEO_FRAME_FORMAT_NV21, VideoFrameFormat::Nv21),
            (ZEGO_VIDEO_FRAME_FORMAT_BGRA32, VideoFrameFormat::Bgra32),
            (ZEGO_VIDEO_FRAME_FORMAT_RGBA32, VideoFrameFormat::Rgba32),
            (ZEGO_VIDEO_FRAME_FORMAT_ARGB32, VideoFrameFormat::Argb32),
            (ZEGO_VIDEO_FRAME_FORMAT_ABGR32, VideoFrameFormat::Abgr32),
            (ZEGO_VIDEO_FRAME_FORMAT_I422, VideoFrameFormat::I422),
            (ZEGO_VIDEO_FRAME_FORMAT_BGR24, VideoFrameFormat::Bgr24),
            (ZEGO_VIDEO_FRAME_FORMAT_RGB24, VideoFrameFormat::Rgb24),
        ] {
            assert_eq!(VideoFrameFormat::from_value(c as i32), Ok(rust));
        }

        use zego_view_mode::*;
        for (c, rust) in [
            (ZEGO_VIEW_MODE_ASPECT_FIT, ViewMode::AspectFit),
            (ZEGO_VIEW_MODE_ASPECT_FILL, ViewMode::AspectFill),
            (ZEGO_VIEW_MODE_SCALE_TO_FILL, ViewMode::ScaleToFill),
        ] {
            assert_eq!(ViewMode::from_value(c as i32), Ok(rust));
        }

        use zego_video_source_type::*;
        for (c, rust) in [
            (ZEGO_VIDEO_SOURCE_TYPE_SYNTHETIC, VideoSourceType::Synthetic),
            (ZEGO_VIDEO_SOURCE_TYPE_CUSTOM, VideoSourceType::Custom),
            (ZEGO_VIDEO_SOURCE_TYPE_CAMERA, VideoSourceType::Camera),
        ] {
            assert_eq!(VideoSourceType::from_value(c as i32), Ok(rust));
        }

        use zego_sei_type::*;
        for (c, rust) in [
            (ZEGO_SEI_TYPE_ZEGO_DEFINED, SeiType::ZegoDefined),
            (ZEGO_SEI_TYPE_USER_UNREGISTER, SeiType::UserUnregister),
        ] {
            assert_eq!(SeiType::from_value(c as i32), Ok(rust));
        }

        use zego_audio_source_type::*;
        for (c, rust) in [
            (ZEGO_AUDIO_SOURCE_TYPE_SYNTHETIC, AudioSourceType::Synthetic),
            (
                ZEGO_AUDIO_SOURCE_TYPE_MICROPHONE,
                AudioSourceType::Microphone,
            ),
            (ZEGO_AUDIO_SOURCE_TYPE_NONE, AudioSourceType::None),
        ] {
            assert_eq!(AudioSourceType::from_value(c as i32), Ok(rust));
        }
    }
}
