"""Submitting a command to the journal and waiting for the engine's outcome.

A gateway (or ``tradewire admin``) owns one :class:`Submitter` per process. ``start()`` subscribes to
``tw:reply:<source>``; ``submit()`` appends the command to ``tw:{0}:commands`` with that source and a
fresh request id, then waits on a future that the listener resolves when the engine publishes the
outcome for that request id. Nothing polls.

Two failure rules matter:

* The ``XADD`` is sent exactly once, on a connection without automatic retries: an auto-id ``XADD``
  that is retried after its first attempt reached the server would journal the command twice. A
  failure surfaces as :class:`SubmitError` when the command is known not to be journalled (Redis
  refused it, or the connection failed before it went out), and as :class:`SubmitUnknown` when the
  connection failed after it went out; the caller decides (a client can look the order up by its
  ``clientOrderId``, or resend with it, which the engine refuses to duplicate while it is open).
* A reply can be missed while the subscription is down. After every resubscription, and when a wait
  times out, the submitter looks the outcome up in ``tw:{0}:events`` (the first entry at or after
  the command's id holds it once applied), so a command that was applied is never reported as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.exceptions
import structlog
from redis.backoff import NoBackoff

from tradewire import keys
from tradewire.journal import quota as quota_script
from tradewire.journal.entries import (
    Reply,
    StreamFields,
    command_fields,
    outcome_in,
    parse_replies,
)
from tradewire.journal.quota import OrderCounts, OrderQuota, TooManyOrders, append_op, appended
from tradewire.journal.streams import id_order, xrange, xrange_sync
from tradewire.journal.wire import PING_SECONDS, Connection, ReplyError, WireError, ping_every
from tradewire.ops.metrics import REDIS_ERRORS
from tradewire.redisconn import connect

__all__ = ["Reply", "SubmitError", "SubmitTimeout", "SubmitUnknown", "Submitter", "submit_sync"]

log = structlog.get_logger(__name__)

REDIS_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class SubmitError(RuntimeError):
    """The command was not journalled: Redis refused it, or the connection failed before it was sent
    (the subclasses are the exceptions: :class:`SubmitUnknown`, :class:`SubmitTimeout`)."""


class SubmitUnknown(SubmitError):
    """The command was sent but the connection failed (or Redis stalled past :data:`SEND_TIMEOUT`)
    before Redis answered: it may be in the journal, and applied. Sent again, it could be applied
    twice: the caller finds out first (Binance's -1007, "execution status unknown")."""


class SubmitTimeout(SubmitError):
    """The command is in the journal (``cmd``) but no outcome arrived in time: the engine is down or
    behind. It will still be applied; its outcome will appear in ``tw:{0}:events`` under ``cmd``."""

    def __init__(self, message: str, cmd: str) -> None:
        super().__init__(message)
        self.cmd = cmd


def _kind(exc: BaseException) -> str:
    """The ``kind`` label of a Redis error: Redis's code (``OOM``, ``NOAUTH``, ``READONLY``,
    ``MISCONF``), as the engine counts it, or ``connection``."""
    if isinstance(exc, ReplyError):
        return exc.code
    return "connection" if isinstance(exc, WireError) else type(exc).__name__


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def now_ms() -> int:
    """Wall-clock Unix milliseconds: the exchange time a submitter stamps on a command."""
    return time.time_ns() // 1_000_000


_Pending = tuple[StreamFields, OrderQuota | None, bool, "asyncio.Future[tuple[str, OrderCounts | None]]"]
"""An entry waiting for the next round trip: its fields, its quota, whether it is being sent again
after ``NOSCRIPT``, its future."""

SEND_TIMEOUT = 10.0
"""Seconds a round trip of XADDs may take before its commands fail with :class:`SubmitError`."""


class _Appender:
    """XADDs to the journal, gathered: every command submitted while one round trip is in flight
    goes in the next pipeline, in submission order. Under load that is one round trip (and, with
    ``appendfsync always``, one fsync) for many orders instead of one each; alone it costs nothing.
    Nothing is re-sent: an error fails every command of its round trip with :class:`SubmitError`.

    The round trips go over a bare RESP connection (``journal.wire``, as the engine's), opened when
    first needed and again after a failure: a redis-py pipeline cost about 80 µs more per round
    trip, on every order of a gateway."""

    def __init__(self, url: str, role: str) -> None:
        self._url = url
        self._role = role
        self._wire: Connection | None = None
        self._pending: list[_Pending] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        self._script_loaded = False

    async def append(
        self, fields: StreamFields, quota: OrderQuota | None = None
    ) -> tuple[str, OrderCounts | None]:
        """The entry id, and the account's order counts when ``quota`` counts it;
        :class:`TooManyOrders` when the order would pass its account's limit (not appended)."""
        future: asyncio.Future[tuple[str, OrderCounts | None]] = asyncio.get_running_loop().create_future()
        self._pending.append((fields, quota, False, future))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def close(self) -> None:
        if self._wire is not None:
            await self._wire.close()
            self._wire = None

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: list[_Pending]) -> None:
        commands: list[tuple[Any, ...]] = []
        for fields, quota, _, _ in batch:
            flat = [part for item in fields.items() for part in item]
            if quota is None:
                commands.append((b"XADD", keys.COMMANDS, b"*", *flat))
            else:
                commands.append(append_op(quota, flat))  # type: ignore[arg-type]
        sent = False
        try:
            if self._wire is None or self._wire.broken:
                self._wire = await Connection.open(
                    self._url, timeout=SEND_TIMEOUT, name="tradewire-submitter"
                )
                self._script_loaded = False
            # the counting script, loaded in the same round trip on each new connection (a Redis
            # restarted since lost it) and after Redis said it had not got it (SCRIPT FLUSH)
            load = not self._script_loaded and any(quota is not None for _, quota, _, _ in batch)
            if load:
                commands.insert(0, quota_script.LOAD)
            sent = True  # (the connection is open: nothing can fail between here and the write)
            results = await self._wire.pipeline(commands)
        except WireError as exc:
            self._failed(exc, len(batch), sent=sent)
            for *_, future in batch:
                if not future.done():
                    future.set_exception(
                        SubmitUnknown(f"the command may be in the journal: Redis did not answer ({exc})")
                        if sent
                        else SubmitError(f"could not journal the command: {exc}")
                    )
            return
        if load:
            self._script_loaded = not isinstance(results[0], Exception)
            results = results[1:]
        again: list[_Pending] = []
        refused: list[Exception] = []
        for item, result in zip(batch, results, strict=True):
            fields, quota, retried, future = item
            if future.done():
                continue
            if isinstance(result, Exception):
                if str(result).startswith("NOSCRIPT") and not retried:
                    # the script did not run (the cache was emptied under a live connection):
                    # send it again with the script loaded, once
                    self._script_loaded = False
                    again.append((fields, quota, True, future))
                    continue
                refused.append(result)
                future.set_exception(SubmitError(f"could not journal the command: {result}"))
            elif quota is None:
                future.set_result((_text(result), None))
            else:
                try:
                    future.set_result(appended(quota, result))
                except TooManyOrders as exc:
                    future.set_exception(exc)
        if refused:
            self._failed(refused[0], len(refused), sent=False)
        self._pending[:0] = again

    def _failed(self, exc: Exception, commands: int, *, sent: bool) -> None:
        """Count and log a round trip's failure, once, with Redis's own words: the operator's only
        sign of an ``OOM`` or ``NOAUTH`` is here (the client is told -1001 or -1007)."""
        REDIS_ERRORS.labels(self._role, _kind(exc)).inc(commands)
        log.warning(
            "commands not journalled" if not sent else "journal append unanswered: outcome unknown",
            commands=commands,
            kind=_kind(exc),
            error=str(exc),
        )


class Submitter:
    """Journal commands for one source and await their outcomes by request id.

    It owns its connections to the Redis at ``url``: two bare RESP connections (``journal.wire``),
    the appender's and the reply subscription, and a redis-py client for the events lookups.
    """

    def __init__(
        self,
        url: str,
        source: str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], int] = now_ms,
        role: str = "gateway",
    ) -> None:
        if not source or any(ch.isspace() for ch in source):
            raise ValueError(f"a submitter source is a non-empty word, not {source!r}")
        self.source = source
        self.channel = keys.reply_channel(source)
        self.timeout = timeout
        self._url = url
        self._client = connect(url, client_name=f"tradewire-submitter-{source}")
        self._role = role
        """The ``role`` label of the Redis errors it counts (``tradewire_redis_errors_total``)."""
        self._appender = _Appender(url, role)
        self._clock = clock
        self._waiting: dict[str, asyncio.Future[Reply]] = {}
        self._rid_prefix = secrets.token_hex(8)
        """Request ids: 16 random hex digits per submitter and a counter (32 hex digits in all)."""
        self._rid_counter = itertools.count(1)
        self._commands: dict[str, str] = {}
        """rid -> command id, for the commands whose XADD returned and whose reply is awaited."""
        self._rids: dict[str, str] = {}
        """The same, command id -> rid: an events entry found by command id is this command's
        outcome only if its rid is this command's (after a failover, Redis may give a lost
        command's id to another)."""
        self._pubsub: Connection | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the reply channel; returns once the subscription is confirmed."""
        if self._listener is not None:
            return
        await self._subscribe()
        self._listener = asyncio.create_task(self._listen(), name=f"submitter-{self.source}")

    async def close(self) -> None:
        """Stop listening; waits still pending fail with :class:`SubmitError`."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._unsubscribe()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(SubmitError("the submitter was closed before the outcome arrived"))
        self._waiting.clear()
        self._commands.clear()
        await self._appender.close()
        await self._client.aclose()

    async def __aenter__(self) -> Submitter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- submitting --------------------------------------------------------------------------------

    async def submit(self, command: Mapping[str, Any], *, who: str, ip: str = "-") -> Reply:
        """Journal ``command`` (a spec command object) and return the engine's outcome."""
        cmd, future, _ = await self._journal(command, who, ip, None)
        return await self.wait(cmd, future)

    async def submit_order(
        self, command: Mapping[str, Any], quota: OrderQuota | None, *, who: str, ip: str = "-"
    ) -> tuple[Reply, OrderCounts | None]:
        """:meth:`submit` of a new order, counted first against its account's order limits when
        ``quota`` says so; also returns the counts (:class:`~tradewire.journal.quota.TooManyOrders`
        when refused: not journalled)."""
        cmd, future, counts = await self._journal(command, who, ip, quota)
        return await self.wait(cmd, future), counts

    async def submit_nowait(
        self, command: Mapping[str, Any], *, who: str, ip: str = "-"
    ) -> tuple[str, asyncio.Future[Reply]]:
        """Journal ``command`` and return its command id and the future of its outcome."""
        cmd, future, _ = await self._journal(command, who, ip, None)
        return cmd, future

    async def _journal(
        self, command: Mapping[str, Any], who: str, ip: str, quota: OrderQuota | None
    ) -> tuple[str, asyncio.Future[Reply], OrderCounts | None]:
        if self._listener is None:
            raise SubmitError("Submitter.start() must be awaited before submitting")
        rid = f"{self._rid_prefix}{next(self._rid_counter):016x}"
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        ts = self._clock()
        fields = command_fields(orjson.dumps(command), ts=ts, rid=rid, src=self.source, who=who, ip=ip)
        try:
            cmd, counts = await self._appender.append(fields, quota)
        except (SubmitError, TooManyOrders):
            self._waiting.pop(rid, None)
            raise
        if future.done():
            self._waiting.pop(rid, None)
        else:
            self._commands[rid] = cmd
            self._rids[cmd] = rid
        future.add_done_callback(
            lambda _: (self._waiting.pop(rid, None), self._commands.pop(rid, None), self._rids.pop(cmd, None))
        )
        return cmd, future, counts

    async def wait(self, cmd: str, future: asyncio.Future[Reply]) -> Reply:
        """The outcome of the journalled command ``cmd``; :class:`SubmitTimeout` after ``timeout``."""
        rid = self._rids.get(cmd)  # now: it leaves when the future is done or cancelled
        try:
            async with asyncio.timeout(self.timeout):  # on expiry the future is cancelled: no waiter left
                return await future
        except TimeoutError:
            pass
        reply = await self._lookup(cmd)
        if reply is not None and reply.rid == rid:
            return reply
        raise SubmitTimeout(
            f"command {cmd} is journalled but the engine gave no outcome within {self.timeout:g}s "
            "(is `tradewire engine` running?)",
            cmd,
        )

    # -- the reply channel -------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        """Subscribe on a bare RESP connection (``journal.wire``; redis-py's ``get_message`` cost
        about 55 us of CPU more per reply message), and wait for the confirmation, so that a
        command sent next cannot be answered before we listen."""
        try:
            conn = await Connection.open(self._url, timeout=10.0, name=f"tradewire-replies-{self.source}")
        except WireError as exc:
            raise SubmitError(f"cannot subscribe to {self.channel}: {exc}") from exc
        try:
            confirmation = await conn.call(b"SUBSCRIBE", self.channel.encode())
        except WireError as exc:
            await conn.close()
            raise SubmitError(f"no confirmation of the subscription to {self.channel}: {exc}") from exc
        if not (isinstance(confirmation, list) and confirmation[:1] == [b"subscribe"]):
            await conn.close()
            raise SubmitError(f"no confirmation of the subscription to {self.channel}: {confirmation!r}")
        self._pubsub = conn
        self._pinger = asyncio.create_task(ping_every(conn))  # a quiet channel still hears pongs
        self._subscribed.set()

    async def _unsubscribe(self) -> None:
        self._subscribed.clear()
        pubsub, self._pubsub = self._pubsub, None
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        if pubsub is not None:
            await pubsub.close()

    async def _listen(self) -> None:
        delay = 0.05
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    # Outcomes published while we were not subscribed are in the events stream.
                    await self._sweep()
                    delay = 0.05
                assert self._pubsub is not None
                message = await self._pubsub.reply(timeout=3 * PING_SECONDS)
            except asyncio.CancelledError:
                raise
            except (WireError, SubmitError) as exc:
                REDIS_ERRORS.labels(self._role, _kind(exc.__cause__ or exc)).inc()
                log.warning("reply subscription lost; resubscribing", channel=self.channel, error=str(exc))
                await self._unsubscribe()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"):
                continue  # a pong
            try:
                replies = parse_replies(message[2])
            except ValueError as exc:
                log.warning("ignoring a malformed reply", channel=self.channel, error=str(exc))
                continue
            for reply in replies:
                self._resolve(reply)

    def _resolve(self, reply: Reply) -> None:
        future = self._waiting.pop(reply.rid, None)
        if future is not None and not future.done():
            future.set_result(reply)

    async def _sweep(self) -> None:
        """Resolve every awaited command whose outcome is already in the events stream: one
        ``XRANGE`` per events entry that holds some (it holds up to a hundred), not per command."""
        waiting = sorted({cmd.encode() for cmd in self._commands.values()}, key=id_order)
        at = 0
        while at < len(waiting):
            try:
                found = await xrange(self._client, keys.EVENTS, waiting[at], "+", 1)
            except (*REDIS_FAILURES, redis.exceptions.RedisError) as exc:
                REDIS_ERRORS.labels(self._role, _kind(exc)).inc()
                return
            if not found:
                return  # no entry at or after it: no later command is applied either
            last = id_order(found[0][0])
            while at < len(waiting) and id_order(waiting[at]) <= last:
                reply = outcome_in(found, waiting[at])
                if reply is not None:
                    self._resolve(reply)
                at += 1

    async def _lookup(self, cmd: str) -> Reply | None:
        try:
            found = await xrange(self._client, keys.EVENTS, cmd, "+", 1)
        except (*REDIS_FAILURES, redis.exceptions.RedisError) as exc:
            REDIS_ERRORS.labels(self._role, _kind(exc)).inc()
            return None
        return outcome_in(found, cmd.encode())


def submit_sync(
    client: redis.Redis,
    command: Mapping[str, Any],
    *,
    who: str,
    ip: str = "-",
    source: str | None = None,
    timeout: float = 10.0,
) -> Reply:
    """Journal one command and wait for its outcome, synchronously (for ``tradewire admin``).

    Subscribes to a private reply channel (``admin-<hex>`` unless ``source`` is given) before the
    ``XADD``, which is sent once, without retries. Raises :class:`SubmitError` when the command could
    not be journalled, :class:`SubmitUnknown` when the connection failed while it was being sent, and
    :class:`SubmitTimeout` when no outcome arrived within ``timeout`` seconds (the events stream is
    checked before giving up).
    """
    source = source or f"admin-{uuid.uuid4().hex[:12]}"
    rid = uuid.uuid4().hex
    channel = keys.reply_channel(source)
    pool = client.connection_pool
    writer = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "retry": redis.retry.Retry(NoBackoff(), 0)},
        )
    )
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(channel)
        deadline = time.monotonic() + timeout
        while (message := pubsub.get_message(timeout=1.0)) is None or message.get("type") != "subscribe":
            if time.monotonic() > deadline:
                raise SubmitError(f"no confirmation of the subscription to {channel}")
        fields = command_fields(orjson.dumps(command), ts=now_ms(), rid=rid, src=source, who=who, ip=ip)
        try:
            cmd = _text(writer.xadd(keys.COMMANDS, fields))
        except (redis.exceptions.ResponseError, redis.exceptions.AuthenticationError) as exc:
            # Redis refused it (OOM, READONLY, MISCONF), or the writer's connection was refused
            raise SubmitError(f"could not journal the command: {exc}") from exc
        except (redis.exceptions.RedisError, OSError) as exc:  # it may have gone out before
            raise SubmitUnknown(
                f"the command may be in the journal (request id {rid}): the connection to Redis "
                f"failed ({exc}); check its effect before running it again"
            ) from exc
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 1.0))
            except (redis.exceptions.RedisError, OSError):
                break  # the subscription is gone: the events stream has the answer
            if message is not None and message.get("type") == "message":
                with contextlib.suppress(ValueError):
                    for reply in parse_replies(message["data"]):
                        if reply.rid == rid:
                            return reply
        found = outcome_in(xrange_sync(client, keys.EVENTS, cmd, "+", 1), cmd.encode())
        if found is not None and found.rid == rid:  # not another's (failover)
            return found
        raise SubmitTimeout(
            f"command {cmd} is journalled but the engine gave no outcome within {timeout:g}s "
            "(is `tradewire engine` running?)",
            cmd,
        )
    finally:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            pubsub.close()
        writer.close()
