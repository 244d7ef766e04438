"""``tradewire engine``: the matching engine as a service on the Redis journal.

The loop, one batch at a time:

1. ``XREAD BLOCK`` up to :data:`BATCH` entries of ``tw:{0}:commands`` after the last applied id;
2. apply them to the pure core (engine, market data, accounts), which returns the batch's whole
   transaction (``tradewire/journal/core.py``);
3. run it as one MULTI/EXEC: events, views, publications, replies and ``SET tw:{0}:applied``,
   plus the snapshot when one is ready (serialised by a forked child: ``snapshots.py``). The next
   batch is read just before it is sent (after a full batch: before it is applied), and applied
   while Redis executes it.

Crash safety comes from step 3 being one transaction: after a crash, ``applied`` says exactly which
commands have had their effects, and recovery (``recovery.py``) rebuilds memory up to there.

Redis failures never drop a batch. A transaction that Redis refused (``OOM``, ``NOAUTH``,
``LOADING``...) did not run; one whose connection failed may or may not have run. Either way the
engine backs off, reconnects, reads ``applied`` and either moves on (it ran) or sends it again (it
did not). If ``applied`` went *backwards* (Redis restarted and lost its last writes, possible with
``appendfsync everysec``), memory is ahead of Redis: the engine recovers again from what Redis kept
and gives every market-data channel a new epoch so that subscribers resnapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import structlog

from tradewire import compiled, keys
from tradewire.accounts.history import ORDER_HISTORY
from tradewire.accounts.migrate import migrate_accounts
from tradewire.bus.publish import new_epoch
from tradewire.engine import ExchangeConfig
from tradewire.engine.config import first_difference
from tradewire.engine.native import runs_natively
from tradewire.journal.core import BatchStats, Core, Op
from tradewire.journal.entries import CommandEntry, parse_flat_entry
from tradewire.journal.lease import DEFAULT_SECONDS, HOST, Lease, Renewal
from tradewire.journal.recovery import RecoveryError, parse_page, recover
from tradewire.journal.snapshots import (
    CAN_FORK,
    SNAPSHOT_EVERY,
    SNAPSHOT_EVERY_SECONDS,
    ForkedSnapshot,
    SnapshotFailed,
)
from tradewire.journal.wire import Connection, ReplyError, WireError
from tradewire.marketdata.builder import SLOW_STREAMS_MS
from tradewire.ops.metrics import (
    COMMANDS,
    ENGINE_APPLY_SECONDS,
    ENGINE_LEASE_HELD,
    ENGINE_LEASE_LOST,
    ENGINE_NATIVE,
    ENGINE_STANDBY,
    JOURNAL_APPEND_SECONDS,
    JOURNAL_LAG,
    REDIS_ERRORS,
    SNAPSHOT_AGE,
    SNAPSHOT_SECONDS,
    TRADES,
)
from tradewire.redisconn import AOF_REWRITE_MIN_SIZE
from tradewire.runtime import name_problems, tune_gc

log = structlog.get_logger(__name__)

BATCH = 2_000
"""Journal entries per batch (at most)."""
BLOCK_MS = 500
"""How long one ``XREAD`` waits for new commands; housekeeping runs at least this often."""
HEARTBEAT_SECONDS = 1.0
SNAPSHOT_CHILD_SECONDS = 120.0
"""The longest a snapshot's child may serialise (or ``snapshot_seconds``, if longer) before the
engine stops it: one stopped or stuck would otherwise hold back every later snapshot, unseen."""
HEARTBEAT_TTL = 10
MAX_BACKOFF = 2.0
_USER_CHANNEL_PREFIX = keys.user_channel("").encode()
_LISTENERS = (b"PUBSUB", b"CHANNELS", _USER_CHANNEL_PREFIX + b"*")
"""The users with an open user-data stream: asked when ``_LISTENERS_VERSION`` moved."""
_LISTENERS_VERSION = (b"GET", keys.LISTENERS_VERSION)
"""Asked right after each ``XREAD``: gateways bump it before they acknowledge a user-data stream."""
LISTENERS_REFRESH = 1.0
"""Seconds after which the listeners are read again even if the version did not move (a gateway
of an older version that does not bump it, a Redis restart that reset it to a value seen before)."""
_NOBODY: frozenset[str] = frozenset()

_CHECKED_SETTINGS: Final = (
    b"appendonly",
    b"maxmemory",
    b"maxmemory-policy",
    b"auto-aof-rewrite-percentage",
    b"auto-aof-rewrite-min-size",
)
_FREQUENT_AOF_REWRITE: Final = 256 << 20
"""An ``auto-aof-rewrite-min-size`` below this makes Redis rewrite its AOF every few seconds under
load (Redis's default is 64 MB; the embedded Redis's is :data:`AOF_REWRITE_MIN_SIZE`)."""


class JournalRewound(RuntimeError):
    """Redis's ``applied`` marker is behind what this engine committed: Redis lost writes."""


class LeaseLost(RuntimeError):
    """Another engine took the lease over: nothing this one still holds may be committed."""


class _Stopped(Exception):
    """Asked to stop while Redis refuses or is away: stop rather than retry (the work left is in
    the journal; the next engine recovers it from ``applied``, as after a crash)."""


@dataclass(frozen=True)
class Settings:
    url: str
    config: ExchangeConfig
    raw_config: dict[str, Any]
    snapshot_every: int = SNAPSHOT_EVERY
    snapshot_seconds: float = SNAPSHOT_EVERY_SECONDS
    batch: int = BATCH
    block_ms: int = BLOCK_MS
    order_history: int = ORDER_HISTORY
    """Closed orders kept per user in the accounts views (``tradewire/accounts/history.py``)."""
    lease_seconds: float = DEFAULT_SECONDS
    """The engine lease's TTL (``tradewire/journal/lease.py``): how long a standby waits for an engine
    that died without releasing it, and the longest stall a live engine survives."""
    freeze_recovered: bool = False
    """Move the recovered state out of the garbage collector's walks (the engine's own process only:
    it lives as long as the process)."""
    snapshot_in_child: bool = CAN_FORK
    """Serialise snapshots in a forked child (``tradewire/journal/snapshots.py``), not between two
    batches; where the process cannot fork, or a fork fails, the engine serialises them itself."""


class EngineService:
    """The imperative shell around :class:`~tradewire.journal.core.Core`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.epoch = new_epoch()
        self.core: Core | None = None
        self.applied = b"0-0"
        self._applied_rid: bytes | None = None
        """The rid of the command at ``applied``, once this engine committed it (not after recovery)."""
        self.state = "starting"
        self.stopping = asyncio.Event()
        self._writer: Connection | None = None
        self._reader: Connection | None = None
        self._since_snapshot = 0
        self._native: bool | None = None
        """Whether the last batch ran in the native core (None before the first)."""
        self._snapshot_at = time.monotonic()
        """When the last snapshot was begun: the next is due ``snapshot_seconds`` after."""
        self._snapshot_written_at = self._snapshot_at
        self._snapshotting: ForkedSnapshot | None = None
        self._snapshot_ready: tuple[list[Op], bytes] | None = None
        """A snapshot the engine serialised itself (it does not or could not fork), for the next
        transaction; a stop before then drops it (recovery replays a longer tail)."""
        self._housekeeping_at = 0.0
        self._generation = 0
        self._read_generation = 0
        """Connections opened so far: a change since a batch was read means Redis may have restarted."""
        self._listeners: frozenset[str] = _NOBODY
        self._listeners_read: tuple[bytes | None, int, float] | None = None
        """The version, reader generation and time the listeners were last read at."""
        self._counted: dict[tuple[str, ...], Any] = {}
        """Each labelled child of ``COMMANDS`` and ``TRADES`` in use: ``labels()`` takes the metric's
        lock and builds its key at every call, at every batch."""
        self._held_since: float | None = None
        """When (monotonic) the publications held back began to wait, while they do: a batch makes
        them once they waited :data:`SLOW_STREAMS_MS` even if exchange time did not move (it can
        stand still while commands keep coming: a gateway's clock ahead, or Redis's clock behind
        the last entry id's, which ``XADD *`` then keeps)."""
        self._tick_after = 0.0
        """No tick before this (monotonic): one failed, so wait a second before the next."""
        self.lease = Lease(settings.lease_seconds)
        self._lease_conn: Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        """Renews the lease while this engine holds it."""
        self._lost: str | None = None
        """Why the lease is no longer this engine's, once the keeper found out."""
        self._watching: Connection | None = None
        """The writer connection on which ``tw:{0}:engine:term`` is watched and was last seen to be
        this engine's term: the next transaction on it commits only if it still is."""
        self._standby = ""
        self._trusted = 0
        """The generation at which Redis was last seen holding everything this engine committed: a
        connection opened since (Redis may have restarted and lost writes, even while no command
        came) means checking before the next write that depends on it."""

    # -- readiness (read from the ops server's thread: attributes only) ---------------------------

    def ready(self) -> tuple[bool, str]:
        if self.state == "live":
            return True, f"applied {self.applied.decode()}"
        if self.state == "standby":
            return False, f"standby: {self._standby}"
        return False, self.state

    # -- connections ------------------------------------------------------------------------------

    async def _connection(self, role: str) -> Connection:
        """An open connection for ``role`` (``writer`` or ``reader``), reconnecting with back-off."""
        current = self._writer if role == "writer" else self._reader
        if current is not None and not current.broken:
            return current
        delay = 0.05
        while True:
            try:
                timeout = 30.0 if role == "writer" else self.settings.block_ms / 1000 + 10.0
                conn = await Connection.open(
                    self.settings.url, timeout=timeout, name=f"tradewire-engine-{role}"
                )
            except WireError as exc:
                self._redis_error(exc, f"connecting the {role}")
                self._unless_stopping(f"connecting the {role}")
                await self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            self._generation += 1
            if role == "writer":
                self._writer = conn
            else:
                self._reader = conn
            return conn

    def _redis_error(self, exc: Exception, doing: str) -> None:
        kind = exc.code if isinstance(exc, ReplyError) else "connection"
        REDIS_ERRORS.labels("engine", kind).inc()
        log.warning("redis error; retrying", doing=doing, kind=kind, error=str(exc))

    def _unless_stopping(self, doing: str) -> None:
        """Raise :class:`_Stopped` once a stop was asked for: a retry loop would otherwise spin, its
        back-off sleeps cut short by the stop, and never end."""
        if self.stopping.is_set():
            raise _Stopped(f"stopped while {doing}")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _retrying(self, doing: str, action: Callable[[Connection], Any]) -> Any:
        """Run an idempotent ``action`` on the writer until it succeeds."""
        delay = 0.05
        while True:
            conn = await self._connection("writer")
            try:
                return await action(conn)
            except WireError as exc:
                self._redis_error(exc, doing)
            self._unless_stopping(doing)
            await self._sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    # -- start ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Publish the config, recover from Redis, and get ready to go live."""
        self.state = "recovering"
        self._drop_snapshot()  # its state is not the one about to be recovered
        config_json = orjson.dumps(self.settings.raw_config)
        await self._check_redis()
        running, applied = await self._retrying("reading the config", _config_and_applied)
        for problem in name_problems(self.settings.config):
            if running is None or applied is None:  # a new exchange: nothing applied under it yet
                raise RecoveryError(problem)
            log.warning("config name outside today's rules, kept for this exchange", problem=problem)
        if running is not None and applied is not None:
            try:
                difference = first_difference(orjson.loads(running), self.settings.raw_config)
            except orjson.JSONDecodeError:
                difference = f"{keys.CONFIG} holds no JSON"
            if difference is not None:
                raise RecoveryError(
                    f"this exchange's journal was applied under another config ({difference}): its "
                    "commands would mean something else under this one. Start the engine with the "
                    f"exchange's config (it is in {keys.CONFIG}), or start a new exchange for this one"
                )
        await self._retrying(
            "writing the config", lambda c: self._fenced(c, [(b"SET", keys.CONFIG, config_json)])
        )
        await self._retrying("migrating the account views", migrate_accounts)
        recovered = await self._retrying(
            "recovering",
            lambda c: recover(
                c, self.settings.config, history=self.settings.order_history, write=self._fenced
            ),
        )
        self.core = recovered.core
        native = runs_natively(self.core.engine)
        if native is not self._native:
            self._engine_changed(native, recovered.applied)
        if recovered.applied != b"0-0":
            # the publications it held back when it stopped were never made
            self.core.marketdata.refresh()
        self.applied, self._applied_rid = recovered.applied, None
        self._trusted = self._generation
        self._since_snapshot = recovered.replayed
        self._snapshot_at = self._snapshot_written_at = time.monotonic()
        if self.settings.freeze_recovered:
            tune_gc(freeze=True)

    async def _check_redis(self) -> None:
        """Say at start what this Redis's settings cost (an operator's own ``REDIS_URL``)."""
        conn = await self._connection("writer")
        try:
            reply = await conn.pipeline([(b"CONFIG", b"GET", name) for name in _CHECKED_SETTINGS])
        except WireError as exc:
            self._redis_error(exc, "reading the Redis settings")
            return
        found: dict[str, str] = {}
        for answer in reply:
            if isinstance(answer, ReplyError):  # CONFIG renamed or refused (managed Redis): cannot tell
                log.info(
                    "cannot read the Redis settings; check appendonly, maxmemory-policy and "
                    "auto-aof-rewrite-min-size by hand"
                )
                return
            if len(answer) == 2:
                found[answer[0].decode()] = answer[1].decode()
        for warning in redis_setting_warnings(found):
            log.warning(warning)

    async def _recover_after_rewind(self) -> None:
        """Redis lost writes this engine had committed: start over from what it kept."""
        self.state = "recovering"
        if self.settings.freeze_recovered:
            gc.unfreeze()  # the state recovered before is garbage now: let the collector see it
        await self.start()
        self.epoch = new_epoch()
        await self._retrying("renewing market-data epochs", self._renew_epochs)

    async def _renew_epochs(self, conn: Connection) -> None:
        cursor = b"0"
        while True:
            cursor, found = await conn.call(b"SCAN", cursor, b"MATCH", b"md:*:meta", b"COUNT", 1000)
            if found:
                _raise_refused(
                    await self._fenced(conn, [(b"HSET", key, b"epoch", self.epoch) for key in found])
                )
            if cursor == b"0":
                return

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Take the lease (standing by while another engine holds it), recover, then apply batches
        until :attr:`stopping` is set. An engine that finds its lease taken over drops all it
        applied and stands by again: its memory may be behind what the new holder committed."""
        try:
            while await self._take_lease():
                try:
                    await self.start()
                    while True:
                        self.state = "live"
                        log.info("engine live", applied=self.applied.decode(), epoch=self.epoch.decode())
                        try:
                            await self._live()
                            return
                        except JournalRewound as exc:
                            log.error("redis lost committed writes; recovering again", error=str(exc))
                            await self._drop_reader()
                            await self._recover_after_rewind()
                except LeaseLost as exc:
                    ENGINE_LEASE_LOST.inc()
                    log.error(
                        "another engine took the lease over: this one commits nothing more, drops its "
                        "state and stands by",
                        reason=str(exc),
                        applied=self.applied.decode(),
                    )
                    await self._step_down()
        except _Stopped as exc:
            log.warning("engine stopped before redis took its writes", reason=str(exc))
        finally:
            await self._let_go()
            await self.close()

    # -- the lease (tradewire/journal/lease.py) ---------------------------------------------------

    async def _lease_connection(self) -> Connection:
        """The lease's own connection: a renewal must not wait behind a batch's transaction."""
        conn = self._lease_conn
        if conn is None or conn.broken:
            conn = self._lease_conn = await Connection.open(
                self.settings.url, timeout=max(1.0, self.lease.seconds), name="tradewire-engine-lease"
            )
        return conn

    async def _take_lease(self) -> bool:
        """Stand by until the lease is free, then take it and keep it renewed; ``False`` when asked
        to stop first. Who holds it is logged once per holder, and ``/readyz`` says it."""
        delay = 0.05
        seen: tuple[int, str, int] | None = None
        while not self.stopping.is_set():
            try:
                holder = await self.lease.acquire(await self._lease_connection())
            except WireError as exc:
                self._redis_error(exc, "taking the engine lease")
                ENGINE_STANDBY.set(0)  # who holds it is unknown: not a standby's to say
                await self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            delay = 0.05
            if holder is None:
                assert self.lease.term is not None
                self._lost = None
                ENGINE_LEASE_HELD.set(1)
                ENGINE_STANDBY.set(0)
                log.info("engine lease taken", term=int(self.lease.term), lease_seconds=self.lease.seconds)
                self._keeper = asyncio.get_running_loop().create_task(self._keep_lease())
                return True
            self.state = "standby"
            self._standby = f"another engine holds the lease: {holder.describe()}"
            ENGINE_LEASE_HELD.set(0)
            ENGINE_STANDBY.set(1)
            if seen != (holder.term, holder.host, holder.pid):
                seen = (holder.term, holder.host, holder.pid)
                log.warning(
                    "another engine holds the lease; standing by until it is free",
                    holder=holder.describe(),
                    expires_in=holder.expires_in,
                    lease_seconds=self.lease.seconds,
                )
            await self._sleep(self.lease.poll_every)
        return False

    async def _keep_lease(self) -> None:
        """Renew the lease five times per TTL until cancelled. On finding it taken, say so:
        :meth:`_live` then steps down (the fence has already stopped every commit)."""
        while True:
            await asyncio.sleep(self.lease.renew_every)
            try:
                outcome, holder = await self.lease.renew(await self._lease_connection())
            except WireError as exc:
                self._redis_error(exc, "renewing the engine lease")
                continue
            if outcome is Renewal.RETAKEN:
                log.warning(
                    "the engine lease had expired (this engine or Redis stalled) but no other engine "
                    "took it: taken again",
                    term=int(self.lease.term or 0),
                )
            elif outcome is Renewal.LOST:
                self._lost = f"the lease is held by {holder.describe()}" if holder else "the lease expired"
                return

    async def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _step_down(self) -> None:
        """Forget everything applied (Redis holds what the new holder made of it), close the
        connections (and with them the watch on the term), and stand by."""
        await self._stop_keeper()
        ENGINE_LEASE_HELD.set(0)
        self.lease.value = None  # not released: it is not ours
        await self.close()
        self.core = None
        self._held_since = None
        self._listeners_read = None
        if self.settings.freeze_recovered:
            gc.unfreeze()  # the state recovered before is garbage now: let the collector see it
        self.state = "standby"
        self._standby = "stepped down: another engine took the lease over"

    async def _let_go(self) -> None:
        """On a stop: stop renewing and delete the lease if it is still this engine's, so that a
        restart (or a standby) takes over at once instead of after the TTL."""
        await self._stop_keeper()
        if self.lease.value is None:
            return
        ENGINE_LEASE_HELD.set(0)
        try:
            if await self.lease.release(await self._lease_connection()):
                log.info("engine lease released")
        except WireError as exc:
            log.warning(
                "could not release the engine lease; the next engine waits until it expires",
                error=str(exc),
                seconds=self.lease.seconds,
            )

    async def _fenced(self, conn: Connection, ops: list[Op], *, timeout: float | None = None) -> list[Any]:
        """Run ``ops`` in one MULTI/EXEC on the writer ``conn`` that commits only while no other
        engine has taken the lease since this one did: ``tw:{0}:engine:term`` is watched, and
        watched again (with its value read) in the same write as each ``EXEC``, so that a batch costs
        no round trip more. Raises :class:`LeaseLost` when the term is no longer this engine's."""
        term = self.lease.term
        if term is None:
            raise LeaseLost("this engine holds no lease")
        if self._watching is not conn:  # a new connection: watch first (one round trip, rarely)
            watched, current = await conn.pipeline([(b"WATCH", keys.ENGINE_TERM), (b"GET", keys.ENGINE_TERM)])
            _raise_refused([watched, current])
            if current != term:
                raise LeaseLost(f"{keys.ENGINE_TERM} is {_text(current)}, this engine's is {term.decode()}")
            self._watching = conn
        self._watching = None
        replies, current = await conn.fenced_transaction(ops, keys.ENGINE_TERM, timeout=timeout)
        if current == term:
            self._watching = conn
        if replies is None:
            if current == term:  # written by hand with the same value: nothing ran, send it again
                raise ReplyError(f"EXECABORT {keys.ENGINE_TERM} was written meanwhile (WATCH)")
            raise LeaseLost(f"{keys.ENGINE_TERM} is {_text(current)}, this engine's is {term.decode()}")
        return replies

    async def _live(self) -> None:
        """The loop of the module's docstring, with two overlaps: a batch is applied while Redis runs
        the previous one's transaction (sent on one connection, transactions run in order; each
        waits for the one before), and while Redis answers the next ``XREAD`` when the batch was a
        full one. After a full batch the journal holds more, so the next batch is asked for before
        this one is applied: asked for after, its ``XREAD`` met Redis busy with the transaction just
        sent, and the engine waited for both (a fifth of its time at full batches; throughput
        +36 % in the same runs). After a partial batch it is asked for once this one is applied,
        before its transaction is sent: asked for earlier, it would hold only what had come before
        this batch was applied, and what came during would wait a whole batch more (at 3,000
        commands/s that was a third of the latency)."""
        pending: asyncio.Future[tuple[list[CommandEntry], frozenset[str]]] | None = None
        inflight: asyncio.Future[None] | None = None
        position = self.applied
        core = self.core
        assert core is not None
        task = asyncio.get_running_loop().create_task  # not ensure_future: ~4 % of a batch's CPU
        try:
            while not self.stopping.is_set():
                if self._lost is not None:
                    raise LeaseLost(self._lost)
                if pending is None:
                    pending = task(self._read(position, self._block_ms()))
                entries, listeners = await pending
                pending = None
                if entries:
                    generation = self._read_generation
                    position = entries[-1].entry_id
                    if len(entries) >= self.settings.batch:  # more in the journal: read on now
                        pending = task(self._read(position, min(self.settings.block_ms, SLOW_STREAMS_MS)))
                        await asyncio.sleep(0)  # the XREAD goes out before the batch's CPU, not after
                    ops, snapshot = self._prepare(entries, listeners)
                    if pending is None:
                        pending = task(self._read(position, self._block_ms()))
                    if inflight is not None:
                        await inflight
                    inflight = task(
                        self._commit(
                            ops,
                            position,
                            entries[-1].rid,
                            verify=generation != self._generation,
                            snapshot=snapshot,
                        )
                    )
                    if self._snapshot_wanted():
                        await asyncio.sleep(0)  # the transaction goes out (unless reconnecting) first
                        self._snapshot_begin(position)
                elif core.holds() and time.monotonic() >= self._tick_after:
                    # no command for SLOW_STREAMS_MS: the publications held back
                    if inflight is not None:
                        await inflight
                    inflight = task(self._commit_tick(core.tick(self.epoch)))
                if time.monotonic() - self._housekeeping_at >= HEARTBEAT_SECONDS or not entries:
                    if inflight is not None:
                        await inflight
                        inflight = None
                    await self._housekeeping()
            if inflight is not None:
                await inflight
                inflight = None
        finally:
            for future in (pending, inflight):
                if future is not None and not future.done():
                    future.cancel()
                    with contextlib.suppress(
                        asyncio.CancelledError, WireError, JournalRewound, LeaseLost, _Stopped
                    ):
                        await future

    async def _drop_reader(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    def _block_ms(self) -> int:
        """How long the next ``XREAD`` may wait: not past the slot in which held-back publications
        are due."""
        core = self.core
        if core is not None and core.holds():
            return min(self.settings.block_ms, SLOW_STREAMS_MS)
        return self.settings.block_ms

    async def _read(self, after: bytes, block_ms: int) -> tuple[list[CommandEntry], frozenset[str]]:
        """The next entries after ``after``, waiting up to ``block_ms``, and the users whose
        user-data channel had subscribers when they were read: gateways subscribe, then bump
        ``tw:listeners:version``, before they acknowledge a user-data connection, and the version is
        read right behind the ``XREAD``; when it moved the set is read again (``PUBSUB CHANNELS``,
        whose cost grows with every channel subscribed: 1 ms at 10,000, so not per batch). Every
        stream open when the entries were read is in the set. Retried until Redis answers."""
        delay = 0.05
        read = (
            b"XREAD",
            b"COUNT",
            self.settings.batch,
            b"BLOCK",
            block_ms,
            b"STREAMS",
            keys.COMMANDS,
            after,
        )
        while True:
            conn = await self._connection("reader")
            self._read_generation = self._generation
            try:
                reply, version = await conn.pipeline(
                    (read, _LISTENERS_VERSION), timeout=block_ms / 1000 + 10.0
                )
                for answer in (reply, version):
                    if isinstance(answer, ReplyError):
                        raise answer
                if reply and self._listeners_stale(version):
                    channels = await conn.call(*_LISTENERS)
                    skip = len(_USER_CHANNEL_PREFIX)
                    self._listeners = frozenset(c[skip:].decode("utf-8", "replace") for c in channels)
                    self._listeners_read = (version, self._read_generation, time.monotonic())
            except WireError as exc:
                self._redis_error(exc, "reading the journal")
                await self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                if self.stopping.is_set():
                    return [], _NOBODY
                continue
            if not reply:
                return [], _NOBODY
            return parse_page(reply[0][1]), self._listeners

    def _listeners_stale(self, version: bytes | None) -> bool:
        """Whether the users with an open user-data stream must be read again: the gateways'
        version moved since (the version is read after the entries, so a stream acknowledged before
        they were read has moved it), the reader reconnected, or it is :data:`LISTENERS_REFRESH` old."""
        if self._listeners_read is None:
            return True
        seen, generation, at = self._listeners_read
        return (
            version != seen
            or generation != self._read_generation
            or time.monotonic() - at >= LISTENERS_REFRESH
        )

    def _prepare(
        self, entries: list[CommandEntry], listeners: frozenset[str]
    ) -> tuple[list[Op], bytes | None]:
        """Apply one batch to the core, with user-data payloads for ``listeners`` only: its
        transaction, and the position of the snapshot it carries, if it carries one."""
        core = self.core
        assert core is not None
        core.accounts.listening(listeners)
        stats = BatchStats()
        now = time.monotonic()
        if not core.holds():
            self._held_since = None
        held_since = self._held_since
        slow = held_since is not None and now - held_since >= SLOW_STREAMS_MS / 1000
        started = time.perf_counter()
        ops = core.batch(entries, self.epoch, stats, slow=slow)
        if core.holds() and self._held_since is None:
            self._held_since = now
        ENGINE_APPLY_SECONDS.observe((time.perf_counter() - started) / len(entries))
        native = runs_natively(core.engine)
        if native is not self._native:
            self._engine_changed(native, entries[-1].entry_id)
        self._since_snapshot += len(entries)
        snapshot_ops, snapshot = self._snapshot_handover()
        ops += snapshot_ops
        counted = self._counted
        for key, count in stats.outcomes.items():
            child = counted.get(key)
            if child is None:
                child = counted[key] = COMMANDS.labels(*key)
            child.inc(count)
        for market, count in stats.trades.items():
            child = counted.get((market,))
            if child is None:
                child = counted[(market,)] = TRADES.labels(market)
            child.inc(count)
        return ops, snapshot

    def _engine_changed(self, native: bool, at: bytes) -> None:
        """Say which engine applies the commands: once recovered, and when the native core hands
        its state over (a value beyond its bounds): same events, several times the CPU per command."""
        if self._native and not native:
            log.warning(
                "the native core handed its state to the pure engine, which applies every command "
                "from here on (a value beyond the native bounds, in the batch ending at this command)",
                batch_end=at.decode(),
            )
        else:
            log.info("engine core", native=native)
        self._native = native
        ENGINE_NATIVE.set(1 if native else 0)

    async def _commit(
        self, ops: list[Op], last: bytes, rid: bytes, *, verify: bool, snapshot: bytes | None = None
    ) -> None:
        """Run the batch's transaction exactly once, however long Redis takes to take it.

        ``verify``: a connection was opened since the batch was read, so Redis may have restarted
        in between and lost the batch's commands (``appendfsync everysec``); check before sending.
        """
        started = time.perf_counter()
        await self._commit_once(ops, last, rid, verify=verify)
        JOURNAL_APPEND_SECONDS.observe(time.perf_counter() - started)
        if snapshot is not None:
            self._snapshot_written(snapshot)

    async def _commit_tick(self, ops: list[Op]) -> None:
        """Run a :meth:`Core.tick` transaction once. It holds publications only, no command and no
        cache write, so a failure loses nothing for good: every market's partial book, bars and
        ticker are then published again by the next one, a second later (a publication may come
        twice, with the same content).

        Like a commit, it first checks that Redis still holds what this engine committed when a
        connection was opened since (raising :class:`JournalRewound`): published on a Redis that
        lost writes, its bars and tickers would count lost commands, under the old epoch."""
        try:
            conn = await self._connection("writer")
            await self._check_not_rewound()  # after: a connection it just opened is checked too
            replies = await self._fenced(conn, ops)
            self._report_refused(ops, replies)
        except WireError as exc:
            self._tick_after = time.monotonic() + 1.0
            self._redis_error(exc, "publishing klines and tickers")
            assert self.core is not None
            self.core.marketdata.refresh()

    async def _commit_once(self, ops: list[Op], last: bytes, rid: bytes, *, verify: bool) -> None:
        delay = 0.05
        while True:
            if verify or self._generation != self._trusted:
                trusted = self._generation
                try:
                    committed = await self._committed(last, rid)
                except WireError as exc:
                    self._redis_error(exc, "checking the journal")
                    self._unless_stopping("checking the journal")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                    continue
                self._trusted = trusted  # (a connection opened during the check: checked again)
                if committed:
                    return
                verify = False
            conn = await self._connection("writer")
            if self._generation != self._trusted:  # just reconnected: check first
                continue
            try:
                replies = await self._fenced(conn, ops)
                self.applied, self._applied_rid = last, rid
                self._report_refused(ops, replies)
                return
            except WireError as exc:
                self._redis_error(exc, "committing a batch")
            self._unless_stopping("committing a batch")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
            verify = True  # the transaction may have run before the connection failed

    def _report_refused(self, ops: list[Op], replies: list[Any]) -> None:
        """Commands Redis refused inside an EXEC that ran (the rest of the batch is committed): a
        bug or a hand-edited key (a wrong type), never silent."""
        refused = [
            (op[0], op[1] if len(op) > 1 else b"", reply)
            for op, reply in zip(ops, replies, strict=False)
            if isinstance(reply, ReplyError)
        ]
        if refused:
            REDIS_ERRORS.labels("engine", "refused_in_transaction").inc(len(refused))
            log.error(
                "redis refused commands inside a committed batch",
                count=len(refused),
                first=[f"{name!r} {key!r}: {reply}" for name, key, reply in refused[:3]],
            )

    async def _check_not_rewound(self) -> None:
        """Raise :class:`JournalRewound` if a connection was opened since Redis was last seen holding
        everything this engine committed, and it no longer does."""
        if self._generation != self._trusted:
            trusted = self._generation
            await self._committed(self.applied, self._applied_rid)
            self._trusted = trusted

    async def _committed(self, last: bytes, rid: bytes | None = None) -> bool:
        """Whether the batch ending at ``last`` (the command of request id ``rid``, when known) is
        already committed; raises :class:`JournalRewound` when Redis no longer holds what this
        engine committed or read. After a failover that lost entries Redis may give a lost
        command's id to a new one: the id alone would pass, so the entry's rid is compared too."""
        conn = await self._connection("writer")
        marker, found = await conn.pipeline([(b"GET", keys.APPLIED), (b"XRANGE", keys.COMMANDS, last, last)])
        for reply in (marker, found):
            if isinstance(reply, ReplyError):
                raise reply
        marker = marker or b"0-0"
        if marker == last:
            self.applied, self._applied_rid = last, rid
            return True
        if marker != self.applied:
            raise JournalRewound(
                f"{keys.APPLIED} is {marker.decode()}, this engine committed {self.applied.decode()}"
            )
        if not found:
            raise JournalRewound(f"the journal no longer holds command {last.decode()}, which was read")
        if rid is not None and parse_flat_entry(found[0][0], found[0][1]).rid != rid:
            raise JournalRewound(f"command {last.decode()} in the journal is not the one this engine read")
        return False

    # -- snapshots and housekeeping ---------------------------------------------------------------

    def _snapshot_due(self) -> bool:
        if self._since_snapshot >= self.settings.snapshot_every:
            return True
        return self._since_snapshot > 0 and (
            time.monotonic() - self._snapshot_at >= self.settings.snapshot_seconds
        )

    def _snapshot_handover(self) -> tuple[list[Op], bytes | None]:
        """The write of the snapshot that is ready, for the next transaction, and the position it
        covers: the child's, once it is done, or one the engine serialised itself. A child that
        runs too long is stopped.

        A state that cannot be written is a bug, logged with its traceback; commands keep flowing,
        ``tradewire_snapshot_age_seconds`` keeps growing (its alert fires) and recovery replays a
        longer tail. After any snapshot not taken the next attempt comes after the usual interval
        (even if no command comes meanwhile), not with every batch."""
        ready, self._snapshot_ready = self._snapshot_ready, None
        if ready is not None:
            return ready
        child = self._snapshotting
        if child is None:
            return [], None
        if not child.done():
            running = time.monotonic() - child.started
            if running < max(SNAPSHOT_CHILD_SECONDS, self.settings.snapshot_seconds):
                return [], None
            child.cancel()  # stopped or stuck
            log.error("snapshot not taken: its child process ran too long and was stopped",
                      pos=child.pos.decode(), seconds=round(running, 1))  # fmt: skip
            self._snapshotting = None
            self._snapshot_missed()
            return [], None
        self._snapshotting = None
        try:
            ops = child.ops()
        except SnapshotFailed as exc:
            if exc.bug:
                log.error("snapshot not taken: the engine's state could not be written",
                          pos=child.pos.decode(), error=str(exc))  # fmt: skip
            else:
                log.warning("snapshot not taken", pos=child.pos.decode(), error=str(exc))
            self._snapshot_missed()
            return [], None
        SNAPSHOT_SECONDS.observe(child.seconds)
        return ops, child.pos

    def _snapshot_wanted(self) -> bool:
        """A snapshot is due and none is being taken or waiting to be written."""
        return self._snapshotting is None and self._snapshot_ready is None and self._snapshot_due()

    def _snapshot_begin(self, pos: bytes) -> None:
        """Begin the snapshot of the state as the batch ending at ``pos`` left it, when one is
        :meth:`wanted <_snapshot_wanted>`: in a child, whose bytes :meth:`_snapshot_handover` hands
        over later, or here. Called once that batch's transaction is on its way to Redis: the fork
        (3 ms at 90 MB of heap) and the copy-on-write faults after it then delay the next batch,
        not the publication of this one."""
        if not self._snapshot_wanted():
            return
        core = self.core
        assert core is not None
        self._since_snapshot = 0
        self._snapshot_at = time.monotonic()
        if self.settings.snapshot_in_child:
            try:
                self._snapshotting = ForkedSnapshot.fork(
                    core.snapshot_state, pos, core.ts, asyncio.get_running_loop()
                )
                return
            except OSError as exc:  # out of memory or processes: take this one here
                log.warning("could not fork to write a snapshot; writing it in the engine", error=str(exc))
        started = time.perf_counter()
        try:
            ops = core.snapshot_ops(pos)
        except Exception:
            log.exception("snapshot not taken: the engine's state could not be written", pos=pos.decode())
            self._snapshot_missed()
            return
        SNAPSHOT_SECONDS.observe(time.perf_counter() - started)
        self._snapshot_ready = ops, pos

    def _snapshot_missed(self) -> None:
        """Counted from the attempt, the next one falls due as usual; at least one command counts,
        so that an idle engine tries again after ``snapshot_seconds`` too."""
        self._since_snapshot = max(self._since_snapshot, 1)

    def _drop_snapshot(self) -> None:
        self._snapshot_ready = None
        child, self._snapshotting = self._snapshotting, None
        if child is not None:
            child.cancel()

    def _snapshot_written(self, pos: bytes) -> None:
        self._snapshot_written_at = time.monotonic()
        log.info("snapshot written", pos=pos.decode())

    async def _housekeeping(self) -> None:
        """Between batches (the last one committed): a snapshot that is ready or due, and once per
        :data:`HEARTBEAT_SECONDS` the heartbeat."""
        now = time.monotonic()
        SNAPSHOT_AGE.set(now - self._snapshot_written_at)
        self._snapshot_begin(self.applied)
        ops, covered = self._snapshot_handover()
        if covered is not None:

            async def write(conn: Connection) -> None:
                await self._check_not_rewound()  # a snapshot ahead of Redis's journal could not be used
                _raise_refused(await self._fenced(conn, ops))

            await self._retrying("writing a snapshot", write)
            self._snapshot_written(covered)
        if now - self._housekeeping_at < HEARTBEAT_SECONDS:
            return
        self._housekeeping_at = now
        core = self.core
        assert core is not None
        beat = orjson.dumps(
            {"pid": os.getpid(), "host": HOST, "applied": self.applied.decode(), "at": time.time()}
        )
        try:
            conn = await self._connection("writer")
            replies = await self._fenced(
                conn,
                [
                    (b"SET", keys.ENGINE_HEARTBEAT, beat, b"EX", HEARTBEAT_TTL),
                    (b"XLEN", keys.COMMANDS),
                    (b"GET", keys.ARCHIVED_ENTRIES),  # the entries that left Redis still count
                ],
            )
            _, length, archived = replies
            if isinstance(length, int) and isinstance(archived, bytes | None):
                JOURNAL_LAG.set(max(0, length + int(archived or 0) - core.count))
            _raise_refused(replies)
        except WireError as exc:
            self._redis_error(exc, "heartbeat")

    async def close(self) -> None:
        self._drop_snapshot()
        for conn in (self._reader, self._writer, self._lease_conn):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = self._lease_conn = self._watching = None


def redis_setting_warnings(config: dict[str, str]) -> list[str]:
    """What is wrong with a Redis for the engine, from its ``CONFIG GET`` answers (name -> value)."""
    warnings = []
    if config.get("appendonly", "yes") != "yes":
        warnings.append(
            "redis runs without its append-only file (appendonly no): a restart of Redis loses the "
            "journal, and acknowledged commands are not durable; set appendonly yes"
        )
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction" and config.get("maxmemory", "0") != "0":  # 0: no limit, nothing evicted
        warnings.append(
            f"redis may evict keys (maxmemory-policy {policy}): an evicted journal, snapshot or "
            "market-data offset loses data or sends subscribers wrong offsets; set noeviction"
        )
    rewrite_from = config.get("auto-aof-rewrite-min-size", "")
    growth = config.get("auto-aof-rewrite-percentage", "0")
    if (
        config.get("appendonly", "yes") == "yes"
        and growth != "0"
        and rewrite_from.isdigit()
        and int(rewrite_from) < _FREQUENT_AOF_REWRITE
    ):
        warnings.append(
            f"redis rewrites its append-only file once it grew {growth} % and passed "
            f"{int(rewrite_from) / 2**20:g} MB (auto-aof-rewrite-min-size): under load that is every "
            "few seconds (each command appends about 2.4 KB), and each rewrite forks Redis and takes "
            "a core for a fraction of a second, which the engine's latency shows; set "
            f"auto-aof-rewrite-min-size {AOF_REWRITE_MIN_SIZE} (the embedded Redis's) or more"
        )
    return warnings


async def serve(settings: Settings, metrics_port: int = 0) -> None:
    """Run the engine until SIGTERM or SIGINT; the current batch is finished first."""
    service = EngineService(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.stopping.set)
    ops_server = None
    if metrics_port:
        from tradewire.ops.http import start_ops_server

        ops_server = start_ops_server(metrics_port, service.ready)
    try:
        await service.run()
    finally:
        if ops_server is not None:
            ops_server.close()
    log.info("engine stopped", applied=service.applied.decode())


def main(
    config: Path | None,
    data_dir: Path | None,
    snapshot_every: int,
    snapshot_seconds: float,
    metrics_port: int,
    order_history: int = ORDER_HISTORY,
    lease_seconds: float = DEFAULT_SECONDS,
) -> None:
    """The ``tradewire engine`` command."""
    import typer

    from tradewire.ops.logging import configure_logging
    from tradewire.runtime import RuntimeSetupError, find_redis, load_config

    configure_logging("engine")
    stale = compiled.stale()
    if stale:
        log.warning("compiled modules older than their source: the build runs, not the source; rebuild",
                    modules=stale)  # fmt: skip

    try:
        url, _ = find_redis(data_dir)
        exchange, raw = load_config(config, names=False)  # start() applies them to a new exchange
    except RuntimeSetupError as exc:
        typer.echo(f"engine: {exc}", err=True)
        raise typer.Exit(2) from exc
    if snapshot_every < 1 or not 0 < snapshot_seconds < math.inf:
        typer.echo("engine: --snapshot-every must be >= 1 and --snapshot-seconds > 0", err=True)
        raise typer.Exit(2)
    if order_history < 0:
        typer.echo("engine: --order-history must be >= 0", err=True)
        raise typer.Exit(2)
    if not 0.5 <= lease_seconds < math.inf:  # nan and inf too: a TTL in whole milliseconds
        typer.echo(f"engine: --lease-seconds must be a number >= 0.5, not {lease_seconds}", err=True)
        raise typer.Exit(2)
    settings = Settings(
        url,
        exchange,
        raw,
        snapshot_every=snapshot_every,
        snapshot_seconds=snapshot_seconds,
        order_history=order_history,
        lease_seconds=lease_seconds,
        freeze_recovered=True,
    )
    tune_gc(freeze=False)  # recovery allocates millions of objects too
    try:
        run_loop(serve(settings, metrics_port))
    except RecoveryError as exc:
        typer.echo(f"engine: {exc}", err=True)
        raise typer.Exit(1) from exc


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else "absent"


def _raise_refused(replies: list[Any]) -> None:
    """Raise the first error among a pipeline's replies: a write Redis refused (``OOM``,
    ``READONLY``, ``MISCONF``) comes back as a value, and left there it is a write lost silently."""
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise reply


async def _config_and_applied(conn: Connection) -> list[Any]:
    """``tw:config`` and ``tw:{0}:applied`` as they are (an error reply, such as ``LOADING`` from a
    Redis reading its append-only file, raised to be retried)."""
    replies = await conn.pipeline([(b"GET", keys.CONFIG), (b"GET", keys.APPLIED)])
    _raise_refused(replies)
    return replies


def run_loop(coroutine: Any) -> None:
    """Run ``coroutine`` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


__all__ = ["EngineService", "JournalRewound", "LeaseLost", "Settings", "main", "serve"]
