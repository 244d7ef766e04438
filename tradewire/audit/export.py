"""What an export holds: trades and balance changes per user, derived from replayed events.

Two kinds of rows, told apart by ``record``:

``trade``
    One row per side of a trade: the user, ``role`` (maker or taker), ``side``, the market, trade and
    order ids, price, quantity, quote quantity (``price * qty``), the fee and the asset it was taken in.
``balance``
    One row per user and asset that a command changed the total of (free + locked): ``change`` (signed)
    and ``balance`` (the total right after the command), with ``reason`` ``deposit``, ``withdraw``,
    ``trade`` (a user's fills netted over the command), or ``fee`` (the fee account's income). Moving
    funds between free and locked (placing, canceling an order) changes no total and makes no row.

Every row carries ``ts`` (the exchange time of the command, Unix ms), ``cmd`` (its journal entry id)
and ``rid`` (its request id), so each line traces back to one journal entry. Amounts are canonical
decimal text at the asset's precision, never floats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Final

import orjson

from tradewire.audit.source import JournalEntry
from tradewire.engine import Deposited, Engine, Event, ExchangeConfig, Trade, Withdrawn
from tradewire.engine.decimals import to_text
from tradewire.engine.engine import FEES_USER
from tradewire.journal.entries import ExchangeClock

Row = dict[str, str | int]

COLUMNS: Final = (
    "ts",
    "cmd",
    "rid",
    "record",
    "user",
    "asset",
    "change",
    "balance",
    "reason",
    "market",
    "trade_id",
    "order_id",
    "side",
    "role",
    "price",
    "qty",
    "quote_qty",
    "fee",
    "fee_asset",
)
FORMATS: Final = ("csv", "jsonl")


class Exporter:
    """Turns each replayed command's events into export rows (all users; filter afterwards)."""

    def __init__(self, config: ExchangeConfig) -> None:
        self._precision = {name: asset.precision for name, asset in config.assets.items()}
        self._markets = config.markets
        self._clock = ExchangeClock()

    def rows(self, entry: JournalEntry, events: list[Event], engine: Engine) -> list[Row]:
        """The rows of one command, given its events and the engine right after applying it; call it
        for every command in journal order (``ts`` is the exchange time the engine gave it)."""
        stamp: Row = {"ts": self._clock.advance(entry.id, entry.ts), "cmd": entry.id, "rid": entry.rid}
        trades: list[Row] = []
        deltas = _Deltas()
        for event in events:
            if isinstance(event, Deposited):
                deltas.move(event.user, event.asset, event.amount, "deposit")
            elif isinstance(event, Withdrawn):
                deltas.move(event.user, event.asset, -event.amount, "withdraw")
            elif isinstance(event, Trade):
                trades += self._trade_rows(stamp, event, deltas)
        balances = [
            self._balance_row(stamp, user, asset, change, reason, engine)
            for (user, asset), (change, reason) in deltas.by_key.items()
            if change
        ]
        return trades + balances

    def _trade_rows(self, stamp: Row, t: Trade, deltas: _Deltas) -> list[Row]:
        market = self._markets[t.market]
        base, quote = market.base.name, market.quote.name
        bp, qp = market.base.precision, market.quote.precision
        buy = t.taker_side == "buy"
        # The taker's fee is in what the taker receives, the maker's in what the maker receives.
        taker_gets, taker_gives = (base, quote) if buy else (quote, base)
        taker_amount = t.qty if buy else t.notional
        given = t.notional if buy else t.qty
        move = deltas.move
        move(t.taker_user, taker_gets, taker_amount - t.taker_fee, "trade")
        move(t.taker_user, taker_gives, -given, "trade")
        move(t.maker_user, taker_gives, given - t.maker_fee, "trade")
        move(t.maker_user, taker_gets, -taker_amount, "trade")
        move(FEES_USER, taker_gets, t.taker_fee, "fee")
        move(FEES_USER, taker_gives, t.maker_fee, "fee")
        common: Row = {
            **stamp,
            "record": "trade",
            "market": t.market,
            "trade_id": t.trade_id,
            "price": to_text(t.price, qp),
            "qty": to_text(t.qty, bp),
            "quote_qty": to_text(t.notional, qp),
        }
        taker_fee_places = self._precision[taker_gets]
        maker_fee_places = self._precision[taker_gives]
        return [
            {
                **common,
                "user": t.taker_user,
                "order_id": t.taker_order_id,
                "side": t.taker_side,
                "role": "taker",
                "fee": to_text(t.taker_fee, taker_fee_places),
                "fee_asset": taker_gets,
            },
            {
                **common,
                "user": t.maker_user,
                "order_id": t.maker_order_id,
                "side": "sell" if buy else "buy",
                "role": "maker",
                "fee": to_text(t.maker_fee, maker_fee_places),
                "fee_asset": taker_gives,
            },
        ]

    def _balance_row(
        self, stamp: Row, user: str, asset: str, change: int, reason: str, engine: Engine
    ) -> Row:
        places = self._precision[asset]
        free, locked = engine.balances.get(user, {}).get(asset, [0, 0])
        return {
            **stamp,
            "record": "balance",
            "user": user,
            "asset": asset,
            "change": to_text(change, places),
            "balance": to_text(free + locked, places),
            "reason": reason,
        }


class _Deltas:
    """Signed changes of totals per (user, asset) over one command, with the first reason seen."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], tuple[int, str]] = {}

    def move(self, user: str, asset: str, amount: int, reason: str) -> None:
        change, first = self.by_key.get((user, asset), (0, reason))
        self.by_key[user, asset] = (change + amount, first)


def selected(row: Row, since: int | None, until: int | None, user: str | None) -> bool:
    """Whether ``row`` is in the period ``since <= ts <= until`` (bounds optional) and for ``user``."""
    ts = int(row["ts"])
    if since is not None and ts < since:
        return False
    if until is not None and ts > until:
        return False
    return user is None or row["user"] == user


def encoder(fmt: str) -> tuple[bytes, Callable[[Row], bytes]]:
    """The file's header and the encoding of one row, for CSV (every column, blanks where a row has
    no value) or JSON lines (only the row's own keys)."""
    if fmt == "jsonl":
        return b"", _jsonl
    if fmt != "csv":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, restval="", lineterminator="\n")

    def line(row: Row) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue().encode()

    return (",".join(COLUMNS) + "\n").encode(), line


def _jsonl(row: Row) -> bytes:
    return orjson.dumps(row) + b"\n"
