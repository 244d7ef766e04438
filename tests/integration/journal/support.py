"""Journal test helpers: run the engine, feed the journal, compare Redis with ``tradewire replay``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import redis

from tests.strategies import VECTORS_CONFIG
from tradewire import keys
from tradewire.engine import ExchangeConfig
from tradewire.journal.core import Core
from tradewire.journal.entries import command_fields
from tradewire.journal.recovery import Recovered, recover
from tradewire.journal.service import EngineService, Settings
from tradewire.journal.streams import id_order, iter_events, iter_journal, replay_line
from tradewire.journal.wire import Connection
from tradewire.replay import replay_lines

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)

ONE_TRADE: list[dict[str, str]] = [
    {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "1000"},
    {"type": "deposit", "user": "bob", "asset": "BTC", "amount": "5"},
    {"type": "new_order", "user": "bob", "market": "BTC-USDT", "side": "sell", "kind": "limit",
     "qty": "1", "price": "100"},
    {"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",
     "qty": "1", "price": "100"},
]  # fmt: skip
"""Funds, bob's resting sell, alice's buy that takes it: the smallest stream with a trade."""
ROOT = Path(__file__).resolve().parents[3]


def settings(url: str, **overrides: Any) -> Settings:
    return Settings(url, CONFIG, VECTORS_CONFIG, **overrides)


@contextlib.asynccontextmanager
async def running_engine(url: str, **overrides: Any) -> AsyncIterator[EngineService]:
    """The engine service in this process's loop, stopped (after its current batch) on exit."""
    service = EngineService(settings(url, **overrides))
    task = asyncio.create_task(service.run())
    try:
        while service.state != "live":
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield service
    finally:
        service.stopping.set()
        await asyncio.wait_for(task, 30)


async def idle_core(service: EngineService, timeout: float = 10.0) -> Core:
    """The engine's core once it has made the kline and ticker publications its last batch held
    back (it does when no command comes for a while): the state a recovery settles to."""
    deadline = time.monotonic() + timeout
    core = service.core
    assert core is not None
    while core.holds():
        assert time.monotonic() < deadline, "the engine kept publications held back"
        await asyncio.sleep(0.01)
    return core


def journal(
    client: redis.Redis,
    lines: Iterable[str | bytes],
    src: str = "test",
    step_ms: int = 0,
    start_ms: int | None = None,
) -> list[bytes]:
    """XADD each line as a command entry (ts from the wall clock, or ``start_ms``, and ``step_ms``
    later for each next line); return the entry ids."""
    ids: list[bytes] = []
    pipe = client.pipeline(transaction=False)
    now = time.time_ns() // 1_000_000 if start_ms is None else start_ms
    for index, line in enumerate(lines):
        raw = line.encode() if isinstance(line, str) else line
        ts = now + index * step_ms
        pipe.xadd(
            keys.COMMANDS, command_fields(raw, ts=ts, rid=uuid.uuid4().hex, src=src, who="test", ip="-")
        )
    for entry_id in pipe.execute():
        ids.append(entry_id)
    return ids


async def recovered_from(url: str) -> Recovered:
    """What an engine starting on this Redis would recover (snapshot, then the journal's tail)."""
    conn = await Connection.open(url)
    try:
        return await recover(conn, CONFIG)
    finally:
        await conn.close()


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` from inside the event loop until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def wait_applied(client: redis.Redis, entry_id: bytes, timeout: float = 30.0) -> None:
    """Wait until the engine's ``applied`` marker reaches ``entry_id``."""
    target = id_order(entry_id)
    deadline = time.monotonic() + timeout
    while True:
        applied = client.get(keys.APPLIED)
        if applied is not None and id_order(applied) >= target:  # type: ignore[arg-type]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"engine did not apply up to {entry_id!r} in {timeout}s (at {applied!r})")
        time.sleep(0.02)


def wait_live(client: redis.Redis, engine: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``engine`` is past start-up: its own heartbeat is in Redis."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = client.get(keys.ENGINE_HEARTBEAT)
        if beat is not None and orjson.loads(beat)["pid"] == engine.pid:
            return
        assert engine.poll() is None, "the engine exited"
        time.sleep(0.05)
    raise AssertionError("the engine did not go live")


def replay_journal(client: redis.Redis) -> tuple[list[Any], dict[str, Any]]:
    """``tradewire replay`` of the journal: its events (in order) and its final state."""
    lines = (replay_line(fields.get(b"c", b"")) for _, fields in iter_journal(client))
    out = [orjson.loads(line) for line in replay_lines(CONFIG, lines)]
    return out[:-1], out[-1]


def recorded_events(client: redis.Redis) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
    return iter_events(client)


def assert_redis_matches_replay(client: redis.Redis) -> dict[str, Any]:
    """The events stream, balances and books in Redis equal ``tradewire replay`` of the journal.

    Also: one events entry per journal entry, with the same id (each command's effect exactly once).
    Returns the replayed state.
    """
    journal_ids = [entry_id for entry_id, _ in iter_journal(client)]
    events_entries = list(iter_events(client))
    assert [entry_id for entry_id, _ in events_entries] == journal_ids
    assert all(fields[b"cmd"] == entry_id for entry_id, fields in events_entries)
    assert client.get(keys.APPLIED) == (journal_ids[-1] if journal_ids else None)
    expected_events, state = replay_journal(client)
    recorded = [event for _, fields in events_entries for event in orjson.loads(fields[b"e"])]
    assert recorded == expected_events
    balances: dict[str, dict[str, dict[str, str]]] = {}
    for key in client.scan_iter(match="tw:bal:*", count=1000):
        user = _text(key).removeprefix("tw:bal:")
        for asset, value in client.hgetall(key).items():
            balance = orjson.loads(value)
            balances.setdefault(user, {})[_text(asset)] = {
                "available": balance["free"],
                "locked": balance["locked"],
            }
    assert balances == state["balances"]
    for market, book in state["books"].items():
        for side in ("bids", "asks"):
            cached = {_text(p): _text(q) for p, q in client.hgetall(keys.md(market, side)).items()}
            assert cached == dict(book[side]), (market, side)
    return state


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def assert_balances_conserved(client: redis.Redis, state: dict[str, Any]) -> None:
    """Per asset, everything held (by users and the fee account) equals deposits minus withdrawals."""
    from decimal import Decimal

    moved: dict[str, Decimal] = {}
    for _, fields in iter_events(client):
        for event in orjson.loads(fields[b"e"]):
            if event["type"] == "deposit":
                moved[event["asset"]] = moved.get(event["asset"], Decimal(0)) + Decimal(event["amount"])
            elif event["type"] == "withdraw":
                moved[event["asset"]] = moved.get(event["asset"], Decimal(0)) - Decimal(event["amount"])
    held: dict[str, Decimal] = {}
    for assets in state["balances"].values():
        for asset, balance in assets.items():
            held[asset] = (
                held.get(asset, Decimal(0)) + Decimal(balance["available"]) + Decimal(balance["locked"])
            )
    assert {a: v for a, v in held.items() if v} == {a: v for a, v in moved.items() if v}


def engine_process(url: str, data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``tradewire engine`` as a child process on ``url`` with the test config."""
    config = data_dir / "config.json"
    if not config.exists():
        config.write_bytes(orjson.dumps(VECTORS_CONFIG))
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    log = (data_dir / "engine.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tradewire.cli", "engine", "--config", str(config), *extra],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def load_stream(seed: int, length: int) -> list[bytes]:
    """A long, cheap command stream for load tests: deposits, limit and market orders around a
    wandering mid in both markets, cancels of recent orders, withdrawals and a few undecodable lines.

    (``tests.strategies.random_stream`` covers the rules more densely but is too slow for 100,000.)
    """
    import random

    rng = random.Random(seed)
    users = [f"u{i}" for i in range(12)]
    out: list[bytes] = []
    dumps = orjson.dumps
    for user in users:
        for asset, amount in (("BTC", "1000"), ("ETH", "10000"), ("USDT", "100000000")):
            out.append(dumps({"type": "deposit", "user": user, "asset": asset, "amount": amount}))
    mids = {"BTC-USDT": 2_000_000, "ETH-USDT": 150_000}  # in ticks of 0.01
    owners: list[tuple[str, str]] = []
    lots = {"BTC-USDT": ("0.0001", 4), "ETH-USDT": ("0.001", 3)}
    next_id = 1
    while len(out) < length:
        roll = rng.random()
        user = users[min(int(rng.expovariate(0.4)), len(users) - 1)]
        market = "BTC-USDT" if rng.random() < 0.6 else "ETH-USDT"
        mids[market] += rng.choice((-1, 0, 1))
        mid = mids[market]
        _, places = lots[market]
        qty = f"{rng.randint(1, 50) * 10**-places:.{places}f}"
        side = "buy" if rng.random() < 0.5 else "sell"
        if roll < 0.30 and next_id > 1:
            order_id = rng.randint(max(1, next_id - 200), next_id - 1)
            user, market = owners[order_id - 1]
            out.append(dumps({"type": "cancel", "user": user, "market": market, "order_id": order_id}))
        elif roll < 0.85:
            offset = rng.randint(-5, 40)
            ticks = mid - offset if side == "buy" else mid + offset
            command = {
                "type": "new_order",
                "user": user,
                "market": market,
                "side": side,
                "kind": "limit",
                "qty": qty,
                "price": f"{ticks / 100:.2f}",
                "tif": rng.choice(("GTC", "GTC", "GTC", "IOC", "FOK")),
            }
            out.append(dumps(command))
            owners.append((user, market))
            next_id += 1
        elif roll < 0.97:
            command = {"type": "new_order", "user": user, "market": market, "side": side, "kind": "market"}
            command["qty"] = qty
            out.append(dumps(command))
            owners.append((user, market))
            next_id += 1
        elif roll < 0.99:
            out.append(dumps({"type": "withdraw", "user": user, "asset": "USDT", "amount": "1.5"}))
        else:
            out.append(rng.choice((b"not json", b'{"type": "new_order"}', b"[]")))
    return out[:length]
