"""Where a snapshot begins (once its batch's transaction is sent) and what it covers: always the end of a
committed batch, with the state after exactly the commands up to there, never a batch Redis lost."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import redis
import structlog.testing

from tests.conftest import RedisServer
from tests.integration.journal.support import (
    CONFIG,
    assert_redis_matches_replay,
    idle_core,
    journal,
    recovered_from,
    running_engine,
    wait_applied,
    wait_for,
)
from tests.strategies import random_stream
from tradewire import keys
from tradewire.journal.core import Core, Op
from tradewire.journal.service import EngineService
from tradewire.journal.snapshots import ForkedSnapshot


def _covers(ops: list[Op]) -> int:
    """The number of commands the state in a snapshot's ``HSET`` has applied."""
    [state] = [op[7] for op in ops if op[:2] == (b"HSET", keys.SNAPSHOT)]
    assert isinstance(state, bytes)
    return Core.from_state(CONFIG, state).count


@pytest.mark.asyncio
@pytest.mark.parametrize("in_child", [True, False], ids=["forked", "in-process"])
async def test_each_snapshot_covers_a_committed_batch_end_and_holds_the_state_after_it(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    in_child: bool,
) -> None:
    """The engine begins a snapshot once the batch's transaction is sent, and writes it with a later
    transaction: it must cover the end of a batch already committed, with the state after exactly
    the commands up to there (recovery would otherwise apply commands twice or skip them)."""
    committed: list[bytes] = []
    carried: list[tuple[bytes, bytes, int]] = []  # (carrying batch's last, snapshot pos, its count)
    commit = EngineService._commit

    async def recording(
        self: EngineService, ops: list[Op], last: bytes, rid: bytes, *, verify: bool, snapshot: Any = None
    ) -> None:
        if snapshot is not None:
            assert snapshot in committed, "a snapshot covering a batch not yet committed"
            carried.append((last, snapshot, _covers(ops)))
        await commit(self, ops, last, rid, verify=verify, snapshot=snapshot)
        committed.append(last)

    monkeypatch.setattr(EngineService, "_commit", recording)
    lines = random_stream(seed=24, length=600)
    async with running_engine(
        redis_server.url, batch=50, snapshot_every=100, snapshot_in_child=in_child
    ) as service:
        ids = journal(redis_client, lines)  # all in the journal before the engine reads: full batches
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        live_state = (await idle_core(service)).to_state()
    if not in_child:
        assert len(carried) >= 4, carried  # written with the next batch's transaction
    for last, pos, count in carried:
        assert ids.index(pos) < ids.index(last), "written with the transaction of the batch it covers"
        assert count == ids.index(pos) + 1, f"the state at {pos!r} has applied {count} commands"
    written = redis_client.hget(keys.SNAPSHOT, "pos")
    assert isinstance(written, bytes)
    recovered = await recovered_from(redis_server.url)
    assert recovered.replayed == len(ids) - 1 - ids.index(written)
    assert recovered.core.to_state() == live_state


@pytest.mark.asyncio
@pytest.mark.parametrize("in_child", [True, False], ids=["forked", "in-process"])
async def test_a_snapshot_begun_on_a_batch_redis_then_lost_is_never_written(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    in_child: bool,
) -> None:
    """Redis restarts without the batch a snapshot was just begun on (``appendfsync everysec`` and a
    crash): the engine recovers from what Redis kept, and the snapshot (a child's, or one waiting
    for the next transaction) must go with the state it was taken of, never into Redis."""
    aof = redis_server.directory / "appendonlydir"
    kept = redis_server.directory.parent / "aof-copy"
    begin = EngineService._snapshot_begin
    rewound: list[bytes] = []

    def losing_the_batch(self: EngineService, pos: bytes) -> None:
        if not rewound and self._snapshot_wanted():
            rewound.append(pos)
            redis_server.kill()
            shutil.rmtree(aof)
            shutil.copytree(kept, aof)
            redis_server.restart()
        begin(self, pos)

    monkeypatch.setattr(EngineService, "_snapshot_begin", losing_the_batch)
    lines = random_stream(seed=25, length=90)
    settings = {"batch": 50, "snapshot_every": 40, "snapshot_seconds": 1000.0, "snapshot_in_child": in_child}
    with structlog.testing.capture_logs() as logs:
        async with running_engine(redis_server.url, **settings) as service:
            first = journal(redis_client, lines[:20])
            await asyncio.to_thread(wait_applied, redis_client, first[-1])
            shutil.copytree(aof, kept)
            lost = journal(redis_client, lines[20:50])  # 50 commands since start: a snapshot is due
            await wait_for(lambda: _live_again(logs))
            assert rewound == [lost[-1]]
            later = journal(redis_client, lines[50:60])  # 30 since the recovery: no snapshot due
            await asyncio.to_thread(wait_applied, redis_client, later[-1])
            live_state = (await idle_core(service)).to_state()
            await asyncio.sleep(0.3)  # a child's bytes, were they handed over, would be written by now
    assert redis_client.xrange(keys.COMMANDS, lost[0], lost[-1]) == []
    assert redis_client.hget(keys.SNAPSHOT, "pos") is None, "a snapshot of a state Redis lost"
    recovered = await recovered_from(redis_server.url)
    assert recovered.core.to_state() == live_state
    assert_redis_matches_replay(redis_client)


def _live_again(logs: Sequence[Mapping[str, Any]]) -> bool:
    """The engine found that Redis lost writes, recovered, and is live again."""
    events = [e["event"] for e in logs]
    lost = "redis lost committed writes; recovering again"
    return lost in events and "engine live" in events[events.index(lost) :]


@pytest.mark.asyncio
async def test_the_engine_forks_once_the_batch_transaction_is_on_the_socket(
    redis_server: RedisServer, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork takes milliseconds: made before the batch's transaction is written, it would delay
    that batch's publication instead of the next batch."""
    engines: list[EngineService] = []
    sent: list[bool] = []
    fork = ForkedSnapshot.fork.__func__  # type: ignore[attr-defined]

    def recording(cls: type[ForkedSnapshot], *args: Any) -> ForkedSnapshot:
        writer = engines[0]._writer
        sent.append(writer is not None and writer._link.waiting is not None)
        return fork(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(ForkedSnapshot, "fork", classmethod(recording))
    async with running_engine(redis_server.url, batch=50, snapshot_every=100) as service:
        engines.append(service)
        ids = journal(redis_client, random_stream(seed=26, length=400))
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
    assert sent and all(sent), sent
