"""An in-memory exchange for the account views: the real engine feeding ``Accounts``, and readers of ops.

``Exchange.send`` runs one command through the engine and the views and returns that command's ops
(one flush per command, unless ``batch`` collects several). The readers below pick the views' output
apart: the user-channel payloads, the order records written, the fills appended, the balances set.
They read the op list as data; what Redis makes of the ops is checked against a real server elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from tests.strategies import VECTORS_CONFIG
from tradewire.accounts import Accounts
from tradewire.engine import Engine, ExchangeConfig, decode
from tradewire.engine.events import Event
from tradewire.keys import RedisOp

T0 = 1_700_000_000_000
CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)


class Exchange:
    def __init__(self, config: ExchangeConfig = CONFIG) -> None:
        self.config = config
        self.engine = Engine(config)
        self.accounts = Accounts(config)
        self.ts = T0
        self.events: list[Event] = []

    def balance_of(self, user: str, asset: str) -> tuple[int, int]:
        balance = self.engine.balances.get(user, {}).get(asset)
        return (balance[0], balance[1]) if balance else (0, 0)

    def apply(self, line: str) -> None:
        command = decode(line)
        self.events = self.engine.apply(command)
        self.ts += 1
        self.accounts.apply(command, self.events, self.ts, self.balance_of)

    def send(self, **fields: Any) -> list[RedisOp]:
        self.apply(json.dumps(fields))
        return self.accounts.flush()

    def fund(self, user: str, **amounts: str) -> None:
        for asset, amount in amounts.items():
            self.send(type="deposit", user=user, asset=asset, amount=amount)

    def limit(self, user: str, side: str, qty: str, price: str, **extra: Any) -> list[RedisOp]:
        return self.send(
            type="new_order",
            user=user,
            market="BTC-USDT",
            side=side,
            kind="limit",
            qty=qty,
            price=price,
            **extra,
        )


def published(ops: Iterable[RedisOp], user: str, event: str | None = None) -> list[dict[str, Any]]:
    """The JSON payloads published on ``tw:user:<user>``, optionally only those of one ``e``."""
    out = []
    for op in ops:
        if op[0] == "PUBLISH" and op[1] == f"tw:user:{user}":
            for line in str(op[2]).split("\n"):  # a batch's payloads for one user, one per line
                payload = orjson.loads(line)
                if event is None or payload["e"] == event:
                    out.append(payload)
    return out


def reports(ops: Iterable[RedisOp], user: str) -> list[dict[str, Any]]:
    return published(ops, user, "executionReport")


def records(ops: Iterable[RedisOp], user: str) -> dict[int, dict[str, Any]]:
    """Order id -> the record HSET in ``tw:orders:<user>``."""
    out: dict[int, dict[str, Any]] = {}
    for op in ops:
        if op[0] == "HSET" and op[1] == f"tw:orders:{user}":
            for field, value in zip(op[2::2], op[3::2], strict=True):
                out[int(field)] = orjson.loads(value)  # type: ignore[arg-type]
    return out


def trades(ops: Iterable[RedisOp], user: str) -> list[dict[str, Any]]:
    """The ``myTrades`` items appended to ``tw:mytrades:<user>:<symbol>``, in order."""
    return [
        orjson.loads(op[-1])  # type: ignore[arg-type]
        for op in ops
        if op[0] == "XADD" and str(op[1]).startswith(f"tw:mytrades:{user}:")
    ]


def balances(ops: Iterable[RedisOp], user: str) -> dict[str, dict[str, str]]:
    """Asset -> ``{"free", "locked"}`` set in ``tw:bal:<user>``."""
    out: dict[str, dict[str, str]] = {}
    for op in ops:
        if op[0] == "HSET" and op[1] == f"tw:bal:{user}":
            for field, value in zip(op[2::2], op[3::2], strict=True):
                out[str(field)] = orjson.loads(value)  # type: ignore[arg-type]
    return out


def ops_on(ops: Iterable[RedisOp], name: str, key: str) -> list[RedisOp]:
    return [op for op in ops if op[0] == name and op[1] == key]


class Cache:
    """What the ops leave behind, key by key, read as a plain model of the few commands used."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, bytes]] = {}
        self.sets: dict[str, set[int]] = {}
        """The open-order sets (``tw:open:<user>``)."""
        self.zsets: dict[str, set[str]] = {}
        """The other sorted sets (market indexes, closed orders), members as text. The trimming
        script (``EVALSHA``) is not modelled: a real Redis runs it in ``tests/integration``."""
        self.streams: dict[str, list[bytes]] = {}

    def run(self, ops: Iterable[RedisOp]) -> None:
        for op in ops:
            name, key = op[0], str(op[1])
            if name == "HSET":
                fields = self.hashes.setdefault(key, {})
                for field, value in zip(op[2::2], op[3::2], strict=True):
                    fields[str(field)] = value if isinstance(value, bytes) else str(value).encode()
            elif name == "ZADD" and key.startswith("tw:open:"):
                self.sets.setdefault(key, set()).update(int(m) for m in op[3::2])
            elif name == "ZREM" and key.startswith("tw:open:"):
                self.sets.setdefault(key, set()).difference_update(int(m) for m in op[2:])
            elif name == "ZADD":
                self.zsets.setdefault(key, set()).update(str(m) for m in op[3::2])
            elif name == "XADD":
                self.streams.setdefault(key, []).append(op[-1])  # type: ignore[arg-type]
