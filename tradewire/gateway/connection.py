"""One WebSocket connection: websockets' sans-I/O protocol under a thin asyncio shell.

uvicorn parses HTTP; when a request asks for a WebSocket upgrade it hands the transport to this
protocol class (``uvicorn.Config(ws=Connection)``). From there the connection is ours: the
handshake, the control frames (``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` /
``SET_PROPERTY`` / ``GET_PROPERTY``) and the heartbeats go through ``websockets.server.ServerProtocol``
(parsing, validation, close handshake), while market data is written as frames that the hub built
once for all subscribers (``tradewire.gateway.frames``). ASGI is not in that path: a per-message
``await send({...})`` would cost more than everything else together.

Backpressure: the transport signals ``pause_writing`` when its buffer passes ``Limits.send_buffer``;
the connection then leaves the hub's fast path and queues into its bounded, conflating backlog
(``tradewire.gateway.backlog``) until ``resume_writing``; past ``Limits.backlog_bytes`` it is closed
with code 4000. Nothing a slow client does makes the hub, or any other client, wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any, Final, cast
from urllib.parse import parse_qs, unquote

import orjson
import structlog
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import SEND_EOF
from websockets.server import ServerProtocol

from tradewire.gateway import wsapi
from tradewire.gateway.backlog import Backlog, Kind
from tradewire.gateway.frames import batch, combined, frame
from tradewire.gateway.params import folded
from tradewire.gateway.proxies import client_address, trusted_proxies
from tradewire.gateway.resume import resume_plan
from tradewire.gateway.sessions import stream_terminated
from tradewire.gateway.streams import (
    Stream,
    StreamError,
    is_stream_name,
    parse_streams,
)
from tradewire.ops.logging import DISCONNECT, audit_log
from tradewire.ops.metrics import RATE_LIMIT_HITS, WS_DISCONNECTS, WS_MESSAGES

log = structlog.get_logger("tradewire.gateway.ws")

CLOSE_SLOW: Final = 4000
CLOSE_IDLE: Final = 4001
CLOSE_RATE: Final = 1008
_SUBSCRIPTION: Final = "\x00"
"""Prefix of the stream name a WebSocket API user data subscription is pushed under."""
MAX_REQUESTS_IN_FLIGHT: Final = 1024
"""WebSocket API requests one connection may have unanswered; past it the gateway stops reading
from it until half are answered (TCP then holds the client back)."""
CLOSE_INVALID_DATA: Final = 1007
USER_DATA_LOST: Final = "user data interrupted: reconnect and fetch the account"
PROPERTIES: Final = ("combined", "batch")
CLOSE_LABELS: Final = frozenset({1000, 1001, 1006, 1007, 1008, 1009, 1011, CLOSE_SLOW, CLOSE_IDLE})
_CONFLATED = WS_MESSAGES.labels("conflated")
_DROPPED = WS_MESSAGES.labels("dropped")


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _is_utf8(data: bytes) -> bool:
    """websockets' sans-I/O protocol leaves text messages undecoded: checking them is ours."""
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes ``"²"``, which ``int()`` refuses."""
    return text.isascii() and text.isdigit()


def _property_error(params: list[Any], setting: bool) -> tuple[int, str] | None:
    """What is wrong with ``SET_PROPERTY``/``GET_PROPERTY`` params, with Binance's codes: 2 for a
    malformed request, 0 for an unknown property, 1 for a value that is not a boolean."""
    if not params or not isinstance(params[0], str):
        return 2, "Invalid request: property name must be a string"
    if len(params) > (2 if setting else 1):
        return 2, "Invalid request: too many parameters"
    if params[0] not in PROPERTIES:
        return 0, f"Unknown property: the properties are {', '.join(PROPERTIES)}"
    if setting and (len(params) < 2 or not isinstance(params[1], bool)):
        return 1, "Invalid value type: expected Boolean"
    return None


def _count(streams: list[Stream]) -> int:
    """Streams as the client counts them: an all-market stream is one."""
    return len({stream.group for stream in streams})


def _each_once(streams: list[Stream]) -> list[Stream]:
    """Each stream once, under the name first written for it (see ``Stream.key``)."""
    first: dict[str, Stream] = {}
    for stream in streams:
        first.setdefault(stream.key, stream)
    return list(first.values())


def error_reply(code: int, msg: str, request_id: Any = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": request_id})


class Connection(asyncio.Protocol):
    """A WebSocket client of the gateway; uvicorn creates one per upgrade request."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], **_: Any) -> None:
        self.gateway: Any = app_state["gateway"]
        self.hub = self.gateway.hub
        self.limits = self.gateway.limits
        self.server_state = server_state
        self.proto = ServerProtocol(max_size=self.limits.max_frame)
        self.trusted = trusted_proxies(config)
        self.transport: asyncio.Transport | None = None
        self.write: Any = None
        self.ip = "-"
        self.fast = False
        self.combined = False
        self.batched = False
        self.api = False
        """A WebSocket API connection (``/ws-api/v3``): requests and answers, no streams."""
        self.subscriptions: dict[int, tuple[str, set[str]]] = {}
        """WebSocket API user data subscriptions: id -> the user followed and the API keys that asked
        for it (it ends when the last of them is revoked)."""
        self._next_subscription = 0
        self._revoked_on_the_way: dict[int, bool] = {}
        """Subscriptions still being made -> whether their key was revoked meanwhile (refused) rather
        than the subscription stopped by the client (made, then stopped: answered with its id)."""
        self._session_methods: dict[str, Any] | None = None
        self._requests = 0
        """WebSocket API requests not answered yet; reading stops at ``MAX_REQUESTS_IN_FLIGHT``."""
        self._reading_paused = False
        self.paused = False
        self.closing = False
        self.opened = False
        self.registered = False
        self.streams: dict[str, Stream] = {}
        """The streams followed, by ``Stream.key``: ``BTCUSDT@depth`` after ``btcusdt@depth`` is the
        same stream, followed once and listed under the name first written."""
        self.catching: dict[str, list[tuple[int, Kind, bytes]]] = {}
        self.backlog = Backlog(self.limits.backlog_bytes)
        self.batch: list[bytes] = []
        self.user: str | None = None
        self.listen_key: str | None = None
        self.listen_key_creator: str | None = None
        self._bare: str | None = None
        """The listen key whose messages go out unwrapped, also after its stream ended (queued ones)."""
        self._close_when_drained: str | None = None
        """A reason to close with once the messages queued for this client are written."""
        self.unanswered_since: float | None = None
        """When the oldest ping not answered yet went out."""
        self.last_seen = time.monotonic()
        self.rate = self.gateway.message_rate()
        self._control_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._fragments: list[bytes] = []
        self._text = False
        """The message being received is a text message (its first frame was TEXT)."""

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport = transport
        self.write = transport.write
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if isinstance(peer, tuple) and peer else "-"
        self.server_state.connections.add(self)
        transport.set_write_buffer_limits(high=self.limits.send_buffer, low=self.limits.send_buffer // 4)
        sock = transport.get_extra_info("socket")
        if self.limits.socket_send_buffer and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.socket_send_buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.fast = False
        self.closing = True
        if self.registered:
            self.registered = False
            self.opened = False
            self.hub.unregister(self, self.ip, list(self.streams.values()), self.user)
            for user, _ in self.subscriptions.values():
                self.hub.unfollow_user(self, user)
            self.subscriptions.clear()
            received = self.proto.close_rcvd
            sent = self.proto.close_sent
            code = received.code if received is not None else (sent.code if sent is not None else 1006)
            WS_DISCONNECTS.labels(str(code) if code in CLOSE_LABELS else "other").inc()
            audit_log(DISCONNECT, ip=self.ip, code=code, by="client" if received is not None and sent is None
                      else "gateway", streams=len(self.streams), user=self.user or "-")  # fmt: skip
        for task in self._tasks:
            task.cancel()

    @property
    def queued(self) -> int:
        """Bytes waiting for this client: the transport's buffer and the backlog."""
        buffered = self.transport.get_write_buffer_size() if self.transport is not None else 0
        return int(buffered) + self.backlog.size

    def pause_writing(self) -> None:
        self.paused = True
        self.fast = False

    def resume_writing(self) -> None:
        self.paused = False
        if self.closing:
            return
        pending = self.backlog.drain(self.wrap)
        if pending:
            if self.batched:
                self.write(frame(batch(pending)))
            else:
                for message in pending:
                    self.write(frame(message))
        if self._close_when_drained is not None:
            self.close(1000, self._close_when_drained)
            return
        self._update_fast()

    def data_received(self, data: bytes) -> None:
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Request):
                self._spawn(self._open(event))
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush_protocol()

    def shutdown(self) -> None:
        """uvicorn's shutdown hook: going away."""
        self.close(1001, "server shutting down")

    # -- sending -------------------------------------------------------------------------------------

    def _flush_protocol(self) -> None:
        out = self.proto.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))
            if SEND_EOF in out:
                self._end_stream(self.transport)

    def _end_stream(self, transport: asyncio.Transport) -> None:
        """The protocol ended the stream: it echoed the client's close, got the answer to ours, or
        failed the connection itself (1009, 1007, 1002 ...). Nothing more goes out after its close
        frame. Once the client's close is in, TCP is closed; before (a failure), only our side is
        (FIN after the close frame): closing the socket while the client may still be sending makes
        the kernel reset the connection and the client lose our close frame and its reason. A client
        that never closes its side is aborted after 2 s."""
        already = self.closing
        self.closing = True
        self.fast = False
        if self.proto.close_rcvd is not None:
            transport.close()
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
        if not already:  # ``close()`` set the timer when it was us
            asyncio.get_running_loop().call_later(2.0, transport.abort)

    def _update_fast(self) -> None:
        self.fast = self.opened and not (self.paused or self.catching or self.closing)

    def wrap(self, stream: str, payload: bytes) -> bytes:
        if stream[:1] == _SUBSCRIPTION:
            return wsapi.subscription_event(int(stream[1:]), payload)
        if not self.combined or not stream or stream == self._bare:
            return payload
        return combined(stream.encode(), payload)

    def push(self, stream: str, kind: Kind, payload: bytes, offset: int, key: str | None = None) -> None:
        """A message that could not take the fast path: catching up, paused or batched. ``key``
        (``Stream.key``; default ``stream``) is what a paused connection's queue merges it by."""
        if self.closing:
            return
        if not self.opened:  # before the 101: held until the handshake answer is written
            self.catching.setdefault(stream, []).append((offset, kind, payload))
            return
        buffered = self.catching.get(stream)
        if buffered is not None:
            buffered.append((offset, kind, payload))
            return
        if self.paused:
            before = self.backlog.conflated
            if not self.backlog.add(stream, kind, payload, key):
                _DROPPED.inc()
                log.info("slow consumer closed", ip=self.ip, backlog=self.backlog.size)
                self.close(CLOSE_SLOW, "slow consumer: fell too far behind; reconnect and resnapshot")
            elif self.backlog.conflated != before:
                _CONFLATED.inc()
            return
        message = self.wrap(stream, payload)
        if self.batched:
            if not self.batch:
                asyncio.get_running_loop().call_soon(self._flush_batch)
            self.batch.append(message)
        else:
            self.write(frame(message))

    def _flush_batch(self) -> None:
        messages, self.batch = self.batch, []
        if messages and not self.closing:
            if self.paused:
                for message in messages:
                    self.backlog.add("", "plain", message)
            else:
                self.write(frame(batch(messages)))

    def reply(self, payload: bytes) -> None:
        self.push("", "plain", payload, 0)

    def resnapshot(self, stream: str, reason: str) -> None:
        s = next((s for s in self.streams.values() if s.name == stream), None)
        symbol = s.market.replace("-", "") if s is not None else ""
        payload = orjson.dumps(
            {"e": "resnapshot", "E": int(time.time() * 1000), "s": symbol, "stream": stream, "reason": reason}
        )
        self.push(stream, "plain", payload, 0)

    def close(self, code: int, reason: str) -> None:
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.fast = False
        with contextlib.suppress(Exception):
            self.proto.send_close(code, reason)
        self._flush_protocol()
        transport = self.transport
        asyncio.get_running_loop().call_later(2.0, transport.abort)

    def tick(self, now: float) -> None:
        if self.closing or not self.opened:
            return
        unanswered = self.unanswered_since
        if unanswered is not None and now - unanswered >= self.limits.pong_timeout:
            log.info("keepalive timeout", ip=self.ip)
            self.close(1011, "keepalive ping timeout")
            return
        idle = not (self.streams or self.api) and self.user is None
        if idle and now - self.last_seen > self.limits.idle_timeout:
            self.close(CLOSE_IDLE, "idle: no subscription")
            return
        if unanswered is None:
            self.unanswered_since = now
        self.proto.send_ping(b"tw")
        self._flush_protocol()

    # -- opening -------------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reject(self, status: int, text: str) -> None:
        log.info("websocket refused", ip=self.ip, status=status, reason=text)
        try:
            self.proto.send_response(self.proto.reject(status, text + "\n"))
            self._flush_protocol()
        finally:
            if self.transport is not None:
                self.transport.close()

    async def _open(self, request: Request) -> None:
        """The opening handshake. Whatever fails in it, the client gets an answer (500, or 1011 once
        the 101 is out) and the connection is let go: a handshake left hanging would hold a socket
        that no ping, idle timeout or per-IP count ever reaches."""
        try:
            await self._handshake(request)
        except Exception:
            log.exception("websocket handshake failed", ip=self.ip, path=request.path)
            if self.opened:
                self.close(1011, "internal error")
            else:
                self._reject(500, "internal error")

    async def _handshake(self, request: Request) -> None:
        self.ip = client_address(self.ip, request.headers.get("X-Forwarded-For"), self.trusted)
        if self.hub.connections_of(self.ip) >= self.limits.connections_per_ip:
            RATE_LIMIT_HITS.labels("connections_per_ip").inc()
            self._reject(429, f"too many connections from {self.ip}")
            return
        raw_path, _, query = request.path.partition("?")
        parsed = parse_qs(query, keep_blank_values=True)
        repeated = next((name for name, values in parsed.items() if len(values) > 1), None)
        if repeated is not None:  # which one counts? Followed silently, the other would be lost
            self._reject(400, f"query parameter {repeated!r} given more than once")
            return
        # an empty value is no value, as in REST's parameters (``?since=`` on a first connect)
        params = {name: values[0] for name, values in parsed.items() if values[0]}
        segments = [unquote(s) for s in raw_path.split("/") if s]
        self.api = segments == ["ws-api", "v3"]
        if not self.api and (not segments or segments[0] not in ("ws", "stream")):
            self._reject(
                404, "not found: WebSocket paths are /ws/<stream>, /ws, /stream?streams=a/b and /ws-api/v3"
            )
            return
        self.combined = segments[0] == "stream"
        if self.api:  # requests and answers only: stream and batch options do not apply
            params = {}
        unit = params.get("timeUnit")
        if unit is not None and folded(unit) != "MILLISECOND":  # python-binance's TIME_UNIT sends it
            self._reject(400, f"timeUnit {unit!r} is not supported: event times are in milliseconds")
            return
        self.batched = _truthy(params.get("batch", ""))
        path = [] if self.api else segments[1:]
        listed = [s for s in params.get("streams", "").split("/") if s]
        names = [s for s in path + listed if is_stream_name(s)]
        # Listen keys: in the path their events come bare (``/ws/<key>``); listed in ``streams=``
        # they come wrapped as the market streams do (Binance's ``/stream?streams=<key>``).
        keys = [(s, True) for s in path if not is_stream_name(s) and not _is_number(s)]
        keys += [(s, False) for s in listed if not is_stream_name(s)]
        if len({key for key, _ in keys}) > 1:
            self._reject(400, "one listen key per connection")
            return
        try:
            streams = self._parse(names)
        except StreamError as exc:
            self._reject(400, str(exc))
            return
        if _count(streams) > self.limits.streams_per_connection:
            self._reject(400, f"too many streams: at most {self.limits.streams_per_connection}")
            return
        since = params.get("since")
        if since is not None:  # dropped, the client would take live messages for a resumed stream
            if not _is_number(since):
                self._reject(
                    400, f"since must be a whole number >= 0 (the last u or trade id seen), not {since!r}"
                )
                return
            if not any(stream.channel in ("depth", "trade") for stream in streams):
                self._reject(400, "since: only @depth, @trade and @aggTrade resume, and none is named")
                return
        for candidate, bare in keys[:1]:
            owner = await self.gateway.listen_key_owner(candidate)
            if owner is None:
                self._reject(400, "invalid listen key")
                return
            self.user, self.listen_key, self.listen_key_creator = owner.user, candidate, owner.creator
            self._bare = candidate if bare else None
        if self.transport is None or self.transport.is_closing():
            return
        # Follow everything before answering 101: once the client sees the handshake complete, its
        # streams are live in Redis. What arrives meanwhile waits in the catch-up buffers.
        self.registered = True
        self.hub.register(self, self.ip)
        for stream in streams:
            self.streams[stream.key] = stream
            self.catching[stream.name] = []
        for stream in streams:
            await self.hub.follow(self, stream)
        user, listen_key = self.user, self.listen_key
        if user is not None and listen_key is not None:
            await self.hub.follow_user(self, user, listen_key)
            # Registered, this connection gets every notice from now on; one may have come before,
            # or during the first lookup: look again.
            if self.listen_key == listen_key and await self.gateway.listen_key_owner(listen_key) is None:
                self.end_user_stream(None, "listen key no longer valid")
            if self.listen_key != listen_key:  # ended while opening: refused, as it would be now
                self.hub.unfollow_user(self, user)
                self.catching.pop(listen_key, None)
                if not streams:
                    self._reject(400, "invalid listen key")
                    return
        if self.transport.is_closing():
            return
        self.proto.send_response(self.proto.accept(request))
        self._flush_protocol()
        self.opened = True
        for offset, kind, payload in self.catching.pop(self.listen_key or "", []):
            self.push(self.listen_key or "", kind, payload, offset)
        for stream in streams:
            resume = since is not None and stream.channel in ("depth", "trade")
            await self._catch_up(stream, int(since) if since is not None and resume else None)

    async def _follow(self, stream: Stream, since: int | None) -> None:
        """Follow one more stream on an open connection (``SUBSCRIBE``)."""
        if stream.key in self.streams:
            return
        self.streams[stream.key] = stream
        self.catching[stream.name] = []
        self._update_fast()
        await self.hub.follow(self, stream)
        resume = since is not None and stream.channel in ("depth", "trade")
        await self._catch_up(stream, since if resume else None)

    async def _catch_up(self, stream: Stream, since: int | None) -> None:
        """Send what the stream's catch-up buffer holds (after the missed history when resuming)."""
        try:
            last_offset = 0
            if since is not None:
                history = await self.gateway.history(stream)
                plan = resume_plan(history, since, "u" if stream.is_diff else "t")
                buffered = self.catching.pop(stream.name, [])
                if plan.resnapshot:
                    self.resnapshot(stream.name, "too old" if plan.too_old else "unknown update id")
                kind: Kind = "diff" if stream.is_diff else "plain"
                for payload in plan.messages:
                    self.push(stream.name, kind, stream.shape(payload), 0, stream.key)
                last_offset = plan.last_offset
            else:
                buffered = self.catching.pop(stream.name, [])
            for offset, kind, payload in buffered:
                if offset > last_offset:
                    self.push(stream.name, kind, payload, offset, stream.key)
        finally:
            self.catching.pop(stream.name, None)
            self._update_fast()

    # -- inbound frames ------------------------------------------------------------------------------

    def _on_frame(self, event: Frame) -> None:
        if event.opcode is Opcode.PONG:
            self.unanswered_since = None
            return
        if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self.last_seen = time.monotonic()  # a message: pongs and pings do not end idleness
            if self.closing:  # the close frame is out: no more answers
                return
            if event.opcode is not Opcode.CONT:
                self._text = event.opcode is Opcode.TEXT
            self._fragments.append(bytes(event.data))
            if not event.fin:
                return
            data, self._fragments = b"".join(self._fragments), []
            if self._text and not _is_utf8(data):  # RFC 6455 8.1: fail the connection
                self.proto.fail(CLOSE_INVALID_DATA, "invalid UTF-8 in a text message")
                self._flush_protocol()
                return
            if self.api:  # requests are charged by weight per IP, as on REST
                if self.closing:
                    return
                self._requests += 1
                if self._requests >= MAX_REQUESTS_IN_FLIGHT and not self._reading_paused:
                    self._reading_paused = True  # the client waits; every request it sent is answered
                    if self.transport is not None:
                        self.transport.pause_reading()
                self._spawn(self._api_request(data))
                return
            if not self.rate.allow(time.monotonic()):
                RATE_LIMIT_HITS.labels("ws_messages").inc()
                log.info("websocket message rate exceeded", ip=self.ip)
                self.close(CLOSE_RATE, f"too many messages: at most {self.rate.limit} per second")
                return
            self._spawn(self._control(data))

    async def subscribe_user(self, user: str, api_key: str) -> int | None:
        for subscription, (followed, asked_by) in self.subscriptions.items():
            if followed == user:
                asked_by.add(api_key)
                return subscription
        subscription = self._next_subscription
        self._next_subscription += 1
        self.subscriptions[subscription] = (user, {api_key})
        self._revoked_on_the_way[subscription] = False
        try:
            await self.hub.follow_user(self, user, f"{_SUBSCRIPTION}{subscription}")
        except BaseException:  # not followed: a retry must subscribe again, not find this id
            self.subscriptions.pop(subscription, None)
            self.hub.unfollow_user(self, user)
            raise
        finally:
            revoked = self._revoked_on_the_way.pop(subscription)
        if subscription not in self.subscriptions:  # revoked, or stopped by the client, meanwhile
            if all(followed != user for followed, _ in self.subscriptions.values()):
                self.hub.unfollow_user(self, user)
            return None if revoked else subscription
        return subscription

    def unsubscribe_user(self, subscription: int | None) -> bool:
        chosen = list(self.subscriptions) if subscription is None else [subscription]
        found = False
        for number in chosen:
            followed = self.subscriptions.pop(number, None)
            if followed is not None:
                found = True
                self.hub.unfollow_user(self, followed[0])
        return found

    def user_subscriptions(self) -> list[int]:
        return list(self.subscriptions)

    # -- sessions ended from outside (``tradewire.gateway.sessions``) -------------------------------

    def subscription_keys(self) -> set[str]:
        return {api_key for _, asked_by in self.subscriptions.values() for api_key in asked_by}

    def end_subscriptions(self, api_key: str, event: bytes) -> int:
        ended = []
        for number, (_, asked_by) in self.subscriptions.items():
            asked_by.discard(api_key)
            if not asked_by:
                ended.append(number)
        for number in ended:
            if number in self._revoked_on_the_way:
                self._revoked_on_the_way[number] = True
            self.push(f"{_SUBSCRIPTION}{number}", "plain", event, 0)
            self.unsubscribe_user(number)
        return len(ended)

    def end_user_stream(self, event: bytes | None, reason: str) -> None:
        listen_key, user = self.listen_key, self.user
        if listen_key is None or user is None:
            return
        self.user = self.listen_key = self.listen_key_creator = None
        if not self.opened:  # still opening: ``_open`` sees it and refuses
            return
        if event is not None:
            self.push(listen_key, "plain", event, 0)
        self.hub.unfollow_user(self, user)
        if not self.streams:  # after what is queued for the client: the batch, the backlog
            asyncio.get_running_loop().call_soon(self._close_after_queue, reason)

    def user_data_lost(self, stream: str) -> None:
        """The gateway's subscription to the user's events broke and came back: what was published
        meanwhile is gone, and the client must be told to fetch the account again (what a Binance
        client does after every reconnect). A listen-key stream's connection is closed (1011); a
        WebSocket API subscription ends with ``eventStreamTerminated``, the connection stays."""
        if stream[:1] == _SUBSCRIPTION:
            number = int(stream[1:])
            if number in self.subscriptions:
                self.push(stream, "plain", stream_terminated(int(time.time() * 1000)), 0)
                self.unsubscribe_user(number)
        elif stream == self.listen_key:
            self.close(1011, USER_DATA_LOST)

    def _close_after_queue(self, reason: str) -> None:
        if self.paused:
            self._close_when_drained = reason  # ``resume_writing`` closes
        else:
            self.close(1000, reason)

    async def _api_request(self, data: bytes) -> None:
        if self._session_methods is None:
            self._session_methods = wsapi.session_routes(self)
        try:
            answer = await wsapi.answer(self.gateway, self.ip, data, self._session_methods)
        except Exception:  # every request gets an answer; the connection and the others go on
            log.exception("websocket api request failed", ip=self.ip)
            answer = wsapi.internal_error(data)
        finally:
            self._requests -= 1
            if self._reading_paused and self._requests < MAX_REQUESTS_IN_FLIGHT // 2:
                self._reading_paused = False
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.resume_reading()
        if not self.closing:
            self.reply(answer)

    async def _control(self, data: bytes) -> None:
        async with self._control_lock:
            if self.closing:
                return
            try:
                answer = await self._answer(data)
            except Exception:  # closed, not left half-subscribed: the client reconnects and resubscribes
                log.exception("websocket control frame failed", ip=self.ip)
                self.close(1011, "internal error")
                return
            self.reply(answer)

    async def _answer(self, data: bytes) -> bytes:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return error_reply(3, "Invalid JSON: the message is not valid JSON")
        if not isinstance(message, dict):
            return error_reply(3, "Invalid JSON: expected an object")
        if "id" not in message or not wsapi.valid_request_id(message["id"]):
            return error_reply(2, "Invalid request: request ID must be an unsigned integer")
        request_id = message["id"]
        method = message.get("method")
        params = message.get("params", [])
        if not isinstance(params, list):
            return error_reply(1, "Invalid value type: params must be a list", request_id)
        if not isinstance(method, str):
            return error_reply(1, "Invalid value type: method must be a string", request_id)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and not all(isinstance(name, str) for name in params):
            return error_reply(1, "Invalid value type: params must be stream names (strings)", request_id)
        if method == "SUBSCRIBE":
            return await self._subscribe(params, message.get("since"), request_id)
        if method == "UNSUBSCRIBE":
            for name in params:
                if str(name) == self.listen_key and self.user is not None:
                    self.hub.unfollow_user(self, self.user)
                    self.user = self.listen_key = self.listen_key_creator = None
                    continue
                with contextlib.suppress(StreamError):  # not a stream: not followed either
                    for named in parse_streams(str(name), self.gateway.markets.symbols):
                        stream = self.streams.pop(named.key, None)
                        if stream is not None:
                            self.hub.unfollow(self, stream)
            return orjson.dumps({"result": None, "id": request_id})
        if method == "LIST_SUBSCRIPTIONS":
            names = list(dict.fromkeys(s.name for s in self.streams.values()))  # an all-market one once
            if self.listen_key is not None:
                names.append(self.listen_key)
            return orjson.dumps({"result": names, "id": request_id})
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            refused = _property_error(params, method == "SET_PROPERTY")
            if refused is not None:
                return error_reply(*refused, request_id)
        if method == "SET_PROPERTY":
            if params[0] == "combined":
                self.combined = params[1]
            else:
                self.batched = params[1]
                self._update_fast()
            return orjson.dumps({"result": None, "id": request_id})
        if method == "GET_PROPERTY":
            value = self.combined if params[0] == "combined" else self.batched
            return orjson.dumps({"result": value, "id": request_id})
        return error_reply(2, f"Invalid request: unknown method {method!r}", request_id)

    def _parse(self, names: list[str]) -> list[Stream]:
        symbols = self.gateway.markets.symbols
        return _each_once([stream for name in names for stream in parse_streams(name, symbols)])

    async def _subscribe(self, params: list[Any], since: Any, request_id: Any) -> bytes:
        names = [str(name) for name in params]
        listen_keys = list(dict.fromkeys(name for name in names if not is_stream_name(name)))
        if len(listen_keys) > 1 or (listen_keys and self.listen_key not in (None, listen_keys[0])):
            return error_reply(2, "Invalid request: one listen key per connection", request_id)
        try:
            streams = self._parse([name for name in names if is_stream_name(name)])
        except StreamError as exc:
            return error_reply(2, f"Invalid request: {exc}", request_id)
        new = [s for s in streams if s.key not in self.streams]
        if _count([*self.streams.values(), *new]) > self.limits.streams_per_connection:
            RATE_LIMIT_HITS.labels("streams_per_connection").inc()
            return error_reply(
                4,
                f"Too many streams: at most {self.limits.streams_per_connection} per connection",
                request_id,
            )
        try:
            resume = self._resume_points(since, streams, new)
        except StreamError as exc:
            return error_reply(2, f"Invalid request: {exc}", request_id)
        if listen_keys and self.listen_key is None and not await self._follow_listen_key(listen_keys[0]):
            return error_reply(2, f"Invalid request: invalid listen key {listen_keys[0]!r}", request_id)
        for stream in new:
            await self._follow(stream, resume.get(stream.key))
        return orjson.dumps({"result": None, "id": request_id})

    async def _follow_listen_key(self, listen_key: str) -> bool:
        """A listen key subscribed to by frame, as Binance's connectors do (``SUBSCRIBE [<key>]``):
        its events come as the connection's market streams do, wrapped on ``/stream``."""
        owner = await self.gateway.listen_key_owner(listen_key)
        if owner is None or self.closing or self.listen_key is not None:
            return False
        self.user, self.listen_key, self.listen_key_creator = owner.user, listen_key, owner.creator
        await self.hub.follow_user(self, owner.user, listen_key)
        # following, this connection gets every notice from now on; one may have come just before
        if self.listen_key == listen_key and await self.gateway.listen_key_owner(listen_key) is None:
            self.hub.unfollow_user(self, owner.user)
            self.user = self.listen_key = self.listen_key_creator = None
            return False
        return self.listen_key == listen_key

    def _resume_points(self, since: Any, streams: list[Stream], new: list[Stream]) -> dict[str, int]:
        """``since`` of a SUBSCRIBE as ``Stream.key -> last id``, its names read as stream names
        (``BTCUSDT@depth`` is ``btcusdt@depth``); :class:`StreamError` for anything it cannot be: a
        resume point silently dropped would leave a gap that ``@trade`` has no ``pu`` to show."""
        if since is None:
            return {}
        if not isinstance(since, dict):
            raise StreamError("'since' must be an object: stream name -> the last update or trade id seen")
        requested = {stream.key for stream in streams}
        fresh = {stream.key for stream in new}
        points: dict[str, int] = {}
        for name, value in since.items():
            if type(value) is not int or value < 0:  # not True: 1
                raise StreamError(f"'since' of {name!r} must be a whole number >= 0, not {value!r}")
            for stream in self._parse([name]):
                if stream.channel not in ("depth", "trade"):
                    raise StreamError(f"'since' names {name!r}: only @depth, @trade and @aggTrade resume")
                if stream.key not in requested:
                    raise StreamError(f"'since' names {name!r}, which this request does not subscribe to")
                if stream.key not in fresh:
                    raise StreamError(f"'since' names {name!r}, which this connection already follows")
                points[stream.key] = value
        return points
