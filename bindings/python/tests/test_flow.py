"""The whole flow: log in, publish the synthetic source, play it in a second engine, count decoded frames, stop,
log out, destroy."""

import threading
import time

import pytest

import zego_express as z
from zego_express import PlayerState, PublisherState, RoomState, UpdateType, VideoFrameFormat


def test_publish_play_and_count_frames(make_engine, unique, waiter):
    room, stream = unique("room"), unique("stream")
    anchor, viewer = make_engine(), make_engine()
    publisher_states, player_states, frames, streams, room_states = waiter(), waiter(), waiter(), waiter(), waiter()

    anchor.on("publisher_state_update")(lambda sid, state, code, ext: publisher_states.add((sid, state, code)))
    anchor.on("room_state_update")(lambda rid, state, code, ext: room_states.add((rid, state, code)))
    viewer.on("player_state_update")(lambda sid, state, code, ext: player_states.add((sid, state, code)))
    viewer.on("room_stream_update")(lambda rid, kind, lst, ext: streams.add((kind, [s.stream_id for s in lst])))

    @viewer.on("custom_video_render_remote_frame")
    def on_frame(stream_id, planes, param):
        # I420: three planes whose sizes follow from the strides and the height.
        assert param.format == VideoFrameFormat.I420
        assert len(planes) == 3
        assert len(planes[0]) == param.strides[0] * param.height
        frames.add((stream_id, param.width, param.height, param.frame_number, bytes(planes[0][:16])))

    anchor.login_room(room, z.User(unique("anchor"), "Anchor"))
    room_states.wait(lambda items: (room, RoomState.CONNECTED, 0) in items)
    viewer.login_room(room, z.User(unique("viewer"), "Viewer"))
    anchor.start_publishing_stream(stream)
    publisher_states.wait(lambda items: (stream, PublisherState.PUBLISHING, 0) in items)
    streams.wait(lambda items: any(kind == UpdateType.ADD and stream in ids for kind, ids in items))

    viewer.start_playing_stream(stream)
    player_states.wait(lambda items: (stream, PlayerState.PLAYING, 0) in items)
    got = frames.wait(lambda items: len(items) >= 10)
    assert all(item[0] == stream for item in got)
    assert (got[0][1], got[0][2]) == (640, 360), "the default video config is 640x360"
    numbers = [item[3] for item in got]
    assert numbers == sorted(numbers), "frames arrive in capture order"

    viewer.stop_playing_stream(stream)
    player_states.wait(lambda items: items[-1][1] == PlayerState.NO_PLAY)
    anchor.stop_publishing_stream()
    publisher_states.wait(lambda items: items[-1][1] == PublisherState.NO_PUBLISH)
    viewer.logout_room(room)
    anchor.logout_room()
    viewer.destroy()
    anchor.destroy()
    assert anchor.handle == 0 and viewer.handle == 0


def test_methods_as_handlers_and_other_render_formats(make_engine, unique, waiter):
    """Subclass handlers (overridden on_<event> methods) and RGBA frames, one plane of width * 4 bytes per row."""
    frames = waiter()

    class Viewer(z.Engine):
        def on_custom_video_render_remote_frame(self, stream_id, planes, param):
            frames.add((param.format, len(planes), len(planes[0]), param.width * 4 * param.height))

    room, stream = unique("room"), unique("stream")
    anchor, viewer = make_engine(), make_engine(Viewer)
    viewer.set_remote_render_format(VideoFrameFormat.RGBA32)
    anchor.login_room(room, z.User(unique("anchor"), "Anchor"))
    viewer.login_room(room, z.User(unique("viewer"), "Viewer"))
    anchor.start_publishing_stream(stream)
    viewer.start_playing_stream(stream)
    got = frames.wait(lambda items: len(items) >= 3)
    assert got[0][0] == VideoFrameFormat.RGBA32
    assert got[0][1] == 1 and got[0][2] == got[0][3]


def test_room_messages_and_extra_info(make_engine, unique, waiter):
    room = unique("room")
    alice, bob = make_engine(), make_engine()
    received, sent, users = waiter(), waiter(), waiter()
    bob.on("im_recv_broadcast_message")(lambda rid, msgs: received.add([m.message for m in msgs]))
    alice.on("im_send_broadcast_message_result")(lambda rid, mid, code, seq: sent.add((code, seq)))
    bob.on("room_user_update")(lambda rid, kind, lst: users.add((kind, [u.user_id for u in lst])))
    alice_id = unique("alice")
    bob.login_room(room, z.User(unique("bob"), "Bob"), z.RoomConfig(is_user_status_notify=True))
    alice.login_room(room, z.User(alice_id, "Alice"))
    users.wait(lambda items: any(kind == z.UpdateType.ADD and alice_id in ids for kind, ids in items))
    seq = alice.send_broadcast_message(room, "héllo")
    assert sent.wait(lambda items: len(items) >= 1)[0] == (0, seq)
    assert received.wait(lambda items: len(items) >= 1)[0] == ["héllo"]


def test_custom_capture_frames_reach_the_player(make_engine, unique, waiter):
    """Frames pushed from Python (bytes in, copied by the SDK) are what the player decodes: flat luma 200."""
    room, stream = unique("room"), unique("stream")
    anchor, viewer = make_engine(), make_engine()
    starts, frames = waiter(), waiter()
    anchor.on("custom_video_capture_start")(lambda channel: starts.add(channel))
    viewer.on("custom_video_render_remote_frame")(
        lambda sid, planes, param: frames.add((param.width, param.height, sum(planes[0]) / len(planes[0])))
    )
    anchor.set_video_config(z.VideoConfig(capture_width=320, capture_height=240, encode_width=320, encode_height=240,
                                          fps=30, bitrate_kbps=400, keyframe_interval_s=1))
    anchor.set_video_source(z.VideoSourceType.CUSTOM)
    anchor.login_room(room, z.User(unique("anchor"), "Anchor"))
    viewer.login_room(room, z.User(unique("viewer"), "Viewer"))
    anchor.start_publishing_stream(stream)
    assert starts.wait(lambda items: len(items) >= 1)[0] == z.PublishChannel.MAIN
    viewer.start_playing_stream(stream)

    width, height = 320, 240
    # I420: luma 200, neutral chroma.
    gray = bytes([200]) * (width * height) + bytes([128]) * (width * height // 2)
    stop = threading.Event()

    def push() -> None:
        while not stop.is_set():
            param = z.VideoFrameParam(format=VideoFrameFormat.I420, width=width, height=height)
            anchor.send_custom_video_capture_frame(gray, param)
            time.sleep(1 / 30)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    try:
        got = frames.wait(lambda items: len(items) >= 5)
    finally:
        stop.set()
        pusher.join(5)
    assert all((w, h) == (width, height) for w, h, _ in got)
    assert all(abs(luma - 200) < 8 for _, _, luma in got[-3:]), f"decoded luma is the pushed one: {got}"

    with pytest.raises(z.ZegoError) as caught:
        anchor.send_custom_video_capture_frame(gray[:100], z.VideoFrameParam(format=VideoFrameFormat.I420, width=width,
                                                                            height=height))
    assert caught.value.code == z.ErrorCode.COMMON_INVALID_PARAMETER


def test_sei_reaches_the_player_with_its_frames(make_engine, unique, waiter):
    """send_sei bytes arrive in on_player_recv_sei unchanged and in order; the limits are ZegoErrors."""
    room, stream = unique("room"), unique("stream")
    anchor, viewer = make_engine(), make_engine()
    publisher_states, frames, sei = waiter(), waiter(), waiter()
    anchor.on("publisher_state_update")(lambda sid, state, code, ext: publisher_states.add((sid, state, code)))
    viewer.on("custom_video_render_remote_frame")(lambda sid, planes, param: frames.add(param.frame_number))
    viewer.on("player_recv_sei")(lambda sid, data: sei.add((sid, data)))

    anchor.login_room(room, z.User(unique("anchor"), "Anchor"))
    viewer.login_room(room, z.User(unique("viewer"), "Viewer"))
    with pytest.raises(z.ZegoError) as caught:
        anchor.send_sei(b"not publishing yet")
    assert caught.value.code == z.ErrorCode.PUBLISHER_NO_DATA
    anchor.start_publishing_stream(stream)
    publisher_states.wait(lambda items: (stream, PublisherState.PUBLISHING, 0) in items)
    viewer.start_playing_stream(stream)
    frames.wait(lambda items: len(items) >= 3)

    sent = [bytes([i, 0, 0, 1, 0, 0, 3]) + f"state {i}".encode() for i in range(5)]
    for data in sent:
        anchor.send_sei(data)
        time.sleep(0.05)
    anchor.set_sei_config(z.SeiType.USER_UNREGISTER)
    unregistered = bytes(range(16)) + b"with a uuid"
    anchor.send_sei(bytearray(unregistered))
    got = sei.wait(lambda items: len(items) >= 6)
    assert got == [(stream, data) for data in sent + [unregistered]]

    for data, code in [(b"", z.ErrorCode.PUBLISHER_SEI_DATA_NULL),
                       (bytes(4097), z.ErrorCode.PUBLISHER_SEI_DATA_TOO_LONG),
                       (bytes(15), z.ErrorCode.COMMON_INVALID_PARAMETER)]:
        with pytest.raises(z.ZegoError) as caught:
            anchor.send_sei(data)
        assert caught.value.code == code
