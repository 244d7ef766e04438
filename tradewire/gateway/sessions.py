"""Ending the streams that lost their right to a user's data: expired or closed listen keys, revoked
API keys.

A listen key lives 60 minutes after its last keep-alive, and no longer than the API key that created
it; a WebSocket API subscription lives as long as one of the API keys that asked for it. Redis holds
each listen key as ``"<user> <creator API key>"`` (:func:`listen_key_value`), and a closed one as a
tombstone (:data:`CLOSED`) for an hour, so that anyone can tell the three ends apart: expired (the
key is gone), closed by its owner (the tombstone), revoked (the creator's ``tw:apikey:<key>`` is
gone). Every gateway learns of an end in two ways:

- at once, from a notice on ``tw:sessions``: the gateway that closed a listen key and the operator's
  ``tradewire admin revoke-key`` publish one;
- every ``Limits.session_check`` seconds, by reading the listen keys and API keys its connections
  follow (two pipelined round trips). That covers expiry (Redis announces an expired key only with
  keyspace notifications on, which managed Redis services often forbid), a notice missed while the
  gateway's subscription was reconnecting, and a listen key created through a gateway that still
  trusted a key being revoked.

What a client sees is Binance's: ``listenKeyExpired`` as the last message of a stream whose listen
key expired (nothing when it was closed or its key revoked), ``eventStreamTerminated`` as the last
of a WebSocket API subscription; then nothing more of the user's. A stream connection left with
nothing to follow is closed (1000) with the reason.

The notices and the Redis values are pure data (the functions below); :class:`SessionGuard` is the
shell that applies them to the connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, cast

import orjson
import redis.asyncio
import structlog

from tradewire import keys

if TYPE_CHECKING:
    from tradewire.gateway.auth import KeyCache

log = structlog.get_logger("tradewire.gateway.sessions")

CLOSED: Final = b"-"
"""The value of a listen key its owner closed (a live one holds a space, which ``-`` has not)."""
EXPIRED: Final = "listen key expired"
CLOSED_BY_OWNER: Final = "listen key closed"
REVOKED: Final = "API key revoked"


def listen_key_value(user: str, api_key: str) -> str:
    """What Redis holds for a live listen key (user names and API keys have no spaces)."""
    return f"{user} {api_key}"


@dataclass(frozen=True)
class ListenKey:
    """A listen key as read from Redis: its owner and the API key that created it."""

    user: str
    creator: str | None
    """``None`` for a listen key written before creators were kept: it ends by expiry only."""


def parse_listen_key(value: bytes | None) -> ListenKey | str:
    """A live listen key, or why it ended (:data:`EXPIRED` when gone, :data:`CLOSED_BY_OWNER`)."""
    if value is None:
        return EXPIRED
    if value == CLOSED:
        return CLOSED_BY_OWNER
    user, _, creator = value.decode("utf-8", "replace").partition(" ")
    return ListenKey(user, creator or None)


@dataclass(frozen=True)
class Notice:
    """Sessions to end now: an API key's (revoked), or listen keys closed by their owner."""

    api_key: str | None
    listen_keys: tuple[str, ...] = ()


def revoked_notice(api_key: str) -> bytes:
    """What ``tradewire admin revoke-key`` publishes."""
    return orjson.dumps({"type": "api_key_revoked", "api_key": api_key})


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
    kind = data.get("type")
    if kind == "api_key_revoked":
        api_key = data.get("api_key")
        return Notice(api_key) if isinstance(api_key, str) and api_key else None
    if kind == "listen_key_closed":
        listen_keys = data.get("listen_keys")
        if isinstance(listen_keys, list) and listen_keys and all(isinstance(k, str) for k in listen_keys):
            return Notice(None, tuple(listen_keys))
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
    listen_key_creator: str | None

    def subscription_keys(self) -> set[str]:
        """The API keys that asked for this connection's WebSocket API subscriptions."""
        ...

    def end_user_stream(self, event: bytes | None, reason: str) -> None:
        """Stop the listen key's stream after ``event`` (if any); close when nothing else is followed."""
        ...

    def end_subscriptions(self, api_key: str, event: bytes) -> int:
        """Drop ``api_key`` from the subscriptions; end, each after ``event``, those it was the last
        key of. How many ended."""
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

    def end(self, *, listen_keys: dict[str, str] | None = None, api_key: str | None = None) -> int:
        """End the streams of ``listen_keys`` (listen key -> why) and everything ``api_key``
        (revoked) created or asked for; how many streams and subscriptions ended."""
        now_ms = int(time.time() * 1000)
        gone = listen_keys or {}
        if api_key is not None:
            self._key_cache.forget(api_key)
        ended = 0
        for conn in self._connections():
            listen_key = conn.listen_key
            if listen_key is not None:
                reason = gone.get(listen_key)
                if reason is None and api_key is not None and conn.listen_key_creator == api_key:
                    reason = REVOKED
                if reason is not None:
                    event = listen_key_expired(listen_key, now_ms) if reason == EXPIRED else None
                    conn.end_user_stream(event, reason)
                    ended += 1
            if api_key is not None:
                ended += conn.end_subscriptions(api_key, stream_terminated(now_ms))
        return ended

    def on_message(self, payload: bytes) -> None:
        """A notice from ``tw:sessions``; never raises into the subscriber's loop."""
        notice = parse_notice(payload)
        if notice is None:
            log.warning("ignoring a malformed session notice", payload=payload[:200])
            return
        try:
            ended = self.end(
                listen_keys=dict.fromkeys(notice.listen_keys, CLOSED_BY_OWNER), api_key=notice.api_key
            )
        except Exception:
            log.exception("applying a session notice failed")
            return
        if ended:
            log.info("sessions ended", api_key=(notice.api_key or "")[:8], streams=ended)

    async def check(self) -> int:
        """End what no longer exists in Redis: listen keys expired, closed or whose creator is gone,
        and the API keys of WebSocket API subscriptions."""
        conns = self._connections()
        listen_keys = sorted({c.listen_key for c in conns if c.listen_key is not None})
        api_keys = {key for c in conns for key in c.subscription_keys()}
        if not listen_keys and not api_keys:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for listen_key in listen_keys:
            pipe.get(keys.listen_key(listen_key))
        values = await pipe.execute() if listen_keys else []
        gone: dict[str, str] = {}
        creators: dict[str, list[str]] = {}
        for listen_key, value in zip(listen_keys, values, strict=True):
            state = parse_listen_key(value)
            if isinstance(state, str):
                gone[listen_key] = state
            elif state.creator is not None:
                creators.setdefault(state.creator, []).append(listen_key)
        checked = sorted(api_keys | set(creators))
        pipe = self._client.pipeline(transaction=False)
        for api_key in checked:
            pipe.exists(keys.api_key(api_key))
        found = await pipe.execute() if checked else []
        ended = self.end(listen_keys=gone) if gone else 0
        for api_key, exists in zip(checked, found, strict=True):
            if not exists:
                ended += self.end(api_key=api_key)
        return ended

    async def run(self, interval: float) -> None:
        """:meth:`check` every ``interval`` seconds until cancelled; a failure waits for the next."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("session check: Redis unavailable", error=str(exc))
            except Exception:
                log.exception("session check failed")
