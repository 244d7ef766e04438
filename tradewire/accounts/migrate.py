"""Bring the account views an older engine wrote to the layout this one reads.

Layout 2 added the closed-order sets (``tw:closed:<user>``, which ``allOrders`` walks and the
history's trimming removes from) and split each user's fills into a stream per market with the
trade ids as entry ids (``tw:mytrades:<user>:<symbol>``). An exchange upgraded from layout 1 holds
the same order records and one fills stream per user (``tw:mytrades:<user>``): without this, its
old closed orders would be missing from ``allOrders`` and never trimmed, and its old fills missing
from ``myTrades``.

The engine runs :func:`migrate_accounts` once at start, before recovery (it is the only writer of
these keys). It is idempotent, so a migration cut short by a crash is simply run again: members are
added with ``ZADD`` (a member added twice is one member), and a user's new fills streams are
rebuilt from the old one before the old one is deleted. ``tw:accounts:layout`` records that it is
done.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson
import structlog

from tradewire import keys
from tradewire.accounts.history import closed_member
from tradewire.accounts.records import OPEN_STATUSES
from tradewire.accounts.views import MY_TRADES_MAXLEN
from tradewire.journal.wire import Connection, ReplyError

log = structlog.get_logger(__name__)

LAYOUT_KEY: Final = "tw:accounts:layout"
LAYOUT: Final = b"2"
_ORDERS: Final = b"tw:orders:"
_TRADES: Final = b"tw:mytrades:"
_CHUNK: Final = 1_000


def closed_members(records: Iterable[bytes]) -> list[bytes | str | int]:
    """``ZADD`` arguments (score, member, ...) of the closed orders among ``tw:orders`` records."""
    out: list[bytes | str | int] = []
    for raw in records:
        record = orjson.loads(raw)
        if record["status"] not in OPEN_STATUSES:
            order_id = int(record["orderId"])
            out += (order_id, closed_member(order_id, record["symbol"], record["clientOrderId"]))
    return out


def split_fills(user: str, entries: Sequence[tuple[bytes, Sequence[bytes]]]) -> list[tuple[Any, ...]]:
    """The ``XADD``s that rebuild a layout-1 fills stream as streams per market, entry ids the trade
    ids (``-1`` for the second fill of a trade: a self-trade's maker side), in the old order."""
    ops: list[tuple[Any, ...]] = []
    last: dict[str, int] = {}
    for _, flat in entries:
        fields = dict(zip(flat[::2], flat[1::2], strict=False))
        raw = fields.get(b"t")
        if raw is None:
            continue
        fill = orjson.loads(raw)
        symbol, trade_id = fill["symbol"], int(fill["id"])
        sequence = 1 if last.get(symbol) == trade_id else 0
        last[symbol] = trade_id
        stream = keys.user_trades(user, symbol)
        ops.append(("XADD", stream, "MAXLEN", "~", MY_TRADES_MAXLEN, f"{trade_id}-{sequence}", "t", raw))
    return ops


async def _scan(conn: Connection, pattern: bytes, kind: bytes) -> list[bytes]:
    """The keys matching ``pattern`` of type ``kind``: a key of another type (written by hand) is
    not a view to migrate, and reading it would fail the engine's start for ever."""
    found: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, batch = await conn.call(b"SCAN", cursor, b"MATCH", pattern, b"COUNT", 1000, b"TYPE", kind)
        found += batch
        if cursor == b"0":
            return sorted(set(found))


async def _run(conn: Connection, ops: Sequence[Sequence[Any]]) -> None:
    for start in range(0, len(ops), _CHUNK):
        for reply in await conn.pipeline(ops[start : start + _CHUNK], timeout=300):
            if isinstance(reply, ReplyError):
                raise reply


async def _split(conn: Connection, key: bytes, user: str) -> None:
    """Rebuild one layout-1 fills stream as streams per market, each built in a scratch key and
    renamed over the target: fills the engine already wrote there (an engine of layout 2 that ran
    before this migration) come after the old ones, whose trade ids are lower; entries a migration
    cut short left there are not written twice."""
    ops = split_fills(user, await conn.call(b"XRANGE", key, b"-", b"+"))
    by_target: dict[str, list[tuple[Any, ...]]] = {}
    for op in ops:
        by_target.setdefault(op[1], []).append(op)
    for target, appends in sorted(by_target.items()):
        scratch = target + ":migrating"
        last = appends[-1][5]
        kept = await conn.call(b"XRANGE", target, b"(" + last.encode(), b"+")
        later = [
            ("XADD", scratch, "MAXLEN", "~", MY_TRADES_MAXLEN, entry_id, *flat) for entry_id, flat in kept
        ]
        await _run(conn, [("DEL", scratch)])
        await _run(conn, [(op[0], scratch, *op[2:]) for op in appends] + later)
        await _run(conn, [("RENAME", scratch, target)])
    await _run(conn, [("DEL", key)])


async def migrate_accounts(conn: Connection) -> bool:
    """Move layout-1 account views to layout 2 (see the module); ``False`` if nothing was to do."""
    if await conn.call(b"GET", LAYOUT_KEY) == LAYOUT:
        return False
    users = 0
    for key in await _scan(conn, _ORDERS + b"*", b"hash"):
        records: list[bytes] = (await conn.call(b"HGETALL", key))[1::2]
        members = closed_members(records)
        user = key[len(_ORDERS) :].decode()
        for start in range(0, len(members), 2 * _CHUNK):
            await _run(conn, [("ZADD", keys.closed_orders(user), *members[start : start + 2 * _CHUNK])])
        users += 1
    streams = 0
    for key in await _scan(conn, _TRADES + b"*", b"stream"):
        user = key[len(_TRADES) :].decode()
        if ":" in user:  # already a stream per market (user names have no ':')
            continue
        await _split(conn, key, user)
        streams += 1
    await conn.call(b"SET", LAYOUT_KEY, LAYOUT)
    log.info("account views migrated to layout 2", users=users, fills_streams=streams)
    return True


__all__ = ["LAYOUT_KEY", "closed_members", "migrate_accounts", "split_fills"]
