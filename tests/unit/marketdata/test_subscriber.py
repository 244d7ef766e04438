"""A Binance depth client rebuilds the exchange's book from a snapshot and the published diffs.

The real engine runs random command streams; ``MarketData`` turns its events into diffs. Clients
subscribe at some point, take a depth snapshot a little later (from the builder mid-batch, or from
the Redis cache as the REST endpoint does) and follow Binance's procedure: drop diffs with
``u <= lastUpdateId``, check ``U <= lastUpdateId + 1 <= u`` on the first one applied and
``U == previous u + 1``, ``pu == previous u`` on every later one, and verify every ``cs`` against
their own book. At the end every client's book, and the cache, equal the engine's own book.
"""

from __future__ import annotations

import random
import zlib
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import command_streams, random_stream
from tests.unit.marketdata.harness import CONFIG, DAY0, Exchange
from tradewire.engine import Trade
from tradewire.engine.decimals import to_text
from tradewire.marketdata.builder import MarketData
from tradewire.marketdata.klines import BARS_KEPT

MARKETS = tuple(CONFIG.markets)


class DiffClient:
    """One market's local book, kept as Binance documents, in the payloads' own text."""

    def __init__(self) -> None:
        self.buffer: list[dict[str, Any]] = []
        self.snapshot_id: int | None = None
        self.previous_u: int | None = None
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.applied = 0

    def receive(self, diff: dict[str, Any]) -> None:
        if self.snapshot_id is None:
            self.buffer.append(diff)
        else:
            self.apply(diff)

    def start(self, snapshot: dict[str, Any]) -> None:
        self.snapshot_id = snapshot["lastUpdateId"]
        self.bids = dict(snapshot["bids"])
        self.asks = dict(snapshot["asks"])
        buffered, self.buffer = self.buffer, []
        for diff in buffered:
            self.apply(diff)

    def apply(self, diff: dict[str, Any]) -> None:
        assert self.snapshot_id is not None
        if diff["u"] <= self.snapshot_id:
            assert self.previous_u is None
            return
        if self.previous_u is None:
            assert diff["U"] <= self.snapshot_id + 1 <= diff["u"], (diff, self.snapshot_id)
        else:
            assert diff["U"] == self.previous_u + 1
            assert diff["pu"] == self.previous_u
        for side, levels in ((self.bids, diff["b"]), (self.asks, diff["a"])):
            for price, qty in levels:
                if float(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        assert diff["cs"] == self.checksum()
        self.previous_u = diff["u"]
        self.applied += 1

    def levels(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda level: -Decimal(level[0]))
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))
        return bids, asks

    def checksum(self) -> int:
        bids, asks = self.levels()
        parts: list[str] = []
        for i in range(max(len(bids[:25]), len(asks[:25]))):
            for side in (bids[:25], asks[:25]):
                if i < len(side):
                    parts += side[i]
        return zlib.crc32(":".join(parts).encode())


def engine_book(ex: Exchange, market: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    m = CONFIG.markets[market]
    qp, bp = m.quote.precision, m.base.precision
    book = ex.engine.books[market]
    return (
        [(to_text(p, qp), to_text(q, bp)) for p, q in book.bids.depth()],
        [(to_text(p, qp), to_text(q, bp)) for p, q in book.asks.depth()],
    )


def builder_snapshot(md: MarketData, market: str) -> dict[str, Any]:
    m = CONFIG.markets[market]
    snap = md.depth_snapshot(market)
    qp, bp = m.quote.precision, m.base.precision
    return {
        "lastUpdateId": snap.last_update_id,
        "bids": [[to_text(p, qp), to_text(q, bp)] for p, q in snap.bids],
        "asks": [[to_text(p, qp), to_text(q, bp)] for p, q in snap.asks],
    }


def cache_snapshot(ex: Exchange, market: str) -> dict[str, Any]:
    """What the REST depth endpoint builds from the cache."""
    return {
        "lastUpdateId": ex.cache.strings.get(f"md:{{{market}}}:depth:u", 0),
        "bids": list(ex.cache.hashes[f"md:{{{market}}}:bids"].items()),
        "asks": list(ex.cache.hashes[f"md:{{{market}}}:asks"].items()),
    }


Run = tuple[Exchange, dict[str, list[DiffClient]], dict[str, list[Trade]]]


def run(lines: list[str], rng: random.Random) -> Run:
    """Drive ``lines`` through the engine and the builder, flushing in random batches.

    Per market, two clients subscribe at one random point and take their snapshot at a later one
    (one from the builder, mid-batch; one from the cache, as of the last flush). At a random
    point the builder's state is copied into a second builder, which must then flush the very
    same ops as the original to the end.
    """
    ex = Exchange()
    shadow: MarketData | None = None
    restore_at = rng.randrange(len(lines))
    clients: dict[str, list[DiffClient]] = {market: [] for market in MARKETS}
    joins: dict[str, tuple[int, int]] = {}
    for market in MARKETS:
        subscribe = rng.randrange(max(1, len(lines) // 3))
        joins[market] = (subscribe, min(len(lines) - 1, subscribe + rng.randint(0, 60)))
    trades: dict[str, list[Trade]] = {market: [] for market in MARKETS}
    ts, seen = DAY0, 0
    batch = rng.randint(1, 40)
    for i, line in enumerate(lines):
        for market in MARKETS:
            subscribe, snapshot = joins[market]
            if i == subscribe:
                clients[market] = [DiffClient(), DiffClient()]
            if i == snapshot:
                clients[market][0].start(builder_snapshot(ex.md, market))
                clients[market][1].start(cache_snapshot(ex, market))
        if i == restore_at:
            shadow = MarketData.from_state(CONFIG, ex.md.to_state())
        roll = rng.random()
        if roll < 0.3:
            step = 0
        elif roll < 0.98:
            step = rng.randint(1, 3_000)
        else:
            step = rng.randint(1, 20) * 3_600_000
        ts += step
        stamp = ts - rng.randint(1, 2_000) if rng.random() < 0.05 else ts  # a gateway clock behind
        events = ex.send_line(line, stamp)
        if shadow is not None:
            shadow.apply(events, stamp)
        for event in events:
            if isinstance(event, Trade):
                trades[event.market].append(event)
        if i % batch == batch - 1 or i == len(lines) - 1:
            ops = ex.flush()
            if shadow is not None:
                assert shadow.flush() == ops
            for market, stream, payload in ex.cache.published[seen:]:
                if stream == "depth":
                    for client in clients[market]:
                        client.receive(orjson.loads(payload))
            seen = len(ex.cache.published)
            batch = rng.randint(1, 40)
    return ex, clients, trades


def check_end_state(
    ex: Exchange, clients: dict[str, list[DiffClient]], trades: dict[str, list[Trade]]
) -> None:
    """Clients, cache and publications all agree with the engine."""
    for market in MARKETS:
        book = engine_book(ex, market)
        for client in clients[market]:
            assert client.snapshot_id is not None
            assert client.levels() == book
        assert (
            sorted(ex.cache.hashes[f"md:{{{market}}}:bids"].items(), key=lambda level: -Decimal(level[0])),
            sorted(ex.cache.hashes[f"md:{{{market}}}:asks"].items(), key=lambda level: Decimal(level[0])),
        ) == book
        assert (
            ex.cache.strings.get(f"md:{{{market}}}:depth:u", 0) == ex.md.depth_snapshot(market).last_update_id
        )
        published = [orjson.loads(p)["t"] for m, s, p in ex.cache.published if m == market and s == "trade"]
        assert published == [t.trade_id for t in trades[market]]
        cached = [orjson.loads(t)["id"] for t in ex.cache.lists[f"md:{{{market}}}:trades"]]
        assert cached == [t.trade_id for t in reversed(trades[market][-1000:])]
        m = CONFIG.markets[market]
        for interval in ("1m", "1d"):
            rows = ex.cache.klines(f"md:{{{market}}}:klines:{interval}")
            assert len(rows) <= BARS_KEPT[interval]  # 10,140 1m bars, 1,000 of the others
            assert [r[0] for r in rows] == sorted({r[0] for r in rows})
        days = ex.cache.klines(f"md:{{{market}}}:klines:1d")
        assert sum(Decimal(r[5]) for r in days) == Decimal(
            to_text(sum(t.qty for t in trades[market]), m.base.precision)
        )
        quote = sum(t.notional for t in trades[market])
        assert sum(Decimal(r[7]) for r in days) == Decimal(to_text(quote, m.quote.precision))
        assert sum(r[8] for r in days) == len(trades[market])


def test_subscribers_rebuild_every_book_from_snapshot_and_diffs_over_a_long_random_run() -> None:
    for seed in (1, 2):
        ex, clients, trades = run(random_stream(seed, 8_000), random.Random(seed))
        check_end_state(ex, clients, trades)
        assert sum(len(t) for t in trades.values()) > 500
        assert sum(c.applied for cs in clients.values() for c in cs) > 1_000


@settings(max_examples=60, deadline=None)
@given(lines=command_streams(), seed=st.integers(0, 2**32 - 1))
def test_subscribers_rebuild_every_book_with_any_command_stream(lines: list[str], seed: int) -> None:
    ex, clients, trades = run(lines, random.Random(seed))
    check_end_state(ex, clients, trades)


def test_recovery_from_snapshot_and_tail_replay_continues_the_published_sequence() -> None:
    lines = random_stream(3, 3_000)
    stamps = [DAY0 + 250 * i for i in range(len(lines))]
    ex = Exchange()
    events = []
    snapshot_at, state = 1_000, b""
    for i, (line, ts) in enumerate(zip(lines[:2_000], stamps, strict=False)):
        if i == snapshot_at:
            state = ex.md.to_state()
        events.append(ex.send_line(line, ts))
        if i % 25 == 24:
            ex.flush()
    ex.flush()
    restored = MarketData.from_state(CONFIG, state)
    for i in range(snapshot_at, 2_000):  # the tail whose effects are already in Redis
        restored.apply(events[i], stamps[i])
    restored.flush()  # discarded
    assert restored.to_state() == ex.md.to_state()
    for line, ts in zip(lines[2_000:], stamps[2_000:], strict=True):
        restored.apply(ex.send_line(line, ts), ts)
    assert restored.flush() == ex.md.flush()
