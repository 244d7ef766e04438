"""The engine lease: at most one engine applies an exchange's journal, and only its commits land.

The engine is the single writer of events, views and ``applied``, and the journal's order is the
exchange's order, so two engines on one Redis (two ``tradewire up`` sharing a ``REDIS_URL``, or an
engine paused past its supervisor's patience that resumes next to its replacement) would each apply
and commit. Two keys, under the ledger's hash tag, prevent it:

- ``tw:{0}:engine:lease`` (a String with a TTL of ``--lease-seconds``): who may run. An engine takes
  it when it is absent (:meth:`Lease.acquire`), renews it while it runs, and deletes it on a clean
  stop; meanwhile any other engine waits as a standby. It says who holds it (host, pid, since).
- ``tw:{0}:engine:term`` (a counter): incremented by every take. The holder keeps it ``WATCH``ed on
  its writer connection and re-watches it after each ``EXEC`` in the same write
  (:meth:`~tradewire.journal.wire.Connection.fenced_transaction`), so once another engine has taken
  over, no transaction of the one before can commit, even one already on its way to Redis: the
  fence. The lease's expiry alone fences nothing (a paused engine does not know it expired).

An engine whose lease expired while nobody took it (Redis away, the engine paused) takes it again
when it renews, as long as the term is still its own: no other engine can have committed meanwhile.
"""

from __future__ import annotations

import enum
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from tradewire import keys
from tradewire.journal.wire import Connection

HOST = socket.gethostname()
"""Where this engine runs, in its lease and heartbeat: a pid alone names no process across hosts
(or containers)."""
DEFAULT_SECONDS = 5.0
"""How long a lease lasts unrenewed: how long a standby waits after its holder died without
releasing it (``kill -9``, a machine lost). Longer than any stall of a live engine's event loop."""

_ACQUIRE = b"""
local held = redis.call('GET', KEYS[1])
if held then return {0, held, redis.call('PTTL', KEYS[1])} end
local term = redis.call('INCR', KEYS[2])
local value = '{"term":' .. term .. ',' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {term, value, tonumber(ARGV[2])}
"""
"""KEYS: lease, term; ARGV: the value's fields after the term (JSON, from the first key on), TTL in
ms. ``{term, value, ttl}`` when taken, ``{0, holder's value, its PTTL}`` when held."""

_RENEW = b"""
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, held}
end
if held then return {0, held} end
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2, ARGV[1]}
end
return {0, ''}
"""
"""KEYS: lease, term; ARGV: our value, TTL in ms, our term. 1: renewed; 2: it had expired and nobody
took it since (the term is still ours), taken again; 0: lost (with the holder's value, if any)."""

_RELEASE = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Renewal(enum.Enum):
    RENEWED = 1
    RETAKEN = 2
    """It had expired (the holder paused, or Redis away), but no other engine took it since."""
    LOST = 0


@dataclass(frozen=True)
class Holder:
    """Who holds the lease, from its value (fields missing from a hand-written value are blank)."""

    term: int
    host: str
    pid: int
    since: float
    """Unix seconds at which it was taken."""
    expires_in: float | None = None

    @classmethod
    def parse(cls, raw: bytes | None, expires_in_ms: Any = None) -> Holder | None:
        if not raw:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = {}
        if not isinstance(value, dict):
            value = {}
        expires = expires_in_ms / 1000 if isinstance(expires_in_ms, int) and expires_in_ms >= 0 else None

        def number(name: str) -> int:
            field = value.get(name)
            return field if isinstance(field, int) else 0

        return cls(
            number("term"), str(value.get("host", "?")), number("pid"), number("since") / 1000, expires
        )

    def describe(self) -> str:
        """One line for a log or ``/readyz``: ``pid 123 on host-a since 2026-11-28T04:00:00Z (term 3)``."""
        since = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"pid {self.pid} on {self.host} since {since} (term {self.term})"


class Lease:
    """This engine's side of the lease: take it, renew it, let it go. Holds no connection: the
    engine's own, which it reconnects with its back-off, are passed in."""

    def __init__(self, seconds: float = DEFAULT_SECONDS) -> None:
        self.seconds = seconds
        self.token = secrets.token_hex(8)
        self.value: bytes | None = None
        """The lease's value while this engine holds it (or held it last: see :attr:`term`)."""
        self.term: bytes | None = None
        """The term this engine took, as ``GET tw:{0}:engine:term`` answers it: its fence."""

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.seconds * 1000))

    @property
    def renew_every(self) -> float:
        """Five renewals per lease: a holder stays in even if four in a row fail or come late."""
        return self.seconds / 5

    @property
    def poll_every(self) -> float:
        """How often a standby tries to take it: a dead holder is replaced within the lease and this."""
        return min(1.0, self.seconds / 5)

    async def acquire(self, conn: Connection) -> Holder | None:
        """Take the lease if nobody holds it (``None``: taken, :attr:`term` is this engine's now);
        else who holds it, and for how long yet."""
        fields = orjson.dumps(
            {
                "token": self.token,
                "host": HOST,
                "pid": os.getpid(),
                "since": int(time.time() * 1000),
            }
        )
        term, value, ttl = await conn.call(
            b"EVAL", _ACQUIRE, 2, keys.ENGINE_LEASE, keys.ENGINE_TERM, fields[1:], self.ttl_ms
        )
        if term == 0:
            return Holder.parse(value, ttl) or Holder(0, "?", 0, 0.0)
        self.value, self.term = value, str(term).encode()
        return None

    async def renew(self, conn: Connection) -> tuple[Renewal, Holder | None]:
        """Extend the lease by a whole TTL; when lost, who holds it now (if anyone)."""
        assert self.value is not None and self.term is not None
        code, held = await conn.call(
            b"EVAL", _RENEW, 2, keys.ENGINE_LEASE, keys.ENGINE_TERM, self.value, self.ttl_ms, self.term
        )
        outcome = Renewal(code)
        return outcome, (Holder.parse(held) if outcome is Renewal.LOST else None)

    async def release(self, conn: Connection) -> bool:
        """Delete the lease if it is still this engine's, so that the next engine starts at once."""
        if self.value is None:
            return False
        released = await conn.call(b"EVAL", _RELEASE, 1, keys.ENGINE_LEASE, self.value)
        self.value = None
        return bool(released)


__all__ = ["DEFAULT_SECONDS", "Holder", "Lease", "Renewal"]
