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
