"""``tradewire audit export``: trades and balance changes per user, read back from a real Redis."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import RedisServer
from tests.integration.audit.recorder import T0, entry_id, record, rewrite
from tradewire import keys
from tradewire.audit.export import COLUMNS
from tradewire.cli import app

SCENARIO: list[dict[str, Any]] = [
    {"type": "deposit", "user": "ann", "asset": "USDT", "amount": "1000"},
    {"type": "deposit", "user": "ben", "asset": "BTC", "amount": "1"},
    {"type": "new_order", "user": "ben", "market": "BTC-USDT", "side": "sell", "kind": "limit", "qty": "0.5",
     "price": "100"},
    {"type": "new_order", "user": "ann", "market": "BTC-USDT", "side": "buy", "kind": "limit", "qty": "0.2",
     "price": "100"},
    {"type": "withdraw", "user": "ann", "asset": "USDT", "amount": "100"},
]  # fmt: skip


@pytest.fixture
def scenario(redis_client: redis.Redis) -> redis.Redis:
    record(redis_client, SCENARIO)
    return redis_client


def _export(server: RedisServer, out: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["audit", "export", "--out", str(out), *args], env={"REDIS_URL": server.url}
    )
    return result.exit_code, result.stdout, result.stderr


def _stamp(index: int) -> dict[str, Any]:
    return {"ts": T0 + index, "cmd": entry_id(index), "rid": f"{index:032x}"}


def test_export_jsonl_for_one_user_lists_her_trades_and_balance_changes(
    redis_server: RedisServer, scenario: redis.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "ann.jsonl"
    status, stdout, stderr = _export(redis_server, out, "--user", "ann")
    assert status == 0, stderr
    assert "wrote 1 trade sides and 4 balance changes" in stdout
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    balance = {"record": "balance", "user": "ann"}
    assert rows == [
        {**_stamp(0), **balance, "asset": "USDT", "change": "1000", "balance": "1000", "reason": "deposit"},
        {
            **_stamp(3),
            "record": "trade",
            "market": "BTC-USDT",
            "trade_id": 1,
            "price": "100",
            "qty": "0.2",
            "quote_qty": "20",
            "user": "ann",
            "order_id": 2,
            "side": "buy",
            "role": "taker",
            "fee": "0.0004",
            "fee_asset": "BTC",
        },
        {**_stamp(3), **balance, "asset": "BTC", "change": "0.1996", "balance": "0.1996", "reason": "trade"},
        {**_stamp(3), **balance, "asset": "USDT", "change": "-20", "balance": "980", "reason": "trade"},
        {**_stamp(4), **balance, "asset": "USDT", "change": "-100", "balance": "880", "reason": "withdraw"},
    ]


def test_export_csv_for_everyone_has_every_column_and_conserves_each_asset(
    redis_server: RedisServer, scenario: redis.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "all.csv"
    status, _, stderr = _export(redis_server, out, "--format", "csv")
    assert status == 0, stderr
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    trade_rows = [row for row in rows if row["record"] == "trade"]
    assert [(r["user"], r["role"], r["side"], r["fee"], r["fee_asset"]) for r in trade_rows] == [
        ("ann", "taker", "buy", "0.0004", "BTC"),
        ("ben", "maker", "sell", "0.02", "USDT"),
    ]
    trade_changes = [row for row in rows if row["record"] == "balance" and row["cmd"] == entry_id(3)]
    by_key = {(r["user"], r["asset"]): (r["change"], r["reason"]) for r in trade_changes}
    assert by_key == {
        ("ann", "BTC"): ("0.1996", "trade"),
        ("ann", "USDT"): ("-20", "trade"),
        ("ben", "USDT"): ("19.98", "trade"),
        ("ben", "BTC"): ("-0.2", "trade"),
        ("fees", "BTC"): ("0.0004", "fee"),
        ("fees", "USDT"): ("0.02", "fee"),
    }
    ben_btc = [r["balance"] for r in rows if r["user"] == "ben" and r["asset"] == "BTC"]
    assert ben_btc == ["1", "0.8"]  # 0.3 of it still locked in the resting sell: totals count it


def test_export_with_period_keeps_only_commands_inside_it(
    redis_server: RedisServer, scenario: redis.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "period.jsonl"
    status, _, stderr = _export(redis_server, out, "--since", str(T0 + 2), "--until", str(T0 + 3))
    assert status == 0, stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert {row["cmd"] for row in rows} == {entry_id(3)}
    assert len(rows) == 8  # two trade sides, six balance changes


def test_export_with_tampered_record_exits_1_and_writes_nothing(
    redis_server: RedisServer, scenario: redis.Redis, tmp_path: Path
) -> None:
    rewrite(scenario, keys.EVENTS, entry_id(4), lambda f: {**f, b"e": f[b"e"].replace(b'"100"', b'"10"')})
    folder = tmp_path / "exports"
    folder.mkdir()
    status, _, stderr = _export(redis_server, folder / "x.jsonl")
    assert status == 1
    assert f"divergence at {entry_id(4)}: events differ" in stderr
    assert list(folder.iterdir()) == []


def test_export_with_unknown_format_exits_2(redis_server: RedisServer, tmp_path: Path) -> None:
    status, _, stderr = _export(redis_server, tmp_path / "x", "--format", "xml")
    assert status == 2
    assert "--format: must be one of csv, jsonl, not 'xml'" in stderr


def test_export_into_missing_directory_exits_2_naming_the_file(
    redis_server: RedisServer, scenario: redis.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "x.csv"
    status, _, stderr = _export(redis_server, out)
    assert status == 2
    assert f"audit export: cannot write {out}: No such file or directory" in stderr
