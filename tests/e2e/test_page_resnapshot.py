"""The page told to resnapshot: Redis lost its last writes, the exchange went back in time.

What ``appendfsync everysec`` can do when the machine fails (simulated as in
``tests/integration/journal/test_crash.py``: an earlier copy of the AOF put back): the engine
recovers from what Redis kept, and its depth update ids and trade ids take up again from there, lower
than what the page last saw. The gateway tells every client of those streams with a ``resnapshot``
message (a new epoch). A page that went on with the diffs it got would take the new ones for old ones
(``u`` at or below its book's) and show, as live, levels and trades that no longer exist.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Playwright

from tests.e2e.support import (
    Trader,
    canonical,
    canonical_levels,
    depth,
    launch_chromium,
    open_page,
    page_book,
)
from tests.fixtures.exchange import Exchange

SYMBOL = "BTCUSDT"


@pytest.fixture
def lossy_exchange(web_installed: Path, tmp_path: Path) -> Iterator[Exchange]:
    """Its own exchange: the test kills its Redis."""
    with Exchange(tmp_path / "exchange", gateway_env={"TRADEWIRE_LIMIT_WEIGHT_PER_MINUTE": "1000000"}) as ex:
        yield ex


def wait_until(condition: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)


def recent_trades(exchange: Exchange) -> list[list[Any]]:
    """The last trades, newest first (as the tape shows them; REST lists them oldest first)."""
    params = {"symbol": SYMBOL, "limit": 80}
    response = httpx.get(f"{exchange.http_url}/api/v3/trades", params=params, timeout=10)
    response.raise_for_status()
    return [[t["id"], canonical(t["price"]), canonical(t["qty"])] for t in reversed(response.json())]


def page_shows_the_exchange(page: Page, exchange: Exchange) -> bool:
    mine = page_book(page)
    truth = depth(exchange.http_url, SYMBOL)
    tape = page.evaluate("tradewire.feed.trades.map(t => [t.id, t.price, t.qty])")
    return bool(
        mine["live"]
        and mine["lastUpdateId"] == truth["lastUpdateId"]
        and mine["bids"] == canonical_levels(truth["bids"])
        and mine["asks"] == canonical_levels(truth["asks"])
        and [[i, canonical(p), canonical(q)] for i, p, q in tape] == recent_trades(exchange)
    )


@pytest.mark.timeout(180)
def test_redis_that_lost_its_last_writes_makes_the_page_resnapshot_its_book_and_tape(
    playwright: Playwright, lossy_exchange: Exchange, tmp_path: Path
) -> None:
    exchange = lossy_exchange
    maker = exchange.create_user("rewind-maker")
    taker = exchange.create_user("rewind-taker")
    for user in (maker, taker):
        exchange.deposit(user.name, "BTC", "100")
        exchange.deposit(user.name, "USDT", "10000000")
    m = Trader(exchange.http_url, maker.api_key, maker.api_secret)
    t = Trader(exchange.http_url, taker.api_key, taker.api_secret)
    for i in range(5):
        m.order(SYMBOL, "BUY", "0.5", f"{29990 + i}")
        m.order(SYMBOL, "SELL", "0.5", f"{30010 - i}")
    t.order(SYMBOL, "BUY", "0.1", "30006")

    with launch_chromium(playwright, tmp_path / "profile") as context:
        page = open_page(context, f"{exchange.http_url}/")
        wait_until(lambda: page_shows_the_exchange(page, exchange), 20, "the page to show the exchange")

        # Redis's AOF as it is now; what follows is lost with it
        aof = exchange.redis.directory / "appendonlydir"
        if not aof.exists():
            aof = exchange.redis.directory / "appendonly.aof"
        kept = tmp_path / "aof-copy"
        time.sleep(1.5)  # everysec: the AOF on disk holds everything up to here
        (shutil.copytree if aof.is_dir() else shutil.copyfile)(aof, kept)
        for i in range(8):
            m.order(SYMBOL, "BUY", "0.25", f"{29900 + i}")
        t.order(SYMBOL, "BUY", "0.2", "30006")
        wait_until(lambda: page_shows_the_exchange(page, exchange), 20, "the page to show the lost orders")
        lost = page_book(page)["lastUpdateId"]

        exchange.redis.kill()
        if aof.is_dir():
            shutil.rmtree(aof)
        (shutil.copytree if kept.is_dir() else shutil.copyfile)(kept, aof)
        exchange.redis.restart()
        exchange.wait_ready()

        # new orders after the rewind: update and trade ids the page has seen already, other contents
        def trade_again() -> bool:
            try:
                m.order(SYMBOL, "SELL", "0.05", "30020")
                t.order(SYMBOL, "BUY", "0.05", "30020")
            except Exception:  # the engine may still be reconnecting to Redis
                return False
            return True

        wait_until(trade_again, 30, "the exchange to take orders again")
        assert depth(exchange.http_url, SYMBOL)["lastUpdateId"] <= lost, "the ids went back"
        wait_until(
            lambda: page_shows_the_exchange(page, exchange),
            20,
            "the page's book and tape to equal the exchange's after the rewind",
        )
        assert page.evaluate("tradewire.feed.lastResync").startswith("resnapshot")
