//! Plain configuration types of the engine, with the ZEGO enum values.

use zego_protocol::error::{self, ErrorCode};

/// Defines a ZEGO enum: Rust variants with their wire values and a checked conversion from the C integer.
macro_rules! zego_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $($(#[$vmeta])* $variant = $value),* }

        impl $name {
            /// The variant for a ZEGO value, or `COMMON_INVALID_PARAMETER`.
            pub fn from_value(value: i32) -> Result<Self, ErrorCode> {
                match value {
                    $($value => Ok($name::$variant),)*
                    _ => Err(error::COMMON_INVALID_PARAMETER),
                }
            }
            pub fn value(self) -> i32 { self as i32 }
        }
    };
}

zego_enum!(Scenario {
    General = 0,
    Communication = 1,
    Live = 2,
    Default = 3,
    StandardVideoCall = 4,
    HighQualityVideoCall = 5,
    StandardChatroom = 6,
    HighQualityChatroom = 7,
    Broadcast = 8,
    Karaoke = 9,
    StandardVoiceCall = 10,
});

zego_enum!(RoomState { Disconnected = 0, Connecting = 1, Connected = 2 });

zego_enum!(RoomStateChangedReason {
    Logining = 0,
    Logined = 1,
    LoginFailed = 2,
    Reconnecting = 3,
    Reconnected = 4,
    ReconnectFailed = 5,
    KickOut = 6,
    Logout = 7,
    LogoutFailed = 8,
});

zego_enum!(PublisherState { NoPublish = 0, PublishRequesting = 1, Publishing = 2 });

zego_enum!(PlayerState { NoPlay = 0, PlayRequesting = 1, Playing = 2 });

zego_enum!(StreamResourceMode {
    Default = 0,
    OnlyCdn = 1,
    OnlyL3 = 2,
    OnlyRtc = 3,
    CdnPlus = 4,
    Custom = 5,
});

zego_enum!(PublishChannel { Main = 0, Aux = 1, Third = 2, Fourth = 3 });

zego_enum!(EngineState { Start = 0, Stop = 1 });

zego_enum!(VideoFrameFormat {
    Unknown = 0,
    I420 = 1,
    Nv12 = 2,
    Nv21 = 3,
    Bgra32 = 4,
    Rgba32 = 5,
    Argb32 = 6,
    Abgr32 = 7,
    I422 = 8,
    Bgr24 = 9,
    Rgb24 = 10,
});

zego_enum!(ViewMode { AspectFit = 0, AspectFill = 1, ScaleToFill = 2 });

zego_enum!(
    /// Where a channel's video comes from.
    VideoSourceType {
    /// The built-in synthetic camera: a moving test pattern with the capture time drawn into the pixels.
    Synthetic = 0,
    /// Frames the app pushes with `send_custom_video_capture_frame`.
    Custom = 1,
    /// The first real camera (needs the `devices` feature).
    Camera = 2,
});

zego_enum!(
    /// Where a channel's audio comes from.
    AudioSourceType {
    /// The built-in synthetic microphone: a 440 Hz tone, louder for the first 100 ms of every second (a time mark
    /// for measuring audio latency and A/V sync).
    Synthetic = 0,
    /// The default real microphone (needs the `devices` feature).
    Microphone = 1,
    /// No audio is published.
    None = 2,
});

zego_enum!(
    /// How `send_sei` writes the app's data into the video.
    #[derive(Default)]
    SeiType {
    /// ZEGO's own SEI payload type (243): the data as given.
    #[default]
    ZegoDefined = 0,
    /// H.264 `user_data_unregistered` (payload type 5): the data must begin with a 16-byte UUID.
    UserUnregister = 1,
});

/// What `zego_engine_create` takes.
#[derive(Debug, Clone)]
pub struct EngineProfile {
    pub app_id: u32,
    /// 64 hex characters; may be empty when every login uses a token.
    pub app_sign: String,
    pub scenario: Scenario,
    /// The signaling URL of the server, e.g. `ws://127.0.0.1:8080/ws`; or the URLs of the nodes of a cluster,
    /// separated by commas, tried in turn when a connection fails (docs/cluster.md).
    pub server: String,
}

/// Login options.
#[derive(Debug, Clone, Default)]
pub struct RoomConfig {
    /// 0 = no limit.
    pub max_member_count: u32,
    pub is_user_status_notify: bool,
    /// Token04; empty to log in with the app_sign.
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoConfig {
    pub capture_width: u32,
    pub capture_height: u32,
    pub encode_width: u32,
    pub encode_height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Seconds between keyframes; keyframes are also sent whenever a player asks.
    pub keyframe_interval_s: u32,
}

impl Default for VideoConfig {
    /// 360p at 15 fps and 600 kb/s, as the original's default.
    fn default() -> Self {
        VideoConfig {
            capture_width: 640,
            capture_height: 360,
            encode_width: 640,
            encode_height: 360,
            fps: 15,
            bitrate_kbps: 600,
            keyframe_interval_s: 2,
        }
    }
}

impl VideoConfig {
    /// Checks ranges: even sizes from 16x16 to 3840x2160, 1..=60 fps, 10..=20000 kb/s.
    pub fn validate(&self) -> Result<(), ErrorCode> {
        let size_ok = |w: u32, h: u32| {
            (16..=3840).contains(&w) && (16..=2160).contains(&h) && w % 2 == 0 && h % 2 == 0
        };
        if !size_ok(self.capture_width, self.capture_height)
            || !size_ok(self.encode_width, self.encode_height)
            || !(1..=60).contains(&self.fps)
            || !(10..=20_000).contains(&self.bitrate_kbps)
            || self.keyframe_interval_s > 60
        {
            return Err(error::COMMON_INVALID_PARAMETER);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioConfig {
    pub bitrate_kbps: u32,
    /// 1 or 2.
    pub channels: u16,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            bitrate_kbps: 48,
            channels: 1,
        }
    }
}

impl AudioConfig {
    pub fn validate(&self) -> Result<(), ErrorCode> {
        if !(6..=510).contains(&self.bitrate_kbps) || !(1..=2).contains(&self.channels) {
            return Err(error::COMMON_INVALID_PARAMETER);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerConfig {
    pub resource_mode: StreamResourceMode,
}

impl Default for PlayerConfig {
    fn default() -> Self {
        PlayerConfig {
            resource_mode: StreamResourceMode::Default,
        }
    }
}

impl PlayerConfig {
    /// ONLY_L3, ONLY_RTC and DEFAULT (which picks the real-time path) have a path; CDN modes do not.
    pub fn validate(&self) -> Result<(), ErrorCode> {
        match self.resource_mode {
            StreamResourceMode::Default
            | StreamResourceMode::OnlyL3
            | StreamResourceMode::OnlyRtc => Ok(()),
            _ => Err(error::PLAYER_RESOURCE_MODE_UNSUPPORTED),
        }
    }
}
