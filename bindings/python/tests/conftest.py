"""Fixtures: a zego-server on loopback and engine factories.

The server is the one named by $ZEGO_SERVER_URL (tests/bindings_python.rs starts one in-process and sets it), or a
`zego-server` binary started here on ephemeral loopback ports ($ZEGO_SERVER_BIN, else the cargo target folder).
"""

import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import zego_express as z

DEV_APP_ID = 1234567890
DEV_APP_SIGN = "0123456789abcdef" * 4
ROOT = Path(__file__).resolve().parents[3]


def _server_binary() -> Path:
    explicit = os.environ.get("ZEGO_SERVER_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("debug", "release"):
        path = target / profile / "zego-server"
        if path.is_file():
            return path
    pytest.exit("no zego-server: set ZEGO_SERVER_URL or ZEGO_SERVER_BIN, or `cargo build -p zego-server`", 2)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get("ZEGO_SERVER_URL")
    if url:
        yield url
        return
    process = subprocess.Popen(
        [str(_server_binary()), "--listen", "127.0.0.1:0", "--media", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"ws=(\S+)", line)
        assert match, f"unexpected first line from zego-server: {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def app() -> dict:
    return {
        "app_id": int(os.environ.get("ZEGO_APP_ID", DEV_APP_ID)),
        "app_sign": os.environ.get("ZEGO_APP_SIGN", DEV_APP_SIGN),
    }


@pytest.fixture
def make_engine(server_url: str, app: dict) -> Iterator[Callable[..., z.Engine]]:
    """Creates engines (of `cls`, default Engine) that are destroyed after the test."""
    engines: List[z.Engine] = []

    def make(cls: type = z.Engine) -> z.Engine:
        engine = cls(app["app_id"], server_url, app_sign=app["app_sign"])
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.destroy()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses (rooms, users and streams live on a shared server)."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


class Waiter:
    """Collects values from the callback thread; `wait` blocks (bounded) until a predicate holds."""

    def __init__(self) -> None:
        self.items: list = []
        self._cond = threading.Condition()

    def add(self, item: object) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[list], bool], timeout: float = 15.0) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.items):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout} s; got {self.items!r}")
                self._cond.wait(remaining)
            return list(self.items)


@pytest.fixture
def waiter() -> Callable[[], Waiter]:
    return Waiter
