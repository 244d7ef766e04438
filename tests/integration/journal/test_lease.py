"""One engine per Redis: the engine lease and its fence (``tradewire/journal/lease.py``).

Real ``tradewire engine`` processes on one redis-server: a second engine stands by while the first
holds the lease and takes over once it is killed; an engine paused past its lease (SIGSTOP) while
another took over commits nothing when it resumes and stands by; a clean stop releases the lease.
Every test ends with the record equal to ``tradewire replay`` of the journal, every command's reply
published exactly once (an engine that applied a command twice would publish it twice), balances
conserved and ``tradewire audit verify`` passing.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import RedisServer, free_port
from tests.integration.journal.support import (
    assert_balances_conserved,
    assert_redis_matches_replay,
    engine_process,
    journal,
    load_stream,
    running_engine,
    wait_applied,
    wait_live,
)
from tradewire import keys
from tradewire.cli import app
from tradewire.journal.entries import parse_replies

SOURCE = "lease-test"


class Replies(threading.Thread):
    """Counts the replies published to ``tw:reply:lease-test``, by request id."""

    def __init__(self, server: RedisServer) -> None:
        super().__init__(daemon=True)
        self.client = server.client()
        self.pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(keys.reply_channel(SOURCE))
        assert self.pubsub.get_message(timeout=5)["type"] == "subscribe"
        self.counts: Counter[str] = Counter()
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                for reply in parse_replies(message["data"]):
                    self.counts[reply.rid] += 1

    def close(self) -> Counter[str]:
        time.sleep(0.3)  # the last batch's message
        self.done.set()
        self.join(5)
        self.pubsub.close()  # type: ignore[no-untyped-call]
        self.client.close()
        return self.counts


def _engine(server: RedisServer, directory: Path, lease: float, port: int) -> subprocess.Popen[bytes]:
    directory.mkdir(exist_ok=True)
    return engine_process(
        server.url,
        directory,
        "--lease-seconds",
        str(lease),
        "--metrics-port",
        str(port),
        "--snapshot-every",
        "700",
    )


def _ready(port: int) -> tuple[int, str]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0)
    reason: str = response.json()["reason"]
    return response.status_code, reason


def _wait_ready(port: int, status: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            seen = _ready(port)
        except httpx.HTTPError as exc:
            seen = exc
        if isinstance(seen, tuple) and seen[0] == status:
            return seen[1]
        time.sleep(0.05)
    raise AssertionError(f"/readyz on {port} did not answer {status} in {timeout} s (last: {seen})")


def _wait_log(directory: Path, text: str, timeout: float = 30.0) -> None:
    path = directory / "engine.log"
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} not in {path}:\n" + path.read_text()[-3000:]
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


def _kill(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.wait(10)


def _heartbeat_pid(client: redis.Redis) -> int | None:
    beat = client.get(keys.ENGINE_HEARTBEAT)
    return None if beat is None else int(orjson.loads(beat)["pid"])


def _record(client: redis.Redis) -> dict[str, Any]:
    """What an engine commits, as it stands: the marker, the events, the snapshot, the heartbeat
    and every market-data channel's offset."""
    offsets = {key: client.hget(key, "offset") for key in client.scan_iter(match="md:*:meta", count=1000)}
    return {
        "applied": client.get(keys.APPLIED),
        "events": client.xlen(keys.EVENTS),
        "last_event": client.xrevrange(keys.EVENTS, count=1),
        "snapshot": client.hget(keys.SNAPSHOT, "pos"),
        "heartbeat": _heartbeat_pid(client),
        "offsets": offsets,
    }


def _assert_exactly_once(
    client: redis.Redis, server: RedisServer, counts: Counter[str], commands: int
) -> None:
    state = assert_redis_matches_replay(client)
    assert_balances_conserved(client, state)
    assert len(counts) == commands, f"{commands - len(counts)} commands never got a reply"
    assert set(counts.values()) == {1}, [rid for rid, count in counts.items() if count > 1][:5]
    result = CliRunner().invoke(app, ["audit", "verify"], env={"REDIS_URL": server.url})
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"verified: {commands} journal entries" in result.stdout


def _feed(client: redis.Redis, lines: list[bytes], chunk: int = 50, pause: float = 0.01) -> list[bytes]:
    ids: list[bytes] = []
    for start in range(0, len(lines), chunk):
        ids += journal(client, lines[start : start + chunk], src=SOURCE)
        time.sleep(pause)
    return ids


@pytest.mark.timeout(120)
def test_two_engines_on_one_redis_one_applies_and_the_other_takes_over_when_it_is_killed(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    lines = load_stream(seed=3, length=3_000)
    replies = Replies(redis_server)
    port_a, port_b = free_port(), free_port()
    first = _engine(redis_server, tmp_path / "a", 2.0, port_a)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_live(redis_client, first)
        second = _engine(redis_server, tmp_path / "b", 2.0, port_b)
        _wait_log(tmp_path / "b", "another engine holds the lease; standing by")
        reason = _wait_ready(port_b, 503)
        assert (
            reason.startswith("standby: another engine holds the lease: pid ")
            and f"pid {first.pid} " in reason
        )
        assert _wait_ready(port_a, 200).startswith("applied ")
        ids = _feed(redis_client, lines[:1_500])
        wait_applied(redis_client, ids[-1])
        assert _heartbeat_pid(redis_client) == first.pid
        assert _ready(port_b)[0] == 503
        assert "tradewire_engine_lease_held 0.0" in httpx.get(f"http://127.0.0.1:{port_b}/metrics").text
        assert "tradewire_engine_lease_held 1.0" in httpx.get(f"http://127.0.0.1:{port_a}/metrics").text

        feeder = threading.Thread(target=_feed, args=(redis_client, lines[1_500:]), daemon=True)
        feeder.start()
        time.sleep(0.3)
        first.kill()  # in the middle of live batches
        killed = time.monotonic()
        first.wait(10)
        wait_live(redis_client, second, timeout=30)
        took = time.monotonic() - killed
        assert took < 2.0 + 2.0, f"the standby took {took:.1f} s to take over a 2 s lease"
        feeder.join(60)
        wait_applied(redis_client, _last_id(redis_client))
        assert _wait_ready(port_b, 200).startswith("applied ")
        _stop(second)
    finally:
        _kill(first, *([second] if second is not None else []))
    _assert_exactly_once(redis_client, redis_server, replies.close(), len(lines))


def _last_id(client: redis.Redis) -> bytes:
    last = client.xrevrange(keys.COMMANDS, count=1)
    return bytes(last[0][0])


@pytest.mark.timeout(120)
def test_an_engine_paused_past_its_lease_commits_nothing_when_resumed_and_stands_by(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """SIGSTOP stands for a long GC pause, a VM paused, a process stopped by hand: the supervisor
    (here: the standby) replaced it meanwhile. Stopped while its ``XREAD`` was waiting, the engine
    gets the commands appended right after as a batch it applies when it resumes: it must commit
    none of it (it would write stale balances and a marker that goes backwards, and publish replies
    a second time)."""
    lines = load_stream(seed=4, length=3_000)
    replies = Replies(redis_server)
    port_a, port_b = free_port(), free_port()
    first = _engine(redis_server, tmp_path / "a", 1.0, port_a)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_live(redis_client, first)
        second = _engine(redis_server, tmp_path / "b", 1.0, port_b)
        _wait_log(tmp_path / "b", "another engine holds the lease; standing by")
        ids = _feed(redis_client, lines[:1_000])
        wait_applied(redis_client, ids[-1])
        time.sleep(0.2)  # idle: its next XREAD is waiting
        first.send_signal(signal.SIGSTOP)
        ids = journal(redis_client, lines[1_000:1_100], src=SOURCE)  # the stopped engine's last batch
        wait_live(redis_client, second, timeout=20)
        wait_applied(redis_client, ids[-1])
        ids = _feed(redis_client, lines[1_100:2_000])
        wait_applied(redis_client, ids[-1])
        time.sleep(1.5)  # the standby's publications held back, its heartbeat: all done
        before = _record(redis_client)
        assert before["heartbeat"] == second.pid

        first.send_signal(signal.SIGCONT)
        _wait_log(tmp_path / "a", "another engine took the lease over")
        time.sleep(1.0)
        assert first.poll() is None
        after = _record(redis_client)
        assert after == before
        assert _wait_ready(port_a, 503).startswith("standby: ")
        assert "tradewire_engine_lease_lost_total 1.0" in httpx.get(f"http://127.0.0.1:{port_a}/metrics").text

        ids = _feed(redis_client, lines[2_000:2_500])
        wait_applied(redis_client, ids[-1])
        assert _heartbeat_pid(redis_client) == second.pid
        # the one that stood down takes over again once the other stops, from what Redis holds
        _stop(second)
        wait_live(redis_client, first, timeout=20)
        ids = _feed(redis_client, lines[2_500:])
        wait_applied(redis_client, ids[-1])
        _stop(first)
    finally:
        _kill(first, *([second] if second is not None else []))
    _assert_exactly_once(redis_client, redis_server, replies.close(), len(lines))


@pytest.mark.timeout(60)
def test_a_clean_stop_releases_the_lease_so_the_next_engine_starts_at_once(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    replies = Replies(redis_server)
    lines = load_stream(seed=5, length=400)
    first = _engine(redis_server, tmp_path / "a", 30.0, free_port())
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_live(redis_client, first)
        held = orjson.loads(redis_client.get(keys.ENGINE_LEASE) or b"{}")
        assert held["pid"] == first.pid and held["term"] == int(redis_client.get(keys.ENGINE_TERM) or 0)
        assert 0 < redis_client.pttl(keys.ENGINE_LEASE) <= 30_000
        ids = journal(redis_client, lines[:200], src=SOURCE)
        wait_applied(redis_client, ids[-1])
        _stop(first)
        assert redis_client.get(keys.ENGINE_LEASE) is None
        started = time.monotonic()
        second = _engine(redis_server, tmp_path / "b", 30.0, free_port())
        wait_live(redis_client, second)
        assert time.monotonic() - started < 15, "the next engine waited for a released lease"
        ids = journal(redis_client, lines[200:], src=SOURCE)
        wait_applied(redis_client, ids[-1])
        _stop(second)
    finally:
        _kill(first, *([second] if second is not None else []))
    _assert_exactly_once(redis_client, redis_server, replies.close(), len(lines))


@pytest.mark.asyncio
async def test_a_batch_read_before_another_engine_took_over_is_not_committed(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The fence alone, before the lease's renewal can notice anything (30 s): another engine takes
    the lease over (as its acquisition does: the term moves on), and the next batch is refused by
    Redis as a whole. The engine drops its state, stands by, and once the lease is free again
    recovers from Redis and applies the batch exactly once."""
    deposit = {"type": "deposit", "user": "ann", "asset": "USDT", "amount": "5"}
    async with running_engine(redis_server.url, lease_seconds=30.0) as service:
        ids = journal(redis_client, [orjson.dumps(deposit)] * 3)
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        before = redis_client.xlen(keys.EVENTS), redis_client.get(keys.APPLIED)
        other = orjson.dumps({"host": "elsewhere", "pid": 1, "since": int(time.time() * 1000)})
        term = redis_client.incr(keys.ENGINE_TERM)
        redis_client.set(keys.ENGINE_LEASE, b'{"term":%d,' % term + other[1:], px=30_000)
        ids = journal(redis_client, [orjson.dumps(deposit)])
        deadline = time.monotonic() + 10
        while service.state != "standby":
            assert time.monotonic() < deadline, service.state
            await asyncio.sleep(0.02)
        assert service.core is None
        assert (redis_client.xlen(keys.EVENTS), redis_client.get(keys.APPLIED)) == before
        await asyncio.sleep(0.5)
        ready, reason = service.ready()
        assert not ready and "pid 1 on elsewhere" in reason
        redis_client.delete(keys.ENGINE_LEASE)  # the other engine stopped cleanly
        await asyncio.to_thread(wait_applied, redis_client, ids[-1])
        assert service.state == "live"
    assert int(redis_client.get(keys.ENGINE_TERM) or 0) == term + 1
    state = assert_redis_matches_replay(redis_client)
    assert state["balances"]["ann"]["USDT"]["available"] == "20"
