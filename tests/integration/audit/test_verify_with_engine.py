"""The audit against the record the real engine service writes, not only against the contract."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import RedisServer
from tests.integration.audit.recorder import CONFIG, Command, workload
from tradewire import keys
from tradewire.cli import app
from tradewire.engine import ExchangeConfig
from tradewire.journal.entries import command_fields
from tradewire.journal.service import EngineService, Settings


def _journal(client: redis.Redis, commands: list[Command]) -> bytes:
    """XADD the commands as a gateway does; the last entry id."""
    pipe = client.pipeline(transaction=False)
    now = time.time_ns() // 1_000_000
    for command in commands:
        line = command if isinstance(command, bytes) else orjson.dumps(command)
        fields = command_fields(
            line, ts=now, rid=uuid.uuid4().hex, src="audit-test", who="k-1", ip="10.1.2.3"
        )
        pipe.xadd(keys.COMMANDS, fields)
    ids: list[bytes] = pipe.execute()
    return ids[-1]


async def _run_engine_until(server: RedisServer, last: bytes) -> None:
    settings = Settings(server.url, ExchangeConfig.from_dict(CONFIG), CONFIG, snapshot_every=100)
    service = EngineService(settings)
    task = asyncio.create_task(service.run())
    try:
        deadline = time.monotonic() + 60
        while service.applied != last:
            if task.done():
                task.result()
            assert time.monotonic() < deadline, f"engine stuck at {service.applied!r}"
            await asyncio.sleep(0.02)
    finally:
        service.stopping.set()
        await asyncio.wait_for(task, 30)


def _verify(server: RedisServer) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify"], env={"REDIS_URL": server.url})
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.asyncio
async def test_verify_with_record_written_by_engine_service_passes_then_catches_tampering(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    last = _journal(redis_client, workload(seed=11, n=400))
    await _run_engine_until(redis_server, last)

    status, out = _verify(redis_server)
    assert status == 0, out
    assert f"verified: 412 journal entries, up to {last.decode()}" in out

    # One more command journalled but not applied: pending, not a divergence.
    _journal(redis_client, [{"type": "deposit", "user": "eve", "asset": "BTC", "amount": "1"}])
    status, out = _verify(redis_server)
    assert status == 0, out
    assert "pending: 1 entries" in out

    stored = orjson.loads(redis_client.hget(keys.balances("ann"), "USDT"))  # type: ignore[arg-type]
    redis_client.hset(keys.balances("ann"), "USDT", orjson.dumps({**stored, "locked": "0.000001"}))
    status, out = _verify(redis_server)
    assert status == 1
    assert "divergence at balances:ann: USDT: balance differs" in out
