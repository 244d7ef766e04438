"""Frames built by concatenation, and Binance stream names mapped to channels."""

from __future__ import annotations

import orjson
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from tradewire.gateway.frames import batch, close_frame, combined, frame
from tradewire.gateway.streams import Stream, StreamError, parse_stream, parse_streams, symbol_table

SYMBOLS = symbol_table(["BTC-USDT", "ETH-USDT"])


def _parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        parsed: Frame = done.value
        return parsed
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_frame_with_any_payload_size_parses_back_to_the_payload(size: int) -> None:
    payload = b"x" * size
    parsed = _parse(frame(payload))
    assert parsed.opcode is Opcode.TEXT and parsed.fin and bytes(parsed.data) == payload


def test_close_frame_with_long_reason_is_cut_to_a_valid_control_frame() -> None:
    parsed = _parse(close_frame(4000, "x" * 500))
    assert parsed.opcode is Opcode.CLOSE and len(parsed.data) == 125
    assert int.from_bytes(parsed.data[:2], "big") == 4000


def test_combined_and_batch_envelopes_are_valid_json() -> None:
    payload = b'{"e":"trade","t":1}'
    assert orjson.loads(combined(b"btcusdt@trade", payload)) == {
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "t": 1},
    }
    assert orjson.loads(batch([payload, payload])) == [{"e": "trade", "t": 1}] * 2


@pytest.mark.parametrize(
    ("name", "channel", "levels"),
    [
        ("btcusdt@depth", "depth", 0),
        ("BTCUSDT@depth@100ms", "depth", 0),
        ("btcusdt@depth5", "depth20", 5),
        ("btcusdt@depth10@100ms", "depth20", 10),
        ("ethusdt@depth20@1000ms", "depth20", 20),
        ("btcusdt@trade", "trade", 0),
        ("btcusdt@kline_1m", "kline_1m", 0),
        ("btcusdt@kline_4h", "kline_4h", 0),
        ("btcusdt@kline_1s", "kline_1s", 0),
        ("btcusdt@kline_3m", "kline_3m", 0),
        ("btcusdt@kline_12h", "kline_12h", 0),
        ("btcusdt@kline_3d", "kline_3d", 0),
        ("btcusdt@kline_1w", "kline_1w", 0),
        ("btcusdt@kline_1M", "kline_1M", 0),
        ("btcusdt@ticker", "ticker", 0),
        ("btcusdt@miniTicker", "miniTicker", 0),
        ("btcusdt@bookTicker", "bookTicker", 0),
        ("btcusdt@aggTrade", "trade", 0),
        ("btcusdt@avgPrice", "avgPrice", 0),
        ("btcusdt@ticker_1h", "ticker_1h", 0),
        ("btcusdt@ticker_4h", "ticker_4h", 0),
        ("btcusdt@ticker_1d", "ticker_1d", 0),
    ],
)
def test_parse_stream_with_binance_name_maps_to_channel(name: str, channel: str, levels: int) -> None:
    stream = parse_stream(name, SYMBOLS)
    assert stream.channel == channel and stream.levels == levels and stream.name == name
    assert stream.market in ("BTC-USDT", "ETH-USDT")


@pytest.mark.parametrize(
    "name",
    ["btcusdt", "dogeusdt@trade", "btcusdt@depth7", "btcusdt@kline_2m", "btcusdt@trade@100ms",
     "btcusdt@depth@10ms", "btcusdt@aggTrade@100ms", "@trade", "btcusdt@depth\u00b2", "btcusdt@depth\u0665",
     "btcusdt@depth05", "btcusdt@tic\u212aer", "btc\u0131usdt@trade"],
)  # fmt: skip
def test_parse_stream_with_unknown_name_raises_a_reason(name: str) -> None:
    with pytest.raises(StreamError, match="invalid stream name"):
        parse_stream(name, SYMBOLS)


def test_stream_is_diff_only_for_depth_diffs() -> None:
    assert Stream("a", "BTC-USDT", "depth").is_diff
    assert not Stream("a", "BTC-USDT", "depth20", 5).is_diff


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (["btcusdt@depth", "BTCUSDT@depth", "BtcUsdt@DEPTH"], "btcusdt@depth"),
        (["btcusdt@depth5@100ms", "BTCUSDT@Depth5@100ms"], "btcusdt@depth5@100ms"),
        (["btcusdt@miniTicker", "BTCUSDT@miniticker", "btcusdt@MINITICKER"], "btcusdt@miniTicker"),
        (["btcusdt@kline_1m", "BTCUSDT@KLINE_1m"], "btcusdt@kline_1m"),
    ],
)
def test_parse_stream_gives_one_key_however_a_name_is_written(names: list[str], key: str) -> None:
    assert {parse_stream(name, SYMBOLS).key for name in names} == {key}
    assert parse_stream(names[-1], SYMBOLS).name == names[-1]  # kept for the ``stream`` field


def test_parse_stream_keeps_names_binance_serves_apart_as_different_keys() -> None:
    keys = {
        parse_stream(name, SYMBOLS).key for name in ("btcusdt@depth", "btcusdt@depth@100ms", "btcusdt@depth5")
    }
    assert len(keys) == 3


def test_all_market_stream_names_stand_for_one_stream_per_market() -> None:
    symbols = symbol_table(["BTC-USDT", "ETH-USDT"])
    mini = parse_streams("!miniTicker@arr", symbols)
    assert [(s.name, s.market, s.channel, s.array) for s in mini] == [
        ("!miniTicker@arr", "BTC-USDT", "miniTicker", True),
        ("!miniTicker@arr", "ETH-USDT", "miniTicker", True),
    ]
    assert {s.group for s in mini} == {"!miniTicker@arr"}
    # any letter case; python-binance's speed suffix; !bookTicker's events are not arrays
    assert [s.key for s in parse_streams("!MINITICKER@ARR", symbols)] == [s.key for s in mini]
    assert {s.group for s in parse_streams("!miniTicker@arr@1000ms", symbols)} == {"!miniTicker@arr@1000ms"}
    assert [s.array for s in parse_streams("!bookTicker", symbols)] == [False, False]
    windows = parse_streams("!ticker_4h@arr", symbols)
    assert [(s.channel, s.array, s.group) for s in windows] == [("ticker_4h", True, "!ticker_4h@arr")] * 2
    assert [s.channel for s in parse_streams("!ticker@arr", symbols)] == ["ticker", "ticker"]
    assert [s.key for s in parse_streams("btcusdt@trade", symbols)] == ["btcusdt@trade"]
    for bad in ("!trade@arr", "!bookTicker@1000ms", "!miniTicker@arr@5s", "!", "!miniTicker\u00b2@arr"):
        with pytest.raises(StreamError, match="all-market streams are"):
            parse_streams(bad, symbols)
