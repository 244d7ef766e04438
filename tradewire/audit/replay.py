"""The audit's proof, as a pure computation: replay the journal and compare with what was recorded.

The journal is the truth (``docs/internals.md``): replaying its commands, in order, through a fresh
engine must give exactly the events the live engine recorded for each of them, and end at exactly
the balances the live engine left in the ``tw:bal:<user>`` views. :class:`JournalAudit` is fed one
journal entry and the recorded events entry that answers it at a time (the caller reads them from
Redis in chunks) and stops at the first thing that does not match, naming it: the journal entry,
what replay expected and what was recorded. Trades are events, so a changed price, quantity, fee or
counterparty in the record is a divergence of that command's events.

While it goes it folds every entry (id, exchange time, request id, command bytes, events) into a
SHA-256 digest: two auditors who verified the same journal print the same digest, and a digest noted
at one audit proves at the next that history up to that point has not been rewritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tradewire.audit.source import JournalEntry, RecordedEvents
from tradewire.engine import Engine, Event, EventCodec, ExchangeConfig, Trade, decode
from tradewire.engine.decimals import to_text, to_units
from tradewire.journal.entries import ExchangeClock


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place where the record and the replay disagree."""

    entry: str
    """The journal entry id (or ``balances:<user>`` for the final balances)."""
    what: str
    expected: Any
    recorded: Any

    def describe(self) -> str:
        return (
            f"divergence at {self.entry}: {self.what}\n"
            f"  expected (replay): {orjson.dumps(self.expected).decode()}\n"
            f"  recorded:          {orjson.dumps(self.recorded).decode()}"
        )


@dataclass(slots=True)
class Summary:
    """What a successful audit covered."""

    entries: int = 0
    trades: int = 0
    last_entry: str | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    users: int = 0
    unchecked_users: list[str] = field(default_factory=list)
    digest: str = ""


def entry_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable pair: ``"1700000000000-3"`` -> ``(1700000000000, 3)``."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _json_or_text(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


class JournalAudit:
    """Replays journal entries one by one and checks each against its recorded events.

    It replays with the pure engine, on purpose: the engine service runs the native core when it is
    built, so the audit holds what the service recorded to the definition rather than to itself (a
    divergence of the native core shows up here as ``events differ``)."""

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self.engine = Engine(config)
        self.codec = EventCodec(config)
        self.summary = Summary()
        self._clock = ExchangeClock()
        self._hash = hashlib.sha256()

    def step(
        self, entry: JournalEntry, recorded: RecordedEvents | None
    ) -> tuple[list[Event], Divergence | None]:
        """Apply ``entry``; compare with ``recorded`` (``None``: the record has no events entry for it)."""
        events = self.engine.apply(decode(entry.command))
        rendered = [self.codec.render(event) for event in events]
        if recorded is None:
            return events, Divergence(entry.id, "no recorded events for this command", rendered, None)
        if recorded.cmd != entry.id:
            what = "the events entry answers another command (events out of journal order)"
            return events, Divergence(
                entry.id, what, {"cmd": entry.id}, {"cmd": recorded.cmd, "id": recorded.id}
            )
        if recorded.ts != entry.ts or recorded.rid != entry.rid:
            what = "the events entry's exchange time or request id differs from the command's"
            return events, Divergence(
                entry.id, what, {"ts": entry.ts, "rid": entry.rid}, {"ts": recorded.ts, "rid": recorded.rid}
            )
        # The engine writes exactly these bytes; parse only when they differ (key order, spacing).
        if orjson.dumps(rendered) != recorded.events:
            stored = _json_or_text(recorded.events)
            if stored != rendered:
                return events, Divergence(entry.id, "events differ", rendered, stored)
        self._fold(entry, recorded, events)
        return events, None

    def _fold(self, entry: JournalEntry, recorded: RecordedEvents, events: list[Event]) -> None:
        s = self.summary
        s.entries += 1
        s.trades += sum(1 for event in events if type(event) is Trade)
        s.last_entry = entry.id
        ts = self._clock.advance(entry.id, entry.ts)  # the exchange time the engine gave it
        s.first_ts = ts if s.first_ts is None else s.first_ts
        s.last_ts = ts
        header = f"{entry.id}\0{entry.ts}\0{entry.rid}\0".encode()
        self._hash.update(header + entry.command + b"\0" + recorded.events + b"\n")

    def extra(self, recorded: RecordedEvents) -> Divergence:
        """An events entry for a command that is not in the journal (or beyond the applied mark)."""
        return Divergence(
            recorded.cmd or recorded.id, "events recorded for no journal entry", None, recorded.id
        )

    def check_balances(
        self, recorded: Mapping[str, Mapping[str, bytes]], *, complete: bool
    ) -> Divergence | None:
        """Compare the replayed ledger with the recorded balances views.

        ``complete`` says that ``recorded`` holds every user that had a balance at the cut; when it
        does not (the engine moved while the user list was read), a user missing from it is counted
        as unchecked instead of wrong.
        """
        precision = {name: asset.precision for name, asset in self.config.assets.items()}
        users = sorted(set(self.engine.balances) | set(recorded))
        for user in users:
            if user not in recorded and not complete:
                self.summary.unchecked_users.append(user)
                continue
            replayed = self.engine.balances.get(user, {})
            stored = recorded.get(user, {})
            for asset in sorted(set(replayed) | set(stored)):
                places = precision.get(asset)
                free, locked = replayed.get(asset, [0, 0])
                if places is None:
                    return Divergence(f"balances:{user}", f"{asset}: not an asset of the config", None, asset)
                expected = {"free": to_text(free, places), "locked": to_text(locked, places)}
                raw = stored.get(asset)
                got = _recorded_balance(raw, places)
                if got != (free, locked):
                    shown = _json_or_text(raw) if raw is not None else None
                    return Divergence(f"balances:{user}", f"{asset}: balance differs", expected, shown)
        self.summary.users = len(users) - len(self.summary.unchecked_users)
        return None

    def finish(self) -> Summary:
        self.summary.digest = self._hash.hexdigest()
        return self.summary


def _recorded_balance(raw: bytes | None, places: int) -> tuple[int, int] | None:
    """``(free, locked)`` in units from a view's JSON; ``None`` if it is not that."""
    if raw is None:
        return 0, 0
    try:
        data = orjson.loads(raw)
        free = to_units(str(data["free"]), places)
        locked = to_units(str(data["locked"]), places)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if free is None or locked is None:
        return None
    return free, locked
