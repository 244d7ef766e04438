"""Ending sessions: the notices and listen-key values (pure), and the guard applied to real
``Connection`` objects on fake transports, including the races of a notice with a connection that is
opening or subscribing; the key cache against a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio
from websockets.protocol import State

from tests.unit.gateway.test_hub_connection import FakeTransport, ServerState
from tradewire import keys
from tradewire.gateway.auth import KeyCache
from tradewire.gateway.connection import Connection
from tradewire.gateway.hub import Hub
from tradewire.gateway.limits import Limits, MessageRate
from tradewire.gateway.secrets import encrypt_secret
from tradewire.gateway.sessions import (
    CLOSED,
    CLOSED_BY_OWNER,
    EXPIRED,
    ListenKey,
    Notice,
    SessionGuard,
    closed_notice,
    listen_key_value,
    parse_listen_key,
    parse_notice,
    revoked_notice,
)
from tradewire.gateway.streams import symbol_table

ALICE = keys.user_channel("alice").encode()


def test_notices_and_listen_key_values_round_trip() -> None:
    assert parse_notice(revoked_notice("k1")) == Notice("k1")
    assert parse_notice(closed_notice("a")) == Notice(None, ("a",))
    assert parse_listen_key(listen_key_value("alice", "k1").encode()) == ListenKey("alice", "k1")
    assert parse_listen_key(b"alice") == ListenKey("alice", None)  # written before creators were kept
    assert parse_listen_key(None) == EXPIRED and parse_listen_key(CLOSED) == CLOSED_BY_OWNER


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"type":"api_key_revoked"}', b'{"type":"api_key_revoked","api_key":""}',
     b'{"type":"listen_key_closed","listen_keys":"a"}', b'{"type":"listen_key_closed","listen_keys":[1]}',
     b'{"type":"listen_key_closed","listen_keys":[]}', b'{"type":"something_else","listen_keys":["a"]}'],
)  # fmt: skip
def test_anything_else_is_not_a_notice(payload: bytes) -> None:
    assert parse_notice(payload) is None


# -- the guard on real connections --------------------------------------------------------------------


class SlowSubscriber:
    """The hub's subscriber, whose subscription to a user channel waits for ``release`` (a Redis
    round trip that takes a while)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()
        self.unsubscribed: list[bytes] = []

    async def subscribe_plain(self, channel: bytes) -> None:
        self.entered.set()
        await self.release.wait()

    async def subscribe(self, channel: bytes) -> None:
        pass

    async def unsubscribe(self, channel: bytes) -> None:
        self.unsubscribed.append(channel)


class Markets:
    symbols = symbol_table(["BTC-USDT"])


class FakeGateway:
    """What a connection asks of the gateway; listen keys as a dict standing for their Redis values."""

    def __init__(self) -> None:
        self.hub = Hub()
        self.subscriber = SlowSubscriber()
        self.hub.subscriber = self.subscriber  # type: ignore[assignment]
        self.limits = Limits()
        self.markets = Markets()
        self.listen_keys: dict[str, ListenKey] = {}
        self.lookups = 0
        self.lookup_hook: Any = None

    def message_rate(self) -> MessageRate:
        return MessageRate(self.limits.messages_per_second)

    async def listen_key_owner(self, listen_key: str) -> ListenKey | None:
        self.lookups += 1
        found = self.listen_keys.get(listen_key)  # what Redis answered; then the hook, meanwhile
        if self.lookup_hook is not None:
            await self.lookup_hook(self.lookups)
        return found


class ForgetfulCache:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, key: str) -> None:
        self.forgotten.append(key)


def setup() -> tuple[FakeGateway, SessionGuard, ForgetfulCache]:
    gateway = FakeGateway()
    cache = ForgetfulCache()
    return gateway, SessionGuard(None, cache, gateway.hub.conns), cache  # type: ignore[arg-type]


def new_connection(gateway: FakeGateway) -> tuple[Connection, FakeTransport]:
    conn = Connection(None, ServerState(), {"gateway": gateway})
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def upgrade(path: str) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    return (
        head + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def opened(gateway: FakeGateway, path: str) -> tuple[Connection, FakeTransport]:
    conn, transport = new_connection(gateway)
    conn.data_received(upgrade(path))
    await settle()
    assert conn.opened, b"".join(transport.written)[:200]
    transport.written.clear()
    return conn, transport


@pytest.mark.asyncio
async def test_each_end_of_a_listen_key_sends_what_binance_sends_then_closes() -> None:
    gateway, guard, cache = setup()
    for key in ("LK1", "LK2", "LK3"):
        gateway.listen_keys[key] = ListenKey("alice", "K1" if key == "LK3" else "K2")
    conns = {key: await opened(gateway, f"/ws/{key}") for key in ("LK1", "LK2", "LK3")}
    assert guard.end(listen_keys={"LK1": EXPIRED, "LK2": CLOSED_BY_OWNER}) == 2
    assert guard.end(api_key="K1") == 1 and cache.forgotten == ["K1"]
    await settle()
    expired, closed, revoked = (transport.messages() for _, transport in conns.values())
    assert expired[0]["e"] == "listenKeyExpired" and expired[0]["listenKey"] == "LK1"
    assert expired[1:] == [("close", 1000)] and closed == [("close", 1000)] and revoked == [("close", 1000)]
    assert gateway.hub.users == {}


@pytest.mark.asyncio
async def test_a_stream_with_market_streams_too_keeps_them() -> None:
    gateway, guard, _ = setup()
    gateway.listen_keys["LK1"] = ListenKey("alice", "K1")
    conn, transport = await opened(gateway, "/stream/LK1?streams=btcusdt@trade")
    guard.end(api_key="K1")
    gateway.hub.deliver_user(ALICE, b'{"e":"balanceUpdate"}')
    await settle()
    assert transport.messages() == [] and not conn.closing and conn.fast and "btcusdt@trade" in conn.streams


@pytest.mark.asyncio
async def test_a_paused_stream_gets_its_queue_and_listen_key_expired_before_the_close() -> None:
    gateway, guard, _ = setup()
    gateway.listen_keys["LK1"] = ListenKey("alice", "K1")
    conn, transport = await opened(gateway, "/ws/LK1")
    conn.pause_writing()
    gateway.hub.deliver_user(ALICE, b'{"e":"balanceUpdate"}')
    guard.end(listen_keys={"LK1": EXPIRED})
    await settle()
    assert transport.messages() == []  # nothing written while paused, and not closed yet
    conn.resume_writing()
    kinds = [m[0] if isinstance(m, tuple) else m["e"] for m in transport.messages()]
    assert kinds == ["balanceUpdate", "listenKeyExpired", "close"]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/ws/LK1", "/stream/LK1?streams=btcusdt@trade"])
async def test_a_notice_while_the_stream_opens_refuses_it_or_drops_the_user_part(path: str) -> None:
    gateway, guard, _ = setup()
    gateway.listen_keys["LK1"] = ListenKey("alice", "K1")
    gateway.subscriber.release.clear()
    conn, transport = new_connection(gateway)
    conn.data_received(upgrade(path))
    await gateway.subscriber.entered.wait()  # registered, following the user on its way to Redis
    del gateway.listen_keys["LK1"]
    guard.end(listen_keys={"LK1": CLOSED_BY_OWNER})
    gateway.subscriber.release.set()
    await settle()
    answer = b"".join(transport.written)
    if path.startswith("/ws/"):
        assert answer.startswith(b"HTTP/1.1 400") and b"invalid listen key" in answer
    else:
        assert answer.startswith(b"HTTP/1.1 101") and conn.user is None and conn.fast
    assert gateway.hub.users == {}


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/ws/LK1", "/stream/LK1?streams=btcusdt@trade"])
async def test_a_listen_key_closed_during_the_first_lookup_is_found_by_the_second(path: str) -> None:
    gateway, guard, _ = setup()
    gateway.listen_keys["LK1"] = ListenKey("alice", "K1")

    async def meanwhile(lookup: int) -> None:
        if lookup == 1:  # the GET answered; the close lands before the connection is registered
            del gateway.listen_keys["LK1"]
            assert guard.end(listen_keys={"LK1": CLOSED_BY_OWNER}) == 0
        else:  # followed by now: an event of the user's comes in while the second lookup runs
            gateway.hub.deliver_user(ALICE, b'{"e":"balanceUpdate"}')

    gateway.lookup_hook = meanwhile
    conn, transport = new_connection(gateway)
    conn.data_received(upgrade(path))
    await settle()
    answer = b"".join(transport.written)
    if path.startswith("/ws/"):
        assert answer.startswith(b"HTTP/1.1 400")
    else:  # opened for its market stream alone: nothing of the user's, nothing held back
        assert answer.startswith(b"HTTP/1.1 101") and conn.fast and conn.catching == {}
        transport.written.clear()
        await settle()
        assert transport.messages() == []
    assert gateway.lookups == 2 and gateway.hub.users == {}


@pytest.mark.asyncio
async def test_a_subscription_revoked_while_it_is_made_is_refused_and_leaves_nothing() -> None:
    gateway, guard, _ = setup()
    conn, transport = new_connection(gateway)
    conn.registered = conn.opened = conn.api = True
    conn.proto.state = State.OPEN
    gateway.hub.register(conn, conn.ip)
    gateway.subscriber.release.clear()
    subscribing = asyncio.create_task(conn.subscribe_user("alice", "K1"))
    await gateway.subscriber.entered.wait()
    assert guard.end(api_key="K1") == 1
    gateway.subscriber.release.set()
    assert await subscribing is None
    assert conn.subscriptions == {} and gateway.hub.users == {}
    gateway.hub.deliver_user(ALICE, b'{"e":"balanceUpdate"}')
    await settle()
    assert [m["event"]["e"] for m in transport.messages()] == ["eventStreamTerminated"]


@pytest.mark.asyncio
async def test_a_subscription_ends_with_the_last_key_that_asked_for_it() -> None:
    gateway, guard, _ = setup()
    conn, transport = new_connection(gateway)
    conn.registered = conn.opened = conn.api = True
    conn.proto.state = State.OPEN
    gateway.hub.register(conn, conn.ip)
    first = await conn.subscribe_user("alice", "K1")
    assert await conn.subscribe_user("alice", "K2") == first
    assert guard.end(api_key="K1") == 0
    gateway.hub.deliver_user(ALICE, b'{"e":"balanceUpdate"}')
    assert guard.end(api_key="K2") == 1
    await settle()
    events = [(m["subscriptionId"], m["event"]["e"]) for m in transport.messages()]
    assert events == [(first, "balanceUpdate"), (first, "eventStreamTerminated")]
    assert gateway.hub.users == {}


@pytest.mark.asyncio
async def test_a_malformed_notice_ends_nothing() -> None:
    gateway, guard, cache = setup()
    gateway.listen_keys["LK1"] = ListenKey("alice", "K1")
    conn, _ = await opened(gateway, "/ws/LK1")
    guard.on_message(b'{"type":"api_key_revoked"}')
    assert conn.listen_key == "LK1" and cache.forgotten == []


# -- the key cache, against a real Redis ----------------------------------------------------------------


async def hgetalls(client: redis.asyncio.Redis) -> int:
    stats: Any = await client.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


@pytest.mark.asyncio
async def test_a_key_forgotten_while_it_is_read_is_read_again(aredis: redis.asyncio.Redis) -> None:
    master, key = bytes(32), "A" * 64
    await aredis.hset(keys.api_key(key), mapping={
        "user": "alice", "secret": encrypt_secret(master, key, "s3cret"), "permissions": "TRADE",
    })  # fmt: skip
    cache = KeyCache(aredis, master)
    reading = asyncio.create_task(cache.get(key))
    await asyncio.sleep(0)  # the read is on its way
    cache.forget(key)  # a revocation notice
    assert (await reading).user == "alice"  # the key is still in Redis here: only the read is redone
    assert await hgetalls(aredis) == 2
    await cache.get(key)
    assert await hgetalls(aredis) == 2  # cached once read after the notice
    await aredis.delete(keys.api_key(key))
    cache.forget(key)
    with pytest.raises(Exception, match="Invalid API-key"):
        await cache.get(key)
