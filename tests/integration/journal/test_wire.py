"""The engine's bare RESP connection against a real redis-server: replies in order however the socket
cuts them, and a connection that breaks (closed by Redis, timed out, cancelled) says so at once and
never hands one request's replies to the next."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tradewire.journal.wire import (
    Connection,
    ReplyError,
    WireConnectionError,
    WireError,
    pack,
    ping_every,
)

pytestmark = pytest.mark.asyncio

BLOCKING_READ = (b"XREAD", b"BLOCK", b"5000", b"STREAMS", b"tw:test:empty", b"$")


async def test_pipelined_replies_cut_across_many_reads_come_back_in_order(redis_server: RedisServer) -> None:
    big = bytes(range(256)) * 16_384  # 4 MiB: many socket reads
    conn = await Connection.open(redis_server.url)
    try:
        replies = await conn.pipeline(
            [(b"SET", b"big", big), (b"GET", b"big"), (b"INCR", b"big"), (b"STRLEN", b"big"), (b"PING",)]
        )
        assert replies[0] == b"OK"
        assert replies[1] == big
        assert isinstance(replies[2], ReplyError)  # an error reply is a value; the rest still come
        assert replies[3:] == [len(big), b"PONG"]
        assert not conn.broken
        assert await conn.call(b"GET", b"big") == big
    finally:
        await conn.close()


async def test_send_now_then_reply_reads_replies_oldest_first(redis_server: RedisServer) -> None:
    conn = await Connection.open(redis_server.url)
    try:
        for value in (b"1", b"2", b"3"):
            conn.send_now((b"RPUSH", b"list", value))
        assert [await conn.reply() for _ in range(3)] == [1, 2, 3]
        conn.send_now((b"LPOP", b"missing-type-check"))
        conn.send_now((b"HGET", b"list", b"f"))  # WRONGTYPE
        assert await conn.reply() is None
        with pytest.raises(ReplyError, match="WRONGTYPE"):
            await conn.reply()
        assert await conn.call(b"LRANGE", b"list", b"0", b"-1") == [b"1", b"2", b"3"]
    finally:
        await conn.close()


async def test_a_subscribed_connection_reads_pushed_messages(redis_server: RedisServer) -> None:
    subscriber = await Connection.open(redis_server.url)
    publisher = await Connection.open(redis_server.url)
    try:
        assert await subscriber.call(b"SUBSCRIBE", b"chan") == [b"subscribe", b"chan", 1]
        assert await publisher.call(b"PUBLISH", b"chan", b"one") == 1
        assert await publisher.call(b"PUBLISH", b"chan", b"two") == 1
        assert await subscriber.reply(timeout=5) == [b"message", b"chan", b"one"]
        assert await subscriber.reply(timeout=5) == [b"message", b"chan", b"two"]
        assert subscriber.pushed() is None  # nothing more has come
        await publisher.pipeline([(b"PUBLISH", b"chan", b"three"), (b"PUBLISH", b"chan", b"four")])
        assert await subscriber.reply(timeout=5) == [b"message", b"chan", b"three"]
        for _ in range(100):  # what has come is taken without waiting, once it is there
            four = subscriber.pushed()
            if four is not None:
                break
            await asyncio.sleep(0.01)
        assert four == [b"message", b"chan", b"four"]
        assert subscriber.pushed() is None
    finally:
        await subscriber.close()
        await publisher.close()


async def test_ping_every_makes_a_quiet_subscribed_connection_hear_pongs(redis_server: RedisServer) -> None:
    conn = await Connection.open(redis_server.url)
    pinger = asyncio.create_task(ping_every(conn, 0.05))
    try:
        await conn.call(b"SUBSCRIBE", b"quiet")
        assert await conn.reply(timeout=5) == [b"pong", b""]
        assert await conn.reply(timeout=5) == [b"pong", b""]
    finally:
        pinger.cancel()
        await conn.close()
    await asyncio.sleep(0.1)
    assert pinger.done()


async def test_a_connection_redis_closes_fails_the_waiting_request_and_every_later_one(
    redis_server: RedisServer,
) -> None:
    conn = await Connection.open(redis_server.url)
    admin = await Connection.open(redis_server.url)
    try:
        client_id = await conn.call(b"CLIENT", b"ID")
        waiting = asyncio.ensure_future(conn.pipeline([BLOCKING_READ]))
        await asyncio.sleep(0.2)
        assert await admin.call(b"CLIENT", b"KILL", b"ID", str(client_id).encode()) == 1
        with pytest.raises(WireConnectionError):
            await asyncio.wait_for(waiting, 5)
        assert conn.broken
        with pytest.raises(WireConnectionError, match="broken"):
            await conn.call(b"PING")
        with pytest.raises(WireConnectionError, match="broken"):
            conn.send_now((b"PING",))
    finally:
        await conn.close()
        await admin.close()


async def test_a_timed_out_request_breaks_the_connection_and_leaves_redis_usable(
    redis_server: RedisServer,
) -> None:
    conn = await Connection.open(redis_server.url)
    try:
        with pytest.raises(WireConnectionError, match="TimeoutError"):
            await conn.pipeline([BLOCKING_READ], timeout=0.2)
        assert conn.broken
        with pytest.raises(WireConnectionError):
            await conn.call(b"PING")
    finally:
        await conn.close()
    again = await Connection.open(redis_server.url)
    try:
        assert await again.call(b"PING") == b"PONG"
    finally:
        await again.close()


async def test_a_cancelled_request_never_hands_its_reply_to_the_next_one(redis_server: RedisServer) -> None:
    """Cancelled while Redis still owes its reply: reusing the connection would read that reply
    (here the ``XREAD``'s) as the answer to the next command, so the connection is broken instead."""
    conn = await Connection.open(redis_server.url)
    try:
        waiting = asyncio.ensure_future(conn.pipeline([(b"XREAD", b"BLOCK", b"300", b"STREAMS", b"s", b"$")]))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert conn.broken
        with pytest.raises(WireConnectionError):
            await conn.call(b"GET", b"k")
    finally:
        await conn.close()


async def test_one_request_at_a_time(redis_server: RedisServer) -> None:
    conn = await Connection.open(redis_server.url)
    try:
        first = asyncio.ensure_future(conn.pipeline([(b"XREAD", b"BLOCK", b"200", b"STREAMS", b"s", b"$")]))
        await asyncio.sleep(0.05)
        with pytest.raises(WireError, match="another request"):
            await conn.call(b"INCR", b"refused")
        assert await first == [None]  # the first request is not disturbed
        assert await conn.call(b"ECHO", b"next") == b"next"  # not the refused command's reply
        assert await conn.call(b"GET", b"refused") is None  # which was never sent
    finally:
        await conn.close()


async def test_raw_packed_commands_and_a_transaction_over_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    server = RedisServer(
        tmp_path / "redis", extra={"unixsocket": str(socket_path), "unixsocketperm": "700"}
    ).start()
    try:
        conn = await Connection.open(f"unix://{socket_path}?db=3")
        try:
            data = pack((b"SET", b"a", b"1")) + pack((b"INCRBY", b"a", b"41"))
            assert await conn.raw(data, 2) == [b"OK", 42]
            assert await conn.transaction([(b"INCR", b"a"), (b"GET", b"a")]) == [43, b"43"]
            assert await conn.call(b"CLIENT", b"GETNAME") == b"tradewire-engine"
        finally:
            await conn.close()
        db3 = server.client(db=3)
        try:
            assert db3.get("a") == b"43"  # the URL's database was selected
        finally:
            db3.close()
    finally:
        server.stop()


async def test_a_subscriber_that_reads_nothing_stops_reading_so_redis_drops_it(
    redis_server: RedisServer,
) -> None:
    """Nobody reads (a stuck subscriber): the connection stops taking data past ``UNREAD_LIMIT``, TCP
    pushes back, and Redis cuts the client at its Pub/Sub output-buffer limit, as it would a slow
    redis-py or streams reader; the gateway's gap repair takes it from there."""
    subscriber = await Connection.open(redis_server.url)
    publisher = await Connection.open(redis_server.url)
    try:
        await publisher.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 4mb 0 0")
        assert await subscriber.call(b"SUBSCRIBE", b"firehose") == [b"subscribe", b"firehose", 1]
        payload = b"x" * (256 << 10)
        for _ in range(256):  # 64 MiB, far more than the limit and the kernel's socket buffers
            await publisher.call(b"PUBLISH", b"firehose", payload)
        for _ in range(500):
            if await publisher.call(b"PUBSUB", b"NUMSUB", b"firehose") == [b"firehose", 0]:
                break
            await asyncio.sleep(0.01)
        assert await publisher.call(b"PUBSUB", b"NUMSUB", b"firehose") == [b"firehose", 0]  # cut off
        with pytest.raises(WireConnectionError):  # what came before the cut, then the end
            while True:
                assert await subscriber.reply(timeout=5) == [b"message", b"firehose", payload]
        assert subscriber.broken
    finally:
        await subscriber.close()
        await publisher.close()


async def test_fenced_transaction_runs_until_the_fence_is_written_and_watches_it_again_each_time(
    redis_server: RedisServer,
) -> None:
    conn = await Connection.open(redis_server.url)
    other = await Connection.open(redis_server.url)
    try:
        assert await conn.pipeline([(b"WATCH", b"fence"), (b"GET", b"fence")]) == [b"OK", None]
        replies, value = await conn.fenced_transaction([(b"INCR", b"n"), (b"SET", b"fence", b"1")], b"fence")
        assert (replies, value) == ([1, b"OK"], b"1")  # its own write does not stop it; watched again
        replies, value = await conn.fenced_transaction([(b"INCR", b"n")], b"fence")
        assert (replies, value) == ([2], b"1")
        await other.call(b"SET", b"fence", b"2")  # another writer moves the fence
        replies, value = await conn.fenced_transaction([(b"INCR", b"n")], b"fence")
        assert (replies, value) == (None, b"2")  # nothing ran
        assert await other.call(b"GET", b"n") == b"2"
        with pytest.raises(ReplyError, match="EXECABORT"):  # refused while queueing: raised as before
            await conn.fenced_transaction([(b"INCR",)], b"fence")
        assert not conn.broken
    finally:
        await conn.close()
        await other.close()
