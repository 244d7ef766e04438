"""The rolling-window ticker streams (``ticker_1h``, ``ticker_4h``, ``ticker_1d``), from the 24-hour
ticker's minute buckets."""

from __future__ import annotations

import random

import msgspec
import orjson

from tests.unit.marketdata.harness import DAY0, MINUTE, WINDOW_STREAMS, Exchange, limit, market_order, streams
from tradewire.keys import MDPUB
from tradewire.marketdata.ticker import WINDOW, window_stats

HOUR = 60 * MINUTE


def trade(ex: Exchange, price: str, qty: str, ts: int) -> None:
    ex.send(limit("alice", "sell", price, qty), ts)
    ex.send(market_order("bob", "buy", qty), ts)


def last(ex: Exchange, stream: str) -> dict[str, object]:
    payload: dict[str, object] = ex.cache.payloads("BTC-USDT", stream)[-1]
    return payload


def test_each_window_counts_the_trades_since_its_start_in_binances_shape() -> None:
    ex = Exchange()
    ex.fund()
    trade(ex, "100", "1", DAY0 + 1_000)  # trade 1
    trade(ex, "200", "1", DAY0 + 2 * HOUR)  # trade 2
    now = DAY0 + 4 * HOUR + 30 * MINUTE
    trade(ex, "300", "2", now)  # trade 3
    ex.flush()
    hour, four, day = (last(ex, stream) for stream in WINDOW_STREAMS)
    assert (hour["e"], four["e"], day["e"]) == ("1hTicker", "4hTicker", "1dTicker")
    assert (hour["O"], four["O"], day["O"]) == (now - HOUR, now - 4 * HOUR, now - 24 * HOUR)
    assert [(t["F"], t["L"], t["n"], t["o"], t["h"], t["l"], t["c"], t["v"]) for t in (hour, four, day)] == [
        (3, 3, 1, "300", "300", "300", "300", "2"),
        (2, 3, 2, "200", "300", "200", "300", "3"),
        (1, 3, 3, "100", "300", "100", "300", "4"),
    ]
    assert (four["w"], four["q"], four["p"], four["P"]) == ("266.666667", "800", "100", "50.000")
    assert (hour["E"], hour["C"], hour["s"]) == (now, now, "BTCUSDT")
    assert set(hour) == {"e", "E", "s", "p", "P", "o", "h", "l", "c", "w", "v", "q", "O", "C", "F", "L", "n"}


def test_a_quiet_market_publishes_a_window_when_its_start_moves_not_every_second() -> None:
    ex = Exchange()
    ex.fund()
    trade(ex, "100", "1", DAY0 + 1_000)
    ex.flush()
    before = len(ex.cache.published)
    for second in range(2, 150):  # two and a half minutes, a command a second
        ex.send({"type": "deposit", "user": "carol", "asset": "BTC", "amount": "1"}, DAY0 + second * 1_000)
        ex.flush()
    later = [s for _, s, _ in ex.cache.published[before:] if s in WINDOW_STREAMS]
    assert later.count("ticker_1h") == 2, "once when each of the two minutes began"
    starts = [t["O"] for t in ex.cache.payloads("BTC-USDT", "ticker_1h")]
    assert starts == [DAY0 - HOUR, DAY0 - HOUR + MINUTE, DAY0 - HOUR + 2 * MINUTE]


def test_the_day_window_summed_from_buckets_is_the_24_hour_ticker() -> None:
    """``window_stats`` over the ticker's own window gives the running sums' statistics."""
    rng = random.Random(3)
    ex = Exchange()
    ex.fund()
    now = DAY0
    for _ in range(120):
        now += rng.choice([500, 30_000, 20 * MINUTE, 3 * HOUR])
        trade(ex, f"{rng.randint(90, 110)}", f"0.{rng.randint(1, 9)}", now)
        ex.flush()
        ticker = ex.md._views["BTC-USDT"].ticker  # type: ignore[attr-defined]
        summed = window_stats(ticker, "BTC-USDT", now, WINDOW)
        running = ticker.stats("BTC-USDT", now, (0, 0), (0, 0))
        # the window payloads carry no previous close
        assert summed == msgspec.structs.replace(running, prev_close_price=0)


def test_recovery_publishes_each_window_again_once() -> None:
    ex = Exchange()
    ex.fund()
    trade(ex, "100", "1", DAY0 + 1_000)
    ex.flush()
    recovered = ex.recovered(ex.md.to_state(), [])
    ops = recovered.flush()
    again = [orjson.loads(op[3]) for op in ops if op[0] == MDPUB and op[2] in WINDOW_STREAMS]
    assert [t["e"] for t in again] == ["1hTicker", "4hTicker", "1dTicker"]
    assert [t["n"] for t in again] == [1, 1, 1]
    assert not [s for s in streams(recovered.flush()) if s in WINDOW_STREAMS]
