"""Operator commands against a running exchange: users, API keys, deposits and withdrawals.

They reach the exchange the way every process does (``REDIS_URL`` or ``--data-dir``, see
``tradewire.runtime``) and never start anything. ``create-user`` writes the user and an API key
whose secret is encrypted with the master key (``<data-dir>/master.key``, created 0600 on first use,
or ``$TRADEWIRE_MASTER_KEY``); the secret is printed once, in the JSON line, and stored nowhere in
clear; ``create-key`` gives an existing user another key. ``revoke-key`` deletes a key and tells
every gateway to end at once the streams it created or asked for (``tradewire.gateway.sessions``).
``deposit`` and ``withdraw`` are commands like any other: they go through the journal and print the
engine's outcome, so they are durable and replayable exactly as orders are.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar, cast

import orjson
import redis

from tradewire import keys
from tradewire.bots import MAKER_USER, TAKER_USER
from tradewire.engine import ConfigError, ExchangeConfig
from tradewire.engine.decimals import MAX_DIGITS, decimals_of, to_units
from tradewire.engine.engine import FEES_USER
from tradewire.gateway.secrets import (
    SecretError,
    encrypt_secret,
    load_master_key,
    new_api_key,
    new_api_secret,
)
from tradewire.gateway.sessions import revoked_notice
from tradewire.journal.entries import Reply
from tradewire.journal.submit import SubmitError, submit_sync
from tradewire.ops.logging import ADMIN_ACTION, audit_log, configure_logging
from tradewire.redisconn import RedisConnectError, connect_sync, verify_connection_sync
from tradewire.runtime import RuntimeSetupError, data_dir_or_default, find_redis

T = TypeVar("T")


class AdminError(RuntimeError):
    """An admin command that cannot be carried out; the message says why."""


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"admin: {message}", file=sys.stderr)
    raise SystemExit(status)


def _attempt(action: Callable[[], T]) -> T:
    """Run an admin action: a refusal exits with status 2, a failed submission or a Redis error
    with 1, each with its message."""
    try:
        return action()
    except (AdminError, SecretError) as exc:
        _fail(str(exc), 2)
    except (SubmitError, RedisConnectError) as exc:
        _fail(str(exc))
    except redis.exceptions.RedisError as exc:
        _fail(f"Redis error: {exc}")


def _client(data_dir: Path | None) -> redis.Redis:
    try:
        url, _ = find_redis(data_dir)
    except RuntimeSetupError as exc:
        raise AdminError(str(exc)) from exc
    client = connect_sync(url)
    verify_connection_sync(client, url)  # an exchange out of reach is said as such, before any change
    return client


_USER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
USER_NAME_RULE: Final = (
    f"1-64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit, "
    f"and not {FEES_USER!r} (the exchange's fee account) in any letter case"
)


_BOT_USERS: Final = frozenset({MAKER_USER, TAKER_USER})
"""Journal-only accounts that ``--demo`` funds and trades on: never given to an operator."""


def valid_user_name(name: str) -> bool:
    """The rule for every user an operator creates (:data:`USER_NAME_RULE`): ASCII only, so that two
    names that look alike in an audit log are one name (``str.isalnum`` takes ``²``, ``é`` and
    Cyrillic letters); never ``.``/``..`` nor a leading ``-``, which every later ``tradewire admin``
    command would read as an option; never the engine's fee account, which holds every fee."""
    return _USER_NAME.fullmatch(name) is not None and name.lower() != FEES_USER


def _user_names(client: redis.Redis) -> list[str]:
    return [raw.decode() for raw in cast(list[bytes], client.hkeys(keys.USERS))]


def create_user_record(
    client: redis.Redis, name: str, master: bytes, *, new_user: bool = True, read_only: bool = False
) -> dict[str, str]:
    """Write the user and a fresh API key; returns the JSON line's fields. A name that exists is
    refused (a second ``create-user`` of a name is more likely a mistake than a wish for a key).

    ``new_user=False`` (``create-key``): the user must exist already (whatever rule its name was
    created under)."""
    now = int(time.time() * 1000)
    if new_user:
        if not valid_user_name(name):
            raise AdminError(f"invalid user name {name!r}: {USER_NAME_RULE}")
        if name.lower() in _BOT_USERS:  # a key to it would trade the bots' funds, and fund its owner
            raise AdminError(
                f"user name {name!r} is the account of the demo bots (`tradewire up --demo`): choose another"
            )
        folded = name.lower()
        twin = next((n for n in _user_names(client) if n.lower() == folded and n != name), None)
        if twin is not None:  # "Alice" beside "alice": one person to every reader of a log or a screen
            raise AdminError(f"user {twin!r} exists already: names may not differ only in letter case")
        # the name is claimed first, alone: of two admins creating one name, one gets an error
        if not client.hsetnx(keys.USERS, name, orjson.dumps({"created": now})):
            raise AdminError(
                f"user {name!r} exists already: give it another key with `tradewire admin create-key {name}`"
            )
    elif not client.hexists(keys.USERS, name):
        raise AdminError(f"unknown user {name!r}: create it first with `tradewire admin create-user`")
    api_key, api_secret = new_api_key(), new_api_secret()
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        keys.api_key(api_key),
        mapping={
            "user": name,
            "secret": encrypt_secret(master, api_key, api_secret),
            "created": str(now),
            "permissions": "" if read_only else "TRADE",
        },
    )
    pipe.execute()
    return {"user": name, "api_key": api_key, "api_secret": api_secret}


def revoke_key_record(client: redis.Redis, api_key: str) -> dict[str, Any]:
    """Delete ``api_key`` and tell the gateways (``tradewire.gateway.sessions``): each drops it from
    its cache and ends the streams it created or asked for. The listen keys it created die with it
    (a listen key is valid only while its creator exists), wherever and whenever they were made."""
    user = client.hget(keys.api_key(api_key), "user")
    if user is None:
        raise AdminError(f"unknown API key {api_key[:8]}...: nothing to revoke")
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.api_key(api_key))
    pipe.publish(keys.SESSIONS, revoked_notice(api_key))
    pipe.execute()
    return {"user": cast("bytes", user).decode(), "api_key": api_key, "revoked": True}


def create_user(name: str, data_dir: Path | None, *, new_user: bool = True, read_only: bool = False) -> None:
    configure_logging("admin")

    def create() -> dict[str, str]:
        client = _client(data_dir)  # first: without an exchange to reach, no master key is created
        master = load_master_key(data_dir_or_default(data_dir), create=True)
        return create_user_record(client, name, master, new_user=new_user, read_only=read_only)

    line = _attempt(create)
    audit_log(ADMIN_ACTION, action="create_user" if new_user else "create_key", user=name, who="admin",
              api_key=line["api_key"][:8], read_only=read_only)  # fmt: skip
    print(orjson.dumps(line).decode(), flush=True)


def key_records(client: redis.Redis, name: str) -> list[dict[str, Any]]:
    """The user's API keys, oldest first: id, creation time (ms) and permissions (never the secret)."""
    if not client.hexists(keys.USERS, name):
        raise AdminError(f"unknown user {name!r}")
    found = []
    for key in client.scan_iter(match=keys.api_key("*"), count=1000):
        api_key = key.decode()[len(keys.api_key("")) :]
        if not api_key.isalnum():  # not a key's hash
            continue
        raw = cast("dict[bytes, bytes]", client.hgetall(key))
        if raw.get(b"user", b"").decode() != name:
            continue
        permissions = raw.get(b"permissions", b"").decode()
        found.append({"api_key": api_key, "user": name, "created": int(raw.get(b"created", b"0") or 0),
                      "permissions": permissions.split(",") if permissions else []})  # fmt: skip
    return sorted(found, key=lambda record: (record["created"], record["api_key"]))


def list_keys(name: str, data_dir: Path | None) -> None:
    configure_logging("admin")
    for record in _attempt(lambda: key_records(_client(data_dir), name)):
        print(orjson.dumps(record).decode(), flush=True)


def revoke_key(api_key: str, data_dir: Path | None) -> None:
    configure_logging("admin")
    line = _attempt(lambda: revoke_key_record(_client(data_dir), api_key))
    audit_log(ADMIN_ACTION, action="revoke_key", user=line["user"], who="admin", api_key=api_key[:8])
    print(orjson.dumps(line).decode(), flush=True)


def deposit_command(name: str, asset: str, amount: str, kind: str = "deposit") -> dict[str, Any]:
    """The journal command; ``asset`` as the config names it (see :func:`configured_asset`)."""
    return {"type": kind, "user": name, "asset": asset, "amount": amount}


def configured_asset(asset: str, assets: Collection[str]) -> str:
    """The config's name for ``asset``: the name itself when the config has it, else the one
    configured name it matches ignoring letter case (``usdt`` for ``USDT``). An asset the config
    does not have, or one that matches several names, is refused naming the configured assets."""
    if asset in assets:
        return asset
    matches = sorted(name for name in assets if name.lower() == asset.lower())
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(sorted(assets)) or "none"
    if matches:
        several = ", ".join(matches)
        raise AdminError(f"asset {asset!r} matches several assets of the config: {several}; give one exactly")
    raise AdminError(f"unknown asset {asset!r}: the exchange's config has {listed}")


def stored_assets(client: redis.Redis) -> dict[str, int]:
    """The assets of the exchange's config (``tw:config``, written by the engine), with their precision."""
    raw = client.get(keys.CONFIG)
    if raw is None:
        raise AdminError(f"the exchange has no config in Redis yet ({keys.CONFIG}): start the engine first")
    try:
        return ExchangeConfig.from_dict(orjson.loads(cast("bytes", raw))).precisions()
    except (orjson.JSONDecodeError, ConfigError) as exc:
        raise AdminError(f"the exchange's config ({keys.CONFIG}) cannot be read: {exc}") from None


_AMOUNT: Final = re.compile(r"[0-9]+(\.[0-9]+)?")


def amount_problem(amount: str, asset: str, precision: int) -> str | None:
    """Why ``amount`` of ``asset`` cannot be deposited or withdrawn, or None: the engine's rule, said
    before anything is journalled (a malformed amount reached the journal as ``bad_command``, the
    alert for writers that break the journal's contract, and told the operator nothing)."""
    if not _AMOUNT.fullmatch(amount):
        return (
            f"invalid amount {amount!r}: a plain decimal number such as 250.5 "
            "(no sign, exponent, spaces or thousands separators)"
        )
    places = decimals_of(amount)
    if places > precision:
        return f"amount {amount} has {places} decimals, more than the precision {precision} of {asset}"
    units = to_units(amount, precision)
    if units is None:
        return f"amount {amount} has more than {MAX_DIGITS} significant digits"
    if units == 0:
        return f"amount {amount} must be positive"
    return None


def deposit(name: str, asset: str, amount: str, data_dir: Path | None, *, kind: str = "deposit") -> None:
    """Submit a deposit (or, with ``kind="withdraw"``, a withdrawal) and print the engine's outcome."""
    configure_logging("admin")

    def submit() -> tuple[str, Reply]:
        client = _client(data_dir)
        if not client.hexists(keys.USERS, name):
            raise AdminError(f"unknown user {name!r}: create it first with `tradewire admin create-user`")
        assets = stored_assets(client)
        named = configured_asset(asset, assets)  # refused before anything is journalled
        problem = amount_problem(amount, named, assets[named])
        if problem is not None:
            raise AdminError(problem)
        return named, submit_sync(client, deposit_command(name, named, amount, kind), who="admin")

    named, reply = _attempt(submit)
    outcome = reply.events[0] if reply.events else {"type": "rejected", "reason": "no outcome"}
    audit_log(ADMIN_ACTION, action=kind, user=name, asset=named, amount=amount, who="admin",
              outcome=outcome.get("type"))  # fmt: skip
    print(orjson.dumps({"cmd": reply.cmd, "ts": reply.ts, **outcome}).decode(), flush=True)
    if outcome.get("type") == "rejected":
        raise SystemExit(1)
