"""What a slow connection could not be sent yet, merged where the stream allows it.

A connection whose transport buffer is full does not make anyone wait: new messages go into its
backlog instead, and the backlog is bounded. Three kinds of message behave differently there:

- ``diff`` (``@depth``): consecutive diffs of a stream merge into one, exactly as Binance's own
  slower streams aggregate: ``U`` and ``pu`` of the first, ``u``, ``E`` and ``cs`` of the last, and
  per price level the newest quantity. Applying the merged diff gives the same book as applying the
  diffs one by one, so a conflated client stays correct, only coarser;
- ``latest`` (partial books, tickers, book tickers): only the newest value matters; it replaces the
  queued one in place;
- ``plain`` (trades, klines, user data, replies): queued as they are.

When the queued bytes pass the limit the connection is too slow to serve and is closed; the caller
does that. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Literal

import orjson

Kind = Literal["diff", "latest", "plain"]
LEVEL_BYTES: Final = 32
"""Roughly what one merged price level costs on the wire, for the byte budget."""


class MergedDiff:
    """Several ``depthUpdate`` payloads of one stream merged into one."""

    __slots__ = ("asks", "bids", "head")

    def __init__(self, payload: dict[str, Any]) -> None:
        self.head = {key: value for key, value in payload.items() if key not in ("b", "a")}
        self.bids: dict[str, str] = {price: qty for price, qty in payload.get("b", ())}
        self.asks: dict[str, str] = {price: qty for price, qty in payload.get("a", ())}

    def merge(self, payload: dict[str, Any]) -> None:
        for key in ("e", "E", "s", "u", "cs"):
            if key in payload:
                self.head[key] = payload[key]
        for price, qty in payload.get("b", ()):
            self.bids[price] = qty
        for price, qty in payload.get("a", ()):
            self.asks[price] = qty

    @property
    def size(self) -> int:
        return (len(self.bids) + len(self.asks)) * LEVEL_BYTES + 100

    def render(self) -> bytes:
        out = dict(self.head)
        out["b"] = [[p, self.bids[p]] for p in sorted(self.bids, key=Decimal, reverse=True)]
        out["a"] = [[p, self.asks[p]] for p in sorted(self.asks, key=Decimal)]
        # Keep Binance's key order: e, E, s, U, u, pu, b, a, cs.
        order = ("e", "E", "s", "U", "u", "pu", "b", "a", "cs")
        ordered = {key: out[key] for key in order if key in out}
        ordered.update({key: value for key, value in out.items() if key not in ordered})
        return orjson.dumps(ordered)


class _Entry:
    __slots__ = ("diff", "payload", "stream")

    def __init__(self, stream: str, payload: bytes | None, diff: MergedDiff | None) -> None:
        self.stream = stream
        self.payload = payload
        self.diff = diff


class Backlog:
    """A slow connection's queue; :meth:`add` returns False once it is over ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.conflated = 0
        self._entries: list[_Entry] = []
        self._open: dict[str, _Entry] = {}
        """Per stream, the queued diff or latest value that newer messages of that stream merge into."""

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, stream: str, kind: Kind, payload: bytes, key: str | None = None) -> bool:
        """Queue ``payload`` of ``stream`` (the name it is wrapped with). Diffs and latest values
        merge with the queued one of the same ``key`` (default: the name): the markets of an
        all-market stream share its name, and each keeps its own latest value."""
        if kind == "plain":
            self._entries.append(_Entry(stream, payload, None))
            self.size += len(payload)
            return self.size <= self.limit
        if key is None:
            key = stream
        current = self._open.get(key)
        if kind == "latest":
            if current is not None and current.payload is not None:
                self.size += len(payload) - len(current.payload)
                current.payload = payload
                self.conflated += 1
            else:
                entry = _Entry(stream, payload, None)
                self._entries.append(entry)
                self._open[key] = entry
                self.size += len(payload)
            return self.size <= self.limit
        decoded = orjson.loads(payload)
        if current is not None and current.diff is not None:
            before = current.diff.size
            current.diff.merge(decoded)
            self.size += current.diff.size - before
            self.conflated += 1
        else:
            merged = MergedDiff(decoded)
            entry = _Entry(stream, None, merged)
            self._entries.append(entry)
            self._open[key] = entry
            self.size += merged.size
        return self.size <= self.limit

    def drain(self, wrap: Callable[[str, bytes], bytes]) -> list[bytes]:
        """Every queued message in order, each passed through ``wrap(stream, payload)``; empties it."""
        out: list[bytes] = []
        for entry in self._entries:
            payload = entry.diff.render() if entry.diff is not None else entry.payload
            assert payload is not None
            out.append(wrap(entry.stream, payload))
        self._entries.clear()
        self._open.clear()
        self.size = 0
        return out
