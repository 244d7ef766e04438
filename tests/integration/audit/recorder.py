"""Writes an exchange's record into a real Redis exactly as ``docs/internals.md`` lays it out.

The pure engine applies each command; the command entry, its events entry (same id), the applied
mark and, at the end, the balances views are written the way the engine service writes them. Tests
then tamper with one entry and check that the audit notices.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson
import redis

from tests.unit.engine.test_rules import BASE_CONFIG
from tradewire import keys
from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.engine.decimals import to_text
from tradewire.journal.entries import CommandEntry, events_ops, reply_payload

T0 = 1_700_000_000_000

CONFIG: dict[str, Any] = BASE_CONFIG

Command = dict[str, Any] | bytes


def entry_id(index: int) -> str:
    """The id the recorder gives the ``index``-th command (0-based): its exchange time, sequence 0."""
    return f"{T0 + index}-0"


def record(
    client: redis.Redis, commands: Sequence[Command], *, apply: int | None = None, first: int = 0
) -> Engine:
    """Journal ``commands`` and record the outcome of the first ``apply`` of them (default: all).

    ``first`` is the index of the first command (to append to an earlier record); the returned engine
    has applied the commands of this call only, so append with the same engine via :func:`extend`.
    """
    config = ExchangeConfig.from_dict(CONFIG)
    engine = Engine(config)
    extend(client, engine, commands, apply=apply, first=first)
    return engine


def extend(
    client: redis.Redis,
    engine: Engine,
    commands: Sequence[Command],
    *,
    apply: int | None = None,
    first: int = 0,
) -> None:
    codec = EventCodec(engine.config)
    pipe = client.pipeline(transaction=False)  # one round trip (and few fsyncs) for the whole record
    pipe.set(keys.CONFIG, orjson.dumps(CONFIG))
    limit = len(commands) if apply is None else apply
    for offset, command in enumerate(commands):
        index = first + offset
        line = command if isinstance(command, bytes) else orjson.dumps(command)
        ts, rid, eid = str(T0 + index), f"{index:032x}", entry_id(index)
        fields = {"c": line, "ts": ts, "rid": rid, "src": "gw-test", "who": "k-test", "ip": "10.0.0.7"}
        pipe.xadd(keys.COMMANDS, fields, id=eid)  # type: ignore[arg-type]
        if offset >= limit:
            continue
        events = [codec.render(event) for event in engine.apply(decode(line))]
        pipe.xadd(keys.EVENTS, {"cmd": eid, "ts": ts, "rid": rid, "e": orjson.dumps(events)}, id=eid)
        pipe.set(keys.APPLIED, eid)
    places = {name: asset.precision for name, asset in engine.config.assets.items()}
    for user, assets in engine.balances.items():
        pipe.hset(
            keys.balances(user),
            mapping={
                asset: orjson.dumps(
                    {"free": to_text(b[0], places[asset]), "locked": to_text(b[1], places[asset])}
                )
                for asset, b in assets.items()
            },
        )
    pipe.execute()


def rewrite(
    client: redis.Redis, key: str, target: str, change: Callable[[dict[bytes, bytes]], dict[bytes, bytes]]
) -> None:
    """Replace the fields of entry ``target`` of stream ``key`` (streams are append-only: rebuild it)."""
    entries = stream(client, key)
    client.delete(key)
    for eid, fields in entries:
        new = change(fields) if eid == target else fields
        client.xadd(key, new, id=eid)  # type: ignore[arg-type]


def stream(client: redis.Redis, key: str) -> list[tuple[str, dict[bytes, bytes]]]:
    """Every entry of stream ``key``: (id, fields)."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))
    return [(eid.decode(), dict(fields)) for eid, fields in entries]


def remove(client: redis.Redis, key: str, target: str) -> None:
    client.xdel(key, target)


def workload(seed: int, n: int) -> list[Command]:
    """Deposits for four users, then ``n`` random orders, cancels and withdrawals (some invalid)."""
    rng = random.Random(seed)
    users = ["ann", "ben", "cat", "dan"]
    commands: list[Command] = []
    for user in users:
        commands.append({"type": "deposit", "user": user, "asset": "USDT", "amount": "100000"})
        commands.append({"type": "deposit", "user": user, "asset": "BTC", "amount": "10"})
        commands.append({"type": "deposit", "user": user, "asset": "ETH", "amount": "100"})
    for i in range(n):
        user = rng.choice(users)
        market = rng.choice(["BTC-USDT", "ETH-USDT"])
        roll = rng.random()
        if roll < 0.2:
            commands.append(
                {"type": "cancel", "user": user, "market": market, "order_id": rng.randint(1, i + 1)}
            )
        elif roll < 0.25:
            commands.append(
                {"type": "withdraw", "user": user, "asset": "USDT", "amount": str(rng.randint(1, 500))}
            )
        elif roll < 0.27:
            commands.append(b'{"type": "new_order", "user": 5}')
        else:
            price = rng.randint(9_900, 10_100) if market == "BTC-USDT" else rng.randint(490, 510)
            commands.append(
                {
                    "type": "new_order",
                    "user": user,
                    "market": market,
                    "side": rng.choice(["buy", "sell"]),
                    "kind": "limit" if rng.random() < 0.85 else "market",
                    "qty": f"0.{rng.randint(1, 50):03d}",
                    "price": f"{price}.{rng.randint(0, 99):02d}",
                    "tif": rng.choice(["GTC", "GTC", "IOC", "FOK"]),
                }
            )
    return commands


def group_events(
    client: redis.Redis, change: Callable[[bytes, bytes], bytes] = lambda cmd, value: value
) -> None:
    """Rewrite the events stream in the engine's grouped layout (``entries.events_ops``: a hundred
    commands' reply messages per entry), each value passed through ``change(command id, value)``."""
    outcomes = []
    for eid, fields in stream(client, keys.EVENTS):
        entry = CommandEntry(eid.encode(), b"", int(fields[b"ts"]), fields[b"rid"], b"")
        outcomes.append((entry.entry_id, change(entry.entry_id, reply_payload(entry, fields[b"e"]))))
    client.delete(keys.EVENTS)
    for op in events_ops(outcomes):
        client.execute_command(*op)
