"""Destroying engines while they stream, and from inside their own handlers."""

import threading
import time

import zego_express as z
from zego_express import ErrorCode, ZegoError


def _streaming_pair(make_engine, unique, waiter):
    anchor, viewer = make_engine(), make_engine()
    frames = waiter()
    viewer.on("custom_video_render_remote_frame")(lambda sid, planes, param: frames.add(param.frame_number))
    room, stream = unique("room"), unique("stream")
    anchor.login_room(room, z.User(unique("a"), "A"))
    viewer.login_room(room, z.User(unique("v"), "V"))
    anchor.start_publishing_stream(stream)
    viewer.start_playing_stream(stream)
    frames.wait(lambda items: len(items) >= 3)
    return anchor, viewer, frames


def test_destroy_while_publishing_and_playing(make_engine, unique, waiter):
    anchor, viewer, frames = _streaming_pair(make_engine, unique, waiter)
    started = time.monotonic()
    viewer.destroy()
    count = len(frames.items)
    time.sleep(0.3)
    assert len(frames.items) == count, "no frame handler runs after destroy returns"
    anchor.destroy()
    assert time.monotonic() - started < 10
    try:
        viewer.stop_playing_stream("x")
    except ZegoError as error:
        assert error.code == ErrorCode.COMMON_ENGINE_NOT_CREATED
    else:
        raise AssertionError("calls on a destroyed engine fail")


def test_destroy_from_inside_a_frame_handler(make_engine, unique, waiter):
    anchor, viewer, frames = _streaming_pair(make_engine, unique, waiter)
    destroyed = threading.Event()

    @viewer.on("custom_video_render_remote_frame")
    def destroy_myself(stream_id, planes, param):
        if not destroyed.is_set():
            viewer.destroy()
            destroyed.set()

    assert destroyed.wait(10)
    assert viewer.handle == 0
    anchor.destroy()


def test_context_manager_destroys(server_url, app):
    with z.Engine(app["app_id"], server_url, app_sign=app["app_sign"]) as engine:
        assert engine.handle != 0
    assert engine.handle == 0
