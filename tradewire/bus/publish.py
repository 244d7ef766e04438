"""Publishing market data with per-channel offsets, epochs and a bounded history.

Plain Pub/Sub forgets: a subscriber that reconnects, or that Redis cut off at its output-buffer
limit, never learns what it missed. So every market-data publication goes through one server-side
script (as Centrifugo's Redis engine does) that, atomically:

1. increments the channel's offset in ``md:{M}:<stream>:meta`` (field ``offset``; 1, 2, 3, ...);
2. creates the channel's epoch if absent (with a candidate the publisher passes; read first, as it
   nearly always exists, which saves a call per channel and batch over ``HSETNX`` + ``HGET``): the
   epoch survives as long as Redis keeps the meta hash, and changes exactly when the history was lost;
3. appends the message to the capped stream ``md:{M}:<stream>:history`` with entry id
   ``<offset>-0`` and field ``m``;
4. publishes it on ``md:{M}:<stream>``.

The message, in the history and on the channel alike, is ASCII ``"<offset> <epoch> <payload>"``.
One call may carry several payloads for the same channel (a batch's trades of one market): they get
consecutive offsets, in order, exactly as that many calls would give them. It may also carry several
channels of one market (all of a batch's depth, trade, kline and ticker publications of that market),
handled in the order given: a market costs one script call per batch, not one per stream. Every key
of a call has the market's hash tag, so Redis Cluster can run it on the market's shard.

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
local candidate, maxlen = ARGV[1], ARGV[2]
local at = 3
local last = 0
for k = 1, #KEYS, 2 do
  local channel, count = ARGV[at], tonumber(ARGV[at + 1])
  last = redis.call('HINCRBY', KEYS[k], 'offset', count)
  local epoch = redis.call('HGET', KEYS[k], 'epoch')
  if not epoch then
    redis.call('HSET', KEYS[k], 'epoch', candidate)
    epoch = candidate
  end
  for i = 1, count do
    local offset = last - count + i
    local message = offset .. ' ' .. epoch .. ' ' .. ARGV[at + 1 + i]
    redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', maxlen, offset .. '-0', 'm', message)
    redis.call('PUBLISH', channel, message)
  end
  at = at + 2 + count
end
return last
"""
"""KEYS: per channel its meta hash and its history stream. ARGV: candidate epoch, history length,
then per channel (in the order of KEYS) its name, the number of its payloads and the payloads.
Returns the offset of the last payload of the last channel."""

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
    return publish_market_op(market, [(stream, payloads)], epoch)


def publish_market_op(
    market: str, runs: Sequence[tuple[str, Sequence[bytes | str]]], epoch: bytes
) -> tuple[bytes | str, ...]:
    """One script call that publishes, in order, each ``(stream, payloads)`` run of ``market``.

    A stream may come in more than one run; its offsets continue from run to run.
    """
    meta: list[bytes | str] = []
    args: list[bytes | str] = [epoch, _HISTORY_ARG]
    for stream, payloads in runs:
        meta += (keys.md_meta(market, stream), keys.md_history(market, stream))
        args += (keys.md(market, stream), b"%d" % len(payloads), *payloads)
    return (b"EVALSHA", SHA, b"%d" % len(meta), *meta, *args)


def message(offset: int, epoch: bytes, payload: bytes) -> bytes:
    """The published bytes for ``payload`` at ``offset`` of ``epoch`` (what the script builds)."""
    return b"%d %s %s" % (offset, epoch, payload)
