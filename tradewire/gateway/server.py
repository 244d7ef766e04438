"""``tradewire gateway``: one asyncio process serving REST and WebSocket on one port.

uvicorn with uvloop and httptools runs the Starlette app (REST, static page, metrics); WebSocket
upgrades go to tradewire's own protocol class, ``tradewire.gateway.connection.Connection``, which
uses websockets' sans-I/O protocol and writes pre-built frames (see that module). The process finds
its Redis the way every tradewire process does (``REDIS_URL`` or ``--data-dir``) and never starts one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

from tradewire.gateway.app import create_app
from tradewire.gateway.connection import Connection
from tradewire.gateway.limits import limits_from_env
from tradewire.gateway.service import Gateway
from tradewire.ops.logging import configure_logging
from tradewire.redisconn import RedisConnectError
from tradewire.runtime import (
    RuntimeSetupError,
    check_listen,
    data_dir_or_default,
    find_redis,
    reach_redis,
    tune_gc,
)


def build_server(host: str, port: int, gateway: Gateway) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(gateway),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws=Connection,
        lifespan="on",
        log_config=None,
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def main(host: str, port: int, data_dir: Path | None) -> None:
    configure_logging("gateway")
    try:
        limits = limits_from_env(os.environ)
        url, _ = find_redis(data_dir)
        check_listen(host, port)
    except (RuntimeSetupError, ValueError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    try:
        # here, not in the app's start: there a failure was uvicorn's traceback and exit status 3
        reach_redis(url)
    except RedisConnectError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    gateway = Gateway(url, data_dir_or_default(data_dir), limits)
    server = build_server(host, port, gateway)
    tune_gc()
    server.run()
