"""ccxt's ``binance`` class, REST and ``ccxt.pro`` WebSocket, pointed at a tradewire gateway.

Only the base URLs change, as a trader would change them: ``urls['api']`` public/private to the
gateway's ``/api/v3`` and the spot WebSocket to its ``/stream`` or ``/ws`` (ccxt appends ``/<n>``
and subscribes with frames).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import ccxt  # type: ignore[import-untyped]
import ccxt.pro  # type: ignore[import-untyped]
import httpx
import pytest

from tests.fixtures.exchange import Exchange, bars_settled
from tests.integration.gateway.conftest import Trader, new_trader

pytestmark = pytest.mark.timeout(180)


def configure(client: Any, ex: Exchange) -> Any:
    api = dict(client.urls["api"])
    api["public"] = f"{ex.http_url}/api/v3"
    api["private"] = f"{ex.http_url}/api/v3"
    api["sapi"] = f"{ex.http_url}/sapi/v1"
    if isinstance(api.get("ws"), dict):
        ws_api = {**api["ws"].get("ws-api", {}), "spot": f"{ex.ws_url}/ws-api/v3"}
        api["ws"] = {**api["ws"], "spot": f"{ex.ws_url}/stream", "ws-api": ws_api}
    client.urls["api"] = api
    client.options["fetchMarkets"] = {"types": ["spot"]}
    client.options["fetchCurrencies"] = False
    client.options["fetchMargins"] = False
    client.has["fetchCurrencies"] = False
    return client


def rest_client(ex: Exchange, trader: Trader) -> Any:
    client = configure(ccxt.binance({"apiKey": trader.user.api_key, "secret": trader.user.api_secret}), ex)
    client.load_markets()
    return client


@pytest.fixture
def pair(module_exchange: Exchange) -> Iterator[tuple[Any, Any]]:
    yield (
        rest_client(module_exchange, new_trader(module_exchange)),
        rest_client(module_exchange, new_trader(module_exchange)),
    )


def test_load_markets_with_spot_only_options_finds_the_demo_markets(module_exchange: Exchange) -> None:
    client = configure(ccxt.binance(), module_exchange)
    markets = client.load_markets()
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["precision"]["price"] == 0.01 and btc["limits"]["cost"]["min"] == 5


def test_orders_balances_and_trades_through_ccxt_rest(pair: tuple[Any, Any]) -> None:
    maker, taker = pair
    sell = maker.create_order("ETH/USDT", "limit", "sell", 2, 2500)
    assert sell["status"] == "open" and sell["id"]
    assert [o["id"] for o in maker.fetch_open_orders("ETH/USDT")] == [sell["id"]]
    buy = taker.create_order("ETH/USDT", "market", "buy", 0.5)
    assert buy["status"] == "closed" and buy["filled"] == 0.5
    book = taker.fetch_order_book("ETH/USDT")
    assert [2500.0, 1.5] in book["asks"]
    trades = taker.fetch_trades("ETH/USDT")
    assert trades[-1]["price"] == 2500 and trades[-1]["amount"] == 0.5
    mine = taker.fetch_my_trades("ETH/USDT")
    assert len(mine) == 1 and mine[0]["side"] == "buy"
    balance = taker.fetch_balance()
    assert balance["ETH"]["free"] == pytest.approx(1000 + 0.5 - 0.0005)
    fetched = maker.fetch_order(sell["id"], "ETH/USDT")
    assert fetched["filled"] == 0.5 and fetched["status"] == "open"
    canceled = maker.cancel_order(sell["id"], "ETH/USDT")
    assert canceled["status"] == "canceled"
    assert maker.fetch_open_orders("ETH/USDT") == []
    assert len(maker.fetch_orders("ETH/USDT")) == 1
    assert taker.fetch_ticker("ETH/USDT")["last"] == 2500
    candles = bars_settled(  # bars may be one slot of exchange time behind an order's answer
        lambda: taker.fetch_ohlcv("ETH/USDT", "1m"), lambda candles: bool(candles) and candles[-1][4] == 2500
    )
    assert candles[-1][4] == 2500


def test_ccxt_errors_with_refused_orders_are_ccxt_exceptions(pair: tuple[Any, Any]) -> None:
    maker, _ = pair
    with pytest.raises(ccxt.InsufficientFunds):
        maker.create_order("BTC/USDT", "limit", "buy", 90, 60000)
    with pytest.raises(ccxt.OrderNotFound):
        maker.cancel_order("999999", "BTC/USDT")


async def _burst(ex: Exchange, traders: list[Trader], orders: int, seed: int) -> None:
    rng = random.Random(seed)

    async def one(client: httpx.AsyncClient, trader: Trader, params: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": trader.user.api_key}
        r = await client.post("/api/v3/order", content=trader.sign(params), headers=headers)
        assert r.status_code in (200, 400), r.text

    async with httpx.AsyncClient(base_url=ex.http_url, timeout=30) as client:
        pending: list[Any] = []
        for _ in range(orders):
            trader = rng.choice(traders)
            side = rng.choice(["BUY", "SELL"])
            price = f"{rng.randint(9_900, 10_100) / 10:.1f}"
            params = {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                      "quantity": f"{rng.randint(1, 50) / 1000:.3f}", "price": price}  # fmt: skip
            pending.append(one(client, trader, params))
            if len(pending) >= 32:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)


def _levels(levels: list[list[Any]]) -> list[tuple[float, float]]:
    return [(float(price), float(qty)) for price, qty in levels]


@pytest.mark.asyncio
async def test_watch_order_book_through_a_burst_of_orders_equals_the_engine_book(
    module_exchange: Exchange,
) -> None:
    ex = module_exchange
    traders = [new_trader(ex) for _ in range(3)]
    watcher = configure(ccxt.pro.binance(), ex)
    latest: dict[str, Any] = {}

    async def follow() -> None:
        while True:
            latest["book"] = await watcher.watch_order_book("BTC/USDT")

    try:
        await watcher.load_markets()
        latest["book"] = await watcher.watch_order_book("BTC/USDT")
        following = asyncio.create_task(follow())
        await _burst(ex, traders, 2000, seed=7)
        async with httpx.AsyncClient(base_url=ex.http_url) as http:
            for _ in range(100):
                snapshot = (
                    await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
                ).json()
                if latest["book"]["nonce"] == snapshot["lastUpdateId"]:
                    break
                await asyncio.sleep(0.1)
        assert not following.done(), following.exception()
        following.cancel()
        book = latest["book"]
        assert book["nonce"] == snapshot["lastUpdateId"]
        assert _levels(book["bids"]) == _levels(snapshot["bids"])
        assert _levels(book["asks"]) == _levels(snapshot["asks"])
        assert len(snapshot["bids"]) + len(snapshot["asks"]) > 10
    finally:
        await watcher.close()


@pytest.mark.asyncio
async def test_watch_trades_ticker_and_ohlcv_receive_a_trade(module_exchange: Exchange) -> None:
    ex = module_exchange
    maker, taker = new_trader(ex), new_trader(ex)
    watcher = configure(ccxt.pro.binance(), ex)
    try:
        await watcher.load_markets()
        trades = asyncio.create_task(watcher.watch_trades("ETH/USDT"))
        ticker = asyncio.create_task(watcher.watch_ticker("ETH/USDT"))
        ohlcv = asyncio.create_task(watcher.watch_ohlcv("ETH/USDT", "1m"))
        # ccxt confirms its subscriptions asynchronously: trade until all three have seen a trade.
        for _ in range(20):
            r = maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.3",
                            price="2600")  # fmt: skip
            assert r.status_code == 200
            r = taker.order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.3",
                            price="2600")  # fmt: skip
            assert r.json()["status"] == "FILLED", r.text
            await asyncio.wait({trades, ticker, ohlcv}, timeout=1.0)
            if trades.done() and ticker.done() and ohlcv.done():
                break
        got = await asyncio.wait_for(trades, 10)
        assert got[-1]["price"] == 2600 and got[-1]["amount"] == 0.3 and got[-1]["side"] == "buy"
        assert (await asyncio.wait_for(ticker, 10))["last"] == 2600
        candles = await asyncio.wait_for(ohlcv, 10)
        assert candles[-1][4] == 2600
    finally:
        await watcher.close()


@pytest.mark.asyncio
async def test_on_the_ws_base_url_watch_tickers_of_every_market_and_the_streams_work(
    module_exchange: Exchange,
) -> None:
    """Binance's own spot URL form, ``/ws``: ccxt takes its messages raw, so ``watch_tickers()``
    without symbols reads the ``!ticker@arr`` arrays (inside ``/stream``'s wrapper it cannot). With
    spot markets only loaded, a market id names one market, so ccxt finds it from either URL."""
    ex = module_exchange
    maker, taker = new_trader(ex), new_trader(ex)
    watcher = configure(ccxt.pro.binance(), ex)
    watcher.urls["api"]["ws"]["spot"] = f"{ex.ws_url}/ws"
    try:
        await watcher.load_markets()
        tickers = asyncio.create_task(watcher.watch_tickers())
        trades = asyncio.create_task(watcher.watch_trades("ETH/USDT"))
        for _ in range(20):
            r = maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2",
                            price="2650")  # fmt: skip
            assert r.status_code == 200
            r = taker.order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.2",
                            price="2650")  # fmt: skip
            assert r.json()["status"] == "FILLED", r.text
            await asyncio.wait({tickers, trades}, timeout=1.0)
            if tickers.done() and trades.done():
                break
        every = await asyncio.wait_for(tickers, 10)
        assert "ETH/USDT" in every and every["ETH/USDT"]["last"] is not None
        got = await asyncio.wait_for(trades, 10)
        assert got[-1]["symbol"] == "ETH/USDT" and got[-1]["amount"] == 0.2
    finally:
        await watcher.close()


def test_trading_fees_and_status_come_from_the_sapi_endpoints(pair: tuple[Any, Any]) -> None:
    client, _ = pair
    fees = client.fetch_trading_fees()
    assert {"BTC/USDT", "ETH/USDT"} <= set(fees)
    assert (fees["BTC/USDT"]["maker"], fees["BTC/USDT"]["taker"]) == (0.001, 0.001)
    assert client.fetch_trading_fee("ETH/USDT")["taker"] == 0.001
    assert client.fetch_status()["status"] == "ok"


def test_edit_order_cancels_and_replaces_through_cancel_replace(pair: tuple[Any, Any]) -> None:
    """ccxt's ``edit_order`` on spot is ``POST /api/v3/order/cancelReplace``: the old order ends
    canceled, the new one rests; a refused cancel places nothing (STOP_ON_FAILURE) and says so."""
    maker, _ = pair
    old = maker.create_order("ETH/USDT", "limit", "sell", 1, 2711)
    new = maker.edit_order(old["id"], "ETH/USDT", "limit", "sell", 0.5, 2712)
    assert new["id"] != old["id"] and new["status"] == "open"
    assert (new["price"], new["amount"]) == (2712, 0.5)
    assert maker.fetch_order(old["id"], "ETH/USDT")["status"] == "canceled"
    assert [o["id"] for o in maker.fetch_open_orders("ETH/USDT")] == [new["id"]]
    with pytest.raises(ccxt.ExchangeError) as refused:
        maker.edit_order(old["id"], "ETH/USDT", "limit", "sell", 0.5, 2713)
    assert '"cancelResult":"FAILURE"' in str(refused.value) and '"NOT_ATTEMPTED"' in str(refused.value)
    assert [o["id"] for o in maker.fetch_open_orders("ETH/USDT")] == [new["id"]]


def test_unified_methods_a_bot_calls_answer_as_on_binance(exchange: Exchange) -> None:
    """The ccxt methods a trading bot calls beyond create/fetch/cancel: order book limits, client
    order ids, cost-based market buys, post-only, open orders of every symbol, closed and canceled
    orders, cancel-all, tickers, bids/asks and last prices of several symbols, trades since."""
    maker, taker = (rest_client(exchange, new_trader(exchange)) for _ in range(2))  # a book of their own
    maker.options["fetchOpenOrders"] = {
        **maker.options.get("fetchOpenOrders", {}),
        "warnWithoutSymbol": False,
    }
    since = maker.milliseconds() - 1000
    ask = maker.create_order("BTC/USDT", "limit", "sell", 0.5, 41111, {"clientOrderId": "ccxt-cov-ask"})
    for limit in (5, 10, 20, 50, 100, 500, 1000, 5000):
        assert maker.fetch_order_book("BTC/USDT", limit)["asks"] == [[41111, 0.5]]
    assert maker.fetch_order(None, "BTC/USDT", {"clientOrderId": "ccxt-cov-ask"})["id"] == ask["id"]
    bid = maker.create_order("ETH/USDT", "limit", "buy", 1, 1111, {"postOnly": True})
    assert bid["info"]["type"] == "LIMIT_MAKER"
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        taker.create_order("BTC/USDT", "limit", "buy", 0.01, 41111, {"timeInForce": "PO"})
    assert {o["id"] for o in maker.fetch_open_orders()} == {ask["id"], bid["id"]}
    bought = taker.create_market_buy_order_with_cost("BTC/USDT", 411.11)
    assert bought["filled"] == 0.01 and bought["cost"] == pytest.approx(411.11)
    ioc = taker.create_order("BTC/USDT", "limit", "buy", 0.01, 41111, {"timeInForce": "IOC"})
    assert ioc["status"] == "closed" and ioc["filled"] == 0.01
    mine = taker.fetch_my_trades("BTC/USDT", since, 1)
    assert [t["order"] for t in mine] == [bought["id"]]  # the oldest from since, as Binance
    assert [t["id"] for t in taker.fetch_trades("BTC/USDT", since)][-2:] == [
        t["id"] for t in taker.fetch_my_trades("BTC/USDT", since)
    ]
    assert [o["id"] for o in taker.fetch_closed_orders("BTC/USDT", since)] == [bought["id"], ioc["id"]]
    canceled = maker.cancel_all_orders("BTC/USDT")
    assert [o["id"] for o in canceled] == [ask["id"]] and canceled[0]["status"] == "canceled"
    assert (
        maker.cancel_order(None, "ETH/USDT", {"clientOrderId": bid["clientOrderId"]})["status"] == "canceled"
    )
    assert {o["id"] for o in maker.fetch_canceled_orders("BTC/USDT")} == {ask["id"]}
    assert maker.fetch_open_orders() == []
    assert abs(maker.fetch_time() - maker.milliseconds()) < 5000
    tickers = taker.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"} and tickers["BTC/USDT"]["last"] == 41111
    assert set(taker.fetch_bids_asks(["BTC/USDT", "ETH/USDT"])) == {"BTC/USDT", "ETH/USDT"}
    assert taker.fetch_last_prices(["BTC/USDT"])["BTC/USDT"]["price"] == 41111


def test_fetch_ohlcv_in_every_timeframe_binance_serves(module_exchange: Exchange) -> None:
    """ccxt's binance timeframes, 1s to 1M, each a candle that holds the last trade. The trade is
    in the trades at once; the candles (like the kline streams) may be one 100-ms slot of exchange
    time behind, so each is read until it holds it, for at most a few seconds."""
    maker, taker = (rest_client(module_exchange, new_trader(module_exchange)) for _ in range(2))
    maker.create_order("ETH/USDT", "limit", "sell", 0.2, 2713)
    bought = taker.create_order("ETH/USDT", "market", "buy", 0.2)
    assert bought["status"] == "closed"
    last = taker.fetch_trades("ETH/USDT", limit=1)[-1]
    assert set(taker.timeframes) == {
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
    }  # fmt: skip
    for timeframe in taker.timeframes:
        candles = bars_settled(
            lambda: taker.fetch_ohlcv("ETH/USDT", timeframe, limit=2),  # noqa: B023 (read at once)
            lambda candles: bool(candles) and candles[-1][4] == last["price"],
        )
        assert candles and candles[-1][4] == last["price"], timeframe
        assert candles[-1][0] <= last["timestamp"], timeframe
