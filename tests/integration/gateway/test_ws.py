"""WebSocket streams against a real exchange: names, control frames, the snapshot procedure, resume,
batched frames, user data and limits."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import Trader, check_bar_bounds, new_trader

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

LIMITS = {
    "TRADEWIRE_LIMIT_CONNECTIONS_PER_IP": "40",
    "TRADEWIRE_LIMIT_MESSAGES_PER_SECOND": "20",
    "TRADEWIRE_LIMIT_STREAMS_PER_CONNECTION": "8",
}


@pytest.fixture(scope="module")
def ws_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """Two gateways on one exchange, with small limits so that tests can reach them."""
    with Exchange(Path(tmp_path_factory.mktemp("ws")), gateways=2, gateway_env=LIMITS) as ex:
        yield ex


@pytest_asyncio.fixture(loop_scope="module")
async def pair(ws_exchange: Exchange) -> tuple[Trader, Trader]:
    return new_trader(ws_exchange), new_trader(ws_exchange)


async def recv_json(ws: ClientConnection, timeout: float = 10.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: ClientConnection, predicate: Any, timeout: float = 10.0) -> Any:
    async def loop() -> Any:
        while True:
            message = orjson.loads(await ws.recv())
            if predicate(message):
                return message

    return await asyncio.wait_for(loop(), timeout)


def cross(maker: Trader, taker: Trader, symbol: str, price: str, qty: str) -> int:
    r = maker.order(symbol=symbol, side="SELL", type="LIMIT", timeInForce="GTC", quantity=qty, price=price)
    assert r.status_code == 200, r.text
    r = taker.order(symbol=symbol, side="BUY", type="LIMIT", timeInForce="IOC", quantity=qty, price=price)
    assert r.json()["status"] == "FILLED", r.text
    return int(r.json()["fills"][0]["tradeId"])


async def test_raw_trade_stream_delivers_the_binance_trade_payload(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, taker = pair
    async with connect(f"{ws_exchange.ws_url}/ws/ethusdt@trade") as ws:
        await asyncio.sleep(0.2)
        trade_id = await asyncio.to_thread(cross, maker, taker, "ETHUSDT", "1500", "0.1")
        message = await recv_until(ws, lambda m: m.get("t") == trade_id)
    assert message["e"] == "trade" and message["s"] == "ETHUSDT"
    assert (message["p"], message["q"], message["m"]) == ("1500", "0.1", False)


async def test_kline_streams_of_every_binance_interval_deliver_the_trade(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, taker = pair
    intervals = ["1s", "3m", "30m", "6h", "12h", "3d", "1w", "1M"]  # the connection's limit is 8 streams
    names = "/".join(f"ethusdt@kline_{iv}" for iv in intervals)
    async with connect(f"{ws_exchange.ws_url}/stream?streams={names}") as ws:
        await asyncio.sleep(0.2)
        trade_id = await asyncio.to_thread(cross, maker, taker, "ETHUSDT", "1501", "0.1")
        seen: dict[str, Any] = {}

        def record(message: Any) -> bool:
            k = message["data"]["k"]
            if k["L"] >= trade_id:
                seen[message["stream"]] = k
            return len(seen) == len(intervals)

        await recv_until(ws, record)
    for interval in intervals:
        k = seen[f"ethusdt@kline_{interval}"]
        assert k["i"] == interval and k["s"] == "ETHUSDT" and k["n"] >= 1
        check_bar_bounds(interval, k["t"], k["T"])


async def test_avg_price_stream_says_what_rest_avg_price_answers(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    """``<symbol>@avgPrice`` carries the five-minute average after a trade, in Binance's shape,
    and its price is REST ``avgPrice``'s once the bars are written (both from the same sums)."""
    maker, taker = pair
    async with connect(f"{ws_exchange.ws_url}/ws/ethusdt@avgPrice") as ws:
        await asyncio.sleep(0.2)
        trade_id = await asyncio.to_thread(cross, maker, taker, "ETHUSDT", "1502", "0.1")
        trade_time = httpx.get(f"{ws_exchange.http_url}/api/v3/trades", params={"symbol": "ETHUSDT"}).json()
        [trade] = [t for t in trade_time if t["id"] == trade_id]
        message = await recv_until(ws, lambda m: m["T"] == trade["time"])
    assert (message["e"], message["s"], message["i"]) == ("avgPrice", "ETHUSDT", "5m")
    assert message["E"] >= message["T"]
    rest = httpx.get(f"{ws_exchange.http_url}/api/v3/avgPrice", params={"symbol": "ETHUSDT"}).json()
    assert (rest["price"], rest["closeTime"]) == (message["w"], message["T"])


async def test_rolling_window_ticker_streams_carry_the_trade(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    """``<symbol>@ticker_1h`` (ccxt.pro's ``watch_ticker`` with ``name: ticker_1h``) and
    ``!ticker_4h@arr`` carry a window with the trade, in Binance's shapes."""
    maker, taker = pair
    url = f"{ws_exchange.ws_url}/stream?streams=ethusdt@ticker_1h/!ticker_4h@arr"
    async with connect(url) as ws:
        await asyncio.sleep(0.2)
        trade_id = await asyncio.to_thread(cross, maker, taker, "ETHUSDT", "1503", "0.1")
        seen: dict[str, Any] = {}

        def record(message: Any) -> bool:
            data = message["data"]
            for event in data if isinstance(data, list) else [data]:
                if event["s"] == "ETHUSDT" and event["L"] >= trade_id:
                    seen[message["stream"]] = event
            return len(seen) == 2

        await recv_until(ws, record)
    assert seen["ethusdt@ticker_1h"]["e"] == "1hTicker" and seen["!ticker_4h@arr"]["e"] == "4hTicker"
    for event in seen.values():
        assert event["c"] == "1503" and event["n"] >= 1 and event["L"] - event["F"] + 1 == event["n"]


async def test_all_market_streams_carry_every_markets_events_in_binances_shapes(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    """``!miniTicker@arr`` and ``!ticker@arr`` (arrays of events) and ``!bookTicker`` (single
    events), raw or combined, over every market: what ccxt's ``watch_tickers()`` without symbols
    and python-binance's ``miniticker_socket`` ask for."""
    maker, taker = pair
    async with (
        connect(f"{ws_exchange.ws_url}/ws/!miniTicker@arr") as raw,
        connect(f"{ws_exchange.ws_url}/stream?streams=!ticker@arr/!bookTicker") as both,
    ):
        await asyncio.sleep(0.2)
        books: list[Any] = []  # !bookTicker's events, kept while looking for the tickers

        def seen(message: dict[str, Any]) -> bool:
            if message["stream"] == "!bookTicker":
                books.append(message["data"])
            return bool(message["stream"] == "!ticker@arr")

        for symbol, price in (("BTCUSDT", "20101.01"), ("ETHUSDT", "1501.01")):
            await asyncio.to_thread(cross, maker, taker, symbol, price, "0.01")
            # the trade's price: the module's other tests may have left cheaper asks than ``price``
            last = httpx.get(f"{ws_exchange.http_url}/api/v3/ticker/price", params={"symbol": symbol}).json()
            traded = Decimal(last["price"])
            mini = await recv_until(
                raw, lambda m, s=symbol, p=traded: m[0]["s"] == s and Decimal(m[0]["c"]) == p
            )
            assert isinstance(mini, list) and len(mini) == 1 and mini[0]["e"] == "24hrMiniTicker"
            full = await recv_until(both, lambda m, p=traded: seen(m) and Decimal(m["data"][0]["c"]) == p)
            assert full["data"][0]["e"] == "24hrTicker" and full["data"][0]["s"] == symbol
        assert books and all(isinstance(b, dict) and b["s"] in ("BTCUSDT", "ETHUSDT") for b in books)

        await raw.send(
            orjson.dumps({"method": "SUBSCRIBE", "params": ["!bookTicker", "btcusdt@trade"], "id": 1})
        )
        assert await recv_until(raw, lambda m: isinstance(m, dict) and m.get("id") == 1) == {
            "result": None,
            "id": 1,
        }
        await raw.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        listed = await recv_until(raw, lambda m: isinstance(m, dict) and m.get("id") == 2)
        assert listed["result"] == ["!miniTicker@arr", "!bookTicker", "btcusdt@trade"]  # each once
        await raw.send(orjson.dumps({"method": "UNSUBSCRIBE", "params": ["!miniTicker@arr"], "id": 3}))
        await raw.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        listed = await recv_until(raw, lambda m: isinstance(m, dict) and m.get("id") == 4)
        assert listed["result"] == ["!bookTicker", "btcusdt@trade"]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{ws_exchange.ws_url}/ws/!allTrades@arr"):
            pass
    assert refused.value.response.status_code == 400
    assert (
        b"the all-market streams are !miniTicker@arr, !ticker@arr, !bookTicker" in refused.value.response.body
    )


async def test_subscribe_list_and_unsubscribe_with_ids_reply_in_order(ws_exchange: Exchange) -> None:
    async with connect(f"{ws_exchange.ws_url}/ws") as ws:
        await ws.send(
            orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth"], "id": 1})
        )
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await recv_json(ws) == {"result": ["btcusdt@trade", "btcusdt@depth"], "id": 2}
        await ws.send(orjson.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "three"}))
        assert await recv_json(ws) == {"result": None, "id": "three"}
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        assert await recv_json(ws) == {"result": ["btcusdt@depth"], "id": 4}
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 5}))
        error = await recv_json(ws)
        assert error["id"] == 5 and error["error"]["code"] == 2 and "dogeusdt" in error["error"]["msg"]
        await ws.send(b"{not json")
        assert (await recv_json(ws))["error"]["code"] == 3
        await ws.send(orjson.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 6}))
        assert await recv_json(ws) == {"result": None, "id": 6}
        await ws.send(orjson.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 7}))
        assert await recv_json(ws) == {"result": True, "id": 7}


async def test_combined_and_partial_depth_streams_wrap_and_cut(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, _ = pair
    async with connect(f"{ws_exchange.ws_url}/stream?streams=btcusdt@depth5@100ms/btcusdt@bookTicker") as ws:
        await asyncio.sleep(0.2)
        for i in range(7):
            r = await asyncio.to_thread(
                maker.order,
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price=str(20000 + i),
            )
            assert r.status_code == 200
        seen: dict[str, Any] = {}

        def both(m: dict[str, Any]) -> bool:
            # book tickers go out with each order's batch, partial books at most every 100 ms
            if m["stream"] == "btcusdt@depth5@100ms" and len(m["data"]["bids"]) == 5:
                seen["partial"] = m
            elif m["stream"] == "btcusdt@bookTicker":
                seen["book"] = m
            return "partial" in seen and "book" in seen

        await recv_until(ws, both)
        assert set(seen["partial"]["data"]) == {"lastUpdateId", "bids", "asks"}
        book = seen["book"]
        assert book["data"]["s"] == "BTCUSDT" and Decimal(book["data"]["b"]) >= 20000


def _apply(book: dict[str, dict[Decimal, str]], diff: dict[str, Any]) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for price, qty in diff[key]:
            if Decimal(qty) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = qty


def _checksum(book: dict[str, dict[Decimal, str]], raw: dict[Decimal, str]) -> int:
    bids = sorted(book["bids"].items(), reverse=True)[:25]
    asks = sorted(book["asks"].items())[:25]
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        for side in (bids, asks):
            if i < len(side):
                parts += [raw[side[i][0]], side[i][1]]
    return zlib.crc32(":".join(parts).encode())


async def test_binance_snapshot_procedure_with_checksums_ends_at_the_exchange_book(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, taker = pair
    async with connect(f"{ws_exchange.ws_url}/ws/ethusdt@depth@100ms") as ws:
        await asyncio.sleep(0.2)

        def trade_a_little() -> None:
            for i in range(30):
                side = "BUY" if i % 2 else "SELL"
                price = str(1000 + (i % 7) * (1 if side == "SELL" else -1) + (5 if side == "SELL" else -5))
                (maker if i % 3 else taker).order(
                    symbol="ETHUSDT", side=side, type="LIMIT", timeInForce="GTC", quantity="0.01", price=price
                )

        worker = asyncio.create_task(asyncio.to_thread(trade_a_little))
        buffered = [await recv_json(ws)]
        snapshot = httpx.get(
            f"{ws_exchange.http_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 1000}
        ).json()
        await worker
        book: dict[str, dict[Decimal, str]] = {
            "bids": {Decimal(p): q for p, q in snapshot["bids"]},
            "asks": {Decimal(p): q for p, q in snapshot["asks"]},
        }
        raw = {Decimal(p): p for p, _ in snapshot["bids"] + snapshot["asks"]}
        last = snapshot["lastUpdateId"]
        final = httpx.get(
            f"{ws_exchange.http_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 1000}
        ).json()
        while last < final["lastUpdateId"]:
            diff = buffered.pop(0) if buffered else await recv_json(ws)
            if diff["u"] <= last:
                continue
            assert diff["U"] <= last + 1 <= diff["u"]
            assert diff["pu"] == last or diff["U"] == last + 1
            _apply(book, diff)
            raw.update({Decimal(p): p for p, _ in diff["b"] + diff["a"]})
            assert _checksum(book, raw) == diff["cs"]
            last = diff["u"]
    assert sorted(book["bids"].items(), reverse=True) == [(Decimal(p), q) for p, q in final["bids"]]
    assert sorted(book["asks"].items()) == [(Decimal(p), q) for p, q in final["asks"]]


async def test_reconnect_with_since_on_another_gateway_gets_missed_diffs_once(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, _ = pair

    def rest(count: int, base: int) -> None:
        for i in range(count):
            maker.order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price=str(base + i),
            )

    first, second = ws_exchange.ws_urls
    async with connect(f"{first}/ws/btcusdt@depth") as ws:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(rest, 3, 15000)
        seen = [await recv_json(ws) for _ in range(3)]
    last_seen = seen[-1]["u"]
    await asyncio.to_thread(rest, 5, 16000)  # published while nobody of ours was connected
    async with connect(f"{second}/ws/btcusdt@depth?since={last_seen}") as ws:
        missed = [await recv_json(ws) for _ in range(5)]
        await asyncio.to_thread(rest, 2, 17000)
        live = [await recv_json(ws) for _ in range(2)]
    chain = [*seen, *missed, *live]
    for before, after in itertools.pairwise(chain):
        assert after["pu"] == before["u"] and after["U"] == before["u"] + 1
    assert [d["b"][0][0] for d in missed] == [str(16000 + i) for i in range(5)]


async def test_subscribe_frame_with_since_gets_the_missed_diffs_however_the_name_is_spelled(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    """``since`` in a SUBSCRIBE frame resumes from that update id, its key read as a stream name
    (``ETHUSDT@depth`` is ``ethusdt@depth``); ``true`` is not the update id 1 (a JSON boolean is an
    integer to Python), and a resume point that cannot be used is an error, never dropped."""
    maker, _ = pair

    def rest(count: int, base: int) -> None:
        for i in range(count):
            maker.order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                        quantity="0.1", price=str(base + i))  # fmt: skip

    def bids(diffs: list[Any]) -> list[str]:
        return [price for d in diffs for price, _ in d["b"]]

    async with connect(f"{ws_exchange.ws_url}/ws/ethusdt@depth") as ws:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(rest, 2, 500)  # below every other test's prices
        last_seen = (await recv_until(ws, lambda m: "501" in bids([m])))["u"]
    await asyncio.to_thread(rest, 3, 510)  # published while nobody of ours was connected
    for name, key, live_price in (
        ("ethusdt@depth", "ethusdt@depth", "520"),
        ("ETHUSDT@depth", "EthUsdt@depth", "521"),
    ):
        async with connect(f"{ws_exchange.ws_url}/ws") as ws:
            frame = {"method": "SUBSCRIBE", "params": [name], "since": {key: last_seen}, "id": 1}
            await ws.send(orjson.dumps(frame))
            before_reply = []  # the catch-up comes before the answer
            while (message := await recv_json(ws)) != {"result": None, "id": 1}:
                before_reply.append(message)
            assert [p for p in bids(before_reply) if p in ("510", "511", "512")] == ["510", "511", "512"]
            assert all(d["U"] > last_seen for d in before_reply), "nothing older than asked for"
            await asyncio.to_thread(rest, 1, int(live_price))
            await recv_until(ws, lambda m, price=live_price: price in bids([m]))  # type: ignore[misc]
    refused = (
        {"ethusdt@depth": True},
        {"ethusdt@depth": -1},
        {"btcusdt@depth": last_seen},  # not subscribed to by this request
        {"ethusdt@ticker": 1},  # not a stream that resumes
        [last_seen],
    )
    async with connect(f"{ws_exchange.ws_url}/ws") as ws:
        for request_id, since in enumerate(refused, 2):
            frame = {"method": "SUBSCRIBE", "params": ["ethusdt@depth", "ethusdt@ticker"], "since": since,
                     "id": request_id}  # fmt: skip
            await ws.send(orjson.dumps(frame))
            reply = await recv_json(ws)
            assert reply["id"] == request_id and reply["error"]["code"] == 2, since
        for request_id, frame in enumerate(
            (
                {"method": "SUBSCRIBE", "params": [1, 2]},
                {"method": "UNSUBSCRIBE", "params": [None]},
                {"method": ["SUBSCRIBE"], "params": ["ethusdt@depth"]},
                {"method": None, "params": []},
            ),
            10,
        ):
            await ws.send(orjson.dumps(frame | {"id": request_id}))
            reply = await recv_json(ws)
            assert reply["id"] == request_id and reply["error"]["code"] == 1, frame  # not a listen key
            assert reply["error"]["msg"].startswith("Invalid value type: "), reply
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        assert await recv_json(ws) == {"result": [], "id": 9}, "a refused request follows nothing"


async def test_reconnect_with_unknown_update_id_is_told_to_resnapshot(ws_exchange: Exchange) -> None:
    async with connect(f"{ws_exchange.ws_url}/stream?streams=btcusdt@depth&since=999999999") as ws:
        message = await recv_json(ws)
    assert message["stream"] == "btcusdt@depth" and message["data"]["e"] == "resnapshot"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("streams=btcusdt@trade&since=abc", b"since must be a whole number"),
        ("streams=btcusdt@trade&since=-1", b"since must be a whole number"),
        ("streams=btcusdt@trade&since=1.5", b"since must be a whole number"),
        ("streams=btcusdt@trade&since=%EF%BC%91", b"since must be a whole number"),  # a full-width 1
        ("streams=btcusdt@kline_1m&since=5", b"only @depth, @trade and @aggTrade resume"),
        ("streams=btcusdt@trade&streams=ethusdt@trade", b"'streams' given more than once"),
        ("streams=btcusdt@trade&since=5&since=6", b"'since' given more than once"),
    ],
)
async def test_a_handshake_whose_resume_point_or_streams_cannot_be_followed_is_refused(
    ws_exchange: Exchange, query: str, reason: bytes
) -> None:
    """Dropped, a bad ``since`` would leave the client believing it resumed, and a parameter given
    twice would follow one of the two silently: both are refused before the connection opens."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{ws_exchange.ws_url}/stream?{query}"):
            pass
    assert refused.value.response.status_code == 400
    assert reason in refused.value.response.body, refused.value.response.body


async def test_batched_connection_gets_json_arrays_of_messages(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, taker = pair
    async with connect(f"{ws_exchange.ws_url}/ws/ethusdt@trade?batch=1") as ws:
        await asyncio.sleep(0.2)
        trade_id = await asyncio.to_thread(cross, maker, taker, "ETHUSDT", "1600", "0.1")
        frame = await recv_until(ws, lambda m: isinstance(m, list) and any(t.get("t") == trade_id for t in m))
    assert all(item["e"] == "trade" for item in frame)


async def test_user_data_stream_delivers_own_execution_reports_only(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    alice, bob = pair
    listen_key = alice.http.post("/api/v3/userDataStream").json()["listenKey"]
    assert alice.http.put("/api/v3/userDataStream", params={"listenKey": listen_key}).json() == {}
    assert bob.http.put("/api/v3/userDataStream", params={"listenKey": listen_key}).json()["code"] == -1125
    async with connect(f"{ws_exchange.ws_url}/ws/{listen_key}") as ws:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(
            bob.order,
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price="11000",
            newClientOrderId="bobs",
        )
        r = await asyncio.to_thread(
            alice.order,
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price="11000",
            newClientOrderId="alices",
        )
        report = await recv_until(ws, lambda m: m.get("e") == "executionReport")
        position = await recv_until(ws, lambda m: m.get("e") == "outboundAccountPosition")
    assert report["i"] == r.json()["orderId"] and report["c"] == "alices" and report["X"] == "NEW"
    assert any(b["a"] == "USDT" for b in position["B"])
    assert alice.http.delete("/api/v3/userDataStream", params={"listenKey": listen_key}).json() == {}
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws_exchange.ws_url}/ws/{listen_key}"):
            pass


async def test_a_listen_key_among_combined_streams_comes_wrapped_like_the_market_streams(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    """Binance's ``/stream?streams=<listenKey>/btcusdt@trade``: the user's events arrive as
    ``{"stream": <listenKey>, "data": event}``, beside the market streams' messages."""
    alice, bob = pair
    listen_key = alice.http.post("/api/v3/userDataStream").json()["listenKey"]
    other_key = bob.http.post("/api/v3/userDataStream").json()["listenKey"]  # alice's again is the same
    async with connect(f"{ws_exchange.ws_url}/stream?streams={listen_key}/btcusdt@depth") as ws:
        placed = await asyncio.to_thread(
            alice.order, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
            quantity="0.001", price="10999.01",
        )  # fmt: skip
        assert placed.status_code == 200, placed.text
        report = await recv_until(ws, lambda m: m.get("data", {}).get("e") == "executionReport")
        diff = await recv_until(
            ws, lambda m: any(Decimal(p) == Decimal("10999.01") for p, _ in m["data"].get("b", []))
        )
    assert report["stream"] == listen_key and report["data"]["i"] == placed.json()["orderId"]
    assert diff["stream"] == "btcusdt@depth" and set(diff) == {"stream", "data"}
    # one listen key per connection, as one user's events per connection: two are refused clearly
    for url in (f"/stream?streams={listen_key}/{other_key}", f"/ws/{listen_key}?streams={other_key}"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{ws_exchange.ws_url}{url}"):
                pass
        assert refused.value.response.status_code == 400
        assert b"one listen key per connection" in refused.value.response.body
    # a listen key that does not exist is refused as in the path
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{ws_exchange.ws_url}/stream?streams=btcusdt@trade/{'k' * 60}"):
            pass
    assert refused.value.response.status_code == 400
    assert b"invalid listen key" in refused.value.response.body


async def test_a_non_ascii_or_over_long_listen_key_is_refused_clearly_on_rest_and_websocket(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    alice, _ = pair
    live = alice.http.post("/api/v3/userDataStream").json()["listenKey"]
    # other scripts' letters and digits (isalnum, not ASCII), a live key with one more letter that
    # looks like an ASCII one, over the 128 characters a key may have, and far over them
    refused_keys = ["\u00e9" * 8, "\u0661\u0662\u0663", live + "\u0430", "k" * 129, live * 100]
    for listen_key in refused_keys:
        for method in ("PUT", "DELETE"):
            answer = alice.http.request(method, "/api/v3/userDataStream", params={"listenKey": listen_key})
            assert answer.status_code == 400, (method, listen_key[:20], answer.text)
            assert answer.json() == {"code": -1125, "msg": "This listenKey does not exist."}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{ws_exchange.ws_url}/ws/{quote(listen_key)}"):
                pass
        assert refused.value.response.status_code == 400
        assert b"invalid listen key" in refused.value.response.body
    # the gateway is none the worse, and the live key still works
    assert alice.http.put("/api/v3/userDataStream", params={"listenKey": live}).json() == {}
    async with connect(f"{ws_exchange.ws_url}/ws/{live}") as ws:
        await ws.ping()


async def test_too_many_streams_or_messages_are_refused_clearly(ws_exchange: Exchange) -> None:
    names = [f"btcusdt@kline_{iv}" for iv in ("1m", "5m", "15m", "1h", "4h", "1d")] + ["btcusdt@trade"]
    async with connect(f"{ws_exchange.ws_url}/ws") as ws:
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(
            orjson.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade", "ethusdt@depth"], "id": 2})
        )
        refused = await recv_json(ws)
        assert refused["error"]["code"] == 4 and "Too many streams" in refused["error"]["msg"]
        with pytest.raises(ConnectionClosed) as closed:
            for i in range(100):
                await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "too many messages" in closed.value.rcvd.reason


async def test_connections_over_the_per_ip_limit_are_refused_with_429(ws_exchange: Exchange) -> None:
    url = ws_exchange.ws_urls[1]
    opened: list[ClientConnection] = []
    try:
        with pytest.raises(InvalidStatus) as refused:
            for _ in range(41):
                opened.append(await connect(f"{url}/ws/btcusdt@trade"))
        assert refused.value.response.status_code == 429
        assert len(opened) == 40
    finally:
        for ws in opened:
            await ws.close()


async def test_unknown_path_or_stream_is_refused_at_the_handshake(ws_exchange: Exchange) -> None:
    with pytest.raises(InvalidStatus) as not_found:
        async with connect(f"{ws_exchange.ws_url}/elsewhere"):
            pass
    assert not_found.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as bad:
        async with connect(f"{ws_exchange.ws_url}/ws/btcusdt@depth7"):
            pass
    assert bad.value.response.status_code == 400


async def test_non_ascii_digit_in_a_stream_name_is_refused_not_left_hanging(ws_exchange: Exchange) -> None:
    for path in ("/ws/btcusdt@depth%C2%B2", "/stream?streams=btcusdt@depth%C2%B2"):
        with pytest.raises(InvalidStatus) as bad:
            async with connect(f"{ws_exchange.ws_url}{path}", open_timeout=10):
                pass
        assert bad.value.response.status_code == 400
    async with connect(f"{ws_exchange.ws_url}/ws") as ws:
        for request_id, name in enumerate(["btcusdt@depth\u00b2", "btcusdt@depth\u0665"]):
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": [name], "id": request_id}))
            refused = await recv_json(ws)
            assert refused["id"] == request_id and refused["error"]["code"] == 2
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        assert await recv_json(ws) == {"result": [], "id": 9}


async def test_one_stream_subscribed_in_two_letter_cases_delivers_each_diff_once(
    ws_exchange: Exchange, pair: tuple[Trader, Trader]
) -> None:
    maker, _ = pair
    async with connect(f"{ws_exchange.ws_url}/ws") as ws:
        await ws.send(
            orjson.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@depth", "ETHUSDT@depth"], "id": 1})
        )
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await recv_json(ws) == {"result": ["ethusdt@depth"], "id": 2}
        for i in range(3):
            r = await asyncio.to_thread(maker.order, symbol="ETHUSDT", side="BUY", type="LIMIT",
                                        timeInForce="GTC", quantity="0.01", price=str(900 + i))  # fmt: skip
            assert r.status_code == 200
        diffs = [await recv_json(ws) for _ in range(3)]
        with pytest.raises(TimeoutError):  # nothing repeated after them
            await recv_json(ws, timeout=0.5)
    assert [d["e"] for d in diffs] == ["depthUpdate"] * 3
    assert [d["pu"] for d in diffs[1:]] == [d["u"] for d in diffs[:-1]]


def subscriptions_gauge(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    (value,) = [
        line.split()[1] for line in text.splitlines() if line.startswith("tradewire_ws_subscriptions ")
    ]
    return float(value)


async def test_stream_twice_in_the_url_is_followed_once_and_the_gauge_returns_after_close(
    ws_exchange: Exchange,
) -> None:
    url = ws_exchange.http_urls[1]
    await asyncio.sleep(0.5)  # connections of earlier tests are gone
    before = await asyncio.to_thread(subscriptions_gauge, url)
    async with connect(f"{ws_exchange.ws_urls[1]}/stream?streams=btcusdt@trade/btcusdt@trade") as ws:
        assert await asyncio.to_thread(subscriptions_gauge, url) == before + 1
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert await recv_json(ws) == {"result": ["btcusdt@trade"], "id": 1}
    for _ in range(50):
        after = await asyncio.to_thread(subscriptions_gauge, url)
        if after == before:
            break
        await asyncio.sleep(0.1)
    assert after == before


async def test_frame_over_the_size_limit_closes_with_1009_and_ends_tcp_at_once(ws_exchange: Exchange) -> None:
    async with connect(f"{ws_exchange.ws_url}/ws/btcusdt@trade", max_size=None, close_timeout=30) as ws:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send(b"x" * (65 * 1024), text=True)
            await asyncio.wait_for(ws.recv(), 10)
        await asyncio.wait_for(ws.wait_closed(), 10)
        elapsed = asyncio.get_running_loop().time() - started
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert elapsed < 3  # the gateway ended TCP after its close frame, not 30 s later


async def test_text_message_with_invalid_utf8_closes_with_1007(ws_exchange: Exchange) -> None:
    async with connect(f"{ws_exchange.ws_url}/ws", close_timeout=30) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send(b'\xff\xfe{"method":"LIST_SUBSCRIPTIONS","id":1}', text=True)
            await asyncio.wait_for(ws.recv(), 10)
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007


async def test_bad_ids_and_properties_are_refused_with_binances_codes(ws_exchange: Exchange) -> None:
    async with connect(f"{ws_exchange.ws_url}/ws") as ws:
        await ws.send(b'{"method":"LIST_SUBSCRIPTIONS","id":123456789012345678901234567890}')
        refused = await recv_json(ws)
        assert refused["id"] is None and refused["error"]["code"] == 2
        assert refused["error"]["msg"] == "Invalid request: request ID must be an unsigned integer"
        await ws.send(orjson.dumps({"method": "SET_PROPERTY", "params": ["combined", 1], "id": 2}))
        assert (await recv_json(ws))["error"]["code"] == 1
        await ws.send(orjson.dumps({"method": "SET_PROPERTY", "params": ["foo", True], "id": 3}))
        assert (await recv_json(ws))["error"]["code"] == 0
