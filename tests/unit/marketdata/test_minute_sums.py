"""The builder's shortcut: a second's trades summed once and merged into every kline interval and
the ticker must leave exactly the state that adding the trades one by one leaves."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradewire.marketdata.klines import INTERVALS, SECOND, KlineSeries
from tradewire.marketdata.ticker import RollingTicker

Trade = tuple[int, int, int, bool, bool]
"""(milliseconds after the previous trade, price, qty, taker buys, fold the sum after it): a fold
in the middle of a second is what a flush or a snapshot taken then does, and the rest of the second
is merged into the same bars and ticker bucket later."""

trades_strategy = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 500, 999, 1_000, 20_000, 59_999, 60_000, 3_600_000, 30_000_000, 700_000_000]),
        st.integers(1, 50),
        st.integers(1, 9),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=80,
)


def _one_by_one(trades: list[Trade], start: int) -> tuple[list[KlineSeries], RollingTicker]:
    series = [KlineSeries(interval) for interval in INTERVALS]
    ticker = RollingTicker(base_scale=100)
    ts = start
    for trade_id, (gap, price, qty, buys, _) in enumerate(trades, 1):
        previous, ts = ts, ts + gap
        if ts // SECOND != previous // SECOND:
            for s in series:
                s.advance(ts)
            ticker.advance(ts)
        for s in series:
            s.add(ts, price, qty, price * qty, buys, trade_id)
        ticker.add(ts, price, qty, price * qty, trade_id)
    return series, ticker


def _by_seconds(trades: list[Trade], start: int) -> tuple[list[KlineSeries], RollingTicker]:
    series = [KlineSeries(interval) for interval in INTERVALS]
    ticker = RollingTicker(base_scale=100)
    second = KlineSeries("1s")
    last_qty = 0

    def fold() -> None:
        if second.bar is not None:
            for s in series:
                s.merge(second.bar)
            ticker.add_part(second.bar, last_qty)
            second.bar = None

    ts = start
    for trade_id, (gap, price, qty, buys, fold_now) in enumerate(trades, 1):
        previous, ts = ts, ts + gap
        if ts // SECOND != previous // SECOND:
            fold()
            for s in series:
                s.advance(ts)
            ticker.advance(ts)
        second.add(ts, price, qty, price * qty, buys, trade_id)
        last_qty = qty
        if fold_now:
            fold()
    fold()
    return series, ticker


@settings(max_examples=300, deadline=None)
@given(trades=trades_strategy, start=st.integers(1_700_000_000_000, 1_700_000_000_000 + 86_400_000))
def test_a_second_merged_at_once_equals_its_trades_added_one_by_one(trades: list[Trade], start: int) -> None:
    series_a, ticker_a = _one_by_one(trades, start)
    series_b, ticker_b = _by_seconds(trades, start)
    for a, b in zip(series_a, series_b, strict=True):
        assert a.to_state() == b.to_state()
    assert ticker_a.to_state() == ticker_b.to_state()
    now = start + sum(gap for gap, *_ in trades)
    level = (0, 0)
    assert ticker_a.stats("M", now, level, level) == ticker_b.stats("M", now, level, level)
