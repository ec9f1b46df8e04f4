"""The Engine: one identity in one room, publishing and playing streams."""

import atexit
import ctypes
import dataclasses
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, TypeVar, Union

from . import _dispatch, _library, _native
from ._types import (
    AudioConfig,
    AudioFrameParam,
    AudioSourceType,
    BroadcastMessageInfo,
    EngineProfile,
    EngineState,
    ErrorCode,
    LogLevel,
    PlayerConfig,
    PlayerState,
    PlayStreamQuality,
    PublishChannel,
    PublisherState,
    PublishStreamQuality,
    RoomConfig,
    RoomExtraInfo,
    RoomState,
    RoomStateChangedReason,
    Scenario,
    SeiType,
    Stream,
    UpdateType,
    User,
    VideoConfig,
    VideoFrameFormat,
    VideoFrameParam,
    VideoSourceType,
    _c_text,
    _text,
)
from .errors import ZegoError

F = TypeVar("F", bound=Callable[..., Any])

_MAIN = PublishChannel.MAIN


def _lib() -> Any:
    return _library.load()


def _check(code: int, function: str) -> None:
    if code != 0:
        raise ZegoError(code, error_message(code), function)


def _optional_text(value: Optional[str]) -> Optional[bytes]:
    return None if value is None else _c_text(value)


def version() -> str:
    """The SDK version, e.g. "0.1.0"."""
    return _text(_lib().zego_get_version())


def error_message(code: int) -> str:
    """The SDK's message for an error code."""
    return _text(_lib().zego_get_error_message(int(code)))


def set_log_level(level: LogLevel) -> None:
    """Lets log lines at `level` and more severe through (process-wide)."""
    _check(_lib().zego_set_log_level(int(level)), "zego_set_log_level")


def set_log_file(path: Optional[str]) -> None:
    """Appends log lines to the file at `path`, or stops when `path` is None (process-wide)."""
    _check(_lib().zego_set_log_file(None if path is None else path.encode()), "zego_set_log_file")


# Engines not destroyed yet. At interpreter exit (an uncaught exception included) they are destroyed before the
# interpreter finalizes: a callback thread calling into a finalizing interpreter would be killed inside the SDK.
_live_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@atexit.register
def _destroy_live_engines() -> None:
    for engine in list(_live_engines):
        try:
            engine.destroy()
        except Exception:  # noqa: BLE001 - exiting anyway; the next engine still needs destroying
            pass
    if _log_callbacks:
        try:
            set_log_callback(None)
        except Exception:  # noqa: BLE001
            pass


def _zero_fields(config: Any, allowed: Sequence[str] = ()) -> List[str]:
    """The fields of a config dataclass left at 0 that may not be 0 (the dataclasses default every field to 0)."""
    return [f.name for f in dataclasses.fields(config) if f.name not in allowed and getattr(config, f.name) == 0]


def _named_config_error(error: ZegoError, config: Any, allowed: Sequence[str] = (), hint: str = "") -> ZegoError:
    """`error` with the fields of `config` left at 0 named, when the SDK refused the config as a whole."""
    zero = _zero_fields(config, allowed)
    if error.code != ErrorCode.COMMON_INVALID_PARAMETER or not zero:
        return error
    detail = f"{type(config).__name__} fields left at 0: {', '.join(zero)}{hint}"
    return ZegoError(error.code, f"{error.message} ({detail})", error.function)


# Log callbacks may still be running on another thread when replaced, so every one ever set stays alive.
_log_callbacks: List[Any] = []
_log_lock = threading.Lock()


def set_log_callback(handler: Optional[Callable[[Union[LogLevel, int], str], Any]]) -> None:
    """Sends every log line that passes the level to `handler(level, message)`, from whichever thread logged;
    None stops. An exception in `handler` is logged to the `zego_express` Python logger and dropped."""
    spec = _native.CALLBACKS["log"]
    with _log_lock:
        if handler is None:
            # A CFUNCTYPE called without a function is its NULL.
            _check(_lib().zego_set_log_callback(spec.cfunctype(), None), "zego_set_log_callback")
            return
        c_callback = _dispatch.trampoline(spec, lambda: (handler,))
        _log_callbacks.append(c_callback)
        _check(_lib().zego_set_log_callback(c_callback, None), "zego_set_log_callback")


class Engine:
    """An engine: logs in to a room as one user, previews, publishes and plays streams.

    Use it as a context manager (or call :meth:`destroy`). Events arrive on the engine's callback thread, one at a
    time; handle them by overriding the ``on_<event>`` methods in a subclass, or with the :meth:`on` decorator::

        with Engine(app_id, server, app_sign=sign) as engine:
            @engine.on("room_state_update")
            def state(room_id, state, error_code, extended_data):
                print(room_id, state)

            engine.login_room("room", User("alice", "Alice"))

    Every method raises :class:`ZegoError` when the SDK returns an error code. Handlers may call any method,
    including :meth:`destroy`; an exception a handler raises is logged (logger ``zego_express``) and dropped.
    """

    def __init__(
        self,
        app_id: int,
        server: str,
        app_sign: str = "",
        scenario: Scenario = Scenario.DEFAULT,
    ) -> None:
        self._lock = threading.Lock()
        self._handlers: Dict[str, List[Callable[..., Any]]] = {}
        self._c_callbacks: Dict[str, Any] = {}
        self._registered: Set[str] = set()
        self._handle = 0
        profile = EngineProfile(app_id=app_id, app_sign=app_sign, scenario=scenario, server=server)._to_c()
        handle = _native.zego_engine(0)
        _check(_lib().zego_engine_create(ctypes.byref(profile), ctypes.byref(handle)), "zego_engine_create")
        self._handle = handle.value
        _live_engines.add(self)
        try:
            for event, spec in _native.CALLBACKS.items():
                if spec.per_engine and self._overrides(event):
                    self._subscribe(event)
        except BaseException:
            self.destroy()
            raise

    # -- lifetime ------------------------------------------------------------------------------------------------

    @property
    def handle(self) -> int:
        """The C handle (`zego_engine`), 0 once destroyed."""
        return self._handle

    def destroy(self) -> None:
        """Stops everything and releases the engine; no handler runs after this returns (unless it is called from
        inside a handler, which then finishes first). Calling it again does nothing."""
        with self._lock:
            handle, self._handle = self._handle, 0
        _live_engines.discard(self)
        if handle:
            _check(_lib().zego_engine_destroy(handle), "zego_engine_destroy")
        # The ctypes callbacks stay referenced by this object: a handler calling destroy() is still running on one.

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", 0):
                self.destroy()
        except Exception:  # noqa: BLE001 - nothing useful to do at collection time
            pass

    def _call(self, function: str, *args: Any) -> None:
        handle = self._handle
        if not handle:
            raise ZegoError(ErrorCode.COMMON_ENGINE_NOT_CREATED, function=function)
        _check(getattr(_lib(), function)(handle, *args), function)

    def _call_seq(self, function: str, *args: Any) -> int:
        seq = ctypes.c_int(0)
        self._call(function, *args, ctypes.byref(seq))
        return seq.value

    # -- events --------------------------------------------------------------------------------------------------

    def on(self, event: str) -> Callable[[F], F]:
        """A decorator adding a handler for `event` (an ``on_<event>`` name without ``on_``); see :attr:`EVENTS`."""

        def add(handler: F) -> F:
            self.add_handler(event, handler)
            return handler

        return add

    def add_handler(self, event: str, handler: Callable[..., Any]) -> None:
        """Adds a handler for `event`; handlers run in the order they were added, after the method override."""
        self._spec(event)
        with self._lock:
            self._handlers.setdefault(event, []).append(handler)
        self._subscribe(event)

    def remove_handler(self, event: str, handler: Callable[..., Any]) -> None:
        """Removes a handler added with :meth:`on` or :meth:`add_handler`."""
        with self._lock:
            handlers = self._handlers.get(event, [])
            if handler in handlers:
                handlers.remove(handler)
        self._unsubscribe_if_unused(event)

    #: Every per-engine event, named as the C callback type without ``zego_func_``.
    EVENTS: Tuple[str, ...] = tuple(name for name, spec in _native.CALLBACKS.items() if spec.per_engine)

    def _spec(self, event: str) -> "_native.CallbackSpec":
        spec = _native.CALLBACKS.get(event)
        if spec is None or not spec.per_engine:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(self.EVENTS)}")
        return spec

    def _overrides(self, event: str) -> bool:
        mine = getattr(type(self), f"on_{event}", None)
        return mine is not None and mine is not getattr(Engine, f"on_{event}", None)

    def _handlers_of(self, event: str) -> Sequence[Callable[..., Any]]:
        method = [getattr(self, f"on_{event}")] if self._overrides(event) else []
        with self._lock:
            return method + list(self._handlers.get(event, ()))

    def _subscribe(self, event: str) -> None:
        """Registers the C callback of `event` unless it is registered."""
        spec = self._spec(event)
        with self._lock:
            if event in self._registered:
                return
            c_callback = self._c_callbacks.get(event)
            if c_callback is None:
                c_callback = _dispatch.trampoline(spec, lambda: self._handlers_of(event))
                # Kept for the engine's life: a call may still be running when the event is unregistered.
                self._c_callbacks[event] = c_callback
            self._registered.add(event)
        self._call(spec.register, c_callback, None)

    def _unsubscribe_if_unused(self, event: str) -> None:
        """Unregisters the C callback of `event` once nothing handles it (frames then cost nothing)."""
        spec = self._spec(event)
        with self._lock:
            if self._handlers.get(event) or self._overrides(event) or event not in self._registered:
                return
            self._registered.discard(event)
        # A CFUNCTYPE called without a function is its NULL.
        self._call(spec.register, spec.cfunctype(), None)

    # Handlers to override. Each runs on the callback thread with the arguments of its C callback.

    def on_debug_error(self, error_code: int, func_name: str, info: str) -> None:
        """An API call failed in a way the engine wants the app to notice."""

    def on_engine_state_update(self, state: EngineState) -> None:
        """The engine started (first preview, publish or play) or stopped."""

    def on_room_state_update(self, room_id: str, state: RoomState, error_code: int, extended_data: str) -> None:
        """The room's connection state changed; `error_code` says why it is not connected."""

    def on_room_state_changed(
        self, room_id: str, reason: RoomStateChangedReason, error_code: int, extended_data: str
    ) -> None:
        """The room's state changed, with the reason."""

    def on_room_user_update(self, room_id: str, update_type: UpdateType, user_list: List[User]) -> None:
        """Users joined or left (needs ``RoomConfig(is_user_status_notify=True)``)."""

    def on_room_online_user_count_update(self, room_id: str, count: int) -> None:
        """The number of users in the room, every 30 s."""

    def on_room_stream_update(
        self, room_id: str, update_type: UpdateType, stream_list: List[Stream], extended_data: str
    ) -> None:
        """Streams were published or stopped in the room."""

    def on_room_stream_extra_info_update(self, room_id: str, stream_list: List[Stream]) -> None:
        """Streams in the room changed their extra info."""

    def on_room_extra_info_update(self, room_id: str, room_extra_info_list: List[RoomExtraInfo]) -> None:
        """Room extra info entries changed."""

    def on_room_token_will_expire(self, room_id: str, remain_time_in_second: int) -> None:
        """The login token expires soon; renew it with :meth:`renew_token`."""

    def on_room_set_room_extra_info_result(self, error_code: int, room_id: str, key: str, seq: int) -> None:
        """Result of :meth:`set_room_extra_info`."""

    def on_publisher_state_update(
        self, stream_id: str, state: PublisherState, error_code: int, extended_data: str
    ) -> None:
        """A published stream's state changed."""

    def on_publisher_quality_update(self, stream_id: str, quality: Optional[PublishStreamQuality]) -> None:
        """Publishing quality, every 3 s while publishing."""

    def on_publisher_captured_video_first_frame(self, channel: PublishChannel) -> None:
        """The first video frame of a channel was captured."""

    def on_publisher_update_stream_extra_info_result(self, error_code: int, seq: int) -> None:
        """Result of :meth:`set_stream_extra_info`."""

    def on_player_state_update(self, stream_id: str, state: PlayerState, error_code: int, extended_data: str) -> None:
        """A played stream's state changed."""

    def on_player_quality_update(self, stream_id: str, quality: Optional[PlayStreamQuality]) -> None:
        """Playing quality, every 3 s while playing."""

    def on_player_recv_video_first_frame(self, stream_id: str) -> None:
        """The first video packet of a played stream arrived."""

    def on_player_recv_audio_first_frame(self, stream_id: str) -> None:
        """The first audio packet of a played stream arrived."""

    def on_player_render_video_first_frame(self, stream_id: str) -> None:
        """The first video frame of a played stream was decoded."""

    def on_player_recv_sei(self, stream_id: str, data: bytes) -> None:
        """App data the publisher sent with :meth:`Engine.send_sei`, just before the frame it rode on."""

    def on_player_video_size_changed(self, stream_id: str, width: int, height: int) -> None:
        """A played stream's resolution changed."""

    def on_im_recv_broadcast_message(self, room_id: str, message_list: List[BroadcastMessageInfo]) -> None:
        """Broadcast messages arrived."""

    def on_im_recv_custom_command(self, room_id: str, from_user: Optional[User], command: str) -> None:
        """A custom command arrived."""

    def on_im_send_broadcast_message_result(self, room_id: str, message_id: int, error_code: int, seq: int) -> None:
        """Result of :meth:`send_broadcast_message`."""

    def on_im_send_custom_command_result(self, room_id: str, error_code: int, seq: int) -> None:
        """Result of :meth:`send_custom_command`."""

    def on_custom_video_capture_start(self, channel: PublishChannel) -> None:
        """A channel with a custom video source starts wanting frames."""

    def on_custom_video_capture_stop(self, channel: PublishChannel) -> None:
        """A channel with a custom video source no longer wants frames."""

    def on_custom_video_render_remote_frame(
        self, stream_id: str, data: Tuple[memoryview, ...], param: Optional[VideoFrameParam]
    ) -> None:
        """A decoded frame of a played stream: `data` holds its planes (3 for I420, 2 for NV12, 1 for RGBA/BGRA)
        as memoryviews valid only during this call; copy with ``bytes(plane)`` what you keep."""

    def on_custom_video_render_captured_frame(
        self, data: Tuple[memoryview, ...], param: Optional[VideoFrameParam], channel: PublishChannel
    ) -> None:
        """A captured frame of a publish channel, as :meth:`on_custom_video_render_remote_frame`."""

    def on_player_audio_data(self, stream_id: str, samples: memoryview, param: Optional[AudioFrameParam]) -> None:
        """Decoded audio: interleaved int16 samples (a memoryview of format "h"), valid only during this call."""

    # -- rooms ---------------------------------------------------------------------------------------------------

    def login_room(self, room_id: str, user: User, config: Optional[RoomConfig] = None) -> None:
        """Logs in to `room_id` as `user`; progress arrives as room_state_update / room_state_changed."""
        c_user = user._to_c()
        c_config = ctypes.byref(config._to_c()) if config is not None else None
        self._call("zego_login_room", _c_text(room_id), ctypes.byref(c_user), c_config)

    def set_room_retry_time(self, seconds: int) -> None:
        """How long a broken connection is retried before the room gives up (at least 1 s; 1200 s by default).
        Applies to later logins."""
        self._call("zego_set_room_retry_time", int(seconds))

    def logout_room(self, room_id: Optional[str] = None) -> None:
        """Logs out of `room_id`, or of every room when None."""
        self._call("zego_logout_room", _optional_text(room_id))

    def renew_token(self, room_id: str, token: str) -> None:
        """Replaces the login token before it expires."""
        self._call("zego_renew_token", _c_text(room_id), _c_text(token))

    def set_room_extra_info(self, room_id: str, key: str, value: str) -> int:
        """Sets a room extra info entry; returns the seq its result event carries."""
        return self._call_seq("zego_set_room_extra_info", _c_text(room_id), _c_text(key), _c_text(value))

    def send_broadcast_message(self, room_id: str, message: str) -> int:
        """Sends a message to everyone in the room; returns the seq its result event carries."""
        return self._call_seq("zego_send_broadcast_message", _c_text(room_id), _c_text(message))

    def send_custom_command(self, room_id: str, command: str, to_user_ids: Sequence[str] = ()) -> int:
        """Sends a command to the listed users (everyone else in the room when empty); returns the seq."""
        ids = [_c_text(u) for u in to_user_ids]
        array = (ctypes.c_char_p * len(ids))(*ids) if ids else None
        return self._call_seq("zego_send_custom_command", _c_text(room_id), _c_text(command), array, len(ids))

    # -- publishing ----------------------------------------------------------------------------------------------

    def start_preview(self, channel: PublishChannel = _MAIN) -> None:
        """Starts capturing on `channel` (captured frames go to on_custom_video_render_captured_frame)."""
        self._call("zego_start_preview", int(channel))

    def stop_preview(self, channel: PublishChannel = _MAIN) -> None:
        self._call("zego_stop_preview", int(channel))

    def start_publishing_stream(self, stream_id: str, channel: PublishChannel = _MAIN) -> None:
        """Publishes `channel` as `stream_id`; progress arrives as publisher_state_update."""
        self._call("zego_start_publishing_stream", _c_text(stream_id), int(channel))

    def stop_publishing_stream(self, channel: PublishChannel = _MAIN) -> None:
        self._call("zego_stop_publishing_stream", int(channel))

    def set_stream_extra_info(self, extra_info: str, channel: PublishChannel = _MAIN) -> int:
        """Sets the extra info of the stream `channel` publishes; returns the seq its result event carries."""
        return self._call_seq("zego_set_stream_extra_info", _c_text(extra_info), int(channel))

    def mute_publish_stream_audio(self, mute: bool, channel: PublishChannel = _MAIN) -> None:
        self._call("zego_mute_publish_stream_audio", bool(mute), int(channel))

    def mute_publish_stream_video(self, mute: bool, channel: PublishChannel = _MAIN) -> None:
        self._call("zego_mute_publish_stream_video", bool(mute), int(channel))

    def set_video_config(self, config: VideoConfig, channel: PublishChannel = _MAIN) -> None:
        """Raises ZegoError 1000008 naming the fields left at 0 when those are why the config is refused."""
        try:
            self._call("zego_set_video_config", ctypes.byref(config._to_c()), int(channel))
        except ZegoError as error:
            hint = "; start from get_video_config() and change what you need"
            raise _named_config_error(error, config, ("keyframe_interval_s",), hint) from None

    def get_video_config(self, channel: PublishChannel = _MAIN) -> VideoConfig:
        out = _native.zego_video_config()
        handle = self._handle
        if not handle:
            raise ZegoError(ErrorCode.COMMON_ENGINE_NOT_CREATED, function="zego_get_video_config")
        _check(_lib().zego_get_video_config(handle, int(channel), ctypes.byref(out)), "zego_get_video_config")
        return VideoConfig._from_c(out)

    def set_audio_config(self, config: AudioConfig, channel: PublishChannel = _MAIN) -> None:
        """Raises ZegoError 1000008 naming the fields left at 0 when those are why the config is refused."""
        try:
            self._call("zego_set_audio_config", ctypes.byref(config._to_c()), int(channel))
        except ZegoError as error:
            raise _named_config_error(error, config) from None

    def set_video_source(self, source: VideoSourceType, channel: PublishChannel = _MAIN) -> None:
        self._call("zego_set_video_source", int(source), int(channel))

    def set_audio_source(self, source: AudioSourceType, channel: PublishChannel = _MAIN) -> None:
        self._call("zego_set_audio_source", int(source), int(channel))

    def send_custom_video_capture_frame(
        self, data: Union[bytes, bytearray, memoryview], param: VideoFrameParam, channel: PublishChannel = _MAIN
    ) -> None:
        """Pushes one frame (planes back to back as `param` describes them) into a channel whose video source is
        CUSTOM. The data is copied before this returns."""
        view = memoryview(data).cast("B")
        if view.readonly:
            buffer = (ctypes.c_uint8 * len(view)).from_buffer_copy(view)
        else:
            buffer = (ctypes.c_uint8 * len(view)).from_buffer(view)
        pointer = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint8))
        self._call(
            "zego_send_custom_video_capture_frame", pointer, len(view), ctypes.byref(param._to_c()), int(channel)
        )

    def set_sei_config(self, sei_type: SeiType) -> None:
        """How :meth:`send_sei` writes data: ZEGO_DEFINED (default) or USER_UNREGISTER (data begins with a 16-byte
        UUID)."""
        self._call("zego_set_sei_config", int(sei_type))

    def send_sei(self, data: Union[bytes, bytearray, memoryview], channel: PublishChannel = _MAIN) -> None:
        """Sends up to 4096 bytes with the next video frame of the stream `channel` publishes, at most 30 times a
        second; players receive them in on_player_recv_sei just before that frame."""
        view = memoryview(data).cast("B")
        buffer = (ctypes.c_uint8 * len(view)).from_buffer_copy(view)
        pointer = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint8))
        self._call("zego_send_sei", pointer, len(view), int(channel))

    def set_captured_render_format(self, format: VideoFrameFormat) -> None:
        """The pixel format of captured frames: I420 (default), NV12, BGRA32 or RGBA32."""
        self._call("zego_set_captured_render_format", int(format))

    # -- playing -------------------------------------------------------------------------------------------------

    def start_playing_stream(self, stream_id: str, config: Optional[PlayerConfig] = None) -> None:
        """Plays `stream_id`; progress arrives as player_state_update, frames as on_custom_video_render_remote_frame."""
        c_config = ctypes.byref(config._to_c()) if config is not None else None
        self._call("zego_start_playing_stream", _c_text(stream_id), c_config)

    def stop_playing_stream(self, stream_id: str) -> None:
        self._call("zego_stop_playing_stream", _c_text(stream_id))

    def set_play_volume(self, stream_id: str, volume: int) -> None:
        """0..200, 100 = as received."""
        self._call("zego_set_play_volume", _c_text(stream_id), int(volume))

    def mute_play_stream_audio(self, stream_id: str, mute: bool) -> None:
        self._call("zego_mute_play_stream_audio", _c_text(stream_id), bool(mute))

    def mute_play_stream_video(self, stream_id: str, mute: bool) -> None:
        self._call("zego_mute_play_stream_video", _c_text(stream_id), bool(mute))

    def set_remote_render_format(self, format: VideoFrameFormat) -> None:
        """The pixel format of played frames: I420 (default), NV12, BGRA32 or RGBA32."""
        self._call("zego_set_remote_render_format", int(format))
