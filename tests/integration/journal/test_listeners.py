"""Who listens: the engine reads the users with an open user-data stream only when gateways say it
changed (``tw:listeners:version``), not with every batch: ``PUBSUB CHANNELS`` costs Redis time in
proportion to every channel subscribed (1 ms at 10,000), which per batch would take all of it."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis

from tests.conftest import RedisServer
from tests.integration.journal.support import journal, running_engine, wait_applied
from tradewire import keys


def _deposit(user: str) -> str:
    return orjson.dumps({"type": "deposit", "user": user, "asset": "USDT", "amount": "1"}).decode()


@pytest.mark.asyncio
async def test_listeners_are_read_again_only_when_a_gateway_says_they_changed(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async with running_engine(redis_server.url):
        ids = journal(redis_client, [_deposit("bob")])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        redis_client.config_resetstat()
        for _ in range(30):  # thirty batches, nobody starts or stops listening
            ids = journal(redis_client, [_deposit("bob")])
            await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        calls = redis_client.info("commandstats").get("cmdstat_pubsub|channels", {}).get("calls", 0)
        assert calls <= 2  # at most the once-a-second refresh
        # a gateway follows alice as tradewire's do: subscribe, bump the version, then acknowledge
        subscriber = redis_client.pubsub()  # type: ignore[no-untyped-call]
        subscriber.subscribe(keys.user_channel("alice"))
        assert subscriber.get_message(timeout=5)["type"] == "subscribe"
        redis_client.incr(keys.LISTENERS_VERSION)
        ids = journal(redis_client, [_deposit("alice")])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        message = await asyncio.to_thread(subscriber.get_message, timeout=5)
        subscriber.close()
    assert message is not None and message["type"] == "message"
    assert orjson.loads(message["data"].split(b"\n")[0])["e"] == "balanceUpdate"  # then the balances
