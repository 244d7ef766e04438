"""The gap-free subscriber against a real Redis and the real publication script."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from tradewire import keys
from tradewire.bus import subscribe as subscribe_module
from tradewire.bus.publish import load_op, publish_market_op, publish_op, publish_run_op
from tradewire.bus.subscribe import Publication, Subscriber
from tradewire.journal.wire import Connection, WireConnectionError

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

MARKET = "BTC-USDT"
CHANNEL = keys.md(MARKET, "trade").encode()


async def publish(client: redis.asyncio.Redis, payload: bytes, epoch: bytes = b"e1") -> None:
    await client.execute_command(*load_op())  # type: ignore[no-untyped-call]
    await client.execute_command(*publish_op(MARKET, "trade", payload, epoch))  # type: ignore[no-untyped-call]


async def publish_silently(client: redis.asyncio.Redis, payload: bytes) -> None:
    """What a lost Pub/Sub message looks like: offset and history move, nobody hears it."""
    offset = await client.hincrby(keys.md_meta(MARKET, "trade"), "offset", 1)
    epoch: Any = await client.hget(keys.md_meta(MARKET, "trade"), "epoch")
    message = f"{offset} {epoch.decode()} ".encode() + payload
    await client.xadd(keys.md_history(MARKET, "trade"), {"m": message}, id=f"{offset}-0")


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


class Recorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.resets: list[str] = []

    def on_message(self, channel: bytes, publication: Publication) -> None:
        assert channel == CHANNEL
        self.messages.append(publication.payload)

    def on_reset(self, channel: bytes, reason: str) -> None:
        self.resets.append(reason)


async def started(aredis: redis.asyncio.Redis, recorder: Recorder) -> Subscriber:
    port = aredis.connection_pool.connection_kwargs["port"]
    subscriber = Subscriber(aredis, f"redis://127.0.0.1:{port}/0", recorder.on_message, recorder.on_reset)
    await subscriber.start()
    await subscriber.subscribe(CHANNEL)
    await asyncio.sleep(0.05)
    return subscriber


async def test_subscriber_with_a_lost_message_reads_it_from_history_in_order(
    aredis: redis.asyncio.Redis,
) -> None:
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        await publish(aredis, b"m1")
        await until(lambda: recorder.messages == [b"m1"])
        await publish_silently(aredis, b"m2")
        await publish_silently(aredis, b"m3")
        await publish(aredis, b"m4")
        await until(lambda: len(recorder.messages) == 4)
        assert recorder.messages == [b"m1", b"m2", b"m3", b"m4"] and recorder.resets == []
    finally:
        await subscriber.stop()


async def test_a_run_of_payloads_in_one_script_call_gets_consecutive_offsets_and_history(
    aredis: redis.asyncio.Redis,
) -> None:
    """What the engine sends for a batch's trades of one market: one call, the same offsets, history
    and messages as one call per payload."""
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        await publish(aredis, b"t1")
        last = await aredis.execute_command(  # type: ignore[no-untyped-call]
            *publish_run_op(MARKET, "trade", [b"t2", b"t3", b"t4"], b"other-epoch")
        )
        assert last == 4
        await until(lambda: len(recorder.messages) == 4)
        assert recorder.messages == [b"t1", b"t2", b"t3", b"t4"] and recorder.resets == []
        history = await aredis.xrange(keys.md_history(MARKET, "trade"))
        assert [(entry_id, fields[b"m"]) for entry_id, fields in history] == [
            (b"%d-0" % n, b"%d e1 t%d" % (n, n)) for n in range(1, 5)
        ], "the epoch stays the one the channel has"
    finally:
        await subscriber.stop()


async def test_one_script_call_publishes_several_streams_of_a_market_in_order(
    aredis: redis.asyncio.Redis,
) -> None:
    """What the engine sends for a market per batch: its streams' runs in one call, each stream's
    offsets continuing across runs, every message on its channel and in its history, in order."""
    await publish(aredis, b"t1")
    listener = aredis.pubsub()
    depth = keys.md(MARKET, "depth").encode()
    await listener.subscribe(CHANNEL, depth)
    for _ in range(2):
        await listener.get_message(timeout=1)  # the two subscribe confirmations
    runs: list[tuple[str, list[bytes | str]]] = [
        ("trade", [b"t2", b"t3"]),
        ("depth", [b"d1"]),
        ("trade", [b"t4"]),
    ]
    last = await aredis.execute_command(*publish_market_op(MARKET, runs, b"e2"))  # type: ignore[no-untyped-call]
    assert last == 4, "the offset of the last payload of the last run"
    heard = []
    while len(heard) < 4:
        message = await listener.get_message(timeout=1)
        assert message is not None, f"only {heard} arrived"
        heard.append((message["channel"], message["data"]))
    await listener.aclose()  # type: ignore[attr-defined]
    assert heard == [(CHANNEL, b"2 e1 t2"), (CHANNEL, b"3 e1 t3"), (depth, b"1 e2 d1"), (CHANNEL, b"4 e1 t4")]
    trades = await aredis.xrange(keys.md_history(MARKET, "trade"))
    assert [fields[b"m"] for _, fields in trades] == [b"1 e1 t1", b"2 e1 t2", b"3 e1 t3", b"4 e1 t4"]
    depths = await aredis.xrange(keys.md_history(MARKET, "depth"))
    assert [(entry_id, fields[b"m"]) for entry_id, fields in depths] == [(b"1-0", b"1 e2 d1")]


async def test_subscriber_after_losing_its_connection_catches_up_without_duplicates(
    aredis: redis.asyncio.Redis,
) -> None:
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        await publish(aredis, b"a")
        await until(lambda: recorder.messages == [b"a"])
        await aredis.client_kill_filter(_type="pubsub")
        await publish(aredis, b"b")  # published while the subscription is down
        await until(lambda: subscriber.connected and recorder.messages == [b"a", b"b"])
        await publish(aredis, b"c")
        await until(lambda: len(recorder.messages) == 3)
        assert recorder.messages == [b"a", b"b", b"c"]
    finally:
        await subscriber.stop()


async def test_subscriber_with_a_gap_the_history_no_longer_holds_asks_for_resnapshot(
    aredis: redis.asyncio.Redis,
) -> None:
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        await publish(aredis, b"x1")
        await until(lambda: recorder.messages == [b"x1"])
        await publish_silently(aredis, b"x2")
        await aredis.xdel(keys.md_history(MARKET, "trade"), "2-0")
        await publish(aredis, b"x3")
        await until(lambda: recorder.resets == ["gap"])
        assert recorder.messages == [b"x1", b"x3"]
    finally:
        await subscriber.stop()


async def test_subscriber_with_a_new_epoch_asks_for_resnapshot_and_goes_on(
    aredis: redis.asyncio.Redis,
) -> None:
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        await publish(aredis, b"old")
        await until(lambda: recorder.messages == [b"old"])
        await aredis.delete(
            keys.md_meta(MARKET, "trade"), keys.md_history(MARKET, "trade")
        )  # Redis lost its data
        await publish(aredis, b"new", epoch=b"e2")
        await until(lambda: recorder.resets == ["epoch"])
        assert recorder.messages == [b"old", b"new"]
    finally:
        await subscriber.stop()


async def test_a_channel_redis_refuses_is_logged_and_the_others_keep_flowing_across_reconnects(
    aredis: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ACL user may not read ``tw:user:*``: its refusal (``NOPERM``) arrives among market data and
    must neither stop the subscriber nor make it reconnect for ever."""
    monkeypatch.setattr(subscribe_module, "CONFIRM_SECONDS", 0.5)
    await aredis.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "gw", "on", ">pw", "~*", "resetchannels", "&md:*", "&tw:gateway:*", "+@all"
    )
    port = aredis.connection_pool.connection_kwargs["port"]
    recorder = Recorder()
    plain: list[bytes] = []
    subscriber = Subscriber(
        aredis,
        f"redis://gw:pw@127.0.0.1:{port}/0",
        recorder.on_message,
        recorder.on_reset,
        on_plain=lambda channel, data: plain.append(data),
    )
    await subscriber.start()
    try:
        await subscriber.subscribe(CHANNEL)
        await publish(aredis, b"m1")
        await subscriber.subscribe_plain(b"tw:user:bob")  # refused; gives up after CONFIRM_SECONDS
        assert subscriber._confirmations == {}  # nothing kept for a refused channel
        await publish(aredis, b"m2")
        await until(lambda: recorder.messages == [b"m1", b"m2"])
        assert subscriber.connected
        await aredis.client_kill_filter(_type="pubsub")  # the reconnect asks for bob's channel again
        await publish(aredis, b"m3")
        await until(lambda: subscriber.connected and recorder.messages == [b"m1", b"m2", b"m3"])
        await publish(aredis, b"m4")
        await until(lambda: len(recorder.messages) == 4)
        # the market channel caught up from its history; a plain one has none: a reconnect resets it
        assert recorder.resets == ["reconnected"] and plain == []
    finally:
        await subscriber.stop()


async def test_a_channel_followed_while_reconnecting_is_subscribed_before_it_says_connected(
    aredis: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = subscribe_module._next_message

    async def slow_answer(conn: Any, timeout: float) -> Any:
        await asyncio.sleep(0.1)  # a slow Redis: subscriptions confirmed late
        return await answer(conn, timeout)

    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    other = keys.md("ETH-USDT", "trade").encode()
    seen: list[bytes] = []
    try:
        monkeypatch.setattr(subscribe_module, "_next_message", slow_answer)
        await aredis.client_kill_filter(_type="pubsub")
        await until(lambda: not subscriber.connected)
        await asyncio.sleep(0.15)  # the new connection is waiting for its confirmations
        recorder.messages.clear()
        following = asyncio.ensure_future(subscriber.subscribe_plain(other))
        await until(lambda: subscriber.connected)
        await following
        numsub = await aredis.pubsub_numsub(other)
        assert numsub == [(other, 1)]
        subscriber._on_plain = lambda channel, data: seen.append(data)
        await aredis.publish(other, b"hello")
        await until(lambda: seen == [b"hello"])
    finally:
        await subscriber.stop()


OTHER = b"tw:user:bob"


async def test_a_publication_read_while_subscribing_is_not_taken_for_a_confirmation(
    aredis: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a reconnect, a publication on a channel already confirmed arrives before a later
    channel's confirmation: counted as an answer, the subscriber said connected (and read offsets)
    while OTHER was not yet subscribed."""
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    await subscriber.subscribe_plain(OTHER)
    await publish(aredis, b"m1")
    await until(lambda: recorder.messages == [b"m1"])
    port = aredis.connection_pool.connection_kwargs["port"]
    sync = redis.Redis(port=port)
    original = Connection.send_now
    armed = True

    def send_now(self: Connection, args: Any) -> None:
        nonlocal armed
        if armed and tuple(args) == (b"SUBSCRIBE", OTHER):
            armed = False
            time.sleep(0.05)  # Redis has handled SUBSCRIBE CHANNEL by now
            sync.execute_command(*load_op())
            sync.execute_command(*publish_op(MARKET, "trade", b"m2", b"e1"))
            loop = asyncio.get_running_loop()
            loop.call_later(0.5, original, self, args)  # OTHER's SUBSCRIBE a little late on the wire
            return
        original(self, args)

    monkeypatch.setattr(Connection, "send_now", send_now)
    try:
        await aredis.client_kill_filter(_type="pubsub")
        await until(lambda: not subscriber.connected)
        await until(lambda: subscriber.connected)
        numsub = await aredis.pubsub_numsub(OTHER)
        assert numsub == [(OTHER, 1)], "connected before OTHER's subscription was confirmed"
    finally:
        sync.close()
        await subscriber.stop()


async def test_a_channel_left_while_reconnecting_is_unsubscribed_in_redis_too(
    aredis: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last follower leaves while the new connection's subscriptions are being confirmed: the
    channel must not stay subscribed in Redis for the connection's life (for ``tw:user:*`` the
    engine would go on rendering that user's payloads)."""
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    answer = subscribe_module._next_message
    reading = asyncio.Event()

    async def slow_answer(conn: Any, timeout: float) -> Any:
        reading.set()
        await asyncio.sleep(0.1)
        return await answer(conn, timeout)

    try:
        monkeypatch.setattr(subscribe_module, "_next_message", slow_answer)
        await aredis.client_kill_filter(_type="pubsub")
        await reading.wait()  # _subscribe_all has sent SUBSCRIBE CHANNEL
        await subscriber.unsubscribe(CHANNEL)  # the last follower left
        await until(lambda: subscriber.connected)
        await asyncio.sleep(0.3)
        assert subscriber.tracker(CHANNEL) is None
        assert await aredis.pubsub_numsub(CHANNEL) == [(CHANNEL, 0)], "still subscribed in Redis"
    finally:
        await subscriber.stop()


async def test_following_on_a_connection_just_broken_waits_for_the_reconnect(
    aredis: redis.asyncio.Redis,
) -> None:
    """The link broke and the read loop has not seen it yet: following a channel must wait for the
    reconnect (which subscribes it) instead of returning unsubscribed."""
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        assert subscriber._pubsub is not None
        subscriber._pubsub._link.fail(
            WireConnectionError("Redis closed the connection")
        )  # as connection_lost
        await subscriber.subscribe_plain(OTHER)  # "returns once Redis confirmed the subscription"
        assert await aredis.pubsub_numsub(OTHER) == [(OTHER, 1)]
    finally:
        await subscriber.stop()


async def test_subscriber_whose_redis_lost_its_last_writes_under_the_same_epoch_resets_and_goes_on(
    aredis: redis.asyncio.Redis,
) -> None:
    """``appendfsync everysec``: Redis restarts without its last second, and an engine started
    after it cannot tell, so it goes on under the same epoch from a lower offset. Taken for
    duplicates, its messages would be dropped until the offsets passed the old ones."""
    recorder = Recorder()
    subscriber = await started(aredis, recorder)
    try:
        for payload in (b"a", b"b", b"c"):
            await publish(aredis, payload)
        await until(lambda: recorder.messages == [b"a", b"b", b"c"])
        history = keys.md_history(MARKET, "trade")
        [(first_id, first)] = await aredis.xrange(history, count=1)
        await aredis.delete(history)  # what the AOF kept: the first publication only
        await aredis.xadd(history, first, id=first_id)
        await aredis.hset(keys.md_meta(MARKET, "trade"), "offset", 1)
        await aredis.client_kill_filter(_type="pubsub")  # the restart breaks the subscription
        await until(lambda: recorder.resets == ["rewound"])
        await publish(aredis, b"d")  # offset 2 again
        await until(lambda: recorder.messages[-1:] == [b"d"])
        assert recorder.messages == [b"a", b"b", b"c", b"d"]
    finally:
        await subscriber.stop()
