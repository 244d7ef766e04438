"""Reading Redis Streams with plain types, whichever protocol (RESP2 or RESP3) the client speaks.

redis-py returns ``XREAD`` as a list of ``[key, entries]`` under RESP2 and as a dict under RESP3,
and types every reply loosely; the journal code wants ``list[(entry_id, {field: value})]`` with bytes.
This module is that conversion, plus the two iterators that export the journal (``iter_journal``,
``iter_events``) for ``tradewire replay`` and the audit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeAlias, cast

import redis
import redis.asyncio

from tradewire import keys
from tradewire.engine.commands import decode, encode
from tradewire.journal.entries import command_outcomes

Entry: TypeAlias = tuple[bytes, dict[bytes, bytes]]

PAGE = 10_000
"""Entries fetched per ``XRANGE`` when iterating a whole stream."""
EVENTS_PAGE = 200
"""Events entries fetched per ``XRANGE``: each holds up to ``entries.EVENTS_PER_ENTRY`` outcomes."""


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected bytes or str from Redis, got {type(value).__name__}")


def entries(raw: Any) -> list[Entry]:
    """``XRANGE``/``XREAD`` entries as ``[(id, fields)]``; deleted entries (``None`` fields) are skipped."""
    out: list[Entry] = []
    for entry_id, fields in raw or ():
        if fields is None:
            continue
        mapping = fields if isinstance(fields, Mapping) else dict(zip(fields[::2], fields[1::2], strict=True))
        if type(entry_id) is bytes:  # decode_responses=False: all bytes already
            out.append((entry_id, cast(dict[bytes, bytes], mapping)))
        else:
            out.append((_bytes(entry_id), {_bytes(k): _bytes(v) for k, v in mapping.items()}))
    return out


def xread_entries(raw: Any, key: str) -> list[Entry]:
    """The entries of ``key`` in an ``XREAD`` reply (RESP2 list or RESP3 dict), ``[]`` when none."""
    if not raw:
        return []
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            if _bytes(name) == key.encode():
                # RESP3 gives [entries] (a one-element list) in some versions, entries in others.
                if value and isinstance(value[0], list) and value[0] and isinstance(value[0][0], list):
                    return entries(value[0])
                return entries(value)
        return []
    for name, value in raw:
        if _bytes(name) == key.encode():
            return entries(value)
    return []


async def xrange(
    client: redis.asyncio.Redis, key: str, start: bytes | str = "-", end: bytes | str = "+", count: int = PAGE
) -> list[Entry]:
    return entries(await client.xrange(key, min=start, max=end, count=count))


def xrange_sync(
    client: redis.Redis, key: str, start: bytes | str = "-", end: bytes | str = "+", count: int = PAGE
) -> list[Entry]:
    return entries(client.xrange(key, min=start, max=end, count=count))


def id_order(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id as a key that sorts as Redis orders ids (``10-0`` after ``9-5``)."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or b"0")


def after(entry_id: bytes) -> bytes:
    """The exclusive start ``(id`` for ``XRANGE`` after ``entry_id``."""
    return b"(" + entry_id


def iter_stream(
    client: redis.Redis, key: str, start: bytes = b"-", end: bytes = b"+", page: int = PAGE
) -> Iterator[Entry]:
    """Every entry of ``key`` from ``start`` to ``end`` (inclusive), in order, fetched ``page`` at a time."""
    cursor = start
    while True:
        batch = xrange_sync(client, key, cursor, end, page)
        yield from batch
        if len(batch) < page:
            return
        cursor = after(batch[-1][0])


async def aiter_stream(
    client: redis.asyncio.Redis, key: str, start: bytes = b"-", end: bytes = b"+", page: int = PAGE
) -> AsyncIterator[list[Entry]]:
    """Pages of the entries of ``key`` from ``start`` to ``end`` (inclusive), in order."""
    cursor = start
    while True:
        batch = await xrange(client, key, cursor, end, page)
        if batch:
            yield batch
        if len(batch) < page:
            return
        cursor = after(batch[-1][0])


def iter_journal(client: redis.Redis, start: bytes = b"-", end: bytes = b"+") -> Iterator[Entry]:
    """The command journal ``tw:{0}:commands`` in order: ``(entry_id, fields)`` with fields ``c``,
    ``ts``, ``rid``, ``src``, ``who``, ``ip``. Feeding the ``c`` fields, one per line, to
    ``tradewire replay`` reproduces the engine's events and state."""
    return iter_stream(client, keys.COMMANDS, start, end)


def iter_events(client: redis.Redis, start: bytes = b"-", end: bytes = b"+") -> Iterator[Entry]:
    """The outcomes recorded in ``tw:{0}:events``, a command at a time in journal order: ``(command
    id, fields)`` with fields ``cmd`` (the id again), ``ts``, ``rid``, ``e`` (the events' JSON), for
    the commands from ``start`` to ``end`` included (whole ids, ``ms-seq``; ``(id``: after ``id``),
    whichever entries hold them (``entries.command_outcomes``)."""
    after_start = start.startswith(b"(")
    low = None if start == b"-" else id_order(start.lstrip(b"("))
    high = None if end == b"+" else id_order(end)
    for entry_id, fields in iter_stream(client, keys.EVENTS, start, page=EVENTS_PAGE):
        for cmd, outcome in command_outcomes(entry_id, fields):
            order = id_order(cmd)
            if low is not None and (order < low or (after_start and order == low)):
                continue
            if high is not None and order > high:
                return
            yield cmd, dict(outcome)


def replay_line(command: bytes) -> bytes:
    """``command`` as one line that ``tradewire replay`` reads exactly as the engine read the entry.

    A ``c`` field holding a line break would become two lines: a valid command is re-encoded on one
    line, anything else becomes ``{}``, which replay rejects as ``bad_command`` just as the engine did.
    """
    if b"\n" not in command and b"\r" not in command:
        return command
    decoded = decode(command)
    return encode(decoded) if decoded is not None else b"{}"


def export_commands(client: redis.Redis, out: Any) -> int:
    """Write the journal's commands in Redis as JSON lines (the input of ``tradewire replay``) to the
    binary file ``out``; returns how many. Entries archived out of Redis are in their segments
    (``tradewire.journal.archive.read_archive``)."""
    count = 0
    for _, fields in iter_journal(client):
        out.write(replay_line(fields.get(b"c", b"")) + b"\n")
        count += 1
    return count
