"""The REST API against a real exchange: public data, signed trading, and what is refused."""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal
from typing import Any

import httpx
import orjson
import redis

from tests.fixtures.exchange import Exchange, bars_settled
from tests.integration.gateway.conftest import Trader, check_bar_bounds, new_trader
from tradewire import keys
from tradewire.demo import DEMO_CONFIG
from tradewire.journal.entries import command_fields


def test_exchange_info_with_demo_markets_lists_symbols_with_filters(module_exchange: Exchange) -> None:
    info = httpx.get(f"{module_exchange.http_url}/api/v3/exchangeInfo").json()
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert set(symbols) == {"BTCUSDT", "ETHUSDT"}
    filters = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001"
    assert filters["NOTIONAL"]["minNotional"] == "5"
    url = f"{module_exchange.http_url}/api/v3/exchangeInfo"
    trading = httpx.get(url, params={"symbolStatus": "TRADING"}).json()["symbols"]
    assert [s["symbol"] for s in trading] == [s["symbol"] for s in info["symbols"]]
    assert httpx.get(url, params={"symbolStatus": "HALT"}).json()["symbols"] == []
    assert httpx.get(url, params={"symbolStatus": "OPEN"}).json()["code"] == -1100
    assert httpx.get(url, params={"symbolStatus": "TRADING", "symbol": "BTCUSDT"}).json()["code"] == -1128


def test_ping_time_and_openapi_with_no_key_answer(module_exchange: Exchange) -> None:
    base = module_exchange.http_url
    assert httpx.get(f"{base}/api/v3/ping").json() == {}
    server_time = httpx.get(f"{base}/api/v3/time").json()["serverTime"]
    assert abs(server_time - time.time() * 1000) < 5000
    spec = httpx.get(f"{base}/openapi.json").json()
    assert "/api/v3/order" in spec["paths"] and "delete" in spec["paths"]["/api/v3/order"]


def test_depth_with_resting_orders_returns_sorted_levels_and_last_update_id(trader: Trader) -> None:
    for price in ("30000", "30001", "29999"):
        r = trader.order(
            symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price=price
        )
        assert r.status_code == 200, r.text
    r = trader.order(
        symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2", price="40000"
    )
    assert r.status_code == 200, r.text
    book = trader.http.get("/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 2}).json()
    assert book["lastUpdateId"] >= 4
    assert [level[0] for level in book["bids"]] == ["30001", "30000"]
    assert book["asks"][0] == ["40000", "0.2"]


def test_limit_order_that_crosses_returns_full_response_with_fills(module_exchange: Exchange) -> None:
    maker = new_trader(module_exchange)
    taker = new_trader(module_exchange)
    r = maker.order(
        symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.5", price="50000"
    )
    assert r.status_code == 200
    sell = r.json()
    assert sell["status"] == "NEW" and sell["orderId"] > 0
    r = taker.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.2", newClientOrderId="take-1")
    body = r.json()
    assert r.status_code == 200, body
    assert body["clientOrderId"] == "take-1"
    assert body["status"] == "FILLED" and body["executedQty"] == "0.2"
    assert body["fills"][0]["price"] == "50000" and body["fills"][0]["commissionAsset"] == "BTC"
    trades = taker.get("/api/v3/myTrades", symbol="BTCUSDT").json()
    assert [t["orderId"] for t in trades] == [body["orderId"]]
    assert trades[0]["isBuyer"] is True
    queried = maker.get("/api/v3/order", symbol="BTCUSDT", orderId=sell["orderId"]).json()
    assert queried["status"] == "PARTIALLY_FILLED" and queried["executedQty"] == "0.2"
    recent = maker.http.get("/api/v3/trades", params={"symbol": "BTCUSDT"}).json()
    assert recent[-1]["price"] == "50000" and recent[-1]["qty"] == "0.2"


def test_ack_response_type_with_new_order_already_has_order_id(trader: Trader) -> None:
    r = trader.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                     price="10000", newOrderRespType="ACK")  # fmt: skip
    body = r.json()
    assert r.status_code == 200
    assert set(body) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert body["orderId"] > 0 and body["clientOrderId"]


def test_cancel_by_client_order_id_with_open_order_returns_canceled(trader: Trader) -> None:
    r = trader.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                     price="10000", newClientOrderId="mine-1")  # fmt: skip
    order_id = r.json()["orderId"]
    assert order_id in [o["orderId"] for o in trader.get("/api/v3/openOrders", symbol="BTCUSDT").json()]
    restricted = trader.delete(
        "/api/v3/order", symbol="BTCUSDT", orderId=order_id, cancelRestrictions="ONLY_NEW"
    )
    assert restricted.status_code == 400 and restricted.json()["code"] == -1145  # refused, never ignored
    assert order_id in [o["orderId"] for o in trader.get("/api/v3/openOrders", symbol="BTCUSDT").json()]
    r = trader.delete("/api/v3/order", symbol="BTCUSDT", origClientOrderId="mine-1", newClientOrderId="cx-1")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELED" and r.json()["orderId"] == order_id
    # as on Binance: the order's own client id, and the cancel's
    assert (r.json()["origClientOrderId"], r.json()["clientOrderId"]) == ("mine-1", "cx-1")
    assert order_id not in [o["orderId"] for o in trader.get("/api/v3/openOrders").json()]
    again = trader.delete("/api/v3/order", symbol="BTCUSDT", orderId=order_id)
    assert again.status_code == 400 and again.json()["code"] == -2011
    every = trader.get("/api/v3/allOrders", symbol="BTCUSDT").json()
    assert any(o["orderId"] == order_id and o["status"] == "CANCELED" for o in every)


def test_account_with_deposits_and_a_resting_buy_shows_free_and_locked(module_exchange: Exchange) -> None:
    t = new_trader(module_exchange, {"USDT": "1000"})
    r = t.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="20000")
    assert r.status_code == 200
    listed = t.get("/api/v3/account").json()["balances"]
    balances = {b["asset"]: b for b in listed}
    assert balances["USDT"] == {"asset": "USDT", "free": "800", "locked": "200"}
    # every asset of the exchange, the ones never held at zero (python-binance's get_asset_balance
    # and ccxt's fetch_balance look an asset up in the list), unless omitZeroBalances=true
    assert [b["asset"] for b in listed] == sorted(module_exchange.config["assets"])
    assert balances["BTC"] == {"asset": "BTC", "free": "0", "locked": "0"}
    only = t.get("/api/v3/account", omitZeroBalances="true").json()["balances"]
    assert only == [balances["USDT"]]


def test_order_past_the_filters_maxima_is_refused_as_exchange_info_says(module_exchange: Exchange) -> None:
    rich = new_trader(module_exchange, {"BTC": "10"})
    info = rich.http.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"}).json()
    price_filter = next(f for f in info["symbols"][0]["filters"] if f["filterType"] == "PRICE_FILTER")
    too_high = str(int(price_filter["maxPrice"]) * 2)
    for path in ("/api/v3/order", "/api/v3/order/test"):
        r = rich.post(path, symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.001",
                      price=too_high)  # fmt: skip
        assert r.status_code == 400 and r.json() == {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}
    assert rich.get("/api/v3/openOrders", symbol="BTCUSDT").json() == []


def test_fok_order_that_cannot_fill_answers_an_expired_order_as_binance(module_exchange: Exchange) -> None:
    """Binance accepts an FOK it cannot fill and answers it EXPIRED (200), not as an error."""
    t = new_trader(module_exchange, {"USDT": "1000"})
    r = t.order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="FOK", quantity="10", price="2",
                newClientOrderId="fok-1")  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["executedQty"], body["fills"], body["clientOrderId"]) == (
        "EXPIRED",
        "0",
        [],
        "fok-1",
    )
    query = t.get("/api/v3/order", symbol="ETHUSDT", origClientOrderId="fok-1").json()
    assert (query["orderId"], query["status"], query["timeInForce"]) == (body["orderId"], "EXPIRED", "FOK")
    assert t.get("/api/v3/openOrders", symbol="ETHUSDT").json() == []
    balances = {b["asset"]: b for b in t.get("/api/v3/account").json()["balances"]}
    assert balances["USDT"] == {"asset": "USDT", "free": "1000", "locked": "0"}


def test_order_rejected_by_the_engine_answers_binance_error(module_exchange: Exchange) -> None:
    poor = new_trader(module_exchange, {"USDT": "10"})
    r = poor.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="20000")
    assert r.status_code == 400
    assert r.json() == {"code": -2010, "msg": "Account has insufficient balance for requested action."}
    r = poor.order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="1.001"
    )
    assert r.json()["code"] == -1013
    r = poor.order(symbol="NOPE", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="1")
    assert r.json()["code"] == -1121
    # a symbol is taken as exchangeInfo lists it, as Binance takes it: lower case is -1100
    for symbol in ("btcusdt", "\u212aBTCUSDT", "BTC/USDT"):
        r = poor.order(symbol=symbol, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="1")
        assert r.json() == {
            "code": -1100,
            "msg": "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
        }, symbol
    r = poor.get("/api/v3/ticker/price", symbols='["BTCUSDT","ethusdt"]')
    assert r.json()["code"] == -1100 and "parameter 'symbols'; legal range is '^\\[(" in r.json()["msg"]
    # letters that str.upper() turns into ASCII ones (long s, dotless i) are no side or type
    for field, value in (("side", "\u017fell"), ("type", "l\u0131m\u0131t"), ("timeInForce", "\u0131oc")):
        fields = {"side": "SELL", "type": "LIMIT", "timeInForce": "GTC"} | {field: value}
        r = poor.order(symbol="BTCUSDT", quantity="0.001", price="900000", **fields)
        assert r.status_code == 400 and r.json()["code"] in (-1100, -1115, -1116), (field, r.text)
    r = poor.order(symbol="BTCUSDT", side="BUY", type="STOP_LOSS", quantity="1")
    assert r.json()["code"] == -1116
    r = poor.order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="1", price="1")
    assert r.json()["code"] == -1102 and "timeInForce" in r.json()["msg"]


def test_signed_request_with_wrong_signature_is_refused(trader: Trader) -> None:
    query = trader.sign({"symbol": "BTCUSDT"}, secret="not-the-secret")
    r = trader.http.get(f"/api/v3/openOrders?{query}")
    assert r.status_code == 400 and r.json()["code"] == -1022


def test_signed_request_with_a_non_ascii_signature_is_a_json_bad_signature(trader: Trader) -> None:
    body = trader.sign({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                        "quantity": "1", "price": "1"}).rsplit("signature=", 1)[0]  # fmt: skip
    for signature, code in (("é".encode(), -1022), (b"\xff\xfe", -1100)):  # -1100: not even UTF-8
        r = trader.http.post(
            "/api/v3/order",
            content=body.encode() + b"signature=" + signature,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400 and r.json()["code"] == code


def test_signed_request_with_old_timestamp_is_refused(trader: Trader) -> None:
    stale = int(time.time() * 1000) - 60_000
    r = trader.http.get(f"/api/v3/account?{trader.sign({}, timestamp=stale)}")
    assert r.status_code == 400 and r.json()["code"] == -1021
    future = int(time.time() * 1000) + 10_000
    r = trader.http.get(f"/api/v3/account?{trader.sign({}, timestamp=future)}")
    assert r.json()["code"] == -1021


def test_signed_request_with_unknown_or_missing_key_is_refused(trader: Trader) -> None:
    query = trader.sign({})
    url = f"{str(trader.http.base_url).rstrip('/')}/api/v3/account?{query}"
    r = httpx.get(url, headers={"X-MBX-APIKEY": "x" * 64})
    assert r.status_code == 401 and r.json()["code"] == -2015
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["code"] == -2014


def test_one_user_with_another_users_order_id_cannot_read_or_cancel_it(module_exchange: Exchange) -> None:
    alice = new_trader(module_exchange)
    mallory = new_trader(module_exchange)
    r = alice.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                    price="10000", newClientOrderId="secret-plan")  # fmt: skip
    order_id = r.json()["orderId"]
    assert mallory.get("/api/v3/order", symbol="BTCUSDT", orderId=order_id).json()["code"] == -2013
    r = mallory.get("/api/v3/order", symbol="BTCUSDT", origClientOrderId="secret-plan")
    assert r.json()["code"] == -2013
    assert mallory.delete("/api/v3/order", symbol="BTCUSDT", orderId=order_id).json()["code"] == -2011
    assert order_id not in [o["orderId"] for o in mallory.get("/api/v3/openOrders").json()]
    assert alice.get("/api/v3/order", symbol="BTCUSDT", orderId=order_id).json()["status"] == "NEW"


def test_ticker_and_klines_after_a_trade_report_it(module_exchange: Exchange) -> None:
    maker = new_trader(module_exchange)
    taker = new_trader(module_exchange)
    maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="35000")
    r = taker.order(
        symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="IOC", quantity="1", price="35000"
    )
    assert r.json()["status"] == "FILLED"
    base = module_exchange.http_url
    ticker = httpx.get(f"{base}/api/v3/ticker/24hr", params={"symbol": "ETHUSDT"}).json()
    assert ticker["lastPrice"] == "35000" and ticker["count"] >= 1
    mini = httpx.get(f"{base}/api/v3/ticker/24hr", params={"symbol": "ETHUSDT", "type": "MINI"}).json()
    assert list(mini) == ["symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume",
                          "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count"]  # fmt: skip
    assert mini["lastPrice"] == "35000" and mini["count"] == ticker["count"]
    minis = httpx.get(f"{base}/api/v3/ticker/24hr", params={"type": "MINI"}).json()
    assert {t["symbol"] for t in minis} == {"BTCUSDT", "ETHUSDT"} and all("bidPrice" not in t for t in minis)
    bad_type = httpx.get(f"{base}/api/v3/ticker/24hr", params={"symbol": "ETHUSDT", "type": "TINY"})
    assert bad_type.status_code == 400 and bad_type.json()["code"] == -1139
    price = httpx.get(f"{base}/api/v3/ticker/price", params={"symbol": "ETHUSDT"}).json()
    assert price == {"symbol": "ETHUSDT", "price": "35000"}
    bars = bars_settled(
        lambda: httpx.get(f"{base}/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1m"}).json(),
        lambda bars: bool(bars) and bars[-1][4] == "35000",
    )
    assert bars and bars[-1][4] == "35000"
    everything = httpx.get(f"{base}/api/v3/ticker/bookTicker").json()
    assert {t["symbol"] for t in everything} == {"BTCUSDT", "ETHUSDT"}
    bad = httpx.get(f"{base}/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "7m"})
    assert bad.status_code == 400 and bad.json()["code"] == -1120

    # timeZone: an offset that leaves the bars where UTC's are (a whole number of the interval) is
    # served; one that would move them is refused rather than answered with UTC bars
    def klines(zone: str, interval: str = "1m") -> httpx.Response:
        params = {"symbol": "ETHUSDT", "interval": interval, "timeZone": zone}
        return httpx.get(f"{base}/api/v3/klines", params=params)

    for zone in ("0", "+0", "-00:00", "00:00", "8", "-5:30", "+14:00"):
        same = klines(zone)
        assert same.status_code == 200 and same.json()[0] == bars[0], zone
    for zone, interval in (("8", "1h"), ("-5:30", "30m"), ("5:45", "15m")):
        assert klines(zone, interval).status_code == 200, (zone, interval)
    refusals = [("5:30", "1h", -1020), ("8", "1d", -1020), ("-1", "1w", -1020), ("1", "1M", -1020)]
    refusals += [(zone, "1m", -1100) for zone in ("abc", "15", "-13", "5:60", "\uff18")]
    for zone, interval, code in refusals:
        refused = klines(zone, interval)
        assert refused.status_code == 400 and refused.json()["code"] == code, (zone, interval, refused.text)


def test_trading_day_ticker_is_the_statistics_of_the_days_bar(module_exchange: Exchange) -> None:
    """``GET /api/v3/ticker/tradingDay`` (python-binance's ``get_trading_day_ticker``): the UTC day's
    1d bar as a ticker, its ids those the bar counts; MINI without the change fields."""
    maker = new_trader(module_exchange)
    taker = new_trader(module_exchange)
    maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.5", price="35100")
    taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.5")
    base = module_exchange.http_url

    def day_bar() -> list[Any]:
        bars: list[Any] = httpx.get(
            f"{base}/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1d", "limit": 1}
        ).json()
        return bars

    [bar] = bars_settled(day_bar, lambda bars: bool(bars) and bars[-1][4] == "35100")
    day = httpx.get(f"{base}/api/v3/ticker/tradingDay", params={"symbol": "ETHUSDT"}).json()
    assert (day["openTime"], day["closeTime"]) == (bar[0], bar[0] + 86_399_999)
    assert [day[f] for f in ("openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume")] == [
        bar[1],
        bar[2],
        bar[3],
        bar[4],
        bar[5],
        bar[7],
    ]
    assert day["count"] == bar[8] and day["lastId"] - day["firstId"] + 1 == bar[8]
    assert {"priceChange", "priceChangePercent", "weightedAvgPrice"} <= day.keys()
    both = httpx.get(
        f"{base}/api/v3/ticker/tradingDay", params={"symbols": '["BTCUSDT","ETHUSDT"]', "type": "MINI"}
    ).json()
    assert [t["symbol"] for t in both] == ["BTCUSDT", "ETHUSDT"] and "priceChange" not in both[1]
    for params, code in (({}, -1102), ({"symbol": "ETHUSDT", "timeZone": "8"}, -1020),
                         ({"symbol": "ETHUSDT", "type": "HALF"}, -1139)):  # fmt: skip
        bad = httpx.get(f"{base}/api/v3/ticker/tradingDay", params=params)
        assert bad.status_code == 400 and bad.json()["code"] == code, params


BINANCE_INTERVALS = [
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
]


def holds_trade_at(bar: list[Any], at: int) -> bool:
    """A kline whose bucket holds time ``at`` and which counts at least one trade."""
    return bool(bar[0] <= at <= bar[6] and bar[8] >= 1)


def test_klines_of_every_binance_interval_hold_the_trade_in_its_bucket(module_exchange: Exchange) -> None:
    maker, taker = new_trader(module_exchange), new_trader(module_exchange)
    maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.5", price="35100")
    r = taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.5")
    assert r.json()["status"] == "FILLED", r.text
    trade_id = max(fill["tradeId"] for fill in r.json()["fills"])
    base = module_exchange.http_url
    at = r.json()["transactTime"]
    for interval in BINANCE_INTERVALS:
        for path in ("klines", "uiKlines"):
            params = {"symbol": "ETHUSDT", "interval": interval}
            got = bars_settled(  # the bucket may be there already, opened flat by an earlier batch
                lambda: httpx.get(f"{base}/api/v3/{path}", params=params),  # noqa: B023 (read at once)
                lambda got: got.status_code != 200 or holds_trade_at(got.json()[-1], at),
            )
            assert got.status_code == 200, (interval, got.text)
            bar = got.json()[-1]
            check_bar_bounds(interval, bar[0], bar[6])
            assert bar[0] <= r.json()["transactTime"] <= bar[6] and bar[8] >= 1
    last = httpx.get(f"{base}/api/v3/trades", params={"symbol": "ETHUSDT", "limit": 1}).json()[0]
    assert last["id"] == trade_id
    month = bars_settled(
        lambda: httpx.get(f"{base}/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1M"}).json()[-1],
        lambda month: month[4] == last["price"],
    )
    assert month[4] == last["price"]
    for wrong in ("1W", "1h ", "2d", "1y", "60m"):
        bad = httpx.get(f"{base}/api/v3/klines", params={"symbol": "ETHUSDT", "interval": wrong})
        assert bad.status_code == 400 and bad.json()["code"] == -1120, wrong


def test_metrics_and_health_endpoints_answer(module_exchange: Exchange) -> None:
    base = module_exchange.http_url
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").json()["ready"] is True
    assert "tradewire_http_requests_total" in httpx.get(f"{base}/metrics").text


def test_trading_page_and_its_chart_library_are_served_when_installed(module_exchange: Exchange) -> None:
    from tradewire.gateway.app import WEB_ROOT

    base = module_exchange.http_url
    if (WEB_ROOT / "static" / "index.html").exists():
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    vendor = WEB_ROOT / "node_modules" / "lightweight-charts" / "dist"
    if vendor.is_dir():
        name = sorted(p.name for p in vendor.iterdir() if p.is_file())[0]
        assert httpx.get(f"{base}/vendor/lightweight-charts/{name}").status_code == 200
    assert httpx.get(f"{base}/no-such-page").status_code == 404


def test_avg_price_weighs_the_last_five_minutes_trades_by_volume(exchange: Exchange) -> None:
    base = exchange.http_url
    empty = httpx.get(f"{base}/api/v3/avgPrice", params={"symbol": "ETHUSDT"}).json()
    assert empty == {"mins": 5, "price": "0", "closeTime": 0}
    maker, taker = new_trader(exchange), new_trader(exchange)
    for qty, price in (("1", "100"), ("3", "200.01")):
        maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity=qty, price=price)
        filled = taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity=qty)
        assert filled.json()["status"] == "FILLED", filled.text
    average = bars_settled(
        lambda: httpx.get(f"{base}/api/v3/avgPrice", params={"symbol": "ETHUSDT"}).json(),
        lambda average: average["price"] == "175.0075",
    )
    # (1 x 100 + 3 x 200.01) / 4 = 175.0075, rounded down at USDT's precision
    assert average["mins"] == 5 and average["price"] == "175.0075"
    last = httpx.get(f"{base}/api/v3/trades", params={"symbol": "ETHUSDT", "limit": 1}).json()[0]
    assert average["closeTime"] == last["time"]
    params = {"symbol": "ETHUSDT", "interval": "1m"}
    assert (
        httpx.get(f"{base}/api/v3/uiKlines", params=params).json()
        == httpx.get(f"{base}/api/v3/klines", params=params).json()
    )
    missing = httpx.get(f"{base}/api/v3/avgPrice")
    assert missing.status_code == 400 and missing.json()["code"] == -1102


def test_all_orders_pages_by_id_and_time_as_filtering_every_record_would(module_exchange: Exchange) -> None:
    """allOrders reads the market's index page by page: for each way of asking (newest ``limit``,
    from ``orderId``, from ``startTime``, up to ``endTime``, a window, pages smaller than the answer)
    it must give what filtering every record the user has gives (the old way, still the definition)."""
    t = new_trader(module_exchange)
    for i in range(36):
        symbol = "BTCUSDT" if i % 4 else "ETHUSDT"  # another market's orders interleave in id and time
        tif = "GTC" if i % 3 else "IOC"  # IOCs far from the book expire at once: closed orders too
        price = f"{100 + i}"
        r = t.order(symbol=symbol, side="BUY", type="LIMIT", timeInForce=tif, quantity="1", price=price)
        assert r.status_code == 200, r.text
        if i % 9 == 0:
            time.sleep(0.02)  # a few orders apart in time
    client = redis.Redis.from_url(module_exchange.redis_url)
    records = sorted(
        (orjson.loads(raw) for raw in client.hgetall(keys.orders(t.user.name)).values()),
        key=lambda r: r["orderId"],
    )
    client.close()
    btc = [r for r in records if r["symbol"] == "BTCUSDT"]
    assert len(btc) == 27
    times = [r["time"] for r in btc]
    assert times == sorted(times) and len(set(times)) > 3

    def expected(from_id: int | None, start: int | None, end: int | None, limit: int) -> list[int]:
        chosen = [
            r["orderId"] for r in btc
            if (from_id is None or r["orderId"] >= from_id)
            and (start is None or r["time"] >= start) and (end is None or r["time"] <= end)
        ]  # fmt: skip
        return chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]

    middle, later = btc[9], btc[20]
    cases: list[tuple[int | None, int | None, int | None, int]] = [
        (None, None, None, 500),
        (None, None, None, 7),
        (middle["orderId"], None, None, 5),
        (middle["orderId"], None, None, 500),
        (None, middle["time"], None, 6),
        (None, middle["time"], None, 500),
        (None, None, later["time"], 8),
        (None, middle["time"], later["time"], 4),
        (None, middle["time"], later["time"], 500),
        (middle["orderId"], None, later["time"], 500),
        (btc[-1]["orderId"] + 1000, None, None, 10),
    ]
    for from_id, start, end, limit in cases:
        params: dict[str, Any] = {"symbol": "BTCUSDT", "limit": limit}
        for name, value in (("orderId", from_id), ("startTime", start), ("endTime", end)):
            if value is not None:
                params[name] = value
        answer = t.get("/api/v3/allOrders", **params)
        assert answer.status_code == 200, answer.text
        got = [o["orderId"] for o in answer.json()]
        assert got == expected(from_id, start, end, limit), params
        assert all(o["symbol"] == "BTCUSDT" for o in answer.json())


def test_my_trades_pages_by_trade_id_and_time_as_filtering_every_fill_would(exchange: Exchange) -> None:
    """myTrades reads the market's fills stream by trade id, a page at a time: for each way of
    asking it must give what filtering every fill of the user gives (the old way). A fresh exchange:
    no other test's orders in the books to meet."""
    maker, taker = new_trader(exchange), new_trader(exchange)
    taker_orders = []
    for i in range(30):
        symbol = "BTCUSDT" if i % 3 else "ETHUSDT"  # the other market's fills are not in this stream
        price = f"{100 + i}"
        assert maker.order(symbol=symbol, side="SELL", type="LIMIT", timeInForce="GTC", quantity="2",
                           price=price).status_code == 200  # fmt: skip
        for _ in range(2):  # two fills of each resting order
            r = taker.order(
                symbol=symbol, side="BUY", type="LIMIT", timeInForce="IOC", quantity="1", price=price
            )
            assert r.status_code == 200, r.text
            taker_orders.append(r.json()["orderId"])
        if i % 7 == 0:
            time.sleep(0.02)
    every = taker.get("/api/v3/myTrades", symbol="BTCUSDT", limit=1000).json()
    assert len(every) == 40 and [t["id"] for t in every] == sorted(t["id"] for t in every)
    times = [t["time"] for t in every]
    assert times == sorted(times) and len(set(times)) > 3

    def expected(params: dict[str, Any]) -> list[int]:
        from_id, start, end = params.get("fromId"), params.get("startTime"), params.get("endTime")
        order_id, limit = params.get("orderId"), params["limit"]
        chosen = [
            t["id"] for t in every
            if (from_id is None or t["id"] >= from_id) and (order_id is None or t["orderId"] == order_id)
            and (start is None or t["time"] >= start) and (end is None or t["time"] <= end)
        ]  # fmt: skip
        return chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]

    middle, later = every[12], every[30]
    cases: list[dict[str, Any]] = [
        {"limit": 500},
        {"limit": 7},
        {"fromId": middle["id"], "limit": 5},
        {"fromId": middle["id"], "limit": 500},
        {"startTime": middle["time"], "limit": 6},
        {"endTime": later["time"], "limit": 8},
        {"startTime": middle["time"], "endTime": later["time"], "limit": 4},
        {"fromId": middle["id"], "endTime": later["time"], "limit": 500},
        {"orderId": middle["orderId"], "limit": 3},
        {"fromId": every[-1]["id"] + 1000, "limit": 10},
        {"fromId": 2**63 - 1, "limit": 10},
    ]
    for case in cases:
        answer = taker.get("/api/v3/myTrades", symbol="BTCUSDT", **case)
        assert answer.status_code == 200, answer.text
        assert [t["id"] for t in answer.json()] == expected(case), case
    for from_id in (-1, 2**63, 2**64):  # not trade ids: refused before they reach the stream read
        answer = taker.get("/api/v3/myTrades", symbol="BTCUSDT", fromId=from_id)
        assert answer.status_code == 400 and answer.json()["code"] == -1100, answer.text
    assert all(t["isBuyer"] and not t["isMaker"] for t in every)
    assert {t["orderId"] for t in every} <= set(taker_orders)


def _journal_length(ex: Exchange) -> int:
    client = redis.Redis.from_url(ex.redis_url)
    try:
        return int(client.xlen(keys.COMMANDS))
    finally:
        client.close()


def test_cancel_with_a_malformed_client_id_or_an_order_id_over_64_bits_journals_nothing(
    module_exchange: Exchange,
) -> None:
    """Every cancel command is journalled for good: one with a megabyte of client id, or an order id
    orjson cannot write (which answered a 500 with a traceback), must be refused before it."""
    t = new_trader(module_exchange)
    placed = t.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                     price="10000")  # fmt: skip
    order_id = placed.json()["orderId"]
    before = _journal_length(module_exchange)
    for client_id in ("x" * 60_000, "\x00\xff\"'<>"):
        r = t.delete("/api/v3/order", symbol="BTCUSDT", origClientOrderId=client_id)
        assert r.status_code == 400 and r.json()["code"] == -1100, r.text
        assert "'origClientOrderId'; legal range is '^[.A-Za-z0-9:/_-]{1,36}$'" in r.json()["msg"]
    for bad_id in ("99999999999999999999", f"+{order_id}", f" {order_id}", "-1"):
        r = t.delete("/api/v3/order", symbol="BTCUSDT", orderId=bad_id)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json", r.text
        assert r.json() == {
            "code": -1100,
            "msg": "Illegal characters found in parameter 'orderId'; "
            "legal range is '0 to 9223372036854775807'.",
        }
    r = t.get("/api/v3/order", symbol="BTCUSDT", origClientOrderId="y" * 37)
    assert r.json()["code"] == -1100
    r = t.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                price="10000", newClientOrderId="z" * 37)  # fmt: skip
    assert r.json()["code"] == -1100
    assert _journal_length(module_exchange) == before
    assert t.get("/api/v3/order", symbol="BTCUSDT", orderId=order_id).json()["status"] == "NEW"


def test_integer_parameters_take_ascii_digits_only(trader: Trader) -> None:
    base = str(trader.http.base_url).rstrip("/")
    for query in ("symbol=BTCUSDT&limit=%2B5", "symbol=BTCUSDT&limit=5_0", "symbol=BTCUSDT&limit=-5"):
        r = httpx.get(f"{base}/api/v3/depth?{query}")
        assert r.status_code == 400 and r.json()["code"] == -1100, query
    stamp = str(int(time.time() * 1000))
    for timestamp in (f"+{stamp}", f" {stamp} ", f"{stamp[:3]}_{stamp[3:]}"):
        r = trader.http.get(f"/api/v3/account?{trader.sign({}, timestamp=timestamp)}")  # type: ignore[arg-type]
        assert r.status_code == 400 and r.json()["code"] == -1100, timestamp
        assert "'timestamp'" in r.json()["msg"]


def test_a_request_over_64_kib_is_refused_with_413_before_it_is_read(trader: Trader) -> None:
    padding = "x" * 70_000
    r = trader.post("/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="0.001", price="10000", newClientOrderId=padding)  # fmt: skip
    assert r.status_code == 413 and r.json()["code"] == -1101, r.text
    assert "65536 bytes" in r.json()["msg"]
    half = "x" * 40_000  # uvicorn itself refuses a request line over 64 KiB; the limit counts both parts
    r = trader.http.post(f"/api/v3/order?pad={half}", content=f"pad2={half}")
    assert r.status_code == 413 and r.json()["code"] == -1101
    assert trader.get("/api/v3/openOrders", symbol="BTCUSDT").json() == []


def test_order_id_and_client_id_that_name_different_orders_cancel_and_find_nothing(
    module_exchange: Exchange,
) -> None:
    """Binance: with both, the order found by ``orderId`` must also have ``origClientOrderId``."""
    t = new_trader(module_exchange)
    ids = {}
    for client_id in ("pair-a", "pair-b"):
        r = t.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                    price="10000", newClientOrderId=client_id)  # fmt: skip
        ids[client_id] = r.json()["orderId"]
    a, b = ids["pair-a"], ids["pair-b"]
    for client_id in ("pair-b", "nonexistent"):
        r = t.get("/api/v3/order", symbol="BTCUSDT", orderId=a, origClientOrderId=client_id)
        assert r.status_code == 400 and r.json() == {"code": -2013, "msg": "Order does not exist."}
        before = _journal_length(module_exchange)
        r = t.delete("/api/v3/order", symbol="BTCUSDT", orderId=a, origClientOrderId=client_id)
        assert r.status_code == 400 and r.json() == {"code": -2011, "msg": "Unknown order sent."}
        assert _journal_length(module_exchange) == before
    assert {o["orderId"] for o in t.get("/api/v3/openOrders", symbol="BTCUSDT").json()} == {a, b}
    r = t.get("/api/v3/order", symbol="BTCUSDT", orderId=b, origClientOrderId="pair-b")
    assert r.json()["orderId"] == b
    r = t.delete("/api/v3/order", symbol="BTCUSDT", orderId=b, origClientOrderId="pair-b")
    assert r.status_code == 200 and r.json()["orderId"] == b and r.json()["status"] == "CANCELED"
    assert [o["orderId"] for o in t.get("/api/v3/openOrders", symbol="BTCUSDT").json()] == [a]


def _signed_raw(t: Trader, query: str, body: str) -> httpx.Response:
    """A POST /api/v3/order signed over the query string and body exactly as written."""
    body += f"&timestamp={int(time.time() * 1000)}"
    signature = hmac.new(t.user.api_secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    return t.http.post(f"/api/v3/order?{query}", content=f"{body}&signature={signature}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip


def test_a_parameter_twice_is_refused_and_the_query_wins_over_the_body(module_exchange: Exchange) -> None:
    t = new_trader(module_exchange)
    order = "symbol=BTCUSDT&type=LIMIT&timeInForce=GTC&quantity=0.001&price=10000"
    before = _journal_length(module_exchange)
    r = _signed_raw(t, "", f"{order}&side=SELL&side=BUY")
    assert r.status_code == 400 and r.json() == {
        "code": -1101,
        "msg": "Duplicate values for a parameter detected.",
    }
    r = _signed_raw(t, "side=SELL&side=BUY", order)
    assert r.json()["code"] == -1101
    assert _journal_length(module_exchange) == before
    r = _signed_raw(
        t, "side=BUY&newClientOrderId=from-query", f"{order}&side=SELL&newClientOrderId=from-body"
    )
    assert r.status_code == 200, r.text
    assert (r.json()["side"], r.json()["clientOrderId"]) == ("BUY", "from-query")


def test_a_form_body_is_utf8_and_invalid_utf8_is_refused(module_exchange: Exchange) -> None:
    t = new_trader(module_exchange)
    order = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&price=10000"
    for quantity in ("\u0663", "%D9%A3"):  # ARABIC-INDIC DIGIT THREE, raw and percent-encoded
        r = _signed_raw(t, "", f"{order}&quantity={quantity}")
        assert r.status_code == 400 and r.json()["code"] == -1100, r.text
        assert "'\u0663'" in r.json()["msg"]
    for quantity in ("%FF", "%C3"):
        r = _signed_raw(t, "", f"{order}&quantity={quantity}")
        assert r.status_code == 400 and r.json()["code"] == -1100
        assert "'quantity'; legal range is 'UTF-8 text'" in r.json()["msg"]
    raw = f"{order}&quantity=1".encode() + b"&newClientOrderId=\xff"
    r = t.http.post(
        "/api/v3/order", content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400 and r.json()["code"] == -1100


def test_a_start_time_after_the_end_time_is_refused_with_1023(trader: Trader) -> None:
    window = {"startTime": 1_700_000_001_000, "endTime": 1_700_000_000_000}
    for path, extra in (("klines", {"interval": "1m"}), ("uiKlines", {"interval": "1m"}), ("aggTrades", {})):
        r = trader.http.get(f"/api/v3/{path}", params={"symbol": "BTCUSDT", **extra, **window})
        assert r.status_code == 400, (path, r.text)
        assert r.json() == {"code": -1023, "msg": "Start time is greater than end time."}
    for path in ("allOrders", "myTrades"):
        r = trader.get(f"/api/v3/{path}", symbol="BTCUSDT", **window)
        assert r.status_code == 400 and r.json()["code"] == -1023, (path, r.text)


def test_a_test_order_is_refused_by_the_filters_as_the_real_order_is(module_exchange: Exchange) -> None:
    """``/order/test`` checks LOT_SIZE, PRICE_FILTER and NOTIONAL as the engine does (it answered
    {} to all of these), with the same answers, and sends nothing."""
    t = new_trader(module_exchange)
    limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
    cases: list[tuple[dict[str, str], str]] = [
        ({**limit, "quantity": "0", "price": "10000"}, "LOT_SIZE"),
        ({**limit, "quantity": "1" * 20 + "." + "1" * 20, "price": "10000"}, "LOT_SIZE"),  # 40 digits
        ({**limit, "quantity": "0.000001", "price": "10000"}, "LOT_SIZE"),
        ({**limit, "quantity": "0.001", "price": "10000.001"}, "PRICE_FILTER"),
        ({**limit, "quantity": "0.001", "price": "0"}, "PRICE_FILTER"),
        ({**limit, "quantity": "0.0001", "price": "10000"}, "NOTIONAL"),
        ({**market, "quantity": "0.000001"}, "LOT_SIZE"),
        ({**market, "quoteOrderQty": "0"}, "LOT_SIZE"),
    ]
    before = _journal_length(module_exchange)
    for params, failed in cases:
        tested = t.post("/api/v3/order/test", **params)
        assert tested.status_code == 400, (params, tested.text)
        assert tested.json() == {"code": -1013, "msg": f"Filter failure: {failed}"}, params
    assert _journal_length(module_exchange) == before
    for params, _ in cases:
        real = t.order(**params)
        assert real.json() == t.post("/api/v3/order/test", **params).json(), params
    before = _journal_length(module_exchange)
    for params in ({**limit, "quantity": "0.001", "price": "10000.01"}, {**market, "quoteOrderQty": "5"}):
        passed = t.post("/api/v3/order/test", **params)
        assert passed.status_code == 200 and passed.json() == {}, passed.text
    assert _journal_length(module_exchange) == before


def test_quantities_and_prices_beyond_binances_legal_range_are_refused_before_the_journal(
    module_exchange: Exchange,
) -> None:
    """A quantity padded with 5,000 zeros stopped the engine at every start (fixed in the engine);
    the gateway refuses what Binance refuses (20 digits each side of the point) before journalling
    it, so such text never becomes a command for good."""
    t = new_trader(module_exchange)
    before = _journal_length(module_exchange)
    legal = "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'."
    for field, value in (
        ("quantity", "0" * 5000 + "1"),
        ("price", "1" * 21),
        ("quantity", "0." + "0" * 20 + "1"),
    ):
        params = {"quantity": "0.001", "price": "10000"} | {field: value}
        r = t.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", **params)
        assert r.status_code == 400, r.text
        assert r.json() == {"code": -1100, "msg": f"Illegal characters found in parameter '{field}'; {legal}"}
    assert _journal_length(module_exchange) == before
    padded = t.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                     quantity="0000000000000000001", price="10000.0000000000000000000")  # fmt: skip
    assert padded.status_code == 200, padded.text
    assert (padded.json()["origQty"], padded.json()["price"]) == ("1", "10000")


def test_unknown_api_paths_answer_binance_json_errors_not_plain_text(module_exchange: Exchange) -> None:
    """A path under /api or /sapi that the gateway does not serve is a JSON error a Binance client
    can read (it was Starlette's plain-text 404, which python-binance reports as invalid JSON); a
    known path with another method is 405. The trading page's own 404s stay as they were."""
    base = module_exchange.http_url
    for method, path in (
        ("GET", "/api/v3/no-such-endpoint"),
        ("GET", "/api/v1/ping"),
        ("POST", "/api/v3/order/oco"),
        ("GET", "/sapi/v1/capital/config/getall"),
        ("GET", "/api"),
    ):
        r = httpx.request(method, f"{base}{path}")
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"code": -1020, "msg": "This operation is not supported."}
    wrong = httpx.put(f"{base}/api/v3/ticker/price")
    assert wrong.status_code == 405 and wrong.json()["code"] == -1020
    assert httpx.get(f"{base}/apiary").status_code == 404  # not an API path: the page's 404


def test_rolling_window_ticker_sums_the_windows_trades_from_the_bars(exchange: Exchange) -> None:
    """``GET /api/v3/ticker`` (ccxt's fetch_ticker with ``rolling``, python-binance's
    get_symbol_ticker_window): 1m..59m, 1h..23h, 1d..7d, FULL or MINI, one symbol or several."""
    base = exchange.http_url
    maker, taker = new_trader(exchange), new_trader(exchange)
    for qty, price in (("1", "100"), ("3", "200.01")):
        maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity=qty, price=price)
        filled = taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity=qty)
        assert filled.json()["status"] == "FILLED", filled.text
    trades = httpx.get(f"{base}/api/v3/trades", params={"symbol": "ETHUSDT"}).json()
    for size in ("1m", "59m", "1h", "23h", "1d", "7d"):
        params = {"symbol": "ETHUSDT", "windowSize": size}
        got = bars_settled(
            lambda: httpx.get(f"{base}/api/v3/ticker", params=params),  # noqa: B023 (read at once)
            lambda got: got.status_code != 200 or got.json()["count"] == 2,
        )
        assert got.status_code == 200, got.text
        t = got.json()
        assert (t["symbol"], t["openPrice"], t["highPrice"], t["lowPrice"], t["lastPrice"]) == (
            "ETHUSDT", "100", "200.01", "100", "200.01",
        )  # fmt: skip
        assert (t["volume"], t["quoteVolume"], t["count"]) == ("4", "700.03", 2)
        assert (t["firstId"], t["lastId"]) == (trades[0]["id"], trades[-1]["id"])
        assert (t["priceChange"], t["priceChangePercent"], t["weightedAvgPrice"]) == (
            "100.01",
            "100.010",
            "175.0075",
        )
        unit = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}[size[-1]] * int(size[:-1])
        assert (
            t["openTime"] % 60_000 == 0
            and t["closeTime"] - unit - 60_000 < t["openTime"] <= t["closeTime"] - unit
        )
        assert "prevClosePrice" not in t and "bidPrice" not in t
    mini = httpx.get(
        f"{base}/api/v3/ticker", params={"symbols": '["ETHUSDT","BTCUSDT"]', "type": "MINI"}
    ).json()
    assert [m["symbol"] for m in mini] == ["ETHUSDT", "BTCUSDT"]
    assert "priceChange" not in mini[0] and mini[0]["lastPrice"] == "200.01"
    assert (mini[1]["count"], mini[1]["firstId"], mini[1]["lastId"], mini[1]["volume"]) == (0, -1, -1, "0")
    for params, code in (
        ({"symbol": "ETHUSDT", "windowSize": "60m"}, -1100),
        ({"symbol": "ETHUSDT", "windowSize": "8d"}, -1100),
        ({"symbol": "ETHUSDT", "windowSize": "1d2h"}, -1100),
        ({"symbol": "ETHUSDT", "windowSize": "0m"}, -1100),
        ({"symbol": "ETHUSDT", "type": "HALF"}, -1139),
        ({}, -1102),
        ({"symbol": "DOGEUSDT"}, -1121),
    ):
        bad = httpx.get(f"{base}/api/v3/ticker", params=params)
        assert bad.status_code == 400 and bad.json()["code"] == code, (params, bad.text)


def test_fee_rates_are_the_markets_on_account_commission_and_trade_fee_endpoints(tmp_path: Any) -> None:
    """What ccxt's ``fetch_trading_fee(s)`` (``/sapi/v1/asset/tradeFee``) and python-binance's
    ``get_trade_fee`` / ``get_account`` read: the configured maker and taker rates, per market; the
    account-wide figures are the highest of them (what an order may pay). They said "0"."""
    config = {**DEMO_CONFIG, "markets": {**DEMO_CONFIG["markets"]}}
    config["markets"]["ETH-USDT"] = {
        **config["markets"]["ETH-USDT"],
        "maker_fee": "0.00075",
        "taker_fee": "0.00250",  # a trailing zero: answered "0.0025", as Binance writes rates
    }
    with Exchange(tmp_path, config=config) as ex:
        t = new_trader(ex)
        account = t.get("/api/v3/account").json()
        assert (account["makerCommission"], account["takerCommission"]) == (10, 25)
        assert account["commissionRates"] == {
            "maker": "0.00100000", "taker": "0.00250000", "buyer": "0.00000000", "seller": "0.00000000"
        }  # fmt: skip
        commission = t.get("/api/v3/account/commission", symbol="ETHUSDT").json()
        assert commission["symbol"] == "ETHUSDT"
        assert commission["standardCommission"] == {
            "maker": "0.00075000", "taker": "0.00250000", "buyer": "0.00000000", "seller": "0.00000000"
        }  # fmt: skip
        assert t.get("/api/v3/account/commission").json()["code"] == -1102
        assert t.get("/api/v3/account/commission", symbol="DOGEUSDT").json()["code"] == -1121
        fees = t.get("/sapi/v1/asset/tradeFee").json()
        assert fees == [
            {"symbol": "BTCUSDT", "makerCommission": "0.001", "takerCommission": "0.001"},
            {"symbol": "ETHUSDT", "makerCommission": "0.00075", "takerCommission": "0.0025"},
        ]
        assert t.get("/sapi/v1/asset/tradeFee", symbol="ETHUSDT").json() == fees[1:]
        assert httpx.get(f"{ex.http_url}/sapi/v1/asset/tradeFee").json()["code"] == -2014  # unsigned
        assert httpx.get(f"{ex.http_url}/sapi/v1/system/status").json() == {"status": 0, "msg": "normal"}


def test_rolling_window_ticker_counts_a_day_of_trades_in_a_market_trading_every_minute(
    exchange: Exchange,
) -> None:
    """A window of a day or more opens about a day back, on a minute: the trades of its first
    partial hour are in 1m bars that old. A market trading every minute makes 1,440 of them a day;
    with 1,000 kept per interval the window lost up to 59 minutes of trades (count, volumes and
    openPrice wrong, and 1m klines could not be read back that far)."""
    client = redis.Redis.from_url(exchange.redis_url)
    start = int(time.time() * 1000) // 60_000 * 60_000 - 26 * 60 * 60_000
    stamps: list[int] = []
    sequence = 0

    def append(command: dict[str, Any], ts: int) -> None:
        nonlocal sequence
        sequence += 1
        fields = command_fields(orjson.dumps(command), ts=ts, rid=f"history-{sequence}",
                                src="history", who="bot", ip="-")  # fmt: skip
        client.xadd(keys.COMMANDS, fields, id=f"{ts}-{sequence}")  # type: ignore[arg-type]

    # exchange time follows the entry's id: entries appended with ids from the past trade then
    append({"type": "deposit", "user": "maker", "asset": "ETH", "amount": "1000"}, start)
    append({"type": "deposit", "user": "taker", "asset": "USDT", "amount": "100000000"}, start)
    minute = 0
    while (ts := start + minute * 60_000 + 30_000) < time.time() * 1000 - 5_000:
        price = str(100 + minute % 50)
        append({"type": "new_order", "user": "maker", "market": "ETH-USDT", "side": "sell",
                "kind": "limit", "price": price, "qty": "0.1"}, ts)  # fmt: skip
        append({"type": "new_order", "user": "taker", "market": "ETH-USDT", "side": "buy",
                "kind": "market", "qty": "0.1"}, ts)  # fmt: skip
        stamps.append(ts)
        minute += 1
    base = exchange.http_url
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        last = httpx.get(f"{base}/api/v3/trades", params={"symbol": "ETHUSDT", "limit": 1}).json()
        if last and last[0]["id"] == len(stamps):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the engine did not apply the history")
    last_price = str(100 + (len(stamps) - 1) % 50)
    for size in ("1d", "23h", "20h", "2d"):
        window = {"symbol": "ETHUSDT", "windowSize": size}
        t = bars_settled(  # the rolling window is read from the bars: one slot behind at most
            lambda: httpx.get(f"{base}/api/v3/ticker", params=window).json(),  # noqa: B023 (read at once)
            # lastId is the trades list's newest, always current: the last price is the bars' (each
            # minute's price differs from the one before), so it tells when they hold the last trade
            lambda t: t["lastId"] == len(stamps) and t["lastPrice"] == last_price,
        )
        inside = [i for i, ts in enumerate(stamps) if ts >= t["openTime"]]
        assert (t["count"], t["firstId"], t["lastId"]) == (len(inside), inside[0] + 1, len(stamps)), size
        assert t["openPrice"] == str(100 + inside[0] % 50), size
        assert t["volume"] == str(Decimal(len(inside)) / 10), size
        since = {"symbol": "ETHUSDT", "interval": "1m", "startTime": t["openTime"], "limit": 1}
        bars = httpx.get(f"{base}/api/v3/klines", params=since)
        assert bars.json()[0][0] == stamps[inside[0]] - 30_000, size


def test_rolling_window_ticker_weighs_4_per_symbol_up_to_200_and_takes_at_most_100(
    module_exchange: Exchange,
) -> None:
    """Binance's weight for ``GET /api/v3/ticker`` (4 per symbol, at most 200 from 50 on) and its
    limit of 100 symbols: with 2 per symbol capped at 100 and no limit, one request of thousands of
    symbols did thousands of Redis reads for less weight than two order books."""
    base = module_exchange.http_url

    def weight(params: dict[str, str]) -> tuple[int, httpx.Response]:
        before = int(httpx.get(f"{base}/api/v3/ping").headers["x-mbx-used-weight-1m"])
        answer = httpx.get(f"{base}/api/v3/ticker", params=params)
        after = int(answer.headers["x-mbx-used-weight-1m"])
        return (after - before if after > before else after), answer  # a new minute began between

    assert weight({"symbol": "ETHUSDT"})[0] == 4
    assert weight({"symbols": '["ETHUSDT","BTCUSDT"]'})[0] == 8
    many = orjson.dumps(["ETHUSDT"] * 60).decode()
    used, answer = weight({"symbols": many})
    assert used == 200 and answer.status_code == 200 and len(answer.json()) == 60
    too_many = orjson.dumps(["ETHUSDT", "BTCUSDT"] * 51).decode()
    used, answer = weight({"symbols": too_many})
    assert answer.status_code == 400 and answer.json()["code"] == -1101, answer.text
