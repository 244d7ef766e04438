"""The fan-out and one connection's send path, in memory: a fake transport records what is written."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

from tradewire import keys
from tradewire.bus.subscribe import Publication
from tradewire.gateway.connection import CLOSE_SLOW, Connection
from tradewire.gateway.hub import Hub
from tradewire.gateway.limits import Limits, MessageRate
from tradewire.gateway.streams import parse_stream, parse_streams, symbol_table
from tradewire.ops.metrics import WS_SUBSCRIPTIONS

pytestmark = pytest.mark.asyncio
SYMBOLS = symbol_table(["BTC-USDT"])
DEPTH = keys.md("BTC-USDT", "depth").encode()
TRADE = keys.md("BTC-USDT", "trade").encode()


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> Any:
        return ("10.0.0.1", 5555) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def abort(self) -> None:
        self.closed = True

    def messages(self) -> list[Any]:
        """Every text frame's JSON, in order; close frames as ``("close", code)``."""
        reader = StreamReader()
        reader.feed_data(b"".join(self.written))
        out: list[Any] = []
        while True:
            parser = Frame.parse(reader.read_exact, mask=False)
            try:
                next(parser)
                return out
            except StopIteration as done:
                frame: Frame = done.value
            if frame.opcode is Opcode.TEXT:
                out.append(orjson.loads(frame.data))
            elif frame.opcode is Opcode.CLOSE:
                out.append(("close", int.from_bytes(frame.data[:2], "big")))


class FakeGateway:
    def __init__(self, limits: Limits) -> None:
        self.hub = Hub()
        self.limits = limits
        self.markets = SimpleNamespace(symbols=SYMBOLS)

    def message_rate(self) -> MessageRate:
        return MessageRate(self.limits.messages_per_second)


class ServerState:
    def __init__(self) -> None:
        self.connections: set[Any] = set()


async def open_connection(
    limits: Limits, *names: str, combined: bool = False
) -> tuple[Connection, FakeTransport]:
    gateway = FakeGateway(limits)
    conn = Connection(None, ServerState(), {"gateway": gateway})
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.registered = conn.opened = True
    conn.proto.state = State.OPEN  # as after the handshake
    conn.combined = combined
    gateway.hub.register(conn, conn.ip)
    for name in names:
        stream = parse_stream(name, SYMBOLS)
        conn.streams[stream.key] = stream
        await gateway.hub.follow(conn, stream)
    conn._update_fast()
    return conn, transport


def diff(first: int, last: int, bids: list[list[str]]) -> bytes:
    payload = {"e": "depthUpdate", "E": last, "s": "BTCUSDT", "U": first, "u": last, "pu": first - 1}
    return orjson.dumps({**payload, "b": bids, "a": [], "cs": last})


async def test_fast_connection_gets_one_frame_per_publication_combined_when_asked() -> None:
    conn, transport = await open_connection(Limits(), "btcusdt@depth", "btcusdt@trade", combined=True)
    conn.hub.deliver(DEPTH, Publication(1, b"e", diff(1, 1, [["100", "1"]])))
    conn.hub.deliver(TRADE, Publication(1, b"e", b'{"e":"trade","t":1}'))
    assert transport.messages() == [
        {"stream": "btcusdt@depth", "data": orjson.loads(diff(1, 1, [["100", "1"]]))},
        {"stream": "btcusdt@trade", "data": {"e": "trade", "t": 1}},
    ]


async def test_paused_connection_merges_diffs_and_writes_them_on_resume() -> None:
    conn, transport = await open_connection(Limits(), "btcusdt@depth", "btcusdt@trade")
    conn.pause_writing()
    conn.hub.deliver(DEPTH, Publication(1, b"e", diff(1, 1, [["100", "1"]])))
    conn.hub.deliver(TRADE, Publication(1, b"e", b'{"e":"trade","t":1}'))
    conn.hub.deliver(DEPTH, Publication(2, b"e", diff(2, 4, [["100", "0.00000000"], ["99", "2"]])))
    assert transport.written == []
    conn.resume_writing()
    merged, trade = transport.messages()
    assert (merged["U"], merged["u"], merged["pu"], merged["cs"]) == (1, 4, 0, 4)
    assert merged["b"] == [["100", "0.00000000"], ["99", "2"]]
    assert trade == {"e": "trade", "t": 1}
    assert conn.fast


async def test_paused_connection_on_an_all_market_stream_keeps_each_markets_latest_value() -> None:
    """``!bookTicker`` is one name for every market's book ticker: a paused connection's queue merges
    each market's values with that market's only (ETH's used to replace BTC's)."""
    gateway = FakeGateway(Limits())
    conn = Connection(None, ServerState(), {"gateway": gateway})
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.registered = conn.opened = True
    conn.proto.state = State.OPEN
    gateway.hub.register(conn, conn.ip)
    for stream in parse_streams("!bookTicker", symbol_table(["BTC-USDT", "ETH-USDT"])):
        conn.streams[stream.key] = stream
        await gateway.hub.follow(conn, stream)
    conn._update_fast()
    conn.pause_writing()
    for offset, (market, bid) in enumerate([("BTC", "1"), ("BTC", "2"), ("ETH", "3"), ("ETH", "4")], 1):
        channel = keys.md(f"{market}-USDT", "bookTicker").encode()
        conn.hub.deliver(
            channel, Publication(offset, b"e", b'{"s":"%sUSDT","b":"%s"}' % (market.encode(), bid.encode()))
        )
    conn.resume_writing()
    assert transport.messages() == [{"s": "BTCUSDT", "b": "2"}, {"s": "ETHUSDT", "b": "4"}]


async def test_paused_connection_past_its_backlog_is_closed_with_4000() -> None:
    conn, transport = await open_connection(Limits(backlog_bytes=100), "btcusdt@trade")
    conn.pause_writing()
    for t in range(10):
        conn.hub.deliver(TRADE, Publication(t + 1, b"e", b'{"e":"trade","t":%d,"pad":"xxxxxxxx"}' % t))
    assert conn.closing and transport.messages()[-1] == ("close", CLOSE_SLOW)
    before = len(transport.written)
    conn.hub.deliver(TRADE, Publication(99, b"e", b'{"e":"trade","t":99}'))
    assert len(transport.written) == before  # nothing more is queued for a closing connection


async def test_batched_connection_gets_one_array_frame_per_flush() -> None:
    conn, transport = await open_connection(Limits(), "btcusdt@trade")
    other, other_transport = await open_connection(Limits(), "btcusdt@trade")
    conn.batched = True
    for t in range(3):
        conn.hub.deliver(TRADE, Publication(t + 1, b"e", b'{"e":"trade","t":%d}' % t))
    assert transport.written == []
    conn.hub.flush()
    assert transport.messages() == [[{"e": "trade", "t": 0}, {"e": "trade", "t": 1}, {"e": "trade", "t": 2}]]
    assert other_transport.written == [] and other is not conn  # another hub: untouched


async def test_catching_up_connection_buffers_live_messages_in_offset_order() -> None:
    conn, transport = await open_connection(Limits(), "btcusdt@trade")
    conn.catching["btcusdt@trade"] = []
    conn._update_fast()
    conn.hub.deliver(TRADE, Publication(7, b"e", b'{"e":"trade","t":7}'))
    assert transport.written == [] and conn.catching["btcusdt@trade"][0][0] == 7
    for offset, kind, payload in conn.catching.pop("btcusdt@trade"):
        conn.push("btcusdt@trade", kind, payload, offset)
    assert transport.messages() == [{"e": "trade", "t": 7}]


async def test_unfollowing_the_last_stream_forgets_the_channel() -> None:
    conn, _ = await open_connection(Limits(), "btcusdt@trade")
    hub = conn.hub
    assert TRADE in hub.channels
    hub.unregister(conn, conn.ip, list(conn.streams.values()), None)
    await asyncio.sleep(0)
    assert TRADE not in hub.channels and hub.connections_of(conn.ip) == 0


def client_frame(opcode: Opcode, data: bytes) -> bytes:
    return Frame(opcode, data).serialize(mask=True, extensions=[])


async def test_connection_over_its_message_rate_keeps_tcp_open_until_the_clients_close_frame() -> None:
    # Closing TCP while the client is still sending would make the kernel reset the connection and
    # the client lose the close frame with its code and reason.
    conn, transport = await open_connection(Limits(messages_per_second=2), "btcusdt@trade")
    conn.proto.parser = Protocol.parse(conn.proto)  # frames from here on, as after the handshake
    next(conn.proto.parser)
    for i in range(5):
        conn.data_received(client_frame(Opcode.TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":%d}' % i))
    assert conn.closing and ("close", 1008) in transport.messages()
    conn.data_received(client_frame(Opcode.TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":9}'))
    assert not transport.closed
    conn.data_received(client_frame(Opcode.CLOSE, (1008).to_bytes(2, "big")))
    assert transport.closed
    await asyncio.sleep(0)


def upgrade_request(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def handshake(path: str) -> tuple[Connection, FakeTransport]:
    """A connection that was sent an upgrade request for ``path``, once its handshake has run."""
    conn = Connection(None, ServerState(), {"gateway": FakeGateway(Limits())})
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(upgrade_request(path))
    for _ in range(5):
        await asyncio.sleep(0)
    return conn, transport


@pytest.mark.parametrize("unit", ["MICROSECOND", "microsecond", "s"])
async def test_handshake_asking_for_a_time_unit_but_milliseconds_is_refused_with_400(unit: str) -> None:
    conn, transport = await handshake(f"/ws/btcusdt@trade?timeUnit={unit}")
    assert b"".join(transport.written).startswith(b"HTTP/1.1 400 ") and not conn.registered
    conn, transport = await handshake("/stream?streams=btcusdt@trade&timeUnit=millisecond")
    assert b"".join(transport.written).startswith(b"HTTP/1.1 101 ")


@pytest.mark.parametrize(
    "path",
    ["/ws/btcusdt@trade?since=", "/stream?streams=btcusdt@trade&since=", "/ws/btcusdt@trade?timeUnit="],
)
async def test_handshake_with_an_empty_value_takes_it_as_absent(path: str) -> None:
    """As REST does: a client that writes ``?since={last or ''}`` on its first connect opens."""
    _, transport = await handshake(path)
    assert b"".join(transport.written).startswith(b"HTTP/1.1 101 ")


@pytest.mark.parametrize(
    "path", ["/ws/btcusdt@depth%C2%B2", "/stream?streams=btcusdt@depth%C2%B2", "/ws/btcusdt@depth%D9%A5"]
)
async def test_handshake_with_a_non_ascii_digit_in_a_stream_name_is_refused_with_400(path: str) -> None:
    conn, transport = await handshake(path)
    assert b"".join(transport.written).startswith(b"HTTP/1.1 400 ")
    assert transport.closed and not conn.registered


async def test_handshake_that_fails_unexpectedly_answers_500_and_lets_the_connection_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str, symbols: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("tradewire.gateway.connection.parse_streams", broken)
    conn, transport = await handshake("/ws/btcusdt@trade")
    assert b"".join(transport.written).startswith(b"HTTP/1.1 500 ")
    assert transport.closed and not conn.hub.conns


async def subscribe(conn: Connection, params: list[Any], request_id: Any = 1) -> None:
    message = {"method": "SUBSCRIBE", "params": params, "id": request_id}
    conn.data_received(client_frame(Opcode.TEXT, orjson.dumps(message)))
    for _ in range(5):
        await asyncio.sleep(0)


async def opened(limits: Limits | None = None) -> tuple[Connection, FakeTransport]:
    """A connection past its handshake, reading frames."""
    conn, transport = await open_connection(limits or Limits())
    conn.proto.parser = Protocol.parse(conn.proto)
    next(conn.proto.parser)
    return conn, transport


@pytest.mark.parametrize("name", ["btcusdt@depth\u00b2", "btcusdt@depth\u0665", "btcusdt@tic\u212aer"])
async def test_subscribe_to_a_name_with_non_ascii_characters_is_an_invalid_request(name: str) -> None:
    conn, transport = await opened()
    await subscribe(conn, [name])
    (reply,) = transport.messages()
    assert reply["id"] == 1 and reply["error"]["code"] == 2 and not conn.streams


async def test_control_frame_that_fails_unexpectedly_closes_the_connection_with_1011(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str, symbols: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("tradewire.gateway.connection.parse_streams", broken)
    conn, transport = await opened()
    await subscribe(conn, ["btcusdt@trade"])
    assert transport.messages() == [("close", 1011)] and conn.closing


async def control(conn: Connection, message: dict[str, Any]) -> None:
    conn.data_received(client_frame(Opcode.TEXT, json.dumps(message).encode()))  # ints past 64 bits too
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_stream_written_in_two_cases_is_followed_once_and_listed_as_first_written() -> None:
    conn, transport = await opened()
    await subscribe(conn, ["btcusdt@depth", "BTCUSDT@depth"])
    await subscribe(conn, ["BtcUsdt@depth"], 2)
    await control(conn, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
    conn.hub.deliver(DEPTH, Publication(1, b"e", diff(1, 1, [["100", "1"]])))
    assert transport.messages() == [
        {"result": None, "id": 1},
        {"result": None, "id": 2},
        {"result": ["btcusdt@depth"], "id": 3},
        orjson.loads(diff(1, 1, [["100", "1"]])),
    ]
    await control(conn, {"method": "UNSUBSCRIBE", "params": ["BTCUSDT@DEPTH"], "id": 4})
    assert not conn.streams and DEPTH not in conn.hub.channels


def subscriptions_gauge() -> float:
    return WS_SUBSCRIPTIONS._value.get()  # type: ignore[attr-defined, no-any-return]


async def test_following_a_stream_twice_counts_one_subscription_and_unfollowing_returns_the_gauge() -> None:
    before = subscriptions_gauge()
    conn, _ = await open_connection(Limits())
    stream = parse_stream("btcusdt@trade", SYMBOLS)
    await conn.hub.follow(conn, stream)
    await conn.hub.follow(conn, stream)
    assert subscriptions_gauge() == before + 1
    conn.hub.unfollow(conn, stream)
    assert subscriptions_gauge() == before


async def test_handshake_with_a_stream_twice_in_the_url_follows_it_once() -> None:
    before = subscriptions_gauge()
    conn, transport = await handshake("/stream?streams=btcusdt@trade/btcusdt@trade/BTCUSDT@trade")
    assert b"".join(transport.written).startswith(b"HTTP/1.1 101 ")
    assert list(conn.streams) == ["btcusdt@trade"] and subscriptions_gauge() == before + 1
    conn.connection_lost(None)
    assert subscriptions_gauge() == before


async def test_frame_over_the_size_limit_closes_with_1009_ends_the_stream_and_stops_pings() -> None:
    conn, transport = await opened(Limits(max_frame=1024))
    conn.data_received(client_frame(Opcode.TEXT, b"x" * 2000))
    assert transport.messages() == [("close", 1009)]
    assert transport.eof and conn.closing and not conn.fast  # FIN after the close frame, not 30 s later
    before = len(transport.written)
    conn.tick(10**9)
    assert len(transport.written) == before  # no ping after the close frame
    conn.data_received(client_frame(Opcode.CLOSE, (1009).to_bytes(2, "big")))
    assert len(transport.written) == before
    await asyncio.sleep(0)


async def test_text_message_with_invalid_utf8_closes_with_1007() -> None:
    conn, transport = await opened()
    conn.data_received(client_frame(Opcode.TEXT, b'\xff\xfe{"method":"LIST_SUBSCRIPTIONS","id":1}'))
    await asyncio.sleep(0)
    assert transport.messages() == [("close", 1007)] and transport.eof and conn.closing


async def test_text_message_split_inside_a_character_is_checked_whole() -> None:
    conn, transport = await opened()
    first, rest = b'{"method":"LIST_SUBSCRIPTIONS","id":"\xc3', b'\xa9"}'
    conn.data_received(Frame(Opcode.TEXT, first, fin=False).serialize(mask=True, extensions=[]))
    conn.data_received(Frame(Opcode.CONT, rest).serialize(mask=True, extensions=[]))
    for _ in range(3):
        await asyncio.sleep(0)
    assert transport.messages() == [{"result": [], "id": "\u00e9"}] and not transport.eof


BAD_ID = {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}


@pytest.mark.parametrize(
    "request_id", [1.5, {"a": [1]}, True, 2**63, 123456789012345678901234567890, "x" * 37]
)
async def test_control_frame_with_an_id_binance_refuses_is_an_invalid_request(request_id: Any) -> None:
    conn, transport = await opened()
    await control(conn, {"method": "LIST_SUBSCRIPTIONS", "id": request_id})
    await control(conn, {"method": "LIST_SUBSCRIPTIONS"})
    assert transport.messages() == [{"error": BAD_ID, "id": None}] * 2


@pytest.mark.parametrize("request_id", [None, 0, -1, 2**63 - 1, "a1", "7d3b9b46-5f4f-4c8b-9a2d-0a8f9a4a0f5b"])
async def test_control_frame_with_an_int64_string_or_null_id_gets_it_back(request_id: Any) -> None:
    conn, transport = await opened()
    await control(conn, {"method": "LIST_SUBSCRIPTIONS", "id": request_id})
    assert transport.messages() == [{"result": [], "id": request_id}]


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("SET_PROPERTY", ["combined", 1], 1),
        ("SET_PROPERTY", ["combined"], 1),
        ("SET_PROPERTY", ["foo", True], 0),
        ("GET_PROPERTY", ["foo"], 0),
        ("SET_PROPERTY", [1, True], 2),
        ("GET_PROPERTY", [], 2),
        ("SET_PROPERTY", ["combined", True, 3], 2),
    ],
)
async def test_property_frames_refused_with_binances_codes(method: str, params: list[Any], code: int) -> None:
    conn, transport = await opened()
    await control(conn, {"method": method, "params": params, "id": 7})
    (reply,) = transport.messages()
    assert reply["id"] == 7 and reply["error"]["code"] == code and not conn.combined


class HangingSubscriber:
    """A subscriber whose Redis confirmation never comes (the follower gives up first)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.unsubscribed: list[bytes] = []

    async def subscribe(self, channel: bytes) -> None:
        self.entered.set()
        await asyncio.Event().wait()

    async def unsubscribe(self, channel: bytes) -> None:
        self.unsubscribed.append(channel)


async def test_a_follow_cancelled_while_its_channel_is_subscribed_leaves_no_channel_behind() -> None:
    """A client that leaves during its handshake cancels the follow: the hub must not keep the
    channel's (empty) entry, which nobody would ever unfollow, nor the Redis subscription."""
    hub = Hub()
    subscriber = HangingSubscriber()
    hub.subscriber = subscriber  # type: ignore[assignment]
    stream = parse_stream("btcusdt@trade", SYMBOLS)
    follow = asyncio.create_task(hub.follow(object(), stream))  # type: ignore[arg-type]
    await subscriber.entered.wait()
    follow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follow
    await asyncio.sleep(0)
    assert TRADE not in hub.channels
    assert subscriber.unsubscribed == [TRADE]


class GatedSubscriber:
    """A subscriber whose Redis confirmation waits for ``gate``; it logs what it sends."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []
        self.followed: set[bytes] = set()

    async def subscribe(self, channel: bytes) -> None:
        if channel in self.followed:
            return
        self.followed.add(channel)
        self.sent.append("subscribe")
        await self.gate.wait()

    async def unsubscribe(self, channel: bytes) -> None:
        if channel in self.followed:
            self.followed.discard(channel)
            self.sent.append("unsubscribe")


async def test_a_follower_whose_channel_was_dropped_while_it_subscribed_is_subscribed_again() -> None:
    """A waits for the channel's subscription; B follows meanwhile (no wait) and leaves, which drops
    the channel and unsubscribes it. A must end up following a channel the hub holds, subscribed."""
    hub = Hub()
    subscriber = GatedSubscriber()
    hub.subscriber = subscriber  # type: ignore[assignment]
    stream = parse_stream("btcusdt@trade", SYMBOLS)
    a, b = object(), object()
    before = subscriptions_gauge()
    first = asyncio.create_task(hub.follow(a, stream))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await hub.follow(b, stream)  # type: ignore[arg-type]
    hub.unfollow(b, stream)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the scheduled UNSUBSCRIBE runs
    subscriber.gate.set()
    await first
    assert a in hub.channels[TRADE]["btcusdt@trade"].conns
    assert TRADE in subscriber.followed and subscriber.sent == ["subscribe", "unsubscribe", "subscribe"]
    hub.unfollow(a, stream)  # type: ignore[arg-type]
    assert subscriptions_gauge() == before


async def test_a_user_message_with_several_payloads_goes_out_as_one_frame_each_in_order() -> None:
    conn, transport = await open_connection(Limits())
    conn.hub.users["alice"] = {conn: "listen-key"}
    channel = keys.user_channel("alice").encode()
    conn.hub.deliver_user(channel, b'{"e":"executionReport","x":"NEW"}\n{"e":"outboundAccountPosition"}')
    conn.hub.deliver_user(channel, b'{"e":"balanceUpdate"}')
    assert transport.messages() == [
        {"e": "executionReport", "x": "NEW"},
        {"e": "outboundAccountPosition"},
        {"e": "balanceUpdate"},
    ]


class GatedUserSubscriber:
    """Redis's confirmation of a user channel's subscription waits for ``gate``."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def subscribe_plain(self, channel: bytes) -> None:
        self.entered.set()
        await self.gate.wait()

    async def unsubscribe(self, channel: bytes) -> None:
        pass


async def test_a_user_subscription_stopped_while_it_was_being_made_is_answered_with_its_id() -> None:
    """``userDataStream.subscribe.signature`` and ``userDataStream.unsubscribe`` sent together: the
    unsubscribe stops the subscription on its way. The subscribe still succeeded (its key is valid);
    answering it "invalid API key" (-2015) told the client something false."""
    conn, _ = await open_connection(Limits())
    subscriber = GatedUserSubscriber()
    conn.hub.subscriber = subscriber  # type: ignore[assignment]
    subscribing = asyncio.create_task(conn.subscribe_user("alice", "key-1"))
    await subscriber.entered.wait()
    assert conn.unsubscribe_user(None) is True
    subscriber.gate.set()
    assert await subscribing == 0
    assert conn.user_subscriptions() == []
    assert "alice" not in conn.hub.users


async def test_a_user_subscription_whose_key_was_revoked_while_it_was_being_made_is_refused() -> None:
    conn, _ = await open_connection(Limits())
    subscriber = GatedUserSubscriber()
    conn.hub.subscriber = subscriber  # type: ignore[assignment]
    subscribing = asyncio.create_task(conn.subscribe_user("alice", "key-1"))
    await subscriber.entered.wait()
    assert conn.end_subscriptions("key-1", b'{"e":"eventStreamTerminated"}') == 1
    subscriber.gate.set()
    assert await subscribing is None
    assert "alice" not in conn.hub.users


async def test_a_connection_that_answers_no_ping_is_closed_after_a_minute_not_at_the_next_ping() -> None:
    """Binance pings every 20 s and waits a minute for a pong: clients are written for that."""
    conn, transport = await open_connection(Limits(), "btcusdt@trade")
    conn.proto.parser = Protocol.parse(conn.proto)
    next(conn.proto.parser)
    for now in (1000.0, 1020.0, 1040.0):
        conn.tick(now)
        assert not conn.closing
    conn.tick(1060.0)
    assert conn.closing and ("close", 1011) in transport.messages()


async def test_a_pong_restarts_the_minute_and_is_no_message_for_the_idle_check() -> None:
    conn, transport = await opened(Limits(idle_timeout=60))
    now = time.monotonic()
    conn.last_seen = now - 100  # as if it opened 100 s ago and sent nothing since
    conn.unanswered_since = now - 59
    conn.data_received(client_frame(Opcode.PONG, b"tw"))
    assert conn.unanswered_since is None
    conn.tick(time.monotonic())  # the pings are answered: only idleness can close it
    assert conn.closing and transport.messages()[-1] == ("close", 4001)
