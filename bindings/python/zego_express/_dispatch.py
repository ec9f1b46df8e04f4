"""Turning the C arguments of a callback into Python values, driven by the generated table `_native.CALLBACKS`,
and calling Python handlers so that nothing they raise reaches C."""

import ctypes
import logging
import sys
from typing import Any, Callable, List, Sequence, Tuple

from . import _native, _types

log = logging.getLogger("zego_express")

Handler = Callable[..., Any]


class _Views:
    """Memoryviews handed to one callback; released when it returns, so a view kept past the callback raises
    instead of reading memory the SDK has reused."""

    def __init__(self) -> None:
        self._views: List[memoryview] = []

    def over(self, address: int, length: int, kind: Any, fmt: str) -> memoryview:
        raw = memoryview((kind * length).from_address(address))
        as_bytes = raw.cast("B")
        view = as_bytes.cast(fmt)
        # Released newest first: a view cannot be released while a view made from it is alive.
        self._views.extend((raw, as_bytes, view))
        return view

    def release(self, callback: str) -> None:
        for view in reversed(self._views):
            try:
                view.release()
            except BufferError:
                log.warning(
                    "%s: a frame buffer was still referenced after the callback returned (e.g. by numpy); "
                    "copy it with bytes() instead of keeping a view",
                    callback,
                )
        self._views.clear()


def _planes(views: _Views, data: Any, lengths: Any) -> Tuple[memoryview, ...]:
    if not data or not lengths:
        return ()
    addresses = ctypes.cast(data, ctypes.POINTER(ctypes.c_void_p))
    planes = []
    for i in range(4):
        address, length = addresses[i], lengths[i]
        if address and length:
            planes.append(views.over(address, length, ctypes.c_uint8, "B"))
    return tuple(planes)


def _samples(views: _Views, pointer: Any, count: int) -> memoryview:
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    if not address or not count:
        return memoryview(b"").cast("h")
    return views.over(address, count, ctypes.c_int16, "h")


def convert(spec: "_native.CallbackSpec", raw: Sequence[Any], views: _Views) -> List[Any]:
    """The Python arguments of one call of `spec`'s callback (`raw` without `user_context`)."""
    out: List[Any] = []
    i = 0
    for arg in spec.args:
        value = raw[i]
        if arg.kind == "str":
            out.append(_types._text(value))
        elif arg.kind == "enum":
            out.append(_types._enum(_types.ENUMS[arg.type_name], value))
        elif arg.kind == "struct":
            out.append(_types.STRUCTS[arg.type_name]._from_c(value.contents) if value else None)
        elif arg.kind == "structs":
            count = raw[i + 1]
            kind = _types.STRUCTS[arg.type_name]
            out.append([kind._from_c(value[j]) for j in range(count)] if value else [])
        elif arg.kind == "samples":
            out.append(_samples(views, value, raw[i + 1]))
        elif arg.kind == "bytes":
            address = ctypes.cast(value, ctypes.c_void_p).value
            length = raw[i + 1]
            out.append(ctypes.string_at(address, length) if address and length else b"")
        elif arg.kind == "planes":
            out.append(_planes(views, value, raw[i + 1]))
        else:
            out.append(value)
        i += arg.width
    return out


def trampoline(spec: "_native.CallbackSpec", handlers: Callable[[], Sequence[Handler]]) -> Any:
    """A ctypes function for `spec` that calls every handler `handlers()` returns at the time of the call."""

    def call(*raw: Any) -> None:
        if sys.is_finalizing():
            return  # Handlers and the modules they use are being torn down; engines were destroyed at exit.
        views = _Views()
        try:
            args = convert(spec, raw[:-1], views)
            for handler in handlers():
                try:
                    handler(*args)
                except Exception:  # noqa: BLE001 - a handler must never take the SDK's thread down
                    log.exception("exception in the %s handler %r", spec.name, handler)
        except Exception:  # noqa: BLE001
            log.exception("cannot deliver %s", spec.name)
        finally:
            views.release(spec.name)

    return spec.cfunctype(call)
