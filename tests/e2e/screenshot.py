"""Take ``docs/screenshot.png``: the trading page at 1440x900 under a live demo market.

    .venv/bin/python -m tests.e2e.screenshot [--out docs/screenshot.png] [--seconds 20]

It starts a real exchange (Redis, engine, gateway), gives the BTC-USDT market three hours of
history by journalling trades stamped in the past (the journal's ``ts`` is the only clock market
data knows), then runs the demo bots live, signs a trader in through the page's dialog with a few
resting orders, and shoots once the bots have moved the market for ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from playwright.sync_api import sync_playwright

from tests.e2e.support import Trader, launch_chromium, open_page, sign_in
from tests.fixtures.exchange import Exchange
from tradewire import keys
from tradewire.bots import run_bots
from tradewire.engine import ExchangeConfig
from tradewire.journal.entries import command_fields
from tradewire.journal.submit import now_ms
from tradewire.redisconn import connect

ROOT = Path(__file__).resolve().parents[2]
HISTORY_MINUTES = 180


async def journal_history(redis_url: str, market: str, start_price: Decimal) -> None:
    """Trades over the last HISTORY_MINUTES minutes: a maker quotes, a taker takes, minute by minute.

    Exchange time follows the journal entry's id (Redis's clock when it was appended) within a
    second, whatever a submitter stamps, so the entries are appended with ids from the past: the
    journal is empty until then, and ids only have to increase."""
    clock_ms = now_ms() - HISTORY_MINUTES * 60_000
    client = connect(redis_url)
    rng = random.Random(2026)
    sequence = 0

    async def append(command: dict[str, Any]) -> None:
        nonlocal sequence
        sequence += 1
        fields = command_fields(orjson.dumps(command), ts=clock_ms, rid=f"history-{sequence}",
                                src="screenshot-history", who="bot", ip="-")  # fmt: skip
        await client.xadd(keys.COMMANDS, fields, id=f"{clock_ms}-{sequence}")  # type: ignore[arg-type]

    try:
        for user, asset, amount in (("hist-maker", "BTC", "1000"), ("hist-taker", "USDT", "1000000000")):
            await append({"type": "deposit", "user": user, "asset": asset, "amount": amount})
        price = start_price
        end = now_ms() - 5_000  # an id from the future would hold every later entry's id there
        while clock_ms < end:
            for _ in range(rng.randint(4, 10)):
                if clock_ms >= end:
                    break
                price = max(Decimal("1000"), price + Decimal(rng.gauss(0, 18)).quantize(Decimal("0.01")))
                qty = Decimal(rng.randint(1, 400)) / 1000
                maker: dict[str, Any] = {"type": "new_order", "user": "hist-maker", "market": market,
                    "side": "sell", "kind": "limit", "price": str(price), "qty": str(qty)}  # fmt: skip
                taker = {"type": "new_order", "user": "hist-taker", "market": market, "side": "buy",
                         "kind": "market", "qty": str(qty)}  # fmt: skip
                await append(maker)
                await append(taker)
                clock_ms += rng.randint(2_000, 9_000)
            clock_ms = max(clock_ms, clock_ms - clock_ms % 60_000 + 60_000)
    finally:
        await client.aclose()


def run_demo_bots(redis_url: str, config: ExchangeConfig, stop: threading.Event) -> threading.Thread:
    async def bots() -> None:
        task = asyncio.create_task(run_bots(redis_url, config))
        while not stop.is_set():
            await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    thread = threading.Thread(target=lambda: asyncio.run(bots()), daemon=True)
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Exchange(Path(tmp) / "exchange") as ex:
        asyncio.run(journal_history(ex.redis_url, "BTC-USDT", Decimal("96500")))
        stop = threading.Event()
        bots = run_demo_bots(ex.redis_url, ExchangeConfig.from_dict(ex.config), stop)
        trader = ex.create_user("trader")
        ex.deposit("trader", "USDT", "250000")
        ex.deposit("trader", "BTC", "1.5")
        try:
            time.sleep(3)  # the bots' first quotes
            api = Trader(ex.http_url, trader.api_key, trader.api_secret)
            last = Decimal(api.http.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"}).json()["price"])
            api.order("BTCUSDT", "BUY", "0.25", str((last * Decimal("0.998")).quantize(Decimal("0.01"))))
            api.order("BTCUSDT", "BUY", "0.4", str((last * Decimal("0.996")).quantize(Decimal("0.01"))))
            api.order("BTCUSDT", "SELL", "0.3", str((last * Decimal("1.003")).quantize(Decimal("0.01"))))
            with sync_playwright() as p, launch_chromium(p, Path(tmp) / "profile", 1440, 900) as context:
                page = open_page(context, f"{ex.http_url}/")
                sign_in(page, trader.api_key, trader.api_secret)
                page.click("#tab-open")
                time.sleep(args.seconds)
                page.mouse.move(0, 0)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                print(f"saved {args.out}")
        finally:
            stop.set()
            bots.join(10)


if __name__ == "__main__":
    main()
