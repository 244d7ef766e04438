"""The gateway's shared parts: its Redis clients, the markets, the journal submitter, the fan-out hub.

One :class:`Gateway` per process. It keeps nothing another gateway would need: markets come from
``tw:config``, orders and balances from the engine's views, listen keys and API keys from Redis;
what it holds in memory (the hub's followers, decrypted keys for a few seconds, rate counters) is
about its own connections only.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from pathlib import Path
from typing import Any, Final

import redis.asyncio
import structlog

from tradewire import keys
from tradewire.bus.subscribe import Publication, Subscriber, read_history
from tradewire.gateway.auth import KeyCache
from tradewire.gateway.clock import ClockWatch
from tradewire.gateway.hub import Hub
from tradewire.gateway.limits import Limits, MessageRate, WeightWindow
from tradewire.gateway.markets import Markets
from tradewire.gateway.secrets import SecretError, load_master_key
from tradewire.gateway.sessions import (
    CLOSED,
    ListenKey,
    SessionGuard,
    closed_notice,
    listen_key_value,
    parse_listen_key,
)
from tradewire.gateway.streams import Stream
from tradewire.journal.submit import Submitter
from tradewire.redisconn import connect

log = structlog.get_logger("tradewire.gateway")

LISTEN_KEY_TTL: Final = 3600
CLOCK_CHECK_SECONDS: Final = 10.0
_SESSIONS: Final = keys.SESSIONS.encode()


class Gateway:
    """Everything the REST handlers and the WebSocket connections share."""

    def __init__(self, redis_url: str, data_dir: Path | None, limits: Limits | None = None) -> None:
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.limits = limits or Limits()
        self.instance = f"gw-{uuid.uuid4().hex[:12]}"
        self.client: redis.asyncio.Redis = connect(redis_url, client_name=self.instance)
        self.hub = Hub()
        self.weights = WeightWindow(self.limits.weight_per_minute)
        self.markets_or_none: Markets | None = None
        self.submitter = Submitter(redis_url, self.instance)
        self.subscriber = Subscriber(
            connect(redis_url, client_name=f"{self.instance}-sub", socket_timeout=None),
            redis_url,
            self.hub.deliver,
            self.hub.reset,
            self._on_plain,
            self.hub.flush,
        )
        self.hub.subscriber = self.subscriber
        self.hub.listeners_changed = lambda: self.client.incr(keys.LISTENERS_VERSION)
        master: bytes | None
        try:
            master = load_master_key(data_dir)
        except SecretError as exc:
            log.warning("no master key: signed endpoints will refuse every key", reason=str(exc))
            master = None
        self.key_cache = KeyCache(self.client, master)
        self.sessions = SessionGuard(self.client, self.key_cache, self.hub.conns)
        self.clock = ClockWatch(self.client)
        self._clock_task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._config_task: asyncio.Task[None] | None = None
        self._role_task: asyncio.Task[None] | None = None
        self.replica = False
        """Redis is a replica, which refuses every journal append (``READONLY``): not ready."""
        self.started = False

    @property
    def markets(self) -> Markets:
        if self.markets_or_none is None:
            from tradewire.gateway.errors import ApiError

            raise ApiError(-1001, "The exchange is starting: no market configuration yet.", 503)
        return self.markets_or_none

    async def start(self) -> None:
        await self.client.ping()
        await self._check_role()
        await self._load_config()
        if self.markets_or_none is None:
            self._config_task = asyncio.create_task(self._wait_for_config())
        await self.submitter.start()
        await self.subscriber.subscribe_plain(_SESSIONS)
        await self.subscriber.start()
        self._ticker = asyncio.create_task(self._tick())
        self._session_task = asyncio.create_task(self.sessions.run(self.limits.session_check))
        self._clock_task = asyncio.create_task(self.clock.run(CLOCK_CHECK_SECONDS))
        self._role_task = asyncio.create_task(self._watch_role())
        self.started = True

    async def stop(self) -> None:
        for task in (self._ticker, self._config_task, self._session_task, self._clock_task, self._role_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.subscriber.stop()
        with contextlib.suppress(Exception):
            await self.submitter.close()
        await self.client.aclose()

    def _on_plain(self, channel: bytes, payload: bytes) -> None:
        if channel == _SESSIONS:
            self.sessions.on_message(payload)
        else:
            self.hub.deliver_user(channel, payload)

    async def _load_config(self) -> None:
        raw: Any = await self.client.get(keys.CONFIG)
        if raw:
            self.markets_or_none = Markets.from_json(raw)

    async def _wait_for_config(self) -> None:
        while self.markets_or_none is None:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                await self._load_config()

    async def _check_role(self) -> None:
        """Whether Redis is a replica now (``ROLE``; a Redis that refuses it is taken for a primary),
        said in the log when that changes: a replica as ``REDIS_URL``, or one a failover left behind."""
        with contextlib.suppress(Exception):
            role: Any = await self.client.execute_command("ROLE")  # type: ignore[no-untyped-call]
            replica = role[0] in (b"slave", "slave")
            if replica != self.replica:
                if replica:
                    log.error("redis is a read-only replica: every order would be refused; not ready")
                else:
                    log.warning("redis is a primary again: ready")
            self.replica = replica

    async def _watch_role(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_CHECK_SECONDS)
            await self._check_role()

    async def _tick(self) -> None:
        interval = max(0.05, min(1.0, self.limits.ping_interval))
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if now - last_ping >= self.limits.ping_interval:
                last_ping = now
                self.hub.tick()

    def ready(self) -> tuple[bool, str]:
        if not self.started:
            return False, "starting"
        if self.markets_or_none is None:
            return False, "no market configuration in Redis yet (is the engine running?)"
        if self.replica:
            return (
                False,
                "redis is a read-only replica: orders would be refused (point REDIS_URL at the primary)",
            )
        if not self.subscriber.connected:
            return False, "market-data subscription down"
        return True, "ok"

    def message_rate(self) -> MessageRate:
        return MessageRate(self.limits.messages_per_second)

    async def history(self, stream: Stream) -> list[tuple[int, Publication]]:
        return await read_history(self.client, keys.md(stream.market, stream.channel).encode(), 0)

    # -- listen keys ---------------------------------------------------------------------------------

    async def listen_key_owner(self, listen_key: str) -> ListenKey | None:
        """The live listen key's owner and creator; ``None`` when it expired, was closed, or the
        API key that created it was revoked (``tradewire.gateway.sessions``)."""
        if not (listen_key.isascii() and listen_key.isalnum()) or len(listen_key) > 128:
            return None
        value: Any = await self.client.get(keys.listen_key(listen_key))
        state = parse_listen_key(value)
        if isinstance(state, str):
            return None
        if state.creator is not None and not await self.client.exists(keys.api_key(state.creator)):
            return None
        return state

    async def create_listen_key(self, user: str, api_key: str) -> str:
        """The API key's live listen key, kept alive another 60 minutes, or a new one: as on Binance,
        asking again does not open a second stream (python-binance reconnects whenever the key it
        gets differs from the last one)."""
        index = keys.listen_key_of(api_key)
        current: Any = await self.client.get(index)
        if current is not None:
            listen_key: str = current.decode()
            owner = await self.listen_key_owner(listen_key)
            if owner is not None and owner.user == user:
                await self._extend(listen_key, api_key)
                return listen_key
        listen_key = secrets.token_hex(30)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(keys.listen_key(listen_key), listen_key_value(user, api_key), ex=LISTEN_KEY_TTL)
        pipe.set(index, listen_key, ex=LISTEN_KEY_TTL)
        await pipe.execute()
        return listen_key

    async def _extend(self, listen_key: str, api_key: str | None) -> bool:
        """Another 60 minutes for a live listen key and the index that finds it from its API key."""
        pipe = self.client.pipeline(transaction=True)
        pipe.expire(keys.listen_key(listen_key), LISTEN_KEY_TTL)
        if api_key is not None:
            pipe.set(keys.listen_key_of(api_key), listen_key, ex=LISTEN_KEY_TTL)
        extended, *_ = await pipe.execute()
        return bool(extended)

    async def keep_alive_listen_key(self, listen_key: str, user: str) -> bool:
        owner = await self.listen_key_owner(listen_key)
        if owner is None or owner.user != user:
            return False
        return await self._extend(listen_key, owner.creator)

    async def close_listen_key(self, listen_key: str, user: str) -> bool:
        """Leave the closed listen key's tombstone and tell every gateway to end its streams now."""
        owner = await self.listen_key_owner(listen_key)
        if owner is None or owner.user != user:
            return False
        pipe = self.client.pipeline(transaction=True)
        pipe.set(keys.listen_key(listen_key), CLOSED, ex=LISTEN_KEY_TTL)
        if owner.creator is not None:  # the next POST opens a new one
            pipe.delete(keys.listen_key_of(owner.creator))
        pipe.publish(keys.SESSIONS, closed_notice(listen_key))
        await pipe.execute()
        return True
