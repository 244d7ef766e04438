"""The ``avgPrice`` stream: the same five-minute average as REST ``avgPrice``, published as it moves."""

from __future__ import annotations

import itertools
import random

import orjson

from tests.unit.marketdata.harness import CONFIG, DAY0, MINUTE, Exchange, limit, market_order, streams
from tradewire.engine.decimals import to_text
from tradewire.gateway.public import average_price
from tradewire.keys import MDPUB
from tradewire.marketdata.binance import AVG_PRICE_MINUTES
from tradewire.marketdata.builder import MarketData

BTC = CONFIG.markets["BTC-USDT"]


def rest_average(ex: Exchange, now: int) -> str:
    """What ``GET /api/v3/avgPrice`` answers from the cache at ``now``: the 1m bars' average, or the
    last trade's price."""
    zset = ex.cache.zsets["md:{BTC-USDT}:klines:1m"]
    rows = sorted(zset, key=lambda member: zset[member])
    since = now - now % MINUTE - (AVG_PRICE_MINUTES - 1) * MINUTE
    units = average_price(rows, BTC, since)
    if units is None:
        return ex.cache.payloads("BTC-USDT", "trade")[-1]["p"]
    return to_text(units, BTC.quote.precision)


def trade(ex: Exchange, price: str, qty: str, ts: int) -> None:
    ex.send(limit("alice", "sell", price, qty), ts)
    ex.send(market_order("bob", "buy", qty), ts)


def test_every_published_average_is_the_rest_answer_of_that_moment() -> None:
    """Trades at random prices and times over forty minutes, with stretches longer than the
    window between some: after each slow flush the last ``avgPrice`` published is what REST would
    answer from the cache at that exchange time, and its ``T`` is the last trade's time."""
    rng = random.Random(7)
    ex = Exchange()
    ex.fund()
    ex.flush()
    now = DAY0 + 1_000
    checked = 0
    while now < DAY0 + 40 * MINUTE:
        now += rng.choice([150, 900, 20_000, 70_000, 6 * MINUTE])
        if not checked or rng.random() < 0.8:
            trade(ex, f"{rng.randint(90, 110)}.{rng.randint(0, 99):02d}", f"0.{rng.randint(1, 9)}", now)
        else:  # no trade: exchange time moves with another command
            ex.send({"type": "deposit", "user": "carol", "asset": "BTC", "amount": "1"}, now)
        ex.flush()
        published = ex.cache.payloads("BTC-USDT", "avgPrice")
        assert published, "the market traded: there is an average"
        last = published[-1]
        assert (last["w"], last["T"]) == (
            rest_average(ex, now),
            ex.cache.payloads("BTC-USDT", "trade")[-1]["T"],
        )
        assert (last["e"], last["s"], last["i"]) == ("avgPrice", "BTCUSDT", "5m")
        checked += 1
    assert checked > 20
    values = [(p["w"], p["T"]) for p in ex.cache.payloads("BTC-USDT", "avgPrice")]
    assert all(a != b for a, b in itertools.pairwise(values)), "published only when it moved"


def test_the_window_moves_with_exchange_time_and_an_empty_one_is_the_last_price() -> None:
    ex = Exchange()
    ex.fund()
    trade(ex, "100", "1", DAY0 + 1_000)
    trade(ex, "200", "3", DAY0 + 2 * MINUTE)
    ex.flush()
    assert ex.cache.payloads("BTC-USDT", "avgPrice")[-1]["w"] == "175"  # (100 + 600) / 4
    # at 5m 1s the window opens at 1m: the trade at 1 s left it
    ex.send({"type": "deposit", "user": "carol", "asset": "BTC", "amount": "1"}, DAY0 + 5 * MINUTE + 1_000)
    ex.flush()
    assert ex.cache.payloads("BTC-USDT", "avgPrice")[-1]["w"] == "200"
    # at 7m the window is empty: the last trade's price, the same value, so nothing new
    ex.send({"type": "deposit", "user": "carol", "asset": "BTC", "amount": "1"}, DAY0 + 7 * MINUTE)
    assert "avgPrice" not in streams(ex.flush())
    assert len(ex.cache.payloads("BTC-USDT", "avgPrice")) == 2


def test_a_market_that_never_traded_has_no_average_and_a_fast_flush_holds_it() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)
    assert "avgPrice" not in streams(ex.flush())
    ex.send(market_order("bob", "buy", "0.5"), DAY0 + 20)
    assert "avgPrice" not in streams(ex.flush(slow=False))
    assert ex.md.holds()
    assert streams(ex.flush()).count("avgPrice") == 1


def test_recovery_publishes_the_average_again_and_continues_it() -> None:
    """A snapshot in the middle of a window, the rest replayed silently: after ``settle`` and
    ``refresh`` the recovered builder publishes the average the live one has, and from then on both
    give the same ops."""
    ex = Exchange()
    ex.fund()
    trade(ex, "100", "1", DAY0 + 1_000)
    ex.flush()
    saved = ex.md.to_state()
    tail = [
        (ex.send(limit("alice", "sell", "120", "1"), DAY0 + MINUTE), DAY0 + MINUTE),
        (ex.send(market_order("bob", "buy", "1"), DAY0 + MINUTE), DAY0 + MINUTE),
    ]
    ex.flush()
    live = ex.cache.payloads("BTC-USDT", "avgPrice")[-1]
    assert (live["w"], live["T"]) == ("110", DAY0 + MINUTE)

    recovered = ex.recovered(saved, tail)
    again = [orjson.loads(op[3]) for op in recovered.flush() if op[0] == MDPUB and op[2] == "avgPrice"]
    assert again == [live], "published once more, the same"

    events = ex.send(limit("carol", "sell", "130", "2"), DAY0 + 2 * MINUTE)
    recovered.apply(events, DAY0 + 2 * MINUTE)
    events = ex.send(market_order("bob", "buy", "2"), DAY0 + 2 * MINUTE)
    recovered.apply(events, DAY0 + 2 * MINUTE)
    ops = ex.flush()
    assert recovered.flush() == ops
    assert (
        orjson.loads(next(op[3] for op in ops if op[2] == "avgPrice"))["w"] == "120"
    )  # (100 + 120 + 2 x 130) / 4


def test_a_state_from_before_the_average_counts_the_trades_after_it() -> None:
    """A snapshot written before ``avgPrice`` existed has no minutes, no last trade time: the
    restored builder starts its window with the next trade."""
    import msgspec

    from tradewire.marketdata.builder import BuilderState

    ex = Exchange()
    ex.fund()
    trade(ex, "100", "1", DAY0 + 1_000)
    ex.flush()
    state = msgspec.msgpack.decode(ex.md.to_state(), type=BuilderState)
    for market in state.markets:
        market.minutes, market.last_trade_time, market.average = [], 0, None
    ex.md = MarketData.from_state(CONFIG, msgspec.msgpack.encode(state))
    assert "avgPrice" not in streams(ex.flush())
    trade(ex, "120", "1", DAY0 + 2_000)
    ex.flush()
    assert ex.cache.payloads("BTC-USDT", "avgPrice")[-1]["w"] == "120"
