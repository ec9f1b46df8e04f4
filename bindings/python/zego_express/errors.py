"""The exception every failing call raises."""

from typing import Optional


class ZegoError(Exception):
    """A ZEGO error code returned by the SDK, with its message.

    ``code`` is the number (compare it with :class:`zego_express.ErrorCode`), ``name`` its constant name when this
    version knows it, and ``function`` the C function that returned it, when there was one.
    """

    def __init__(self, code: int, message: Optional[str] = None, function: Optional[str] = None) -> None:
        from ._types import ERROR_MESSAGES, ErrorCode

        self.code = int(code)
        self.message = message or ERROR_MESSAGES.get(self.code, "Unknown error code.")
        self.function = function
        try:
            self.name: Optional[str] = ErrorCode(self.code).name
        except ValueError:
            self.name = None
        where = f"{function}: " if function else ""
        label = f" {self.name}" if self.name else ""
        super().__init__(f"{where}{self.code}{label}: {self.message}")
