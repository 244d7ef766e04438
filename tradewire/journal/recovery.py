"""Recovery: rebuild the engine's memory from Redis after a start or a crash.

Redis holds everything the engine committed: the journal, the events, the views, the progress marker
``tw:{0}:applied`` and, now and then, a snapshot with the position ``pos`` it covers. Since every
batch's effects and its marker were written in one transaction, the commands up to ``applied`` have
had their effects exactly once and those after it not at all. So recovery is:

1. load the snapshot (or start empty when there is none);
2. re-apply the commands after ``pos`` up to ``applied`` *silently*: the engine and the market data
   reach the state they had, and their output is dropped because it is already in Redis;
3. give the accounts the open orders from their records in Redis, written by the same transactions
   (cheaper than following every order through the replay), and the number of closed orders each
   user keeps;
4. hand back the core and ``applied``; the live loop continues with the command after it.

The tail is read one page ahead of the one being applied, so that Redis serializes the next page
while Python applies the current one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from tradewire import keys
from tradewire.accounts.history import ORDER_HISTORY
from tradewire.accounts.records import OrderState
from tradewire.engine import ExchangeConfig
from tradewire.engine.book import Order
from tradewire.journal.core import Core, Op
from tradewire.journal.entries import CommandEntry, parse_flat_entry
from tradewire.journal.streams import id_order
from tradewire.journal.wire import Connection, ReplyError

log = structlog.get_logger(__name__)

PAGE = 5_000
"""Journal entries per ``XRANGE`` while replaying the tail."""

_START = b"0-0"


class Write(Protocol):
    """How the engine sends writes (:meth:`EngineService._fenced`: a transaction fenced by its lease)."""

    def __call__(
        self, conn: Connection, ops: list[Op], *, timeout: float | None = None
    ) -> Awaitable[list[Any]]: ...


class RecoveryError(RuntimeError):
    """Redis holds something recovery cannot continue from (a snapshot of another config, a marker
    that points before the snapshot)."""


@dataclass(frozen=True)
class Recovered:
    core: Core
    applied: bytes
    """The last command whose effects are in Redis (``b"0-0"`` for an empty journal)."""
    snapshot_pos: bytes
    replayed: int
    """Commands re-applied after the snapshot."""
    seconds: float


def parse_page(reply: list[list[object]] | None) -> list[CommandEntry]:
    """An ``XRANGE``/``XREAD`` entries list (RESP2) as command entries."""
    return [parse_flat_entry(entry_id, flat) for entry_id, flat in reply or ()]  # type: ignore[arg-type]


def _agrees(state: OrderState, order: Order) -> bool:
    """Whether an order the accounts hold is the engine's resting ``order`` as it stands now."""
    return (
        state.order_id == order.order_id
        and state.market == order.market
        and (state.side == "BUY") == order.is_buy
        and state.price == order.price
        and state.client_id == (order.client_id or "")
        and state.qty - state.executed == order.qty
    )


async def _restore_open_orders(conn: Connection, core: Core) -> str | None:
    """Give the accounts the engine's resting orders as they stand after the silent replay.

    An order the snapshot held that the tail did not touch (its remaining quantity is the same) is
    kept as the snapshot had it. The others' records in Redis were written by the flushes of the
    replayed batches, in the transactions that moved ``applied``: so one pipelined ``HMGET`` per
    user gives exactly what following them through the replay would (~1.3 µs per replayed command).
    Each record must agree with the engine's order. Returns what is wrong when one is missing (Redis
    lost or evicted it), malformed or stale; nothing is changed then."""
    accounts = core.accounts
    kept = accounts.open
    orders: dict[int, OrderState] = {}
    wanted: dict[str, list[Order]] = {}
    for order_id, order in core.engine.as_pure().orders.items():
        state = kept.get(order_id)
        if state is not None and _agrees(state, order):
            orders[order_id] = state
        else:
            wanted.setdefault(order.user, []).append(order)
    users = list(wanted)
    ops: list[list[bytes | str]] = [
        [b"HMGET", keys.orders(user), *[b"%d" % order.order_id for order in wanted[user]]] for user in users
    ]
    replies = await conn.pipeline(ops, timeout=300) if ops else []
    for user, reply in zip(users, replies, strict=True):
        if not isinstance(reply, list):
            return f"{keys.orders(user)}: {reply}"
        for order, record in zip(wanted[user], reply, strict=True):
            if record is None:
                return f"no record of order {order.order_id} in {keys.orders(user)}"
            try:
                state = accounts.order_from_record(record, user, order.market)
            except ValueError as exc:
                return f"order {order.order_id} in {keys.orders(user)}: {exc}"
            if not _agrees(state, order):
                return (
                    f"the record of order {order.order_id} in {keys.orders(user)} is not the engine's order"
                )
            orders[order.order_id] = state
    accounts.restore_open(orders)
    return None


async def _rewrite_open_records(conn: Connection, core: Core, write: Write | None) -> None:
    """Write the open orders' records back as the live flushes left them, so that the next recovery
    finds them (and ``GET /api/v3/order`` too); a key Redis refuses (a wrong type) is reported."""
    ops = core.accounts.open_records_ops()
    if not ops:
        return
    replies = await (write(conn, ops, timeout=300) if write else conn.pipeline(ops, timeout=300))
    refused = [str(reply) for reply in replies if isinstance(reply, ReplyError)]
    if refused:
        log.warning("order records could not be written back", errors=refused[:5], count=len(refused))


async def recover(
    conn: Connection,
    config: ExchangeConfig,
    *,
    orders_from_redis: bool = True,
    history: int = ORDER_HISTORY,
    write: Write | None = None,
) -> Recovered:
    """Load the snapshot and replay the tail up to ``applied`` (see the module).

    ``orders_from_redis``: the accounts' open orders (and the number of closed orders each user
    keeps) are read from Redis at the end rather than followed through the replay (see
    :func:`_restore_open_orders`); if a record is missing or malformed, recovery starts over
    following them. ``history``: the closed orders kept per user (the engine's setting). ``write``:
    how the engine writes (fenced by its lease), for the records rewritten; a pipeline if not given."""
    started = time.perf_counter()
    recovered = await _recover(conn, config, orders_from_redis, history)
    if recovered is None:
        orders_from_redis = False
        recovered = await _recover(conn, config, orders_from_redis, history)
        assert recovered is not None
        await _rewrite_open_records(conn, recovered[0], write)
    core, applied, pos, replayed = recovered
    seconds = time.perf_counter() - started
    log.info(
        "recovered",
        snapshot_pos=pos.decode(),
        applied=applied.decode(),
        replayed=replayed,
        open_orders="records" if orders_from_redis else "replayed",
        seconds=round(seconds, 3),
    )
    return Recovered(core, applied, pos, replayed, seconds)


async def _recover(
    conn: Connection, config: ExchangeConfig, orders_from_redis: bool, history: int
) -> tuple[Core, bytes, bytes, int] | None:
    """:func:`recover`'s work: the core, ``applied``, the snapshot's position and the commands
    replayed; ``None`` when the open orders' records are unusable (a warning says why)."""
    pos, state, applied, archived = await conn.pipeline(
        [
            (b"HGET", keys.SNAPSHOT, b"pos"),
            (b"HGET", keys.SNAPSHOT, b"state"),
            (b"GET", keys.APPLIED),
            (b"GET", keys.ARCHIVED),
        ]
    )
    if archived is not None and (state is None or pos is None or id_order(pos) <= id_order(archived)):
        raise RecoveryError(
            f"the journal up to {archived.decode()} was archived out of Redis ({keys.ARCHIVED}) and no "
            f"snapshot in {keys.SNAPSHOT} covers it: restore the snapshot from a backup of Redis (an "
            "engine started from the rest of the journal alone would begin with empty balances)"
        )
    if state is not None and pos is not None:
        try:
            core = Core.from_state(config, state)
        except ValueError as exc:
            raise RecoveryError(
                f"the snapshot in {keys.SNAPSHOT} cannot be used with this config: {exc}; run the engine "
                "with the config the exchange was started with (or, if it was written by a newer "
                "tradewire, with that version)"
            ) from exc
    else:
        core, pos = Core(config), _START
    core.accounts.history = history
    applied = applied or _START
    if id_order(applied) < id_order(pos):
        raise RecoveryError(
            f"{keys.APPLIED} is {applied.decode()} but the snapshot covers up to {pos.decode()}: the two are "
            "written in one transaction, so Redis's data was edited by hand"
        )
    replayed = 0
    last = pos
    while last != applied:
        if replayed == 0:
            conn.send_now((b"XRANGE", keys.COMMANDS, b"(" + last, applied, b"COUNT", PAGE))
        page: list[tuple[bytes, list[bytes]]] = await conn.reply() or []
        if not page:
            raise RecoveryError(
                f"{keys.APPLIED} is {applied.decode()} but the journal ends at {last.decode()}: "
                "journal entries are missing"
            )
        last = page[-1][0]
        if last != applied:  # ask for the next page before applying this one
            conn.send_now((b"XRANGE", keys.COMMANDS, b"(" + last, applied, b"COUNT", PAGE))
        core.replay_raw(page, accounts=not orders_from_redis)
        replayed += len(page)
        await asyncio.sleep(0)  # a page already read does not yield: let the lease's renewals run
    core.settle()
    if orders_from_redis and replayed:
        problem = await _restore_open_orders(conn, core)
        if problem is not None:
            log.warning("order records unusable; recovering again, following orders", problem=problem)
            return None
    await _restore_closed_counts(conn, core)
    return core, applied, pos, replayed


async def _restore_closed_counts(conn: Connection, core: Core) -> None:
    """How many closed orders each user keeps in Redis: what the replayed batches' flushes and trims
    left, whatever the replay counted (it does not count on the fast path, and cannot know of trims
    made with another ``--order-history``, or of closed orders migrated from an older layout). Every
    user with an order has a balance in the ledger."""
    users = sorted(core.engine.as_pure().balances)
    if not users:
        return
    replies = await conn.pipeline([(b"ZCARD", keys.closed_orders(user)) for user in users], timeout=300)
    counts = {user: reply for user, reply in zip(users, replies, strict=True) if isinstance(reply, int)}
    core.accounts.restore_closed_counts(counts)
