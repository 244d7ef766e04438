"""``tradewire up --demo`` as a user runs it: one process that brings up the whole exchange and stops it.

The README promises that this command alone gives a live market in the browser; these tests run it as
a subprocess on a temporary data directory and a free port, and talk to it only as a user would: HTTP,
and the operator commands with the same ``--data-dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import free_port
from tradewire import keys
from tradewire.redisconn import connect_sync, running_url

pytestmark = pytest.mark.timeout(240)


def _tradewire(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tradewire.cli", *args], env=env, capture_output=True, timeout=60, check=False
    )


class Up:
    def __init__(self, directory: Path, *extra: str) -> None:
        self.data_dir = directory / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TRADEWIRE_MASTER_KEY")}
        self.log = (directory / "up.log").open("wb")
        self.options = ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tradewire.cli", "up", "--demo", *self.options, *extra],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                if httpx.get(f"{self.base}/api/v3/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("tradewire up did not serve within the timeout")

    def admin(self, *args: str) -> bytes:
        result = _tradewire("admin", *args, "--data-dir", str(self.data_dir), env=self.env)
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
        self.log.close()
        return self.process.returncode

    def log_tail(self) -> str:
        """The end of what ``tradewire up`` printed (for an assertion's message)."""
        return Path(self.log.name).read_text(errors="replace")[-4000:]


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _eventually(check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.25)


def test_up_with_demo_serves_the_page_and_a_market_that_trades(up: Up) -> None:
    page = httpx.get(f"{up.base}/", timeout=5)
    assert page.status_code == 200 and "tradewire" in page.text
    chart = httpx.get(f"{up.base}/vendor/lightweight-charts/lightweight-charts.standalone.production.js")
    assert chart.status_code == 200
    symbols = {s["symbol"] for s in httpx.get(f"{up.base}/api/v3/exchangeInfo").json()["symbols"]}
    assert {"BTCUSDT", "ETHUSDT"} <= symbols

    def traded() -> bool:
        ticker = httpx.get(f"{up.base}/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).json()
        return int(ticker["count"]) > 0

    _eventually(traded)
    depth = httpx.get(f"{up.base}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 5}).json()
    assert depth["bids"] and depth["asks"] and depth["lastUpdateId"] > 0


def test_up_with_admin_commands_on_its_data_dir_lets_a_new_user_trade(up: Up) -> None:
    created = orjson.loads(up.admin("create-user", "alice"))
    assert created["user"] == "alice" and created["api_key"] and created["api_secret"]
    up.admin("deposit", "alice", "USDT", "1000")
    query = urllib.parse.urlencode({"timestamp": int(time.time() * 1000)})
    signature = hmac.new(created["api_secret"].encode(), query.encode(), hashlib.sha256).hexdigest()
    account = httpx.get(
        f"{up.base}/api/v3/account?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": created["api_key"]},
    )
    assert account.status_code == 200, account.text
    balances = {b["asset"]: b["free"] for b in account.json()["balances"]}
    assert balances["USDT"] in ("1000", "1000.00000000")
    again = _tradewire("admin", "create-user", "alice", "--data-dir", str(up.data_dir), env=up.env)
    assert again.returncode != 0 and again.stdout == b""
    assert "user 'alice' exists already" in again.stderr.decode()
    assert orjson.loads(up.admin("create-key", "alice"))["user"] == "alice"


def test_up_with_sigint_stops_everything_it_started(tmp_path: Path) -> None:
    running = Up(tmp_path)
    running.wait_ready()
    pid_file = running.data_dir / "redis" / "redis.pid"
    redis_pid = int(pid_file.read_text())
    assert running.stop() == 0, running.log_tail()
    with pytest.raises(ProcessLookupError):
        os.kill(redis_pid, 0)
    assert not (running.data_dir / "redis.url").exists()


def test_up_with_fsync_everysec_runs_redis_so_and_warns_what_it_risks(tmp_path: Path) -> None:
    running = Up(tmp_path, "--fsync", "everysec")
    try:
        running.wait_ready()
        url = running_url(running.data_dir)  # how the admin commands find it
        assert url is not None
        client = connect_sync(url)
        try:
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        finally:
            client.close()
    finally:
        assert running.stop() == 0, running.log_tail()
    log = Path(running.log.name).read_text()
    assert "appendfsync everysec: faster, weaker durability" in log
    assert "last one to two seconds" in log


def test_up_restarted_after_a_clean_stop_goes_live_without_waiting_for_its_engine_lease(
    tmp_path: Path,
) -> None:
    """The engine releases its lease on a clean stop: the next run's engine takes it at once instead of
    standing by for the lease of an engine that no longer runs (after a kill -9 it would wait up to
    ``--lease-seconds``, docs/operations.md)."""
    first = Up(tmp_path)
    try:
        first.wait_ready()
    finally:
        assert first.stop() == 0, first.log_tail()
    assert '"event":"engine lease released"' in Path(first.log.name).read_text()
    again = Up(tmp_path)
    try:
        again.wait_ready()
        log = Path(again.log.name).read_text()
        assert '"event":"engine lease taken"' in log and '"term":2' in log, again.log_tail()
        assert "standing by" not in log
    finally:
        assert again.stop() == 0, again.log_tail()


def test_up_archives_the_journal_by_itself_then_recovers_and_audits_from_the_segments(tmp_path: Path) -> None:
    """A demo left running must not grow Redis for ever: ``up`` moves what a snapshot covers out of
    Redis into ``<data-dir>/journal-archive``, as the cron job of docs/operations.md would. After a
    restart the engine recovers past the archived mark, and the audit finds the segments by itself."""
    running = Up(tmp_path, "--archive-every", "1", "--archive-keep-seconds", "0")
    try:
        running.wait_ready()
        url = running_url(running.data_dir)
        assert url is not None
        client = connect_sync(url)
        try:
            _eventually(lambda: int(client.get(keys.ARCHIVED_ENTRIES) or 0) > 0, timeout=90)
        finally:
            client.close()
        _eventually(lambda: '"event":"journal archived"' in Path(running.log.name).read_text())
    finally:
        assert running.stop() == 0, running.log_tail()
    assert list((running.data_dir / "journal-archive").glob("journal-*.jsonl.gz"))

    again = Up(tmp_path, "--archive-every", "0")
    try:
        again.wait_ready()
        audit = _tradewire("audit", "verify", "--data-dir", str(again.data_dir), env=again.env)
        assert audit.returncode == 0, audit.stdout.decode() + audit.stderr.decode()
        assert b"balances:" in audit.stdout and b"match the replay" in audit.stdout
    finally:
        assert again.stop() == 0, again.log_tail()


def test_up_says_when_its_archive_fails_and_goes_on_serving(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "journal-archive").write_text("not a directory")
    running = Up(tmp_path, "--archive-every", "1")
    try:
        running.wait_ready()
        _eventually(lambda: '"event":"journal archive failed"' in Path(running.log.name).read_text())
        assert httpx.get(f"{running.base}/api/v3/ping", timeout=5).status_code == 200
    finally:
        assert running.stop() == 0, running.log_tail()
    failed = [line for line in Path(running.log.name).read_text().splitlines() if "archive failed" in line]
    assert "journal-archive is not a directory" in failed[0]  # the archive's own message


def test_a_second_up_on_the_same_data_dir_is_refused_and_the_first_runs_on(up: Up) -> None:
    """It found the first one's Redis running and started a second engine on it: two writers of
    one journal."""
    args = ["up", "--port", str(free_port()), "--data-dir", str(up.data_dir)]
    second = subprocess.Popen(
        [sys.executable, "-m", "tradewire.cli", *args],
        env=up.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = second.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        second.send_signal(signal.SIGINT)
        second.communicate(timeout=60)
        raise AssertionError("a second tradewire up ran on a data directory in use") from None
    message = err.decode()
    assert second.returncode == 2, message
    assert (
        f"another tradewire up (pid {up.process.pid}) is running on data directory {up.data_dir}" in message
    )
    assert "Traceback" not in message
    assert httpx.get(f"{up.base}/api/v3/ping", timeout=5).status_code == 200


def test_up_with_a_second_sigint_while_stopping_still_stops_redis(tmp_path: Path) -> None:
    """The second Ctrl-C interrupted the stop half-way and left the embedded Redis running."""
    running = Up(tmp_path)
    running.wait_ready()
    redis_pid = int((running.data_dir / "redis" / "redis.pid").read_text())
    running.process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    running.process.send_signal(signal.SIGINT)
    assert running.stop() == 0, running.log_tail()
    with pytest.raises(ProcessLookupError):
        os.kill(redis_pid, 0)


def test_a_second_up_on_the_same_redis_says_its_engine_stands_by_and_serves(up: Up, tmp_path: Path) -> None:
    """It used to say it was up as soon as any engine's heartbeat was there, the first one's
    included, while its own engine waited as a standby: nothing told the operator which one ran."""
    url = running_url(up.data_dir)
    assert url is not None
    port = free_port()
    log_path = tmp_path / "second.log"
    with log_path.open("wb") as log:
        second = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tradewire.cli",
                "up",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "b"),
                "--lease-seconds",
                "3",
            ],
            env={**up.env, "REDIS_URL": url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _eventually(lambda: "its engine stands by" in log_path.read_text(errors="replace"), timeout=90)
            said = log_path.read_text(errors="replace")
            assert "tradewire is up: http://127.0.0.1:" in said, said[-3000:]
            assert "another engine (pid " in said and "holds this Redis's engine lease" in said, said[-3000:]
            assert '"lease_seconds":3.0' in said, said[-3000:]  # the engine was given up's --lease-seconds
            assert httpx.get(f"http://127.0.0.1:{port}/api/v3/ping", timeout=5).status_code == 200
        finally:
            second.send_signal(signal.SIGINT)
            assert second.wait(60) == 0, log_path.read_text(errors="replace")[-3000:]
    assert httpx.get(f"{up.base}/api/v3/ping", timeout=5).status_code == 200


def test_up_ctrl_c_pressed_again_after_it_stopped_leaves_a_clean_exit_status(tmp_path: Path) -> None:
    """A Ctrl-C that came after everything had stopped, while Python was exiting (which puts back
    the default action of signals with a Python handler), ended `up` with -SIGINT."""
    running = Up(tmp_path)
    running.wait_ready()
    running.process.send_signal(signal.SIGINT)
    _eventually(lambda: '"event":"stopped"' in Path(running.log.name).read_text(), timeout=60)
    while running.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            running.process.send_signal(signal.SIGINT)
        time.sleep(0.001)
    assert running.stop() == 0, running.log_tail()
