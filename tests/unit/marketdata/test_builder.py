"""MarketData driven by the real engine through known command sequences."""

from __future__ import annotations

import json
import zlib

import orjson
import pytest

from tests.strategies import VECTORS_CONFIG
from tests.unit.marketdata.harness import (
    CONFIG,
    DAY0,
    KLINE_STREAMS,
    MINUTE,
    WINDOW_STREAMS,
    Exchange,
    cancel,
    limit,
    market_order,
    streams,
)
from tradewire.engine import Accepted, Canceled, ExchangeConfig, Expired, Trade, decode
from tradewire.keys import MDPUB
from tradewire.marketdata.builder import MarketData
from tradewire.marketdata.depth import InconsistentEvents
from tradewire.marketdata.klines import INTERVALS


def test_flush_with_nothing_applied_returns_no_ops() -> None:
    ex = Exchange()
    ex.fund()
    assert ex.flush() == []


def test_resting_order_writes_level_update_id_and_publishes_depth_streams() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "buy", "99.50", "0.5"), DAY0 + 5)
    ops = ex.flush()
    assert ops[:2] == [("HSET", "md:{BTC-USDT}:bids", "99.5", "0.5"), ("SET", "md:{BTC-USDT}:depth:u", 1)]
    assert streams(ops) == ["depth", "depth20", "bookTicker"]
    (diff,) = ex.cache.payloads("BTC-USDT", "depth")
    assert diff == {
        "e": "depthUpdate",
        "E": DAY0 + 5,
        "s": "BTCUSDT",
        "U": 1,
        "u": 1,
        "pu": 0,
        "b": [["99.5", "0.5"]],
        "a": [],
        "cs": zlib.crc32(b"99.5:0.5"),
    }
    assert ex.cache.payloads("BTC-USDT", "depth20") == [
        {"lastUpdateId": 1, "bids": [["99.5", "0.5"]], "asks": []}
    ]
    assert ex.cache.payloads("BTC-USDT", "bookTicker") == [
        {"u": 1, "s": "BTCUSDT", "b": "99.5", "B": "0.5", "a": "0", "A": "0"}
    ]
    assert orjson.loads(ex.cache.strings["md:{BTC-USDT}:bookTicker"]) == {
        "symbol": "BTCUSDT",
        "bidPrice": "99.5",
        "bidQty": "0.5",
        "askPrice": "0",
        "askQty": "0",
    }
    ticker = orjson.loads(ex.cache.strings["md:{BTC-USDT}:ticker"])
    assert ticker["bidPrice"] == "99.5" and ticker["count"] == 0 and ticker["firstId"] == -1


def test_commands_between_flushes_are_conflated_into_one_diff_with_their_update_ids() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "buy", "99", "1"), DAY0 + 1)
    ex.flush()
    ex.send(limit("alice", "buy", "98", "1"), DAY0 + 2)  # update 2: a new level
    ex.send(limit("bob", "sell", "101", "2"), DAY0 + 3)  # update 3
    ex.send(cancel("alice", 2), DAY0 + 4)  # update 4: the new level is gone again
    ex.send(limit("alice", "buy", "99", "0.25"), DAY0 + 5)  # update 5
    ex.send({"type": "deposit", "user": "dave", "asset": "BTC", "amount": "1"}, DAY0 + 6)  # no update
    ops = ex.flush()
    (diff,) = ex.cache.payloads("BTC-USDT", "depth")[1:]
    assert (diff["U"], diff["u"], diff["pu"], diff["E"]) == (2, 5, 1, DAY0 + 5)
    assert diff["b"] == [["99", "1.25"], ["98", "0.00000000"]]  # 98 came and went: still listed, as gone
    assert diff["a"] == [["101", "2"]]
    assert ("SET", "md:{BTC-USDT}:depth:u", 5) in ops
    assert ex.cache.hashes["md:{BTC-USDT}:bids"] == {"99": "1.25"}


def test_level_that_moves_and_comes_back_is_listed_for_snapshots_taken_in_between() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "buy", "99", "1"), DAY0)
    ex.flush()
    ex.send(limit("alice", "buy", "99", "1"), DAY0 + 1)
    ex.send(cancel("alice", 2), DAY0 + 2)
    ops = ex.flush()
    (diff,) = ex.cache.payloads("BTC-USDT", "depth")[1:]
    assert (diff["U"], diff["u"], diff["b"], diff["a"]) == (2, 3, [["99", "1"]], [])
    assert streams(ops) == ["depth"]  # top 20 and best unchanged


def test_trade_takes_maker_level_and_publishes_trade_kline_and_tickers() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)
    ex.send(limit("alice", "sell", "101", "1"), DAY0 + 11)
    ex.flush()
    events = ex.send(market_order("bob", "buy", "1.5"), DAY0 + 70_000)
    assert [type(e) for e in events] == [Accepted, Trade, Trade]
    ops = ex.flush()
    assert ex.cache.hashes["md:{BTC-USDT}:asks"] == {"101": "0.5"}
    assert ("HDEL", "md:{BTC-USDT}:asks", "100") in ops
    trades = ex.cache.payloads("BTC-USDT", "trade")
    assert trades == [
        {
            "e": "trade",
            "E": DAY0 + 70_000,
            "s": "BTCUSDT",
            "t": 1,
            "p": "100",
            "q": "1",
            "T": DAY0 + 70_000,
            "m": False,
            "M": True,
        },
        {
            "e": "trade",
            "E": DAY0 + 70_000,
            "s": "BTCUSDT",
            "t": 2,
            "p": "101",
            "q": "0.5",
            "T": DAY0 + 70_000,
            "m": False,
            "M": True,
        },
    ]
    rest = [orjson.loads(t) for t in ex.cache.lists["md:{BTC-USDT}:trades"]]
    assert [t["id"] for t in rest] == [2, 1]  # newest first
    assert rest[0] == {
        "id": 2,
        "price": "101",
        "qty": "0.5",
        "quoteQty": "50.5",
        "time": DAY0 + 70_000,
        "isBuyerMaker": False,
        "isBestMatch": True,
    }
    (kline,) = ex.cache.payloads("BTC-USDT", "kline_1m")
    k = kline["k"]
    assert (kline["e"], kline["E"], k["i"], k["t"], k["T"], k["x"]) == (
        "kline",
        DAY0 + 70_000,
        "1m",
        DAY0 + 60_000,
        DAY0 + 119_999,
        False,
    )
    assert (k["o"], k["h"], k["l"], k["c"], k["v"], k["q"], k["V"], k["Q"], k["n"], k["f"], k["L"]) == (
        "100",
        "101",
        "100",
        "101",
        "1.5",
        "150.5",
        "1.5",
        "150.5",
        2,
        1,
        2,
    )
    (row,) = ex.cache.klines("md:{BTC-USDT}:klines:1d")
    assert row == [
        DAY0,
        "100",
        "101",
        "100",
        "101",
        "1.5",
        DAY0 + 86_399_999,
        "150.5",
        2,
        "1.5",
        "150.5",
        "0",
    ]
    (ticker,) = ex.cache.payloads("BTC-USDT", "ticker")
    assert (ticker["c"], ticker["o"], ticker["h"], ticker["l"], ticker["v"], ticker["q"], ticker["n"]) == (
        "101",
        "100",
        "101",
        "100",
        "1.5",
        "150.5",
        2,
    )
    assert (ticker["F"], ticker["L"], ticker["Q"], ticker["p"], ticker["P"], ticker["w"]) == (
        1,
        2,
        "0.5",
        "1",
        "1.000",
        "100.333333",
    )
    assert (ticker["a"], ticker["A"], ticker["b"], ticker["B"]) == ("101", "0.5", "0", "0")
    (mini,) = ex.cache.payloads("BTC-USDT", "miniTicker")
    assert mini == {
        "e": "24hrMiniTicker",
        "E": DAY0 + 70_000,
        "s": "BTCUSDT",
        "c": "101",
        "o": "100",
        "h": "101",
        "l": "100",
        "v": "1.5",
        "q": "150.5",
    }


def test_flush_without_slow_holds_the_bars_but_writes_depth_trades_best_and_ticker_at_once() -> None:
    """Depth, trades and the best bid/ask (cache and streams) and the ticker's cache go out at once:
    a REST read after an order's answer sees its trade, the book it left and the last price. The
    bars (cache writes and publications) and the ticker's publications wait for a slow flush, which
    writes and publishes each as it stands then: the latest version of each bar, once."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)
    ex.flush()
    ex.send(limit("bob", "buy", "100", "0.4"), DAY0 + 20)  # trades 0.4 at 100
    assert streams(ex.flush(slow=False)) == ["depth", "bookTicker", "trade"]
    ex.send(limit("bob", "buy", "100", "0.1"), DAY0 + 30)
    held = ex.flush(slow=False)
    assert streams(held) == ["depth", "bookTicker", "trade"]
    assert not [op for op in held if "klines" in str(op[1])]
    assert len(ex.cache.lists["md:{BTC-USDT}:trades"]) == 2, "trades are cached at once"
    assert orjson.loads(ex.cache.strings["md:{BTC-USDT}:ticker"])["count"] == 2, "and the ticker"
    assert ex.cache.klines("md:{BTC-USDT}:klines:1m") == [], "bars wait for the slow flush"
    assert ex.md.holds()
    published = ex.flush()
    assert not ex.md.holds()
    held = ["depth20", *KLINE_STREAMS, "ticker", "miniTicker", "avgPrice", *WINDOW_STREAMS]
    assert sorted(streams(published)) == sorted(held)
    [bar] = ex.cache.klines("md:{BTC-USDT}:klines:1m")
    assert (bar[5], bar[8]) == ("0.5", 2), "the cache has both trades, in one write"
    assert sum(1 for op in published if op[0] == "ZADD" and op[1] == "md:{BTC-USDT}:klines:1m") == 1
    [kline] = ex.cache.payloads("BTC-USDT", "kline_1m")
    assert (kline["k"]["v"], kline["k"]["n"]) == ("0.5", 2)
    [ticker] = ex.cache.payloads("BTC-USDT", "ticker")
    assert ticker["n"] == 2
    assert ex.flush() == [], "nothing written or published twice"


def test_a_batch_that_closes_a_bar_enters_a_new_slot_so_closed_bars_are_never_held() -> None:
    """A bar closes when exchange time enters a new second, and every second starts a slot of
    ``SLOW_STREAMS_MS``: the engine's batch that closes it flushes with ``slow``. So only the open
    bars' writes can be waiting when an engine stops (``refresh`` writes them again)."""
    from tradewire.marketdata.builder import SLOW_STREAMS_MS
    from tradewire.marketdata.klines import SECOND

    assert SECOND % SLOW_STREAMS_MS == 0
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "3"), DAY0 + 10)
    ex.send(limit("bob", "buy", "100", "1"), DAY0 + 20)
    ex.flush(slow=False)
    ex.send(limit("bob", "buy", "100", "1"), DAY0 + SECOND + 5)  # closes the 1s bar of DAY0
    ops = ex.flush(slow=(DAY0 + SECOND + 5) // SLOW_STREAMS_MS != (DAY0 + 20) // SLOW_STREAMS_MS)
    assert [k[0] for k in ex.cache.klines("md:{BTC-USDT}:klines:1s")] == [DAY0, DAY0 + SECOND]
    assert any(op[0] == MDPUB and op[2] == "kline_1s" for op in ops)


def test_refresh_publishes_the_partial_book_last_closed_and_open_bars_and_the_ticker_again() -> None:
    """What the engine asks for after a recovery: the publications a stopped engine held back."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "3"), DAY0 + 10)  # 1 stays in the book
    ex.send(limit("bob", "buy", "100", "1"), DAY0 + 20)
    ex.flush()
    ex.send(limit("bob", "buy", "100", "1"), DAY0 + MINUTE + 5)  # closes the first 1m bar
    ex.flush()
    ex.md.refresh()
    ops = ex.flush()
    written = {op[1] for op in ops if op[0] != MDPUB}
    assert written == {f"md:{{BTC-USDT}}:klines:{iv}" for iv in [*INTERVALS, "last"]}, (
        "the bars written again (a stopped engine may have held their writes) and the last trade "
        "they count, nothing else"
    )
    minute = [orjson.loads(op[3])["k"] for op in ops if op[0] == MDPUB and op[2] == "kline_1m"]
    assert [(k["t"], k["x"]) for k in minute] == [(DAY0, True), (DAY0 + MINUTE, False)]
    assert {"depth20", "ticker", "miniTicker"} <= set(streams(ops))


def test_refresh_publishes_no_ticker_for_a_market_that_never_traded() -> None:
    """After a recovery the engine publishes every market's ticker once more: not a ticker of zeros
    (last price 0) for a market without a trade, which never had one published. Its partial book
    is published again (it has a book)."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)  # rests: a book, no trade
    ex.flush()
    ex.md.refresh()
    assert streams(ex.flush()) == ["depth20"]
    assert not ex.md.holds()


def test_refresh_publishes_an_emptied_partial_book_that_a_stopped_engine_held_back() -> None:
    """The book empties in a batch that holds its ``depth20`` (same 100-ms slot), and the engine
    stops before it publishes it. Recovery (snapshot, silent replay, settle, refresh) must publish
    the empty partial book: else ``@depth5/10/20`` subscribers keep the ask that is gone, with no
    later publication to set it right until the book moves again."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)
    ex.flush()
    assert ex.cache.payloads("BTC-USDT", "depth20")[-1]["asks"] == [["100", "1"]]
    ex.send(cancel("alice", 1), DAY0 + 20)
    assert streams(ex.flush(slow=False)) == ["depth", "bookTicker"]  # depth20 held
    assert ex.md.holds()
    # the engine stops here; it recovers from a snapshot taken after that batch
    recovered = ex.recovered(ex.md.to_state(), [])
    ops = recovered.flush()
    ex.cache.run(ops)
    assert ex.cache.payloads("BTC-USDT", "depth20")[-1] == {"lastUpdateId": 2, "bids": [], "asks": []}
    assert not recovered.holds()
    assert recovered.flush() == [], "published once"


def test_refresh_after_a_failed_tick_publishes_the_emptied_partial_book_again() -> None:
    """A tick that fails is followed by ``refresh()``: whatever it carried is published again, an
    empty partial book too."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)
    ex.flush()
    ex.send(cancel("alice", 1), DAY0 + 20)
    ex.flush(slow=False)
    tick = ex.md.flush()  # the tick's transaction, which fails: never applied to the cache
    assert streams(tick) == ["depth20"]
    ex.md.refresh()
    ex.flush()
    assert ex.cache.payloads("BTC-USDT", "depth20")[-1] == {"lastUpdateId": 2, "bids": [], "asks": []}


def test_crossing_limit_rests_only_what_it_did_not_take() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(limit("bob", "buy", "100.5", "3"), DAY0 + 1)
    assert ex.md.depth_snapshot("BTC-USDT").bids == [(100_500_000, 200_000_000)]
    assert ex.md.depth_snapshot("BTC-USDT").asks == []
    ex.flush()
    assert ex.cache.payloads("BTC-USDT", "trade")[0]["m"] is False


def test_fully_filled_crossing_limit_and_ioc_leave_nothing_resting() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "buy", "100", "2"), DAY0)
    ex.send(limit("bob", "sell", "99", "1"), DAY0)
    ex.send(limit("bob", "sell", "98", "5", tif="IOC"), DAY0)
    snap = ex.md.depth_snapshot("BTC-USDT")
    assert (snap.last_update_id, snap.bids, snap.asks) == (3, [], [])
    ex.flush()
    assert [t["m"] for t in ex.cache.payloads("BTC-USDT", "trade")] == [True, True]


def test_self_trade_expire_taker_leaves_the_taker_out_of_the_book() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("bob", "sell", "100", "1"), DAY0)
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    events = ex.send(limit("alice", "buy", "100", "3", stp="expire_taker"), DAY0)
    assert [type(e) for e in events] == [Accepted, Trade, Expired]
    snap = ex.md.depth_snapshot("BTC-USDT")
    assert (snap.bids, snap.asks) == ([], [(100_000_000, 100_000_000)])


def test_self_trade_expire_maker_cancels_the_maker_and_rests_the_rest() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(limit("bob", "sell", "100", "1"), DAY0)
    events = ex.send(limit("alice", "buy", "100", "3", stp="expire_maker"), DAY0)
    assert [type(e) for e in events] == [Accepted, Canceled, Trade]
    snap = ex.md.depth_snapshot("BTC-USDT")
    assert (snap.bids, snap.asks) == ([(100_000_000, 200_000_000)], [])


def test_rejected_orders_change_nothing() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("nobody", "buy", "100", "1"), DAY0)
    ex.send(limit("alice", "buy", "100", "1", market="NOPE-USDT"), DAY0)
    assert ex.flush() == []


def test_time_never_runs_backwards() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 50_000)
    ex.send(market_order("bob", "buy", "0.5"), DAY0 + 40_000)  # a gateway whose clock is behind
    assert ex.md.ts == DAY0 + 50_000
    ex.flush()
    (trade,) = ex.cache.payloads("BTC-USDT", "trade")
    assert trade["T"] == DAY0 + 50_000
    assert ex.cache.payloads("BTC-USDT", "depth")[-1]["E"] == DAY0 + 50_000


def test_bar_closes_when_a_later_command_of_any_market_enters_a_new_minute() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 1_000)
    ex.flush()
    ex.send(limit("alice", "sell", "20", "1", market="ETH-USDT"), DAY0 + 61_000)
    ops = ex.flush()
    closed, opened = ex.cache.payloads("BTC-USDT", "kline_1m")[-2:]
    assert closed["k"]["x"] is True and closed["E"] == DAY0 + 61_000 and closed["k"]["t"] == DAY0
    # the next minute opens flat at the last close, as Binance's bars without trades
    assert opened["k"]["t"] == DAY0 + MINUTE and opened["k"]["x"] is False
    assert [opened["k"][f] for f in "ohlc"] == [closed["k"]["c"]] * 4
    assert (opened["k"]["v"], opened["k"]["n"], opened["k"]["f"], opened["k"]["L"]) == ("0", 0, -1, -1)
    assert "kline_5m" not in streams(ops)  # the 5m bar is still open and did not change
    assert ex.cache.klines("md:{BTC-USDT}:klines:1m")[0][0] == DAY0
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 62_000)
    ex.flush()
    rows = ex.cache.klines("md:{BTC-USDT}:klines:1m")
    assert [r[0] for r in rows] == [DAY0, DAY0 + MINUTE]
    assert rows[1][8] == 1  # the flat bar took its first trade: one bar, not two
    assert len(ex.cache.klines("md:{BTC-USDT}:klines:5m")) == 1


def test_intervals_without_trades_are_flat_bars_in_the_cache_and_only_the_last_is_published() -> None:
    """Binance's bars are continuous: a minute without trades is a bar (open = high = low = close =
    the last close, no volume), which charts and indicators count; tradewire left a gap."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 1_000)
    ex.flush()
    ex.send(limit("alice", "sell", "20", "1", market="ETH-USDT"), DAY0 + 5 * MINUTE + 1)
    ex.flush()
    rows = ex.cache.klines("md:{BTC-USDT}:klines:1m")
    assert [r[0] for r in rows] == [DAY0 + i * MINUTE for i in range(6)]
    traded, *flat = rows
    assert traded[8] == 1 and all(r[8] == 0 and r[5] == "0" for r in flat)
    assert all(r[1] == r[2] == r[3] == r[4] == traded[4] for r in flat)
    published = [p["k"] for p in ex.cache.payloads("BTC-USDT", "kline_1m")]
    # the traded bar's close, the last flat bar closed, the one now open: not each minute between
    assert [(k["t"], k["x"]) for k in published[-3:]] == [
        (DAY0, True),
        (DAY0 + 4 * MINUTE, True),
        (DAY0 + 5 * MINUTE, False),
    ]
    assert (DAY0 + 2 * MINUTE, True) not in [(k["t"], k["x"]) for k in published]


def test_empty_command_advances_time_and_ticker_window() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 1_000)
    ex.flush()
    ex.md.apply([], DAY0 + 86_400_000 + MINUTE)
    ops = ex.flush()
    longer = ("kline_3d", "kline_1w", "kline_1M")  # their bars of DAY0 are still open a day later
    closed = [stream for stream in KLINE_STREAMS if stream not in longer]
    # each: the bar of DAY0 closed, the last flat bar between closed (1d has none), the flat bar now open
    assert list(dict.fromkeys(streams(ops))) == [*closed, "ticker", "miniTicker", *WINDOW_STREAMS]
    published = [orjson.loads(p)["k"] for m, s, p in ex.cache.published if (m, s) == ("BTC-USDT", "kline_1h")]
    assert [(k["t"], k["x"], k["n"]) for k in published[-3:]] == [
        (DAY0, True, 1),
        (DAY0 + 86_400_000 - 3_600_000, True, 0),
        (DAY0 + 86_400_000, False, 0),
    ]
    ticker = ex.cache.payloads("BTC-USDT", "ticker")[-1]
    assert (ticker["n"], ticker["v"], ticker["c"], ticker["o"], ticker["x"], ticker["F"]) == (
        0,
        "0",
        "100",
        "100",
        "100",
        -1,
    )
    assert ex.md.flush() == []


def test_events_from_another_book_raise_inconsistent_events() -> None:
    ex = Exchange()
    ex.fund()
    other = Exchange()
    other.fund()
    other.send(limit("alice", "buy", "99", "1"), DAY0)
    events = other.send(cancel("alice", 1), DAY0)
    with pytest.raises(InconsistentEvents):
        ex.md.apply(events, DAY0)


def test_state_round_trip_continues_exactly_like_the_original() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 1_000)
    ex.flush()
    ex.send(limit("alice", "buy", "99", "1"), DAY0 + 2_000)
    ex.send(market_order("bob", "sell", "0.5"), DAY0 + 3_000)  # unflushed when the state is taken
    restored = MarketData.from_state(ex.md.config, ex.md.to_state())
    assert restored.to_state() == ex.md.to_state()
    assert restored.flush() == ex.md.flush()


def test_state_of_another_version_is_refused() -> None:
    import msgspec

    from tradewire.marketdata.builder import BuilderState

    data = msgspec.msgpack.encode(BuilderState(99, 0, 0, []))
    with pytest.raises(ValueError, match="version 99"):
        MarketData.from_state(Exchange().md.config, data)


def test_events_of_two_commands_in_two_markets_in_one_apply_update_each_market() -> None:
    ex = Exchange()
    ex.fund()
    btc = ex.engine.apply(decode(json.dumps(limit("alice", "buy", "99", "1"))))
    eth = ex.engine.apply(decode(json.dumps(limit("alice", "sell", "20", "1", market="ETH-USDT"))))
    ex.md.apply([*btc, *eth], DAY0)
    ops = ex.flush()
    assert ("SET", "md:{BTC-USDT}:depth:u", 1) in ops
    assert ("SET", "md:{ETH-USDT}:depth:u", 1) in ops
    assert ex.md.depth_snapshot("ETH-USDT").asks == [(20_000_000, 100_000_000)]


def test_restored_state_keeps_known_markets_drops_removed_and_adds_new_ones() -> None:
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "buy", "99", "1"), DAY0)
    ex.send(limit("alice", "sell", "20", "1", market="ETH-USDT"), DAY0)
    ex.flush()
    raw = json.loads(json.dumps(VECTORS_CONFIG))
    del raw["markets"]["ETH-USDT"]
    raw["markets"]["ETH-BTC"] = {"base": "ETH", "quote": "BTC", "tick_size": "0.0001", "lot_size": "0.001"}
    config = ExchangeConfig.from_dict(raw)
    restored = MarketData.from_state(config, ex.md.to_state())
    assert restored.depth_snapshot("BTC-USDT") == ex.md.depth_snapshot("BTC-USDT")
    assert restored.depth_snapshot("ETH-BTC") == (0, [], [])
    with pytest.raises(KeyError):
        restored.depth_snapshot("ETH-USDT")


def test_kline_cache_is_trimmed_only_when_a_bar_begins_and_never_passes_its_history() -> None:
    from tradewire.marketdata.klines import KLINE_HISTORY, SECOND

    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "100"), DAY0)
    ex.flush()
    key = "md:{BTC-USDT}:klines:1s"
    trims = 0
    for second in range(1, KLINE_HISTORY + 4):
        ts = DAY0 + second * SECOND
        ex.send(market_order("bob", "buy", "0.01"), ts)
        begun = [op for op in ex.flush() if op[0] == "ZREMRANGEBYRANK" and op[1] == key]
        ex.send(market_order("bob", "buy", "0.01"), ts + 1)  # the same bar again: nothing new to trim
        again = [op for op in ex.flush() if op[0] == "ZREMRANGEBYRANK" and op[1] == key]
        assert len(begun) == 1 and again == [], second
        trims += len(begun)
    assert trims == KLINE_HISTORY + 3
    rows = ex.cache.klines(key)
    assert len(rows) == KLINE_HISTORY  # the oldest three bars went, the newest is the open one
    assert rows[-1][0] == DAY0 + (KLINE_HISTORY + 3) * SECOND and rows[0][0] == DAY0 + 4 * SECOND


def test_the_1m_cache_keeps_seven_days_and_an_hour_of_bars_for_the_rolling_window_ticker() -> None:
    """``GET /api/v3/ticker`` with windowSize 1d..7d reads the 1m bars of the window's first partial
    hour, up to 7 days and an hour old: a market trading every minute has that many bars there."""
    from tradewire.marketdata.klines import BARS_KEPT, KLINE_HISTORY, MINUTE_BARS_KEPT

    assert MINUTE_BARS_KEPT >= 7 * 24 * 60 + 60
    assert {kept for interval, kept in BARS_KEPT.items() if interval != "1m"} == {KLINE_HISTORY}
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "100"), DAY0)
    ex.send(market_order("bob", "buy", "0.01"), DAY0 + 1)
    trims = [op for op in ex.flush() if op[0] == "ZREMRANGEBYRANK" and op[1] == "md:{BTC-USDT}:klines:1m"]
    assert trims == [("ZREMRANGEBYRANK", "md:{BTC-USDT}:klines:1m", 0, -MINUTE_BARS_KEPT - 1)]


def test_state_taken_when_a_bar_began_and_before_its_flush_still_trims_after_restore() -> None:
    from tradewire.marketdata.klines import MINUTE_BARS_KEPT

    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 1_000)
    ex.flush()
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 2 * MINUTE)  # a new 1m bar, unflushed
    restored = MarketData.from_state(ex.md.config, ex.md.to_state())
    ops = restored.flush()
    assert ops == ex.md.flush()
    assert ("ZREMRANGEBYRANK", "md:{BTC-USDT}:klines:1m", 0, -MINUTE_BARS_KEPT - 1) in ops


def test_state_from_before_the_new_intervals_keeps_its_bars_and_starts_the_new_ones_empty() -> None:
    """A snapshot of an engine that had six intervals (and counted time by the minute): the six
    continue with their bars, the others begin with the next trade."""
    import msgspec

    from tradewire.marketdata.builder import BuilderState

    old = ("1m", "5m", "15m", "1h", "4h", "1d")
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "10"), DAY0)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 1_500)
    ex.flush(slow=False)  # bars held, as a batch between two 100-ms slots leaves them
    state = msgspec.msgpack.decode(ex.md.to_state(), type=BuilderState)
    state.next_second = DAY0 + MINUTE
    for market in state.markets:
        pairs = [(s, h) for s, h in zip(market.series, market.held_bars, strict=True) if s.interval in old]
        market.series, market.held_bars = [s for s, _ in pairs], [h for _, h in pairs]
    restored = MarketData.from_state(CONFIG, msgspec.msgpack.encode(state))
    ex.md = restored
    ops = ex.flush()
    held = ["depth20", *(f"kline_{interval}" for interval in old), "ticker", "miniTicker", "avgPrice"]
    held += WINDOW_STREAMS
    assert sorted(streams(ops)) == sorted(held)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 2_500)  # a new second: the 1s bar of 1.5 s closed
    ex.flush()
    bars = {stream: ex.cache.payloads("BTC-USDT", stream) for stream in KLINE_STREAMS}
    assert [b["k"]["n"] for b in bars["kline_1m"]] == [1, 2]  # the old intervals go on counting
    assert [b["k"]["n"] for b in bars["kline_1s"]] == [1]  # the new ones begin now
    assert [b["k"]["n"] for b in bars["kline_1w"]] == [1]


def test_the_builders_state_holds_one_closed_bar_per_interval_however_long_it_ran() -> None:
    """The kline history that REST reads is Redis's cache; the builder reads only its last closed
    bar (to publish it again after a recovery). Holding 1,000 bars of sixteen intervals per market
    made every snapshot carry them, written and decoded at each snapshot and recovery."""
    import msgspec

    from tradewire.marketdata.builder import BuilderState

    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "100"), DAY0)
    for minute in range(30):
        ex.send(market_order("bob", "buy", "0.01"), DAY0 + minute * MINUTE)
        ex.flush()
    state = msgspec.msgpack.decode(ex.md.to_state(), type=BuilderState)
    assert max(len(series.history) for market in state.markets for series in market.series) == 1
    ex.md = MarketData.from_state(ex.md.config, ex.md.to_state())
    ex.md.refresh()
    minute = [orjson.loads(op[3])["k"] for op in ex.flush() if op[2] == "kline_1m"]
    assert [(k["t"], k["x"]) for k in minute] == [(DAY0 + 28 * MINUTE, True), (DAY0 + 29 * MINUTE, False)]


def test_the_bars_are_written_with_the_last_trade_they_count() -> None:
    """``md:{M}:klines:last`` goes with the bars (held with them between slots): the rolling-window
    ticker counts its trades up to that id, and REST ``avgPrice`` takes that time as its
    ``closeTime``, not the trades list's newest."""
    ex = Exchange()
    ex.fund()
    ex.send(limit("alice", "sell", "100", "1"), DAY0 + 10)
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 20)
    ex.flush()
    assert ex.cache.strings["md:{BTC-USDT}:klines:last"] == f"1:{DAY0 + 20}"
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 30)
    held = ex.flush(slow=False)
    assert not [op for op in held if "klines" in str(op[1])], "bars and their last trade wait together"
    assert ex.cache.strings["md:{BTC-USDT}:klines:last"] == f"1:{DAY0 + 20}"
    ex.flush()
    assert ex.cache.strings["md:{BTC-USDT}:klines:last"] == f"2:{DAY0 + 30}"
    restored = MarketData.from_state(CONFIG, ex.md.to_state())
    ex.md = restored
    ex.send(market_order("bob", "buy", "0.25"), DAY0 + 40)
    ex.flush()
    assert ex.cache.strings["md:{BTC-USDT}:klines:last"] == f"3:{DAY0 + 40}"
