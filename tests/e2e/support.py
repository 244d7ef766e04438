"""What the end-to-end tests of the trading page share: a signed API client, an order flow, a browser.

``Trader`` talks to a gateway the way any Binance client does (HMAC-SHA256 of the query string,
``X-MBX-APIKEY``), so a test can act as a second user beside the one clicking in the page.
``OrderFlow`` keeps a market busy from a background thread (resting orders taken by crossing ones),
at a chosen rate, through any gateway. ``launch_chromium`` starts Debian's chromium, never a
downloaded browser, with a fresh empty profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import BrowserContext, Page, Playwright

from tradewire.journal.submit import Submitter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ApiFailure(AssertionError):
    """The gateway answered with an error the test did not expect."""


def _signed_query(secret: str, params: dict[str, Any]) -> str:
    query = urlencode({**params, "timestamp": int(time.time() * 1000), "recvWindow": 10_000})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


class Trader:
    """One user's signed REST client."""

    def __init__(self, base_url: str, api_key: str, api_secret: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.http = httpx.Client(base_url=base_url, timeout=10.0, headers={"X-MBX-APIKEY": api_key})

    def close(self) -> None:
        self.http.close()

    def signed(self, method: str, path: str, **params: Any) -> Any:
        query = _signed_query(self.api_secret, params)
        response = self.http.request(method, f"{path}?{query}")
        if response.status_code != 200:
            raise ApiFailure(f"{method} {path} {params}: {response.status_code} {response.text}")
        return response.json()

    def order(self, symbol: str, side: str, quantity: str, price: str | None = None, **extra: str) -> Any:
        params: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": quantity, **extra}
        if price is None:
            params["type"] = "MARKET"
        else:
            params.update(type="LIMIT", price=price, timeInForce=extra.get("timeInForce", "GTC"))
        return self.signed("POST", "/api/v3/order", **params, newOrderRespType="FULL")

    def cancel_all(self, symbol: str) -> None:
        for order in self.signed("GET", "/api/v3/openOrders", symbol=symbol):
            self.signed("DELETE", "/api/v3/order", symbol=symbol, orderId=order["orderId"])

    def open_orders(self, symbol: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.signed("GET", "/api/v3/openOrders", symbol=symbol)
        return result

    def balances(self) -> dict[str, tuple[str, str]]:
        account = self.signed("GET", "/api/v3/account")
        return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


def depth(base_url: str, symbol: str, limit: int = 5000) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/api/v3/depth", params={"symbol": symbol, "limit": limit}, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def canonical(text: str) -> str:
    """Canonical decimal text (what the page keeps): no trailing zeros, no trailing point."""
    value = Decimal(text).normalize()
    return format(value, "f")


def canonical_levels(levels: list[list[str]]) -> list[list[str]]:
    return [[canonical(p), canonical(q)] for p, q in levels]


class OrderFlow:
    """A busy market from a background thread: a maker rests orders, a taker takes them.

    Each cycle the maker posts a limit order a few ticks off ``mid`` on a random side and, now and
    then, the taker sends an IOC that crosses it: depth diffs, trades, candles and ticker updates
    for every subscriber of the market. ``rate`` is orders per second over all in-flight requests.
    """

    def __init__(
        self,
        base_url: str,
        maker: tuple[str, str],
        taker: tuple[str, str],
        symbol: str,
        mid: Decimal,
        *,
        rate: float = 200.0,
        concurrency: int = 8,
        cross_every: int = 2,
    ) -> None:
        self.base_url = base_url
        self.maker = maker
        self.taker = taker
        self.symbol = symbol
        self.mid = mid
        self.rate = rate
        self.concurrency = concurrency
        self.cross_every = cross_every
        self.sent = 0
        self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> OrderFlow:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    async def _post(self, client: httpx.AsyncClient, who: tuple[str, str], params: dict[str, Any]) -> None:
        key, secret = who
        query = _signed_query(secret, params)
        try:
            response = await client.post(f"/api/v3/order?{query}", headers={"X-MBX-APIKEY": key})
            if response.status_code != 200:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(response.text)
        except httpx.HTTPError as exc:  # the gateway may be down on purpose
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(repr(exc))
        self.sent += 1

    async def _worker(self, client: httpx.AsyncClient, index: int) -> None:
        rng = random.Random(index)
        interval = self.concurrency / self.rate
        step = Decimal("0.01")
        cycle = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            cycle += 1
            side = rng.choice(("BUY", "SELL"))
            ticks = rng.randint(1, 40)
            price = self.mid - ticks * step if side == "BUY" else self.mid + ticks * step
            qty = f"0.{rng.randint(1, 999):03d}"
            if cycle % self.cross_every == 0:
                # the taker crosses the spread: IOC at a price through the maker's best levels
                take_side = "SELL" if side == "BUY" else "BUY"
                through = self.mid - 50 * step if take_side == "SELL" else self.mid + 50 * step
                params = {"symbol": self.symbol, "side": take_side, "type": "LIMIT", "timeInForce": "IOC",
                          "quantity": qty, "price": str(through), "newOrderRespType": "ACK"}  # fmt: skip
                await self._post(client, self.taker, params)
            else:
                params = {"symbol": self.symbol, "side": side, "type": "LIMIT", "timeInForce": "GTC",
                          "quantity": qty, "price": str(price), "newOrderRespType": "ACK"}  # fmt: skip
                await self._post(client, self.maker, params)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = time.monotonic()

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5.0, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, i) for i in range(self.concurrency)))


class JournalFlow:
    """A flood of market activity written straight into the journal, as the demo bots trade.

    The exchange's REST entry point is not what the page's load test is about (and one client's
    signed requests are weight-limited), so this flow journals commands the way the demo bots and
    ``tradewire admin`` do, and the gateway fans the resulting market data out to the page. Each
    cycle the maker quotes ``sweep`` one-lot levels just off ``mid`` on one side and the taker's market
    order takes them all: ``sweep`` trades, a few depth diffs, a candle and a ticker update per
    cycle, sides alternating so the price stays put.
    """

    def __init__(
        self,
        redis_url: str,
        maker: str,
        taker: str,
        market: str,
        mid: Decimal,
        *,
        cycles_per_second: float = 80.0,
        sweep: int = 10,
    ) -> None:
        self.redis_url = redis_url
        self.maker = maker
        self.taker = taker
        self.market = market
        self.mid = mid
        self.cycles_per_second = cycles_per_second
        self.sweep = sweep
        self.cycles = 0
        self.commands = 0
        self.rejected = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> JournalFlow:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _cycle(self, buy: bool) -> list[dict[str, Any]]:
        step = Decimal("0.01")
        lot = "0.001"
        quotes: list[dict[str, Any]] = [
            {
                "type": "new_order",
                "user": self.maker,
                "market": self.market,
                "side": "sell" if buy else "buy",
                "kind": "limit",
                "price": str(self.mid + k * step if buy else self.mid - k * step),
                "qty": lot,
            }
            for k in range(1, self.sweep + 1)
        ]
        take = {
            "type": "new_order",
            "user": self.taker,
            "market": self.market,
            "side": "buy" if buy else "sell",
            "kind": "market",
            "qty": str(Decimal(lot) * self.sweep),
        }
        return [*quotes, take]

    async def _run(self) -> None:
        lower_priority(threading.get_native_id())
        submitter = Submitter(self.redis_url, f"e2e-flow-{random.getrandbits(40):010x}")
        await submitter.start()
        try:
            period = 1 / self.cycles_per_second
            next_at = time.monotonic()
            while not self._stop.is_set():
                futures = []
                for command in self._cycle(buy=self.cycles % 2 == 0):
                    _, future = await submitter.submit_nowait(command, who="bot")
                    futures.append(future)
                self.commands += len(futures)
                self.cycles += 1
                for reply in await asyncio.gather(*futures):
                    if any(event.get("type") == "rejected" for event in reply.events):
                        self.rejected += 1
                next_at += period
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    next_at = time.monotonic()
        finally:
            await submitter.close()


def lower_priority(pid: int, niceness: int = 10) -> None:
    """Lower a process's (every thread's) or one thread's CPU priority, as far as the OS allows.

    A load test runs the exchange, its load and the browser on one machine, where in the world they
    run on different ones; niced, the exchange's work stops counting as the page's slowness.
    """
    tasks = Path(f"/proc/{pid}/task")
    ids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [pid]
    for tid in ids:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, niceness)


@contextmanager
def launch_chromium(
    playwright: Playwright, profile: Path, width: int = 1440, height: int = 900
) -> Iterator[BrowserContext]:
    """Debian's chromium with a new empty profile directory; closed on exit."""
    profile.mkdir(parents=True, exist_ok=True)
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": width, "height": height},
    )
    try:
        yield context
    finally:
        context.close()


def open_page(context: BrowserContext, url: str, *, timeout_ms: float = 20_000) -> Page:
    """The trading page at ``url``, once its book is live (snapshot taken, diffs applying)."""
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(url)
    page.wait_for_function("window.tradewire && tradewire.feed.sync.live", timeout=timeout_ms)
    return page


def sign_in(page: Page, api_key: str, api_secret: str) -> None:
    """Through the page's own dialog, as a person would; waits for the user data stream."""
    page.click("#signin-btn")
    page.fill("#api-key", api_key)
    page.fill("#api-secret", api_secret)
    page.click("#signin-dialog [type=submit]")
    page.wait_for_function("tradewire.user.state === 'open' && tradewire.user.account.loaded")


def page_book(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("tradewire.book()")
    return result
