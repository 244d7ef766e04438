"""The ``tradewire`` command as an operator's script drives it, on bad input: each refusal is one clear
line on stderr, a non-zero status (2 for usage and config errors), no traceback, and nothing changed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.timeout(120)


def tradewire(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TRADEWIRE_MASTER_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "tradewire.cli", *args],
        env=base | (env or {}), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The one-line message of a refusal (asserting its status and that no traceback came with it)."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("command", "url", "says"),
    [
        (
            ["admin", "deposit", "ann", "USDT", "1"],
            "http://localhost:6379",
            "starts with redis://, rediss://",
        ),
        (["admin", "create-user", "ann"], "localhost:6379", "starts with redis://, rediss:// or unix://"),
        (["engine"], "redis://localhost:99999", "bad port"),
        (["gateway"], "redis://localhost:6379/x", "a database number, not 'x'"),
        (
            ["journal", "archive", "segments"],
            "redis://h?ssl_ca_certs=/x",
            "TLS settings need a rediss:// URL",
        ),
        (["up"], "http://localhost:6379", "starts with redis://, rediss:// or unix://"),
    ],
)
def test_a_malformed_redis_url_is_refused_naming_the_variable(
    tmp_path: Path, command: list[str], url: str, says: str
) -> None:
    args = [a if a != "segments" else str(tmp_path / "segments") for a in command]
    result = tradewire(*args, "--data-dir", str(tmp_path / "data"), env={"REDIS_URL": url})
    message = refused(result)
    assert "REDIS_URL" in message and says in message
    assert not (tmp_path / "data").exists() and not (tmp_path / "segments").exists()


def test_admin_commands_with_no_exchange_to_reach_say_so_and_create_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    message = refused(tradewire("admin", "create-user", "ann", "--data-dir", str(data)))
    assert f"no tradewire is running on data directory {data}" in message
    closed = f"redis://127.0.0.1:{free_port()}"
    message = refused(
        tradewire("admin", "create-user", "ann", "--data-dir", str(data), env={"REDIS_URL": closed}), 1
    )
    assert f"cannot reach Redis at {closed}" in message
    assert not data.exists()  # no master key was made for an exchange that was not there


def test_engine_waiting_for_an_unreachable_redis_stops_at_sigterm(tmp_path: Path) -> None:
    """It retries with back-off until Redis answers; a stop asked meanwhile ended the back-off's
    sleeps, so it retried in a tight loop, logging each try, and never stopped."""
    log = tmp_path / "engine.log"
    env = {k: v for k, v in os.environ.items() if k != "TRADEWIRE_MASTER_KEY"}
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}"
    with log.open("wb") as out:
        engine = subprocess.Popen(
            [sys.executable, "-m", "tradewire.cli", "engine"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while b"redis error; retrying" not in log.read_bytes():
            assert engine.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(10) == 0
        assert log.read_text().count("redis error; retrying") < 50
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()


@pytest.mark.parametrize("command", [["up"], ["engine"], ["admin", "create-user", "ann"]])
def test_a_data_dir_that_is_a_file_is_refused_saying_so(tmp_path: Path, command: list[str]) -> None:
    file = tmp_path / "data"
    file.write_text("not a directory")
    message = refused(tradewire(*command, "--data-dir", str(file)))
    assert f"data directory {file} is not a directory" in message
    assert file.read_text() == "not a directory"


@pytest.mark.parametrize(
    ("command", "env", "says"),
    [
        (["gateway"], {"TRADEWIRE_LIMIT_CONNECTIONS_PER_IP": "abc"}, "TRADEWIRE_LIMIT_CONNECTIONS_PER_IP"),
        (["up"], {"TRADEWIRE_LIMIT_PING_INTERVAL": "-5"}, "TRADEWIRE_LIMIT_PING_INTERVAL"),
        (["admin", "list-keys", "ann"], {"TRADEWIRE_LOG_LEVEL": "verbose"}, "TRADEWIRE_LOG_LEVEL"),
        (["gateway", "--port", "70000"], {}, "--port"),
        (["up", "--port", "0"], {}, "--port"),
    ],
)
def test_bad_settings_are_refused_naming_them(
    tmp_path: Path, command: list[str], env: dict[str, str], says: str
) -> None:
    message = refused(tradewire(*command, "--data-dir", str(tmp_path / "data"), env=env))
    assert says in message
    assert not (tmp_path / "data").exists()
