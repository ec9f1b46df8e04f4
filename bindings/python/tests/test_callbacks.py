"""Handlers run on the callback thread; whatever they raise is logged and never reaches the SDK."""

import logging
import threading
import time

import pytest

import zego_express as z
from zego_express import _native


def test_a_raising_handler_is_logged_and_the_next_one_still_runs(make_engine, unique, waiter, caplog):
    caplog.set_level(logging.ERROR, logger="zego_express")
    engine = make_engine()
    seen = waiter()
    threads = set()

    @engine.on("room_state_update")
    def explode(room_id, state, error_code, extended_data):
        threads.add(threading.get_ident())
        raise RuntimeError("boom from a handler")

    engine.on("room_state_update")(lambda room_id, state, code, ext: seen.add(state))
    room = unique("room")
    engine.login_room(room, z.User(unique("u"), "U"))
    seen.wait(lambda items: z.RoomState.CONNECTED in items)
    assert threading.get_ident() not in threads, "handlers run on the engine's callback thread"
    assert "boom from a handler" in caplog.text
    # The engine still works after the exception.
    engine.logout_room(room)
    seen.wait(lambda items: items[-1] == z.RoomState.DISCONNECTED)


def test_a_raising_frame_handler_does_not_stop_frames(make_engine, unique, waiter):
    anchor, viewer = make_engine(), make_engine()
    frames = waiter()

    @viewer.on("custom_video_render_remote_frame")
    def count_then_raise(stream_id, planes, param):
        frames.add(param.frame_number)
        raise ValueError("frame handler failure")

    room, stream = unique("room"), unique("stream")
    anchor.login_room(room, z.User(unique("a"), "A"))
    viewer.login_room(room, z.User(unique("v"), "V"))
    anchor.start_publishing_stream(stream)
    viewer.start_playing_stream(stream)
    frames.wait(lambda items: len(items) >= 5)


def test_frame_buffers_are_released_after_the_callback(make_engine, unique, waiter):
    """A memoryview kept past its callback raises instead of reading memory the SDK reuses."""
    anchor, viewer = make_engine(), make_engine()
    kept = waiter()
    viewer.on("custom_video_render_remote_frame")(lambda sid, planes, param: kept.add((planes[0], bytes(planes[0]))))
    room, stream = unique("room"), unique("stream")
    anchor.login_room(room, z.User(unique("a"), "A"))
    viewer.login_room(room, z.User(unique("v"), "V"))
    anchor.start_publishing_stream(stream)
    viewer.start_playing_stream(stream)
    view, copy = kept.wait(lambda items: len(items) >= 1)[0]
    assert len(copy) > 0
    try:
        view[0]
    except ValueError:
        pass
    else:
        raise AssertionError("a released frame view must not be readable")


def test_log_callback_receives_lines_and_survives_a_raising_handler(server_url):
    lines = []

    def handler(level, message):
        lines.append((level, message))
        raise RuntimeError("log handler failure")

    z.set_log_level(z.LogLevel.DEBUG)
    try:
        z.set_log_callback(handler)
        for _ in range(2):
            try:
                z.Engine(1, server_url, app_sign="not hex")
            except z.ZegoError as error:
                assert error.code == z.ErrorCode.ENGINE_APP_SIGN_INCORRECT
    finally:
        z.set_log_callback(None)
        z.set_log_level(z.LogLevel.WARN)
    message = z.error_message(z.ErrorCode.ENGINE_APP_SIGN_INCORRECT)
    assert sum(message in text for _, text in lines) >= 2, lines
    assert all(level in z.LogLevel for level, _ in lines)


def test_every_per_engine_callback_has_a_handler_method_and_every_function_is_bound():
    for event, spec in _native.CALLBACKS.items():
        if spec.per_engine:
            assert callable(getattr(z.Engine, f"on_{event}", None)), f"Engine.on_{event} is missing"
    lib = z.engine._lib()
    for name, (restype, argtypes, _) in _native.FUNCTIONS.items():
        function = getattr(lib, name)
        assert function.argtypes == argtypes and function.restype == restype


def test_removed_handlers_are_not_called_again(make_engine, unique, waiter):
    anchor, viewer = make_engine(), make_engine()
    frames = waiter()

    def on_frame(stream_id, planes, param):
        frames.add(param.frame_number)

    viewer.add_handler("custom_video_render_remote_frame", on_frame)
    room, stream = unique("room"), unique("stream")
    anchor.login_room(room, z.User(unique("a"), "A"))
    viewer.login_room(room, z.User(unique("v"), "V"))
    anchor.start_publishing_stream(stream)
    viewer.start_playing_stream(stream)
    frames.wait(lambda items: len(items) >= 3)
    viewer.remove_handler("custom_video_render_remote_frame", on_frame)
    # A frame already being delivered may still land; after that, nothing.
    time.sleep(0.2)
    count = len(frames.items)
    time.sleep(0.5)
    assert len(frames.items) == count


def test_unknown_events_are_refused(make_engine):
    engine = make_engine()
    with pytest.raises(ValueError):
        engine.on("no_such_event")(lambda: None)
    with pytest.raises(ValueError):
        engine.add_handler("log", lambda level, message: None)
