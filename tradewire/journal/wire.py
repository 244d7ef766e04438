"""A bare RESP connection for the engine's hot path: bytes out, hiredis-parsed replies in.

The engine sends one MULTI/EXEC of thousands of commands per batch and reads the journal in pages
of thousands of entries. redis-py spends several microseconds of Python per command packing and per
reply reading, which at 50,000 commands per second is most of the budget, so the engine packs RESP
itself (:func:`pack`) and feeds whole socket reads to ``hiredis.Reader``. Everything else
(``tradewire admin``, gateways, tests) uses redis-py.

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

from tradewire.redisconn import parse_redis_url

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

_TEMPLATES = {n: b"*%d\r\n" % n + b"$%d\r\n%s\r\n" * n for n in (3, 11)}
"""RESP of the batch's most frequent shapes (a ``PUBLISH``, an ``XADD`` of four fields) with the
lengths and arguments left to fill: one bytes ``%`` is about twice as fast as hiredis's packer."""


def pack_ops(ops: Sequence[Sequence[Arg]]) -> list[bytes]:
    """:func:`pack` of each op; ops of three or eleven ``bytes`` arguments through a template.

    The types are checked before the template is tried: an op with a ``str`` or ``int`` argument
    (the views' and the market data's ``SET`` and ``PUBLISH``) made bytes formatting raise, and
    raising and catching that ``TypeError`` cost more than packing the op (26 vs 10 us for a
    batch's fifteen typical ops)."""
    packer: Any = hiredis.pack_command
    three, eleven = _TEMPLATES[3], _TEMPLATES[11]
    out: list[bytes] = []
    append = out.append
    for op in ops:
        size = len(op)
        if size == 3:
            a, b, c = op
            if type(a) is bytes and type(b) is bytes and type(c) is bytes:
                append(three % (len(a), a, len(b), b, len(c), c))
                continue
        elif size == 11:
            a, b, c, d, e, f, g, h, i, j, k = op
            if not (type(a) is bytes and type(b) is bytes and type(c) is bytes and type(d) is bytes
                    and type(e) is bytes and type(f) is bytes and type(g) is bytes and type(h) is bytes
                    and type(i) is bytes and type(j) is bytes and type(k) is bytes):  # fmt: skip
                append(packer(op))
                continue
            append(
                eleven
                % (len(a), a, len(b), b, len(c), c, len(d), d, len(e), e, len(f), f,
                   len(g), g, len(h), h, len(i), i, len(j), j, len(k), k)
            )  # fmt: skip
            continue
        append(packer(op))
    return out


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


class Connection:
    """One RESP2 connection; use :meth:`open`, then :meth:`call`, :meth:`pipeline`, :meth:`transaction`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader(replyError=ReplyError)
        self.timeout = timeout
        self.broken = False

    @classmethod
    async def open(cls, url: str, *, timeout: float = 10.0, name: str = "tradewire-engine") -> Connection:
        """Connect, authenticate and select the URL's database; :class:`WireError` on failure."""
        options = dict(parse_redis_url(url).options)
        connect_timeout = float(options.get("socket_connect_timeout") or timeout)
        try:
            async with asyncio.timeout(connect_timeout):
                if "unix_socket_path" in options:
                    reader, writer = await asyncio.open_unix_connection(options["unix_socket_path"])
                else:
                    context = _ssl_context(options) if options.get("ssl") else None
                    reader, writer = await asyncio.open_connection(
                        options["host"], options["port"], ssl=context, limit=1 << 22
                    )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            where = parse_redis_url(url).url
            raise WireConnectionError(f"cannot connect to Redis at {where}: {exc}") from exc
        connection = cls(reader, writer, timeout)
        try:
            setup: list[tuple[Arg, ...]] = []
            if options.get("password"):
                user = options.get("username")
                setup.append((b"AUTH", user, options["password"]) if user else (b"AUTH", options["password"]))
            if options.get("db"):
                setup.append((b"SELECT", int(options["db"])))
            setup.append((b"CLIENT", b"SETNAME", name))
            for reply in await connection.pipeline(setup):
                if isinstance(reply, ReplyError):
                    raise reply
        except BaseException:
            await connection.close()
            raise
        return connection

    async def close(self) -> None:
        self.broken = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def _send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def _replies(self, count: int) -> list[Any]:
        out: list[Any] = []
        parser = self._parser
        while len(out) < count:
            reply = parser.gets()
            if reply is False:
                data = await self._reader.read(1 << 20)
                if not data:
                    raise WireConnectionError("Redis closed the connection")
                parser.feed(data)
                continue
            out.append(reply)
        return out

    async def pipeline(self, commands: Sequence[Sequence[Arg]], *, timeout: float | None = None) -> list[Any]:
        """Send ``commands`` at once and return their replies in order (errors as :class:`ReplyError`)."""
        return await self.raw(b"".join(pack(c) for c in commands), len(commands), timeout=timeout)

    async def raw(self, data: bytes, count: int, *, timeout: float | None = None) -> list[Any]:
        """Send packed ``data`` holding ``count`` commands; return their ``count`` replies."""
        if self.broken:
            raise WireConnectionError("the connection is broken; open a new one")
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                await self._send(data)
                return await self._replies(count)
        except (OSError, TimeoutError, hiredis.ProtocolError, WireConnectionError) as exc:
            await self.close()
            if isinstance(exc, WireConnectionError):
                raise
            raise WireConnectionError(f"{type(exc).__name__}: {exc}") from exc

    def send_now(self, args: Sequence[Arg]) -> None:
        """Write one command to the socket right away, without waiting; read its reply with
        :meth:`reply`. Lets Redis work on it while the caller computes."""
        if self.broken:
            raise WireConnectionError("the connection is broken; open a new one")
        self._writer.write(pack(args))

    async def reply(self, *, timeout: float | None = None) -> Any:
        """The reply to the oldest command sent with :meth:`send_now`; raises :class:`ReplyError`."""
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                await self._writer.drain()
                [reply] = await self._replies(1)
        except (OSError, TimeoutError, hiredis.ProtocolError, WireConnectionError) as exc:
            await self.close()
            if isinstance(exc, WireConnectionError):
                raise
            raise WireConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(reply, ReplyError):
            raise reply
        return reply

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
        data = b"".join((_MULTI, *pack_ops(ops), _EXEC))
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
