"""``tradewire journal archive``: old journal entries leave Redis for segment files, and nothing is lost.

A real redis-server and the real engine service: the journal is fed, the engine applies it and writes
snapshots, the archive moves what the snapshot covers out of Redis, and then the audit (which replays
every command since the first) and a restarted engine must still agree with the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import redis.exceptions
from typer.testing import CliRunner

from tests.conftest import RedisServer
from tests.integration.audit.recorder import workload
from tests.integration.journal.support import CONFIG, journal, running_engine, settings
from tradewire import keys
from tradewire.audit.shell import archived_segments, audit_journal
from tradewire.cli import app
from tradewire.engine import ExchangeConfig
from tradewire.journal import archive as archive_module
from tradewire.journal.archive import ArchiveError, archive_journal, segments, write_segment
from tradewire.journal.recovery import RecoveryError, recover
from tradewire.journal.service import EngineService
from tradewire.journal.streams import id_order, iter_events
from tradewire.journal.wire import Connection
from tradewire.ops.metrics import JOURNAL_LAG
from tradewire.redisconn import connect_sync
from tradewire.replay import replay_lines

pytestmark = pytest.mark.asyncio


def _lines(seed: int, n: int) -> list[bytes]:
    return [c if isinstance(c, bytes) else orjson.dumps(c) for c in workload(seed=seed, n=n)]


def _archived(server: RedisServer, directory: Path) -> dict[str, Any]:
    """Run ``tradewire journal archive`` and return its JSON line; it must succeed."""
    status, out = _cli(server, "journal", "archive", "--keep-seconds", "0", str(directory))
    assert status == 0, out
    done: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    return done


def _cli(server: RedisServer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"REDIS_URL": server.url})
    return result.exit_code, result.stdout + result.stderr


async def _apply(server: RedisServer, client: redis.Redis, lines: list[bytes]) -> bytes:
    """Journal ``lines`` and run the engine (a snapshot every 50 commands) until it applied them
    and wrote a snapshot of them: stopped earlier, it may leave its snapshots unwritten (each is
    a forked child's; on a busy machine the stop came first and an archive then found nothing)."""
    last = journal(client, lines)[-1]
    before = client.hget(keys.SNAPSHOT, "pos")
    async with running_engine(server.url, snapshot_every=50) as engine:
        deadline = time.monotonic() + 60
        # the engine runs in this loop: wait without blocking it
        while engine.applied != last or client.hget(keys.SNAPSHOT, "pos") == before:
            assert time.monotonic() < deadline, f"engine stuck at {engine.applied!r}, or no snapshot written"
            await asyncio.sleep(0.02)
    return last


async def test_archive_moves_what_the_snapshot_covers_out_of_redis_and_the_audit_still_replays_it_all(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "segments"
    first_part = _lines(seed=3, n=300)
    await _apply(redis_server, redis_client, first_part)
    before = redis_client.xlen(keys.COMMANDS)
    pos = redis_client.hget(keys.SNAPSHOT, "pos")
    assert pos is not None

    done = _archived(redis_server, archive)
    kept = redis_client.xrange(keys.COMMANDS, count=1)[0][0]
    assert kept == pos and done["kept_from"] == pos.decode()  # the snapshot's own entry stays
    assert done["archived"] > 0 and redis_client.xlen(keys.COMMANDS) == before - done["archived"]
    assert next(iter_events(redis_client, pos))[0] == pos, "the outcomes from the kept entry on stay"
    first_events_entry = redis_client.xrange(keys.EVENTS, count=1)[0][0]
    assert id_order(first_events_entry) >= id_order(pos), "no events entry of archived commands only"
    assert redis_client.get(keys.ARCHIVED) == done["last"].encode()
    [name] = done["files"]
    segment = archive / name
    with gzip.open(segment, "rb") as data:
        lines = data.read().splitlines()
    assert len(lines) == done["archived"] + 1  # the header, then one line per entry
    assert orjson.loads(lines[1])["c"]["c"] == first_part[0].decode()

    # the audit needs the segments now, and says so; with them it replays every command
    status, out = _cli(redis_server, "audit", "verify")
    assert status == 2 and "--archive" in out, out
    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 0, out
    assert f"verified: {len(first_part)} journal entries" in out

    # a restarted engine recovers from the snapshot and the tail, and goes on as the record says
    second_part = _lines(seed=4, n=200)
    await _apply(redis_server, redis_client, second_part)
    monkeypatch.setattr(archive_module, "SEGMENT_ENTRIES", 64)  # several segments in one run
    second = _archived(redis_server, archive)
    assert id_order(second["first"].encode()) > id_order(done["last"].encode())
    assert len(second["files"]) == -(-second["archived"] // 64) > 1
    assert len(list(archive.glob("journal-*"))) == 1 + len(second["files"])
    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 0, out
    total = len(first_part) + len(second_part)
    assert f"verified: {total} journal entries" in out  # whichever side of Redis they are on

    # a segment that goes missing is named, not skipped over
    segment.unlink()
    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 2 and "a segment is missing" in out, out


async def test_archive_without_a_snapshot_changes_nothing(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    journal(redis_client, _lines(seed=5, n=20))
    status, out = _cli(redis_server, "journal", "archive", "--keep-seconds", "0", str(tmp_path / "segments"))
    assert status == 2 and "no snapshot" in out, out
    assert redis_client.xlen(keys.COMMANDS) == 32 and redis_client.get(keys.ARCHIVED) is None
    assert list((tmp_path / "segments").glob("journal-*")) == []


async def test_engine_refuses_to_recover_once_the_snapshot_covering_the_archive_is_gone(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    await _apply(redis_server, redis_client, _lines(seed=6, n=120))
    _archived(redis_server, tmp_path / "segments")
    conn = await Connection.open(redis_server.url)
    try:
        await recover(conn, CONFIG)  # with the snapshot: fine
        redis_client.delete(keys.SNAPSHOT)
        with pytest.raises(RecoveryError, match="archived out of Redis"):
            await recover(conn, CONFIG)
    finally:
        await conn.close()


async def test_a_run_that_died_before_its_transaction_leaves_a_segment_the_next_run_replaces(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    archive = tmp_path / "segments"
    await _apply(redis_server, redis_client, _lines(seed=7, n=150))
    _archived(redis_server, archive)
    mark = redis_client.get(keys.ARCHIVED)
    await _apply(redis_server, redis_client, _lines(seed=8, n=150))
    # what a run killed between writing its segment and its transaction leaves behind
    pos = redis_client.hget(keys.SNAPSHOT, "pos")
    assert mark is not None and pos is not None
    entries = redis_client.xrange(keys.COMMANDS, min=b"(" + mark, max=b"(" + pos)
    events = dict(iter_events(redis_client, b"(" + mark, pos))
    write_segment(archive, [(i, f, events[i]) for i, f in entries], mark)

    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 0, out  # the leftover's entries are read from Redis, once
    assert "verified: 324 journal entries" in out
    done = _archived(redis_server, archive)
    assert done["archived"] == len(entries) and len(list(archive.glob("journal-*"))) == 2
    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 0 and "verified: 324 journal entries" in out, out


class _DropsExecReply:
    """A TCP relay to a real redis-server that, once, passes a client's ``EXEC`` on and then cuts the
    connection before the reply comes back: what a network failure or a client timeout does to a
    transaction that Redis ran."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = True
        self.dropping = False
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_redis: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not to_redis and self.dropping:
                    continue
                if to_redis and self.armed and b"EXEC\r\n" in data:
                    self.armed, self.dropping = False, True
                    target.sendall(data)
                    time.sleep(0.5)  # Redis runs the transaction; its reply is never relayed
                    for end in (source, target):
                        end.shutdown(socket.SHUT_RDWR)
                    self.dropping = False
                    self.cut.set()
                    return
                target.sendall(data)

    def close(self) -> None:
        self.listener.close()


async def test_a_transaction_that_ran_but_whose_reply_was_lost_keeps_its_segments(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    archive = tmp_path / "segments"
    lines = _lines(seed=9, n=150)
    await _apply(redis_server, redis_client, lines)
    relay = _DropsExecReply(redis_server.port)
    client = connect_sync(f"redis://127.0.0.1:{relay.port}/0")
    try:
        with contextlib.suppress(ArchiveError, redis.exceptions.RedisError):
            archive_journal(client, archive, keep_seconds=0)
    finally:
        client.close()
        relay.close()
    assert relay.cut.is_set()
    mark = redis_client.get(keys.ARCHIVED)
    assert mark is not None  # Redis ran the transaction: the entries up to the mark left it
    assert [segment.last for segment in segments(archive)] == [mark]  # and they are in a segment
    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 0 and f"verified: {len(lines)} journal entries" in out, out


async def test_a_directory_of_segments_redis_never_held_is_refused_not_emptied(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    archive = tmp_path / "segments"
    await _apply(redis_server, redis_client, _lines(seed=10, n=120))
    _archived(redis_server, archive)
    before = sorted(path.name for path in archive.iterdir())
    # another exchange (or this one started over on an empty Redis) archives into the same directory
    redis_client.flushall()
    await _apply(redis_server, redis_client, _lines(seed=11, n=120))
    status, out = _cli(redis_server, "journal", "archive", "--keep-seconds", "0", str(archive))
    assert status == 2 and "not in Redis" in out, out
    assert sorted(path.name for path in archive.iterdir()) == before  # the only copy of those entries
    assert redis_client.get(keys.ARCHIVED) is None


async def test_the_engines_journal_lag_still_counts_the_unapplied_entries_after_an_archive(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    await _apply(redis_server, redis_client, _lines(seed=12, n=120))
    _archived(redis_server, tmp_path / "segments")
    service = EngineService(settings(redis_server.url))
    try:
        assert await service._take_lease()  # its writes are fenced by the lease, as run() takes it
        await service.start()
        journal(redis_client, _lines(seed=13, n=40)[:30])  # journalled, not yet applied
        service._housekeeping_at = 0.0
        await service._housekeeping()
    finally:
        await service._let_go()
        await service.close()
    assert JOURNAL_LAG._value.get() == 30  # the alerts' "engine behind", not 0 for ever


async def test_an_archive_that_runs_during_an_audit_is_reported_not_taken_for_a_divergence(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    archive = tmp_path / "segments"
    await _apply(redis_server, redis_client, _lines(seed=14, n=120))
    _archived(redis_server, archive)
    await _apply(redis_server, redis_client, _lines(seed=15, n=120))
    found = archived_segments(redis_client, archive)
    ran: list[dict[str, object]] = []

    def archive_meanwhile(*_: object) -> None:  # cron's run, while the audit reads the first segment
        if not ran:
            ran.append(archive_journal(redis_client, archive, keep_seconds=0))

    with pytest.raises(ArchiveError, match="an archive ran during the audit"):
        audit_journal(redis_client, CONFIG, on_step=archive_meanwhile, archive=found)
    assert ran and ran[0]["archived"]
    status, out = _cli(redis_server, "audit", "verify", "--archive", str(archive))
    assert status == 0, out  # run again, it verifies


async def test_the_audits_digest_and_pending_count_are_the_same_before_and_after_an_archive(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    lines = _lines(seed=16, n=120)
    lines[5:5] = [b'{"type":"deposit","user":"\xff\xfe","asset":"USDT","amount":"1"}', b"\xc3(not json"]
    await _apply(redis_server, redis_client, lines)
    journal(redis_client, _lines(seed=17, n=10)[:3])  # pending: no engine runs now

    def summary(*archive: str) -> list[str]:
        status, out = _cli(redis_server, "audit", "verify", *archive)
        assert status == 0, out
        return [line for line in out.splitlines() if line.startswith(("verified", "pending", "digest"))]

    before = summary()
    status, out = _cli(redis_server, "journal", "archive", "--keep-seconds", "0", str(tmp_path / "segments"))
    assert status == 0 and orjson.loads(out.strip().splitlines()[-1])["archived"] > 5, out
    assert summary("--archive", str(tmp_path / "segments")) == before
    assert "pending: 3 entries" in before[1]


async def test_a_second_run_on_the_same_directory_while_one_runs_is_refused(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    import fcntl

    await _apply(redis_server, redis_client, _lines(seed=9, n=80))
    archive = tmp_path / "segments"
    archive.mkdir()
    before = redis_client.xlen(keys.COMMANDS)
    with (archive / ".lock").open("a") as held:  # as a run still writing its segments holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        status, out = _cli(redis_server, "journal", "archive", "--keep-seconds", "0", str(archive))
    assert status == 2 and "another archive is running" in out, out
    assert redis_client.xlen(keys.COMMANDS) == before
    _archived(redis_server, archive)


async def test_entries_of_the_last_minutes_stay_in_redis_whatever_the_snapshot_covers(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    now_ms = int(redis_client.time()[0]) * 1000
    old = _lines(seed=12, n=60)
    then = now_ms - 1_200_000  # twenty minutes ago (entry ids are Redis's clock)
    pipe = redis_client.pipeline(transaction=False)
    for index, line in enumerate(old):
        pipe.xadd(keys.COMMANDS, {"c": line, "ts": str(then)}, id=f"{then}-{index}")
    pipe.execute()
    await _apply(redis_server, redis_client, _lines(seed=13, n=60))  # now; a snapshot covers it all
    segments_dir = str(tmp_path / "segments")
    status, out = _cli(redis_server, "journal", "archive", "--keep-seconds", "300", segments_dir)
    assert status == 0, out
    done = orjson.loads(out.strip().splitlines()[-1])
    assert done["archived"] == len(old)  # the old ones left; the recent ones stay for reply lookups
    assert id_order(redis_client.xrange(keys.COMMANDS, count=1)[0][0]) >= (now_ms - 300_000, 0)
    status, out = _cli(redis_server, "audit", "verify", "--archive", segments_dir)
    assert status == 0 and f"verified: {len(old) + 72} journal entries" in out, out


def _exported(server: RedisServer, *args: str) -> tuple[int, bytes, str]:
    """``tradewire journal export``: status, what it wrote to stdout, what it said on stderr."""
    result = CliRunner().invoke(app, ["journal", "export", *args], env={"REDIS_URL": server.url})
    return result.exit_code, result.stdout_bytes, result.stderr


async def test_journal_export_writes_what_replays_into_the_recorded_events_before_and_after_an_archive(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The journal is the truth: its export, fed to ``tradewire replay`` with the exported config,
    gives the events the engine recorded, whether the entries are still in Redis or in segments."""
    await _apply(redis_server, redis_client, _lines(seed=8, n=150))
    config_file = tmp_path / "config.json"
    status, before, said = _exported(redis_server, "--config-out", str(config_file))
    assert status == 0, said
    lines = before.splitlines()
    assert len(lines) == redis_client.xlen(keys.COMMANDS) and f"{len(lines)} commands" in said
    exchange = ExchangeConfig.from_dict(orjson.loads(config_file.read_bytes()))
    replayed = [orjson.loads(line) for line in replay_lines(exchange, lines)][:-1]
    recorded = [event for _, fields in iter_events(redis_client) for event in orjson.loads(fields[b"e"])]
    assert replayed == recorded and len(recorded) > len(lines)

    archive = tmp_path / "segments"
    assert _archived(redis_server, archive)["archived"] > 0
    status, _, said = _exported(redis_server)
    assert status == 2 and "--archive" in said  # the segments are part of the journal: never skipped
    status, after, said = _exported(redis_server, "--archive", str(archive))
    assert status == 0, said
    assert after == before


async def test_an_archive_that_cannot_reach_redis_says_so_and_creates_no_directory(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp_path / "segments"
    result = CliRunner().invoke(
        app, ["journal", "archive", str(directory)], env={"REDIS_URL": f"redis://127.0.0.1:{port}"}
    )
    assert result.exit_code == 2
    assert "cannot reach Redis at redis://127.0.0.1" in result.stderr
    assert not directory.exists()
