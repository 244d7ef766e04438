"""The views' ops run on a real redis-server, in MULTI/EXEC batches as the engine service runs them."""

from __future__ import annotations

from collections import Counter

import orjson
import redis

from tests.strategies import random_stream
from tests.unit.accounts.harness import CONFIG, Exchange
from tradewire.engine.decimals import to_text
from tradewire.engine.events import Trade
from tradewire.keys import RedisOp


def test_ops_with_multi_batches_leave_redis_agreeing_with_the_engine(redis_client: redis.Redis) -> None:
    subscriber = redis_client.pubsub()  # type: ignore[no-untyped-call]
    subscriber.psubscribe("tw:user:*")
    assert subscriber.get_message(timeout=5) is not None  # the psubscribe confirmation
    ex = Exchange()
    fills: Counter[str] = Counter()
    published: Counter[str] = Counter()
    batch: list[RedisOp] = []
    for number, line in enumerate(random_stream(3, 1200), 1):
        ex.apply(line)
        for event in ex.events:
            if type(event) is Trade:
                fills[event.maker_user] += 1
                fills[event.taker_user] += 1
        if number % 25 == 0:
            batch = ex.accounts.flush()
            _execute(redis_client, batch)
            published.update(str(op[1]) for op in batch if op[0] == "PUBLISH")
    batch = ex.accounts.flush()
    _execute(redis_client, batch)
    published.update(str(op[1]) for op in batch if op[0] == "PUBLISH")

    users = {order.user for order in ex.engine.orders.values()} | set(ex.engine.balances)
    for user in users:
        members: list[bytes] = redis_client.zrange(f"tw:open:{user}", 0, -1)  # type: ignore[assignment]
        open_ids = {int(member) for member in members}
        assert open_ids == {oid for oid, order in ex.engine.orders.items() if order.user == user}
        for order_id in open_ids:
            record = orjson.loads(redis_client.hget(f"tw:orders:{user}", str(order_id)))  # type: ignore[arg-type]
            assert record["status"] in ("NEW", "PARTIALLY_FILLED")
        streams = redis_client.keys(f"tw:mytrades:{user}:*")
        assert sum(redis_client.xlen(stream) for stream in streams) == fills[user]
        for stream in streams:  # entry ids are the trade ids, -1 for a self-trade's second side
            for entry_id, fields in redis_client.xrange(stream):
                trade = orjson.loads(fields[b"t"])
                assert stream.decode().endswith(":" + trade["symbol"])
                number, sequence = entry_id.split(b"-")
                assert int(number) == trade["id"]
                assert sequence == b"0" or (sequence == b"1" and trade["isMaker"])
        for asset, (free, locked) in ex.engine.balances[user].items() if user in ex.engine.balances else ():
            places = CONFIG.assets[asset].precision
            raw = redis_client.hget(f"tw:bal:{user}", asset)
            written = orjson.loads(raw) if raw else {"free": "0", "locked": "0"}
            assert written == {"free": to_text(free, places), "locked": to_text(locked, places)}

    received: Counter[str] = Counter()
    while sum(received.values()) < sum(published.values()):
        message = subscriber.get_message(timeout=5)
        assert message is not None, "publications missing"
        if message["type"] == "pmessage":
            received[message["channel"].decode()] += 1
            assert all(orjson.loads(line)["e"] for line in message["data"].split(b"\n"))
    assert received == published
    subscriber.close()


def _execute(client: redis.Redis, ops: list[RedisOp]) -> None:
    pipe = client.pipeline(transaction=True)
    for op in ops:
        pipe.execute_command(*op)  # type: ignore[no-untyped-call]
    pipe.execute()
