"""The fan-out: which connection follows which stream, and delivering one publication to all of them.

Theory of operation. The :class:`~tradewire.bus.subscribe.Subscriber` hands every market-data
publication, in offset order, to :meth:`Hub.deliver`. For each stream name that follows the channel
the hub builds the frame at most twice (raw and combined) and writes the very same ``bytes`` to every
connection on the fast path: nothing is encoded per subscriber. A connection leaves the fast path
while its transport is over its buffer limit (it is *paused*), while it catches up from the history
after a resume, and when it asked for batched frames; then :meth:`Connection.push` takes the message
and the connection decides (backlog, catch-up buffer, batch).

Redis channels are followed only while some connection wants them: the first follower subscribes,
the last one to leave unsubscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from tradewire import keys
from tradewire.bus.subscribe import Publication
from tradewire.gateway.backlog import Kind
from tradewire.gateway.frames import batch, combined, frame
from tradewire.gateway.streams import Stream
from tradewire.ops.metrics import (
    PUBLISH_TO_SEND_SECONDS,
    WS_CONNECTIONS,
    WS_MESSAGES,
    WS_QUEUE_DEPTH_MAX,
    WS_SUBSCRIPTIONS,
)

if TYPE_CHECKING:
    from tradewire.bus.subscribe import Subscriber

LATEST: Final = frozenset(
    {"depth20", "bookTicker", "ticker", "miniTicker", "avgPrice", "ticker_1h", "ticker_4h", "ticker_1d"}
)
_SENT = WS_MESSAGES.labels("sent")


def kind_of(channel: str) -> Kind:
    if channel == "depth":
        return "diff"
    return "latest" if channel in LATEST else "plain"


class Follower(Protocol):
    """What the hub needs of a connection (``tradewire.gateway.connection.Connection``)."""

    fast: bool
    combined: bool
    batched: bool
    write: Callable[[bytes], None]

    def push(self, stream: str, kind: Kind, payload: bytes, offset: int, key: str | None = None) -> None: ...

    def resnapshot(self, stream: str, reason: str) -> None: ...

    def user_data_lost(self, stream: str) -> None: ...

    def tick(self, now: float) -> None: ...

    @property
    def queued(self) -> int: ...


class StreamFollowers:
    """The connections that follow one stream name.

    Connections that asked for batched frames are served at :meth:`flush` (after each group of
    publications the subscriber read at once) with one frame carrying the whole group, the same bytes
    for all of them; the others get one frame per publication as it comes.
    """

    __slots__ = ("conns", "kind", "name", "pending", "stream")

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.name = stream.name.encode()
        self.kind = kind_of(stream.channel)
        self.conns: dict[Follower, None] = {}
        self.pending: list[tuple[int, bytes]] = []

    def send(self, publication: Publication) -> bool:
        """Deliver to the unbatched followers; True when batched ones wait for :meth:`flush`."""
        payload = self.stream.shape(publication.payload)
        raw: bytes | None = None
        wrapped: bytes | None = None
        name, key = self.stream.name, self.stream.key
        batched = False
        for conn in self.conns:
            if conn.batched:
                batched = True
            elif conn.fast:
                if conn.combined:
                    if wrapped is None:
                        wrapped = frame(combined(self.name, payload))
                    conn.write(wrapped)
                else:
                    if raw is None:
                        raw = frame(payload)
                    conn.write(raw)
            else:
                conn.push(name, self.kind, payload, publication.offset, key)
        if batched:
            self.pending.append((publication.offset, payload))
        return batched

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        raw: bytes | None = None
        wrapped: bytes | None = None
        name, key = self.stream.name, self.stream.key
        for conn in list(self.conns):
            if not conn.batched:
                continue
            if conn.fast:
                if conn.combined:
                    if wrapped is None:
                        wrapped = frame(batch([combined(self.name, p) for _, p in pending]))
                    conn.write(wrapped)
                else:
                    if raw is None:
                        raw = frame(batch([p for _, p in pending]))
                    conn.write(raw)
            else:
                for offset, payload in pending:
                    conn.push(name, self.kind, payload, offset, key)


class Hub:
    """Every live connection of this gateway and the streams and users they follow."""

    def __init__(self) -> None:
        self.subscriber: Subscriber | None = None
        self.listeners_changed: Callable[[], Awaitable[Any]] | None = None
        """Tells the engine that the users followed here changed (``keys.LISTENERS_VERSION``)."""
        self.channels: dict[bytes, dict[str, StreamFollowers]] = {}
        self.users: dict[str, dict[Follower, str]] = {}
        """User -> the connections that follow the user's data stream, with the listen key."""
        self.conns: dict[Follower, None] = {}
        self.per_ip: dict[str, int] = {}
        self._unsubscribing: set[asyncio.Task[None]] = set()
        self._user_pending: dict[str, asyncio.Future[None]] = {}
        """Users whose channel subscription is on its way to Redis."""
        self._dirty: dict[StreamFollowers, None] = {}

    # -- connections -------------------------------------------------------------------------------

    def register(self, conn: Follower, ip: str) -> None:
        self.conns[conn] = None
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        WS_CONNECTIONS.set(len(self.conns))

    def unregister(self, conn: Follower, ip: str, streams: list[Stream], user: str | None) -> None:
        if self.conns.pop(conn, 0) == 0:
            return
        count = self.per_ip.get(ip, 1) - 1
        if count > 0:
            self.per_ip[ip] = count
        else:
            self.per_ip.pop(ip, None)
        for stream in streams:
            self.unfollow(conn, stream)
        if user is not None:
            self.unfollow_user(conn, user)
        WS_CONNECTIONS.set(len(self.conns))

    def connections_of(self, ip: str) -> int:
        return self.per_ip.get(ip, 0)

    # -- streams -----------------------------------------------------------------------------------

    async def follow(self, conn: Follower, stream: Stream) -> None:
        """Deliver ``stream`` to ``conn``; following it again changes nothing (and counts nothing:
        :meth:`unfollow` takes it off once)."""
        channel = keys.md(stream.market, stream.channel).encode()
        while (streams := self.channels.get(channel)) is None:
            streams = self.channels[channel] = {}
            if self.subscriber is None:
                break
            try:
                await self.subscriber.subscribe(channel)
            except BaseException:  # cancelled (the client left) or failed: nobody follows yet
                if not self.channels.get(channel):
                    self.channels.pop(channel, None)
                    self._drop_channel(channel)
                raise
            if self.channels.get(channel) is streams:
                break
            # followers that came meanwhile all left, and took the channel (and its subscription)
            # with them: subscribe again rather than follow a dict the hub no longer holds
        followers = streams.get(stream.name)
        if followers is None:
            followers = streams[stream.name] = StreamFollowers(stream)
        if conn not in followers.conns:
            followers.conns[conn] = None
            WS_SUBSCRIPTIONS.inc()

    def unfollow(self, conn: Follower, stream: Stream) -> None:
        channel = keys.md(stream.market, stream.channel).encode()
        streams = self.channels.get(channel)
        if streams is None:
            return
        followers = streams.get(stream.name)
        if followers is None or followers.conns.pop(conn, 0) == 0:
            return
        WS_SUBSCRIPTIONS.dec()
        if not followers.conns:
            del streams[stream.name]
        if not streams:
            del self.channels[channel]
            self._drop_channel(channel)

    def _drop_channel(self, channel: bytes) -> None:
        if self.subscriber is None:
            return
        task = asyncio.get_running_loop().create_task(self._unsubscribe_later(channel))
        self._unsubscribing.add(task)
        task.add_done_callback(self._unsubscribing.discard)

    async def _unsubscribe_later(self, channel: bytes) -> None:
        if channel not in self.channels and self.subscriber is not None:
            await self.subscriber.unsubscribe(channel)

    # -- users -------------------------------------------------------------------------------------

    async def follow_user(self, conn: Follower, user: str, listen_key: str) -> None:
        """Deliver ``user``'s data to ``conn``; returns once Redis has the subscription, so that the
        engine, which renders user data only for subscribed users, sends the next change (also when
        another connection's subscription to the same user is still on its way)."""
        while True:
            conns = self.users.get(user)
            if conns is None:
                conns = self.users[user] = {}
                if self.subscriber is not None:
                    pending = self._user_pending[user] = asyncio.get_running_loop().create_future()
                    try:
                        await self.subscriber.subscribe_plain(keys.user_channel(user).encode())
                        if self.listeners_changed is not None:
                            await self.listeners_changed()
                    except BaseException:
                        if not self.users.get(user):
                            self.users.pop(user, None)  # the next follower subscribes again
                            self._schedule_unsubscribe(user)  # in case Redis got the request
                        raise
                    finally:
                        self._user_pending.pop(user, None)
                        pending.set_result(None)
            waiting = self._user_pending.get(user)
            if waiting is None:
                break
            await asyncio.shield(waiting)
        conns[conn] = listen_key

    def unfollow_user(self, conn: Follower, user: str) -> None:
        conns = self.users.get(user)
        if conns is None:
            return
        conns.pop(conn, None)
        if not conns and user not in self._user_pending:
            del self.users[user]
            self._schedule_unsubscribe(user)

    def _schedule_unsubscribe(self, user: str) -> None:
        if self.subscriber is not None:
            task = asyncio.get_running_loop().create_task(self._unsubscribe_user_later(user))
            self._unsubscribing.add(task)
            task.add_done_callback(self._unsubscribing.discard)

    async def _unsubscribe_user_later(self, user: str) -> None:
        if user not in self.users and self.subscriber is not None:  # not followed again meanwhile
            await self.subscriber.unsubscribe(keys.user_channel(user).encode())
            if self.listeners_changed is not None:
                with contextlib.suppress(Exception):  # only spares the engine some rendering
                    await self.listeners_changed()

    # -- delivery (called by the subscriber) ----------------------------------------------------------

    def deliver(self, channel: bytes, publication: Publication) -> None:
        streams = self.channels.get(channel)
        if not streams:
            return
        started = time.perf_counter()
        sent = 0
        for followers in list(streams.values()):
            if followers.send(publication):
                self._dirty[followers] = None
            sent += len(followers.conns)
        _SENT.inc(sent)
        PUBLISH_TO_SEND_SECONDS.observe(time.perf_counter() - started)

    def flush(self) -> None:
        """Write the batched frames of what was delivered since the last flush."""
        dirty, self._dirty = self._dirty, {}
        for followers in dirty:
            followers.flush()

    def reset(self, channel: bytes, reason: str) -> None:
        """The channel lost messages that cannot be recovered: its followers must resnapshot (a
        user's channel: its followers must fetch the account again, see ``user_data_lost``)."""
        prefix = keys.user_channel("").encode()
        if channel.startswith(prefix):
            for conn, stream in list(self.users.get(channel[len(prefix) :].decode(), {}).items()):
                conn.user_data_lost(stream)
            return
        for followers in list(self.channels.get(channel, {}).values()):
            for conn in list(followers.conns):
                conn.resnapshot(followers.stream.name, reason)

    def deliver_user(self, channel: bytes, payload: bytes) -> None:
        """One message of a user's channel: the engine's payloads for the user in one batch, one
        JSON text per line; each goes out as a message of its own, in order."""
        user = channel.decode()[len(keys.user_channel("")) :]
        followers = self.users.get(user)
        if not followers:
            return
        payloads = payload.split(b"\n") if b"\n" in payload else (payload,)
        for conn, listen_key in list(followers.items()):
            for part in payloads:
                conn.push(listen_key, "plain", part, 0)

    def tick(self) -> None:
        """Heartbeats and idle checks, for every connection (called every second or so)."""
        now = time.monotonic()
        deepest = 0
        for conn in list(self.conns):
            conn.tick(now)
            deepest = max(deepest, conn.queued)
        WS_QUEUE_DEPTH_MAX.set(deepest)
