"""Ids shaped like the real API's: request ids (``req_011…``) and message ids (``msg_01…``).

They only need the right shape and to be unique in practice, not to be secret: one read of the OS's random source
per id, each byte mapped onto the 62 letters and digits (a negligible bias towards ``0``–``7``).
"""

from __future__ import annotations

import secrets
import string

__all__ = ["new_message_id", "new_request_id"]

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BYTE_TO_BASE62 = bytes(ord(_BASE62[i % 62]) for i in range(256))


def _base62(length: int) -> str:
    return secrets.token_bytes(length).translate(_BYTE_TO_BASE62).decode("ascii")


def new_request_id() -> str:
    """A request id: ``req_011`` then 21 base62 characters."""
    return "req_011" + _base62(21)


def new_message_id() -> str:
    """A message id: ``msg_01`` then 22 base62 characters."""
    return "msg_01" + _base62(22)
