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

mod core;
mod driver;
mod playing;
mod publishing;
mod teardown;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use zego_media::frame::VideoFrame;
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::message::{ClientMessage, ReplyResult, User};
use zego_protocol::{token04, validate};

use self::core::Core;
use crate::config::{
    AudioConfig, AudioSourceType, EngineProfile, PlayerConfig, PublishChannel, RoomConfig, SeiType,
    VideoConfig, VideoSourceType,
};
use crate::event::{CallbackThread, Event, EventSink};
use crate::room::{LoginParams, RequestError, RoomSession};
use crate::server_url::Servers;
use crate::transport::TransportConfig;

pub type Result<T> = std::result::Result<T, ErrorCode>;

/// Worker threads of an engine's runtime: signaling and WebRTC I/O are light; codecs run on their own threads.
const RUNTIME_WORKERS: usize = 2;
/// The name of the runtime's threads (teardown must not wait on itself from one of them).
const RUNTIME_THREAD_NAME: &str = "zego-rt";
/// Room and IM requests wait this long for the connection and the server's reply.
const ROOM_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Engine {
    core: Arc<Core>,
    /// Taken by teardown.
    runtime: Option<tokio::runtime::Runtime>,
    callback: Option<CallbackThread>,
}

/// How a failed room/IM request reads to the app.
fn request_error_code(e: RequestError) -> ErrorCode {
    match e {
        RequestError::NotConnected | RequestError::ConnectionLost | RequestError::TimedOut => {
            error::ROOM_DISCONNECTED
        }
    }
}

impl Engine {
    /// Creates an engine. Fails with 1001004 for app_id 0, 1001005 for an app_sign that is neither empty nor 64 hex
    /// characters, 1001006 for a server URL that is not `ws://host:port/path` (or a comma-separated list of up to
    /// 16 of them, the nodes of a cluster, tried in turn when a connection fails).
    pub fn create(profile: EngineProfile, sink: EventSink) -> Result<Engine> {
        if profile.app_id == 0 {
            return Err(error::ENGINE_APP_ID_INCORRECT);
        }
        let app_sign = match profile.app_sign.as_str() {
            "" => None,
            sign => Some(validate::app_sign(sign)?),
        };
        let transport = TransportConfig::for_servers(&Servers::parse(&profile.server)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_WORKERS)
            .thread_name(RUNTIME_THREAD_NAME)
            .enable_all()
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "could not start the engine runtime");
                error::ENGINE_INNER_ERROR
            })?;
        let callback = CallbackThread::start(sink).map_err(|e| {
            tracing::error!(error = %e, "could not start the callback thread");
            error::ENGINE_INNER_ERROR
        })?;
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let (session_tx, session_rx) = mpsc::unbounded_channel();
        let core = Arc::new(Core::new(
            profile,
            app_sign,
            transport,
            callback.sender(),
            runtime.handle().clone(),
            media_tx,
            session_tx,
        ));
        runtime.spawn(driver::run(Arc::downgrade(&core), media_rx, session_rx));
        tracing::info!(app_id = core.profile.app_id, server = %core.profile.server, "engine created");
        Ok(Engine {
            core,
            runtime: Some(runtime),
            callback: Some(callback),
        })
    }

    /// Stops everything (publishing, playing, preview, the room) and joins every thread the engine started.
    /// Safe while publishing and playing. From inside a callback, it finishes the teardown without joining the
    /// callback thread itself.
    pub fn destroy(self) {
        drop(self);
    }

    /// How long a broken connection is retried before ReconnectFailed (1002053): the original's advanced
    /// config `room_retry_time`. Default 20 minutes; applies to later logins. At least 1 s.
    pub fn set_reconnect_window(&self, window: Duration) -> Result<()> {
        if window < Duration::from_secs(1) {
            return Err(error::COMMON_INVALID_PARAMETER);
        }
        self.core.timing.lock().reconnect_window = window;
        Ok(())
    }

    // ----- room -----

    /// Logs in to `room_id` as `user`. 1002001 when already in a room. Progress: RoomStateUpdate/RoomStateChanged.
    pub fn login_room(&self, room_id: &str, user: User, config: RoomConfig) -> Result<()> {
        validate::room_id(room_id)?;
        validate::user_id(&user.user_id)?;
        validate::user_name(&user.user_name)?;
        validate::token(&config.token)?;
        if config.token.is_empty() && self.core.app_sign.is_none() {
            return Err(error::ROOM_NO_TOKEN_NO_APP_SIGN);
        }
        let mut state = self.core.state.lock();
        if self.core.live_room(&mut state).is_some() {
            return Err(error::ROOM_COUNT_EXCEED);
        }
        let params = LoginParams {
            servers: Arc::new(Servers::parse(&self.core.profile.server)?),
            app_id: self.core.profile.app_id,
            app_sign: self.core.app_sign,
            room_id: room_id.to_owned(),
            user,
            config,
            timing: *self.core.timing.lock(),
        };
        let session = RoomSession::start(
            self.core.next_session_id(),
            params,
            self.core.events.clone(),
            self.core.session_notices.clone(),
            &self.core.runtime,
        );
        state.room = Some(session);
        Ok(())
    }

    /// Logs out of the room (or of every room when `room_id` is None), stopping this engine's publishing and playing.
    pub fn logout_room(&self, room_id: Option<&str>) -> Result<()> {
        let mut state = self.core.state.lock();
        let Some(room) = state.room.clone() else {
            return match room_id {
                Some(_) => Err(error::ROOM_NOT_LOGGED_IN_THAT_ROOM),
                None => Ok(()),
            };
        };
        if room_id.is_some_and(|id| id != room.room_id()) {
            return Err(error::ROOM_NOT_LOGGED_IN_THAT_ROOM);
        }
        // The server ends the session's streams and plays with the logout itself.
        self.core.end_room(&mut state, error::SUCCESS);
        room.logout();
        drop(state);
        tracing::info!(room_id = room.room_id(), "logged out");
        self.core
            .runtime
            .spawn(async move { room.finished(Duration::from_secs(5)).await });
        Ok(())
    }

    /// The current room's session when `room_id` names it.
    fn room(&self, room_id: &str, wrong_room: ErrorCode) -> Result<Arc<RoomSession>> {
        let state = self.core.state.lock();
        state
            .room
            .clone()
            .filter(|r| r.room_id() == room_id)
            .ok_or(wrong_room)
    }

    /// Replaces the room's token. A token that is not a Token04 at all is refused at once (1002075 format,
    /// 1002079 version, 1002080 nonce); the server's own refusal (wrong user, expired, lost publish privilege,
    /// ...) arrives as DebugError with `func_name` "renew_token", as the original reports it.
    pub fn renew_token(&self, room_id: &str, token: &str) -> Result<()> {
        validate::token(token)?;
        if token.is_empty() {
            return Err(error::ROOM_TOKEN_FORMAT_ERROR);
        }
        token04::check_format(token)?;
        let room = self.room(room_id, error::ROOM_NOT_LOGGED_IN_THAT_ROOM)?;
        room.set_token(token);
        let events = self.core.events.clone();
        let token = token.to_owned();
        self.core.runtime.spawn(async move {
            let result = room
                .request(
                    |req_id| ClientMessage::RenewToken { req_id, token },
                    ROOM_REQUEST_TIMEOUT,
                )
                .await;
            let (code, info) = match result {
                Ok(reply) => (reply.code, reply.message),
                Err(e) => (request_error_code(e), e.to_string()),
            };
            if code != error::SUCCESS {
                tracing::warn!(code, %info, "renewing the token failed");
                events.send(Event::DebugError {
                    code,
                    func_name: "renew_token".into(),
                    info,
                });
            }
        });
        Ok(())
    }

    /// Result: RoomSetRoomExtraInfoResult with the returned seq.
    pub fn set_room_extra_info(&self, room_id: &str, key: &str, value: &str) -> Result<i32> {
        validate::room_extra_info(key, value)?;
        let room = self.room(room_id, error::ROOM_NOT_LOGGED_IN_THAT_ROOM)?;
        let seq = self.core.next_seq();
        let events = self.core.events.clone();
        let (key, value) = (key.to_owned(), value.to_owned());
        self.core.runtime.spawn(async move {
            let build = |req_id| ClientMessage::SetRoomExtraInfo {
                req_id,
                key: key.clone(),
                value,
            };
            let code = match room.request(build, ROOM_REQUEST_TIMEOUT).await {
                Ok(reply) => reply.code,
                Err(e) => request_error_code(e),
            };
            events.send(Event::RoomSetRoomExtraInfoResult {
                error_code: code,
                room_id: room.room_id().to_owned(),
                key,
                seq,
            });
        });
        Ok(seq)
    }

    /// Result: ImSendBroadcastMessageResult with the returned seq.
    pub fn send_broadcast_message(&self, room_id: &str, message: &str) -> Result<i32> {
        validate::broadcast_message(message)?;
        let room = self.room(room_id, error::IM_WRONG_ROOM)?;
        let seq = self.core.next_seq();
        let events = self.core.events.clone();
        let message = message.to_owned();
        self.core.runtime.spawn(async move {
            let result = room
                .request(
                    |req_id| ClientMessage::SendBroadcastMessage { req_id, message },
                    ROOM_REQUEST_TIMEOUT,
                )
                .await;
            let (code, message_id) = match result {
                Ok(reply) => match reply.result {
                    Some(ReplyResult::BroadcastMessage { message_id }) => (reply.code, message_id),
                    _ => (reply.code, 0),
                },
                Err(e) => (request_error_code(e), 0),
            };
            events.send(Event::ImSendBroadcastMessageResult {
                room_id: room.room_id().to_owned(),
                error_code: code,
                message_id,
                seq,
            });
        });
        Ok(seq)
    }

    /// To the listed users, or everyone else in the room when empty. Result: ImSendCustomCommandResult.
    pub fn send_custom_command(
        &self,
        room_id: &str,
        command: &str,
        to_user_ids: &[String],
    ) -> Result<i32> {
        validate::custom_command(command)?;
        for user_id in to_user_ids {
            validate::user_id(user_id)?;
        }
        let room = self.room(room_id, error::IM_WRONG_ROOM)?;
        let seq = self.core.next_seq();
        let events = self.core.events.clone();
        let (command, to_user_ids) = (command.to_owned(), to_user_ids.to_vec());
        self.core.runtime.spawn(async move {
            let build = |req_id| ClientMessage::SendCustomCommand {
                req_id,
                command,
                to_user_ids,
            };
            let code = match room.request(build, ROOM_REQUEST_TIMEOUT).await {
                Ok(reply) => reply.code,
                Err(e) => request_error_code(e),
            };
            events.send(Event::ImSendCustomCommandResult {
                room_id: room.room_id().to_owned(),
                error_code: code,
                seq,
            });
        });
        Ok(seq)
    }

    // ----- publishing -----

    pub fn start_preview(&self, channel: PublishChannel) -> Result<()> {
        let mut state = self.core.state.lock();
        let slot = self.core.publisher(&mut state, channel);
        slot.publisher.start_preview()?;
        state.previews.insert(channel);
        self.core.update_engine_state(&mut state);
        Ok(())
    }

    pub fn stop_preview(&self, channel: PublishChannel) -> Result<()> {
        let mut state = self.core.state.lock();
        if !state.previews.remove(&channel) {
            return Ok(());
        }
        if let Some(slot) = state.publishers.get(&channel) {
            slot.publisher.stop_preview();
        }
        self.core.update_engine_state(&mut state);
        Ok(())
    }

    /// 1000002 when not logged in, 1003023 when the channel already publishes. Progress: PublisherStateUpdate
    /// (PUBLISH_REQUESTING, then PUBLISHING, or NO_PUBLISH with 1003028 / 1003072 / ...).
    pub fn start_publishing(&self, stream_id: &str, channel: PublishChannel) -> Result<()> {
        validate::stream_id(stream_id)?;
        let mut state = self.core.state.lock();
        if self.core.live_room(&mut state).is_none() {
            return Err(error::COMMON_NOT_LOGGED_IN);
        }
        if state.publishes.contains_key(&channel) {
            return Err(error::PUBLISHER_CHANNEL_ALREADY_PUBLISHING);
        }
        if state.publishes.values().any(|p| p.stream_id == stream_id) {
            // Another channel of this engine publishes it; publishing it again would replace that one.
            return Err(error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED);
        }
        let slot = self.core.publisher(&mut state, channel);
        let (epoch, inbox, cancel) = self.core.add_publish(&mut state, channel, stream_id);
        let task = self.core.runtime.spawn(publishing::run(
            self.core.clone(),
            channel,
            stream_id.to_owned(),
            epoch,
            inbox,
            cancel,
            slot,
        ));
        self.core.track_task(&mut state, task);
        tracing::info!(stream_id, ?channel, "start publishing");
        Ok(())
    }

    pub fn stop_publishing(&self, channel: PublishChannel) -> Result<()> {
        let mut state = self.core.state.lock();
        let Some(stream_id) = state.publishes.get(&channel).map(|p| p.stream_id.clone()) else {
            return Ok(());
        };
        if let Some(room) = &state.room {
            let stream_id = stream_id.clone();
            room.send_or_defer(|req_id| ClientMessage::StopPublish { req_id, stream_id });
        }
        self.core
            .end_publish(&mut state, channel, None, error::SUCCESS);
        tracing::info!(stream_id, ?channel, "stop publishing");
        Ok(())
    }

    /// Result: PublisherUpdateStreamExtraInfoResult with the returned seq.
    pub fn set_stream_extra_info(&self, extra_info: &str, channel: PublishChannel) -> Result<i32> {
        validate::stream_extra_info(extra_info)?;
        let seq = self.core.next_seq();
        let mut state = self.core.state.lock();
        state.extra_info.insert(channel, extra_info.to_owned());
        let publishing = state.publishes.get(&channel).map(|p| p.stream_id.clone());
        let (Some(stream_id), Some(room)) = (publishing, state.room.clone()) else {
            // Kept for the channel's next publish.
            self.core
                .events
                .send(Event::PublisherUpdateStreamExtraInfoResult {
                    error_code: error::SUCCESS,
                    seq,
                });
            return Ok(seq);
        };
        drop(state);
        let events = self.core.events.clone();
        let extra_info = extra_info.to_owned();
        self.core.runtime.spawn(async move {
            let build = |req_id| ClientMessage::SetStreamExtraInfo {
                req_id,
                stream_id,
                extra_info,
            };
            let code = match room.request(build, ROOM_REQUEST_TIMEOUT).await {
                Ok(reply) => reply.code,
                Err(e) => request_error_code(e),
            };
            events.send(Event::PublisherUpdateStreamExtraInfoResult {
                error_code: code,
                seq,
            });
        });
        Ok(seq)
    }

    pub fn mute_publish_stream_audio(&self, mute: bool, channel: PublishChannel) -> Result<()> {
        self.with_publisher(channel, |p| {
            p.mute_audio(mute);
            Ok(())
        })
    }

    pub fn mute_publish_stream_video(&self, mute: bool, channel: PublishChannel) -> Result<()> {
        self.with_publisher(channel, |p| {
            p.mute_video(mute);
            Ok(())
        })
    }

    pub fn set_video_config(&self, config: VideoConfig, channel: PublishChannel) -> Result<()> {
        config.validate()?;
        self.with_publisher(channel, |p| p.set_video_config(config))
    }

    pub fn video_config(&self, channel: PublishChannel) -> VideoConfig {
        self.with_publisher(channel, |p| Ok(p.video_config()))
            .unwrap_or_default()
    }

    pub fn set_audio_config(&self, config: AudioConfig, channel: PublishChannel) -> Result<()> {
        config.validate()?;
        self.with_publisher(channel, |p| p.set_audio_config(config))
    }

    /// Chooses the channel's video source (synthetic by default). Custom: CustomVideoCaptureStart/Stop tell the app
    /// when to push frames. Camera without the `devices` feature: 1000006.
    pub fn set_video_source(&self, source: VideoSourceType, channel: PublishChannel) -> Result<()> {
        self.with_publisher(channel, |p| p.set_video_source(source))
    }

    pub fn set_audio_source(&self, source: AudioSourceType, channel: PublishChannel) -> Result<()> {
        self.with_publisher(channel, |p| p.set_audio_source(source))
    }

    /// A frame for a channel whose source is Custom.
    pub fn send_custom_video_capture_frame(
        &self,
        frame: VideoFrame,
        channel: PublishChannel,
    ) -> Result<()> {
        self.with_publisher(channel, |p| p.send_custom_video_frame(frame))
    }

    /// How later `send_sei` calls write their data.
    pub fn set_sei_config(&self, kind: SeiType) {
        self.core.state.lock().sei_type = kind;
    }

    /// Sends `data` with the next video frame of the stream `channel` publishes: 1003043 empty, 1003044 longer than
    /// 4096 bytes, 1000008 a user-unregistered message shorter than its UUID, 1003001 the channel does not publish,
    /// 1003045 more than 30 in a second.
    pub fn send_sei(&self, data: &[u8], channel: PublishChannel) -> Result<()> {
        let (kind, slot) = {
            let mut state = self.core.state.lock();
            let kind = state.sei_type;
            crate::publisher::check_sei(data, kind)?;
            if !state.publishes.contains_key(&channel) {
                return Err(error::PUBLISHER_NO_DATA);
            }
            (kind, self.core.publisher(&mut state, channel))
        };
        slot.publisher.send_sei(data, kind)
    }

    /// Runs `f` on the channel's publisher (created on first use) without holding the engine lock.
    fn with_publisher<T>(
        &self,
        channel: PublishChannel,
        f: impl FnOnce(&crate::publisher::Publisher) -> Result<T>,
    ) -> Result<T> {
        let slot = self.core.publisher(&mut self.core.state.lock(), channel);
        f(&slot.publisher)
    }

    // ----- playing -----

    /// 1000002 when not logged in; 1004072 for resource modes with no path. Progress: PlayerStateUpdate
    /// (PLAY_REQUESTING, PLAYING; a stream that does not exist yet reports PLAY_REQUESTING with 1004002 and plays
    /// when it is published).
    pub fn start_playing(&self, stream_id: &str, config: PlayerConfig) -> Result<()> {
        validate::stream_id(stream_id)?;
        config.validate()?;
        let mut state = self.core.state.lock();
        if self.core.live_room(&mut state).is_none() {
            return Err(error::COMMON_NOT_LOGGED_IN);
        }
        if state.plays.contains_key(stream_id) {
            return Ok(()); // Already playing (or asking to): nothing changes.
        }
        let (epoch, inbox, cancel) = self.core.add_play(&mut state, stream_id);
        let task = self.core.runtime.spawn(playing::run(
            self.core.clone(),
            stream_id.to_owned(),
            epoch,
            config,
            inbox,
            cancel,
        ));
        self.core.track_task(&mut state, task);
        tracing::info!(stream_id, ?config, "start playing");
        Ok(())
    }

    /// 1004011 when that stream is not being played.
    pub fn stop_playing(&self, stream_id: &str) -> Result<()> {
        validate::stream_id(stream_id)?;
        let mut state = self.core.state.lock();
        if !state.plays.contains_key(stream_id) {
            return Err(error::PLAYER_STREAM_NOT_PLAYED);
        }
        if let Some(room) = &state.room {
            let stream_id = stream_id.to_owned();
            room.send_or_defer(|req_id| ClientMessage::StopPlay { req_id, stream_id });
        }
        self.core
            .end_play(&mut state, stream_id, None, error::SUCCESS);
        tracing::info!(stream_id, "stop playing");
        Ok(())
    }

    /// 0..=200, 100 = as received.
    pub fn set_play_volume(&self, stream_id: &str, volume: u32) -> Result<()> {
        if volume > 200 {
            return Err(error::COMMON_INVALID_PARAMETER);
        }
        self.with_play(stream_id, |entry| {
            entry.volume = volume;
            if let Some(player) = &entry.player {
                player.set_volume(volume);
            }
        })
    }

    pub fn mute_play_stream_audio(&self, stream_id: &str, mute: bool) -> Result<()> {
        self.with_play(stream_id, |entry| {
            entry.mute_audio = mute;
            if let Some(player) = &entry.player {
                player.mute_audio(mute);
            }
        })
    }

    pub fn mute_play_stream_video(&self, stream_id: &str, mute: bool) -> Result<()> {
        self.with_play(stream_id, |entry| {
            entry.mute_video = mute;
            if let Some(player) = &entry.player {
                player.mute_video(mute);
            }
        })
    }

    fn with_play(&self, stream_id: &str, f: impl FnOnce(&mut core::PlayEntry)) -> Result<()> {
        validate::stream_id(stream_id)?;
        let mut state = self.core.state.lock();
        let entry = state
            .plays
            .get_mut(stream_id)
            .ok_or(error::PLAYER_STREAM_NOT_PLAYED)?;
        f(entry);
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        teardown::run(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Engine>();
    }
}
