"""Finding and loading the zego_express shared library."""

import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

from . import _native

_FILE_NAMES = {
    "win32": ["zego_express.dll"],
    "darwin": ["libzego_express.dylib"],
}.get(sys.platform, ["libzego_express.so"])

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def candidates() -> List[Path]:
    """Where the library is looked for, in order: $ZEGO_EXPRESS_LIB, the package folder, then the cargo target
    folder of the source tree this package sits in ($CARGO_TARGET_DIR or target/, the newest of release and debug).
    """
    found: List[Path] = []
    explicit = os.environ.get("ZEGO_EXPRESS_LIB")
    if explicit:
        found.append(Path(explicit))
    here = Path(__file__).resolve().parent
    found.extend(here / name for name in _FILE_NAMES)
    targets = []
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.append(Path(os.environ["CARGO_TARGET_DIR"]))
    targets.extend(parent / "target" for parent in here.parents)
    built = [t / profile / name for t in targets for profile in ("release", "debug") for name in _FILE_NAMES]
    built = [p for p in built if p.is_file()]
    built.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    found.extend(built)
    return found


def load() -> ctypes.CDLL:
    """The loaded library with every prototype set (loaded once per process)."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = candidates()
        explicit = os.environ.get("ZEGO_EXPRESS_LIB")
        if explicit and not Path(explicit).is_file():
            raise OSError(f"ZEGO_EXPRESS_LIB={explicit} is not a file")
        for path in tried:
            if path.is_file():
                lib = ctypes.CDLL(str(path))
                _native.bind(lib)
                _lib = lib
                return lib
        shown = "\n  ".join(str(p) for p in tried) or "(nowhere)"
        raise OSError(
            "cannot find the zego_express library; build it with `cargo build --release` or set "
            f"ZEGO_EXPRESS_LIB to its path. Looked in:\n  {shown}"
        )
