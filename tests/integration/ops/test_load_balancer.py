"""Two gateways behind a real HAProxy running the shipped ``deploy/haproxy/haproxy.cfg``.

Only what must differ on a test machine is rewritten (the listening address, the servers, the TLS
certificate); every rewrite is checked to have found its line, so a change to the shipped file
that these tests no longer cover fails them instead of passing unnoticed.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import free_port
from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import new_trader

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

CONNECTIONS = "tradewire_ws_connections "
SHIPPED = Path(__file__).resolve().parents[3] / "deploy" / "haproxy" / "haproxy.cfg"


def rewrite(text: str, pattern: str, replacement: str) -> str:
    new, found = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert found, f"the shipped haproxy.cfg has no line matching {pattern!r}"
    return new


def local_config(port: int, gateways: list[int]) -> str:
    """The shipped config, listening on ``port`` without TLS, in front of ``gateways``."""
    text = SHIPPED.read_text()
    text = rewrite(text, r"^\s*bind :443 .*\n", "")
    text = rewrite(text, r"^\s*bind :80$", f"    bind 127.0.0.1:{port}")
    text = rewrite(text, r"^\s*http-request redirect scheme https.*\n", "")
    text = rewrite(text, r"^\s*maxconn 100000$", "    maxconn 1000")  # no fd limit to raise here
    text = rewrite(text, r"^\s*server gateway-\d .*\n", "")
    servers = "".join(f"    server gateway-{i} 127.0.0.1:{p}\n" for i, p in enumerate(gateways))
    return text.rstrip("\n") + "\n" + servers


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Exchange, str]]:
    """An exchange with two gateways and the HAProxy in front of them; yields the proxy's address."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    directory = Path(tmp_path_factory.mktemp("lb"))
    with Exchange(directory, gateways=2) as ex:
        port = free_port()
        config = directory / "haproxy.cfg"
        config.write_text(local_config(port, ex.ports))
        check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = (directory / "haproxy.log").open("wb")
        proxy = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"127.0.0.1:{port}"
            wait_for_both_servers(url, ex)
            yield ex, url
        finally:
            proxy.terminate()
            proxy.wait(10)
            log.close()


def wait_for_both_servers(url: str, ex: Exchange, timeout: float = 30.0) -> None:
    """Until the proxy answers, and each gateway has been checked up (``rise 2``, ``inter 2s``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{url}/api/v3/ping", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    time.sleep(4.5)  # two passing checks 2 s apart for each server: both in rotation


def gateway_connections(ex: Exchange) -> list[float]:
    counts = []
    for url in ex.http_urls:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        (value,) = [
            line.split()[1] for line in text.splitlines() if line.startswith("tradewire_ws_connections ")
        ]
        counts.append(float(value))
    return counts


async def test_the_balancer_serves_the_api_and_keeps_operator_endpoints_inside(
    balanced: tuple[Exchange, str],
) -> None:
    ex, url = balanced
    trader = new_trader(ex)
    trader.http = httpx.Client(base_url=f"http://{url}", headers=trader.http.headers, timeout=15.0)
    placed = trader.order(
        symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="1000"
    )
    assert placed.status_code == 200, placed.text
    assert trader.get("/api/v3/openOrders", symbol="ETHUSDT").json()[0]["orderId"] == placed.json()["orderId"]
    for path in ("/metrics", "/healthz", "/readyz"):
        assert httpx.get(f"http://{url}{path}", timeout=10).status_code == 404, path
        assert httpx.get(f"{ex.http_url}{path}", timeout=10).status_code == 200, path


async def test_a_stopped_gateways_clients_come_back_through_the_balancer_and_resume_without_a_gap(
    balanced: tuple[Exchange, str],
) -> None:
    """A gateway stops (a deploy, a crash): its WebSocket clients are closed; they reconnect at once
    through the same address, before the health checks have noticed, and resume where they were.
    The balancer must send those connections, and every REST request meanwhile, to the gateway
    that is still up instead of answering 503."""
    ex, url = balanced
    maker = new_trader(ex)
    maker.http = httpx.Client(base_url=f"http://{url}", headers=maker.http.headers, timeout=15.0)

    def rest(count: int, base: int) -> list[int]:
        statuses = []
        for i in range(count):
            r = maker.order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price=str(base + i),
            )
            statuses.append(r.status_code)
        return statuses

    async with connect(f"ws://{url}/ws/btcusdt@depth") as ws:
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(rest, 3, 21000) == [200] * 3
        seen = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3)]
        (holder,) = [i for i, n in enumerate(gateway_connections(ex)) if n == 1]
        ex.stop_gateway(holder)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

    statuses = await asyncio.to_thread(rest, 6, 22000)  # while the stopped one is still "up" to HAProxy
    assert statuses == [200] * 6
    last_seen = seen[-1]["u"]
    async with connect(f"ws://{url}/ws/btcusdt@depth?since={last_seen}") as ws:
        missed = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(6)]
        assert await asyncio.to_thread(rest, 2, 23000) == [200] * 2
        live = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
    chain: list[dict[str, Any]] = [*seen, *missed, *live]
    for before, after in itertools.pairwise(chain):
        assert after["pu"] == before["u"] and after["U"] == before["u"] + 1
    assert [d["b"][0][0] for d in missed] == [str(22000 + i) for i in range(6)]
    ex.start_gateway(holder)
    ex.wait_ready()
