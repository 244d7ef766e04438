"""The embedded Redis runs with the settings the operations guide promises: durable, never evicting,
rewriting its AOF rarely enough not to pause the engine every few seconds, and leaving the files a
rewrite replaced to be shrunk slowly rather than deleted at once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tradewire.ops.aofhistory import History, may_sweep, read_history
from tradewire.redisconn import EmbeddedRedis

GIB = 1 << 30


@contextmanager
def embedded(data_dir: Path, **options: str) -> Iterator[tuple[EmbeddedRedis, redis.Redis]]:
    """The embedded Redis of ``data_dir`` started, and a client of it; both ended after."""
    server = EmbeddedRedis.for_data_dir(data_dir, **options).start()
    try:
        client = server.client()
        try:
            yield server, client
        finally:
            client.close()
    finally:
        server.stop()


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_the_embedded_redis_is_durable_never_evicts_and_rewrites_its_aof_past_a_gigabyte(
    tmp_path: Path, fsync: str
) -> None:
    with embedded(tmp_path / "data", appendfsync=fsync) as (_, client):
        settings = {
            name: client.config_get(name)[name]
            for name in (
                "appendonly",
                "appendfsync",
                "save",
                "maxmemory-policy",
                "no-appendfsync-on-rewrite",
                "auto-aof-rewrite-percentage",
                "auto-aof-rewrite-min-size",
                "aof-disable-auto-gc",
            )
        }
    assert settings == {
        "appendonly": "yes",
        "appendfsync": fsync,
        "save": "",
        "maxmemory-policy": "noeviction",
        "no-appendfsync-on-rewrite": "no",
        "auto-aof-rewrite-percentage": "100",
        "auto-aof-rewrite-min-size": str(GIB),
        "aof-disable-auto-gc": "yes",
    }


def history(aof_dir: Path) -> tuple[Path, ...]:
    found = read_history(aof_dir)
    assert found is not None
    return found.files


def rewrite(client: redis.Redis) -> None:
    client.bgrewriteaof()
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.01)


def settled(client: redis.Redis) -> None:
    """Once the AOF is on and no rewrite runs."""
    while True:
        persistence = client.info("persistence")
        if persistence["aof_enabled"] == 1 and not persistence["aof_rewrite_in_progress"]:
            return
        time.sleep(0.01)


def test_the_files_a_rewrite_replaced_are_swept_away_and_the_data_survives_a_restart(tmp_path: Path) -> None:
    with embedded(tmp_path / "data") as (server, client):
        aof_dir = server.directory / "appendonlydir"
        for round_ in range(3):
            client.set(f"key{round_}", b"v" * 100_000)
            rewrite(client)
        replaced = {path.name for path in history(aof_dir)} | {"appendonly.aof.1.base.rdb"}
        deadline = time.monotonic() + 30
        while history(aof_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_history(aof_dir) == History((), forgettable=True)
        assert not {path.name for path in aof_dir.iterdir()} & replaced
        assert client.config_get("aof-disable-auto-gc") == {"aof-disable-auto-gc": "yes"}
    with embedded(tmp_path / "data") as (_, client):
        assert [client.get(f"key{round_}") for round_ in range(3)] == [b"v" * 100_000] * 3


def test_history_left_from_a_rewrite_with_the_aof_off_is_cleared_before_a_restart(tmp_path: Path) -> None:
    # A rewrite while the AOF is off makes every increment history. Kept over a restart, Redis
    # would append to the old increment of the name it picks, and a later start replay its stale
    # commands (k would read "old").
    with embedded(tmp_path / "data") as (_, client):
        client.set("k", b"old")
        rewrite(client)
        client.set("k", b"new")
        client.config_set("appendonly", "no")
        rewrite(client)
    with embedded(tmp_path / "data") as (server, client):
        assert history(server.directory / "appendonlydir") == ()
        client.set("after", b"2")
    with embedded(tmp_path / "data") as (_, client):
        assert (client.get("k"), client.get("after")) == (b"new", b"2")


def test_the_history_is_touched_only_while_the_aof_is_on_and_no_rewrite_runs_or_failed(
    tmp_path: Path,
) -> None:
    with embedded(tmp_path / "data") as (server, client):
        assert may_sweep(client)
        client.config_set("appendonly", "no")
        assert not may_sweep(client)
        client.config_set("appendonly", "yes")
        settled(client)
        assert may_sweep(client)

        client.mset({f"key{n}": n for n in range(20)})
        client.config_set("rdb-key-save-delay", "1000000")  # the rewrite's child: a second a key
        client.bgrewriteaof()
        assert not may_sweep(client)  # running
        children = {
            int(pid)
            for task in Path(f"/proc/{server.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        }
        for child in children:
            os.kill(child, signal.SIGKILL)
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.01)
        assert client.info("persistence")["aof_last_bgrewrite_status"] == "err"
        assert not may_sweep(client)  # failed: the manifest may say history of files still live
        client.config_set("rdb-key-save-delay", "0")
        rewrite(client)
        assert may_sweep(client)
