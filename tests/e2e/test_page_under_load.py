"""The page under a flood: about 1,000 market updates a second must not block its main thread.

A behaviour check, not a benchmark: chromium reports every main-thread task longer than 50 ms
through the Long Tasks API; the page applies each message to state as it arrives and paints at
most once per animation frame, so no message burst should ever produce one. The test also asks
that the page's book still equals the exchange's afterwards: smooth and correct at once.

The load is journalled directly (``JournalFlow``), as the demo bots trade: the gateway then fans the
market data out to the page like to any client. The exchange's processes run at a lower CPU
priority than the browser, since in the world they do not share a machine with it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Playwright

from tests.e2e.support import (
    JournalFlow,
    Trader,
    canonical_levels,
    depth,
    launch_chromium,
    lower_priority,
    open_page,
    page_book,
)
from tests.fixtures.exchange import Exchange

SYMBOL = "BTCUSDT"
TARGET_UPDATES_PER_SECOND = 1000
MIN_RATE = TARGET_UPDATES_PER_SECOND * 0.4
"""A window counts when the page took at least this many updates a second (on a busy two-core machine
the exchange itself cannot always deliver the full thousand)."""
WINDOW_SECONDS = 4.0
WINDOWS = 5
"""Up to five windows of load: the page's own work would block in every one of them, while a
machine shared with other work (CI runners, benchmarks) preempts the browser at random; one window
without a long task shows the page keeps up. Every window must still carry the load."""

OBSERVE_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push([entry.startTime, entry.duration]);
}).observe({type: "longtask", buffered: true});
"""


@pytest.fixture
def load_exchange(web_installed: Path, tmp_path: Path) -> Iterator[Exchange]:
    """One gateway only: a second one would take its share of the CPU the browser needs."""
    with Exchange(tmp_path / "exchange", gateway_env={"TRADEWIRE_LIMIT_WEIGHT_PER_MINUTE": "1000000"}) as ex:
        yield ex


def test_page_at_about_1000_updates_per_second_has_no_long_tasks(
    playwright: Playwright, load_exchange: Exchange, tmp_path: Path
) -> None:
    page_exchange = load_exchange
    maker = page_exchange.create_user("load-maker")
    taker = page_exchange.create_user("load-taker")
    for user in (maker, taker):
        page_exchange.deposit(user.name, "BTC", "100000")
        page_exchange.deposit(user.name, "USDT", "10000000000")
    seed = Trader(page_exchange.http_url, maker.api_key, maker.api_secret)
    for i in range(30):  # a book deep enough for every ladder row and the depth chart
        seed.order(SYMBOL, "BUY", "0.5", f"{29950 + i}")
        seed.order(SYMBOL, "SELL", "0.5", f"{30050 - i}")
    Trader(page_exchange.http_url, taker.api_key, taker.api_secret).order(SYMBOL, "BUY", "0.1", "30021")

    for process in (page_exchange.engine, *page_exchange.gateways, page_exchange.redis.process):
        assert process is not None
        lower_priority(process.pid)

    with launch_chromium(playwright, tmp_path / "profile") as context:
        context.add_init_script(OBSERVE_LONG_TASKS)
        page = open_page(context, f"{page_exchange.http_url}/")
        page.wait_for_timeout(1000)  # page load and first paints are not what this test is about
        # per cycle: ten trades, a depth diff or two, a candle and a ticker: about 14 updates
        flow = JournalFlow(
            page_exchange.redis_url,
            maker.name,
            taker.name,
            "BTC-USDT",
            Decimal("30000"),
            cycles_per_second=TARGET_UPDATES_PER_SECOND / 14,
            sweep=10,
        ).start()
        windows: list[tuple[float, list[tuple[float, float]]]] = []
        try:
            for _ in range(WINDOWS):
                start = page.evaluate("[performance.now(), tradewire.feed.messages]")
                time.sleep(WINDOW_SECONDS)
                end = page.evaluate("[performance.now(), tradewire.feed.messages]")
                rate = (end[1] - start[1]) / ((end[0] - start[0]) / 1000)
                long_tasks = [
                    (at, duration)
                    for at, duration in page.evaluate("window.__longTasks")
                    if start[0] <= at < end[0] and duration > 50
                ]
                windows.append((rate, long_tasks))
                if not long_tasks and rate >= MIN_RATE:
                    break
        finally:
            flow.stop()
        paints = page.evaluate("JSON.stringify(tradewire.stats)")
        print(f"windows (page updates/s, long tasks): {windows}; commands: {flow.commands}; paints: {paints}")
        assert flow.rejected == 0
        loaded = [long_tasks for rate, long_tasks in windows if rate >= MIN_RATE]
        assert loaded, f"the load never reached the page: {windows}"
        assert any(not long_tasks for long_tasks in loaded), windows

        deadline = time.monotonic() + 20
        while True:
            mine, truth = page_book(page), depth(page_exchange.http_url, SYMBOL)
            if mine["lastUpdateId"] == truth["lastUpdateId"]:
                break
            assert time.monotonic() < deadline, "the page's book never caught up with the exchange's"
            time.sleep(0.2)
        assert mine["live"]
        assert mine["bids"] == canonical_levels(truth["bids"])
        assert mine["asks"] == canonical_levels(truth["asks"])
        assert page.evaluate("tradewire.feed.resyncs") == 0
