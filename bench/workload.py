"""A seeded, realistic order-flow workload for matching-engine benchmarks.

The workload is a list of *neutral ops*: plain tuples that say what a trader does, in integer ticks and
lots, so that every engine under test gets exactly the same flow through a thin adapter. It has two
phases:

* ``setup``: large deposits for every user in every asset, then a deep book per market (thousands of
  resting limit orders spread over hundreds of price levels around the starting mid);
* ``main``: the measured phase, ``n`` ops where each market's mid follows a slowly mean-reverting
  random walk and the flow is about one third cancels (of orders that are likely still live), resting
  limit orders near the mid, post-only orders at the touch, and aggressive flow (marketable GTC limit
  orders, IOC and FOK limit orders, market orders).

Users are drawn with a Zipf-like skew (a few very active "market makers", a long tail of occasional
traders), so self-trade prevention fires now and then, as it does on a real venue.

The generator is deterministic for a given seed (it uses only its own ``random.Random``). Order ids
are assigned the way the replay spec numbers them: every new order takes the next id, 1, 2, 3, ...

Op tuples (``K_*`` is the first element)::

    (K_DEPOSIT, user, asset, amount)                  # amount: decimal string
    (K_LIMIT, oid, user, market, is_buy, price, qty, tif, post_only)
    (K_MARKET, oid, user, market, is_buy, qty)        # qty in lots; a market order never has a price
    (K_CANCEL, oid, user, market)                     # cancel by order id

``market`` is an index into ``Workload.markets``; ``price`` is in ticks of that market and ``qty`` in
lots; ``tif`` is ``"GTC"``, ``"IOC"`` or ``"FOK"``.

Run as a script to write the replay interface's files::

    python bench/workload.py --commands 1000000 --seed 1 --config config.json --out commands.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

K_DEPOSIT = 0
K_LIMIT = 1
K_MARKET = 2
K_CANCEL = 3

Op = tuple[Any, ...]


@dataclass(frozen=True)
class MarketSpec:
    """One market, with the decimal filters of the replay spec and the integer view the workload uses."""

    name: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_notional: str
    mid: str
    """Starting mid price (decimal string)."""
    step: int
    """Ticks between the price levels traders mostly use."""
    weight: float
    """Share of the flow that goes to this market."""
    median_lots: int
    """Median order size, in lots."""

    @property
    def tick_places(self) -> int:
        return _places(self.tick_size)

    @property
    def lot_places(self) -> int:
        return _places(self.lot_size)

    @property
    def tick_units(self) -> int:
        """The tick as an integer at ``tick_places`` decimals."""
        return int(self.tick_size.replace(".", ""))

    @property
    def lot_units(self) -> int:
        return int(self.lot_size.replace(".", ""))

    @property
    def mid_ticks(self) -> int:
        places = self.tick_places
        whole, _, frac = self.mid.partition(".")
        units = int(whole + frac.ljust(places, "0")[:places])
        return units // self.tick_units

    def price_text(self, ticks: int) -> str:
        """A price in ticks as a decimal string (trailing zeros allowed by the spec)."""
        return _text(ticks * self.tick_units, self.tick_places)

    def qty_text(self, lots: int) -> str:
        return _text(lots * self.lot_units, self.lot_places)


ASSETS: dict[str, int] = {"BTC": 8, "ETH": 8, "SOL": 8, "USDT": 6}
"""Asset -> precision (decimal places)."""

MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("BTC-USDT", "BTC", "USDT", "0.01", "0.0001", "1", "60000", 10, 0.40, 200),
    MarketSpec("ETH-USDT", "ETH", "USDT", "0.01", "0.001", "1", "3000", 1, 0.30, 300),
    MarketSpec("SOL-USDT", "SOL", "USDT", "0.001", "0.01", "1", "150", 1, 0.20, 300),
    MarketSpec("ETH-BTC", "ETH", "BTC", "0.000001", "0.01", "0.0001", "0.05", 1, 0.10, 100),
)

DEPOSITS: dict[str, str] = {"BTC": "1000", "ETH": "20000", "SOL": "1000000", "USDT": "100000000"}
"""What every user deposits at the start: enough that nearly every order is accepted."""

# The main phase's mix (shares of ops); the rest are resting limit orders near the mid.
P_CANCEL = 0.33
P_POST_ONLY = 0.04
P_CROSS_GTC = 0.085
P_IOC = 0.05
P_FOK = 0.015
P_MARKET = 0.05

MID_MOVE = 0.04
"""Chance per op in a market that its mid moves by one step."""
MEAN_REVERSION = 400
"""Steps from the starting mid at which the walk is pushed back with certainty."""


def _places(text: str) -> int:
    point = text.find(".")
    return 0 if point < 0 else len(text) - point - 1


def _text(units: int, places: int) -> str:
    if places == 0:
        return str(units)
    digits = str(units).rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"


@dataclass
class Workload:
    seed: int
    commands: int
    users: list[str]
    markets: tuple[MarketSpec, ...]
    setup: list[Op]
    main: list[Op]
    stats: dict[str, int] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The exchange config, in the replay spec's format."""
        return config_dict(self.markets)

    def ops(self) -> Iterator[Op]:
        yield from self.setup
        yield from self.main


def config_dict(markets: tuple[MarketSpec, ...] = MARKETS) -> dict[str, Any]:
    return {
        "assets": {name: {"precision": places} for name, places in ASSETS.items()},
        "markets": {
            m.name: {
                "base": m.base,
                "quote": m.quote,
                "tick_size": m.tick_size,
                "lot_size": m.lot_size,
                "min_notional": m.min_notional,
                "maker_fee": "0.001",
                "taker_fee": "0.002",
            }
            for m in markets
        },
    }


class _Side:
    """The generator's belief about one market: mid, and the orders it thinks are resting."""

    __slots__ = ("mid", "pool", "spec", "start")

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.start = self.mid = spec.mid_ticks
        # (oid, user, price, is_buy) of GTC limit orders placed away from the touch.
        self.pool: list[tuple[int, str, int, bool]] = []


def generate(
    commands: int = 1_000_000,
    seed: int = 1,
    users: int = 2000,
    seed_orders: int = 12_000,
    markets: tuple[MarketSpec, ...] = MARKETS,
) -> Workload:
    """Build the workload: ``commands`` ops in the measured phase, plus the setup phase."""
    rng = random.Random(seed)
    rand, expo, lognorm = rng.random, rng.expovariate, rng.lognormvariate
    names = [f"u{i:04d}" for i in range(users)]
    # Zipf-like activity: user k is picked with weight 1 / (k + 1) ** 0.8.
    cumulative = list(accumulate(1.0 / (k + 1) ** 0.8 for k in range(users)))
    total_weight = cumulative[-1]
    market_cumulative = list(accumulate(m.weight for m in markets))
    books = [_Side(m) for m in markets]
    stats = {"cancel_skipped_stale": 0}
    next_oid = 1

    def pick_user() -> str:
        return names[min(bisect_right(cumulative, rand() * total_weight), users - 1)]

    def pick_market() -> int:
        return min(bisect_right(market_cumulative, rand() * market_cumulative[-1]), len(markets) - 1)

    def lots(spec: MarketSpec, scale: float = 1.0) -> int:
        return max(1, min(int(lognorm(math.log(spec.median_lots * scale), 1.0)), spec.median_lots * 100))

    def resting_offset(spec: MarketSpec) -> int:
        """Ticks away from the mid for a resting order: mostly near the touch, a long tail deep."""
        return spec.step * (1 + min(int(expo(1 / 25.0)), 400))

    setup: list[Op] = []
    for user in names:
        for asset, amount in DEPOSITS.items():
            setup.append((K_DEPOSIT, user, asset, amount))

    def rest(out: list[Op], mi: int, book: _Side, user: str, is_buy: bool, offset: int) -> None:
        nonlocal next_oid
        price = book.mid - offset if is_buy else book.mid + offset
        if price <= 0:
            price = book.spec.step
        oid = next_oid
        next_oid += 1
        out.append((K_LIMIT, oid, user, mi, is_buy, price, lots(book.spec), "GTC", False))
        book.pool.append((oid, user, price, is_buy))

    # A deep book first: seed_orders resting orders over all markets, both sides.
    for k in range(seed_orders):
        mi = pick_market()
        rest(setup, mi, books[mi], pick_user(), k % 2 == 0, resting_offset(markets[mi]))

    main: list[Op] = []
    append = main.append
    edges = list(
        accumulate([P_CANCEL, P_POST_ONLY, P_CROSS_GTC, P_IOC, P_FOK, P_MARKET]),
    )
    for _ in range(commands):
        mi = pick_market()
        book = books[mi]
        spec = book.spec
        # The mid: a random walk by one step, pushed back towards the start the further it strays.
        if rand() < MID_MOVE:
            drift = (book.mid - book.start) / (spec.step * MEAN_REVERSION)
            up = rand() < 0.5 - 0.5 * max(-1.0, min(1.0, drift))
            book.mid += spec.step if up else -spec.step
        roll = rand()
        if roll < edges[0]:
            # Cancel an order that is probably still live: mostly recent ones, some old ones; skip
            # (forget) orders that the mid has since moved through, as they have likely traded.
            pool = book.pool
            target = None
            for _attempt in range(4):
                if not pool:
                    break
                if rand() < 0.6:
                    index = len(pool) - 1 - min(int(expo(1 / 30.0)), len(pool) - 1)
                else:
                    index = int(rand() * len(pool))
                candidate = pool[index]
                pool[index] = pool[-1]
                pool.pop()
                _, _, price, is_buy = candidate
                if (price < book.mid) if is_buy else (price > book.mid):
                    target = candidate
                    break
                stats["cancel_skipped_stale"] += 1
            if target is not None:
                append((K_CANCEL, target[0], target[1], mi))
                continue
            roll = 1.0  # nothing to cancel: place a resting order instead
        user = pick_user()
        is_buy = rand() < 0.5
        oid = next_oid
        if roll < edges[1]:
            # Post-only at or near the touch; some of them would cross and are refused.
            offset = spec.step * int(expo(1 / 1.5))
            price = book.mid - offset if is_buy else book.mid + offset
            append((K_LIMIT, oid, user, mi, is_buy, price, lots(spec), "GTC", True))
            next_oid += 1
            book.pool.append((oid, user, price, is_buy))
        elif roll < edges[4]:
            # Marketable limit orders: a few levels through the mid.
            tif = "GTC" if roll < edges[2] else ("IOC" if roll < edges[3] else "FOK")
            through = spec.step * (1 + int(expo(1 / 4.0)))
            price = book.mid + through if is_buy else max(spec.step, book.mid - through)
            append((K_LIMIT, oid, user, mi, is_buy, price, lots(spec, 1.5), tif, False))
            next_oid += 1
        elif roll < edges[5]:
            append((K_MARKET, oid, user, mi, is_buy, lots(spec, 1.5)))
            next_oid += 1
        else:
            rest(main, mi, book, user, is_buy, resting_offset(spec))

    counts = {"setup_ops": len(setup), "main_ops": len(main), "orders": next_oid - 1}
    for name, kind in (
        ("deposit", K_DEPOSIT),
        ("limit", K_LIMIT),
        ("market", K_MARKET),
        ("cancel", K_CANCEL),
    ):
        counts[f"main_{name}"] = sum(1 for op in main if op[0] == kind)
    counts["main_ioc"] = sum(1 for op in main if op[0] == K_LIMIT and op[7] == "IOC")
    counts["main_fok"] = sum(1 for op in main if op[0] == K_LIMIT and op[7] == "FOK")
    counts["main_post_only"] = sum(1 for op in main if op[0] == K_LIMIT and op[8])
    counts.update(stats)
    return Workload(seed, commands, names, markets, setup, main, counts)


def command_dict(op: Op, markets: tuple[MarketSpec, ...] = MARKETS) -> dict[str, Any]:
    """One op as a replay-spec command object."""
    kind = op[0]
    if kind == K_LIMIT:
        _, _, user, mi, is_buy, price, qty, tif, post_only = op
        spec = markets[mi]
        cmd: dict[str, Any] = {
            "type": "new_order",
            "user": user,
            "market": spec.name,
            "side": "buy" if is_buy else "sell",
            "kind": "limit",
            "qty": spec.qty_text(qty),
            "price": spec.price_text(price),
        }
        if tif != "GTC":
            cmd["tif"] = tif
        if post_only:
            cmd["post_only"] = True
        return cmd
    if kind == K_MARKET:
        _, _, user, mi, is_buy, qty = op
        spec = markets[mi]
        return {
            "type": "new_order",
            "user": user,
            "market": spec.name,
            "side": "buy" if is_buy else "sell",
            "kind": "market",
            "qty": spec.qty_text(qty),
        }
    if kind == K_CANCEL:
        _, oid, user, mi = op
        return {"type": "cancel", "user": user, "market": markets[mi].name, "order_id": oid}
    if kind == K_DEPOSIT:
        _, user, asset, amount = op
        return {"type": "deposit", "user": user, "asset": asset, "amount": amount}
    raise ValueError(f"unknown op {op!r}")


def write_jsonl(workload: Workload, path: Path) -> int:
    """Write setup and main phases as JSON lines; returns the number of lines."""
    markets = workload.markets
    dumps = json.dumps
    count = 0
    with path.open("w", encoding="utf-8") as out:
        batch: list[str] = []
        for op in workload.ops():
            batch.append(dumps(command_dict(op, markets), separators=(",", ":")))
            count += 1
            if len(batch) >= 8192:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the benchmark workload as replay-spec JSON lines.")
    parser.add_argument("--commands", type=int, default=1_000_000, help="ops in the measured phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", type=Path, required=True, help="where to write the exchange config")
    parser.add_argument("--out", type=Path, required=True, help="where to write the commands (JSONL)")
    args = parser.parse_args(argv)
    workload = generate(args.commands, args.seed)
    args.config.write_text(json.dumps(workload.config(), indent=2) + "\n", encoding="utf-8")
    lines = write_jsonl(workload, args.out)
    print(f"wrote {lines} commands to {args.out} and the config to {args.config}", file=sys.stderr)
    print(json.dumps(workload.stats, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
