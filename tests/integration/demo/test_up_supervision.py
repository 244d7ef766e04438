"""``tradewire up`` as a supervisor under the signals an operator or the machine sends it.

Its children (redis-server, the engine, the gateway, the journal archive) each run in their own
session, so that a Ctrl-C in a terminal reaches ``up`` alone and ``up`` stops them in order. These
tests check what happens when that order cannot be followed: ``up`` killed outright, and ``up``
stopped at any moment of its start. Real processes throughout; the survivors are found in /proc.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import free_port
from tradewire.redisconn import EmbeddedRedis, RedisStartInterrupted

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="children dying with up is Linux's"),
]


def _state(pid: int) -> str | None:
    """The process's state letter (``Z`` for a zombie), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def survivors(data_dir: Path) -> list[str]:
    """Live processes that belong to a ``tradewire up`` on ``data_dir``: a command line naming it
    (engine, gateway, archive) or a working directory inside it (redis-server)."""
    found = []
    needle = str(data_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _alive(int(entry.name)):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if needle in cmdline or cwd.startswith(str(data_dir)):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {shown}")
    return found


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (/proc/<pid>/task/*/children is not in every kernel)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def eventually(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


class Up:
    """``tradewire up`` on a given data directory and port, its output in a file."""

    def __init__(self, data_dir: Path, port: int, log: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TRADEWIRE_MASTER_KEY")}
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tradewire.cli", "up", "--port", str(port), "--data-dir",
                 str(data_dir), *extra],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()[-3000:]
            try:
                if httpx.get(f"{self.base}/api/v3/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("tradewire up did not serve within the timeout:\n" + self.output()[-3000:])

    def admin(self, *args: str) -> bytes:
        result = subprocess.run(
            [sys.executable, "-m", "tradewire.cli", "admin", *args, "--data-dir", str(self.data_dir)],
            env=self.env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def signed(up: Up, method: str, path: str, key: dict[str, str], **params: Any) -> Any:
    query = urllib.parse.urlencode({**params, "timestamp": int(time.time() * 1000)})
    signature = hmac.new(key["api_secret"].encode(), query.encode(), hashlib.sha256).hexdigest()
    response = httpx.request(
        method,
        f"{up.base}{path}?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": key["api_key"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_up_killed_with_sigkill_takes_its_children_along_and_the_next_up_has_every_order(
    tmp_path: Path,
) -> None:
    """Killed with SIGKILL, ``up`` left redis-server, the engine and the gateway running, each in its
    own session: the port and the data directory stayed taken by processes no one would stop."""
    data_dir, port = tmp_path / "data", free_port()
    first = Up(data_dir, port, tmp_path / "up.log", "--demo")
    try:
        first.wait_ready()
        key = orjson.loads(first.admin("create-user", "alice"))
        first.admin("deposit", "alice", "USDT", "1000")
        order = signed(
            first, "POST", "/api/v3/order", key,
            symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", price="1.00", quantity="10",
        )  # fmt: skip
        assert order["status"] == "NEW", order
        children = children_of(first.process.pid)
        assert len(children) >= 3, children  # redis-server, engine, gateway
    except BaseException:
        first.stop()
        raise
    first.process.kill()
    first.process.wait()
    eventually(
        lambda: not any(_alive(pid) for pid in children),
        30,
        f"children of the killed up still run: {survivors(data_dir)}",
    )
    assert not survivors(data_dir)

    again = Up(data_dir, port, tmp_path / "up.log")  # the same port: nothing holds it any more
    try:
        again.wait_ready()
        orders = signed(again, "GET", "/api/v3/openOrders", key, symbol="BTCUSDT")
        assert [o["orderId"] for o in orders] == [order["orderId"]]
        account = signed(again, "GET", "/api/v3/account", key)
        usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
        assert (float(usdt["free"]), float(usdt["locked"])) == (990.0, 10.0)
    finally:
        assert again.stop() == 0, again.output()[-3000:]
    assert not survivors(data_dir)


def test_up_stops_the_embedded_redis_an_earlier_up_left_running_and_starts_its_own(tmp_path: Path) -> None:
    """Where no death signal stopped it (another system, an older tradewire), ``up`` used the Redis
    it found on its data directory and, not having started it, left it running at its own stop."""
    data_dir = tmp_path / "data"
    left = EmbeddedRedis.for_data_dir(data_dir).start()  # the earlier up's, its owner gone
    try:
        assert left.pid is not None
        up = Up(data_dir, free_port(), tmp_path / "up.log")
        try:
            up.wait_ready()
            assert not _alive(left.pid)
            assert "stopped the embedded Redis that an earlier tradewire up left running" in up.output()
        finally:
            assert up.stop() == 0, up.output()[-3000:]
        assert not survivors(data_dir)
    finally:
        left.stop()


def _log_has(event: str, process: str) -> Callable[[Up], bool]:
    marker = f'"process":"{process}"'

    def check(up: Up) -> bool:
        return any(marker in line and f'"event":"{event}"' in line for line in up.output().splitlines())

    return check


MOMENTS: dict[str, Callable[[Up], bool]] = {
    "up took its data directory": lambda up: (up.data_dir / "up.lock").exists(),
    "redis-server wrote its pid file": lambda up: (up.data_dir / "redis" / "redis.pid").exists(),
    "the engine was started": _log_has("started", "engine"),
    "the gateway was started": _log_has("started", "gateway"),
}


@pytest.mark.parametrize(
    ("moment", "signum"),
    [
        ("up took its data directory", signal.SIGTERM),
        ("redis-server wrote its pid file", signal.SIGTERM),
        ("redis-server wrote its pid file", signal.SIGINT),
        ("the engine was started", signal.SIGTERM),
        ("the gateway was started", signal.SIGTERM),
    ],
)
def test_up_stopped_while_it_starts_stops_what_it_started(
    tmp_path: Path, moment: str, signum: signal.Signals
) -> None:
    """A SIGTERM before ``up`` had its handlers killed it on the spot (redis-server, in its own
    session, ran on); a SIGINT then was a traceback, and the redis-server being started was lost."""
    up = Up(tmp_path / "data", free_port(), tmp_path / "up.log")
    try:
        eventually(lambda: MOMENTS[moment](up) or up.process.poll() is not None, 90, moment)
        assert up.process.poll() is None, up.output()[-3000:]
        up.process.send_signal(signum)
        status = up.process.wait(60)
    finally:
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()
    output = up.output()
    assert status == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    eventually(lambda: not survivors(up.data_dir), 10, f"left running: {survivors(up.data_dir)}")
    assert not (up.data_dir / "redis.url").exists()  # stopped by up, not by chance


def test_an_embedded_redis_start_called_off_stops_the_server_it_spawned(tmp_path: Path) -> None:
    """How ``up`` stops a Redis still coming up: its signal is a flag that the start reads; an
    exception raised from the handler itself could land inside ``fork``'s bookkeeping."""
    asked: list[bool] = []

    def interrupted() -> bool:
        asked.append(True)
        return True

    server = EmbeddedRedis.for_data_dir(tmp_path / "data")
    with pytest.raises(RedisStartInterrupted):
        server.start(interrupted=interrupted)
    assert asked and not server.running
    eventually(lambda: not survivors(tmp_path / "data"), 10, f"left running: {survivors(tmp_path / 'data')}")
