"""The interpreter exits cleanly with engines alive and calling back, even on an uncaught exception."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading
    import uuid

    import zego_express as z

    server, app_id, app_sign = {server!r}, {app_id!r}, {app_sign!r}
    tag = uuid.uuid4().hex[:8]
    anchor = z.Engine(app_id, server, app_sign=app_sign)
    viewer = z.Engine(app_id, server, app_sign=app_sign)
    frames = threading.Event()
    viewer.on("custom_video_render_remote_frame")(lambda sid, planes, param: frames.set())
    viewer.on("player_quality_update")(lambda sid, quality: None)
    anchor.login_room("exit-" + tag, z.User("a-" + tag, "A"))
    viewer.login_room("exit-" + tag, z.User("v-" + tag, "V"))
    anchor.start_publishing_stream("s-" + tag)
    viewer.start_playing_stream("s-" + tag)
    assert frames.wait(20), "no frame"
    raise RuntimeError("uncaught at top level")
    """
)


def test_an_uncaught_exception_with_live_engines_exits_cleanly(server_url, app):
    script = SCRIPT.format(server=server_url, app_id=app["app_id"], app_sign=app["app_sign"])
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ)
        )
        assert "uncaught at top level" in done.stderr, done.stderr
        assert "FATAL" not in done.stderr, done.stderr
        assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
