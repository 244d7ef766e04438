"""What ``tradewire up``, ``gateway`` and ``engine`` say when they cannot start where they are told to:
a port or an address they cannot listen on, a Redis named by ``REDIS_URL`` that they cannot use. One
line naming the address or the URL (password hidden) and why, a non-zero status, no traceback, and
nothing left running; the engine, which waits for its Redis by design, says so in its log instead.
Real sockets and real redis-server processes throughout."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RedisServer, free_port
from tests.integration.ops.test_operator_cli import refused, tradewire

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _nothing_started(data_dir: Path) -> None:
    assert not (data_dir / "redis").exists()  # no embedded Redis was even tried


def test_up_on_a_port_in_use_says_so_and_starts_nothing(tmp_path: Path, port_in_use: int) -> None:
    """It started Redis and the engine, then said only "gateway exited with status 3"; or, when the
    port's holder answered /api/v3/ping, took it for its own gateway and restarted that for ever."""
    data = tmp_path / "data"
    message = refused(tradewire("up", "--port", str(port_in_use), "--data-dir", str(data)))
    assert f"tradewire up: port {port_in_use} on 127.0.0.1 is already in use" in message
    assert len(message.strip().splitlines()) == 1, message
    _nothing_started(data)


def test_gateway_on_a_port_in_use_says_so(redis_server: RedisServer, port_in_use: int) -> None:
    """It connected to Redis, logged uvicorn's error and exited with status 3."""
    result = tradewire("gateway", "--port", str(port_in_use), env={"REDIS_URL": redis_server.url})
    message = refused(result)
    assert f"gateway: port {port_in_use} on 127.0.0.1 is already in use" in message
    assert len(message.strip().splitlines()) == 1, message


@pytest.mark.parametrize("command", ["up", "gateway"])
def test_a_host_that_is_not_this_machines_is_refused(
    tmp_path: Path, redis_server: RedisServer, command: str
) -> None:
    data = tmp_path / "data"
    env = {"REDIS_URL": redis_server.url} if command == "gateway" else {}
    args = [command, "--host", "192.0.2.1", "--port", str(free_port()), "--data-dir", str(data)]
    message = refused(tradewire(*args, env=env))
    assert "cannot listen on 192.0.2.1: it is not an address of this machine" in message
    assert len(message.strip().splitlines()) == 1, message
    _nothing_started(data)
