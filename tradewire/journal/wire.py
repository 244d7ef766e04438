"""A bare RESP connection for the engine's hot path: bytes out, hiredis-parsed replies in.

The engine sends one MULTI/EXEC of thousands of commands per batch and reads the journal in pages
of thousands of entries. redis-py spends several microseconds of Python per command packing and per
reply reading, which at 50,000 commands per second is most of the budget, so the engine packs RESP
itself (:func:`pack`) and feeds whole socket reads to ``hiredis.Reader``. Gateways use it for
their journal appends and their subscriptions (market data, replies), where each order costs a
round trip or a few messages; everything else (``tradewire admin``, the gateways' other reads,
tests) uses redis-py.

The connection speaks RESP2 and understands the same URLs as :mod:`tradewire.redisconn`
(``redis://``, ``rediss://`` with the TLS options, ``unix://``, user/password, db). It never
re-sends anything: a failure surfaces as :class:`WireConnectionError` and the caller, who knows
whether a command is idempotent, decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from typing import Any

import hiredis

from tradewire.redisconn import parse_redis_url, redact_url, unreachable_message

Arg = bytes | str | int


class WireError(Exception):
    """Base of the errors this connection raises."""


class WireConnectionError(WireError):
    """The connection failed or timed out; whatever was in flight may or may not have run."""


class ReplyError(WireError):
    """Redis answered a command with an error (``OOM ...``, ``NOAUTH ...``, ``EXECABORT ...``)."""

    @property
    def code(self) -> str:
        """The error's first word, e.g. ``OOM``, ``NOAUTH``, ``EXECABORT``, ``LOADING``."""
        text = str(self)
        return text.split(" ", 1)[0] if text else "ERR"


def pack(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings (hiredis's C packer: bytes, str and int)."""
    packed: bytes = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]  # the stub says 1-tuple
    return packed


_MULTI = pack((b"MULTI",))
_EXEC = pack((b"EXEC",))


def _pack_in_python(ops: Sequence[Sequence[Arg]], head: bytes = b"", tail: bytes = b"") -> bytes:
    return b"".join((head, *[pack(op) for op in ops], tail))


try:
    from tradewire.journal._resp import pack_commands
except ImportError:  # not built (no C compiler at install): hiredis's packer per op, the same bytes
    pack_commands = _pack_in_python
PACKER = "native" if pack_commands is not _pack_in_python else "python"
"""Which packer makes the transactions: the C one (``_resp.pyx``) when built, about three times
faster than hiredis's packer called per op."""


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=options.get("ssl_ca_certs"), capath=options.get("ssl_ca_path")
    )
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    reqs = options.get("ssl_cert_reqs", ssl.CERT_REQUIRED)
    context.check_hostname = bool(options.get("ssl_check_hostname", reqs != ssl.CERT_NONE))
    context.verify_mode = reqs
    return context


UNREAD_LIMIT = 8 << 20
"""Bytes received and not yet read past which a connection stops reading its socket (what asyncio's
streams did at their limit): the engine and the appenders always read what they asked for; only a
subscriber that falls behind reaches it."""


class _Link(asyncio.Protocol):
    """The socket's side of a :class:`Connection`: what Redis sends goes straight into hiredis, and
    whoever waits for replies is woken once all of them have come.

    A protocol rather than asyncio's streams: a ``StreamReader`` read, an ``asyncio.timeout`` block
    and a ``drain`` per round trip cost the engine about 30 us of CPU each time (70-90 us per
    ``PING`` against 40-48 here), twice per batch, and the gateway once per journalled order."""

    def __init__(self) -> None:
        self.parser = hiredis.Reader(replyError=ReplyError)
        self.transport: asyncio.Transport | None = None
        self.waiting: tuple[int, list[Any], asyncio.Future[list[Any]]] | None = None
        self.lost: WireConnectionError | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.unread = 0
        """Bytes received since the parser last ran dry (an estimate of what nobody has read)."""
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        self.unread += len(data)
        if self.waiting is not None:
            self.serve()
        elif self.unread > UNREAD_LIMIT and self.transport is not None:
            # nobody reads (a subscriber busy or stuck): stop taking more, so that TCP pushes back
            # and Redis, at its output-buffer limit, drops this client (the gap is then repaired)
            self.paused = True
            self.transport.pause_reading()

    def alive(self) -> None:
        """Raise :class:`WireConnectionError` if the connection is done for."""
        if self.lost is not None:
            raise WireConnectionError(f"the connection is broken ({self.lost}); open a new one")

    def take(self) -> Any:
        """The next parsed reply, or ``False`` (also once a protocol error broke the connection);
        taking them lets a paused socket be read again."""
        try:
            reply = self.parser.gets()
        except hiredis.ProtocolError as exc:
            self.fail(WireConnectionError(f"ProtocolError: {exc}"))
            return False
        if reply is False:
            self.unread = 0
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
        return reply

    def serve(self) -> None:
        """Hand the waiter its replies once all of them are parsed (the rest stay in the parser)."""
        assert self.waiting is not None
        count, out, future = self.waiting
        take = self.take
        while len(out) < count:
            reply = take()
            if reply is False:
                return  # more to come (or the connection failed, which told the waiter)
            out.append(reply)
        self.waiting = None
        if not future.done():
            future.set_result(out)

    def fail(self, error: WireConnectionError) -> None:
        """The connection is done for: the waiter gets ``error``, and so does every later call."""
        if self.lost is None:
            self.lost = error
        if self.waiting is not None:
            future = self.waiting[2]
            self.waiting = None
            if not future.done():
                future.set_exception(self.lost)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "Redis closed the connection"
        self.fail(WireConnectionError(reason))
        if not self.closed.done():
            self.closed.set_result(None)


PING_SECONDS = 30.0
"""How often :func:`ping_every` pings a subscribed connection by default; a reader waiting for its
pushes with a timeout of a few times this hears a ``pong`` even when nothing is published."""


async def ping_every(conn: Connection, seconds: float = PING_SECONDS) -> None:
    """``PING`` on ``conn`` every ``seconds`` until it breaks (run it as a task; cancel it when done):
    a connection whose TCP path died silently is then found out by the reader's timeout."""
    while not conn.broken:
        await asyncio.sleep(seconds)
        with contextlib.suppress(WireError):
            conn.send_now((b"PING",))


def _expire(future: asyncio.Future[list[Any]]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no reply in time"))


class Connection:
    """One RESP2 connection; use :meth:`open`, then :meth:`call`, :meth:`pipeline`, :meth:`transaction`.

    One request at a time: a caller waits for its replies before the next request (the engine's
    reader and writer are two connections). A request that fails, times out or is cancelled breaks
    the connection (its replies could otherwise be read as the next request's)."""

    def __init__(self, link: _Link, timeout: float) -> None:
        self._link = link
        self.timeout = timeout

    @property
    def broken(self) -> bool:
        return self._link.lost is not None

    @classmethod
    async def open(cls, url: str, *, timeout: float = 10.0, name: str = "tradewire-engine") -> Connection:
        """Connect, authenticate and select the URL's database; :class:`WireError` on failure."""
        options = dict(parse_redis_url(url).options)
        connect_timeout = float(options.get("socket_connect_timeout") or timeout)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                if "unix_socket_path" in options:
                    _, link = await loop.create_unix_connection(_Link, options["unix_socket_path"])
                else:
                    context = _ssl_context(options) if options.get("ssl") else None
                    _, link = await loop.create_connection(
                        _Link, options["host"], options["port"], ssl=context
                    )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise WireConnectionError(unreachable_message(url, exc)) from exc
        connection = cls(link, timeout)
        try:
            setup: list[tuple[Arg, ...]] = []
            user: str | None = options.get("username")
            password: str = options.get("password") or ""
            if user:  # as redis-py: a user without a password authenticates with ""
                setup.append((b"AUTH", user, password))
            elif password:
                setup.append((b"AUTH", password))
            if options.get("db"):
                setup.append((b"SELECT", int(options["db"])))
            setup.append((b"CLIENT", b"SETNAME", name))
            try:
                replies = await connection.pipeline(setup)
            except WireConnectionError as exc:  # dropped before answering: a TLS server, say
                raise WireConnectionError(unreachable_message(url, exc)) from exc
            for reply in replies:
                if isinstance(reply, ReplyError):
                    # its first word stays the code (WRONGPASS, NOAUTH) that metrics count by
                    raise ReplyError(f"{reply} (Redis at {redact_url(url)}, connecting)") from reply
        except BaseException:
            await connection.close()
            raise
        return connection

    async def close(self) -> None:
        link = self._link
        link.fail(WireConnectionError("the connection was closed"))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(link.closed), 5.0)

    def _write(self, data: bytes) -> _Link:
        link = self._link
        link.alive()
        assert link.transport is not None
        link.transport.write(data)
        return link

    async def _replies(self, link: _Link, count: int, timeout: float | None) -> list[Any]:
        """Wait for ``count`` replies (the oldest not yet read); any failure breaks the connection."""
        if link.waiting is not None:
            raise WireError("another request on this connection is waiting for its replies")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        link.waiting = (count, [], future)
        link.serve()  # some may be parsed already (pushes, or replies to send_now)
        if future.done():
            return future.result()
        timer = loop.call_later(self.timeout if timeout is None else timeout, _expire, future)
        try:
            return await future
        except WireConnectionError:
            raise
        except TimeoutError as exc:
            link.fail(WireConnectionError(f"TimeoutError: {exc}"))
            raise link.lost from exc  # type: ignore[misc]
        except BaseException:  # cancelled: the replies would be read as the next request's
            link.fail(WireConnectionError("a request was cancelled while waiting for its replies"))
            raise
        finally:
            timer.cancel()

    async def pipeline(self, commands: Sequence[Sequence[Arg]], *, timeout: float | None = None) -> list[Any]:
        """Send ``commands`` at once and return their replies in order (errors as :class:`ReplyError`)."""
        return await self.raw(b"".join(pack(c) for c in commands), len(commands), timeout=timeout)

    async def raw(self, data: bytes, count: int, *, timeout: float | None = None) -> list[Any]:
        """Send packed ``data`` holding ``count`` commands; return their ``count`` replies."""
        if self._link.waiting is not None:  # refused before anything is sent
            raise WireError("another request on this connection is waiting for its replies")
        return await self._replies(self._write(data), count, timeout)

    def send_now(self, args: Sequence[Arg]) -> None:
        """Write one command to the socket right away, without waiting; read its reply with
        :meth:`reply`. Lets Redis work on it while the caller computes."""
        self._write(pack(args))

    async def reply(self, *, timeout: float | None = None) -> Any:
        """The reply to the oldest command sent with :meth:`send_now` (or the next message pushed
        to a subscribed connection); raises :class:`ReplyError`."""
        link = self._link
        link.alive()
        [reply] = await self._replies(link, 1, timeout)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def pushed(self) -> Any:
        """A reply already received, without waiting (``None`` when none is): for a subscribed
        connection, the next message pushed to it if it has come."""
        link = self._link
        link.alive()
        reply = link.take()
        link.alive()  # a protocol error just now
        return None if reply is False else reply

    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        """One command's reply; raises :class:`ReplyError` for an error reply."""
        [reply] = await self.raw(pack(args), 1, timeout=timeout)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def transaction(self, ops: Sequence[Sequence[Arg]], *, timeout: float | None = None) -> list[Any]:
        """Run ``ops`` in one MULTI/EXEC and return EXEC's replies (errors inside as :class:`ReplyError`).

        Raises :class:`ReplyError` when the transaction did not run (``EXECABORT``: a command was
        refused while queueing, e.g. ``OOM``; ``NOAUTH``; ``READONLY``; ``LOADING``), and
        :class:`WireConnectionError` when the outcome is unknown.
        """
        data = pack_commands(ops, _MULTI, _EXEC)
        replies = await self.raw(data, len(ops) + 2, timeout=timeout)
        result = replies[-1]
        if isinstance(result, ReplyError):
            # The first refusal says why (EXECABORT only says "previous errors").
            for reply in replies[:-1]:
                if isinstance(reply, ReplyError):
                    raise ReplyError(f"{reply} ({result})")
            raise result
        if result is None:
            raise ReplyError("EXECABORT transaction discarded (WATCH)")
        return list(result)

    async def fenced_transaction(
        self, ops: Sequence[Sequence[Arg]], fence: bytes | str, *, timeout: float | None = None
    ) -> tuple[list[Any] | None, Any]:
        """Run ``ops`` in one MULTI/EXEC, then ``WATCH fence`` and ``GET fence`` for the next one,
        all in one write: no round trip more than :meth:`transaction`.

        The caller must have watched ``fence`` (and seen it hold its value) before the first call on
        this connection; EXEC then runs only if nobody wrote ``fence`` since. Returns EXEC's replies
        (``None`` when ``fence`` was written since it was watched: nothing ran) and ``fence``'s value
        right after, now watched for the next call (``None`` when the ``WATCH`` failed). Raises as
        :meth:`transaction` does otherwise.
        """
        tail = pack((b"WATCH", fence)) + pack((b"GET", fence))
        data = pack_commands(ops, _MULTI, _EXEC + tail)
        replies = await self.raw(data, len(ops) + 4, timeout=timeout)
        result, watched, value = replies[-3:]
        if isinstance(result, ReplyError):
            for reply in replies[:-3]:
                if isinstance(reply, ReplyError):
                    raise ReplyError(f"{reply} ({result})")
            raise result
        if isinstance(watched, ReplyError) or isinstance(value, ReplyError):
            value = None
        return (None if result is None else list(result)), value
