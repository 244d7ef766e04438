"""The gateway on a Redis that refuses, stalls or goes away: what a REST client is told, and that
what it is told is true (an order answered "try again" is not in the journal)."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import Trader, new_trader

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
         "price": "50000"}  # fmt: skip


def _eventually(trader: Trader, path: str, timeout: float = 20.0, **params: str) -> httpx.Response:
    """The first answer 200 to a signed GET within ``timeout`` seconds (the engine catching up)."""
    deadline = time.monotonic() + timeout
    while (answer := trader.get(path, **params)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)
    return answer


def test_an_order_sent_while_redis_stalls_is_answered_status_unknown_since_it_may_be_journalled(
    exchange: Exchange,
) -> None:
    """Redis stops answering (SIGSTOP: a stall, a network cut) once the order's XADD went out: the
    gateway gives up after its send timeout, but Redis runs the XADD when it goes on. Told "try
    again" (-1001), a client would place the order twice; told "status unknown" (-1007), it
    looks it up first."""
    trader = new_trader(exchange)
    assert trader.order(**ORDER).status_code == 200  # the gateway's journal connection is open
    pid = exchange.redis.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        answer = trader.order(**ORDER, newClientOrderId="stalled")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert answer.status_code == 503
    assert answer.json()["code"] == -1007, answer.text
    found = _eventually(trader, "/api/v3/order", symbol="BTCUSDT", origClientOrderId="stalled")
    assert found.json()["status"] == "NEW"  # it was journalled after all, once
    assert len(trader.get("/api/v3/allOrders", symbol="BTCUSDT").json()) == 2
