//! The engine: the Rust API under the C ABI. One engine = one app identity on one server; several engines may live
//! in one process (one can be the anchor and another the audience).
//!
//! Every method validates its input and state synchronously and returns a ZEGO error code at once; the work that
//! needs the network (login, publish, play) continues on the engine's runtime and reports through [`Event`]s on the
//! callback thread. Methods never block on the network and may be called from inside a callback.
//!
//! Threads an engine owns, all joined by [`Engine::destroy`]: a tokio runtime (signaling, WebRTC transport), the
//! callback thread, and per channel/stream media threads (capture, encode, decode) so codec work never runs on the
//! runtime.

use zego_media::frame::VideoFrame;
use zego_protocol::error::ErrorCode;
use zego_protocol::message::User;

use crate::config::{
    AudioConfig, AudioSourceType, EngineProfile, PlayerConfig, PublishChannel, RoomConfig, VideoConfig, VideoSourceType,
};
use crate::event::EventSink;

pub type Result<T> = std::result::Result<T, ErrorCode>;

pub struct Engine {}

impl Engine {
    /// Creates an engine. Fails with 1001004 for app_id 0, 1001005 for an app_sign that is neither empty nor 64 hex
    /// characters, 1001006 for a server URL that is not `ws://host:port/path`.
    pub fn create(profile: EngineProfile, sink: EventSink) -> Result<Engine> {
        let _ = (profile, sink);
        todo!()
    }

    /// Stops everything (publishing, playing, preview, the room) and joins every thread the engine started.
    /// Safe while publishing and playing. From inside a callback, it finishes the teardown without joining the
    /// callback thread itself.
    pub fn destroy(self) {
        todo!()
    }

    // ----- room -----

    /// Logs in to `room_id` as `user`. 1002001 when already in a room. Progress: RoomStateUpdate/RoomStateChanged.
    pub fn login_room(&self, room_id: &str, user: User, config: RoomConfig) -> Result<()> {
        let _ = (room_id, user, config);
        todo!()
    }

    /// Logs out of the room (or of every room when `room_id` is None), stopping this engine's publishing and playing.
    pub fn logout_room(&self, room_id: Option<&str>) -> Result<()> {
        let _ = room_id;
        todo!()
    }

    pub fn renew_token(&self, room_id: &str, token: &str) -> Result<()> {
        let _ = (room_id, token);
        todo!()
    }

    /// Result: RoomSetRoomExtraInfoResult with the returned seq.
    pub fn set_room_extra_info(&self, room_id: &str, key: &str, value: &str) -> Result<i32> {
        let _ = (room_id, key, value);
        todo!()
    }

    /// Result: ImSendBroadcastMessageResult with the returned seq.
    pub fn send_broadcast_message(&self, room_id: &str, message: &str) -> Result<i32> {
        let _ = (room_id, message);
        todo!()
    }

    /// To the listed users, or everyone else in the room when empty. Result: ImSendCustomCommandResult.
    pub fn send_custom_command(&self, room_id: &str, command: &str, to_user_ids: &[String]) -> Result<i32> {
        let _ = (room_id, command, to_user_ids);
        todo!()
    }

    // ----- publishing -----

    pub fn start_preview(&self, channel: PublishChannel) -> Result<()> {
        let _ = channel;
        todo!()
    }

    pub fn stop_preview(&self, channel: PublishChannel) -> Result<()> {
        let _ = channel;
        todo!()
    }

    /// 1000002 when not logged in, 1003023 when the channel already publishes. Progress: PublisherStateUpdate
    /// (PUBLISH_REQUESTING, then PUBLISHING, or NO_PUBLISH with 1003028 / 1003072 / ...).
    pub fn start_publishing(&self, stream_id: &str, channel: PublishChannel) -> Result<()> {
        let _ = (stream_id, channel);
        todo!()
    }

    pub fn stop_publishing(&self, channel: PublishChannel) -> Result<()> {
        let _ = channel;
        todo!()
    }

    /// Result: PublisherUpdateStreamExtraInfoResult with the returned seq.
    pub fn set_stream_extra_info(&self, extra_info: &str, channel: PublishChannel) -> Result<i32> {
        let _ = (extra_info, channel);
        todo!()
    }

    pub fn mute_publish_stream_audio(&self, mute: bool, channel: PublishChannel) -> Result<()> {
        let _ = (mute, channel);
        todo!()
    }

    pub fn mute_publish_stream_video(&self, mute: bool, channel: PublishChannel) -> Result<()> {
        let _ = (mute, channel);
        todo!()
    }

    pub fn set_video_config(&self, config: VideoConfig, channel: PublishChannel) -> Result<()> {
        let _ = (config, channel);
        todo!()
    }

    pub fn video_config(&self, channel: PublishChannel) -> VideoConfig {
        let _ = channel;
        todo!()
    }

    pub fn set_audio_config(&self, config: AudioConfig, channel: PublishChannel) -> Result<()> {
        let _ = (config, channel);
        todo!()
    }

    /// Chooses the channel's video source (synthetic by default). Custom: CustomVideoCaptureStart/Stop tell the app
    /// when to push frames. Camera without the `devices` feature: 1000006.
    pub fn set_video_source(&self, source: VideoSourceType, channel: PublishChannel) -> Result<()> {
        let _ = (source, channel);
        todo!()
    }

    pub fn set_audio_source(&self, source: AudioSourceType, channel: PublishChannel) -> Result<()> {
        let _ = (source, channel);
        todo!()
    }

    /// A frame for a channel whose source is Custom.
    pub fn send_custom_video_capture_frame(&self, frame: VideoFrame, channel: PublishChannel) -> Result<()> {
        let _ = (frame, channel);
        todo!()
    }

    // ----- playing -----

    /// 1000002 when not logged in; 1004072 for resource modes with no path. Progress: PlayerStateUpdate
    /// (PLAY_REQUESTING, PLAYING; a stream that does not exist yet reports PLAY_REQUESTING with 1004002 and plays
    /// when it is published).
    pub fn start_playing(&self, stream_id: &str, config: PlayerConfig) -> Result<()> {
        let _ = (stream_id, config);
        todo!()
    }

    /// 1004011 when that stream is not being played.
    pub fn stop_playing(&self, stream_id: &str) -> Result<()> {
        let _ = stream_id;
        todo!()
    }

    /// 0..=200, 100 = as received.
    pub fn set_play_volume(&self, stream_id: &str, volume: u32) -> Result<()> {
        let _ = (stream_id, volume);
        todo!()
    }

    pub fn mute_play_stream_audio(&self, stream_id: &str, mute: bool) -> Result<()> {
        let _ = (stream_id, mute);
        todo!()
    }

    pub fn mute_play_stream_video(&self, stream_id: &str, mute: bool) -> Result<()> {
        let _ = (stream_id, mute);
        todo!()
    }
}
