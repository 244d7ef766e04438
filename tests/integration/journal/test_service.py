"""The engine service on a real Redis: commands in; events, replies, caches and publications out."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
import redis
import redis.asyncio
import structlog
import structlog.testing
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from tests.conftest import RedisServer, free_port
from tests.integration.journal.support import (
    CONFIG,
    ONE_TRADE,
    assert_balances_conserved,
    assert_redis_matches_replay,
    engine_process,
    idle_core,
    journal,
    recovered_from,
    running_engine,
    settings,
    wait_applied,
    wait_for,
)
from tests.strategies import VECTORS_CONFIG, random_stream
from tradewire import keys
from tradewire.accounts.records import OrderState
from tradewire.cli import app
from tradewire.engine import ExchangeConfig
from tradewire.engine.snapshot import dump
from tradewire.journal import service as service_module
from tradewire.journal.core import Core
from tradewire.journal.entries import CommandEntry, command_fields, parse_command_entry
from tradewire.journal.recovery import Recovered, recover
from tradewire.journal.service import EngineService, JournalRewound, Settings
from tradewire.journal.snapshots import pack_state
from tradewire.journal.streams import iter_events, xrange_sync
from tradewire.journal.submit import Submitter
from tradewire.journal.wire import Connection

VECTORS = ("01-priority-price-improvement-fee-rounding-quote-qty", "02-the-four-stp-modes")


def _vector_lines(name: str) -> list[str]:
    from tests.integration.journal.support import ROOT

    return (ROOT / "tests" / "vectors" / f"{name}.commands.jsonl").read_text().splitlines()


@pytest.mark.asyncio
async def test_engine_with_the_spec_vectors_writes_exactly_the_replay_events_and_views(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async with running_engine(redis_server.url, batch=7):
        ids = journal(redis_client, [line for name in VECTORS for line in _vector_lines(name)])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    assert_redis_matches_replay(redis_client)
    assert orjson.loads(redis_client.get(keys.CONFIG) or b"") == VECTORS_CONFIG
    assert redis_client.get(keys.ENGINE_HEARTBEAT) is not None


@pytest.mark.asyncio
async def test_engine_with_a_random_stream_including_bad_lines_matches_replay_and_conserves_balances(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    lines = random_stream(seed=7, length=3000)
    async with running_engine(redis_server.url, batch=250):
        ids = journal(redis_client, lines)
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    state = assert_redis_matches_replay(redis_client)
    assert_balances_conserved(redis_client, state)


@pytest.mark.asyncio
async def test_engine_with_an_undecodable_entry_rejects_it_and_goes_on(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async with running_engine(redis_server.url):
        redis_client.xadd(keys.COMMANDS, {"junk": "no c field"})
        ids = journal(
            redis_client, [b"\xff\xfe not json", '{"type": "deposit"}', _vector_lines(VECTORS[0])[0]]
        )
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    events = [orjson.loads(fields[b"e"]) for _, fields in iter_events(redis_client)]
    assert events[:3] == [[{"type": "rejected", "reason": "bad_command"}]] * 3
    assert events[3][0]["type"] == "deposit"


@pytest.mark.asyncio
async def test_recovery_reads_odd_journal_entries_as_the_live_engine_read_them(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Recovery's tail script picks ``c`` and ``ts`` out of each entry; it must pick what the live
    reader picked, or the rebuilt state differs from the one Redis holds the effects of."""
    lines = [line.encode() for name in VECTORS for line in _vector_lines(name)]
    deposit, order = lines[0], lines[len(lines) // 2]
    async with running_engine(redis_server.url, batch=3, snapshot_every=1_000_000) as service:
        ids = journal(redis_client, lines[:10])
        odd: list[list[tuple[str, str | bytes]]] = [
            [("ts", "1700000000123"), ("c", deposit)],  # fields in another order
            # the submitters' order but a field more: read by name, the last c
            [("c", deposit), ("ts", "1700000000200"), ("rid", "r"), ("src", "s"), ("c", b"{}")],
            [("c", b"{}"), ("ts", "1700000000300"), ("c", order)],  # no rid/src: the last c
            [("ts", "1700000000400")],  # no command at all
            [("c", deposit), ("ts", " 1700000000500 ")],  # a ts that int() reads
            [("c", deposit), ("ts", "soon")],  # a ts it does not
            [("c", deposit), ("ts", "9" * 30)],  # one no event or snapshot could carry: malformed
        ]
        for pairs in odd:
            flat = [part for pair in pairs for part in pair]
            ids.append(redis_client.execute_command("XADD", keys.COMMANDS, "*", *flat))
        ids += journal(redis_client, lines[10:])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        live_state = (await idle_core(service)).to_state()
    recovered = await recovered_from(redis_server.url)
    assert recovered.replayed == len(ids)
    assert recovered.core.to_state() == live_state
    # and the audit, which reads the fields by name, replays the same commands
    audit = CliRunner().invoke(app, ["audit", "verify"], env={"REDIS_URL": redis_server.url})
    assert audit.exit_code == 0, audit.stdout + audit.stderr


def _spoil(client: redis.Redis, how: str, touched: list[OrderState], untouched: list[OrderState]) -> None:
    """Make the order records of Redis unusable in one way (``untouched``: lose the records recovery
    does not need, those of orders the tail did not change)."""
    victim = next(order for order in touched if order.executed)  # partly filled in the tail
    key, field = keys.orders(victim.user), str(victim.order_id)
    if how == "lost":
        assert client.hdel(key, field) == 1
    elif how == "number":  # an amount as a JSON number
        client.hset(
            key, field, client.hget(key, field).replace(b'"executedQty":"', b'"executedQty":1, "x":"')
        )  # type: ignore[union-attr]
    elif how == "stale":  # a well-formed record of the order as it stood before its fills
        record = orjson.loads(client.hget(key, field) or b"")
        record.update(status="NEW", executedQty="0", cummulativeQuoteQty="0")
        client.hset(key, field, orjson.dumps(record))
    elif how == "wrong type":
        client.delete(key)
        client.set(key, "not a hash")
    elif how == "untouched lost":
        for order in untouched:
            client.hdel(keys.orders(order.user), str(order.order_id))


@pytest.mark.asyncio
@pytest.mark.parametrize("spoiled", [None, "lost", "number", "stale", "wrong type", "untouched lost"])
async def test_recovery_takes_the_open_orders_from_their_records_as_following_them_would(
    redis_server: RedisServer, redis_client: redis.Redis, spoiled: str | None
) -> None:
    """Recovery replays the tail without following orders and reads, at the end, the records of the
    open ones the tail changed; the state must be byte for byte the live one. A record that is
    missing, malformed, stale or unreadable makes it start over following them, with the same
    result; the records of orders the tail did not change are not even read."""
    lines = random_stream(seed=11, length=2500)
    async with running_engine(redis_server.url, batch=9, snapshot_every=700) as service:
        # 700 commands at a time, each snapshot written before the next come: one begun while the
        # last is still being written is not taken, and on a busy machine the last one then fell
        # early enough that the tail changed every open order
        ids: list[bytes] = []
        start = time.time_ns() // 1_000_000
        for first in range(0, len(lines), 700):
            chunk = lines[first : first + 700]  # order times and update times differ: 7 ms apart
            ids += journal(redis_client, chunk, step_ms=7, start_ms=start + first * 7)
            await asyncio.to_thread(wait_applied, redis_client, ids[-1])
            if len(chunk) == 700:
                await wait_for(lambda last=ids[-1]: snapshot_pos(redis_client) == last)  # type: ignore[misc]
        live = await idle_core(service)
        live_state = live.to_state()
        open_orders = list(live.accounts.open.values())
    assert any(order.update_time != order.time for order in open_orders)
    snapshot = Core.from_state(CONFIG, redis_client.hget(keys.SNAPSHOT, "state") or b"")
    before = snapshot.accounts.open
    touched = [
        o for o in open_orders if o.order_id not in before or before[o.order_id].executed != o.executed
    ]
    untouched = [o for o in open_orders if o not in touched]
    assert len(untouched) > 10 and any(order.executed for order in touched)
    if spoiled is not None:
        _spoil(redis_client, spoiled, touched, untouched)
    recovered, fell_back = await _recover_counting_fallbacks(redis_server.url)
    assert 0 < recovered.replayed < len(ids)  # from a snapshot, with a tail
    assert fell_back == (0 if spoiled in (None, "untouched lost") else 1)
    assert recovered.core.to_state() == live_state
    # after falling back, the records are written back: the next recovery reads them (a key of the
    # wrong type cannot be written, and is said so)
    again, fell_back = await _recover_counting_fallbacks(redis_server.url)
    assert fell_back == (1 if spoiled == "wrong type" else 0)
    assert again.core.to_state() == live_state


def snapshot_pos(client: redis.Redis) -> bytes | None:
    pos: bytes | None = client.hget(keys.SNAPSHOT, "pos")  # type: ignore[assignment]
    return pos


async def _recover_counting_fallbacks(url: str) -> tuple[Recovered, int]:
    """``recover()``, and how many times it started over following the orders."""
    conn = await Connection.open(url)
    try:
        with structlog.testing.capture_logs() as logs:
            recovered = await recover(conn, CONFIG)
    finally:
        await conn.close()
    return recovered, sum(entry["event"].startswith("order records unusable") for entry in logs)


@pytest.mark.asyncio
async def test_submitter_with_a_running_engine_gets_the_outcome_of_each_command(
    redis_server: RedisServer, aredis: redis.asyncio.Redis
) -> None:
    async with running_engine(redis_server.url), Submitter(redis_server.url, "gw-test") as submitter:
        deposit = await submitter.submit(
            {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "1000"}, who="admin"
        )
        order = await submitter.submit(
            {
                "type": "new_order",
                "user": "alice",
                "market": "BTC-USDT",
                "side": "buy",
                "kind": "limit",
                "qty": "1",
                "price": "100",
            },
            who="key-1",
        )
        refused = await submitter.submit(
            {"type": "withdraw", "user": "bob", "asset": "BTC", "amount": "1"}, who="key-2"
        )
    assert deposit.events == [{"type": "deposit", "user": "alice", "asset": "USDT", "amount": "1000"}]
    assert order.events == [{"type": "accepted", "order_id": 1, "user": "alice", "market": "BTC-USDT"}]
    assert refused.reason == "insufficient_balance" and not refused.accepted
    assert await aredis.hget(keys.md("BTC-USDT", "bids"), "100") == b"1"
    record = orjson.loads(await aredis.hget(keys.orders("alice"), "1") or b"{}")
    assert record["status"] == "NEW" and record["symbol"] == "BTCUSDT"


@pytest.mark.asyncio
async def test_engine_publications_carry_consecutive_offsets_and_one_epoch_with_history(
    redis_server: RedisServer, redis_client: redis.Redis, aredis: redis.asyncio.Redis
) -> None:
    channel = keys.md("BTC-USDT", "depth")
    pubsub = aredis.pubsub()
    await pubsub.subscribe(channel)
    confirmation = await pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe"
    lines = random_stream(seed=3, length=800)
    async with running_engine(redis_server.url, batch=50):
        ids = journal(redis_client, lines)
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        messages: list[bytes] = []
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
            messages.append(message["data"])
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert messages, "no depth diffs were published"
    offsets = [int(m.split(b" ", 2)[0]) for m in messages]
    epochs = {m.split(b" ", 2)[1] for m in messages}
    assert offsets == list(range(1, len(offsets) + 1))
    assert len(epochs) == 1
    meta = redis_client.hgetall(keys.md_meta("BTC-USDT", "depth"))
    assert meta[b"offset"] == str(len(offsets)).encode() and meta[b"epoch"] in epochs
    history = xrange_sync(redis_client, keys.md_history("BTC-USDT", "depth"))
    assert [entry_id for entry_id, _ in history] == [f"{o}-0".encode() for o in offsets]
    assert [fields[b"m"] for _, fields in history] == messages


@pytest.mark.asyncio
async def test_engine_publishes_the_klines_and_ticker_a_batch_held_back_once_no_command_follows(
    redis_server: RedisServer, redis_client: redis.Redis, aredis: redis.asyncio.Redis
) -> None:
    """A second trade stamped in the first one's 100-ms slot: its batch writes the ticker to the
    cache and publishes depth and the trade, but holds the kline and ticker publications and the
    bars' cache writes back; with no command after it, the engine makes them."""
    pubsub = aredis.pubsub()
    await pubsub.subscribe(keys.md("BTC-USDT", "kline_1m"), keys.md("BTC-USDT", "ticker"))
    for _ in range(2):
        confirmation = await pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"
    stamp = time.time_ns() // 1_000_000

    def append(commands: list[dict[str, str]], ts: int) -> bytes:
        pipe = redis_client.pipeline(transaction=False)
        for i, command in enumerate(commands):
            fields = command_fields(orjson.dumps(command), ts=ts, rid=f"{ts}{i}", src="t", who="t", ip="-")
            pipe.xadd(keys.COMMANDS, fields)  # type: ignore[arg-type]
        return pipe.execute()[-1]  # type: ignore[no-any-return]

    counts: dict[str, int] = {}

    async def counts_reach(expected: dict[str, int]) -> dict[str, int]:
        """The trade count of the latest publication by channel, once they are ``expected`` (or
        after 5 s)."""
        deadline = time.monotonic() + 5
        while counts != expected and time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                payload = orjson.loads(message["data"].split(b" ", 2)[2])
                counts[message["channel"].decode()] = payload["k"]["n"] if "k" in payload else payload["n"]
        return dict(counts)

    kline, ticker = "md:{BTC-USDT}:kline_1m", "md:{BTC-USDT}:ticker"
    async with running_engine(redis_server.url) as service:
        await asyncio.to_thread(wait_applied, redis_client, append(ONE_TRADE, stamp))
        assert await counts_reach({kline: 1, ticker: 1}) == {kline: 1, ticker: 1}
        assert service.core is not None
        # stamped with the exchange time the engine is at, well within a second of Redis's clock
        # (else held to it): the same 100-ms slot, so the batch holds its publications back
        second = append([ONE_TRADE[2], ONE_TRADE[3]], service.core.ts)
        await asyncio.to_thread(wait_applied, redis_client, second)
        assert orjson.loads(redis_client.get(keys.md("BTC-USDT", "ticker")))["count"] == 2, (
            "the ticker's cache has the second trade as soon as it is applied"
        )
        assert await counts_reach({kline: 2, ticker: 2}) == {kline: 2, ticker: 2}
        [bar] = redis_client.zrange(keys.md("BTC-USDT", "klines:1m"), -1, -1)
        assert orjson.loads(bar)[8] == 2, "the bar's cache, with its publication"
    await pubsub.aclose()  # type: ignore[no-untyped-call]


@pytest.mark.asyncio
async def test_engine_holding_klines_when_redis_lost_its_last_writes_finds_out_before_publishing_them(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Redis killed while a batch's kline and ticker publications are held back, and back with an
    AOF that ends before that batch (``appendfsync everysec`` and a machine failure). The engine
    must find out that Redis lost writes before it makes them, as it does before a commit: else
    subscribers get, under the old epoch, a bar counting a trade that Redis no longer has."""
    async with running_engine(redis_server.url) as service:
        ids = journal(redis_client, [orjson.dumps(command) for command in ONE_TRADE])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        core = await idle_core(service)  # its tick computed; committed a moment later
        meta = keys.md_meta("BTC-USDT", "kline_1m")
        await wait_for(lambda: redis_client.hget(meta, "epoch") is not None, timeout=5)
        old_epoch = redis_client.hget(meta, "epoch")
        aof = redis_server.directory / "appendonlydir"
        kept = redis_server.directory.parent / "aof-copy"
        shutil.copytree(aof, kept)
        pipe = redis_client.pipeline(transaction=False)
        for i, command in enumerate([ONE_TRADE[2], ONE_TRADE[3]]):  # the same trade, in the first's slot
            line = orjson.dumps(command)
            fields = command_fields(line, ts=core.ts, rid=f"held{i}", src="t", who="t", ip="-")
            pipe.xadd(keys.COMMANDS, fields)  # type: ignore[arg-type]
        held = pipe.execute()[-1]
        deadline = time.monotonic() + 10
        while service.applied != held:
            assert time.monotonic() < deadline, "the engine did not commit the batch"
            await asyncio.sleep(0.001)
        assert core.holds()
        redis_server.kill()  # within the 100 ms before its tick (the loop waits for these calls)
        shutil.rmtree(aof)
        shutil.copytree(kept, aof)
        redis_server.restart()
        client = redis_server.async_client()
        pubsub = client.pubsub()
        await pubsub.subscribe(keys.md("BTC-USDT", "kline_1m"))
        confirmation = await pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        bars: list[tuple[bytes, int]] = []
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=3.0)) is not None:
            _, epoch, payload = message["data"].split(b" ", 2)
            bars.append((epoch, orjson.loads(payload)["k"]["n"]))
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await client.aclose()
    assert bars, "the bar was never published again"
    assert all(epoch != old_epoch for epoch, _ in bars), f"published under the old epoch: {bars}"
    assert bars[-1][1] == 1, "the bar as Redis has it: the first trade only"


@pytest.mark.asyncio
async def test_engine_publishes_klines_while_commands_keep_coming_in_one_slot_of_exchange_time(
    redis_server: RedisServer, redis_client: redis.Redis, aredis: redis.asyncio.Redis
) -> None:
    """Exchange time can stand still while commands keep coming: when Redis's clock steps back,
    ``XADD *`` keeps the last id's milliseconds and counts the sequence up, and every stamp is held
    within a second of that. A trade every 30 ms then never takes exchange time into a new 100-ms
    slot and never leaves the engine 100 ms without a command: kline publications must not wait
    for a pause in the commands."""
    pubsub = aredis.pubsub()
    await pubsub.subscribe(keys.md("BTC-USDT", "kline_1m"))
    confirmation = await pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe"
    sell = {"type": "new_order", "user": "bob", "market": "BTC-USDT", "side": "sell", "kind": "limit",
            "qty": "1", "price": "100"}  # fmt: skip
    buy = {**sell, "user": "alice", "side": "buy"}
    commands = [{"type": "deposit", "user": "bob", "asset": "BTC", "amount": "100"}] + [sell, buy] * 40
    published: list[int] = []
    async with running_engine(redis_server.url):
        deposit = {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "100000"}
        stamp = time.time_ns() // 1_000_000
        first = redis_client.xadd(
            keys.COMMANDS,
            command_fields(orjson.dumps(deposit), ts=stamp, rid="r", src="t", who="t", ip="-"),  # type: ignore[arg-type]
        )
        assert isinstance(first, bytes)
        ms, seq = (int(part) for part in first.split(b"-"))
        for i, command in enumerate(commands):
            fields = command_fields(orjson.dumps(command), ts=ms, rid=f"r{i}", src="t", who="t", ip="-")
            redis_client.xadd(keys.COMMANDS, fields, id=f"{ms}-{seq + 1 + i}")  # type: ignore[arg-type]
            if i % 2 == 0:  # after each sell and buy that trade
                await asyncio.sleep(0.03)
            while (message := await pubsub.get_message(True, timeout=0)) is not None:
                published.append(orjson.loads(message["data"].split(b" ", 2)[2])["k"]["n"])
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert len(published) >= 4, f"kline_1m publications while 40 trades came in 1.2 s: {published}"


def _errors(kind: str) -> float:
    value = REGISTRY.get_sample_value("tradewire_redis_errors_total", {"role": "engine", "kind": kind})
    return value or 0.0


@pytest.mark.asyncio
async def test_engine_restarted_publishes_the_emptied_partial_book_its_predecessor_held_back(
    redis_server: RedisServer, redis_client: redis.Redis, aredis: redis.asyncio.Redis
) -> None:
    """The book empties in a batch that stays in the 100-ms slot of the one before, so it holds its
    ``depth20``, and the engine stops before its tick. The next engine must publish the empty
    partial book after its recovery: else ``@depth5/10/20`` subscribers keep the ask that is gone
    (Binance-style clients have no diff on those streams to correct it) until the book moves."""
    async with running_engine(redis_server.url) as service:
        ids = journal(redis_client, [orjson.dumps(command) for command in ONE_TRADE[1:3]])  # bob's sell
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        ts = (await idle_core(service)).ts
        epoch = service.epoch
    # the engine that stops: the cancel's batch, in the sell's slot, committed as that engine does
    cancel = {"type": "cancel", "user": "bob", "market": "BTC-USDT", "order_id": 1}
    fields = command_fields(orjson.dumps(cancel), ts=ts, rid="c", src="t", who="t", ip="-")
    entry_id = redis_client.xadd(keys.COMMANDS, fields)  # type: ignore[arg-type]
    assert isinstance(entry_id, bytes)
    conn = await Connection.open(redis_server.url)
    try:
        core = (await recover(conn, CONFIG)).core
        ops = core.batch([CommandEntry(entry_id, orjson.dumps(cancel), ts, b"c", b"t")], epoch)
        assert core.holds(), "the cancel's batch holds its depth20"
        await conn.transaction(ops)
    finally:
        await conn.close()
    pubsub = aredis.pubsub()
    await pubsub.subscribe(keys.md("BTC-USDT", "depth20"))
    confirmation = await pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe"
    async with running_engine(redis_server.url):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=3.0)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None, "the emptied partial book was never published"
    assert orjson.loads(message["data"].split(b" ", 2)[2]) == {"lastUpdateId": 2, "bids": [], "asks": []}


@pytest.mark.asyncio
async def test_engine_with_redis_out_of_memory_retries_until_it_has_room_and_applies_once(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    before = _errors("OOM")
    async with running_engine(redis_server.url, batch=100):
        # The commands and the memory limit in one transaction: the engine reads them, cannot commit.
        pipe = redis_client.pipeline(transaction=True)
        for line in random_stream(seed=5, length=400):
            pipe.xadd(keys.COMMANDS, command_fields(line.encode(), ts=1, rid="r", src="t", who="t", ip="-"))
        pipe.config_set("maxmemory", "1")
        ids = pipe.execute()[:-1]
        await wait_for(lambda: _errors("OOM") >= before + 2)
        assert redis_client.get(keys.APPLIED) is None
        redis_client.config_set("maxmemory", "0")
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    assert_redis_matches_replay(redis_client)


def _in_the_child_only(monkeypatch: pytest.MonkeyPatch, then: Callable[[Core], bytes]) -> None:
    """Make a snapshot's serialisation run ``then`` in a forked child; the test's process (the engine
    runs in it) still serialises normally."""
    original, parent = Core.snapshot_state, os.getpid()

    def serialise(core: Core) -> bytes:
        return then(core) if os.getpid() != parent else original(core)

    monkeypatch.setattr(Core, "snapshot_state", serialise)


def _held_until(release: Path) -> Callable[[Core], bytes]:
    """A serialisation that waits for the file ``release`` to exist."""

    def serialise(core: Core) -> bytes:
        while not release.exists():
            time.sleep(0.01)
        return pack_state(core.to_state())

    return serialise


@pytest.mark.asyncio
async def test_the_engine_applies_batches_while_a_child_serialises_its_snapshot(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The snapshot's serialisation takes tens of milliseconds; taken between two batches it held
    every command that came meanwhile. Here it takes seconds, and commands keep being applied; the
    snapshot, once written, covers where the child was forked, and recovers the live state."""
    release = tmp_path / "release-the-snapshot"
    _in_the_child_only(monkeypatch, _held_until(release))
    lines = random_stream(seed=21, length=600)
    async with running_engine(redis_server.url, batch=50, snapshot_every=100) as service:
        ids = journal(redis_client, lines[:150])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        ids += journal(redis_client, lines[150:])
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        assert redis_client.hget(keys.SNAPSHOT, "pos") is None, "the engine waited for its snapshot"
        release.touch()
        await wait_for(lambda: redis_client.hget(keys.SNAPSHOT, "pos") is not None)
        live_state = (await idle_core(service)).to_state()
    pos = redis_client.hget(keys.SNAPSHOT, "pos")
    assert pos in ids[99:150], "forked at the end of the batch that made it due"
    recovered = await recovered_from(redis_server.url)
    assert recovered.replayed == len(ids) - 1 - ids.index(pos)
    assert recovered.core.to_state() == live_state
    assert_redis_matches_replay(redis_client)


@pytest.mark.asyncio
async def test_a_snapshot_child_that_runs_too_long_is_stopped_and_the_next_one_is_written(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A child stopped (SIGSTOP) or stuck would hold back every later snapshot, and say nothing."""
    release = tmp_path / "release-the-snapshot"
    _in_the_child_only(monkeypatch, _held_until(release))
    monkeypatch.setattr(service_module, "SNAPSHOT_CHILD_SECONDS", 0.3)
    with structlog.testing.capture_logs() as logs:
        async with running_engine(redis_server.url, snapshot_seconds=0.3):
            ids = journal(redis_client, random_stream(seed=23, length=100))
            await asyncio.to_thread(wait_applied, redis_client, ids[-1])
            await wait_for(lambda: any("ran too long" in e["event"] for e in logs))
            assert redis_client.hget(keys.SNAPSHOT, "pos") is None
            release.touch()
            await wait_for(lambda: redis_client.hget(keys.SNAPSHOT, "pos") == ids[-1])
    stopped = [e for e in logs if "ran too long" in e["event"]]
    assert stopped[0]["pos"].encode() in ids and stopped[0]["seconds"] >= 0.3
    assert_redis_matches_replay(redis_client)


@pytest.mark.asyncio
async def test_a_snapshot_the_child_cannot_serialise_is_reported_and_the_engine_goes_on(
    redis_server: RedisServer, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(core: Core) -> bytes:
        raise RuntimeError("a value the state format cannot hold")

    _in_the_child_only(monkeypatch, broken)
    with structlog.testing.capture_logs() as logs:
        async with running_engine(redis_server.url, batch=20, snapshot_every=50):
            ids = journal(redis_client, random_stream(seed=22, length=300))
            await asyncio.to_thread(wait_applied, redis_client, ids[-1])
            await wait_for(lambda: any(e["event"].startswith("snapshot not taken") for e in logs))
    failed = [e for e in logs if e["event"].startswith("snapshot not taken")]
    assert failed and "RuntimeError: a value the state format cannot hold" in failed[0]["error"]
    assert len(failed) <= 300 // 50 + 1, "retried with every batch, not after the interval"
    assert failed[0]["pos"].encode() in ids
    assert not [e for e in logs if e["event"] == "snapshot written"]
    assert redis_client.hget(keys.SNAPSHOT, "pos") is None
    assert_redis_matches_replay(redis_client)


@pytest.mark.asyncio
async def test_engine_idle_on_a_redis_out_of_memory_reports_it_and_writes_its_snapshot_once_it_has_room(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """No command comes, so the only writes are the heartbeat and the snapshot that falls due: a
    refused one is reported and retried, never logged as written."""
    with structlog.testing.capture_logs() as logs:
        async with running_engine(redis_server.url, snapshot_seconds=2.0):
            ids = journal(redis_client, random_stream(seed=9, length=50))
            await asyncio.to_thread(wait_applied, redis_client, ids[-1])
            before = _errors("OOM")
            redis_client.config_set("maxmemory", "1")
            assert redis_client.hget(keys.SNAPSHOT, "pos") != ids[-1], "snapshot before the test's OOM"
            await wait_for(lambda: any(e.get("doing") == "writing a snapshot" for e in logs))
            assert _errors("OOM") >= before + 2  # the heartbeat's and the snapshot's
            assert not [e for e in logs if e["event"] == "snapshot written"]
            redis_client.config_set("maxmemory", "0")
            await wait_for(lambda: redis_client.hget(keys.SNAPSHOT, "pos") == ids[-1])
    assert [e["pos"] for e in logs if e["event"] == "snapshot written"] == [ids[-1].decode()]


@pytest.mark.asyncio
async def test_engine_with_redis_demanding_a_password_retries_until_it_may_connect(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async with running_engine(redis_server.url, batch=100):
        first = journal(redis_client, random_stream(seed=6, length=200))
        await asyncio.to_thread(wait_applied, redis_client, first[-1])
        before = _errors("NOAUTH")
        redis_client.config_set("requirepass", "s3cret")
        redis_client.client_kill_filter(_type="normal", skipme=True)
        await wait_for(lambda: _errors("NOAUTH") > before)
        redis_client.config_set("requirepass", "")
        second = journal(redis_client, random_stream(seed=7, length=200))
        await asyncio.to_thread(wait_applied, redis_client, second[-1])
    assert_redis_matches_replay(redis_client)


def _metric_sum(text: str, name: str) -> float:
    """The sum of a metric's samples over all its labels, from the Prometheus text format."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_engine_process_serves_metrics_and_readiness(redis_server: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    engine = engine_process(redis_server.url, tmp_path, "--metrics-port", str(port))
    client = redis_server.client()
    try:
        ids = journal(client, random_stream(seed=8, length=300))
        wait_applied(client, ids[-1])
        deadline = time.monotonic() + 20
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert 'tradewire_commands_total{outcome="accepted",reason=""}' in metrics
        assert _metric_sum(metrics, "tradewire_commands_total") == len(ids)
        trades = sum(
            1
            for _, fields in iter_events(client)
            for event in orjson.loads(fields[b"e"])
            if event["type"] == "trade"
        )
        assert trades and _metric_sum(metrics, "tradewire_trades_total") == trades
        assert "tradewire_engine_apply_seconds_count" in metrics
        assert "tradewire_journal_append_seconds_count" in metrics
        assert "\ntradewire_engine_native 1.0\n" in metrics
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        # a deposit of 5e18 units, beyond the native core's bounds: the pure engine takes over, and says so
        [whale] = journal(client, ['{"type":"deposit","user":"whale","asset":"BTC","amount":"50000000000"}'])
        wait_applied(client, whale)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert "\ntradewire_engine_native 0.0\n" in metrics
        assert _metric_sum(metrics, "tradewire_commands_total") == len(ids) + 1
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(30) == 0
        client.close()


async def _start_warnings(
    server: RedisServer, client: redis.Redis, appendonly: str, policy: str
) -> list[str]:
    """The warnings an engine logs while it starts on ``server`` set up so."""
    client.config_set("appendonly", appendonly)
    client.config_set("maxmemory-policy", policy)
    client.config_set("maxmemory", "1gb")  # with no limit (0) nothing is ever evicted
    with structlog.testing.capture_logs() as logs:
        async with running_engine(server.url):
            pass
    return [entry["event"] for entry in logs if entry["log_level"] == "warning"]


@pytest.mark.asyncio
async def test_engine_on_a_redis_without_aof_or_with_eviction_says_what_that_costs(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    warnings = await _start_warnings(redis_server, redis_client, "no", "allkeys-lru")
    assert any("appendonly no" in text for text in warnings), warnings
    assert any("maxmemory-policy allkeys-lru" in text for text in warnings), warnings


@pytest.mark.asyncio
async def test_engine_on_a_durable_redis_that_never_evicts_warns_of_nothing(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    assert await _start_warnings(redis_server, redis_client, "yes", "noeviction") == []


def _refused_start(url: str, tmp_path: Path) -> str:
    """Start an engine that must refuse to start (exit 1); its log."""
    refused = engine_process(url, tmp_path)
    try:
        assert refused.wait(60) == 1
    finally:
        if refused.poll() is None:
            refused.kill()
    return (tmp_path / "engine.log").read_text()


def test_engine_refuses_to_recover_a_journal_under_another_config_and_changes_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A deposit of 1.23456789 BTC confirmed under precision 8 is invalid under precision 4: an
    engine restarted with that config must not replay the journal into other balances (nor tell the
    gateways the new config); it says which field differs and exits."""
    client = redis_server.client()
    engine = engine_process(redis_server.url, tmp_path)
    try:
        deposit = {"type": "deposit", "user": "carol", "asset": "BTC", "amount": "1.23456789"}
        ids = journal(client, [orjson.dumps(deposit)])
        wait_applied(client, ids[-1])
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(30) == 0
    running = client.get(keys.CONFIG)
    other = orjson.loads(running)
    other["assets"]["BTC"]["precision"] = 4
    (tmp_path / "config.json").write_bytes(orjson.dumps(other))
    log = _refused_start(redis_server.url, tmp_path)
    assert "assets.BTC.precision: 8 before, 4 now" in log, log[-2000:]
    assert client.get(keys.CONFIG) == running
    assert client.get(keys.APPLIED) == ids[-1]
    assert_redis_matches_replay(client)
    client.close()


def test_engine_given_a_read_only_replica_says_so_with_back_off_and_stops_on_sigterm(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A replica as ``REDIS_URL`` refuses every write (``READONLY``): the engine retries with its
    back-off and says why, and SIGTERM stops it (it ignored SIGTERM and retried without pausing,
    thousands of log lines a second, until killed)."""
    replica = RedisServer(tmp_path / "replica", extra={"replicaof": f"127.0.0.1 {redis_server.port}"})
    replica.start()
    engine = engine_process(replica.url, tmp_path)
    log = tmp_path / "engine.log"
    try:
        deadline = time.monotonic() + 20
        while "READONLY" not in log.read_text():
            assert time.monotonic() < deadline and engine.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(10) == 0
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        replica.stop()
    lines = log.read_text().splitlines()
    assert len(lines) < 30, lines[-3:]
    assert redis_server.client().get(keys.CONFIG) is None  # nothing reached the primary either


def test_engine_applies_the_name_rules_to_a_new_exchange_only(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A market name with a slash breaks stream paths: a new exchange is refused it, but one that
    already runs under it (created before the rule) keeps running, with a warning, rather than being
    locked out of its own journal."""
    raw = orjson.loads(orjson.dumps(VECTORS_CONFIG))
    raw["markets"]["BTC/USDT"] = raw["markets"].pop("BTC-USDT")
    (tmp_path / "config.json").write_bytes(orjson.dumps(raw))
    client = redis_server.client()
    log = _refused_start(redis_server.url, tmp_path)
    assert "config: markets.'BTC/USDT': a market's name is 1-40 ASCII letters, digits" in log, log[-2000:]
    assert client.get(keys.CONFIG) is None
    # the same exchange as an older version left it: its config in Redis, its applied mark written
    client.set(keys.CONFIG, orjson.dumps(raw))
    client.set(keys.APPLIED, b"0-0")
    deposit = {"type": "deposit", "user": "carol", "asset": "BTC", "amount": "1"}
    ids = journal(client, [orjson.dumps(deposit)])
    running = engine_process(redis_server.url, tmp_path)
    try:
        wait_applied(client, ids[-1])
        log = (tmp_path / "engine.log").read_text()
        assert "config name outside today's rules, kept for this exchange" in log, log[-2000:]
    finally:
        running.send_signal(signal.SIGTERM)
        assert running.wait(30) == 0
    client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("in_child", [True, False], ids=["forked", "in-process"])
async def test_the_engine_snapshots_an_18_decimal_asset_past_64_bits_and_recovers_from_it(
    redis_server: RedisServer, redis_client: redis.Redis, in_child: bool
) -> None:
    """20 units of an 18-decimal token are past 2**64 units: the engine used to die at every
    snapshot after such a deposit, and again a snapshot interval after each restart. Serialised in
    a child or, where the engine cannot fork, by the engine itself."""
    raw = VECTORS_CONFIG | {"assets": VECTORS_CONFIG["assets"] | {"ETH": {"precision": 18}}}
    config = ExchangeConfig.from_dict(raw)
    wide = Settings(redis_server.url, config, raw, batch=2, snapshot_every=3, snapshot_in_child=in_child)
    lines = [
        orjson.dumps({"type": "deposit", "user": "alice", "asset": "ETH", "amount": "40"}),
        orjson.dumps({"type": "deposit", "user": "bob", "asset": "USDT", "amount": "100000"}),
        orjson.dumps({"type": "new_order", "user": "alice", "market": "ETH-USDT", "side": "sell",
                      "kind": "limit", "qty": "25", "price": "2000"}),
        orjson.dumps({"type": "new_order", "user": "bob", "market": "ETH-USDT", "side": "buy",
                      "kind": "limit", "qty": "21", "price": "2000"}),
    ]  # fmt: skip
    service = EngineService(wide)
    task = asyncio.create_task(service.run())
    try:
        ids = journal(redis_client, lines)
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        deadline = time.monotonic() + 10
        while redis_client.hget(keys.SNAPSHOT, "pos") != ids[-1]:
            assert not task.done(), f"the engine stopped: {task.exception()!r}"
            assert time.monotonic() < deadline, "no snapshot covers the last command"
            await asyncio.sleep(0.02)
        assert service.core is not None
        live = dump(service.core.engine.as_pure())
    finally:
        service.stopping.set()
        await asyncio.wait_for(task, 30)
    conn = await Connection.open(redis_server.url)
    try:
        recovered = await recover(conn, ExchangeConfig.from_dict(raw))
    finally:
        await conn.close()
    assert recovered.replayed == 0
    assert dump(recovered.core.engine.as_pure()) == live
    assert recovered.core.engine.balance("bob", "ETH")[0] > 2**64


@pytest.mark.asyncio
async def test_a_batch_whose_last_id_now_holds_another_command_is_a_rewound_journal(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """After a failover that lost entries, Redis may give a lost command's id to a new one: the
    check of a batch that may have to be sent again compares the last command's rid, not its id."""
    [last] = journal(redis_client, [orjson.dumps(ONE_TRADE[0])])
    (entry_id, fields), *_ = redis_client.xrange(keys.COMMANDS)
    read = parse_command_entry(entry_id, fields)
    service = EngineService(settings(redis_server.url))
    try:
        assert await service._committed(last, read.rid) is False  # the very command: not committed yet
        with pytest.raises(JournalRewound, match="not the one this engine read"):
            await service._committed(last, b"f" * 32)
    finally:
        await service.close()


@pytest.mark.asyncio
async def test_engine_on_a_redis_that_rewrites_its_aof_from_64_mb_says_so_at_start(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The warning's settings must be among those the engine asks Redis for, not only understood."""
    redis_client.config_set("auto-aof-rewrite-percentage", "100")
    redis_client.config_set("auto-aof-rewrite-min-size", "64mb")
    warnings = await _start_warnings(redis_server, redis_client, "yes", "noeviction")
    assert len(warnings) == 1 and "passed 64 MB" in warnings[0], warnings
