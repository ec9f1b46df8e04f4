"""Error codes surface as ZegoError with the code, its name and the SDK's message."""

import pytest

import zego_express as z
from zego_express import ErrorCode, ZegoError


def test_bad_profile_is_an_error_with_code_and_message(server_url, app):
    with pytest.raises(ZegoError) as caught:
        z.Engine(0, server_url, app_sign=app["app_sign"])
    assert caught.value.code == ErrorCode.ENGINE_APP_ID_INCORRECT == 1001004
    assert caught.value.name == "ENGINE_APP_ID_INCORRECT"
    assert caught.value.message == z.error_message(1001004)
    assert caught.value.function == "zego_engine_create"
    with pytest.raises(ZegoError) as caught:
        z.Engine(app["app_id"], "not a url", app_sign=app["app_sign"])
    assert caught.value.code == ErrorCode.ENGINE_SERVER_ADDRESS_INVALID


def test_invalid_arguments_are_refused_synchronously(make_engine, unique):
    engine = make_engine()
    with pytest.raises(ZegoError) as caught:
        engine.login_room(unique("room"), z.User("", "Nobody"))
    assert caught.value.code == ErrorCode.ROOM_USER_ID_NULL
    with pytest.raises(ZegoError) as caught:
        engine.login_room("bad room id", z.User(unique("u"), "U"))
    assert caught.value.code == ErrorCode.ROOM_ROOM_ID_INVALID_CHARACTER
    with pytest.raises(ZegoError) as caught:
        engine.start_publishing_stream(unique("s"))
    assert caught.value.code == ErrorCode.COMMON_NOT_LOGGED_IN
    with pytest.raises(ZegoError) as caught:
        engine.set_video_config(z.VideoConfig(encode_width=641, encode_height=360, fps=15, bitrate_kbps=600))
    assert caught.value.code == ErrorCode.COMMON_INVALID_PARAMETER
    engine.set_room_retry_time(5)
    with pytest.raises(ZegoError) as caught:
        engine.set_room_retry_time(0)
    assert caught.value.code == ErrorCode.COMMON_INVALID_PARAMETER
    with pytest.raises(ZegoError) as caught:
        engine.start_preview(7)
    assert caught.value.code == ErrorCode.COMMON_INVALID_PARAMETER
    with pytest.raises(ZegoError) as caught:
        engine.login_room(unique("room"), z.User("nul\0inside", "U"))
    assert caught.value.code == ErrorCode.COMMON_INVALID_PARAMETER


def test_video_config_round_trips(make_engine):
    engine = make_engine()
    config = z.VideoConfig(
        capture_width=320, capture_height=240, encode_width=320, encode_height=240, fps=10, bitrate_kbps=300,
        keyframe_interval_s=1,
    )
    engine.set_video_config(config, z.PublishChannel.AUX)
    assert engine.get_video_config(z.PublishChannel.AUX) == config


def test_calls_after_destroy_fail_with_engine_not_created(make_engine):
    engine = make_engine()
    engine.destroy()
    engine.destroy()  # a second destroy does nothing
    with pytest.raises(ZegoError) as caught:
        engine.start_preview()
    assert caught.value.code == ErrorCode.COMMON_ENGINE_NOT_CREATED


def test_unknown_codes_and_events():
    error = ZegoError(42)
    assert error.name is None and error.message == "Unknown error code."
    assert z.error_message(42) == "Unknown error code."
    assert z.version().count(".") == 2
