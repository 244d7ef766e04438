"""python-binance's Client, its DepthCacheManager and its WebSocket API calls against a tradewire gateway
(base URLs changed)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import websockets
from binance import (  # type: ignore[import-untyped]
    AsyncClient,
    BinanceSocketManager,
    Client,
    DepthCacheManager,
)
from binance.exceptions import BinanceAPIException  # type: ignore[import-untyped]

from tests.fixtures.exchange import Exchange, bars_settled
from tests.integration.gateway.conftest import Trader, check_bar_bounds, new_trader

pytestmark = pytest.mark.timeout(120)


def client_for(ex: Exchange, trader: Trader, secret: str | None = None) -> Client:
    client = Client(trader.user.api_key, secret or trader.user.api_secret, ping=False)
    client.API_URL = f"{ex.http_url}/api"
    client.MARGIN_API_URL = f"{ex.http_url}/sapi"
    return client


def test_client_trades_and_reads_its_account(module_exchange: Exchange) -> None:
    maker = client_for(module_exchange, new_trader(module_exchange))
    taker = client_for(module_exchange, new_trader(module_exchange))
    assert {s["symbol"] for s in maker.get_exchange_info()["symbols"]} == {"BTCUSDT", "ETHUSDT"}
    assert maker.get_symbol_info("ETHUSDT")["baseAsset"] == "ETH"
    sell = maker.order_limit_sell(symbol="ETHUSDT", quantity="1", price="4000")
    assert sell["status"] == "NEW"
    bought = taker.order_market_buy(symbol="ETHUSDT", quantity="0.25")
    assert bought["status"] == "FILLED" and bought["fills"][0]["price"] == "4000"
    assert maker.get_order(symbol="ETHUSDT", orderId=sell["orderId"])["executedQty"] == "0.25"
    assert [o["orderId"] for o in maker.get_open_orders(symbol="ETHUSDT")] == [sell["orderId"]]
    assert maker.cancel_order(symbol="ETHUSDT", orderId=sell["orderId"])["status"] == "CANCELED"
    assert maker.get_open_orders(symbol="ETHUSDT") == []
    assert taker.get_my_trades(symbol="ETHUSDT")[0]["qty"] == "0.25"
    assert taker.get_asset_balance(asset="ETH")["free"] == "1000.24975"
    assert "serverTime" in taker.get_server_time()
    assert taker.get_order_book(symbol="ETHUSDT")["lastUpdateId"] > 0
    average = taker.get_avg_price(symbol="ETHUSDT")  # this module's trades of the last five minutes
    assert average["mins"] == 5 and float(average["price"]) > 0 and average["closeTime"] > 0


def test_client_with_wrong_secret_raises_binance_api_exception(module_exchange: Exchange) -> None:
    wrong = client_for(module_exchange, new_trader(module_exchange), secret="0" * 64)
    with pytest.raises(BinanceAPIException) as refused:
        wrong.get_account()
    assert refused.value.code == -1022 and refused.value.status_code == 400


@pytest.mark.asyncio
async def test_depth_cache_manager_through_order_flow_equals_the_engine_book(
    module_exchange: Exchange,
) -> None:
    ex = module_exchange
    traders = [new_trader(ex) for _ in range(2)]
    client = AsyncClient()
    client.API_URL = f"{ex.http_url}/api"
    manager = BinanceSocketManager(client)
    manager.STREAM_URL = f"{ex.ws_url}/"
    rng = random.Random(3)

    def flow(count: int) -> None:
        for _ in range(count):
            trader = rng.choice(traders)
            side = rng.choice(["BUY", "SELL"])
            qty = f"{rng.randint(1, 20) / 1000:.3f}"
            price = str(rng.randint(20_000, 20_020))
            r = trader.order(
                symbol="BTCUSDT", side=side, type="LIMIT", timeInForce="GTC", quantity=qty, price=price
            )
            assert r.status_code == 200, r.text

    try:
        async with DepthCacheManager(client, "BTCUSDT", bm=manager, limit=1000, ws_interval=100) as cache:
            latest: list[Any] = []

            async def follow() -> None:
                while True:
                    latest.append(await cache.recv())

            following = asyncio.create_task(follow())
            await asyncio.to_thread(flow, 150)
            url = f"{ex.http_url}/api/v3/depth"
            snapshot = httpx.get(url, params={"symbol": "BTCUSDT", "limit": 1000}).json()
            for _ in range(100):
                if cache._last_update_id == snapshot["lastUpdateId"]:
                    break
                await asyncio.sleep(0.1)
            assert not following.done(), following.exception()
            following.cancel()
            depth = latest[-1]
            assert depth.get_bids() == [[float(p), float(q)] for p, q in snapshot["bids"]]
            assert depth.get_asks() == [[float(p), float(q)] for p, q in snapshot["asks"]]
    finally:
        await client.close_connection()


@pytest.mark.asyncio
async def test_async_client_trades_over_the_websocket_api(module_exchange: Exchange) -> None:
    from binance.ws.websocket_api import WebsocketAPI  # type: ignore[import-untyped]

    trader = new_trader(module_exchange)
    client = AsyncClient(trader.user.api_key, trader.user.api_secret)
    client.API_URL = f"{module_exchange.http_url}/api"
    client.ws_api = WebsocketAPI(url=f"{module_exchange.ws_url}/ws-api/v3", tld="com")
    try:
        placed = await client.ws_create_order(
            symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="2", price="5000"
        )
        assert placed["status"] == "NEW" and placed["origQty"] == "2"
        fetched = await client.ws_get_order(symbol="ETHUSDT", orderId=placed["orderId"])
        assert fetched["clientOrderId"] == placed["clientOrderId"] and fetched["price"] == "5000"
        canceled = await client.ws_cancel_order(symbol="ETHUSDT", orderId=placed["orderId"])
        assert canceled["status"] == "CANCELED"
        with pytest.raises(BinanceAPIException) as refused:
            await client.ws_create_order(
                symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="5000", price="5000"
            )
        assert refused.value.code == -2010
    finally:
        await client.close_connection()


@pytest.mark.asyncio
async def test_user_socket_follows_the_account_over_the_websocket_api(module_exchange: Exchange) -> None:
    """python-binance's ``user_socket()`` subscribes with ``userDataStream.subscribe.signature`` on
    its WebSocket API connection (no listen key any more): only that URL changes."""
    from binance.ws.websocket_api import WebsocketAPI  # type: ignore[import-untyped]

    trader = new_trader(module_exchange)
    client = AsyncClient(trader.user.api_key, trader.user.api_secret)
    client.API_URL = f"{module_exchange.http_url}/api"
    client.ws_api = WebsocketAPI(url=f"{module_exchange.ws_url}/ws-api/v3", tld="com")
    try:
        async with BinanceSocketManager(client).user_socket() as stream:
            trader.order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", price="900",
                         quantity="2", newClientOrderId="pb-user-socket")  # fmt: skip
            seen: dict[str, Any] = {}
            while set(seen) < {"executionReport", "outboundAccountPosition"}:
                message = await asyncio.wait_for(stream.recv(), 15)
                seen.setdefault(message["e"], message)
        report = seen["executionReport"]
        assert (report["c"], report["X"], report["p"]) == ("pb-user-socket", "NEW", "900")
        assert {"a": "USDT", "f": "998200", "l": "1800"} in seen["outboundAccountPosition"]["B"]
    finally:
        await client.close_connection()


def _socket_manager(ex: Exchange) -> tuple[AsyncClient, BinanceSocketManager]:
    client = AsyncClient()
    client.API_URL = f"{ex.http_url}/api"
    manager = BinanceSocketManager(client)
    manager.STREAM_URL = f"{ex.ws_url}/"
    return client, manager


@pytest.mark.asyncio
async def test_aggtrade_socket_gets_each_trade_as_an_aggregate_trade(module_exchange: Exchange) -> None:
    """``aggtrade_socket`` opens ``<symbol>@aggTrade``: one ``aggTrade`` event per trade, its ``a``,
    ``f`` and ``l`` the trade's id (tradewire aggregates nothing), as ``GET /aggTrades`` answers;
    ``since=<a>`` resumes it as it does ``@trade``."""
    ex = module_exchange
    maker, taker = new_trader(ex), new_trader(ex)
    client, manager = _socket_manager(ex)
    try:
        async with manager.aggtrade_socket("ETHUSDT") as stream:
            maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.4",
                        price="3111")  # fmt: skip
            r = taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.4")
            assert r.json()["status"] == "FILLED", r.text
            event = await asyncio.wait_for(stream.recv(), 10)
        trade_id = r.json()["fills"][0]["tradeId"]
        assert event["e"] == "aggTrade" and event["s"] == "ETHUSDT"
        assert (event["a"], event["f"], event["l"]) == (trade_id, trade_id, trade_id)
        assert (event["p"], event["q"], event["m"]) == ("3111", "0.4", False)
        assert event["T"] == event["E"] > 0
        rest = await client.get_aggregate_trades(symbol="ETHUSDT", fromId=trade_id, limit=1)
        assert rest == [{k: event[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")}]
        async with websockets.connect(f"{ex.ws_url}/ws/ethusdt@aggTrade?since={trade_id - 1}") as ws:
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 10)) == event  # resumed from history
    finally:
        await client.close_connection()


@pytest.mark.asyncio
async def test_miniticker_socket_gets_every_markets_mini_tickers_in_arrays(module_exchange: Exchange) -> None:
    """``miniticker_socket`` opens ``!miniTicker@arr``: arrays of ``24hrMiniTicker`` events, whichever
    market traded."""
    ex = module_exchange
    maker, taker = new_trader(ex), new_trader(ex)
    client, manager = _socket_manager(ex)
    try:
        async with manager.miniticker_socket() as stream:
            for symbol, price in (("ETHUSDT", "3222"), ("BTCUSDT", "32222")):
                maker.order(symbol=symbol, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01",
                            price=price)  # fmt: skip
                r = taker.order(symbol=symbol, side="BUY", type="MARKET", quantity="0.01")
                assert r.json()["status"] == "FILLED", r.text
                last = r.json()["fills"][-1]["price"]  # the module's other tests may have left cheaper asks
                while True:
                    events = await asyncio.wait_for(stream.recv(), 10)
                    assert isinstance(events, list) and all(e["e"] == "24hrMiniTicker" for e in events)
                    if any(e["s"] == symbol and Decimal(e["c"]) == Decimal(last) for e in events):
                        break
    finally:
        await client.close_connection()


def test_get_historical_trades_pages_forward_from_an_id(module_exchange: Exchange) -> None:
    """``get_historical_trades`` (``GET /api/v3/historicalTrades``) reads the trades from ``fromId``
    on, oldest first, as ``/trades`` writes them; without ``fromId`` the newest ones."""
    ex = module_exchange
    maker, taker = new_trader(ex), new_trader(ex)
    client = client_for(ex, maker)
    sold = maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.3",
                       price="3222")  # fmt: skip
    assert sold.status_code == 200, sold.text
    for _ in range(3):
        r = taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.1")
        assert r.json()["status"] == "FILLED", r.text
    recent = client.get_recent_trades(symbol="ETHUSDT", limit=3)
    first = recent[0]["id"]
    assert client.get_historical_trades(symbol="ETHUSDT", fromId=first, limit=2) == recent[:2]
    assert client.get_historical_trades(symbol="ETHUSDT", fromId=first + 2) == recent[2:]
    assert client.get_historical_trades(symbol="ETHUSDT", limit=3) == recent


def test_cancel_replace_order_reports_each_outcome(module_exchange: Exchange) -> None:
    """``cancel_replace_order``: both outcomes in one answer; with ALLOW_FAILURE a refused cancel
    still places the new order, answered 409 with ``-2021`` and both outcomes in ``data``."""
    trader = new_trader(module_exchange)
    client = client_for(module_exchange, trader)
    old = client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="17011", newClientOrderId="pb-cr-1")
    done = client.cancel_replace_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.02",
        price="17012",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId="pb-cr-1",
        cancelNewClientOrderId="pb-cr-1-cancel",
        newClientOrderId="pb-cr-2",
    )
    assert (done["cancelResult"], done["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert done["cancelResponse"]["orderId"] == old["orderId"]
    assert (done["cancelResponse"]["origClientOrderId"], done["cancelResponse"]["clientOrderId"]) == (
        "pb-cr-1", "pb-cr-1-cancel"
    )  # fmt: skip
    assert done["cancelResponse"]["status"] == "CANCELED"
    assert done["newOrderResponse"]["clientOrderId"] == "pb-cr-2"
    assert done["newOrderResponse"]["price"] == "17012" and done["newOrderResponse"]["status"] == "NEW"
    with pytest.raises(BinanceAPIException) as partly:
        client.cancel_replace_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                    quantity="0.01", price="17013", cancelReplaceMode="ALLOW_FAILURE",
                                    cancelOrderId=old["orderId"], newClientOrderId="pb-cr-3")  # fmt: skip
    assert (partly.value.code, partly.value.status_code) == (-2021, 409)
    data = partly.value.response.json()["data"]
    assert data["cancelResult"] == "FAILURE" and data["cancelResponse"]["code"] == -2011
    assert data["newOrderResult"] == "SUCCESS" and data["newOrderResponse"]["clientOrderId"] == "pb-cr-3"
    opened = {o["clientOrderId"] for o in client.get_open_orders(symbol="BTCUSDT")}
    assert opened == {"pb-cr-2", "pb-cr-3"}
    with pytest.raises(BinanceAPIException) as missing:
        client.cancel_replace_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                    quantity="0.01", price="17014", cancelOrderId=old["orderId"])  # fmt: skip
    assert missing.value.code == -1102  # cancelReplaceMode is mandatory
    with pytest.raises(BinanceAPIException) as too_high:  # refused before the cancel: nothing moves
        client.cancel_replace_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                    quantity="0.01", price="9000000000", cancelReplaceMode="STOP_ON_FAILURE",
                                    cancelOrigClientOrderId="pb-cr-3")  # fmt: skip
    assert (too_high.value.code, too_high.value.message) == (-1013, "Filter failure: PRICE_FILTER")
    for name, value in (("cancelOrderId", "abc"), ("cancelOrigClientOrderId", "x" * 40)):
        with pytest.raises(BinanceAPIException) as malformed:  # malformed, not missing: -1100, named
            client.cancel_replace_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                        quantity="0.01", price="17015", cancelReplaceMode="STOP_ON_FAILURE",
                                        **{name: value})  # fmt: skip
        assert malformed.value.code == -1100 and f"parameter '{name}'" in malformed.value.message
    assert {o["clientOrderId"] for o in client.get_open_orders(symbol="BTCUSDT")} == opened


def test_get_klines_of_every_binance_interval(module_exchange: Exchange) -> None:
    """python-binance's interval constants, 1s to 1M: each was refused with -1120 but the six."""
    maker = client_for(module_exchange, new_trader(module_exchange))
    taker = client_for(module_exchange, new_trader(module_exchange))
    maker.order_limit_sell(symbol="BTCUSDT", quantity="0.01", price="41234")
    bought = taker.order_market_buy(symbol="BTCUSDT", quantity="0.01")
    assert bought["status"] == "FILLED"
    price = bought["fills"][-1]["price"]
    intervals = [getattr(Client, name) for name in dir(Client) if name.startswith("KLINE_INTERVAL_")]
    assert {"1s", "3d", "1w", "1M"} <= set(intervals) and len(intervals) == 16
    for interval in intervals:
        bars = bars_settled(  # bars may be one slot of exchange time behind an order's answer
            lambda: taker.get_klines(symbol="BTCUSDT", interval=interval, limit=1),  # noqa: B023 (read at once)
            lambda bars: len(bars) == 1 and bars[0][4] == price,
        )
        assert len(bars) == 1 and bars[0][4] == price, interval
        check_bar_bounds(interval, bars[0][0], bars[0][6])


def test_an_endpoint_the_gateway_does_not_serve_is_an_api_error_not_invalid_json(
    module_exchange: Exchange,
) -> None:
    """python-binance read the gateway's plain-text 404 as "Invalid JSON error message"."""
    client = client_for(module_exchange, new_trader(module_exchange))
    client.MARGIN_API_URL = f"{module_exchange.http_url}/sapi"
    with pytest.raises(BinanceAPIException) as refused:
        client.get_all_coins_info()  # GET /sapi/v1/capital/config/getall: a wallet endpoint
    assert (refused.value.status_code, refused.value.code) == (404, -1020)
    assert refused.value.message == "This operation is not supported."


def test_get_symbol_ticker_window_reads_the_rolling_window_ticker(module_exchange: Exchange) -> None:
    """``GET /api/v3/ticker`` was an unknown endpoint."""
    maker = client_for(module_exchange, new_trader(module_exchange))
    taker = client_for(module_exchange, new_trader(module_exchange))
    maker.order_limit_sell(symbol="BTCUSDT", quantity="0.02", price="41321")
    bought = taker.order_market_buy(symbol="BTCUSDT", quantity="0.02")
    window = bars_settled(
        lambda: taker.get_symbol_ticker_window(symbol="BTCUSDT", windowSize="15m"),
        lambda window: (
            (window["lastPrice"], window["lastId"])
            == (bought["fills"][-1]["price"], bought["fills"][-1]["tradeId"])
        ),
    )
    assert window["lastPrice"] == bought["fills"][-1]["price"] and window["count"] >= 1
    assert window["lastId"] == bought["fills"][-1]["tradeId"]


def test_trade_fees_commission_and_system_status(module_exchange: Exchange) -> None:
    client = client_for(module_exchange, new_trader(module_exchange))
    assert client.get_system_status() == {"status": 0, "msg": "normal"}
    assert client.get_trade_fee(symbol="BTCUSDT") == [
        {"symbol": "BTCUSDT", "makerCommission": "0.001", "takerCommission": "0.001"}
    ]
    assert client.get_account()["commissionRates"]["taker"] == "0.00100000"
