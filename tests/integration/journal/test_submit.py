"""The submitter against a real Redis: what it journals, how it waits, how it recovers a missed reply."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import orjson
import pytest
import redis
import redis.asyncio

from tests.conftest import RedisServer
from tests.integration.journal.support import running_engine
from tradewire import keys
from tradewire.journal import submit
from tradewire.journal.entries import CommandEntry, events_ops, parse_command_entry, reply_payload
from tradewire.journal.quota import OrderQuota, TooManyOrders, counts_key
from tradewire.journal.streams import xrange, xrange_sync, xread_entries
from tradewire.journal.submit import SubmitError, Submitter, SubmitTimeout, SubmitUnknown, submit_sync

DEPOSIT = {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "100"}
EVENTS = orjson.dumps([{"type": "deposit", "user": "alice", "asset": "USDT", "amount": "100"}])


async def _record(client: redis.asyncio.Redis, *entries: CommandEntry) -> None:
    """Record commands' outcomes in the events stream as the engine does (one batch)."""
    for op in events_ops([(entry.entry_id, reply_payload(entry, EVENTS)) for entry in entries]):
        await client.execute_command(*op)


async def _answer_next(client: redis.asyncio.Redis, last: bytes = b"0-0") -> CommandEntry:
    """Play the engine for one command: read it, record its events, publish its reply."""
    found = xread_entries(await client.xread({keys.COMMANDS: last}, count=1, block=5000), keys.COMMANDS)
    entry = parse_command_entry(*found[0])
    await _record(client, entry)
    await client.publish(keys.reply_channel(entry.src.decode()), reply_payload(entry, EVENTS))
    return entry


@pytest.mark.asyncio
async def test_submitter_with_an_answering_engine_returns_the_published_reply(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    async with Submitter(redis_server.url, "gw-1", clock=lambda: 1_700_000_000_123) as submitter:
        engine = asyncio.create_task(_answer_next(aredis))
        reply = await submitter.submit(DEPOSIT, who="admin", ip="10.0.0.1")
        entry = await engine
    assert reply.cmd == entry.entry_id.decode()
    assert reply.rid == entry.rid.decode() and len(reply.rid) == 32
    assert reply.ts == 1_700_000_000_123
    assert reply.events == orjson.loads(EVENTS)
    assert reply.accepted and reply.reason is None
    [(_, fields)] = await xrange(aredis, keys.COMMANDS)
    assert orjson.loads(fields[b"c"]) == DEPOSIT
    assert fields[b"src"] == b"gw-1"
    assert fields[b"who"] == b"admin"
    assert fields[b"ip"] == b"10.0.0.1"
    assert fields[b"ts"] == b"1700000000123"


@pytest.mark.asyncio
async def test_submitter_with_no_engine_times_out_naming_the_journalled_command(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    async with Submitter(redis_server.url, "gw-1", timeout=0.2) as submitter:
        with pytest.raises(SubmitTimeout) as raised:
            await submitter.submit(DEPOSIT, who="admin")
    [(entry_id, _)] = await xrange(aredis, keys.COMMANDS)
    assert raised.value.cmd == entry_id.decode()


@pytest.mark.asyncio
async def test_submitter_with_a_missed_reply_finds_the_outcome_in_the_events_stream(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    async with Submitter(redis_server.url, "gw-1", timeout=0.3) as submitter:
        cmd, future = await submitter.submit_nowait(DEPOSIT, who="admin")
        [(entry_id, fields)] = await xrange(aredis, keys.COMMANDS)
        entry = parse_command_entry(entry_id, fields)
        # The engine applied it but the reply was published to nobody (e.g. while resubscribing).
        await _record(aredis, entry)
        reply = await submitter.wait(cmd, future)
    assert reply.cmd == cmd and reply.events == orjson.loads(EVENTS)


@pytest.mark.asyncio
async def test_submitter_finds_a_missed_outcome_recorded_with_later_commands_under_the_last_id(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    async with Submitter(redis_server.url, "gw-1", timeout=0.3) as submitter:
        cmd, future = await submitter.submit_nowait(DEPOSIT, who="admin")
        later, _ = await submitter.submit_nowait(DEPOSIT, who="admin")
        [first, second] = [parse_command_entry(*found) for found in await xrange(aredis, keys.COMMANDS)]
        await _record(aredis, first, second)  # one entry, under the later command's id
        assert [entry_id for entry_id, _ in await xrange(aredis, keys.EVENTS)] == [later.encode()]
        reply = await submitter.wait(cmd, future)
    assert (reply.cmd, reply.rid) == (cmd, first.rid.decode())


@pytest.mark.asyncio
async def test_submitter_resubscribing_finds_every_missed_outcome_of_an_entry_with_one_xrange(
    redis_server: RedisServer, aredis: redis.asyncio.Redis, redis_client: redis.Redis
) -> None:
    """Replies published while a gateway's subscription was down: after resubscribing it reads the
    events stream once per entry (a hundred outcomes each), not once per awaited command."""
    async with Submitter(redis_server.url, "gw-1", timeout=20) as submitter:
        sent = [await submitter.submit_nowait(DEPOSIT, who="admin") for _ in range(5)]
        entries = [parse_command_entry(*found) for found in await xrange(aredis, keys.COMMANDS)]
        await _record(aredis, *entries)  # applied, but the replies went to nobody
        redis_client.config_resetstat()
        redis_client.client_kill_filter(_type="pubsub")  # the subscription drops; it resubscribes
        replies = [await submitter.wait(cmd, future) for cmd, future in sent]
        xranges = redis_client.info("commandstats").get("cmdstat_xrange", {}).get("calls")
    assert [reply.cmd for reply in replies] == [cmd for cmd, _ in sent]
    assert xranges == 1


@pytest.mark.asyncio
async def test_submitter_finds_a_missed_outcome_in_an_entry_of_one_command_as_engines_wrote_before(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    """A Redis whose events stream an older engine wrote: one entry per command, under its id."""
    async with Submitter(redis_server.url, "gw-1", timeout=0.3) as submitter:
        cmd, future = await submitter.submit_nowait(DEPOSIT, who="admin")
        [(entry_id, fields)] = await xrange(aredis, keys.COMMANDS)
        old = {"cmd": entry_id, "ts": fields[b"ts"], "rid": fields[b"rid"], "e": EVENTS}
        await aredis.xadd(keys.EVENTS, old, id=entry_id)  # type: ignore[arg-type]
        reply = await submitter.wait(cmd, future)
    assert (reply.cmd, reply.rid, reply.events) == (cmd, fields[b"rid"].decode(), orjson.loads(EVENTS))


@pytest.mark.asyncio
async def test_submitter_with_redis_gone_raises_submit_error_appends_nothing_and_reconnects_after(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    submitter = Submitter(redis_server.url, "gw-1", timeout=0.5)
    await submitter.start()
    futures = []
    try:
        first, future = await submitter.submit_nowait(DEPOSIT, who="admin")  # its connection is open
        futures.append(future)
        redis_server.kill()
        with pytest.raises(SubmitError):
            await submitter.submit(DEPOSIT, who="admin")
        redis_server.restart()
        assert [entry_id.decode() for entry_id, _ in await xrange(aredis, keys.COMMANDS)] == [first]
        then, future = await submitter.submit_nowait(DEPOSIT, who="admin")  # a new connection
        futures.append(future)
        assert [entry_id.decode() for entry_id, _ in await xrange(aredis, keys.COMMANDS)] == [first, then]
    finally:
        for future in futures:
            future.cancel()  # no engine will answer them
        await submitter.close()


@pytest.mark.asyncio
async def test_submitter_whose_redis_stalls_after_the_send_says_the_outcome_is_unknown_not_refused(
    redis_server: RedisServer, aredis: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis stops answering (a stall, a network cut) after the XADD went out: the command may be
    journalled, as here once Redis goes on, so a caller told "not journalled" would send it twice.
    A Redis that stalls before the send (its connection is being opened) refuses the command."""
    monkeypatch.setattr(submit, "SEND_TIMEOUT", 0.5)
    assert redis_server.pid is not None
    submitter = Submitter(redis_server.url, "gw-1", timeout=0.5)
    await submitter.start()
    futures = []
    try:
        futures.append((await submitter.submit_nowait(DEPOSIT, who="admin"))[1])  # its connection is open
        os.kill(redis_server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(SubmitUnknown, match="may be in the journal"):
                await submitter.submit(DEPOSIT, who="admin")
            with pytest.raises(SubmitError) as refused:  # on a new connection, whose setup stalls
                await submitter.submit(DEPOSIT, who="admin")
            assert not isinstance(refused.value, SubmitUnknown)
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        assert len(await xrange(aredis, keys.COMMANDS)) == 2  # the first and the unknown one
    finally:
        for future in futures:
            future.cancel()  # no engine will answer them
        await submitter.close()


@pytest.mark.asyncio
async def test_submitter_before_start_refuses_to_submit(redis_server: RedisServer) -> None:
    with pytest.raises(SubmitError, match="start"):
        await Submitter(redis_server.url, "gw-1").submit(DEPOSIT, who="admin")


def test_submitter_with_a_blank_source_is_refused(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="source"):
        Submitter("redis://127.0.0.1:1/0", "gw 1")


def test_submit_sync_with_no_engine_times_out_after_journalling(redis_client: redis.Redis) -> None:
    with pytest.raises(SubmitTimeout) as raised:
        submit_sync(redis_client, DEPOSIT, who="admin", timeout=0.2)
    [(entry_id, fields)] = xrange_sync(redis_client, keys.COMMANDS)
    assert raised.value.cmd == entry_id.decode()
    assert fields[b"src"].startswith(b"admin-")


def test_submit_sync_whose_redis_stalls_after_the_send_says_the_outcome_is_unknown(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """``tradewire admin deposit`` told "could not journal" would be run again: a deposit twice."""
    client = redis_server.client(socket_timeout=0.3)
    try:
        redis_client.execute_command("CLIENT", "PAUSE", "2000", "WRITE")  # XADD waits, SUBSCRIBE not
        with pytest.raises(SubmitUnknown, match="request id"):
            submit_sync(client, DEPOSIT, who="admin", timeout=0.2)
    finally:
        redis_client.execute_command("CLIENT", "UNPAUSE")
        client.close()


@pytest.mark.asyncio
async def test_submitter_whose_subscription_dropped_still_gets_the_outcome(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    async with Submitter(redis_server.url, "gw-1", timeout=20) as submitter:
        cmd, future = await submitter.submit_nowait(DEPOSIT, who="admin")
        redis_server.kill()  # the subscription dies with the server; the journal entry is on disk
        redis_server.restart()
        async with running_engine(redis_server.url):
            reply = await submitter.wait(cmd, future)
    assert reply.cmd == cmd
    assert reply.events == orjson.loads(EVENTS)


@pytest.mark.asyncio
async def test_two_submitters_racing_an_account_past_its_order_limit_journal_exactly_the_limit(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Two gateways' submitters, twelve orders each for one account at once, a limit of 7 per 10 s:
    the count and the append are one script, so exactly seven are journalled, every other one is
    refused with its counts, and the refused are not counted (the window ends at the limit)."""
    order = {"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",
             "qty": "1", "price": "100"}  # fmt: skip
    quota = OrderQuota("alice", per_10s=7, per_day=1000)
    async with (
        Submitter(redis_server.url, "gw-a", timeout=0.2) as a,
        Submitter(redis_server.url, "gw-b", timeout=0.2) as b,
    ):
        if time.time() % 10 > 7:  # the whole race inside one 10-second window (Redis's clock)
            await asyncio.sleep(10.2 - time.time() % 10)
        results = await asyncio.gather(
            *(submitter.submit_order(order, quota, who="k") for submitter in (a, b) for _ in range(12)),
            return_exceptions=True,
        )
    refused = [r for r in results if isinstance(r, TooManyOrders)]
    journalled = [r for r in results if isinstance(r, SubmitTimeout)]  # no engine: appended, unanswered
    assert len(journalled) == 7 and len(refused) == 17
    assert all(r.counts.ten_seconds == 7 and r.interval == "10 SECOND" for r in refused)
    assert redis_client.xlen(keys.COMMANDS) == 7
    counts = redis_client.hgetall(counts_key("alice"))
    assert counts[b"c10"] == b"7" and counts[b"c1d"] == b"7"
    assert 0 < redis_client.pttl(counts_key("alice")) <= 90_000_000


@pytest.mark.asyncio
async def test_an_events_entry_under_the_commands_id_but_of_another_rid_is_not_its_outcome(
    redis_server: RedisServer, aredis: redis.asyncio.Redis, redis_client: redis.Redis
) -> None:
    """After a failover that lost entries, Redis may give a lost command's id to a new one: the
    outcome found under that id (the lost command's) must not be taken for the new command's."""
    async with Submitter(redis_server.url, "gw-1", timeout=0.5) as submitter:
        cmd, future = await submitter.submit_nowait(DEPOSIT, who="admin")
        found = xread_entries(await aredis.xread({keys.COMMANDS: "0-0"}, count=1), keys.COMMANDS)
        entry = parse_command_entry(*found[0])
        other = CommandEntry(entry.entry_id, entry.command, entry.ts, b"f" * 32, entry.src)
        await _record(aredis, other)
        with pytest.raises(SubmitTimeout):
            await submitter.wait(cmd, future)
        cmd, future = await submitter.submit_nowait(DEPOSIT, who="admin")
        found = xread_entries(await aredis.xread({keys.COMMANDS: entry.entry_id}, count=1), keys.COMMANDS)
        entry = parse_command_entry(*found[0])
        await _record(aredis, entry)
        reply = await submitter.wait(cmd, future)  # its own rid: its outcome
        assert (reply.cmd, reply.rid) == (cmd, entry.rid.decode())
