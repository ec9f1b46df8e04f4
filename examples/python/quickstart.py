"""Quickstart: an anchor publishes the synthetic camera and microphone, a viewer in the same room plays it and
counts decoded frames; then both stop, log out and are destroyed.

    cargo build --release && cargo run --release -p zego-server &      # a server on 127.0.0.1:9180
    PYTHONPATH=bindings/python python3 examples/python/quickstart.py [ws://127.0.0.1:9180/ws] [frames]

The server URL may also come from $ZEGO_SERVER_URL, the app from $ZEGO_APP_ID / $ZEGO_APP_SIGN (default: the
server's development app). Exits 0 on success, 1 naming the step that failed.
"""

import os
import sys
import threading
import time
import uuid

import zego_express as z

DEV_APP_ID = 1234567890
DEV_APP_SIGN = "0123456789abcdef" * 4
STEP_TIMEOUT = 10.0


class Step:
    """Waits (bounded) for something a callback reports."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._event = threading.Event()

    def done(self) -> None:
        self._event.set()

    def wait(self) -> None:
        if not self._event.wait(STEP_TIMEOUT):
            raise TimeoutError(f"timed out waiting for: {self.name}")


def main() -> int:
    server = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ZEGO_SERVER_URL", "ws://127.0.0.1:9180/ws")
    wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    app_id = int(os.environ.get("ZEGO_APP_ID", DEV_APP_ID))
    app_sign = os.environ.get("ZEGO_APP_SIGN", DEV_APP_SIGN)
    suffix = uuid.uuid4().hex[:8]
    room, stream = f"quickstart-{suffix}", f"quickstart-stream-{suffix}"
    print(f"zego_express {z.version()}, server {server}")

    publishing, playing, enough = Step("publishing"), Step("playing"), Step(f"{wanted} frames")
    stopped_publishing, stopped_playing = Step("stopped publishing"), Step("stopped playing")
    frames = []
    first_frame_at = []

    with z.Engine(app_id, server, app_sign=app_sign) as anchor, z.Engine(app_id, server, app_sign=app_sign) as viewer:

        @anchor.on("publisher_state_update")
        def on_publisher(stream_id, state, error_code, extended_data):
            print(f"anchor: publisher {stream_id} {state.name} code={error_code}")
            if state == z.PublisherState.PUBLISHING:
                publishing.done()
            elif state == z.PublisherState.NO_PUBLISH:
                stopped_publishing.done()

        @viewer.on("player_state_update")
        def on_player(stream_id, state, error_code, extended_data):
            print(f"viewer: player {stream_id} {state.name} code={error_code}")
            if state == z.PlayerState.PLAYING:
                playing.done()
            elif state == z.PlayerState.NO_PLAY:
                stopped_playing.done()

        @viewer.on("custom_video_render_remote_frame")
        def on_frame(stream_id, planes, param):
            if not first_frame_at:
                first_frame_at.append(time.monotonic())
            # The planes are valid only during this call; keep what you need as a copy.
            frames.append((param.frame_number, param.capture_time_us))
            if len(frames) == wanted:
                enough.done()

        try:
            anchor.login_room(room, z.User(f"anchor-{suffix}", "Anchor"))
            viewer.login_room(room, z.User(f"viewer-{suffix}", "Viewer"))
            anchor.start_publishing_stream(stream)
            publishing.wait()
            started = time.monotonic()
            viewer.start_playing_stream(stream)
            playing.wait()
            enough.wait()
            print(f"first frame {1000 * (first_frame_at[0] - started):.0f} ms after start_playing_stream")
            now_us = time.time() * 1e6
            latency = [now_us - capture for _, capture in frames[-5:] if capture]
            if latency:
                print(f"latest capture-to-callback delay about {min(latency) / 1000:.0f} ms")
            viewer.stop_playing_stream(stream)
            stopped_playing.wait()
            anchor.stop_publishing_stream()
            stopped_publishing.wait()
            viewer.logout_room(room)
            anchor.logout_room(room)
        except (z.ZegoError, TimeoutError) as error:
            print(f"quickstart failed: {error}", file=sys.stderr)
            return 1
    print(f"ok: {len(frames)} frames decoded, both engines destroyed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
