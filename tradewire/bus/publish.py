"""Publishing market data with per-channel offsets, epochs and a bounded history.

Plain Pub/Sub forgets: a subscriber that reconnects, or that Redis cut off at its output-buffer
limit, never learns what it missed. So every market-data publication goes through one server-side
script (as Centrifugo's Redis engine does) that, atomically:

1. increments the channel's offset in ``md:{M}:<stream>:meta`` (field ``offset``; 1, 2, 3, ...);
2. creates the channel's epoch if absent (``HSETNX`` with a candidate the publisher passes): the
   epoch survives as long as Redis keeps the meta hash, and changes exactly when the history was lost;
3. appends the message to the capped stream ``md:{M}:<stream>:history`` with entry id
   ``<offset>-0`` and field ``m``;
4. publishes it on ``md:{M}:<stream>``.

The message, in the history and on the channel alike, is ASCII ``"<offset> <epoch> <payload>"``.
One call may carry several payloads for the same channel (a batch's trades of one market): they get
consecutive offsets, in order, exactly as that many calls would give them, for one script call.

The engine runs the script inside its batch's MULTI/EXEC. A script cache emptied by a Redis restart
would make ``EVALSHA`` fail *inside* an EXEC whose other commands still run, so every transaction
that publishes starts with ``SCRIPT LOAD`` (:func:`load_op`), which costs one SHA-1 of a few hundred
bytes per batch and makes the ``EVALSHA`` calls after it certain to find the script.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Final

from tradewire import keys

HISTORY_LENGTH: Final = 2_000
"""Publications kept per channel (approximately: the stream is trimmed with ``MAXLEN ~``)."""

SCRIPT: Final = b"""
local count = #ARGV - 3
local last = redis.call('HINCRBY', KEYS[1], 'offset', count)
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[2])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
for i = 1, count do
  local offset = last - count + i
  local message = offset .. ' ' .. epoch .. ' ' .. ARGV[3 + i]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 'm', message)
  redis.call('PUBLISH', ARGV[1], message)
end
return last
"""
"""KEYS: meta hash, history stream. ARGV: channel, candidate epoch, history length, then one or more
payloads. Returns the offset of the last one."""

SHA: Final = hashlib.sha1(SCRIPT).hexdigest().encode()

_HISTORY_ARG: Final = str(HISTORY_LENGTH).encode()


def new_epoch() -> bytes:
    """A fresh epoch candidate: 16 hex characters, one word (subscribers split messages on spaces)."""
    return secrets.token_hex(8).encode()


def load_op() -> tuple[bytes, bytes, bytes]:
    """The command that makes :data:`SHA` runnable; put it first in every transaction that publishes."""
    return (b"SCRIPT", b"LOAD", SCRIPT)


def publish_op(market: str, stream: str, payload: bytes | str, epoch: bytes) -> tuple[bytes | str, ...]:
    """The ``EVALSHA`` that publishes ``payload`` on ``md:{market}:<stream>`` with offset and history.

    ``epoch`` is only a candidate: the channel keeps the epoch it already has.
    """
    return publish_run_op(market, stream, (payload,), epoch)


def publish_run_op(
    market: str, stream: str, payloads: Sequence[bytes | str], epoch: bytes
) -> tuple[bytes | str, ...]:
    """:func:`publish_op` of several payloads in order, in one script call."""
    return (
        b"EVALSHA",
        SHA,
        b"2",
        keys.md_meta(market, stream),
        keys.md_history(market, stream),
        keys.md(market, stream),
        epoch,
        _HISTORY_ARG,
        *payloads,
    )


def message(offset: int, epoch: bytes, payload: bytes) -> bytes:
    """The published bytes for ``payload`` at ``offset`` of ``epoch`` (what the script builds)."""
    return b"%d %s %s" % (offset, epoch, payload)
