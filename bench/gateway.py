"""The gateway under load: end-to-end latency, WebSocket fan-out, signed REST orders per second.

Each scenario starts a whole exchange as real processes (``tests/fixtures/exchange.py``: redis-server
with AOF ``appendfsync everysec``, ``tradewire engine``, one ``tradewire gateway``) and drives it from
this process, which is the load generator and the WebSocket clients at once. Everything shares the
machine's cores, so figures are lower bounds of what a gateway does on cores of its own.

* ``latency``: ``--clients`` WebSocket clients follow ``btcusdt@depth`` and ``btcusdt@trade``; signed
  orders go through the gateway's REST API at ``--rate`` per second: a maker posts a sell at a price
  used once, and every other order a taker buys with an IOC the oldest resting sell, one posted at
  least ``TAKER_LAG`` orders earlier. Each trade is timed from the taker order that made it, known
  from the fills of its ``FULL`` answer: requests in flight can reach the engine out of order, and a
  taker that overtook the one before it takes that one's sell (then the next taker finds nothing and
  expires); counting a trade from the taker of its price would then time every later trade from an
  earlier order. The orders are signed before the run and written as bytes on ``HTTP_CONNECTIONS``
  keep-alive connections (``LeanHttp``: aiohttp cost this process 0.3 ms of CPU per order, on the
  cores the exchange uses). Latency is from just before the request is written to the moment each
  client has parsed the depth diff that first shows the maker's price, or the trade (one sample per
  client per order). Each run also reports the CPU each part took per second while the orders
  were sent (``cpu_<part>_ms_per_s``: gateway, engine, redis, the client processes together, and
  this generator; from ``/proc/<pid>/stat``) and ``machine_busy_share``, their sum over all cores:
  near 1, every hop of an update queues for a core, and the latency measures that queue. With it,
  ``messages_per_client_per_s`` (the gateway's count of WebSocket messages sent, per client) and
  ``gateway_writes_per_s`` (its write system calls): how far the engine's batches and the
  gateway's delivery groups gathered the orders' updates.
  ``--via journal`` appends the same orders to the journal directly (``Submitter``), which leaves the
  REST order path out and measures journal -> engine -> Redis -> gateway -> clients; ``--via ws``
  sends them as ``order.place`` requests of the WebSocket API on ``HTTP_CONNECTIONS // 8``
  connections (the trades of a taker read from its ``FULL`` answer, as over REST).
* ``fanout``: ``--conns`` connections follow ``btcusdt@trade``; a publisher runs the bus script
  (offset, history, PUBLISH) as the engine does, ``--burst`` messages at a time, at a rising rate; the
  figure is the highest delivered rate (messages counted by the clients) at which every connection
  got every message. ``--batched`` connects with ``?batch=1`` (several messages per frame).
* ``rest``: ``--concurrency`` requests in flight of signed limit orders for ``--seconds``; orders/s
  answered 200, latency p50/p99 and the gateway's CPU time per order (``/proc/<pid>/stat`` before and
  after), so that the figure per gateway core is explicit. The load generator is ``wrk`` (C; Debian
  package ``wrk``: ``apt-get install wrk``) running a generated Lua script that cycles through
  requests the bench signed beforehand (HMAC-SHA256 of the query string with ``timestamp`` and
  ``recvWindow=60000``, a unique ``newClientOrderId`` each, buy and sell limit orders in turn from
  two users, at prices that rest or cross). Without ``wrk`` (or with ``--client python``) the
  requests are signed and sent from this process with aiohttp, which costs more CPU than the gateway.
  ``--client ws`` sends the same orders as ``order.place`` requests of the WebSocket API
  (``/ws-api/v3``) on ``--ws-conns`` connections, ``--concurrency`` requests in flight in all, each
  frame built and signed before the run (masked with a zero key, so writing one costs nothing); the
  bench's own CPU per order is reported with it, since it shares the cores with the gateway.

* ``slow``: stalled consumers mixed with healthy ones. ``--clients`` healthy connections follow
  ``btcusdt@trade`` while trades are published (the engine's bus script) at ``--rate`` per second,
  each payload carrying its send time; latency is measured at the healthy clients for ``--seconds``
  with them alone, then for as long again after ``--slow`` more connections have subscribed and
  stopped reading (their socket is paused: the kernel buffers fill, then the gateway's queue). The
  gateway must cut the stalled ones loose (close code 4000 once their queue is full) without
  delaying the others: the figure is the healthy clients' p50/p99 in both phases and their ratio,
  with the gateway's counts of messages dropped and disconnects by reason (from ``/metrics``).

Each ``latency`` and ``slow`` run is preceded by ``--steadiness`` seconds (default 3) of
``bench/steadiness.py``, whose figures are printed with the run and kept in its record: the share of
time the machine's cores ran slowed and its longest slow window, against which to read a p99.

Run from the repository root, e.g.::

    python bench/gateway.py latency --rate 1000 --clients 100
    python bench/gateway.py fanout --conns 5000
    python bench/gateway.py fanout --conns 5000 --batched --burst 10
    python bench/gateway.py rest --concurrency 64
    python bench/gateway.py rest --concurrency 64 --client ws
    python bench/gateway.py slow --clients 200 --slow 50 --rate 1000

Each prints one line per run, then a table of the median of ``--runs`` runs (``--json FILE`` also
writes the runs and the medians).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import multiprocessing
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import redis.asyncio
import uvloop
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import steadiness

from tests.fixtures.exchange import Exchange, User
from tradewire.bus.publish import load_op, publish_op
from tradewire.gateway.frames import frame
from tradewire.journal.submit import Submitter

BENCH_LIMITS = {
    "TRADEWIRE_LIMIT_CONNECTIONS_PER_IP": "100000",
    "TRADEWIRE_LIMIT_PING_INTERVAL": "3600",
    "TRADEWIRE_LIMIT_IDLE_TIMEOUT": "3600",
    "TRADEWIRE_LIMIT_WEIGHT_PER_MINUTE": "100000000",
}


# -- a lean WebSocket client: handshake, then unmasked server frames parsed by hand ----------------


class LeanClient(asyncio.Protocol):
    """Counts (or hands over) the text frames of one connection; never writes after the handshake."""

    def __init__(self, on_frame: Callable[[bytes], None], ready: asyncio.Future[None]) -> None:
        self.on_frame = on_frame
        self.ready = ready
        self.buffer = b""
        self.open = False
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(buffer[:200].decode(errors="replace")))
                return
            self.open = True
            self.ready.set_result(None)
            buffer = buffer[end + 4 :]
        pos, size = 0, len(buffer)
        on_frame = self.on_frame
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = struct.unpack_from("!H", buffer, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buffer, pos + 2)[0]
                head = 10
            if size - pos < head + length:
                break
            if buffer[pos] & 0x0F == 0x1:
                on_frame(buffer[pos + head : pos + head + length])
            pos += head + length
        self.buffer = buffer[pos:]


async def open_client(port: int, path: str, on_frame: Callable[[bytes], None]) -> LeanClient:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    _, client = await loop.create_connection(lambda: LeanClient(on_frame, ready), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    await asyncio.wait_for(ready, 30)
    return client


def signed(user: User, params: dict[str, Any]) -> str:
    query = urlencode({**params, "timestamp": int(time.time() * 1000)})
    return (
        query + "&signature=" + hmac.new(user.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    )


def ws_signed(user: User, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` signed the WebSocket API's way: ``apiKey`` among them, the sorted pairs signed."""
    stamped = {**params, "apiKey": user.api_key, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{name}={stamped[name]}" for name in sorted(stamped))
    signature = hmac.new(user.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {**stamped, "signature": signature}


def client_frame(payload: bytes) -> bytes:
    """A text frame as a client must send it (masked), with a zero masking key: the payload as is."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return head + b"\0\0\0\0" + payload


def canonical(price: str) -> bytes:
    """A price as the exchange writes it (no trailing zeros after the point): the key clients see."""
    return (price.rstrip("0").rstrip(".") if "." in price else price).encode()


def latency_figures(depth_ms: list[float], trade_ms: list[float]) -> dict[str, float]:
    """A latency run's samples and percentiles, depth diffs and trades."""
    figures: dict[str, float] = {}
    for name, samples in (("depth", depth_ms), ("trade", trade_ms)):
        figures[f"{name}_samples"] = len(samples)
        figures[f"{name}_p50_ms"] = round(percentile(samples, 50), 3)
        figures[f"{name}_p99_ms"] = round(percentile(samples, 99), 3)
    return figures


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def new_exchange(root: Path, **limits: str) -> Exchange:
    return Exchange(root / "exchange", gateway_env={**BENCH_LIMITS, **limits}, fsync="everysec").start()


# -- (a) end-to-end latency ---------------------------------------------------------------------------


TAKER_LAG = 100
"""At least this many orders between a maker's sell and the taker's buy of it (once the run is under
way, twice as many: 0.2 s at 1,000 orders/s)."""

Seen = list[tuple[bytes, bytes, int]]
"""What watchers saw: (``b"d"`` or ``b"t"``, price, ``perf_counter_ns`` when parsed), per client."""


_ASK_PRICES = re.compile(rb'\["([0-9.]+)"')


def watcher(seen: Seen) -> Callable[[bytes], None]:
    """A client's frame handler: notes the first depth diff showing each ask price, and each trade.

    It reads the two fields it needs with byte searches rather than decoding every frame (the
    watchers share the cores with the exchange: the less they spend, the less they measure of
    themselves); a frame of any other shape is decoded whole."""
    prices: set[bytes] = set()

    def on_frame(payload: bytes) -> None:
        now = time.perf_counter_ns()
        if b'"e":"trade"' in payload:
            at = payload.find(b'"p":"') + 5
            seen.append((b"t", payload[at : payload.index(b'"', at)], now))
            return
        at = payload.find(b'"a":[')
        if at < 0:
            data = orjson.loads(payload)["data"]
            asks = [price.encode() for price, _ in data.get("a", ())]
        else:
            end = payload.find(b"]]", at)  # the end of the asks (none: an empty list)
            asks = _ASK_PRICES.findall(payload, at + 5, end if end > 0 else at + 5)
        for key in asks:
            if key not in prices:
                prices.add(key)
                seen.append((b"d", key, now))

    return on_frame


async def watch(port: int, clients: int, ready: Any, stop: Any, out: Any) -> None:
    seen: Seen = []
    for _ in range(clients):
        await open_client(port, "/stream?streams=btcusdt@depth/btcusdt@trade", watcher(seen))
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    out.put(seen)


def watch_process(port: int, clients: int, ready: Any, stop: Any, out: Any) -> None:
    """One watcher process (``--procs``): its share of the clients, on a loop of its own.
    ``perf_counter_ns`` is CLOCK_MONOTONIC, the same clock in every process of the machine."""
    uvloop.install()
    gc.disable()  # its list of samples only grows: full collections of it paused the clients ~0.2 s
    asyncio.run(watch(port, clients, ready, stop, out))


class Watchers:
    """The latency runs' clients: ``procs`` watcher processes (0: in this process) and what they saw."""

    def __init__(self) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.stop, self.out = self.context.Event(), self.context.Queue()
        self.workers: list[Any] = []
        self.seen: Seen = []

    @classmethod
    async def start(cls, port: int, clients: int, procs: int) -> Watchers:
        """Every client connected and subscribed to ``btcusdt@depth`` and ``btcusdt@trade``."""
        watchers = cls()
        readies = []
        for index in range(procs):
            ready = watchers.context.Event()
            share = clients // procs + (1 if index < clients % procs else 0)
            worker = watchers.context.Process(
                target=watch_process, args=(port, share, ready, watchers.stop, watchers.out), daemon=True
            )
            worker.start()
            watchers.workers.append(worker)
            readies.append(ready)
        for ready in readies:
            await asyncio.to_thread(ready.wait, 60)
        if not procs:
            for _ in range(clients):
                await open_client(port, "/stream?streams=btcusdt@depth/btcusdt@trade", watcher(watchers.seen))
        return watchers

    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers if worker.pid is not None]

    async def collect(self) -> Seen:
        """Stop the watcher processes; everything every client saw."""
        self.stop.set()
        seen = self.seen
        for _ in self.workers:
            seen += await asyncio.to_thread(self.out.get, True, 60)
        for worker in self.workers:
            worker.join(10)
        return seen


HTTP_CONNECTIONS = 64
"""Keep-alive connections the latency bench sends its orders on (one request in flight on each)."""


class LeanConnection:
    """One keep-alive HTTP/1.1 connection: a pre-built request out, the body of its answer back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """The answer's status code and body."""
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        at = head.lower().find(b"content-length:")
        if at < 0:
            raise RuntimeError("an answer without Content-Length")
        length = int(head[at + 15 : head.index(b"\r\n", at)])
        return int(head[9:12]), await self.reader.readexactly(length)


class LeanHttp:
    """A pool of :class:`LeanConnection`: the order generator's HTTP client.

    aiohttp spent about 0.3 ms of CPU per order in the process that also paces the orders, on the
    two cores the exchange runs on; requests signed in advance and written as bytes cost a tenth."""

    def __init__(self) -> None:
        self.idle: asyncio.Queue[LeanConnection] = asyncio.Queue()
        self.conns: list[LeanConnection] = []

    @classmethod
    async def open(cls, port: int, count: int) -> LeanHttp:
        pool = cls()
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conn = LeanConnection(reader, writer)
            pool.conns.append(conn)
            pool.idle.put_nowait(conn)
        return pool

    async def close(self) -> None:
        for conn in self.conns:
            conn.writer.close()


@dataclass(frozen=True)
class Order:
    """One order of the latency run: the signed request for the REST path, the command for the journal."""

    taker: bool
    price: str
    request: bytes
    command: dict[str, Any]
    frame: bytes
    """The same order as an ``order.place`` frame of the WebSocket API (request id = its index)."""


def price_schedule(rate: int, seconds: float) -> list[tuple[bool, str]]:
    """``(is_taker, price)`` of the run's orders: a maker's sell at a new price, and every other
    order a taker's buy of the oldest resting sell posted ``TAKER_LAG`` orders ago."""
    resting: list[tuple[str, int]] = []
    out: list[tuple[bool, str]] = []
    for i in range(int(rate * seconds)):
        is_taker = not (i % 2 == 0 or not resting or i - resting[0][1] < TAKER_LAG)
        if is_taker:
            price = resting.pop(0)[0]
        else:
            price = f"{30000 + i / 100:.2f}"
            resting.append((price, i))
        out.append((is_taker, price))
    return out


def latency_schedule(rate: int, seconds: float, maker: User, taker: User, port: int) -> list[Order]:
    """The run's orders (:func:`price_schedule`), signed in advance (``recvWindow`` 60 s); takers
    buy with IOC."""
    out: list[Order] = []
    for i, (is_taker, price) in enumerate(price_schedule(rate, seconds)):
        user, side, tif = (taker, "BUY", "IOC") if is_taker else (maker, "SELL", "GTC")
        params = {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": tif,
                  "quantity": "0.001", "price": price, "newOrderRespType": "FULL" if is_taker else "ACK",
                  "recvWindow": "60000"}  # fmt: skip
        body = signed(user, params).encode()
        request = (
            b"POST /api/v3/order HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-MBX-APIKEY: %s\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
        ) % (port, user.api_key.encode(), len(body), body)
        command = {"type": "new_order", "user": user.name, "market": "BTC-USDT", "side": side.lower(),
                   "kind": "limit", "qty": "0.001", "price": price, "tif": tif}  # fmt: skip
        request_frame = {"id": i, "method": "order.place", "params": ws_signed(user, params)}
        frame = client_frame(orjson.dumps(request_frame))
        out.append(Order(is_taker, price, request, command, frame))
    return out


async def latency_run(
    root: Path, rate: int, clients: int, seconds: float, via: str, procs: int
) -> dict[str, Any]:
    ex = new_exchange(root)
    try:
        maker, taker = ex.create_user("maker"), ex.create_user("taker")
        ex.deposit("maker", "BTC", "1000")
        ex.deposit("taker", "USDT", "100000000")
        sent_depth: dict[bytes, int] = {}
        sent_trade: dict[bytes, int] = {}
        port = ex.ports[0]
        watchers = await Watchers.start(port, clients, procs)
        load_before = os.getloadavg()[0]
        schedule = latency_schedule(rate, seconds, maker, taker, port)
        schedule_index = {id(entry): i for i, entry in enumerate(schedule)}
        journal = Submitter(ex.redis_url, "bench-latency")
        await journal.start()
        http = await LeanHttp.open(port, HTTP_CONNECTIONS)
        answers: dict[int, asyncio.Future[bytes]] = {}

        def on_answer(payload: bytes) -> None:
            future = answers.pop(int(payload[6 : payload.index(b",", 6)]), None)  # {"id":<index>,...
            if future is not None and not future.done():
                future.set_result(payload)

        ws_api = (
            [await open_client(port, "/ws-api/v3", on_answer) for _ in range(HTTP_CONNECTIONS // 8)]
            if via == "ws"
            else []
        )

        failures: list[str] = []

        async def order(entry: Order) -> None:
            sent = time.perf_counter_ns()  # waiting for a free connection counts too
            if not entry.taker:
                sent_depth[canonical(entry.price)] = sent
            try:
                if via == "journal":
                    reply = await journal.submit(entry.command, who="bench")
                    fills = [event["price"] for event in reply.events if event["type"] == "trade"]
                elif via == "ws":
                    index = schedule_index[id(entry)]
                    answered = answers[index] = asyncio.get_running_loop().create_future()
                    client = ws_api[index % len(ws_api)]
                    assert client.transport is not None
                    client.transport.write(entry.frame)
                    answer = orjson.loads(await asyncio.wait_for(answered, 30))
                    if answer.get("status") != 200:
                        failures.append(f"WS {answer.get('status')}: {str(answer)[:200]}")
                        return
                    result = answer["result"] if entry.taker else {}
                    fills = [fill["price"] for fill in result.get("fills", ())]
                else:
                    conn = await http.idle.get()
                    try:
                        status, answer = await conn.request(entry.request)
                    finally:
                        http.idle.put_nowait(conn)
                    if status != 200:
                        failures.append(f"HTTP {status}: {answer[:200]!r}")
                        return
                    fills = (
                        [fill["price"] for fill in orjson.loads(answer).get("fills", ())]
                        if entry.taker
                        else []
                    )
            except Exception as exc:  # counted and reported with the run
                failures.append(repr(exc))
                return
            for fill in fills:  # the trades this taker made, whichever sells they met
                sent_trade[fill.encode()] = sent

        tasks: set[asyncio.Task[None]] = set()
        processes = {
            "gateway": [ex.gateways[0].pid],
            "engine": [ex.engine.pid] if ex.engine is not None else [],
            "redis": [ex.redis.pid] if ex.redis.pid is not None else [],
            "clients": watchers.pids(),
            "generator": [os.getpid()],
        }
        cpu_before = {name: cpu_of(pids) for name, pids in processes.items()}
        sent_before = (await asyncio.to_thread(gateway_counts, port)).get("ws_messages:sent", 0.0)
        writes_before = writes_of(ex.gateways[0].pid)
        start = time.perf_counter()
        for i, entry in enumerate(schedule):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(order(entry))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elapsed = time.perf_counter() - start
        achieved = len(schedule) / elapsed
        cpu_ms_per_s = {  # while orders were sent: what each part of the run took of the cores
            f"cpu_{name}_ms_per_s": round((cpu_of(pids) - cpu_before[name]) / elapsed * 1e3)
            for name, pids in processes.items()
        }
        gateway_writes = (writes_of(ex.gateways[0].pid) - writes_before) / elapsed
        sent = (await asyncio.to_thread(gateway_counts, port)).get("ws_messages:sent", 0.0) - sent_before
        await asyncio.gather(*tasks)
        await asyncio.sleep(1.0)
        await http.close()
        for client in ws_api:
            if client.transport is not None:
                client.transport.close()
        await journal.close()
        seen = await watchers.collect()
        depth_ms = [(t - sent_depth[p]) / 1e6 for kind, p, t in seen if kind == b"d" and p in sent_depth]
        trade_ms = [(t - sent_trade[p]) / 1e6 for kind, p, t in seen if kind == b"t" and p in sent_trade]
        return {
            "watcher_processes": procs,
            "load_average": round(max(load_before, os.getloadavg()[0]), 1),
            "via": via,
            "offered_orders_per_s": rate,
            "achieved_orders_per_s": round(achieved),
            **latency_figures(depth_ms, trade_ms),
            "failed_orders": len(failures),
            **cpu_ms_per_s,
            "messages_per_client_per_s": round(sent / elapsed / max(1, clients)),
            "gateway_writes_per_s": round(gateway_writes),
            "machine_busy_share": round(sum(cpu_ms_per_s.values()) / 1e3 / (os.cpu_count() or 1), 2),
            **({"first_failure": failures[0]} if failures else {}),
        }
    finally:
        ex.stop()


# -- (a') the same deliveries with nothing else on the machine: the baseline of (a) ----------------


BARE_DEPTH = (
    b'{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":%d,"s":"BTCUSDT","U":%d,"u":%d,"pu":%d,'
    b'"b":[],"a":[["%s","%s"]],"cs":%d}}'
)
BARE_TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":%d,"s":"BTCUSDT","t":%d,"p":"%s","q":"0.001",'
    b'"T":%d,"m":false,"M":true}}'
)
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class BareFanout(asyncio.Protocol):
    """A connection to the bare fan-out server: a WebSocket client, which then gets every frame, or
    the order line (``ORDERS``, then ``M <price>`` or ``T <price>`` per order), each of whose orders
    is written at once, as the gateway's frames of it, to every client (a maker: the depth diff
    showing its price; a taker: the trade and the diff that takes the level away)."""

    def __init__(self, clients: list[asyncio.Transport], ids: list[int]) -> None:
        self.clients, self.ids = clients, ids
        self.buffer = b""
        self.orders = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if self.orders:
            end = buffer.rfind(b"\n") + 1
            self.buffer = buffer[end:]
            for line in buffer[:end].splitlines():
                self.publish(line[:1] == b"T", line[2:])
            return
        if buffer.startswith(b"ORDERS\n"):
            self.orders = True
            self.buffer = b""
            return self.data_received(buffer[7:])
        if b"\r\n\r\n" not in buffer:
            self.buffer = buffer
            return
        key = re.search(rb"Sec-WebSocket-Key: *(\S+)", buffer, re.IGNORECASE)
        accept = base64.b64encode(hashlib.sha1((key.group(1) if key else b"") + _WS_GUID).digest())
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.clients.append(self.transport)
        self.buffer = b""

    def publish(self, taker: bool, price: bytes) -> None:
        ids = self.ids  # [update id, trade id]
        now = time.time_ns() // 1_000_000
        frames = []
        if taker:
            ids[1] += 1
            frames.append(frame(BARE_TRADE % (now, ids[1], price, now)))
        ids[0] += 1
        qty = b"0.00000000" if taker else b"0.001"
        depth = BARE_DEPTH % (now, ids[0], ids[0], ids[0] - 1, price, qty, zlib.crc32(price + qty))
        frames.append(frame(depth))
        for transport in self.clients:
            for data in frames:  # one write each, as the gateway's hub makes them
                transport.write(data)


def bare_server_process(port_out: Any, stop: Any) -> None:
    uvloop.install()

    async def serve() -> None:
        clients: list[asyncio.Transport] = []
        ids = [0, 0]
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: BareFanout(clients, ids), "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(serve())


async def bare_run(rate: int, clients: int, seconds: float, procs: int, group: int) -> dict[str, Any]:
    """(a) with the exchange replaced by one process that writes each order's frames to every client
    the moment the order line reaches it: the same clients, watchers, order schedule and frame
    shapes, and nothing else. What (a) cannot go below on this machine: the delivery alone.

    The orders leave in groups of ``group``, timed from the group's send: the engine's batches
    gather the orders of (a) too (about three per delivery at 1,000 orders/s), and each group costs
    every client one write and one wake-up whatever its size."""
    context = multiprocessing.get_context("spawn")
    port_out, stop = context.Queue(), context.Event()
    server = context.Process(target=bare_server_process, args=(port_out, stop), daemon=True)
    server.start()
    try:
        port = await asyncio.to_thread(port_out.get, True, 30)
        watchers = await Watchers.start(port, clients, procs)
        _, orders = await asyncio.open_connection("127.0.0.1", port)
        orders.write(b"ORDERS\n")
        load_before = os.getloadavg()[0]
        sent: dict[tuple[bytes, bytes], int] = {}
        assert server.pid is not None
        processes = {"gateway": [server.pid], "clients": watchers.pids(), "generator": [os.getpid()]}
        cpu_before = {name: cpu_of(pids) for name, pids in processes.items()}
        writes_before = writes_of(server.pid)
        schedule = [(taker, canonical(price)) for taker, price in price_schedule(rate, seconds)]
        start = time.perf_counter()
        for i in range(0, len(schedule), group):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter_ns()
            lines = []
            for taker, price in schedule[i : i + group]:
                sent[b"t" if taker else b"d", price] = now
                lines.append(b"%s %s\n" % (b"T" if taker else b"M", price))
            orders.write(b"".join(lines))
        elapsed = time.perf_counter() - start
        cpu_ms_per_s = {
            f"cpu_{name}_ms_per_s": round((cpu_of(pids) - cpu_before[name]) / elapsed * 1e3)
            for name, pids in processes.items()
        }
        writes = (writes_of(server.pid) - writes_before) / elapsed
        await asyncio.sleep(1.0)
        orders.close()
        seen = await watchers.collect()
        depth_ms = [(t - sent[kind, p]) / 1e6 for kind, p, t in seen if kind == b"d" and (kind, p) in sent]
        trade_ms = [(t - sent[kind, p]) / 1e6 for kind, p, t in seen if kind == b"t" and (kind, p) in sent]
        return {
            "watcher_processes": procs,
            "load_average": round(max(load_before, os.getloadavg()[0]), 1),
            "via": "bare",
            "orders_per_delivery": group,
            "offered_orders_per_s": rate,
            "achieved_orders_per_s": round(len(schedule) / elapsed),
            **latency_figures(depth_ms, trade_ms),
            **cpu_ms_per_s,
            "gateway_writes_per_s": round(writes),
            "machine_busy_share": round(sum(cpu_ms_per_s.values()) / 1e3 / (os.cpu_count() or 1), 2),
        }
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.kill()


# -- (b) fan-out -----------------------------------------------------------------------------------------


TRADE = (
    b'{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":%d,"p":"30000.01","q":"0.001",'
    b'"T":1700000000000,"m":false,"M":true}'
)


async def fanout_run(root: Path, conns: int, batched: bool, burst: int, seconds: float) -> dict[str, Any]:
    ex = new_exchange(root)
    try:
        received = [0]

        def on_frame(payload: bytes) -> None:
            received[0] += payload.count(b'"e":"trade"')

        path = "/ws/btcusdt@trade" + ("?batch=1" if batched else "")
        for first in range(0, conns, 250):
            await asyncio.gather(
                *(open_client(ex.ports[0], path, on_frame) for _ in range(first, min(conns, first + 250)))
            )
        client = redis.asyncio.Redis.from_url(ex.redis_url)
        await client.execute_command(*load_op())  # type: ignore[no-untyped-call]
        await asyncio.sleep(1.0)
        best = 0.0
        sequence = 0
        rate = 10.0 if not batched else 20.0  # publications per second
        while True:
            received[0] = 0
            published = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                pipe = client.pipeline(transaction=False)
                for _ in range(burst):
                    sequence += 1
                    pipe.execute_command(*publish_op("BTC-USDT", "trade", TRADE % sequence, b"bench"))
                await pipe.execute()
                published += burst
                delay = start + published / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            expected = published * conns
            for _ in range(500):  # wait for the last publications to arrive (at most 5 s)
                if received[0] >= expected:
                    break
                await asyncio.sleep(0.01)
            total = time.perf_counter() - start
            delivered = received[0] / total
            sustained = received[0] >= expected and total <= elapsed * 1.2
            done = received[0] >= expected
            line = f"publications/s {rate:6.0f}  delivered msg/s {delivered:9.0f}  all delivered {done}"
            print(f"    {line}  drain {total - elapsed:5.2f}s", flush=True)
            if not sustained:
                break
            best = max(best, delivered)
            rate *= 1.5
            await asyncio.sleep(1.0)
        await client.aclose()
        return {"connections": conns, "batched": batched, "burst": burst, "messages_per_s": round(best)}
    finally:
        ex.stop()


# -- (e) stalled consumers mixed with healthy ones ----------------------------------------------------------

TIMED_TRADE = (
    b'{"e":"trade","E":%d,"s":"BTCUSDT","t":%d,"p":"30000.01","q":"0.001",'
    b'"T":1700000000000,"m":false,"M":true,"pad":"%s"}'
)
"""A trade payload whose ``E`` is the publisher's ``perf_counter_ns() // 1000`` (the same clock in every
process of the machine), so that a client measures publish-to-parse latency; ``pad`` brings it to
``--payload`` bytes, the size of a busy depth diff, so that stalled readers fill their buffers in
seconds rather than minutes."""
SLOW_LIMITS = {"TRADEWIRE_LIMIT_SOCKET_SEND_BUFFER": str(256 * 1024)}
"""The kernel send buffer a gateway facing many slow clients would set (auto-tuned it grows to
4 MiB per socket, which a stalled reader would fill for a minute before the gateway noticed)."""


def gateway_counts(port: int) -> dict[str, float]:
    """The gateway's WebSocket message fates and disconnect reasons, from its ``/metrics``."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for family in ("tradewire_ws_messages_total", "tradewire_ws_disconnects_total"):
            if line.startswith(family + "{"):
                labels, _, value = line.partition("} ")
                counts[
                    family.removeprefix("tradewire_").removesuffix("_total") + ":" + labels.split('"')[1]
                ] = float(value)
    return counts


async def slow_run(
    root: Path, healthy: int, slow: int, rate: int, seconds: float, size: int
) -> dict[str, Any]:
    ex = new_exchange(root, **SLOW_LIMITS)
    pad = b"x" * max(0, size - len(TIMED_TRADE))
    try:
        port = ex.ports[0]
        phases: dict[str, list[int]] = {"alone": [], "mixed": []}
        current = phases["alone"]

        def on_frame(payload: bytes) -> None:
            start = payload.index(b'"E":') + 4
            current.append(time.perf_counter_ns() // 1000 - int(payload[start : payload.index(b",", start)]))

        for first in range(0, healthy, 250):
            await asyncio.gather(
                *(
                    open_client(port, "/ws/btcusdt@trade", on_frame)
                    for _ in range(first, min(healthy, first + 250))
                )
            )
        client = redis.asyncio.Redis.from_url(ex.redis_url)
        await client.execute_command(*load_op())  # type: ignore[no-untyped-call]
        sequence = 0

        async def publish_for(duration: float) -> int:
            nonlocal sequence
            published, start = 0, time.perf_counter()
            while time.perf_counter() - start < duration:
                sequence += 1
                payload = TIMED_TRADE % (time.perf_counter_ns() // 1000, sequence, pad)
                await client.execute_command(*publish_op("BTC-USDT", "trade", payload, b"bench"))  # type: ignore[no-untyped-call]
                published += 1
                delay = start + published / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(0.5)  # the last ones arrive
            return published

        await publish_for(seconds)
        before = gateway_counts(port)
        stalled = [await open_client(port, "/ws/btcusdt@trade", lambda payload: None) for _ in range(slow)]
        for stalled_client in stalled:
            assert stalled_client.transport is not None
            stalled_client.transport.pause_reading()
        current = phases["mixed"]
        published = await publish_for(seconds)
        # The stalled clients read again: each finds its stream cut with a close frame (4000) after
        # what had reached its socket, and the gateway counts the disconnect once the close is done.
        for stalled_client in stalled:
            assert stalled_client.transport is not None
            stalled_client.transport.resume_reading()
        for _ in range(100):
            if all(c.closed for c in stalled):
                break
            await asyncio.sleep(0.1)
        after = gateway_counts(port)
        await client.aclose()
        alone, mixed = sorted(phases["alone"]), sorted(phases["mixed"])
        result: dict[str, Any] = {
            "healthy": healthy,
            "stalled": slow,
            "publications_per_s": rate,
            "payload_bytes": len(TIMED_TRADE % (0, 0, pad)),
            "alone_p50_ms": percentile(alone, 50) / 1000,
            "alone_p99_ms": percentile(alone, 99) / 1000,
            "mixed_p50_ms": percentile(mixed, 50) / 1000,
            "mixed_p99_ms": percentile(mixed, 99) / 1000,
            "healthy_messages_missing": published * healthy - len(mixed),
            "stalled_cut_off": sum(1 for c in stalled if c.closed),
        }
        result["p99_mixed_over_alone"] = round(result["mixed_p99_ms"] / result["alone_p99_ms"], 2)
        for key in sorted(set(after) | set(before)):
            result[key] = after.get(key, 0.0) - before.get(key, 0.0)
        return result
    finally:
        ex.stop()


# -- (c) signed REST orders -------------------------------------------------------------------------------

WRK_SCRIPT = """
local lines, requests, index, first = {}, {}, 0, 0
local count = 0
function setup(thread)
  thread:set("id", count)
  count = count + 1
end
function init(args)
  local total = tonumber(args[2])
  local mine = 0
  for line in io.lines(args[1]) do
    if mine % total == id then
      local key, body = line:match("^(%S+) (%S+)$")
      requests[#requests + 1] = wrk.format("POST", "/api/v3/order",
        {["X-MBX-APIKEY"] = key, ["Content-Type"] = "application/x-www-form-urlencoded"}, body)
    end
    mine = mine + 1
  end
end
function request()
  index = index % #requests + 1
  return requests[index]
end
function done(summary, latency, requests)
  local status = summary.errors.status
  io.write(string.format('WRK {"requests":%d,"non2xx":%d,"socket_errors":%d,"seconds":%f,' ..
    '"p50_us":%d,"p99_us":%d}\\n', summary.requests, status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99)))
end
"""


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def writes_of(pid: int) -> int:
    """Write system calls a process has made so far (``syscw`` of ``/proc/<pid>/io``): a gateway's
    sends to its WebSocket clients, each carrying one frame or several."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes so far."""
    return sum(sum(cpu_seconds(pid)) for pid in pids)


def order_params(buyer: User, seller: User, count: int, prefix: str) -> Iterator[tuple[User, dict[str, Any]]]:
    """``count`` limit orders: buys and sells in turn, prices 29,990-30,010 so that some rest and some
    cross, a unique ``newClientOrderId`` each."""
    for i in range(count):
        user, side = (buyer, "BUY") if i % 2 == 0 else (seller, "SELL")
        yield user, {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "0.001", "price": str(29990 + (i * 7919) % 21),
                     "newClientOrderId": f"{prefix}{i}", "newOrderRespType": "ACK",
                     "recvWindow": "60000"}  # fmt: skip


def presigned_orders(buyer: User, seller: User, count: int, prefix: str = "b") -> list[str]:
    """:func:`order_params` signed for REST, one line each (``<api key> <body>``)."""
    orders = order_params(buyer, seller, count, prefix)
    return [f"{user.api_key} {signed(user, params)}" for user, params in orders]


def presigned_ws_orders(buyer: User, seller: User, count: int, prefix: str = "w") -> list[bytes]:
    """:func:`order_params` as ``order.place`` frames of the WebSocket API, the request id = index."""
    return [
        client_frame(orjson.dumps({"id": i, "method": "order.place", "params": ws_signed(user, params)}))
        for i, (user, params) in enumerate(order_params(buyer, seller, count, prefix))
    ]


async def ws_api_load(
    port: int, frames: list[bytes], conns: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    """Send ``frames`` on ``conns`` WebSocket API connections, each keeping its share of
    ``concurrency`` requests in flight (a new one per answer) until ``seconds`` have passed."""
    window = max(1, concurrency // conns)
    sent_at = [0.0] * len(frames)
    latencies: list[float] = []
    done = [0, 0]
    failures: list[bytes] = []
    cursor = iter(range(len(frames)))
    finished = asyncio.get_running_loop().create_future()
    state = {"deadline": float("inf"), "inflight": 0}
    clients: list[LeanClient] = []

    def send(client: LeanClient) -> bool:
        index = next(cursor, None)
        if index is None or time.perf_counter() >= state["deadline"]:
            return False
        sent_at[index] = time.perf_counter()
        state["inflight"] += 1
        assert client.transport is not None
        client.transport.write(frames[index])
        return True

    def handler(slot: list[LeanClient]) -> Callable[[bytes], None]:
        def on_frame(payload: bytes) -> None:
            now = time.perf_counter()
            comma = payload.index(b",", 6)  # every answer starts {"id":<index>,"status":...
            latencies.append(now - sent_at[int(payload[6:comma])])
            if payload.startswith(b'"status":200', comma + 1):
                done[0] += 1
            else:
                done[1] += 1
                failures.append(payload[:300])
            state["inflight"] -= 1
            if not send(slot[0]) and state["inflight"] == 0 and not finished.done():
                finished.set_result(None)

        return on_frame

    for _ in range(conns):
        slot: list[LeanClient] = []
        slot.append(await open_client(port, "/ws-api/v3", handler(slot)))
        clients.append(slot[0])
    start = time.perf_counter()
    state["deadline"] = start + seconds
    for client in clients:
        for _ in range(window):
            send(client)
    await asyncio.wait_for(finished, seconds + 60)
    elapsed = time.perf_counter() - start
    for client in clients:
        assert client.transport is not None
        client.transport.close()
    return {"requests": sum(done), "non2xx": done[1], "seconds": elapsed,
            "p50_us": percentile(latencies, 50) * 1e6, "p99_us": percentile(latencies, 99) * 1e6,
            **({"first_failure": failures[0].decode(errors="replace")} if failures else {})}  # fmt: skip


async def python_load(port: int, lines: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    done = [0, 0]
    latencies: list[float] = []
    cursor = iter(lines)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            for line in cursor:
                if time.perf_counter() >= deadline:
                    return
                key, body = line.split(" ", 1)
                sent = time.perf_counter()
                async with http.post(
                    "/api/v3/order", data=body, headers={**headers, "X-MBX-APIKEY": key}
                ) as r:
                    await r.read()
                    latencies.append(time.perf_counter() - sent)
                    done[0 if r.status == 200 else 1] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"requests": sum(done), "non2xx": done[1], "seconds": elapsed,
            "p50_us": percentile(latencies, 50) * 1e6, "p99_us": percentile(latencies, 99) * 1e6}  # fmt: skip


def wrk_load(root: Path, port: int, lines: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    threads = 2
    (root / "orders.txt").write_text("\n".join(lines) + "\n")
    (root / "orders.lua").write_text(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{round(seconds)}s", "--timeout", "10s",
         "-s", str(root / "orders.lua"), f"http://127.0.0.1:{port}", "--",
         str(root / "orders.txt"), str(threads)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    result: dict[str, Any] = orjson.loads(line[4:])
    return result


async def rest_run(
    root: Path, concurrency: int, seconds: float, client: str, ws_conns: int = 8
) -> dict[str, Any]:
    ex = new_exchange(root)
    try:
        buyer, seller = ex.create_user("buyer"), ex.create_user("seller")
        ex.deposit("buyer", "USDT", "1000000000")
        ex.deposit("seller", "BTC", "100000")
        count = int(seconds * 12_000) + 1000
        lines = presigned_orders(buyer, seller, count) if client != "ws" else []
        frames = presigned_ws_orders(buyer, seller, count) if client == "ws" else []
        port = ex.ports[0]
        # warm up: key cache, connections, the first orders of the book
        await python_load(port, presigned_orders(buyer, seller, 100, "warm"), 4, 1.0)
        pid = ex.gateways[0].pid
        assert ex.engine is not None
        engine_pid = ex.engine.pid
        cpu, engine_cpu = cpu_seconds(pid), cpu_seconds(engine_pid)
        bench_cpu = time.process_time()
        if client == "wrk":
            load = await asyncio.to_thread(wrk_load, root, port, lines, concurrency, seconds)
        elif client == "ws":
            load = await ws_api_load(port, frames, ws_conns, concurrency, seconds)
        else:
            load = await python_load(port, lines, concurrency, seconds)
        bench_cpu = time.process_time() - bench_cpu
        after, engine_after = cpu_seconds(pid), cpu_seconds(engine_pid)
        engine = sum(engine_after) - sum(engine_cpu)
        user, system = after[0] - cpu[0], after[1] - cpu[1]
        ok = load["requests"] - load["non2xx"]
        return {
            "client": client,
            "concurrency": concurrency,
            "orders_per_s": round(ok / load["seconds"]),
            "errors": load["non2xx"] + load.get("socket_errors", 0),
            "p50_ms": round(load["p50_us"] / 1000, 2),
            "p99_ms": round(load["p99_us"] / 1000, 2),
            "gateway_cpu_us_per_order": round((user + system) / max(ok, 1) * 1e6),
            "gateway_user_us_per_order": round(user / max(ok, 1) * 1e6),
            "gateway_sys_us_per_order": round(system / max(ok, 1) * 1e6),
            "gateway_cores_busy": round((user + system) / load["seconds"], 2),
            "engine_cores_busy": round(engine / load["seconds"], 2),
            **({"bench_cpu_us_per_order": round(bench_cpu / max(ok, 1) * 1e6)} if client != "wrk" else {}),
            "load_average": round(os.getloadavg()[0], 1),
            **({"first_failure": load["first_failure"]} if "first_failure" in load else {}),
        }
    finally:
        ex.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["latency", "fanout", "rest", "slow"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=1000, help="latency: orders per second offered")
    parser.add_argument("--clients", type=int, default=100, help="latency: WebSocket clients")
    parser.add_argument(
        "--via", choices=["rest", "journal", "ws", "bare"], default="rest",
        help="latency: send orders through the gateway's REST API, append them to the journal directly, "
        "send them on the WebSocket API, or (bare) to a process that only writes their frames to the clients",
    )  # fmt: skip
    parser.add_argument(
        "--procs", type=int, default=4,
        help="latency: processes the clients are spread over (0: all in the load generator's process)",
    )  # fmt: skip
    parser.add_argument(
        "--group", type=int, default=3,
        help="latency --via bare: orders written to the clients together (as one engine batch)",
    )  # fmt: skip
    parser.add_argument("--slow", type=int, default=50, help="slow: stalled connections added")
    parser.add_argument("--payload", type=int, default=1024, help="slow: bytes per published message")
    parser.add_argument("--json", type=Path, help="also write the runs and their medians here")
    parser.add_argument(
        "--steadiness", type=float, default=3.0,
        help="latency, slow: seconds of bench/steadiness.py before each run (0: none)",
    )  # fmt: skip
    parser.add_argument("--conns", type=int, default=5000, help="fanout: connections")
    parser.add_argument("--batched", action="store_true", help="fanout: connect with ?batch=1")
    parser.add_argument("--burst", type=int, default=1, help="fanout: publications per pipeline")
    parser.add_argument("--concurrency", type=int, default=64, help="rest: requests in flight")
    parser.add_argument(
        "--client", choices=["wrk", "python", "ws"], default="wrk" if shutil.which("wrk") else "python",
        help="rest: load generator (wrk when installed: apt-get install wrk); ws: the WebSocket API",
    )  # fmt: skip
    parser.add_argument("--ws-conns", type=int, default=8, help="rest --client ws: connections")
    args = parser.parse_args()
    if args.scenario == "rest" and args.client == "python" and not shutil.which("wrk"):
        print("wrk not found (Debian: apt-get install wrk): the Python load generator is used", flush=True)
    uvloop.install()
    results = []
    console = Console()
    with Progress(
        TextColumn(f"gateway {args.scenario}"), BarColumn(), TextColumn("run {task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("runs", total=args.runs)
        for run in range(args.runs):
            probed = args.scenario in ("latency", "slow") and args.steadiness > 0
            machine = steadiness.probe(args.steadiness) if probed else []
            with tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
                root = Path(tmp)
                if args.scenario == "latency" and args.via == "bare":
                    bare = bare_run(args.rate, args.clients, args.seconds, args.procs, args.group)
                    result = asyncio.run(bare)
                elif args.scenario == "latency":
                    result = asyncio.run(
                        latency_run(root, args.rate, args.clients, args.seconds, args.via, args.procs)
                    )
                elif args.scenario == "fanout":
                    result = asyncio.run(fanout_run(root, args.conns, args.batched, args.burst, args.seconds))
                elif args.scenario == "slow":
                    result = asyncio.run(
                        slow_run(root, args.clients, args.slow, args.rate, args.seconds, args.payload)
                    )
                else:
                    result = asyncio.run(
                        rest_run(root, args.concurrency, args.seconds, args.client, args.ws_conns)
                    )
            if machine:
                result.update(steadiness.summary(machine))
            line = f"run {run + 1}: {orjson.dumps(result).decode()}"
            console.print(line, soft_wrap=True, markup=False, highlight=False)
            if machine:
                note = f"  just before it, {steadiness.describe(machine)}"
                console.print(note, soft_wrap=True, markup=False, highlight=False)
            results.append(result)
            progress.advance(task)
    medians = {
        key: statistics.median(float(r[key]) for r in results)
        for key in results[0]
        if isinstance(results[0][key], int | float) and not isinstance(results[0][key], bool)
    }
    print(f"median of {len(results)}: {orjson.dumps(medians).decode()}")
    table = Table(title=f"bench/gateway.py {args.scenario}: median of {len(results)} runs")
    table.add_column("figure")
    table.add_column("median", justify="right")
    table.add_column("runs", justify="right")
    for key, value in medians.items():
        table.add_row(key, f"{value:,.2f}", " / ".join(f"{float(r[key]):,.2f}" for r in results))
    console.print(table)
    if args.json:
        record = {"scenario": args.scenario, "argv": sys.argv[1:], "runs": results, "medians": medians}
        args.json.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
