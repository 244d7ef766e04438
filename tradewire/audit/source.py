"""Reading what the exchange recorded, for the audit: the only module of the audit that talks to Redis.

It reads ``tw:{0}:commands`` and ``tw:{0}:events`` page by page through the journal package's
iterators (``tradewire.journal.streams``, never a whole stream at once), the exchange config from
``tw:config``, and a consistent cut of the balances: the ``tw:bal:<user>`` hashes together with
``tw:{0}:applied`` in one ``MULTI``/``EXEC``. The engine writes
a batch's balances and its ``applied`` marker in one transaction, so the cut shows the balances as of
exactly that journal position, even while the engine keeps running.

Entries come out as plain frozen dataclasses with text fields; the pure checks in
``tradewire.audit.replay`` and ``tradewire.audit.export`` never see redis-py types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis

from tradewire import keys
from tradewire.journal.entries import entry_int
from tradewire.journal.streams import iter_events, iter_journal

BALANCE_PREFIX = keys.balances("")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One command entry of ``tw:{0}:commands``; ``command`` stays the exact JSON bytes journalled."""

    id: str
    command: bytes
    ts: int
    rid: str
    src: str
    who: str
    ip: str


@dataclass(frozen=True, slots=True)
class RecordedEvents:
    """What the engine said command ``cmd`` did, as recorded in ``tw:{0}:events``."""

    id: str
    cmd: str
    ts: int
    rid: str
    events: bytes
    """The JSON list exactly as recorded."""


@dataclass(frozen=True, slots=True)
class BalanceCut:
    """The balances views at journal position ``applied`` (``None``: nothing applied yet)."""

    applied: str | None
    balances: dict[str, dict[str, bytes]]
    """user -> asset -> the recorded JSON ``{"free": ..., "locked": ...}``."""
    moved: bool
    """The engine applied commands while the user list was being read: users that first appeared
    in that moment may be missing from ``balances`` (they are reported as unchecked, not wrong)."""


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else ""


def _int(value: bytes | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return -1


def journal_entry(entry_id: bytes, f: dict[bytes, bytes]) -> JournalEntry:
    """One command entry, from Redis or from an archived segment."""
    return JournalEntry(
        id=entry_id.decode(),
        command=f.get(b"c", b""),
        ts=entry_int(f.get(b"ts")),  # as the engine read it: 0 when malformed
        rid=_text(f.get(b"rid")),
        src=_text(f.get(b"src")),
        who=_text(f.get(b"who")),
        ip=_text(f.get(b"ip")),
    )


def recorded_entry(entry_id: bytes, f: dict[bytes, bytes]) -> RecordedEvents:
    """One events entry, from Redis or from an archived segment."""
    return RecordedEvents(
        id=entry_id.decode(),
        cmd=_text(f.get(b"cmd")),
        ts=_int(f.get(b"ts")),
        rid=_text(f.get(b"rid")),
        events=f.get(b"e", b""),
    )


def journal(client: redis.Redis, end: str = "+") -> Iterator[JournalEntry]:
    """The command journal in Redis in order, up to entry ``end`` included."""
    for entry_id, f in iter_journal(client, end=end.encode()):
        yield journal_entry(entry_id, f)


def recorded_events(client: redis.Redis) -> Iterator[RecordedEvents]:
    """The outcomes in Redis's events stream, in order, of the commands after the archived mark
    (an events entry that holds the last archived command holds later ones too, and stays)."""
    mark = client.get(keys.ARCHIVED)
    start = b"(" + cast(bytes, mark) if mark is not None else b"-"
    for entry_id, f in iter_events(client, start):
        yield recorded_entry(entry_id, f)


def archived_mark(client: redis.Redis) -> str | None:
    """The last entry archived out of Redis (``tw:{0}:archived``), if any."""
    raw = client.get(keys.ARCHIVED)
    return None if raw is None else _text(cast(bytes, raw))


def journal_length(client: redis.Redis) -> int:
    length: int = client.xlen(keys.COMMANDS)
    return length


def stored_config(client: redis.Redis) -> Any | None:
    """The config JSON the engine runs with (``tw:config``), parsed; ``None`` when there is none."""
    raw = client.get(keys.CONFIG)
    return None if raw is None else orjson.loads(raw)


def balance_cut(client: redis.Redis) -> BalanceCut:
    """Every ``tw:bal:<user>`` hash and ``tw:{0}:applied``, read in one transaction."""
    before = client.get(keys.APPLIED)
    names = sorted(set(client.scan_iter(match=BALANCE_PREFIX + "*", count=1000)))
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.APPLIED)
    for name in names:
        pipe.hgetall(name)
    applied, *hashes = pipe.execute()
    prefix = len(BALANCE_PREFIX)
    balances = {
        name.decode()[prefix:]: {_text(asset): value for asset, value in fields.items()}
        for name, fields in zip(names, hashes, strict=True)
    }
    return BalanceCut(applied=_text(applied) or None, balances=balances, moved=applied != before)
