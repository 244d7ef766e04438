"""Order-count limits per account (Binance's ORDERS rate limits), shared by two gateways."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import Trader, new_trader
from tests.integration.gateway.test_ws_api import signed

LIMIT = 6


@pytest.fixture(scope="module")
def limited_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    env = {"TRADEWIRE_LIMIT_ORDERS_PER_10S": str(LIMIT), "TRADEWIRE_LIMIT_ORDERS_PER_DAY": "1000"}
    with Exchange(Path(tmp_path_factory.mktemp("orders")), gateways=2, gateway_env=env) as ex:
        yield ex


def _order(trader: Trader, price: str = "100") -> httpx.Response:
    return trader.order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price=price
    )


def _fresh_window() -> None:
    """Start in a 10-second window with room for the test's orders (fixed windows, as Binance's)."""
    if time.time() % 10 > 6:
        time.sleep(10.2 - time.time() % 10)


def test_orders_past_the_account_limit_are_refused_with_1015_and_never_journalled(
    limited_exchange: Exchange,
) -> None:
    """Six orders through two gateways: each answer counts them (X-MBX-ORDER-COUNT-10S / -1D); the
    seventh, on either gateway, is refused with 429 and -1015 and is not an order; another account
    is not held back; a cancel is not a new order."""
    alice, bob = new_trader(limited_exchange), new_trader(limited_exchange)
    second = Trader(limited_exchange.http_urls[1], alice.user)
    _fresh_window()
    counts = []
    for i in range(LIMIT):
        r = _order(alice if i % 2 else second, price=f"{100 + i}")
        assert r.status_code == 200, r.text
        counts.append((int(r.headers["x-mbx-order-count-10s"]), int(r.headers["x-mbx-order-count-1d"])))
    assert counts == [(n, n) for n in range(1, LIMIT + 1)]
    for trader in (alice, second):
        refused = _order(trader)
        assert refused.status_code == 429
        assert refused.json() == {
            "code": -1015,
            "msg": f"Too many new orders; current limit is {LIMIT} orders per 10 SECOND.",
        }
        assert refused.headers["x-mbx-order-count-10s"] == str(LIMIT)
    assert len(alice.get("/api/v3/openOrders", symbol="BTCUSDT").json()) == LIMIT
    order_id = alice.get("/api/v3/openOrders", symbol="BTCUSDT").json()[0]["orderId"]
    assert alice.delete("/api/v3/order", symbol="BTCUSDT", orderId=order_id).status_code == 200
    other = _order(bob)
    assert other.status_code == 200 and other.headers["x-mbx-order-count-10s"] == "1"
    limits = httpx.get(f"{limited_exchange.http_url}/api/v3/exchangeInfo").json()["rateLimits"]
    assert {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": LIMIT} in limits
    assert {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1000} in limits


def _order_counts(trader: Trader) -> list[dict[str, object]]:
    answer = trader.get("/api/v3/rateLimit/order")
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-mbx-used-weight-1m"]
    return answer.json()  # type: ignore[no-any-return]


def test_orders_that_trade_stop_counting_so_an_account_whose_orders_fill_goes_on_trading(
    limited_exchange: Exchange,
) -> None:
    """Binance limits *unfilled* orders: an order that trades comes off the count, so twice the
    limit of orders that fill all pass; orders that rest still count, and the limit still holds.
    ``GET /api/v3/rateLimit/order`` says the counts."""
    taker, maker = new_trader(limited_exchange), new_trader(limited_exchange)
    _fresh_window()
    assert _order_counts(taker) == [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": LIMIT, "count": 0},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1000, "count": 0},
    ]
    resting = maker.order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                          quantity="0.2", price="50000")  # fmt: skip
    assert resting.status_code == 200, resting.text
    for _ in range(2 * LIMIT):
        r = taker.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                        quantity="0.01", price="50000")  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "FILLED"
        assert r.headers["x-mbx-order-count-10s"] == "1", "the previous orders traded"
    assert [c["count"] for c in _order_counts(taker)] == [0, 0]
    assert [c["count"] for c in _order_counts(maker)] == [0, 0], "the maker's order traded too"
    answers = [_order(taker, price=f"{90 + i}") for i in range(LIMIT + 1)]
    assert [r.status_code for r in answers] == [200] * LIMIT + [429]
    assert [c["count"] for c in _order_counts(taker)] == [LIMIT, LIMIT]


@pytest.mark.asyncio
async def test_websocket_api_order_place_counts_orders_in_rate_limits_and_refuses_past_the_limit(
    limited_exchange: Exchange,
) -> None:
    carol = new_trader(limited_exchange)
    _fresh_window()
    async with connect(f"{limited_exchange.ws_url}/ws-api/v3") as ws:
        answers = []
        for i in range(LIMIT + 1):
            params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                      "quantity": "0.1", "price": f"{100 + i}"}  # fmt: skip
            await ws.send(orjson.dumps({"id": i, "method": "order.place", "params": signed(carol, params)}))
            answers.append(orjson.loads(await asyncio.wait_for(ws.recv(), 15)))
    assert [a["status"] for a in answers] == [200] * LIMIT + [429]
    assert answers[-1]["error"]["code"] == -1015
    orders = [limit for limit in answers[2]["rateLimits"] if limit["rateLimitType"] == "ORDERS"]
    assert orders == [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": LIMIT, "count": 3},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1000, "count": 3},
    ]


@pytest.fixture(scope="module")
def unlimited_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    env = {"TRADEWIRE_LIMIT_ORDERS_PER_10S": "0", "TRADEWIRE_LIMIT_ORDERS_PER_DAY": "0"}
    with Exchange(Path(tmp_path_factory.mktemp("unlimited")), gateway_env=env) as ex:
        yield ex


def test_limits_of_0_count_nothing_and_advertise_nothing(unlimited_exchange: Exchange) -> None:
    dave = new_trader(unlimited_exchange)
    answers = [_order(dave, price=f"{100 + i}") for i in range(3)]
    assert all(r.status_code == 200 and "x-mbx-order-count-10s" not in r.headers for r in answers)
    limits = httpx.get(f"{unlimited_exchange.http_url}/api/v3/exchangeInfo").json()["rateLimits"]
    assert [limit["rateLimitType"] for limit in limits] == ["REQUEST_WEIGHT"]
