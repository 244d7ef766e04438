"""Demo traders that keep a market moving: a market maker quoting a ladder around a drifting mid, and a
taker that now and then crosses the spread.

The policies are pure (a seeded ``random.Random`` in, command dicts out) so that a demo run is the same
each time for a seed; :func:`run_bots` is the thin shell that journals their commands like any client
and feeds the outcomes back. Bots trade through the journal, not through the gateway: they are the
exchange's own demo, not customers, and their commands carry ``who="bot"`` in the audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import redis.asyncio
import structlog

from tradewire import keys
from tradewire.engine import ExchangeConfig
from tradewire.engine.config import Market
from tradewire.engine.decimals import to_text, to_units
from tradewire.journal.entries import Reply
from tradewire.journal.submit import SubmitError, Submitter
from tradewire.redisconn import connect

log = structlog.get_logger("tradewire.bots")

MAKER_USER: Final = "demo-maker"
TAKER_USER: Final = "demo-taker"
"""The bots' accounts: journal-only users (no API key), named by the rule of ``tradewire admin
create-user`` (``tradewire.admin.valid_user_name``) like every other user."""

REFERENCE_PRICES = {"BTC": 97_000, "ETH": 3_500, "SOL": 180}
"""Where a demo market starts when it never traded, in whole quote units (default 100)."""

Command = dict[str, Any]


@dataclass
class Quote:
    price: int
    qty: int
    is_buy: bool


@dataclass
class MarketMaker:
    """Quotes ``levels`` bids and asks around a mean-reverting random-walk mid, a few ticks apart."""

    market: Market
    user: str
    rng: random.Random
    mid: int
    """In quote units."""
    levels: int = 12
    spacing_ticks: int = 0
    open_orders: dict[int, Quote] = field(default_factory=dict)
    """Live quotes by order id, oldest first."""

    def __post_init__(self) -> None:
        if self.spacing_ticks <= 0:
            # about 0.01% of the price between levels, at least one tick
            self.spacing_ticks = max(1, self.mid // (self.market.tick * 10_000))
        self.anchor = self.mid

    def step(self) -> list[Command]:
        """Move the mid, withdraw the quotes furthest from it, and requote up to the ladder's size."""
        tick = self.market.tick
        drift = round(self.rng.gauss(0, 2.5) * self.spacing_ticks) * tick
        pull = (self.anchor - self.mid) // 200 // tick * tick
        self.mid = max(tick * 10, self.mid + drift + pull)
        reach = self.levels * self.spacing_ticks * tick
        stale = {
            order_id
            for order_id, q in self.open_orders.items()
            if abs(q.price - self.mid) > reach or (q.price >= self.mid if q.is_buy else q.price <= self.mid)
        }
        excess = len(self.open_orders) - len(stale) - (2 * self.levels - 4)
        for order_id in self.open_orders:
            if excess <= 0:
                break
            if order_id not in stale:
                stale.add(order_id)
                excess -= 1
        commands: list[Command] = [
            {"type": "cancel", "user": self.user, "market": self.market.name, "order_id": order_id}
            for order_id in sorted(stale)
        ]
        for _ in range(4):
            commands.append(self._quote())
        return commands

    def _quote(self) -> Command:
        tick = self.market.tick
        is_buy = self.rng.random() < 0.5
        offset = self.rng.randint(1, self.levels) * self.spacing_ticks * tick
        price = self.mid - offset if is_buy else self.mid + offset
        price -= price % tick
        qty = self._qty_for(price, self.rng.uniform(200, 5_000))
        return {
            "type": "new_order",
            "user": self.user,
            "market": self.market.name,
            "side": "buy" if is_buy else "sell",
            "kind": "limit",
            "price": to_text(price, self.market.quote.precision),
            "qty": to_text(qty, self.market.base.precision),
            "post_only": True,
        }

    def _qty_for(self, price: int, notional_whole_quote: float) -> int:
        """The base quantity worth about that much quote at ``price``, in whole lots (at least one)."""
        lot = self.market.lot
        quote_scale = 10**self.market.quote.precision
        base_scale = 10**self.market.base.precision
        units = int(notional_whole_quote * quote_scale * base_scale // max(price, 1))
        return max(lot, units - units % lot)

    def on_reply(self, command: Command, reply: Reply) -> None:
        """Track the quotes that rest: accepted limit orders of this maker, minus its cancels."""
        if command.get("user") != self.user:
            return
        if command["type"] == "cancel":
            self.open_orders.pop(command["order_id"], None)
            return
        for event in reply.events:
            kind = event.get("type")
            if kind == "accepted" and "price" in command:
                price = to_units(command["price"], self.market.quote.precision)
                qty = to_units(command["qty"], self.market.base.precision)
                if price is not None and qty is not None:
                    self.open_orders[int(event["order_id"])] = Quote(price, qty, command["side"] == "buy")

    def on_fill(self, event: dict[str, Any]) -> None:
        """A trade of anyone's: take its qty off the quote it filled, if that quote is ours."""
        quote = self.open_orders.get(int(event["maker_order_id"]))
        qty = to_units(str(event["qty"]), self.market.base.precision)
        if quote is not None and qty is not None:
            quote.qty -= qty
            if quote.qty <= 0:
                del self.open_orders[int(event["maker_order_id"])]


@dataclass
class Taker:
    """Sends a market or IOC order now and then, buying and selling about equally."""

    market: Market
    user: str
    rng: random.Random

    def step(self, mid: int) -> list[Command]:
        if self.rng.random() > 0.35:
            return []
        is_buy = self.rng.random() < 0.5
        notional = self.rng.uniform(50, 3_000)
        quote_scale = 10**self.market.quote.precision
        base_scale = 10**self.market.base.precision
        units = int(notional * quote_scale * base_scale // max(mid, 1))
        qty = max(self.market.lot, units - units % self.market.lot)
        return [
            {
                "type": "new_order",
                "user": self.user,
                "market": self.market.name,
                "side": "buy" if is_buy else "sell",
                "kind": "market",
                "qty": to_text(qty, self.market.base.precision),
            }
        ]


BOT_FUNDS = {"USDT": "1000000000", "BTC": "10000", "ETH": "100000", "SOL": "1000000"}


async def _last_price(client: redis.asyncio.Redis, market: Market) -> int | None:
    raw = await client.get(keys.md(market.name, "ticker"))
    if not raw:
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        units = to_units(str(orjson.loads(raw)["lastPrice"]), market.quote.precision)
        return units if units else None
    return None


async def run_bots(url: str, config: ExchangeConfig, *, seed: int = 7, period: float = 0.25) -> None:
    """Trade every market until cancelled: fund the bot users once, then quote and take forever."""
    rng = random.Random(seed)
    client = connect(url)
    submitter = Submitter(url, f"bots-{rng.getrandbits(40):010x}", role="bots")
    await submitter.start()
    try:
        for user in (MAKER_USER, TAKER_USER):
            for asset in config.assets:
                amount = BOT_FUNDS.get(asset, "1000000")
                await submitter.submit(
                    {"type": "deposit", "user": user, "asset": asset, "amount": amount}, who="bot"
                )
        makers: list[tuple[MarketMaker, Taker]] = []
        for market in config.markets.values():
            start = await _last_price(client, market)
            if start is None:
                whole = REFERENCE_PRICES.get(market.base.name, 100)
                start = whole * 10**market.quote.precision
            makers.append(
                (
                    MarketMaker(market, MAKER_USER, random.Random(rng.random()), start),
                    Taker(market, TAKER_USER, random.Random(rng.random())),
                )
            )
        log.info("bots trading", markets=[m.market.name for m, _ in makers])
        while True:
            for maker, taker in makers:
                commands = maker.step() + taker.step(maker.mid)
                try:
                    replies = await asyncio.gather(*(submitter.submit(c, who="bot") for c in commands))
                except SubmitError as exc:
                    log.warning("bot command not journalled", error=str(exc))
                    continue
                for command, reply in zip(commands, replies, strict=True):
                    maker.on_reply(command, reply)
                    for event in reply.events:
                        if event.get("type") == "trade":
                            maker.on_fill(event)
            await asyncio.sleep(period)
    finally:
        await submitter.close()
        await client.aclose()
