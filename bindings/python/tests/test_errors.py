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


def test_none_for_a_string_is_a_zego_error(make_engine, unique):
    engine = make_engine()
    with pytest.raises(ZegoError) as caught:
        engine.login_room(None, z.User(unique("u"), "U"))
    assert caught.value.code == ErrorCode.ROOM_ROOM_ID_NULL
    with pytest.raises(ZegoError) as caught:
        engine.login_room(unique("room"), z.User(None, "U"))
    assert caught.value.code == ErrorCode.ROOM_USER_ID_NULL
    with pytest.raises(ZegoError) as caught:
        engine.start_playing_stream(None)
    assert caught.value.code == ErrorCode.COMMON_STREAM_ID_NULL
    with pytest.raises(ZegoError) as caught:
        engine.login_room(42, z.User(unique("u"), "U"))
    assert caught.value.code == ErrorCode.COMMON_INVALID_PARAMETER
    assert "expected a str, got int" in str(caught.value)


def test_a_video_config_with_zero_fields_names_them(make_engine):
    engine = make_engine()
    with pytest.raises(ZegoError) as caught:
        engine.set_video_config(z.VideoConfig(capture_width=640, capture_height=360, encode_width=640,
                                              encode_height=360, fps=15))
    assert caught.value.code == ErrorCode.COMMON_INVALID_PARAMETER
    assert "bitrate_kbps" in str(caught.value)
    assert "fps" not in str(caught.value).split("left at 0")[1]
    with pytest.raises(ZegoError) as caught:
        engine.set_audio_config(z.AudioConfig(bitrate_kbps=48))
    assert "channels" in str(caught.value)


def test_a_garbage_token_is_refused_at_once(make_engine, unique):
    engine = make_engine()
    room = unique("room")
    engine.login_room(room, z.User(unique("u"), "U"))
    with pytest.raises(ZegoError) as caught:
        engine.renew_token(room, "garbage")
    assert caught.value.code == ErrorCode.ROOM_TOKEN_VERSION_ERROR
    with pytest.raises(ZegoError) as caught:
        engine.renew_token(room, "04not-base64!")
    assert caught.value.code == ErrorCode.ROOM_TOKEN_FORMAT_ERROR
