"""A gateway's clock measured against a real Redis's ``TIME``."""

from __future__ import annotations

import time

import pytest
import structlog.testing

from tests.conftest import RedisServer
from tradewire.gateway.clock import ClockWatch
from tradewire.ops.metrics import CLOCK_SKEW


@pytest.mark.asyncio
async def test_clock_watch_measures_a_clock_ahead_warns_once_and_notes_its_return(
    redis_server: RedisServer,
) -> None:
    client = redis_server.async_client()
    offset = [5.0]
    watch = ClockWatch(client, clock=lambda: time.time() + offset[0])
    try:
        with structlog.testing.capture_logs() as logs:
            first = await watch.check()
            second = await watch.check()
            offset[0] = -0.2
            back = await watch.check()
    finally:
        await client.aclose()
    assert 4.9 < first < 5.1 and 4.9 < second < 5.1
    assert -0.3 < back < -0.1
    assert CLOCK_SKEW._value.get() == back
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and 4900 <= warnings[0]["skew_ms"] <= 5100
    assert [entry["event"] for entry in logs if entry["log_level"] == "info"] == [
        "this clock agrees with redis's again"
    ]


@pytest.mark.asyncio
async def test_clock_watch_of_a_clock_in_step_with_redis_stays_quiet(redis_server: RedisServer) -> None:
    client = redis_server.async_client()
    try:
        with structlog.testing.capture_logs() as logs:
            skew = await ClockWatch(client).check()
    finally:
        await client.aclose()
    assert abs(skew) < 0.5  # the same machine's clock, read twice around a round trip
    assert logs == []
