"""zego_express: the Python binding of zego-express, a self-hostable ultra-low-latency live streaming SDK with the
ZEGO Express API.

The shared library is found through $ZEGO_EXPRESS_LIB, next to this package, or in the cargo target folder of the
source tree (see ``_library.candidates``).
"""

from ._types import *  # noqa: F401,F403 - the enums, ErrorCode and the struct dataclasses
from ._types import ENUMS, STRUCTS
from .engine import Engine, error_message, set_log_callback, set_log_file, set_log_level, version
from .errors import ZegoError

__all__ = ["Engine", "ZegoError", "ErrorCode", "error_message", "set_log_callback", "set_log_file", "set_log_level", "version"]
__all__ += list(ENUMS) + list(STRUCTS)
