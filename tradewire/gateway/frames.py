"""WebSocket frames and stream envelopes, built by byte concatenation.

The engine renders every market-data payload once; the gateway must not decode and re-encode it for
each of thousands of subscribers. So a payload is wrapped exactly once per stream name and framing
(``{"stream": ..., "data": ...}`` for combined connections, nothing for raw ones), and the finished
frame (header + payload: server frames are never masked) is the same ``bytes`` object written to
every subscriber's transport.

Batched frames (a tradewire extension a client opts into) carry several messages as one JSON array,
``[m1,m2,...]``: a client reads one frame and iterates, the server writes one frame instead of ten.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

OP_TEXT: Final = 0x1
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, final (FIN) frame carrying ``payload``."""
    first = 0x80 | opcode
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return _LEN16.pack(first, 126, size) + payload
    return _LEN64.pack(first, 127, size) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit the 123 bytes a control frame allows."""
    data = reason.encode("utf-8")[:123]
    return frame(struct.pack("!H", code) + data, OP_CLOSE)


def combined(stream: bytes, payload: bytes) -> bytes:
    """The combined-stream envelope ``{"stream":"<name>","data":<payload>}``."""
    return b'{"stream":"' + stream + b'","data":' + payload + b"}"


def batch(messages: Sequence[bytes]) -> bytes:
    """Several messages as one JSON array, the payload of one batched frame."""
    return b"[" + b",".join(messages) + b"]"
