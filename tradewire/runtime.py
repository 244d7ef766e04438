"""What every long-running process does first: find its Redis and its exchange config.

One rule for all of them, so that ``tradewire up``, ``tradewire engine``, ``tradewire gateway`` and
``tradewire admin`` on the same ``--data-dir`` (or ``REDIS_URL``) always meet on the same Redis:

1. ``REDIS_URL`` set: use that server, never start one.
2. Otherwise the embedded Redis recorded in ``<data-dir>/redis.url`` if it is running.
3. Otherwise (only where ``may_start``) start an embedded Redis in ``<data-dir>/redis``.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import orjson
import structlog

from tradewire.demo import DEMO_CONFIG
from tradewire.engine import ConfigError, ExchangeConfig
from tradewire.engine.config import loads as config_loads
from tradewire.engine.config import unknown_fields
from tradewire.ops.metrics import observe_gc_pauses
from tradewire.redisconn import (
    REDIS_URL_ENV,
    AppendFsync,
    EmbeddedRedis,
    parse_redis_url,
    redis_url_from_env,
    running_url,
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


def find_redis(
    data_dir: Path | None, *, may_start: bool = False, fsync: AppendFsync = "always"
) -> tuple[str, EmbeddedRedis | None]:
    """The Redis URL to use and, when this call started it, the embedded server to stop at exit.

    A ``REDIS_URL`` that is not a Redis URL is refused here, naming the variable, before any command
    touches a file or a server (each caller turns this error into its one-line message)."""
    url = redis_url_from_env()
    if url:
        try:
            parse_redis_url(url)
        except ValueError as exc:
            raise RuntimeSetupError(f"${REDIS_URL_ENV}: {exc}") from exc
        return url, None
    root = data_dir_or_default(data_dir)
    url = running_url(root)
    if url:
        return url, None
    if not may_start:
        raise RuntimeSetupError(
            f"no Redis to use: REDIS_URL is not set and no tradewire is running on data directory {root} "
            "(start one with `tradewire up`, or pass --data-dir / REDIS_URL)"
        )
    server = EmbeddedRedis.for_data_dir(root, appendfsync=fsync).start()
    return server.url, server


def load_config(path: Path | None) -> tuple[ExchangeConfig, dict[str, Any]]:
    """The checked exchange config (the demo one without a path) and its raw JSON object."""
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
    for field in unknown_fields(raw):
        log.warning("config field unknown; ignored", field=field)
    return config, raw
