"""This gateway's clock against Redis's.

A gateway stamps every command it journals with its own clock (the exchange time of the command),
and checks clients' ``timestamp`` against it (``recvWindow``). Redis puts its own clock in every
journal entry's id, and the engine holds exchange time within a second of that
(``tradewire.journal.entries.exchange_time``): a gateway whose clock is wrong by more does no lasting
harm to candles, but its stamps are overruled and its clients' signed requests fail with ``-1021``.
So it says so: the skew is a gauge, measured from one ``TIME`` round trip every few seconds, and a
warning in the log when it passes the tolerance (and a note when it is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import structlog

from tradewire.journal.entries import CLOCK_TOLERANCE_MS
from tradewire.ops.metrics import CLOCK_SKEW

log = structlog.get_logger("tradewire.gateway")


class ClockWatch:
    """Measures ``clock() - Redis TIME`` (seconds) and reports when it passes the tolerance."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self.skew: float | None = None
        """The last measurement: positive when this clock is ahead of Redis's."""
        self.off = False

    async def check(self) -> float:
        """One measurement (the round trip's midpoint against Redis's reading)."""
        before = self.clock()
        seconds, micros = await self.client.time()
        after = self.clock()
        skew = (before + after) / 2 - (int(seconds) + int(micros) / 1e6)
        self.skew = skew
        CLOCK_SKEW.set(skew)
        off = abs(skew) * 1000 > CLOCK_TOLERANCE_MS
        if off and not self.off:
            log.warning(
                "this clock disagrees with redis's: fix its time synchronisation",
                skew_ms=round(skew * 1000),
                tolerance_ms=CLOCK_TOLERANCE_MS,
            )
        elif self.off and not off:
            log.info("this clock agrees with redis's again", skew_ms=round(skew * 1000))
        self.off = off
        return skew

    async def run(self, every: float) -> None:
        """Check every ``every`` seconds until cancelled; a failed check waits for the next one."""
        while True:
            with contextlib.suppress(Exception):
                await self.check()
            await asyncio.sleep(every)


__all__ = ["ClockWatch"]
