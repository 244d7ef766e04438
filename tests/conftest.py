"""Shared fixtures: real ``redis-server`` processes, one per test, each on its own port and directory.

Tests never mock Redis. A test that needs one asks for a fixture:

``redis_server``
    A :class:`RedisServer` started for this test only: a free loopback port, a private temporary
    directory, AOF on with ``appendfsync always`` (the embedded Redis's durable setting), no RDB
    saves, ``noeviction``. It is stopped (SIGKILL if SIGTERM does not do it) at the end of the test.
    It can be killed with ``kill()`` (SIGKILL, as a crash) and brought back with ``restart()`` on
    the same port and directory, so clients reconnect to the same URL and the AOF is reloaded.
``redis_server_everysec``
    The same with ``appendfsync everysec``.
``redis_client``
    A synchronous ``redis.Redis`` on ``redis_server`` (bytes in and out, no retries).
``aredis``
    An asyncio ``redis.asyncio.Redis`` on ``redis_server`` (bytes in and out, no retries); closed at
    the end of the test. Use it from ``@pytest.mark.asyncio`` tests.

Other shapes (several servers, a different ``appendfsync``, extra config) come from
``RedisServer(tmp_path / "x", appendfsync=...).start()`` directly; call ``stop()`` in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Literal

import pytest
import pytest_asyncio
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.exceptions
import redis.retry
from redis.backoff import NoBackoff

from tradewire import compiled

Fsync = Literal["always", "everysec", "no"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled module older than its source: the build, not the edit, would run."""
    stale = compiled.stale()
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(stale)}; rebuild them with "
            "`.venv/bin/python setup.py build_ext --inplace` (or run ./scripts/test)",
            returncode=4,
        )


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child process on a loopback port, keeping its files in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        appendfsync: Fsync = "always",
        port: int | None = None,
        extra: Mapping[str, str] | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server, or run ./scripts/test)")
        self.binary = found
        self.directory = directory
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.extra = dict(extra or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _config(self) -> str:
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.directory),
            "daemonize": "no",
            "logfile": str(self.log_path),
            "appendonly": "yes",
            "appendfilename": "appendonly.aof",
            "appendfsync": self.appendfsync,
            "no-appendfsync-on-rewrite": "no",
            "save": '""',
            "maxmemory-policy": "noeviction",
            # Tests start many servers on a shared machine: no background rewrites in the middle.
            "auto-aof-rewrite-percentage": "0",
            **self.extra,
        }
        return "".join(f"{name} {value}\n" for name, value in options.items())

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start (or restart) the server and return once it answers PING with its AOF loaded."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"redis-server pid {self.process.pid} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "redis.conf"
        config.write_text(self._config())
        self.process = subprocess.Popen(
            [self.binary, str(config)],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        probe = redis.Redis(
            port=self.port,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            retry=redis.retry.Retry(NoBackoff(), 0),
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{tail}")
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    if probe.ping() and probe.info("persistence").get("loading") == 0:
                        return self
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")
                time.sleep(0.01)
        finally:
            probe.close()

    def restart(self) -> RedisServer:
        """Start again on the same port and directory (after :meth:`kill` or :meth:`stop`)."""
        return self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash: Redis gets no chance to flush anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM (Redis fsyncs its AOF), SIGKILL after 10 seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def client(self, **options: object) -> redis.Redis:
        """A synchronous client, bytes in and out, commands never retried."""
        settings: dict[str, object] = {"socket_timeout": 10.0, "retry": redis.retry.Retry(NoBackoff(), 0)}
        return redis.Redis(port=self.port, **{**settings, **options})  # type: ignore[arg-type]

    def async_client(self, **options: object) -> redis.asyncio.Redis:
        """An asyncio client, bytes in and out, commands never retried."""
        settings: dict[str, object] = {
            "socket_timeout": 10.0,
            "retry": redis.asyncio.retry.Retry(NoBackoff(), 0),
        }
        return redis.asyncio.Redis(port=self.port, **{**settings, **options})  # type: ignore[arg-type]


def _server(tmp_path: Path, appendfsync: Fsync) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / f"redis-{os.getpid()}", appendfsync=appendfsync).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with AOF and ``appendfsync always``, for this test only."""
    yield from _server(tmp_path, "always")


@pytest.fixture
def redis_server_everysec(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with AOF and ``appendfsync everysec``, for this test only."""
    yield from _server(tmp_path, "everysec")


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest_asyncio.fixture
async def aredis(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_server.async_client()
    try:
        yield client
    finally:
        await client.aclose()
