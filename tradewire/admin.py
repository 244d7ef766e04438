"""Operator commands against a running exchange: ``tradewire admin create-user`` and ``deposit``.

They reach the exchange the way every process does (``REDIS_URL`` or ``--data-dir``, see
``tradewire.runtime``) and never start anything. ``create-user`` writes the user and an API key
whose secret is encrypted with the master key (``<data-dir>/master.key``, created 0600 on first use,
or ``$TRADEWIRE_MASTER_KEY``); the secret is printed once, in the JSON line, and stored nowhere in
clear. ``deposit`` is a command like any other: it goes through the journal and prints the engine's
outcome, so a deposit is durable and replayable exactly as orders are.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
import redis

from tradewire import keys
from tradewire.gateway.secrets import (
    SecretError,
    encrypt_secret,
    load_master_key,
    new_api_key,
    new_api_secret,
)
from tradewire.journal.submit import SubmitError, submit_sync
from tradewire.ops.logging import ADMIN_ACTION, audit_log, configure_logging
from tradewire.redisconn import connect_sync
from tradewire.runtime import RuntimeSetupError, data_dir_or_default, find_redis


class AdminError(RuntimeError):
    """An admin command that cannot be carried out; the message says why."""


def _fail(message: str, status: int = 1) -> None:
    print(f"admin: {message}", file=sys.stderr)
    raise SystemExit(status)


def _client(data_dir: Path | None) -> redis.Redis:
    try:
        url, _ = find_redis(data_dir)
    except RuntimeSetupError as exc:
        raise AdminError(str(exc)) from exc
    return connect_sync(url)


def valid_user_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(ch.isalnum() or ch in "-_." for ch in name) and name != "fees"


def create_user_record(client: redis.Redis, name: str, master: bytes) -> dict[str, str]:
    """Write the user (if new) and a fresh API key; returns the JSON line's fields."""
    if not valid_user_name(name):
        raise AdminError(f"invalid user name {name!r}: 1-64 letters, digits, '-', '_' or '.' (not 'fees')")
    api_key, api_secret = new_api_key(), new_api_secret()
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=True)
    pipe.hsetnx(keys.USERS, name, orjson.dumps({"created": now}))
    pipe.hset(
        keys.api_key(api_key),
        mapping={
            "user": name,
            "secret": encrypt_secret(master, api_key, api_secret),
            "created": str(now),
            "permissions": "TRADE",
        },
    )
    pipe.execute()
    return {"user": name, "api_key": api_key, "api_secret": api_secret}


def create_user(name: str, data_dir: Path | None) -> None:
    configure_logging("admin")
    try:
        client = _client(data_dir)
        master = load_master_key(data_dir_or_default(data_dir), create=True)
        line = create_user_record(client, name, master)
    except (AdminError, SecretError) as exc:
        _fail(str(exc), 2)
        return
    except redis.exceptions.RedisError as exc:
        _fail(f"Redis error: {exc}")
        return
    audit_log(ADMIN_ACTION, action="create_user", user=name, who="admin", api_key=line["api_key"][:8])
    print(orjson.dumps(line).decode(), flush=True)


def deposit_command(name: str, asset: str, amount: str) -> dict[str, Any]:
    return {"type": "deposit", "user": name, "asset": asset.upper(), "amount": amount}


def deposit(name: str, asset: str, amount: str, data_dir: Path | None) -> None:
    configure_logging("admin")
    try:
        client = _client(data_dir)
        if not client.hexists(keys.USERS, name):
            raise AdminError(f"unknown user {name!r}: create it first with `tradewire admin create-user`")
        reply = submit_sync(client, deposit_command(name, asset, amount), who="admin")
    except AdminError as exc:
        _fail(str(exc), 2)
        return
    except SubmitError as exc:
        _fail(str(exc))
        return
    outcome = reply.events[0] if reply.events else {"type": "rejected", "reason": "no outcome"}
    audit_log(ADMIN_ACTION, action="deposit", user=name, asset=asset, amount=amount, who="admin",
              outcome=outcome.get("type"))  # fmt: skip
    print(orjson.dumps({"cmd": reply.cmd, "ts": reply.ts, **outcome}).decode(), flush=True)
    if outcome.get("type") == "rejected":
        raise SystemExit(1)
