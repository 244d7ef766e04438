"""What every long-running process does first: find its Redis and its exchange config.

One rule for all of them, so that ``tradewire up``, ``tradewire engine``, ``tradewire gateway`` and
``tradewire admin`` on the same ``--data-dir`` (or ``REDIS_URL``) always meet on the same Redis:

1. ``REDIS_URL`` set: use that server, never start one.
2. Otherwise the embedded Redis recorded in ``<data-dir>/redis.url`` if it is running.
3. Otherwise (only where ``may_start``) start an embedded Redis in ``<data-dir>/redis``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import os
import re
import socket
from pathlib import Path
from typing import Any

import orjson
import structlog

from tradewire.demo import DEMO_CONFIG
from tradewire.engine import ConfigError, ExchangeConfig
from tradewire.engine.config import loads as config_loads
from tradewire.engine.config import unknown_fields
from tradewire.marketdata.binance import symbol_of
from tradewire.ops.metrics import observe_gc_pauses
from tradewire.redisconn import (
    REDIS_URL_ENV,
    AppendFsync,
    EmbeddedRedis,
    connect_sync,
    parse_redis_url,
    redis_url_from_env,
    running_url,
    verify_connection_sync,
)

log = structlog.get_logger("tradewire")

DEFAULT_DATA_DIR = Path("data")


def tune_gc(*, freeze: bool = True) -> None:
    """Fewer, cheaper cyclic collections for the long-running processes. Each request or command
    allocates many short-lived containers, and with the defaults the collector walked the whole heap
    every few hundred of them (9 % of the gateway's CPU, a quarter of the engine's). The young
    generation is collected every 20,000 allocations instead of 700; with ``freeze``, what is alive
    now (start-up, the recovered state) is moved out of the collector's walks for good. Every
    collection's pause is timed into ``tradewire_gc_pause_seconds``."""
    if freeze:
        gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    observe_gc_pauses()


class RuntimeSetupError(RuntimeError):
    """A process cannot start: no Redis to reach, or a config that breaks the rules."""


def data_dir_or_default(data_dir: Path | None) -> Path:
    return (data_dir or Path(os.environ.get("TRADEWIRE_DATA_DIR", DEFAULT_DATA_DIR))).absolute()


UP_LOCK_FILE = "up.lock"


def hold_data_dir(root: Path) -> int:
    """Take ``<data-dir>/up.lock`` for the life of this process (the kernel lets go when it exits,
    however it exits), or refuse: a second ``tradewire up`` on one directory would start a second
    engine on the first one's Redis, two writers of one journal. Returns the lock's descriptor."""
    if root.exists() and not root.is_dir():
        raise RuntimeSetupError(f"data directory {root} is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / UP_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RuntimeSetupError(f"data directory {root}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = b""
        with contextlib.suppress(OSError):
            holder = os.pread(fd, 32, 0).strip()
        os.close(fd)
        pid = f" (pid {holder.decode(errors='replace')})" if holder else ""
        raise RuntimeSetupError(
            f"another tradewire up{pid} is running on data directory {root}: stop it first, "
            "or give this one another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def redis_url() -> str | None:
    """``$REDIS_URL`` when it is set, refused naming the variable when it is not a Redis URL, before
    any command touches a file or a server (each caller turns the error into its one-line message)."""
    url = redis_url_from_env()
    if url:
        try:
            parse_redis_url(url)
        except ValueError as exc:
            raise RuntimeSetupError(f"${REDIS_URL_ENV}: {exc}") from exc
    return url


def find_redis(
    data_dir: Path | None, *, may_start: bool = False, fsync: AppendFsync = "always"
) -> tuple[str, EmbeddedRedis | None]:
    """The Redis URL to use and, when this call started it, the embedded server to stop at exit.

    A ``REDIS_URL`` that is not a Redis URL is refused (:func:`redis_url`)."""
    url = redis_url()
    if url:
        return url, None
    root = data_dir_or_default(data_dir)
    if root.exists() and not root.is_dir():
        raise RuntimeSetupError(f"data directory {root} is not a directory")
    url = running_url(root)
    if url:
        return url, None
    if not may_start:
        raise RuntimeSetupError(
            f"no Redis to use: REDIS_URL is not set and no tradewire is running on data directory {root} "
            "(start one with `tradewire up`, or pass --data-dir / REDIS_URL)"
        )
    server = embedded_redis(root, fsync).start()
    return server.url, server


def embedded_redis(root: Path, fsync: AppendFsync = "always") -> EmbeddedRedis:
    """The embedded Redis of data directory ``root``, not started: a caller that holds it before
    :meth:`~EmbeddedRedis.start` can stop it however the start ends. It dies with this process."""
    return EmbeddedRedis.for_data_dir(root, appendfsync=fsync, die_with_parent=True)


def check_listen(host: str, port: int) -> None:
    """Refuse an address the gateway could not listen on, before anything is started: the port taken
    by another program, a host that is not this machine's. Without this ``up`` started Redis and the
    engine, then said only "gateway exited with status 3" (uvicorn's status for a failed start).

    Bound as the gateway binds (asyncio: every address the host resolves to, ``SO_REUSEADDR``, so a
    port that a stopped server left in ``TIME_WAIT`` is free), then let go at once."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise RuntimeSetupError(f"cannot listen on {host}: no such host ({exc.strerror})") from exc
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
                sock.listen()  # with SO_REUSEADDR, only listening finds a bound, idle socket
            except OSError as exc:
                raise RuntimeSetupError(_listen_refusal(host, port, exc)) from exc


def _listen_refusal(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use: another program listens there "
            "(stop it, or choose another --port)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: it is not an address of this machine (--host)"
    if exc.errno == errno.EACCES:
        return (
            f"cannot listen on port {port} on {host}: permission denied (ports below 1024 need root "
            "or CAP_NET_BIND_SERVICE)"
        )
    return f"cannot listen on port {port} on {host}: {exc.strerror or exc}"


def reach_redis(url: str) -> None:
    """PING the Redis at ``url`` once, or raise :class:`RedisConnectError` saying in one line which
    (password hidden) and why: a command that cannot work without it stops before it starts."""
    client = connect_sync(url, retries=0)
    try:
        verify_connection_sync(client, url)
    finally:
        client.close()


_ASSET_NAME = re.compile(r"[A-Za-z0-9]{1,20}")
ASSET_NAME_RULE = "1-20 ASCII letters or digits"
_MARKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
MARKET_NAME_RULE = "1-40 ASCII letters, digits, '-' or '_', starting with a letter or digit"


def name_problems(config: ExchangeConfig) -> list[str]:
    """What breaks the exchange's rules for names, which the replay spec does not have: one line each.

    Applied to a new exchange only (``load_config``, and the engine when Redis holds no config yet):
    an exchange that already runs under a name these rules came after keeps it, with a warning."""
    problems: list[str] = []
    for name in config.assets:
        if not _ASSET_NAME.fullmatch(name):
            # an asset is a field of Binance's account and fee replies and part of every symbol
            problems.append(f"config: assets.{name!r}: an asset's name is {ASSET_NAME_RULE}")
    streams: dict[str, str] = {}
    for name in config.markets:
        if not _MARKET_NAME.fullmatch(name):
            # a market names Redis keys by hash tag ("md:{BTC-USDT}:depth": a brace would end the
            # tag early, and Redis Cluster would scatter the market) and, as its symbol, stream paths
            problems.append(f"config: markets.{name!r}: a market's name is {MARKET_NAME_RULE}")
        stream = symbol_of(name).lower()
        if stream in streams:
            problems.append(
                f"config: markets.{name}: its stream name {stream} (the name without '-', in lower "
                f"case) is also markets.{streams[stream]}'s"
            )
        streams.setdefault(stream, name)
    return problems


def load_config(path: Path | None, *, names: bool = True) -> tuple[ExchangeConfig, dict[str, Any]]:
    """The checked exchange config (the demo one without a path) and its raw JSON object.

    ``names=False`` leaves :func:`name_problems` to the caller: the engine, which knows whether the
    exchange is new, and the audit, which reads an exchange whatever rules it was created under."""
    if path is None:
        raw: Any = DEMO_CONFIG
    else:
        try:
            raw = config_loads(path.read_bytes())
        except OSError as exc:
            raise RuntimeSetupError(f"config: cannot read {path}: {exc.strerror}") from exc
        except orjson.JSONDecodeError as exc:
            raise RuntimeSetupError(f"config: {path} is not valid JSON: {exc}") from exc
        except ConfigError as exc:
            raise RuntimeSetupError(str(exc)) from exc
    try:
        config = ExchangeConfig.from_dict(raw)
    except ConfigError as exc:
        raise RuntimeSetupError(f"config: {exc}") from exc
    symbols: dict[str, str] = {}
    for name, market in config.markets.items():
        symbol = (market.base.name + market.quote.name).upper()
        if symbol in symbols:
            # the replay spec allows it; the exchange cannot: Binance clients name a market by its
            # symbol, and each account's fills of a market are one stream keyed by it
            raise RuntimeSetupError(
                f"config: markets.{name}: its Binance symbol {symbol} is also markets.{symbols[symbol]}'s"
            )
        symbols[symbol] = name
    if names:
        problems = name_problems(config)
        if problems:
            raise RuntimeSetupError(problems[0])
    for field in unknown_fields(raw):
        log.warning("config field unknown; ignored", field=field)
    return config, raw
