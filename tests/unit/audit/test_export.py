"""Export rows from replayed events, and their CSV / JSON-lines encoding, without Redis."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest

from tests.unit.audit.support import CONFIG
from tradewire.audit.export import COLUMNS, Exporter, Row, encoder, selected
from tradewire.audit.source import JournalEntry
from tradewire.engine import Engine, decode


def _rows(commands: list[dict[str, Any]]) -> list[Row]:
    engine, exporter = Engine(CONFIG), Exporter(CONFIG)
    rows: list[Row] = []
    for i, command in enumerate(commands):
        line = orjson.dumps(command)
        entry = JournalEntry(f"{i}-0", line, 1000 + i, f"r{i}", "gw", "k", "-")
        rows += exporter.rows(entry, engine.apply(decode(line)), engine)
    return rows


def _deposit(user: str, asset: str, amount: str) -> dict[str, Any]:
    return {"type": "deposit", "user": user, "asset": asset, "amount": amount}


def _limit(user: str, side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {"type": "new_order", "user": user, "market": "BTC-USDT", "side": side, "kind": "limit",
            "qty": qty, "price": price, **extra}  # fmt: skip


def _changes(rows: list[Row], ts: int) -> dict[tuple[str, str], tuple[str, str, str]]:
    return {
        (str(r["user"]), str(r["asset"])): (str(r["change"]), str(r["balance"]), str(r["reason"]))
        for r in rows
        if r["record"] == "balance" and r["ts"] == ts
    }


def test_rows_with_taker_selling_into_a_bid_move_quote_to_the_seller_less_fees() -> None:
    rows = _rows(
        [
            _deposit("ann", "USDT", "1000"),
            _deposit("ben", "BTC", "1"),
            _limit("ann", "buy", "0.5", "100"),
            _limit("ben", "sell", "0.2", "100"),
        ]
    )
    trade_sides = [r for r in rows if r["record"] == "trade"]
    assert [(r["user"], r["role"], r["side"], r["fee"], r["fee_asset"]) for r in trade_sides] == [
        ("ben", "taker", "sell", "0.04", "USDT"),  # 0.2% of 20 USDT
        ("ann", "maker", "buy", "0.0002", "BTC"),  # 0.1% of 0.2 BTC
    ]
    assert _changes(rows, 1003) == {
        ("ben", "USDT"): ("19.96", "19.96", "trade"),
        ("ben", "BTC"): ("-0.2", "0.8", "trade"),
        ("ann", "BTC"): ("0.1998", "0.1998", "trade"),
        ("ann", "USDT"): ("-20", "980", "trade"),  # 30 of the 980 still locked in the rest of the bid
        ("fees", "USDT"): ("0.04", "0.04", "fee"),
        ("fees", "BTC"): ("0.0002", "0.0002", "fee"),
    }


def test_rows_with_self_trade_net_each_asset_to_the_fees_paid() -> None:
    rows = _rows(
        [
            _deposit("ann", "USDT", "1000"),
            _deposit("ann", "BTC", "1"),
            _limit("ann", "sell", "0.1", "100", stp="none"),
            _limit("ann", "buy", "0.1", "100", stp="none"),
        ]
    )
    assert [r["role"] for r in rows if r["record"] == "trade"] == ["taker", "maker"]
    assert _changes(rows, 1003) == {
        ("ann", "BTC"): ("-0.0002", "0.9998", "trade"),
        ("ann", "USDT"): ("-0.01", "999.99", "trade"),
        ("fees", "BTC"): ("0.0002", "0.0002", "fee"),
        ("fees", "USDT"): ("0.01", "0.01", "fee"),
    }


def test_rows_with_orders_placed_and_canceled_only_are_empty() -> None:
    rows = _rows(
        [
            _deposit("ann", "USDT", "1000"),
            _limit("ann", "buy", "1", "100"),
            {"type": "cancel", "user": "ann", "market": "BTC-USDT", "order_id": 1},
            {"type": "withdraw", "user": "ann", "asset": "USDT", "amount": "5000"},
        ]
    )
    assert [r["ts"] for r in rows] == [1000]  # the deposit; the refused withdrawal moved nothing


def test_selected_with_period_and_user_keeps_bounds_inclusive() -> None:
    row: Row = {"ts": 10, "user": "ann", "record": "balance"}
    assert selected(row, 10, 10, "ann")
    assert selected(row, None, None, None)
    assert not selected(row, 11, None, None)
    assert not selected(row, None, 9, None)
    assert not selected(row, None, None, "ben")


def test_csv_encoder_with_awkward_user_name_round_trips_through_csv_reader() -> None:
    header, encode = encoder("csv")
    row: Row = {"ts": 1, "cmd": "1-0", "rid": "r", "record": "balance", "user": 'a,"b"\nc', "change": "1"}
    text = (header + encode(row)).decode()
    (parsed,) = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(parsed) == COLUMNS
    assert parsed["user"] == 'a,"b"\nc'
    assert parsed["market"] == ""


def test_jsonl_encoder_with_row_writes_only_its_keys() -> None:
    header, encode = encoder("jsonl")
    assert header == b""
    assert encode({"ts": 1, "user": "ann"}) == b'{"ts":1,"user":"ann"}\n'


def test_encoder_with_unknown_format_names_the_choices() -> None:
    with pytest.raises(ValueError, match="format must be one of csv, jsonl, not 'xml'"):
        encoder("xml")
