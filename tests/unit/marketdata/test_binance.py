"""Binance spot payloads: the field names and JSON types Binance clients parse, and symbol mapping."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradewire.engine import decimals as text
from tradewire.marketdata.binance import BinanceRenderer, market_of_symbol, symbol_of, symbol_table
from tradewire.marketdata.updates import (
    BookTickerUpdate,
    DepthSnapshot,
    DepthUpdate,
    Kline,
    KlineUpdate,
    TickerUpdate,
    TradeUpdate,
    mini_ticker,
)

RENDER = BinanceRenderer("BTC-USDT", 8, 6)
KLINE = Kline(
    60_000,
    119_999,
    100_000_000,
    110_000_000,
    90_000_000,
    105_000_000,
    150_000_000,
    157_500_000,
    3,
    50_000_000,
    52_500_000,
    4,
    6,
    True,
)
TICKER = TickerUpdate(
    "BTC-USDT", "ticker", 200_000, 100, 200_000, 105_000_000, 1_000_000, 100_000_000, 110_000_000,
    90_000_000, 99_000_000, 5_000_000, "5.000", 101_234_567, 150_000_000, 151_851_850, 3, 4, 6,
    104_000_000, 20_000_000, 106_000_000, 30_000_000,
)  # fmt: skip


def test_symbol_is_base_and_quote_and_maps_back_in_any_case() -> None:
    assert symbol_of("BTC-USDT") == "BTCUSDT"
    assert market_of_symbol("BTCUSDT", ["ETH-USDT", "BTC-USDT"]) == "BTC-USDT"
    assert market_of_symbol("ethusdt", ["ETH-USDT", "BTC-USDT"]) == "ETH-USDT"
    assert market_of_symbol("DOGEUSDT", ["ETH-USDT", "BTC-USDT"]) is None
    assert symbol_table(["ETH-USDT", "BTC-USDT"]) == {"ETHUSDT": "ETH-USDT", "BTCUSDT": "BTC-USDT"}


def test_depth_update_has_binance_fields_plus_pu_and_cs() -> None:
    diff = DepthUpdate("BTC-USDT", "depth", 5, 3, 4, 2, [(100_500_000, 30_000_000)], [(101_000_000, 0)], 77)
    assert orjson.loads(RENDER.depth_update(diff)) == {
        "e": "depthUpdate", "E": 5, "s": "BTCUSDT", "U": 3, "u": 4, "pu": 2,
        "b": [["100.5", "0.3"]], "a": [["101", "0.00000000"]], "cs": 77,
    }  # fmt: skip


def test_partial_depth_is_the_rest_depth_shape() -> None:
    snapshot = DepthSnapshot(9, [(100_000_000, 1)], [])
    assert orjson.loads(RENDER.partial_depth(snapshot)) == {
        "lastUpdateId": 9,
        "bids": [["100", "0.00000001"]],
        "asks": [],
    }


def test_trade_stream_and_rest_item() -> None:
    trade = TradeUpdate("BTC-USDT", "trade", 12, 100_250_000, 10_000_000, 10_025_000, 777, True, 3, 4)
    assert orjson.loads(RENDER.trade(trade)) == {
        "e": "trade", "E": 777, "s": "BTCUSDT", "t": 12, "p": "100.25", "q": "0.1", "T": 777,
        "m": True, "M": True,
    }  # fmt: skip
    assert orjson.loads(RENDER.trade_rest(trade)) == {
        "id": 12, "price": "100.25", "qty": "0.1", "quoteQty": "10.025", "time": 777,
        "isBuyerMaker": True, "isBestMatch": True,
    }  # fmt: skip


def test_kline_stream_and_rest_array() -> None:
    payload = orjson.loads(RENDER.kline(KlineUpdate("BTC-USDT", "kline_1m", "1m", 120_000, KLINE)))
    assert payload == {
        "e": "kline",
        "E": 120_000,
        "s": "BTCUSDT",
        "k": {
            "t": 60_000, "T": 119_999, "s": "BTCUSDT", "i": "1m", "f": 4, "L": 6, "o": "100", "c": "105",
            "h": "110", "l": "90", "v": "1.5", "n": 3, "x": True, "q": "157.5", "V": "0.5", "Q": "52.5",
            "B": "0",
        },
    }  # fmt: skip
    assert orjson.loads(RENDER.kline_rest(KLINE)) == [
        60_000, "100", "110", "90", "105", "1.5", 119_999, "157.5", 3, "0.5", "52.5", "0",
    ]  # fmt: skip


def test_ticker_stream_rest_and_mini_ticker() -> None:
    assert orjson.loads(RENDER.ticker(TICKER)) == {
        "e": "24hrTicker", "E": 200_000, "s": "BTCUSDT", "p": "5", "P": "5.000", "w": "101.234567",
        "x": "99", "c": "105", "Q": "0.01", "b": "104", "B": "0.2", "a": "106", "A": "0.3", "o": "100",
        "h": "110", "l": "90", "v": "1.5", "q": "151.85185", "O": 100, "C": 200_000, "F": 4, "L": 6, "n": 3,
    }  # fmt: skip
    assert orjson.loads(RENDER.ticker_rest(TICKER)) == {
        "symbol": "BTCUSDT", "priceChange": "5", "priceChangePercent": "5.000",
        "weightedAvgPrice": "101.234567", "prevClosePrice": "99", "lastPrice": "105", "lastQty": "0.01",
        "bidPrice": "104", "bidQty": "0.2", "askPrice": "106", "askQty": "0.3", "openPrice": "100",
        "highPrice": "110", "lowPrice": "90", "volume": "1.5", "quoteVolume": "151.85185",
        "openTime": 100, "closeTime": 200_000, "firstId": 4, "lastId": 6, "count": 3,
    }  # fmt: skip
    assert orjson.loads(RENDER.mini_ticker(mini_ticker(TICKER))) == {
        "e": "24hrMiniTicker", "E": 200_000, "s": "BTCUSDT", "c": "105", "o": "100", "h": "110", "l": "90",
        "v": "1.5", "q": "151.85185",
    }  # fmt: skip


def test_price_change_below_zero_is_signed_text() -> None:
    assert RENDER.price(-1_500_000) == "-1.5"


def test_book_ticker_stream_and_rest() -> None:
    book = BookTickerUpdate("BTC-USDT", "bookTicker", 5, 42, 99_000_000, 100_000_000, 0, 0)
    assert orjson.loads(RENDER.book_ticker(book)) == {
        "u": 42, "s": "BTCUSDT", "b": "99", "B": "1", "a": "0", "A": "0",
    }  # fmt: skip
    assert orjson.loads(RENDER.book_ticker_rest(book)) == {
        "symbol": "BTCUSDT", "bidPrice": "99", "bidQty": "1", "askPrice": "0", "askQty": "0",
    }  # fmt: skip


def test_text_table_starts_over_when_full_and_still_answers_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "_CACHE_LIMIT", 2)
    table = text.Texts(2)
    assert [table[units] for units in (150, 7, -3, 100)] == ["1.5", "0.07", "-0.03", "1"]
    assert len(table) <= 2
    assert text.texts(2) is text.texts(2)


@given(
    st.integers(min_value=0, max_value=2**64 - 1),  # orjson's range, for the reference bytes
    st.integers(min_value=-(2**64), max_value=2**70),
    st.integers(min_value=0, max_value=2**70),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.booleans(),
    st.sampled_from(["BTC-USDT", "É-USDT"]),
)
def test_trades_spliced_as_text_are_orjsons_bytes_of_the_dicts(
    trade_id: int, price: int, qty: int, ts: int, maker: bool, market: str
) -> None:
    render = BinanceRenderer(market, 8, 2)
    trade = TradeUpdate(market, "trade", trade_id, price, qty, price * 3, ts, maker, 1, 2)
    symbol = market.replace("-", "")
    assert render.trade(trade) == orjson.dumps(
        {"e": "trade", "E": ts, "s": symbol, "t": trade_id, "p": render.price(price), "q": render.qty(qty),
         "T": ts, "m": maker, "M": True}
    )  # fmt: skip
    assert render.trade_rest(trade) == orjson.dumps(
        {"id": trade_id, "price": render.price(price), "qty": render.qty(qty),
         "quoteQty": render.price(price * 3), "time": ts, "isBuyerMaker": maker, "isBestMatch": True}
    )  # fmt: skip
