"""The embedded Redis runs with the settings the operations guide promises: durable, never evicting,
and rewriting its AOF rarely enough not to pause the engine every few seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    }
