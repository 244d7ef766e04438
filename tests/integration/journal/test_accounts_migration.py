"""An exchange upgraded from account layout 1: the engine's start migrates the views on a real Redis."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis

from tests.conftest import RedisServer
from tests.integration.journal.support import journal, running_engine, wait_applied
from tradewire import keys
from tradewire.accounts.migrate import LAYOUT_KEY, migrate_accounts
from tradewire.journal.wire import Connection


def _record(order_id: int, status: str, symbol: str = "BTCUSDT", cid: str = "") -> bytes:
    return orjson.dumps({"orderId": order_id, "status": status, "symbol": symbol, "clientOrderId": cid})


def _fill(trade_id: int, symbol: str, order_id: int, maker: bool) -> bytes:
    return orjson.dumps({"symbol": symbol, "id": trade_id, "orderId": order_id, "isMaker": maker})


async def _migrate(url: str) -> bool:
    """One migration on its own connection, as the engine's start runs it."""
    conn = await Connection.open(url)
    try:
        return await migrate_accounts(conn)
    finally:
        await conn.close()


def _layout_one(client: redis.Redis) -> None:
    """What an engine of layout 1 left: records, and one fills stream per user (with a self-trade)."""
    client.hset(
        keys.orders("alice"),
        mapping={
            "1": _record(1, "FILLED", cid="a b"),
            "2": _record(2, "NEW"),
            "3": _record(3, "CANCELED", "ETHUSDT"),
            "4": _record(4, "PARTIALLY_FILLED"),
            "5": _record(5, "EXPIRED_IN_MATCH"),
        },
    )
    old = "tw:mytrades:alice"
    for fill in (
        _fill(7, "BTCUSDT", 1, False),
        _fill(3, "ETHUSDT", 3, True),
        _fill(8, "BTCUSDT", 1, False),
        _fill(8, "BTCUSDT", 4, True),  # the maker's side of a self-trade
        _fill(9, "BTCUSDT", 4, True),
    ):
        client.xadd(old, {"t": fill})


@pytest.mark.asyncio
async def test_migration_adds_old_closed_orders_and_splits_old_fills_once(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    _layout_one(redis_client)
    conn = await Connection.open(redis_server.url)
    try:
        assert await migrate_accounts(conn) is True
        members = redis_client.zrange(keys.closed_orders("alice"), 0, -1, withscores=True)
        assert members == [(b"1 BTCUSDT a b", 1.0), (b"3 ETHUSDT ", 3.0), (b"5 BTCUSDT ", 5.0)]
        btc = redis_client.xrange(keys.user_trades("alice", "BTCUSDT"))
        assert [entry_id for entry_id, _ in btc] == [b"7-0", b"8-0", b"8-1", b"9-0"]
        assert [orjson.loads(f[b"t"])["orderId"] for _, f in btc] == [1, 1, 4, 4]
        assert [entry_id for entry_id, _ in redis_client.xrange(keys.user_trades("alice", "ETHUSDT"))] == [
            b"3-0"
        ]
        assert not redis_client.exists("tw:mytrades:alice")
        assert redis_client.get(LAYOUT_KEY) == b"2"
        assert await migrate_accounts(conn) is False  # done once
        # cut short after the new streams were written but before the old one went: run again
        redis_client.delete(LAYOUT_KEY)
        redis_client.xadd("tw:mytrades:alice", {"t": _fill(7, "BTCUSDT", 1, False)})
        assert await migrate_accounts(conn) is True
        again = [e for e, _ in redis_client.xrange(keys.user_trades("alice", "BTCUSDT"))]
        assert again == [b"7-0", b"8-0", b"8-1", b"9-0"]  # nothing doubled, nothing lost
        assert len(redis_client.zrange(keys.closed_orders("alice"), 0, -1)) == 3
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_engine_started_on_layout_one_migrates_before_it_goes_live(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    _layout_one(redis_client)
    async with running_engine(redis_server.url):
        ids = journal(redis_client, ['{"type": "deposit", "user": "bob", "asset": "USDT", "amount": "1"}'])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    assert redis_client.zcard(keys.closed_orders("alice")) == 3
    assert redis_client.get(LAYOUT_KEY) == b"2"


@pytest.mark.asyncio
async def test_migration_keeps_the_per_market_fills_an_engine_of_layout_two_already_wrote(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """An old fills stream left beside per-market streams an engine of layout 2 already wrote to
    (it ran before the migration existed): the old fills come first, none is lost or doubled, also
    when the migration is cut short and run again. Found by a second reading."""
    redis_client.xadd("tw:mytrades:alice", {"t": _fill(7, "BTCUSDT", 1, False)})
    for trade_id in (8, 9):
        redis_client.xadd(keys.user_trades("alice", "BTCUSDT"), {"t": _fill(trade_id, "BTCUSDT", 2, False)},
                          id=f"{trade_id}-0")  # fmt: skip
    assert await _migrate(redis_server.url) is True
    ids = [entry_id for entry_id, _ in redis_client.xrange(keys.user_trades("alice", "BTCUSDT"))]
    assert ids == [b"7-0", b"8-0", b"9-0"]
    redis_client.delete(LAYOUT_KEY)  # cut short before the old stream went: run again
    redis_client.xadd("tw:mytrades:alice", {"t": _fill(7, "BTCUSDT", 1, False)})
    assert await _migrate(redis_server.url) is True
    ids = [entry_id for entry_id, _ in redis_client.xrange(keys.user_trades("alice", "BTCUSDT"))]
    assert ids == [b"7-0", b"8-0", b"9-0"]


@pytest.mark.asyncio
async def test_migration_passes_over_keys_of_another_type(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """A key written by hand where a view would be: not migrated, and no error that would make the
    engine's start retry for ever. Found by a second reading."""
    redis_client.set("tw:mytrades:bob", "x")
    redis_client.set("tw:orders:bob", "x")
    assert await _migrate(redis_server.url) is True
    assert redis_client.get("tw:mytrades:bob") == b"x"
