"""`audit export` says the exchange time the engine gave each trade, also for a gateway with a wrong clock."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import RedisServer
from tests.integration.journal.support import ONE_TRADE, running_engine, wait_applied
from tradewire import keys
from tradewire.cli import app
from tradewire.journal.entries import command_fields

DAY = 86_400_000


@pytest.mark.asyncio
async def test_export_rows_carry_the_exchange_time_the_engine_gave_the_trade(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The taker's gateway clock is a day ahead: the engine holds the trade's time (myTrades, the
    order record) within a second of Redis's clock, and `audit export` must say the same time for
    the trade (it said the gateway's stamp: found by a second reading)."""
    commands = ONE_TRADE
    async with running_engine(redis_server.url, batch=10):
        last = b""
        for index, command in enumerate(commands):
            now = time.time_ns() // 1_000_000
            stamp = now + DAY if index == 3 else now  # alice's gateway runs a day ahead
            fields = command_fields(
                orjson.dumps(command), ts=stamp, rid=f"r{index}", src="t", who="k", ip="-"
            )
            last = redis_client.xadd(keys.COMMANDS, fields)  # type: ignore[arg-type]
        await asyncio.to_thread(wait_applied, redis_client, last)
    [(_, fields)] = redis_client.xrange(keys.user_trades("alice", "BTCUSDT"))
    engine_time = orjson.loads(fields[b"t"])["time"]
    assert engine_time < time.time_ns() // 1_000_000 + 2_000  # held near Redis's clock
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(
        app, ["audit", "export", "--out", str(out), "--user", "alice"], env={"REDIS_URL": redis_server.url}
    )
    assert result.exit_code == 0, result.stderr
    [trade] = [row for row in map(orjson.loads, out.read_bytes().splitlines()) if row["record"] == "trade"]
    assert trade["ts"] == engine_time
