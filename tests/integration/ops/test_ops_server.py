"""The ops server over real HTTP connections, as Prometheus and a load balancer see it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tradewire.ops import metrics
from tradewire.ops.http import OpsServer, start_ops_server


class Flag:
    """Readiness that the test flips, as the engine does when its replay ends."""

    def __init__(self) -> None:
        self.value = (False, "replaying journal")
        self.lock = threading.Lock()

    def __call__(self) -> tuple[bool, str]:
        with self.lock:
            return self.value


@pytest.fixture
def flag() -> Flag:
    return Flag()


@pytest.fixture
def server(flag: Flag) -> Iterator[OpsServer]:
    with start_ops_server(0, flag, host="127.0.0.1") as running:
        yield running


def _url(server: OpsServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def test_ops_server_with_observed_apply_time_serves_it_at_metrics(server: OpsServer) -> None:
    before = httpx.get(_url(server, "/metrics")).text
    metrics.ENGINE_APPLY_SECONDS.observe(0.00003)
    after = httpx.get(_url(server, "/metrics"))
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")

    def count(text: str) -> float:
        for line in text.splitlines():
            if line.startswith("tradewire_engine_apply_seconds_count "):
                return float(line.split()[1])
        raise AssertionError("tradewire_engine_apply_seconds_count missing")

    assert count(after.text) == count(before) + 1


def test_ops_server_with_readiness_flipping_answers_503_then_200(server: OpsServer, flag: Flag) -> None:
    with httpx.Client() as client:
        first = client.get(_url(server, "/readyz"))
        assert first.status_code == 503
        assert first.json() == {"ready": False, "reason": "replaying journal"}
        with flag.lock:
            flag.value = (True, "live")
        second = client.get(_url(server, "/readyz"))
        assert second.status_code == 200
        assert second.json() == {"ready": True, "reason": "live"}
        assert client.get(_url(server, "/healthz")).status_code == 200
        assert client.get(_url(server, "/missing")).status_code == 404


def test_ops_server_with_taken_port_fails_at_start(server: OpsServer, flag: Flag) -> None:
    with pytest.raises(OSError):
        start_ops_server(server.port, flag, host="127.0.0.1")


def test_ops_server_after_close_refuses_connections(flag: Flag) -> None:
    running = start_ops_server(0, flag, host="127.0.0.1")
    port = running.port
    running.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")
