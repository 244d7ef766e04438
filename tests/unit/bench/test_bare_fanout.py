"""bench/gateway.py's bare fan-out, the baseline of the latency bench: a real WebSocket client
accepts its handshake, and every client gets each order's frames as the watchers read them."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import websockets

sys.path.append(str(Path(__file__).resolve().parents[3] / "bench"))

import gateway


async def _serve() -> tuple[asyncio.Server, int, list[asyncio.Transport]]:
    clients: list[asyncio.Transport] = []
    ids = [0, 0]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: gateway.BareFanout(clients, ids), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], clients


async def _until(condition: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def test_a_websocket_library_accepts_the_handshake_and_reads_each_orders_frames() -> None:
    async def scenario() -> list[dict[str, object]]:
        server, port, clients = await _serve()
        async with websockets.connect(f"ws://127.0.0.1:{port}/stream?streams=btcusdt@depth") as ws:
            await _until(lambda: len(clients) == 1)
            _, orders = await asyncio.open_connection("127.0.0.1", port)
            orders.write(b"ORDERS\nM 30000.01\nT 30000.01\n")
            messages = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3)]
            orders.close()
        server.close()
        return messages

    maker_diff, trade, taker_diff = asyncio.run(scenario())
    assert maker_diff["stream"] == "btcusdt@depth"
    assert maker_diff["data"]["a"] == [["30000.01", "0.001"]]  # type: ignore[index]
    assert trade["stream"] == "btcusdt@trade"
    assert trade["data"]["p"] == "30000.01"  # type: ignore[index]
    assert taker_diff["data"]["a"] == [["30000.01", "0.00000000"]]  # type: ignore[index]
    assert taker_diff["data"]["U"] == maker_diff["data"]["u"] + 1  # type: ignore[index,operator]


def test_every_lean_client_sees_each_price_once_in_depth_and_each_trade() -> None:
    async def scenario() -> list[gateway.Seen]:
        server, port, clients = await _serve()
        seen: list[gateway.Seen] = [[], [], []]
        path = "/stream?streams=btcusdt@depth/btcusdt@trade"
        for record in seen:
            await gateway.open_client(port, path, gateway.watcher(record))
        await _until(lambda: len(clients) == 3)
        _, orders = await asyncio.open_connection("127.0.0.1", port)
        orders.write(b"ORDERS\nM 30000.01\nM 30000.02\n")
        await asyncio.sleep(0.01)
        orders.write(b"T 30000.01\nT 30")  # a line split across reads
        await asyncio.sleep(0.01)
        orders.write(b"000.02\n")
        await _until(lambda: all(len(record) == 4 for record in seen))
        orders.close()
        server.close()
        return seen

    for record in asyncio.run(scenario()):
        assert sorted((kind, price) for kind, price, _ in record) == [
            (b"d", b"30000.01"),
            (b"d", b"30000.02"),
            (b"t", b"30000.01"),
            (b"t", b"30000.02"),
        ]
