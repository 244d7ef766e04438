"""The embedded Redis runs with the settings the operations guide promises: durable, never evicting,
rewriting its AOF rarely enough not to pause the engine every few seconds, and leaving the files a
rewrite replaced to be shrunk slowly rather than deleted at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tradewire.ops.aofhistory import history_files
from tradewire.redisconn import EmbeddedRedis

GIB = 1 << 30


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_the_embedded_redis_is_durable_never_evicts_and_rewrites_its_aof_past_a_gigabyte(
    tmp_path: Path, fsync: str
) -> None:
    server = EmbeddedRedis.for_data_dir(tmp_path / "data", appendfsync=fsync).start()
    try:
        client = server.client()
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
        client.close()
    finally:
        server.stop()
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


def test_the_files_a_rewrite_replaced_are_swept_away_and_the_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis.for_data_dir(tmp_path / "data").start()
    aof_dir = server.directory / "appendonlydir"
    try:
        client = server.client()
        for round_ in range(3):
            client.set(f"key{round_}", b"v" * 100_000)
            client.bgrewriteaof()
            while client.info("persistence")["aof_rewrite_in_progress"]:
                time.sleep(0.01)
        replaced = {path.name for path in history_files(aof_dir)} | {"appendonly.aof.1.base.rdb"}
        deadline = time.monotonic() + 30
        while history_files(aof_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert history_files(aof_dir) == []
        left = {path.name for path in aof_dir.iterdir()}
        assert not left & replaced
        assert client.config_get("aof-disable-auto-gc") == {"aof-disable-auto-gc": "yes"}
        client.close()
    finally:
        server.stop()

    server = EmbeddedRedis.for_data_dir(tmp_path / "data").start()
    try:
        client = server.client()
        assert [client.get(f"key{round_}") for round_ in range(3)] == [b"v" * 100_000] * 3
        client.close()
    finally:
        server.stop()
