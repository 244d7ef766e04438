"""Subscribing to market-data channels without missing or repeating a message.

Every market-data publication is ``"<offset> <epoch> <payload>"`` (``docs/internals.md``): the
channel's offset counts 1, 2, 3, ... and the epoch names the life of the channel's history. Pub/Sub
itself forgets: a subscriber whose connection drops, or whose Redis buffer overflowed, silently
loses messages. The offsets turn that into something a subscriber can see and repair:

- ``offset == last + 1``: in order, deliver it;
- ``offset <= last``: already delivered (a history read raced the live message), drop it;
- ``offset > last + 1``: a gap; read ``last + 1 .. offset - 1`` from the channel's history stream
  (entry ids ``<offset>-0``) and deliver those first. If the history no longer holds all of them
  (it is capped), the subscriber cannot repair the gap and says so: its clients must resnapshot;
- a different epoch: the history was lost with Redis's data, offsets started again; resnapshot.

:class:`ChannelTracker` is that decision, pure. :class:`Subscriber` is the shell: one Pub/Sub
connection for any number of channels, reconnecting with back-off, and after a reconnect it checks
each channel's offset in ``md:{M}:<stream>:meta`` so that what was published while it was away is
read from the history rather than waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import redis.asyncio
import redis.exceptions

from tradewire.journal.wire import PING_SECONDS, Connection, ReplyError, WireError, ping_every
from tradewire.ops.metrics import REDIS_ERRORS

log = logging.getLogger(__name__)

HISTORY_SUFFIX: Final = b":history"
META_SUFFIX: Final = b":meta"
CONFIRM_SECONDS: Final = 5.0
GROUP: Final = 256
"""Messages read without waiting before ``on_flush`` is called (batched delivery, bounded latency)."""


class Verdict(Enum):
    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    GAP = "gap"
    NEW_EPOCH = "new_epoch"


@dataclass(frozen=True, slots=True)
class Publication:
    """One market-data message: its channel offset, the channel's epoch and the payload bytes."""

    offset: int
    epoch: bytes
    payload: bytes


def split_publication(message: bytes) -> Publication:
    """Split ``"<offset> <epoch> <payload>"``; raises ``ValueError`` for anything else."""
    head, sep, rest = message.partition(b" ")
    epoch, sep2, payload = rest.partition(b" ")
    if not sep or not sep2 or not head.isdigit() or not epoch:
        raise ValueError(f"not a market-data publication: {message[:60]!r}")
    return Publication(int(head), epoch, payload)


class ChannelTracker:
    """Where one channel stands: the last offset delivered and its epoch (None before the first)."""

    __slots__ = ("epoch", "offset")

    def __init__(self, offset: int | None = None, epoch: bytes | None = None) -> None:
        self.offset = offset
        self.epoch = epoch

    def judge(self, offset: int, epoch: bytes) -> Verdict:
        """What to do with a message at ``offset`` of ``epoch`` (the tracker does not move)."""
        if self.offset is None or self.epoch is None:
            return Verdict.DELIVER
        if epoch != self.epoch:
            return Verdict.NEW_EPOCH
        if offset <= self.offset:
            return Verdict.DUPLICATE
        if offset == self.offset + 1:
            return Verdict.DELIVER
        return Verdict.GAP

    def advance(self, offset: int, epoch: bytes) -> None:
        self.offset = offset
        self.epoch = epoch


def history_key(channel: bytes) -> bytes:
    return channel + HISTORY_SUFFIX


def meta_key(channel: bytes) -> bytes:
    return channel + META_SUFFIX


def history_entries(entries: list[Any]) -> list[tuple[int, bytes]]:
    """``XRANGE`` results of a history stream as ``(offset, message)`` pairs."""
    out: list[tuple[int, bytes]] = []
    for entry_id, fields in entries:
        raw_id = entry_id if isinstance(entry_id, bytes) else str(entry_id).encode()
        offset = int(raw_id.split(b"-", 1)[0])
        message = fields.get(b"m") if isinstance(fields, dict) else None
        if message is not None:
            out.append((offset, message))
    return out


async def read_history(
    client: redis.asyncio.Redis, channel: bytes, first: int, last: int | None = None
) -> list[tuple[int, Publication]]:
    """The publications of ``channel`` from offset ``first`` to ``last`` (or the newest)."""
    end = b"+" if last is None else f"{last}-0".encode()
    raw: Any = await client.xrange(history_key(channel), f"{first}-0".encode(), end)
    out: list[tuple[int, Publication]] = []
    for offset, message in history_entries(raw):
        try:
            out.append((offset, split_publication(message)))
        except ValueError:
            continue
    return out


async def _next_message(conn: Connection, timeout: float) -> list[Any] | ReplyError:
    """The next message pushed to a subscribed connection; an error reply is returned, not raised."""
    try:
        message: list[Any] = await conn.reply(timeout=timeout)
    except ReplyError as refused:
        return refused
    return message


OnMessage = Callable[[bytes, Publication], None]
"""Called with the channel and each publication, in offset order, exactly once per offset."""
OnReset = Callable[[bytes, str], None]
"""Called with the channel and a reason when a gap cannot be filled: subscribers must resnapshot.
A plain channel has no history: every reconnect is such a gap (reason :data:`RECONNECTED`)."""
RECONNECTED: Final = "reconnected"


class Subscriber:
    """One Pub/Sub connection delivering any number of market-data channels gap-free.

    Plain channels (``tw:user:<user>``), which carry no offsets, are delivered as they come through
    ``on_plain``. Channels may be added and removed while running.

    The subscription itself is a bare RESP connection to ``url`` (``journal.wire``): every order
    makes a few messages, and redis-py's ``get_message`` cost about 55 us of CPU more per message
    read as it came. ``client`` reads the histories and offsets, which only a gap or a reconnect
    needs.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        url: str,
        on_message: OnMessage,
        on_reset: OnReset,
        on_plain: Callable[[bytes, bytes], None] | None = None,
        on_flush: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._url = url
        self._on_flush = on_flush
        self._on_message = on_message
        self._on_reset = on_reset
        self._on_plain = on_plain
        self._trackers: dict[bytes, ChannelTracker] = {}
        self._confirmations: dict[bytes, asyncio.Event] = {}
        self._plain: set[bytes] = set()
        self._pubsub: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def tracker(self, channel: bytes) -> ChannelTracker | None:
        return self._trackers.get(channel)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tradewire-subscriber")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 10.0)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close_pubsub()

    async def subscribe(self, channel: bytes) -> None:
        """Follow a market-data channel (idempotent); returns once Redis confirmed the subscription."""
        if channel in self._trackers:
            return
        self._trackers[channel] = ChannelTracker()
        await self._subscribe(channel)

    async def subscribe_plain(self, channel: bytes) -> None:
        if channel in self._plain:
            return
        self._plain.add(channel)
        await self._subscribe(channel)

    async def _subscribe(self, channel: bytes) -> None:
        conn = self._pubsub
        if conn is not None and self.connected:
            confirmed = self._confirmations.setdefault(channel, asyncio.Event())
            try:
                conn.send_now((b"SUBSCRIBE", channel))  # the read loop sees the confirmation
            except WireError:
                self._connected.clear()  # broken, and _run has not seen it yet: wait for it below
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(confirmed.wait(), CONFIRM_SECONDS)
                if not confirmed.is_set() and self._confirmations.get(channel) is confirmed:
                    del self._confirmations[channel]  # refused or lost: no event kept per channel
                return
        # (re)connecting: _run subscribes to every followed channel, this one included, before it
        # says it is connected
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), CONFIRM_SECONDS)

    async def unsubscribe(self, channel: bytes) -> None:
        found = self._trackers.pop(channel, None) is not None
        if channel in self._plain:
            self._plain.discard(channel)
            found = True
        if found and self._pubsub is not None:  # connected or still subscribing (_subscribe_all)
            with contextlib.suppress(WireError):
                self._pubsub.send_now((b"UNSUBSCRIBE", channel))

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.close()

    async def _run(self) -> None:
        delay = 0.05
        lost: set[bytes] = set()
        """The plain channels followed when the last connection broke: what they carried meanwhile is gone."""
        while not self._stopping:
            try:
                self._pubsub = conn = await Connection.open(
                    self._url, timeout=CONFIRM_SECONDS, name="tradewire-gateway-subscriber"
                )
                await self._subscribe_all(conn)
                self._connected.set()
                for channel in lost & self._plain:
                    self._on_reset(channel, RECONNECTED)
                lost = set()
                await self._catch_up_all()
                if self._on_flush is not None:
                    self._on_flush()
                delay = 0.05
                await self._read_loop(conn)
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.RedisError, OSError, WireError) as exc:
                REDIS_ERRORS.labels("gateway", type(exc).__name__).inc()
                log.warning("pubsub connection lost (%s); reconnecting in %.2fs", exc, delay)
            if self._connected.is_set():
                lost = set(self._plain)
            self._connected.clear()
            await self._close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _subscribe_all(self, conn: Connection) -> None:
        """Subscribe a new connection to every followed channel and wait for Redis's answers, so
        that the offsets read next miss nothing published after them; channels followed meanwhile
        are subscribed too. One ``SUBSCRIBE`` per channel: a channel Redis refuses (an ACL
        ``NOPERM``) is logged and left out, the others still work."""
        pending = [b"tw:gateway:idle", *self._trackers, *self._plain]  # idle: subscribed mode always
        done: set[bytes] = set()
        while pending:
            for channel in pending:
                conn.send_now((b"SUBSCRIBE", channel))
            answered = 0
            while answered < len(pending):  # publications on channels already confirmed come too
                message = await _next_message(conn, CONFIRM_SECONDS)
                if isinstance(message, ReplyError) or message[0] == b"subscribe":
                    answered += 1
                await self._handle(message)
            done.update(pending)
            pending = [channel for channel in (*self._trackers, *self._plain) if channel not in done]

    async def _read_loop(self, conn: Connection) -> None:
        """Deliver messages in groups: what has arrived is read without waiting, then ``on_flush``.
        A ``PING`` every :data:`PING_SECONDS` keeps something coming on a quiet connection; nothing
        heard for three times that, it is taken for dead (a silently dropped TCP path) and reopened."""
        pinger = asyncio.create_task(ping_every(conn))
        try:
            while True:
                message: list[Any] | ReplyError | None = await _next_message(conn, 3 * PING_SECONDS)
                count = 0
                while message is not None and count < GROUP:
                    await self._handle(message)
                    count += 1
                    message = conn.pushed() if count < GROUP else None
                if self._on_flush is not None:
                    self._on_flush()
        finally:
            pinger.cancel()

    async def _handle(self, message: list[Any] | ReplyError) -> None:
        """One message of the subscribed connection: ``[kind, channel, data]`` (RESP2), or Redis's
        refusal of a ``SUBSCRIBE`` (whose waiter then gives up after :data:`CONFIRM_SECONDS`)."""
        if isinstance(message, ReplyError):
            REDIS_ERRORS.labels("gateway", "subscribe_refused").inc()
            log.warning("redis refused a subscription: %s", message)
            return
        kind = message[0]
        if kind == b"subscribe":
            confirmed = self._confirmations.pop(message[1], None)
            if confirmed is not None:
                confirmed.set()
            return
        if kind != b"message":
            return  # unsubscribe confirmations, pongs
        channel: bytes = message[1]
        data: bytes = message[2]
        if channel in self._plain:
            if self._on_plain is not None:
                self._on_plain(channel, data)
            return
        tracker = self._trackers.get(channel)
        if tracker is None:
            return
        try:
            publication = split_publication(data)
        except ValueError:
            log.warning("dropping a malformed publication on %r", channel)
            return
        await self._accept(channel, tracker, publication)

    async def _accept(self, channel: bytes, tracker: ChannelTracker, publication: Publication) -> None:
        verdict = tracker.judge(publication.offset, publication.epoch)
        if verdict is Verdict.DUPLICATE:
            return
        if verdict is Verdict.NEW_EPOCH:
            tracker.advance(publication.offset, publication.epoch)
            self._on_reset(channel, "epoch")
            self._on_message(channel, publication)
            return
        if verdict is Verdict.GAP:
            assert tracker.offset is not None
            if not await self._fill(channel, tracker, publication.offset - 1):
                tracker.advance(publication.offset, publication.epoch)
                self._on_reset(channel, "gap")
                self._on_message(channel, publication)
                return
            if tracker.judge(publication.offset, publication.epoch) is not Verdict.DELIVER:
                return
        tracker.advance(publication.offset, publication.epoch)
        self._on_message(channel, publication)

    async def _fill(self, channel: bytes, tracker: ChannelTracker, last: int | None) -> bool:
        """Deliver ``tracker.offset + 1 .. last`` from the history; False if it cannot."""
        assert tracker.offset is not None
        first = tracker.offset + 1
        entries = await read_history(self._client, channel, first, last)
        expected = first
        for offset, publication in entries:
            if offset != expected or publication.epoch != tracker.epoch:
                return False
            tracker.advance(offset, publication.epoch)
            self._on_message(channel, publication)
            expected += 1
        return last is None or expected == last + 1

    async def _catch_up_all(self) -> None:
        """After (re)subscribing: read what was published on followed channels while away."""
        for channel, tracker in list(self._trackers.items()):
            if tracker.offset is None:
                continue
            meta: Any = await self._client.hmget(meta_key(channel), [b"offset", b"epoch"])
            offset = int(meta[0]) if meta[0] is not None else 0
            epoch = meta[1]
            if epoch is not None and epoch != tracker.epoch:
                tracker.advance(offset, epoch)
                self._on_reset(channel, "epoch")
            elif epoch is not None and offset < tracker.offset:
                # Redis lost its last writes (everysec) and the engine publishing now could not
                # tell: same epoch, offsets gone back. Taken for duplicates, every message up to
                # the old offset would be dropped; the channel starts over from here instead.
                tracker.advance(offset, epoch)
                self._on_reset(channel, "rewound")
            elif offset > tracker.offset and not await self._fill(channel, tracker, offset):
                tracker.advance(offset, tracker.epoch or b"")
                self._on_reset(channel, "gap")
