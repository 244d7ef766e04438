"""A client that stops reading is conflated, then dropped; a healthy client on the same gateway gets
every message, in order, meanwhile."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import Trader, new_trader

pytestmark = pytest.mark.timeout(180)

SMALL = {
    "TRADEWIRE_LIMIT_SEND_BUFFER": "8192",
    "TRADEWIRE_LIMIT_BACKLOG_BYTES": "24576",
    "TRADEWIRE_LIMIT_SOCKET_SEND_BUFFER": "4096",
    "TRADEWIRE_LIMIT_WEIGHT_PER_MINUTE": "4000",
}
PAIRS = 600


@pytest.fixture(scope="module")
def slow_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    with Exchange(Path(tmp_path_factory.mktemp("slow")), gateway_env=SMALL) as ex:
        yield ex


async def _cross_many(ex: Exchange, maker: Trader, taker: Trader, pairs: int) -> None:
    headers_of = {
        t.user.name: {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": t.user.api_key}
        for t in (maker, taker)
    }
    async with httpx.AsyncClient(base_url=ex.http_url, timeout=30) as client:

        async def pair(i: int) -> None:
            price = str(30000 + i % 50)
            sell = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                    "quantity": "0.001", "price": price}  # fmt: skip
            r = await client.post(
                "/api/v3/order", content=maker.sign(sell), headers=headers_of[maker.user.name]
            )
            assert r.status_code == 200, r.text
            buy = {**sell, "side": "BUY", "timeInForce": "IOC"}
            r = await client.post(
                "/api/v3/order", content=taker.sign(buy), headers=headers_of[taker.user.name]
            )
            assert r.status_code == 200, r.text

        for start in range(0, pairs, 8):
            await asyncio.gather(*(pair(i) for i in range(start, min(start + 8, pairs))))


def _stalled_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.mark.asyncio
async def test_stalled_client_is_dropped_while_healthy_client_gets_everything_in_order(
    slow_exchange: Exchange,
) -> None:
    ex = slow_exchange
    maker, taker = new_trader(ex), new_trader(ex)
    streams = "/stream?streams=btcusdt@trade/btcusdt@depth"
    received: list[dict[str, Any]] = []
    stalled = await connect(f"{ex.ws_url}{streams}", sock=_stalled_socket(ex.ports[0]), max_queue=1)
    async with connect(f"{ex.ws_url}{streams}", max_queue=None) as healthy:

        async def read() -> None:
            async for message in healthy:
                received.append(orjson.loads(message))

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        await _cross_many(ex, maker, taker, PAIRS)
        recent = httpx.get(f"{ex.http_url}/api/v3/trades", params={"symbol": "BTCUSDT", "limit": 1}).json()
        newest = recent[-1]["id"]
        for _ in range(200):
            if any(m["stream"] == "btcusdt@trade" and m["data"]["t"] == newest for m in received):
                break
            await asyncio.sleep(0.05)
        assert not reader.done(), reader.exception()
        reader.cancel()

    trades = [m["data"]["t"] for m in received if m["stream"] == "btcusdt@trade"]
    assert len(trades) > PAIRS // 2
    assert trades == list(range(trades[0], newest + 1))
    diffs = [m["data"] for m in received if m["stream"] == "btcusdt@depth"]
    for before, after in itertools.pairwise(diffs):
        assert after["pu"] == before["u"]

    metrics = httpx.get(f"{ex.http_url}/metrics").text
    dropped = re.search(r'tradewire_ws_messages_total\{fate="dropped"\} (\S+)', metrics)
    conflated = re.search(r'tradewire_ws_messages_total\{fate="conflated"\} (\S+)', metrics)
    assert dropped is not None and float(dropped.group(1)) >= 1
    assert conflated is not None and float(conflated.group(1)) >= 1
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(stalled.recv(), 10)


def test_rest_weight_over_the_minute_limit_is_answered_429_with_retry_after(slow_exchange: Exchange) -> None:
    # Runs last in this module: it spends this IP's weight for the rest of the minute.
    url = f"{slow_exchange.http_url}/api/v3/exchangeInfo"
    with httpx.Client() as http:
        for _ in range(300):  # weight 20 each: 6,000 > 4,000
            r = http.get(url)
            if r.status_code == 429:
                break
    assert r.status_code == 429
    assert r.json()["code"] == -1003 and "request weight per minute is 4000" in r.json()["msg"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
