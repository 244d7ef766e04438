"""Order history bounded per user: the engine trims the oldest closed orders on a real Redis."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis
import structlog.testing

from tests.conftest import RedisServer
from tests.integration.journal.support import CONFIG, idle_core, journal, running_engine, wait_applied
from tests.strategies import random_stream
from tradewire import keys
from tradewire.engine import Engine, NewOrder, decode
from tradewire.engine.events import Accepted, Rejected
from tradewire.journal.recovery import recover
from tradewire.journal.wire import Connection


def _orders_placed(lines: list[str]) -> dict[str, dict[int, tuple[str, str]]]:
    """user -> order id -> (symbol, client id) of every order the accounts record: each accepted
    one, and each FOK refused as unfillable (Binance's expired FOK), from the engine's events."""
    symbols = {name: market.base.name + market.quote.name for name, market in CONFIG.markets.items()}
    placed: dict[str, dict[int, tuple[str, str]]] = {}
    engine = Engine(CONFIG)
    for line in lines:
        command = decode(line)
        for event in engine.apply(command):
            if type(event) is Accepted:
                user_orders = placed.setdefault(event.user, {})
                user_orders[event.order_id] = (symbols[event.market], event.client_id or "")
            elif type(event) is Rejected and event.reason == "fok_unfillable" and type(command) is NewOrder:
                assert event.order_id is not None
                client_id = command.client_id if isinstance(command.client_id, str) else ""
                placed.setdefault(command.user, {})[event.order_id] = (symbols[command.market], client_id)
    return placed


@pytest.mark.asyncio
@pytest.mark.parametrize("kept", [25, 200])
async def test_engine_keeps_each_users_newest_closed_orders_and_every_open_one(
    redis_server: RedisServer, redis_client: redis.Redis, kept: int
) -> None:
    """With a history of 25 (or 200) closed orders per user, after a long random stream in batches: each user
    holds exactly the open orders and the newest 25 closed ones, each closed one in the closed set
    with its symbol and client id; a client order id names a kept order or is gone with its order."""
    lines = random_stream(seed=5, length=3000)
    async with running_engine(redis_server.url, batch=13, order_history=kept, snapshot_every=1100) as service:
        ids = journal(redis_client, lines)
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        core = await idle_core(service)
        open_ids = set(core.accounts.open)
        live_state = core.to_state()
    placed = _orders_placed(lines)
    trimmed_users = 0
    for user, orders in placed.items():
        closed = sorted(set(orders) - open_ids)
        kept_closed = closed[-kept:]
        trimmed_users += len(closed) > kept
        expected = {order_id for order_id in orders if order_id in open_ids} | set(kept_closed)
        records = {
            int(field): orjson.loads(raw) for field, raw in redis_client.hgetall(keys.orders(user)).items()
        }
        assert set(records) == expected
        members = {member.decode() for member in redis_client.zrange(keys.closed_orders(user), 0, -1)}
        assert members == {f"{i} {orders[i][0]} {orders[i][1]}" for i in kept_closed}
        for client_id, order_id in redis_client.hgetall(keys.client_ids(user)).items():
            assert int(order_id) in expected, (user, client_id)
        gone_ids = {cid for i, (_, cid) in orders.items() if cid and i in set(closed[:-kept])}
        kept_ids = {cid for i, (_, cid) in orders.items() if cid and i in expected}
        assert not (gone_ids - kept_ids) & {k.decode() for k in redis_client.hkeys(keys.client_ids(user))}
    assert trimmed_users >= 1  # the stream is long enough for the limit to bite
    # a restarted engine knows how many closed orders each user keeps, both ways of recovering
    for from_redis in (True, False):
        conn = await Connection.open(redis_server.url)
        try:
            recovered = await recover(conn, CONFIG, orders_from_redis=from_redis, history=kept)
        finally:
            await conn.close()
        assert recovered.replayed > 0
        assert recovered.core.to_state() == live_state


@pytest.mark.asyncio
@pytest.mark.parametrize("from_redis", [True, False], ids=["records", "following"])
async def test_recovered_counts_are_what_redis_keeps_after_the_history_setting_changed(
    redis_server: RedisServer, redis_client: redis.Redis, from_redis: bool
) -> None:
    """Run with a history of 3, restart with 50: each user's count of kept closed orders must be
    what Redis holds (3 or fewer), by either way of recovering; a replay that follows the orders
    cannot know what the live trims removed. Found by a second reading."""
    lines = random_stream(seed=5, length=1000)
    async with running_engine(redis_server.url, batch=13, order_history=3, snapshot_every=400):
        ids = journal(redis_client, lines)
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    conn = await Connection.open(redis_server.url)
    try:
        recovered = await recover(conn, CONFIG, orders_from_redis=from_redis, history=50)
    finally:
        await conn.close()
    assert recovered.replayed > 0
    users = recovered.core.engine.as_pure().balances
    in_redis = {user: redis_client.zcard(keys.closed_orders(user)) for user in users}
    assert recovered.core.accounts._closed_kept == {user: n for user, n in in_redis.items() if n}
    assert max(in_redis.values()) == 3


@pytest.mark.asyncio
async def test_a_command_redis_refuses_inside_a_committed_batch_is_reported(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """A key of the wrong type (written by hand) makes one command of the batch's MULTI/EXEC fail
    while the rest commits: the engine says so (log and metric) instead of going on silently."""
    redis_client.set(keys.balances("alice"), "not a hash")
    with structlog.testing.capture_logs() as logs:
        async with running_engine(redis_server.url):
            ids = journal(
                redis_client, ['{"type": "deposit", "user": "alice", "asset": "USDT", "amount": "5"}']
            )
            await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    [error] = [entry for entry in logs if entry["event"] == "redis refused commands inside a committed batch"]
    assert error["count"] == 1 and "tw:bal:alice" in error["first"][0] and "WRONGTYPE" in error["first"][0]
