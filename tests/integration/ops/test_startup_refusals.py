"""What ``tradewire up``, ``gateway`` and ``engine`` say when they cannot start where they are told to:
a port or an address they cannot listen on, a Redis named by ``REDIS_URL`` that they cannot use. One
line naming the address or the URL (password hidden) and why, a non-zero status, no traceback, and
nothing left running; the engine, which waits for its Redis by design, says so in its log instead.
Real sockets and real redis-server processes throughout."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


# -- REDIS_URL that names a Redis tradewire cannot use ----------------------------------------------


def _redis_server(directory: Path, *args: str) -> subprocess.Popen[bytes]:
    """A redis-server with these command-line settings (no files kept), once it accepts connections."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server, or run ./scripts/test)")
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--dir", str(directory), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    port = int(args[args.index("--tls-port") + 1] if "--tls-port" in args else args[args.index("--port") + 1])
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


BAD_URLS = ["nothing listening", "wrong password", "TLS to a plain server", "plain to a TLS server"]


@pytest.fixture
def bad_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(the URL, the same with its password hidden, what the message must say about it)."""
    case: str = request.param
    servers: list[subprocess.Popen[bytes]] = []
    try:
        if case == "nothing listening":
            port = free_port()
            url, says = f"redis://:sekrit@127.0.0.1:{port}", "connection refused"
        elif case == "wrong password":
            port = free_port()
            servers.append(_redis_server(tmp_path / "pw", "--port", str(port), "--requirepass", "right"))
            url, says = f"redis://:sekrit@127.0.0.1:{port}", "password"
        elif case == "TLS to a plain server":
            port = free_port()
            servers.append(_redis_server(tmp_path / "plain", "--port", str(port)))
            url, says = f"rediss://:sekrit@127.0.0.1:{port}", "does the server speak TLS?"
        else:
            cert, key = _self_signed(tmp_path)
            port = free_port()
            tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            servers.append(_redis_server(tmp_path / "tls", "--port", "0", *tls, "--tls-auth-clients", "no"))
            url, says = f"redis://:sekrit@127.0.0.1:{port}", "if it speaks TLS, use rediss://"
        yield url, url.replace(":sekrit@", ":***@"), says
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


@pytest.mark.parametrize("bad_redis", BAD_URLS, indirect=True)
@pytest.mark.parametrize("command", ["up", "gateway"])
def test_a_redis_url_that_cannot_be_used_is_one_line_naming_it(
    tmp_path: Path, command: str, bad_redis: tuple[str, str, str]
) -> None:
    """Each was a traceback (up's own, or uvicorn's "Application startup failed" for the gateway)."""
    url, shown, says = bad_redis
    data = tmp_path / "data"
    args = [command, "--port", str(free_port()), "--data-dir", str(data)]
    started = time.monotonic()
    message = refused(tradewire(*args, env={"REDIS_URL": url}), 1)
    assert time.monotonic() - started < 30
    assert len(message.strip().splitlines()) == 1, message
    assert shown in message and "sekrit" not in message
    assert says in message
    _nothing_started(data)


@pytest.mark.parametrize("bad_redis", BAD_URLS, indirect=True)
def test_the_engine_waits_for_a_redis_it_cannot_use_saying_which_and_why(
    tmp_path: Path, bad_redis: tuple[str, str, str]
) -> None:
    """The engine retries with back-off (docs/operations.md); its log line named neither the URL
    nor, for a TLS mismatch, any reason at all ("cannot connect to Redis at rediss://...: ")."""
    url, shown, says = bad_redis
    log = tmp_path / "engine.log"
    env = {k: v for k, v in os.environ.items() if k != "TRADEWIRE_MASTER_KEY"} | {"REDIS_URL": url}
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
        assert engine.wait(20) == 0
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    text = log.read_text()
    retrying = next(line for line in text.splitlines() if "redis error; retrying" in line)
    assert shown in retrying and says in retrying, retrying
    assert "sekrit" not in text and "Traceback" not in text
