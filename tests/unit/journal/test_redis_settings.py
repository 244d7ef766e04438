"""What the engine says about its Redis's settings at start."""

from __future__ import annotations

from tradewire.journal.service import redis_setting_warnings


def test_a_durable_redis_that_never_evicts_gets_no_warning() -> None:
    assert (
        redis_setting_warnings(
            {"appendonly": "yes", "maxmemory": "1073741824", "maxmemory-policy": "noeviction"}
        )
        == []
    )


def test_an_eviction_policy_without_a_memory_limit_evicts_nothing() -> None:
    assert (
        redis_setting_warnings({"appendonly": "yes", "maxmemory": "0", "maxmemory-policy": "allkeys-lru"})
        == []
    )


def test_each_wrong_setting_is_named() -> None:
    warnings = redis_setting_warnings(
        {"appendonly": "no", "maxmemory": "100mb", "maxmemory-policy": "volatile-lru"}
    )
    assert len(warnings) == 2
    assert "appendonly no" in warnings[0] and "maxmemory-policy volatile-lru" in warnings[1]


def test_a_redis_that_rewrites_its_aof_every_few_seconds_under_load_is_named() -> None:
    durable = {"appendonly": "yes", "maxmemory": "0", "maxmemory-policy": "noeviction"}
    frequent = {"auto-aof-rewrite-percentage": "100", "auto-aof-rewrite-min-size": str(64 << 20)}
    [warning] = redis_setting_warnings(durable | frequent)
    assert "passed 64 MB" in warning and "auto-aof-rewrite-min-size 1gb" in warning
    rare = {"auto-aof-rewrite-percentage": "100", "auto-aof-rewrite-min-size": str(1 << 30)}
    never = {"auto-aof-rewrite-percentage": "0", "auto-aof-rewrite-min-size": str(64 << 20)}
    for settings in (rare, never):
        assert redis_setting_warnings(durable | settings) == []
