//! What every part of an engine shares: its identity, its event sender, its runtime handle, and the one lock
//! over its state (room, publish channels, played streams).
//!
//! The lock is never held across an await or while app code runs. State events (publisher/player state, engine
//! state) are sent while it is held, and so are the signaling messages that start or stop a stream, so the app
//! and the server see starts and stops in the order they were decided, and nothing about a stream after it was
//! stopped.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zego_protocol::error::ErrorCode;
use zego_protocol::message::ClientMessage;

use crate::config::{
    EngineProfile, EngineState, PlayerConfig, PlayerState, PublishChannel, PublisherState, SeiType,
};
use crate::event::{Event, EventSender};
use crate::player::Player;
use crate::publisher::Publisher;
use crate::room::{Notice, PendingReply, RequestError, RoomSession, SessionTiming, EMPTY_JSON};
use crate::transport::{MediaNotice, TransportConfig};

/// What a publish or play task hears about its stream, in the order it happened.
#[derive(Debug, Clone)]
pub(crate) enum StreamEvent {
    /// Logged in again. `lost`: the server started a new session, so it knows nothing of this stream any more.
    /// `listed`: the room lists the stream (a stream that ended while the connection was down is not).
    Connected { lost: bool, listed: bool, seq: u64 },
    /// A waiting play's stream is published now; this is the answer.
    Started { sdp: String, seq: u64 },
    /// The played stream stopped being published.
    Stopped { code: u32, seq: u64 },
    /// The media transport broke after it had connected.
    TransportFailed,
}

/// One publish channel's publisher, and the turn its publish tasks take: a new publish of the channel waits
/// until the previous one has closed its transport.
pub(crate) struct PublisherSlot {
    pub publisher: Publisher,
    pub turn: tokio::sync::Mutex<()>,
}

pub(crate) struct PublishEntry {
    pub stream_id: String,
    pub epoch: u64,
    pub inbox: mpsc::UnboundedSender<StreamEvent>,
    pub cancel: CancellationToken,
    last: (PublisherState, ErrorCode),
}

pub(crate) struct PlayEntry {
    pub epoch: u64,
    pub inbox: mpsc::UnboundedSender<StreamEvent>,
    pub cancel: CancellationToken,
    /// The player of the current attempt.
    pub player: Option<Arc<Player>>,
    /// Settings each new player of this stream starts with.
    pub volume: u32,
    pub mute_audio: bool,
    pub mute_video: bool,
    last: (PlayerState, ErrorCode),
}

#[derive(Default)]
pub(crate) struct State {
    pub room: Option<Arc<RoomSession>>,
    pub publishers: HashMap<PublishChannel, Arc<PublisherSlot>>,
    pub publishes: HashMap<PublishChannel, PublishEntry>,
    pub plays: HashMap<String, PlayEntry>,
    pub previews: HashSet<PublishChannel>,
    /// Stream extra info per channel, sent with each publish.
    pub extra_info: HashMap<PublishChannel, String>,
    /// How `send_sei` writes data, for every channel.
    pub sei_type: SeiType,
    /// Publish and play tasks, joined at destroy.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Whether EngineStateUpdate(Start) was the last engine state told.
    started: bool,
    next_epoch: u64,
}

pub(crate) struct Core {
    pub profile: EngineProfile,
    pub app_sign: Option<[u8; 32]>,
    pub events: EventSender,
    pub runtime: tokio::runtime::Handle,
    pub transport: TransportConfig,
    pub media_notices: mpsc::UnboundedSender<MediaNotice>,
    pub session_notices: mpsc::UnboundedSender<Notice>,
    pub timing: Mutex<SessionTiming>,
    pub state: Mutex<State>,
    next_seq: AtomicI32,
    next_session: AtomicU64,
}

impl Core {
    pub fn new(
        profile: EngineProfile,
        app_sign: Option<[u8; 32]>,
        transport: TransportConfig,
        events: EventSender,
        runtime: tokio::runtime::Handle,
        media_notices: mpsc::UnboundedSender<MediaNotice>,
        session_notices: mpsc::UnboundedSender<Notice>,
    ) -> Core {
        Core {
            transport,
            profile,
            app_sign,
            events,
            runtime,
            media_notices,
            session_notices,
            timing: Mutex::new(SessionTiming::default()),
            state: Mutex::new(State::default()),
            next_seq: AtomicI32::new(1),
            next_session: AtomicU64::new(1),
        }
    }

    /// The seq a room/IM call returns and its result event repeats.
    pub fn next_seq(&self) -> i32 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// The channel's publisher, created on first use.
    pub fn publisher(&self, state: &mut State, channel: PublishChannel) -> Arc<PublisherSlot> {
        state
            .publishers
            .entry(channel)
            .or_insert_with(|| {
                Arc::new(PublisherSlot {
                    publisher: Publisher::new(
                        channel,
                        self.events.clone(),
                        self.media_notices.clone(),
                        self.runtime.clone(),
                        self.transport.clone(),
                    ),
                    turn: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    pub fn new_player(&self, stream_id: &str, config: PlayerConfig) -> Player {
        Player::new(
            stream_id,
            config,
            self.events.clone(),
            self.media_notices.clone(),
            self.runtime.clone(),
            self.transport.clone(),
        )
    }

    /// Tells EngineStateUpdate when the first preview/publish/play starts or the last one stops.
    pub fn update_engine_state(&self, state: &mut State) {
        let active =
            !state.previews.is_empty() || !state.publishes.is_empty() || !state.plays.is_empty();
        if active != state.started {
            state.started = active;
            let engine_state = if active {
                EngineState::Start
            } else {
                EngineState::Stop
            };
            self.events.send(Event::EngineStateUpdate {
                state: engine_state,
            });
        }
    }

    // ----- publishing -----

    /// Registers a publish of `channel` and tells PUBLISH_REQUESTING. The caller starts its task.
    pub fn add_publish(
        &self,
        state: &mut State,
        channel: PublishChannel,
        stream_id: &str,
    ) -> (u64, mpsc::UnboundedReceiver<StreamEvent>, CancellationToken) {
        state.next_epoch += 1;
        let epoch = state.next_epoch;
        let (inbox, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        state.publishes.insert(
            channel,
            PublishEntry {
                stream_id: stream_id.to_owned(),
                epoch,
                inbox,
                cancel: cancel.clone(),
                last: (PublisherState::NoPublish, 0),
            },
        );
        self.tell_publish(state, channel, PublisherState::PublishRequesting, 0);
        self.update_engine_state(state);
        (epoch, rx, cancel)
    }

    fn tell_publish(
        &self,
        state: &mut State,
        channel: PublishChannel,
        to: PublisherState,
        code: ErrorCode,
    ) {
        let Some(entry) = state.publishes.get_mut(&channel) else {
            return;
        };
        if entry.last == (to, code) {
            return;
        }
        entry.last = (to, code);
        self.events.send(Event::PublisherStateUpdate {
            stream_id: entry.stream_id.clone(),
            state: to,
            error_code: code,
            extended_data: EMPTY_JSON.to_owned(),
        });
    }

    /// A publish task's state change; ignored when that publish is no longer current.
    pub fn set_publish_state(
        &self,
        channel: PublishChannel,
        epoch: u64,
        to: PublisherState,
        code: ErrorCode,
    ) {
        let mut state = self.state.lock();
        if state
            .publishes
            .get(&channel)
            .is_some_and(|e| e.epoch == epoch)
        {
            self.tell_publish(&mut state, channel, to, code);
        }
    }

    /// Ends a publish: NO_PUBLISH with `code`. With `epoch`, only if that publish is still current.
    pub fn end_publish(
        &self,
        state: &mut State,
        channel: PublishChannel,
        epoch: Option<u64>,
        code: ErrorCode,
    ) -> bool {
        let current = state
            .publishes
            .get(&channel)
            .is_some_and(|e| epoch.is_none_or(|epoch| e.epoch == epoch));
        if !current {
            return false;
        }
        self.tell_publish(state, channel, PublisherState::NoPublish, code);
        let entry = state.publishes.remove(&channel).expect("checked above");
        entry.cancel.cancel();
        self.update_engine_state(state);
        true
    }

    /// Sends a Publish request for a current publish; `None` when it is no longer current.
    pub fn request_for_publish(
        &self,
        channel: PublishChannel,
        epoch: u64,
        build: impl FnOnce(u64) -> ClientMessage,
    ) -> Option<Result<PendingReply, RequestError>> {
        let state = self.state.lock();
        state.publishes.get(&channel).filter(|e| e.epoch == epoch)?;
        Some(state.room.as_ref()?.try_request(build))
    }

    pub fn session_for_publish(
        &self,
        channel: PublishChannel,
        epoch: u64,
    ) -> Option<Arc<RoomSession>> {
        let state = self.state.lock();
        state.publishes.get(&channel).filter(|e| e.epoch == epoch)?;
        state.room.clone()
    }

    // ----- playing -----

    pub fn add_play(
        &self,
        state: &mut State,
        stream_id: &str,
    ) -> (u64, mpsc::UnboundedReceiver<StreamEvent>, CancellationToken) {
        state.next_epoch += 1;
        let epoch = state.next_epoch;
        let (inbox, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        state.plays.insert(
            stream_id.to_owned(),
            PlayEntry {
                epoch,
                inbox,
                cancel: cancel.clone(),
                player: None,
                volume: 100,
                mute_audio: false,
                mute_video: false,
                last: (PlayerState::NoPlay, 0),
            },
        );
        self.tell_play(state, stream_id, PlayerState::PlayRequesting, 0);
        self.update_engine_state(state);
        (epoch, rx, cancel)
    }

    fn tell_play(&self, state: &mut State, stream_id: &str, to: PlayerState, code: ErrorCode) {
        let Some(entry) = state.plays.get_mut(stream_id) else {
            return;
        };
        if entry.last == (to, code) {
            return;
        }
        entry.last = (to, code);
        self.events.send(Event::PlayerStateUpdate {
            stream_id: stream_id.to_owned(),
            state: to,
            error_code: code,
            extended_data: EMPTY_JSON.to_owned(),
        });
    }

    pub fn set_play_state(&self, stream_id: &str, epoch: u64, to: PlayerState, code: ErrorCode) {
        let mut state = self.state.lock();
        if state.plays.get(stream_id).is_some_and(|e| e.epoch == epoch) {
            self.tell_play(&mut state, stream_id, to, code);
        }
    }

    /// Ends a play: NO_PLAY with `code`. With `epoch`, only if that play is still current.
    pub fn end_play(
        &self,
        state: &mut State,
        stream_id: &str,
        epoch: Option<u64>,
        code: ErrorCode,
    ) -> bool {
        let current = state
            .plays
            .get(stream_id)
            .is_some_and(|e| epoch.is_none_or(|epoch| e.epoch == epoch));
        if !current {
            return false;
        }
        self.tell_play(state, stream_id, PlayerState::NoPlay, code);
        let entry = state.plays.remove(stream_id).expect("checked above");
        entry.cancel.cancel();
        self.update_engine_state(state);
        true
    }

    pub fn request_for_play(
        &self,
        stream_id: &str,
        epoch: u64,
        build: impl FnOnce(u64) -> ClientMessage,
    ) -> Option<Result<PendingReply, RequestError>> {
        let state = self.state.lock();
        state.plays.get(stream_id).filter(|e| e.epoch == epoch)?;
        Some(state.room.as_ref()?.try_request(build))
    }

    pub fn session_for_play(&self, stream_id: &str, epoch: u64) -> Option<Arc<RoomSession>> {
        let state = self.state.lock();
        state.plays.get(stream_id).filter(|e| e.epoch == epoch)?;
        state.room.clone()
    }

    /// Makes `player` the current player of a play, with the play's volume and mutes. False when stale.
    pub fn install_player(&self, stream_id: &str, epoch: u64, player: &Arc<Player>) -> bool {
        let mut state = self.state.lock();
        let Some(entry) = state.plays.get_mut(stream_id).filter(|e| e.epoch == epoch) else {
            return false;
        };
        player.set_volume(entry.volume);
        player.mute_audio(entry.mute_audio);
        player.mute_video(entry.mute_video);
        entry.player = Some(player.clone());
        true
    }

    // ----- the room -----

    /// The room went away without a logout (login failed, kicked out, reconnecting gave up): every publish and
    /// play ends with the room's code.
    pub fn end_room(&self, state: &mut State, code: ErrorCode) {
        state.room = None;
        let channels: Vec<PublishChannel> = state.publishes.keys().copied().collect();
        for channel in channels {
            self.end_publish(state, channel, None, code);
        }
        let streams: Vec<String> = state.plays.keys().cloned().collect();
        for stream_id in streams {
            self.end_play(state, &stream_id, None, code);
        }
    }

    /// The room, unless its session ended on its own; one that did is cleared away here, ending its streams,
    /// in case the app acts on the end before the engine's own notice of it is handled.
    pub fn live_room(&self, state: &mut State) -> Option<Arc<RoomSession>> {
        let room = state.room.clone()?;
        match room.ended_with() {
            None => Some(room),
            Some(code) => {
                self.end_room(state, code);
                None
            }
        }
    }

    /// Forgets tasks that have finished, so the list stays short on long-running engines.
    pub fn track_task(&self, state: &mut State, task: tokio::task::JoinHandle<()>) {
        state.tasks.retain(|t| !t.is_finished());
        state.tasks.push(task);
    }
}
