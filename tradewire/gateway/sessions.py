"""Ending the streams that lost their right to a user's data: expired or closed listen keys, revoked
API keys.

A user data stream lives as long as its listen key (60 minutes after the last keep-alive), and a
WebSocket API subscription as long as the API key that signed it. Every gateway learns that one is
gone in two ways:

- at once, from a notice on ``tw:sessions``: the gateway that closed a listen key and the operator's
  ``tradewire admin revoke-key`` publish one;
- every ``Limits.session_check`` seconds, from one pipelined ``EXISTS`` per listen key and API key
  that its connections follow. That covers expiry (Redis announces an expired key only with keyspace
  notifications on, which managed Redis services often forbid) and a notice missed while the
  gateway's subscription was reconnecting.

What a client sees is Binance's: ``listenKeyExpired`` on a stream whose listen key expired (nothing
when its owner closed it), ``eventStreamTerminated`` in a WebSocket API subscription whose key was
revoked; then no more events. A stream connection left with nothing to follow is closed.

The notices are pure data (:func:`revoked_notice`, :func:`closed_notice`, :func:`parse_notice`);
:class:`SessionGuard` is the shell that applies them to the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

import orjson
import redis.asyncio
import structlog

from tradewire import keys

if TYPE_CHECKING:
    from tradewire.gateway.auth import KeyCache

log = structlog.get_logger("tradewire.gateway.sessions")


@dataclass(frozen=True)
class Notice:
    """Sessions to end: those of a revoked API key, and listen keys that are gone."""

    api_key: str | None
    listen_keys: tuple[str, ...]
    expired: bool
    """The listen keys expired (``listenKeyExpired`` is sent) rather than being closed or revoked."""


def revoked_notice(api_key: str, listen_keys: Iterable[str]) -> bytes:
    """What ``tradewire admin revoke-key`` publishes: the key and the listen keys it deleted with it."""
    return orjson.dumps({"type": "api_key_revoked", "api_key": api_key, "listen_keys": list(listen_keys)})


def closed_notice(listen_key: str) -> bytes:
    """What a gateway publishes when a listen key's owner closes it."""
    return orjson.dumps({"type": "listen_key_closed", "listen_keys": [listen_key]})


def parse_notice(payload: bytes) -> Notice | None:
    """A notice, or ``None`` for anything else (logged by the caller; nothing is ended)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    listen_keys = data.get("listen_keys", [])
    if not isinstance(listen_keys, list) or not all(isinstance(k, str) for k in listen_keys):
        return None
    kind = data.get("type")
    if kind == "api_key_revoked":
        api_key = data.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            return None
        return Notice(api_key, tuple(listen_keys), expired=False)
    if kind == "listen_key_closed":
        return Notice(None, tuple(listen_keys), expired=False)
    return None


def listen_key_expired(listen_key: str, now_ms: int) -> bytes:
    """Binance's last event on a user data stream whose listen key expired."""
    return orjson.dumps({"e": "listenKeyExpired", "E": now_ms, "listenKey": listen_key})


def stream_terminated(now_ms: int) -> bytes:
    """Binance's last event of a WebSocket API user data subscription."""
    return orjson.dumps({"e": "eventStreamTerminated", "E": now_ms})


class Holder(Protocol):
    """What the guard needs of a connection (``tradewire.gateway.connection.Connection``)."""

    listen_key: str | None

    def subscription_keys(self) -> set[str]:
        """The API keys that signed this connection's WebSocket API subscriptions."""
        ...

    def end_user_stream(self, event: bytes | None, reason: str) -> None:
        """Stop the listen key's stream after ``event`` (if any); close when nothing else is followed."""
        ...

    def end_subscriptions(self, api_key: str, event: bytes) -> int:
        """Stop the subscriptions ``api_key`` signed, each after ``event``; how many there were."""
        ...


class SessionGuard:
    """Applies notices and the periodic check to this gateway's connections."""

    def __init__(self, client: redis.asyncio.Redis, key_cache: KeyCache, holders: Iterable[object]) -> None:
        self._client = client
        self._key_cache = key_cache
        self._holders = holders
        """The live connections (the hub's, read at each use)."""

    def _connections(self) -> list[Holder]:
        return cast("list[Holder]", list(self._holders))

    def apply(self, notice: Notice) -> int:
        """End what ``notice`` names on this gateway; how many streams and subscriptions ended."""
        now_ms = int(time.time() * 1000)
        ended = 0
        if notice.api_key is not None:
            self._key_cache.forget(notice.api_key)
        gone = set(notice.listen_keys)
        for conn in self._connections():
            if conn.listen_key is not None and conn.listen_key in gone:
                event = listen_key_expired(conn.listen_key, now_ms) if notice.expired else None
                reason = "listen key expired" if notice.expired else (
                    "API key revoked" if notice.api_key is not None else "listen key closed"
                )  # fmt: skip
                conn.end_user_stream(event, reason)
                ended += 1
            if notice.api_key is not None:
                ended += conn.end_subscriptions(notice.api_key, stream_terminated(now_ms))
        return ended

    def on_message(self, payload: bytes) -> None:
        notice = parse_notice(payload)
        if notice is None:
            log.warning("ignoring a malformed session notice", payload=payload[:200])
            return
        ended = self.apply(notice)
        if ended:
            log.info("sessions ended", api_key=(notice.api_key or "")[:8], streams=ended)

    async def check(self) -> int:
        """End the streams whose listen key or API key no longer exists in Redis."""
        conns = self._connections()
        listen_keys = sorted({c.listen_key for c in conns if c.listen_key is not None})
        api_keys = sorted({key for c in conns for key in c.subscription_keys()})
        if not listen_keys and not api_keys:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for listen_key in listen_keys:
            pipe.exists(keys.listen_key(listen_key))
        for api_key in api_keys:
            pipe.exists(keys.api_key(api_key))
        found = await pipe.execute()
        expired = tuple(k for k, n in zip(listen_keys, found, strict=False) if not n)
        ended = self.apply(Notice(None, expired, expired=True)) if expired else 0
        for api_key, n in zip(api_keys, found[len(listen_keys) :], strict=False):
            if not n:
                ended += self.apply(Notice(api_key, (), expired=False))
        return ended

    async def run(self, interval: float) -> None:
        """:meth:`check` every ``interval`` seconds until cancelled; a Redis error waits for the next."""
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self.check()
