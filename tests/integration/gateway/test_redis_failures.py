"""The gateway on a Redis that refuses, stalls or goes away: what a REST client is told, and that
what it is told is true (an order answered "try again" is not in the journal)."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.conftest import RedisServer, free_port
from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import Trader, new_trader
from tradewire.cli import app

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


def _metric(exchange: Exchange, name: str, labels: str) -> float:
    text = httpx.get(f"{exchange.http_url}/metrics", timeout=5).text
    found = re.search(re.escape(f"{name}{{{labels}}}") + r" ([0-9.e+-]+)", text)
    return float(found.group(1)) if found else 0.0


def test_orders_while_redis_is_out_of_memory_are_refused_at_once_reported_and_none_lost_or_doubled(
    exchange: Exchange,
) -> None:
    """Four clients place orders while Redis refuses writes (``maxmemory`` reached, ``noeviction``)
    for a moment: each is answered at once, an order answered 200 is there exactly once, one
    answered "try again" (-1001) is not, and the operator sees ``OOM`` in the metrics and the log."""
    trader = new_trader(exchange)
    names = itertools.count()
    answers: list[tuple[str, int, int | None]] = []
    stop = threading.Event()

    def place() -> None:
        while not stop.is_set():
            cid = f"c{next(names)}"
            started = time.monotonic()
            answer = trader.order(**ORDER, newClientOrderId=cid)
            assert time.monotonic() - started < 5, "an order waited for Redis"
            answers.append((cid, answer.status_code, answer.json().get("code")))

    redis = exchange.redis.client()
    with ThreadPoolExecutor(4) as pool:
        placing = [pool.submit(place) for _ in range(4)]
        try:
            time.sleep(0.3)
            redis.config_set("maxmemory", "1")
            time.sleep(1.0)
            refused = trader.post("/api/v3/userDataStream")  # a read-write request of its own
            redis.config_set("maxmemory", "0")
            time.sleep(0.3)
        finally:
            redis.config_set("maxmemory", "0")
            stop.set()
            for future in placing:
                future.result()
    assert (refused.status_code, refused.json()["code"]) == (503, -1001)
    outcomes = {(status, code) for _, status, code in answers}
    assert outcomes <= {(200, None), (503, -1001), (503, -1007)}, outcomes
    assert (503, -1001) in outcomes and (200, None) in outcomes
    placed = {
        o["clientOrderId"] for o in trader.get("/api/v3/allOrders", symbol="BTCUSDT", limit=1000).json()
    }
    acknowledged = {cid for cid, status, _ in answers if status == 200}
    assert acknowledged <= placed
    assert not placed & {cid for cid, _, code in answers if code == -1001}
    assert len(placed) == len(trader.get("/api/v3/openOrders", symbol="BTCUSDT").json())  # none twice
    assert _metric(exchange, "tradewire_redis_errors_total", 'kind="OOM",role="gateway"') > 0
    assert _metric(exchange, "tradewire_redis_errors_total", 'kind="OutOfMemoryError",role="gateway"') > 0
    log = (exchange.directory / "gateway-0.log").read_text()
    assert "command not allowed when used memory > 'maxmemory'" in log and "journal" in log
    audit = CliRunner().invoke(app, ["audit", "verify"], env={"REDIS_URL": exchange.redis_url})
    assert audit.exit_code == 0, audit.output  # the engine's records and balances match the journal


def test_a_gateway_given_a_read_only_replica_is_not_ready(exchange: Exchange, tmp_path: Path) -> None:
    """Every order it took would be refused (``READONLY``): a load balancer must not send it any
    (it answered ``/readyz`` 200)."""
    replica = RedisServer(tmp_path / "replica", extra={"replicaof": f"127.0.0.1 {exchange.redis.port}"})
    replica.start()
    try:
        port = free_port()
        command = ["gateway", "--host", "127.0.0.1", "--port", str(port)]
        exchange.gateways.append(exchange._spawn("gateway-replica", command, {"REDIS_URL": replica.url}))
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if answer.status_code == 200 or "replica" in answer.json()["reason"]:
                    break
            assert time.monotonic() < deadline, exchange.logs()
            time.sleep(0.1)
        assert answer.status_code == 503, answer.text
        assert "read-only replica" in answer.json()["reason"]
    finally:
        exchange.stop_gateway(len(exchange.gateways) - 1)
        replica.stop()
