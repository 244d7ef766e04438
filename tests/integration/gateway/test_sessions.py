"""Streams end when their right to a user's data does: a revoked API key (``tradewire admin
revoke-key``), a listen key closed by its owner or expired. Two gateways, so that a notice published
by one process reaches the connections of another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fixtures.exchange import Exchange, User
from tests.integration.gateway.conftest import Trader, new_trader
from tests.integration.gateway.test_admin import admin
from tests.integration.gateway.test_ws_api import signed
from tradewire.gateway.connection import USER_DATA_LOST

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def notices_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """The periodic check is left at its default (10 s): what ends a stream here within the tests'
    few seconds is the notice."""
    with Exchange(Path(tmp_path_factory.mktemp("sessions")), gateways=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def checking_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """Gateways that check every 0.2 s whether the keys their streams follow still exist."""
    env = {"TRADEWIRE_LIMIT_SESSION_CHECK": "0.2"}
    with Exchange(Path(tmp_path_factory.mktemp("expiry")), gateway_env=env) as ex:
        yield ex


async def subscribe(ws: ClientConnection, trader: Trader) -> int:
    await ws.send(orjson.dumps({"id": "s", "method": "userDataStream.subscribe.signature",
                                "params": signed(trader, {})}))  # fmt: skip
    answer = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
    assert answer["status"] == 200, answer
    return int(answer["result"]["subscriptionId"])


async def next_message(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def closed(ws: ClientConnection, timeout: float = 10) -> tuple[int, str]:
    """Read until the gateway closes; the close code and reason (fails on any other message)."""
    with pytest.raises(ConnectionClosed) as info:
        extra = await asyncio.wait_for(ws.recv(), timeout)
        raise AssertionError(f"a message after the end: {extra!r}")
    received = info.value.rcvd
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


async def nothing_within(ws: ClientConnection, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        extra = await asyncio.wait_for(ws.recv(), seconds)
        raise AssertionError(f"an event after the end: {extra!r}")


async def test_revoking_a_key_ends_its_requests_and_streams_on_every_gateway(
    notices_exchange: Exchange,
) -> None:
    ex = notices_exchange
    owner = new_trader(ex)
    created = admin(ex, "create-key", owner.user.name)
    assert created.returncode == 0, created.stderr
    line = orjson.loads(created.stdout)
    spare = Trader(ex.http_urls[1], User(owner.user.name, line["api_key"], line["api_secret"]))
    on_second = Trader(ex.http_urls[1], owner.user)
    for client in (owner, on_second):  # both gateways hold the key in their caches
        assert client.get("/api/v3/account").status_code == 200
    listen_key = owner.http.post("/api/v3/userDataStream").json()["listenKey"]

    async with (
        connect(f"{ex.ws_urls[1]}/ws-api/v3") as revoked_ws,
        connect(f"{ex.ws_urls[0]}/ws-api/v3") as spare_ws,
        connect(f"{ex.ws_urls[0]}/ws/{listen_key}") as stream,
    ):
        revoked_id = await subscribe(revoked_ws, on_second)
        spare_id = await subscribe(spare_ws, spare)

        revoked = admin(ex, "revoke-key", owner.user.api_key)
        assert revoked.returncode == 0, revoked.stderr
        assert orjson.loads(revoked.stdout) == {
            "user": owner.user.name, "api_key": owner.user.api_key, "revoked": True,
        }  # fmt: skip

        # within 5 s: the notice did it, not the periodic check (every 10 s here)
        terminated = await next_message(revoked_ws, 5)
        assert terminated["subscriptionId"] == revoked_id
        assert terminated["event"]["e"] == "eventStreamTerminated"
        assert abs(terminated["event"]["E"] - time.time() * 1000) < 60_000
        assert await closed(stream, 5) == (1000, "API key revoked")

        # refused at once on both gateways, although each had the key cached for 30 s
        for client in (owner, on_second):
            refused = client.get("/api/v3/account")
            assert refused.status_code == 401 and refused.json()["code"] == -2015
        assert owner.http.put("/api/v3/userDataStream", params={"listenKey": listen_key}).status_code == 401
        # the user's other key goes on: its subscription gets the next event, the revoked one nothing
        ex.deposit(owner.user.name, "USDT", "5")
        event = await next_message(spare_ws)
        assert event["subscriptionId"] == spare_id and event["event"]["e"] == "balanceUpdate"
        await nothing_within(revoked_ws, 0.5)
        await revoked_ws.send(orjson.dumps({"id": "l", "method": "session.subscriptions"}))
        assert (await next_message(revoked_ws))["result"] == []
    assert spare.get("/api/v3/account").status_code == 200


async def test_a_listen_key_closed_by_its_owner_ends_its_stream_on_another_gateway(
    notices_exchange: Exchange,
) -> None:
    ex = notices_exchange
    owner = new_trader(ex)
    listen_key = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    async with (
        connect(f"{ex.ws_urls[1]}/ws/{listen_key}") as alone,
        connect(f"{ex.ws_urls[1]}/stream/{listen_key}?streams=btcusdt@bookTicker") as mixed,
    ):
        ex.deposit(owner.user.name, "USDT", "1")
        for ws in (alone, mixed):
            assert [(await next_message(ws))["e"] for _ in range(2)] == [
                "balanceUpdate", "outboundAccountPosition"
            ]  # fmt: skip
        assert owner.http.delete("/api/v3/userDataStream", params={"listenKey": listen_key}).json() == {}
        # closed normally: no listenKeyExpired (Binance sends it on expiry only)
        assert await closed(alone, 5) == (1000, "listen key closed")
        # a connection with market streams too keeps them and loses only the user's events: the
        # deposit's events would come before the order's bookTicker
        ex.deposit(owner.user.name, "USDT", "1")
        placed = owner.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                             quantity="0.001", price="25000.01")  # fmt: skip
        assert placed.status_code == 200, placed.text
        while True:
            message = await next_message(mixed)
            assert "stream" in message, message  # the user's events come unwrapped: none may come
            if message.get("stream") == "btcusdt@bookTicker" and message["data"]["b"] == "25000.01":
                break


async def test_revoke_key_refuses_an_unknown_key_and_changes_nothing(notices_exchange: Exchange) -> None:
    owner = new_trader(notices_exchange)
    unknown = admin(notices_exchange, "revoke-key", "x" * 64)
    assert unknown.returncode == 2 and "unknown API key" in unknown.stderr
    assert owner.get("/api/v3/account").status_code == 200


async def test_an_expired_listen_key_ends_its_stream_with_listen_key_expired(
    checking_exchange: Exchange,
) -> None:
    ex = checking_exchange
    owner = new_trader(ex)
    listen_key = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    second = Trader(
        ex.http_url, ex.create_user(owner.user.name, new=False)
    )  # another key, another listen key
    kept = second.http.post("/api/v3/userDataStream").json()["listenKey"]
    async with connect(f"{ex.ws_url}/ws/{listen_key}") as stream, connect(f"{ex.ws_url}/ws/{kept}") as other:
        client = ex.redis.client()
        try:
            assert client.pexpire(f"tw:listenkey:{listen_key}", 1)
        finally:
            client.close()
        expired = await next_message(stream)
        assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == listen_key
        assert await closed(stream) == (1000, "listen key expired")
        # the other listen key of the same user lives on
        ex.deposit(owner.user.name, "BTC", "1")
        assert (await next_message(other))["e"] == "balanceUpdate"


async def test_the_periodic_check_tells_the_three_ends_apart_without_notices(
    checking_exchange: Exchange,
) -> None:
    """Redis changed behind the gateway's back (as for a gateway that missed the notices): a
    tombstone is a close, a creator gone is a revocation; neither is an expiry."""
    ex = checking_exchange
    owner = new_trader(ex)
    spare = ex.create_user(owner.user.name, new=False)  # a second key of the same user
    closed_key = Trader(ex.http_url, spare).http.post("/api/v3/userDataStream").json()["listenKey"]
    revoked_key = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    async with (
        connect(f"{ex.ws_url}/ws/{closed_key}") as closing,
        connect(f"{ex.ws_url}/ws/{revoked_key}") as revoking,
        connect(f"{ex.ws_url}/ws-api/v3") as api,
    ):
        subscription = await subscribe(api, owner)
        client = ex.redis.client()
        try:
            client.set(f"tw:listenkey:{closed_key}", b"-", ex=3600)
            client.delete(f"tw:apikey:{owner.user.api_key}")
        finally:
            client.close()
        assert await closed(closing) == (1000, "listen key closed")
        assert await closed(revoking) == (1000, "API key revoked")
        terminated = await next_message(api)
        assert terminated["subscriptionId"] == subscription
        assert terminated["event"]["e"] == "eventStreamTerminated"
    # a listen key whose creator is gone cannot be used, nor kept alive with another key of its user
    refused = Trader(ex.http_url, spare).http.put("/api/v3/userDataStream", params={"listenKey": revoked_key})
    assert refused.json()["code"] == -1125
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{ex.ws_url}/ws/{revoked_key}"):
            pass
    assert info.value.response.status_code == 400


async def test_a_gateway_whose_redis_subscription_broke_tells_user_data_clients_to_fetch_again(
    exchange: Exchange,
) -> None:
    """A user's events are plain Pub/Sub, with no history: what the engine published while a gateway
    was reconnecting its subscription (Redis restarted, a network cut, Redis's Pub/Sub output buffer
    limit) never reaches that gateway's clients, whose sockets stayed open. They were not told: an
    order's executionReport could be missing for good. Now a listen-key stream is closed (1011) and a
    WebSocket API subscription ends, so that the client fetches the account again, as after any
    reconnect. Its own exchange: the test breaks every gateway's subscription."""
    ex = exchange
    owner = new_trader(ex)
    listen_key = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    async with (
        connect(f"{ex.ws_url}/ws/{listen_key}") as stream,
        connect(f"{ex.ws_url}/ws-api/v3") as api,
    ):
        first = await subscribe(api, owner)
        client = ex.redis.client()
        try:
            assert client.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        finally:
            client.close()
        assert await closed(stream) == (1011, USER_DATA_LOST)
        ended = await next_message(api)
        assert ended["subscriptionId"] == first and ended["event"]["e"] == "eventStreamTerminated"
        # the connection stays: subscribing again follows the user's next events
        again = await subscribe(api, owner)
        ex.deposit(owner.user.name, "USDT", "1")
        event = await next_message(api)
        assert event["subscriptionId"] == again and event["event"]["e"] == "balanceUpdate"
    async with connect(f"{ex.ws_url}/ws/{listen_key}") as reopened:  # the listen key is still good
        ex.deposit(owner.user.name, "USDT", "1")
        assert (await next_message(reopened))["e"] == "balanceUpdate"


async def test_asking_for_a_listen_key_again_gives_the_live_one_until_it_is_closed(
    notices_exchange: Exchange,
) -> None:
    """Binance: "If the account has an active listenKey, that listenKey will be returned and its
    validity will be extended for 60 minutes" (python-binance reconnects whenever it changes)."""
    ex = notices_exchange
    owner = new_trader(ex)
    first = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    assert owner.http.post("/api/v3/userDataStream").json()["listenKey"] == first
    assert owner.http.put("/api/v3/userDataStream", params={"listenKey": first}).json() == {}
    assert owner.http.post("/api/v3/userDataStream").json()["listenKey"] == first
    other = new_trader(ex)  # another user's key is another key
    assert other.http.post("/api/v3/userDataStream").json()["listenKey"] != first
    assert owner.http.delete("/api/v3/userDataStream", params={"listenKey": first}).json() == {}
    fresh = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    assert fresh != first
    async with connect(f"{ex.ws_urls[0]}/ws/{fresh}") as ws:
        ex.deposit(owner.user.name, "USDT", "1")
        assert (await next_message(ws))["e"] == "balanceUpdate"


async def test_a_listen_key_subscribed_by_frame_streams_until_unsubscribed(
    notices_exchange: Exchange,
) -> None:
    """Binance's connectors subscribe a listen key with a frame (``SUBSCRIBE [<listenKey>]``); on
    ``/stream`` its events come wrapped, as the market streams' do."""
    ex = notices_exchange
    owner = new_trader(ex)
    listen_key = owner.http.post("/api/v3/userDataStream").json()["listenKey"]
    async with connect(f"{ex.ws_urls[0]}/stream") as ws:
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["nokey" * 12], "id": 1}))
        refused = await next_message(ws)
        assert refused["id"] == 1 and refused["error"]["code"] == 2
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": [listen_key, "btcusdt@trade"], "id": 2}))
        assert await next_message(ws) == {"result": None, "id": 2}
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert await next_message(ws) == {"result": ["btcusdt@trade", listen_key], "id": 3}
        ex.deposit(owner.user.name, "USDT", "1")
        event = await next_message(ws)
        assert event["stream"] == listen_key and event["data"]["e"] == "balanceUpdate"
        assert (await next_message(ws))["data"]["e"] == "outboundAccountPosition"
        await ws.send(orjson.dumps({"method": "UNSUBSCRIBE", "params": [listen_key], "id": 4}))
        assert await next_message(ws) == {"result": None, "id": 4}
        ex.deposit(owner.user.name, "USDT", "1")
        await asyncio.sleep(0.5)
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
        assert await next_message(ws) == {"result": ["btcusdt@trade"], "id": 5}, "no event after UNSUBSCRIBE"
