"""The shapes of journal entries and replies, as bytes: pure functions, no Redis.

Everything that writes or reads ``tw:{0}:commands``, ``tw:{0}:events`` or a ``tw:reply:<src>`` channel
goes through this module, so that the field names of ``docs/internals.md`` are spelled once:

* a command entry: ``c`` (command JSON), ``ts`` (exchange ms), ``rid``, ``src``, ``who``, ``ip``;
* a reply message: ``{"rid", "cmd", "ts", "events"}`` (the events: the replay spec's JSON list);
* an events entry: the outcomes of up to ``EVENTS_PER_ENTRY`` consecutive commands, under the id of
  the last of them; its fields are the commands' ids, each with the command's reply message as value.
  One entry per command (fields ``cmd``, ``ts``, ``rid``, ``e``; engines before the grouping wrote
  those) is read too. Grouped, a command's outcome costs Redis a field instead of an ``XADD``: the
  events ``XADD`` was a third of Redis's CPU per command (``bench/redis_cost.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import orjson
from redis.typing import EncodableT, FieldT

from tradewire import keys

_EVENTS = keys.EVENTS.encode()

EVENTS_PER_ENTRY: Final = 100
"""Commands whose outcomes share one events entry: a submitter that looks one up reads them all."""

Fields = Mapping[bytes, bytes]
"""A stream entry's fields as redis-py returns them (``decode_responses=False``)."""
StreamFields = dict[FieldT, EncodableT]
"""Fields to ``XADD``, typed as redis-py wants them."""


class CommandEntry(msgspec.Struct, frozen=True, gc=False):
    """One journal entry, decoded only as far as the engine needs: the command stays JSON bytes."""

    entry_id: bytes
    command: bytes
    ts: int
    rid: bytes
    src: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of one command, as the engine published it (or recorded it in the events stream)."""

    rid: str
    cmd: str
    """The command's journal entry id, e.g. ``"1700000000000-0"``."""
    ts: int
    events: list[dict[str, Any]]
    """The replay spec's events, e.g. ``[{"type": "accepted", ...}, {"type": "trade", ...}]``."""

    @property
    def accepted(self) -> bool:
        """Whether the command was taken (an order accepted, a deposit or withdrawal done, a cancel done)."""
        return bool(self.events) and self.events[0].get("type") != "rejected"

    @property
    def reason(self) -> str | None:
        """The rejection reason, or None when the command was not rejected."""
        if self.events and self.events[0].get("type") == "rejected":
            reason = self.events[0].get("reason")
            return str(reason) if reason is not None else None
        return None


def command_fields(command: bytes, *, ts: int, rid: str, src: str, who: str, ip: str) -> StreamFields:
    """The fields of a journal entry for ``command`` (JSON bytes)."""
    return {
        "c": command,
        "ts": str(ts).encode(),
        "rid": rid.encode(),
        "src": src.encode(),
        "who": who.encode(),
        "ip": ip.encode(),
    }


_INT64: Final = range(-(2**63), 2**63)


CLOCK_TOLERANCE_MS: Final = 1_000
"""How far a gateway's stamp may stray from Redis's clock before exchange time stops following it."""


def exchange_time(entry_id: bytes, ts: int) -> int:
    """The exchange time of a command entry: its gateway's stamp ``ts``, held within
    :data:`CLOCK_TOLERANCE_MS` of the time in the entry's id (Redis's clock when the entry was
    appended, never going backwards).

    Exchange time only moves forwards (``max`` over the entries), so one gateway with a clock far
    ahead would otherwise carry every later candle and ticker window there for good, and one far
    behind would hold them back. Both inputs are in the journal, so a replay gives the same times.
    An id without a number of milliseconds (none that Redis makes) leaves the stamp as it is."""
    try:
        appended = int(entry_id.partition(b"-")[0])
    except ValueError:
        return ts
    if ts > appended + CLOCK_TOLERANCE_MS:
        return appended + CLOCK_TOLERANCE_MS
    if ts < appended - CLOCK_TOLERANCE_MS:
        return appended - CLOCK_TOLERANCE_MS
    return ts


def unclamped(first_id: bytes, last_id: bytes) -> tuple[int, int]:
    """Stamps that :func:`exchange_time` leaves as they are for every entry from ``first_id`` to
    ``last_id``, in journal order (ids increasing): ``lo <= ts <= hi``, empty when the entries span
    more than twice the tolerance or their ids hold no time. A batch checks each stamp against these
    two numbers and parses an id only for a stamp outside them (parsing every id cost 0.4 µs an
    entry, 5 % of a recovery)."""
    try:
        return (
            int(last_id.partition(b"-")[0]) - CLOCK_TOLERANCE_MS,
            int(first_id.partition(b"-")[0]) + CLOCK_TOLERANCE_MS,
        )
    except ValueError:
        return 1, 0


class ExchangeClock:
    """Exchange time as the engine keeps it over the journal, for readers that replay it (the
    audit): each entry's :func:`exchange_time`, never running backwards."""

    __slots__ = ("ts",)

    def __init__(self, ts: int = 0) -> None:
        self.ts = ts

    def advance(self, entry_id: bytes | str, ts: int) -> int:
        """The exchange time of the next entry in journal order."""
        stamp = exchange_time(entry_id.encode() if isinstance(entry_id, str) else entry_id, ts)
        if stamp > self.ts:
            self.ts = stamp
        return self.ts


def entry_int(value: bytes | None, default: int = 0) -> int:
    """An integer field of a journal entry (``ts``): ``default`` when missing, malformed or outside
    64 bits (no payload, snapshot or JSON number could carry it)."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return default
    return number if number in _INT64 else default


def parse_command_entry(entry_id: bytes, fields: Fields) -> CommandEntry:
    """A command entry; missing or malformed fields become empty (the engine then rejects ``c``)."""
    return CommandEntry(
        entry_id=entry_id,
        command=fields.get(b"c", b""),
        ts=entry_int(fields.get(b"ts")),
        rid=fields.get(b"rid", b""),
        src=fields.get(b"src", b""),
    )


def _as_submitted(flat: Sequence[bytes]) -> bool:
    """Exactly the six fields :func:`command_fields` writes, in its order: no field can repeat, so
    reading them by position gives what reading them by name gives."""
    return (
        len(flat) == 12
        and flat[0] == b"c"
        and flat[2] == b"ts"
        and flat[4] == b"rid"
        and flat[6] == b"src"
        and flat[8] == b"who"
        and flat[10] == b"ip"
    )


def _by_name(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """The fields of any other entry by name, the last of a repeated one winning, as redis-py's
    reply (what the audit and the export read) holds them."""
    return dict(zip(flat[::2], flat[1::2], strict=False))


def command_and_ts(flat: Sequence[bytes]) -> tuple[bytes, int]:
    """The command and ``ts`` of a RESP2 ``[field, value, ...]`` list, read as
    :func:`parse_flat_entry` reads them: recovery and the audit must rebuild what the live engine
    applied, also from an entry with fields in another order, repeated or missing."""
    if _as_submitted(flat):
        value = flat[3]
        return flat[1], int(value) if value.isdigit() and len(value) < 19 else entry_int(value)
    fields = _by_name(flat)
    return fields.get(b"c", b""), entry_int(fields.get(b"ts"))


def parse_flat_entry(entry_id: bytes, flat: list[bytes]) -> CommandEntry:
    """A command entry from a RESP2 ``[field, value, ...]`` list (what the engine's reader gets)."""
    if _as_submitted(flat):  # the order every submitter writes: no search
        value = flat[3]
        ts = int(value) if value.isdigit() and len(value) < 19 else entry_int(value)
        return CommandEntry(entry_id, flat[1], ts, flat[5], flat[7])
    return parse_command_entry(entry_id, _by_name(flat))


def events_ops(outcomes: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, ...]]:
    """The ``XADD``s that record a batch's ``(command id, reply message)`` pairs, in journal order:
    an entry per ``EVENTS_PER_ENTRY`` commands, under the last one's id.

    A command's outcome is then the first entry at or after its id (``XRANGE <id> + COUNT 1``):
    entries cover consecutive commands, so no earlier entry can hold it, and a later one holds it
    only if it was applied (:func:`outcome_in`)."""
    ops: list[tuple[bytes, ...]] = []
    for start in range(0, len(outcomes), EVENTS_PER_ENTRY):
        chunk = outcomes[start : start + EVENTS_PER_ENTRY]
        op: list[bytes] = [b"XADD", _EVENTS, chunk[-1][0]]
        for pair in chunk:
            op += pair
        ops.append(tuple(op))
    return ops


def command_outcomes(entry_id: bytes, fields: Fields) -> list[tuple[bytes, Fields]]:
    """Each command an events entry records, as ``(command id, {cmd, ts, rid, e})`` in journal
    order, whichever layout of the module's docstring the entry has: ``e`` is the events' JSON
    exactly as the engine rendered it (a value that is no reply message is kept whole in it)."""
    if b"cmd" in fields:  # one command per entry
        return [(entry_id, fields)]
    return [(cmd, _outcome_fields(cmd, payload)) for cmd, payload in fields.items()]


def _outcome_fields(cmd: bytes, payload: bytes) -> Fields:
    """One command's outcome, from its value in a grouped entry; a value that is no reply message is
    kept whole (``ts`` and ``rid`` empty), so that the audit reports it where it lies."""
    try:
        data = orjson.loads(payload)
        answered, ts, rid = data["cmd"], data["ts"], data["rid"]
        if not (type(answered) is str and type(ts) is int and type(rid) is str):
            raise TypeError("not a reply message")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {b"cmd": cmd, b"ts": b"", b"rid": b"", b"e": payload}
    # the events are the message's last member (reply_payload), and no string before them can hold
    # this text (JSON escapes its quotes): slicing keeps their bytes as rendered. ``cmd`` is the
    # one the message names, so that a message filed under another command's id reads as such.
    at = payload.find(b',"events":')
    return {b"cmd": answered.encode(), b"ts": b"%d" % ts, b"rid": rid.encode(), b"e": payload[at + 10 : -1]}


def outcome_in(found: Sequence[tuple[bytes, Fields]], cmd: bytes) -> Reply | None:
    """Command ``cmd``'s reply from the answer to ``XRANGE tw:{0}:events <cmd> + COUNT 1``
    (``None``: not applied yet, no such command in the journal, or a value that is no reply to it)."""
    if not found:
        return None
    entry_id, fields = found[0]
    try:
        if b"cmd" in fields:
            return reply_from_events_entry(entry_id, fields) if entry_id == cmd else None
        payload = fields.get(cmd)
        reply = parse_reply(payload) if payload is not None else None
    except ValueError:  # damaged: no outcome to take (the audit reports it)
        return None
    return reply if reply is not None and reply.cmd == cmd.decode() else None


def reply_payload(entry: CommandEntry, events_json: bytes) -> bytes:
    """The message published on ``tw:reply:<src>``, built without re-encoding the events."""
    rid = entry.rid
    return b"".join(
        (
            b'{"rid":',
            b'"' + rid + b'"' if rid.isalnum() else orjson.dumps(rid.decode("utf-8", "replace")),
            b',"cmd":"',
            entry.entry_id,
            b'","ts":',
            str(entry.ts).encode(),
            b',"events":',
            events_json,
            b"}",
        )
    )


def parse_reply(payload: bytes | str) -> Reply:
    """A reply message; raises ``ValueError`` for anything that is not one."""
    try:
        data = orjson.loads(payload)
        return Reply(rid=data["rid"], cmd=data["cmd"], ts=int(data["ts"]), events=list(data["events"]))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a reply message: {exc}") from exc


def parse_replies(payload: bytes | str) -> list[Reply]:
    """The replies of one message on ``tw:reply:<src>``: the engine publishes one message per source
    and batch, one reply per line. Raises ``ValueError`` if any line is not a reply."""
    if isinstance(payload, str):
        payload = payload.encode()
    return [parse_reply(line) for line in payload.split(b"\n") if line]


def reply_from_events_entry(entry_id: bytes, fields: Fields) -> Reply:
    """The reply that the events entry ``entry_id`` records (for a submitter that missed the message)."""
    return Reply(
        rid=fields.get(b"rid", b"").decode(),
        cmd=fields.get(b"cmd", entry_id).decode(),
        ts=entry_int(fields.get(b"ts")),
        events=list(orjson.loads(fields.get(b"e", b"[]"))),
    )
