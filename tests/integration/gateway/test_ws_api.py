"""The WebSocket API (``/ws-api/v3``) against a real exchange: signed requests, the answers' envelope,
refusals with Binance's codes, one user's orders out of another's reach, concurrent requests on one
connection, and ccxt's ``*_ws`` methods with only the URL changed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import Trader, new_trader

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def api_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    with Exchange(Path(tmp_path_factory.mktemp("wsapi"))) as ex:
        yield ex


def signed(trader: Trader, params: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    """``params`` with ``apiKey``, ``timestamp`` and the signature of the sorted pairs."""
    out = {"apiKey": trader.user.api_key, "timestamp": int(time.time() * 1000), **params}
    payload = "&".join(
        f"{k}={orjson.dumps(v).decode() if not isinstance(v, str) else v}" for k, v in sorted(out.items())
    )
    key = (secret or trader.user.api_secret).encode()
    return {**out, "signature": hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()}


@contextlib.asynccontextmanager
async def ccxt_pro(ex: Exchange) -> AsyncIterator[tuple[Trader, Any]]:
    """A new trader and a ccxt.pro binance client for it, pointed at ``ex`` (markets loaded)."""
    import ccxt.pro

    from tests.integration.gateway.test_ccxt import configure

    trader = new_trader(ex)
    keys = {"apiKey": trader.user.api_key, "secret": trader.user.api_secret}
    client = configure(ccxt.pro.binance(keys), ex)
    try:
        await client.load_markets()
        yield trader, client
    finally:
        await client.close()


async def call(ws: ClientConnection, method: str, params: dict[str, Any] | None = None) -> Any:
    request_id = f"req-{next(_ids)}"
    await ws.send(orjson.dumps({"id": request_id, "method": method, "params": params or {}}))
    answer = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
    assert answer["id"] == request_id
    return answer


@pytest_asyncio.fixture(loop_scope="module")
async def ws(api_exchange: Exchange) -> AsyncIterator[ClientConnection]:
    async with connect(f"{api_exchange.ws_url}/ws-api/v3") as conn:
        yield conn


async def test_order_place_status_and_cancel_answer_as_rest_does(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    trader = new_trader(api_exchange)
    placed = await call(ws, "order.place", signed(trader, {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "price": "20000", "quantity": "0.01", "newClientOrderId": "ws-first", "recvWindow": 10000,
    }))  # fmt: skip
    assert placed["status"] == 200, placed
    result = placed["result"]
    assert (result["symbol"], result["clientOrderId"], result["status"]) == ("BTCUSDT", "ws-first", "NEW")
    assert placed["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert placed["rateLimits"][0]["count"] >= 1

    # the same order, as REST sees it, and as the WebSocket API sees it
    rest = trader.get("/api/v3/order", symbol="BTCUSDT", orderId=result["orderId"]).json()
    status = await call(
        ws, "order.status", signed(trader, {"symbol": "BTCUSDT", "orderId": result["orderId"]})
    )
    assert status["result"] == rest
    account = await call(ws, "account.status", signed(trader, {}))
    usdt = next(b for b in account["result"]["balances"] if b["asset"] == "USDT")
    assert usdt["locked"] == "200"

    opened = await call(ws, "openOrders.status", signed(trader, {"symbol": "BTCUSDT"}))
    assert [o["clientOrderId"] for o in opened["result"]] == ["ws-first"]
    canceled = await call(
        ws, "order.cancel", signed(trader, {"symbol": "BTCUSDT", "origClientOrderId": "ws-first"})
    )
    assert canceled["status"] == 200 and canceled["result"]["status"] == "CANCELED"
    account = await call(ws, "account.status", signed(trader, {}))
    usdt = next(b for b in account["result"]["balances"] if b["asset"] == "USDT")
    assert (usdt["free"], usdt["locked"]) == ("1000000", "0")
    commission = await call(ws, "account.commission", signed(trader, {"symbol": "BTCUSDT"}))
    assert commission["result"]["standardCommission"]["maker"] == "0.00100000"


async def test_public_methods_and_rate_limits_opt_out(ws: ClientConnection) -> None:
    assert (await call(ws, "ping"))["result"] == {}
    server_time = (await call(ws, "time"))["result"]["serverTime"]
    assert abs(server_time - time.time() * 1000) < 60_000
    depth = await call(ws, "depth", {"symbol": "BTCUSDT", "limit": 5})
    assert depth["status"] == 200 and "lastUpdateId" in depth["result"]
    quiet = await call(ws, "ticker.price", {"symbol": "ETHUSDT", "returnRateLimits": False})
    assert quiet["result"]["symbol"] == "ETHUSDT" and "rateLimits" not in quiet
    both = await call(ws, "ticker.price", {"symbols": ["BTCUSDT", "ETHUSDT"]})  # an array, as Binance's
    assert [t["symbol"] for t in both["result"]] == ["BTCUSDT", "ETHUSDT"]


async def test_refusals_carry_binance_codes_and_change_nothing(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    trader = new_trader(api_exchange)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "price": "20000", "quantity": "0.01"}  # fmt: skip
    wrong_secret = await call(ws, "order.place", signed(trader, order, secret="not-the-secret"))
    assert (wrong_secret["status"], wrong_secret["error"]["code"]) == (400, -1022)
    stale = await call(
        ws, "order.place", signed(trader, {**order, "timestamp": int(time.time() * 1000) - 120_000})
    )
    assert stale["error"]["code"] == -1021
    unsigned = await call(ws, "order.place", {**order, "apiKey": trader.user.api_key, "timestamp": 1})
    assert unsigned["error"]["code"] == -1102 and "signature" in unsigned["error"]["msg"]
    no_key = await call(ws, "account.status", {"timestamp": int(time.time() * 1000), "signature": "00"})
    assert (no_key["status"], no_key["error"]["code"]) == (401, -2014)
    bad_symbol = await call(ws, "order.place", signed(trader, {**order, "symbol": "NOPE"}))
    assert bad_symbol["error"]["code"] == -1121
    unknown = await call(ws, "order.teleport", {})
    assert unknown["status"] == 400 and "unknown method 'order.teleport'" in unknown["error"]["msg"]
    nested = await call(ws, "order.place", {"symbol": ["BTCUSDT"]})
    assert nested["error"]["code"] == -1100 and "'symbol'" in nested["error"]["msg"]

    await ws.send(b"{not json")
    garbled = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
    assert garbled["id"] is None and garbled["status"] == 400 and garbled["error"]["code"] == -1100
    await ws.send(orjson.dumps({"method": "ping"}))
    no_id = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
    assert no_id["error"]["code"] == -1102 and "'id'" in no_id["error"]["msg"]

    # nothing above reached the engine: no order, nothing locked
    assert trader.get("/api/v3/openOrders", symbol="BTCUSDT").json() == []
    account = trader.get("/api/v3/account").json()
    assert all(b["locked"] == "0" for b in account["balances"])
    assert (await call(ws, "ping"))["status"] == 200  # and the connection still serves


async def test_a_parameter_sent_twice_is_refused_with_1101_as_rest_does(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    """orjson keeps the last of two values of one name; a signature over the last one must not
    place an order the client may have meant otherwise (REST refuses the same with -1101)."""
    trader = new_trader(api_exchange)
    order = signed(trader, {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                            "price": "90000", "quantity": "0.01"})  # fmt: skip
    body = orjson.dumps(order).decode()
    for index, twice in enumerate(['"side":"BUY",', '"s\\u0069de" : "BUY", ']):
        frame = f'{{"id":"dup-{index}","method":"order.place","params":{{{twice}{body[1:]}}}'
        assert orjson.loads(frame)["params"] == order  # what the last value alone would have placed
        await ws.send(frame)
        answer = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
        assert (answer["id"], answer["status"]) == (f"dup-{index}", 400), answer
        assert answer["error"] == {"code": -1101, "msg": "Duplicate values for a parameter detected."}
    unsigned = {k: v for k, v in order.items() if k != "signature"}
    rest = trader.http.post(
        "/api/v3/order", content="side=BUY&" + trader.sign(unsigned),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert (rest.status_code, rest.json()["code"]) == (400, -1101)
    assert trader.get("/api/v3/openOrders", symbol="BTCUSDT").json() == []  # nothing placed
    placed = await call(ws, "order.place", order)  # the same request without the repeat
    assert placed["status"] == 200 and placed["result"]["side"] == "SELL", placed


async def test_either_form_of_the_signed_pairs_is_accepted(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    trader = new_trader(api_exchange)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "12000",
             "quantity": "0.01", "apiKey": trader.user.api_key,
             "timestamp": int(time.time() * 1000)}  # fmt: skip
    for client_id, encode in (("raw:form/1", False), ("encoded:form/2", True)):
        params = {**order, "newClientOrderId": client_id}
        pairs = [(k, str(v)) for k, v in sorted(params.items())]
        payload = urlencode(pairs) if encode else "&".join(f"{k}={v}" for k, v in pairs)
        signature = hmac.new(trader.user.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        placed = await call(ws, "order.place", {**params, "signature": signature})
        assert placed["status"] == 200 and placed["result"]["clientOrderId"] == client_id, placed


async def test_one_user_cannot_see_or_cancel_anothers_order(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    owner, other = new_trader(api_exchange), new_trader(api_exchange)
    placed = await call(ws, "order.place", signed(owner, {
        "symbol": "ETHUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
        "price": "9000", "quantity": "1",
    }))  # fmt: skip
    order_id = placed["result"]["orderId"]
    peek = await call(ws, "order.status", signed(other, {"symbol": "ETHUSDT", "orderId": order_id}))
    assert peek["error"]["code"] == -2013
    cancel = await call(ws, "order.cancel", signed(other, {"symbol": "ETHUSDT", "orderId": order_id}))
    assert cancel["error"]["code"] == -2011
    assert owner.get("/api/v3/order", symbol="ETHUSDT", orderId=order_id).json()["status"] == "NEW"


async def test_an_order_id_over_64_bits_is_refused_not_a_500(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    """orjson cannot journal an integer over 64 bits: the cancel used to fail inside the gateway."""
    trader = new_trader(api_exchange)
    params = signed(trader, {"symbol": "BTCUSDT", "orderId": str(10**25)})  # signed as the number's text
    frame = json.dumps({"id": "big", "method": "order.cancel", "params": {**params, "orderId": 10**25}})
    await ws.send(frame)
    answer = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
    assert answer["status"] == 400, answer
    assert answer["error"] == {
        "code": -1100,
        "msg": "Illegal characters found in parameter 'orderId'; legal range is '0 to 9223372036854775807'.",
    }


async def test_requests_in_flight_on_one_connection_are_all_answered_by_id(
    api_exchange: Exchange, ws: ClientConnection
) -> None:
    trader = new_trader(api_exchange)
    count = 200
    for i in range(count):
        await ws.send(orjson.dumps({"id": i, "method": "order.place", "params": signed(trader, {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "price": str(10000 + i), "quantity": "0.001", "newClientOrderId": f"burst-{i}",
        })}))  # fmt: skip
    answers = [orjson.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(count)]
    assert sorted(a["id"] for a in answers) == list(range(count))
    assert all(a["status"] == 200 for a in answers)
    assert {a["result"]["clientOrderId"] for a in answers} == {f"burst-{i}" for i in range(count)}
    opened = trader.get("/api/v3/openOrders", symbol="BTCUSDT").json()
    assert len(opened) == count


async def test_ccxt_ws_methods_place_fetch_and_cancel(api_exchange: Exchange) -> None:
    import ccxt

    async with ccxt_pro(api_exchange) as (_, client):
        order = await client.create_order_ws("BTC/USDT", "limit", "buy", 0.02, 21000)
        assert order["status"] == "open" and order["amount"] == 0.02
        fetched = await client.fetch_order_ws(order["id"], "BTC/USDT")
        assert fetched["id"] == order["id"] and fetched["price"] == 21000
        opened = await client.fetch_open_orders_ws("BTC/USDT")
        assert [o["id"] for o in opened] == [order["id"]]
        balance = await client.fetch_balance_ws()  # ccxt parses spot balances only in REST: read the info
        usdt = next(b for b in balance["info"]["balances"] if b["asset"] == "USDT")
        assert usdt["locked"] == "420"
        canceled = await client.cancel_order_ws(order["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        with pytest.raises(ccxt.InsufficientFunds):
            await client.create_order_ws("BTC/USDT", "limit", "buy", 1000, 21000)


async def recv_answer(ws: ClientConnection, request_id: Any, events: list[Any]) -> Any:
    """The answer to ``request_id``; user data events that come first are put in ``events``."""
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
        if "subscriptionId" in message and "event" in message:
            events.append(message)
        elif message.get("id") == request_id:
            return message


async def test_user_data_subscription_delivers_the_owners_events_on_the_connection(
    api_exchange: Exchange,
) -> None:
    owner, other = new_trader(api_exchange), new_trader(api_exchange)
    events: list[Any] = []
    async with connect(f"{api_exchange.ws_url}/ws-api/v3") as ws:

        async def ask(request_id: str, method: str, params: dict[str, Any]) -> Any:
            await ws.send(orjson.dumps({"id": request_id, "method": method, "params": params}))
            return await recv_answer(ws, request_id, events)

        unsigned = await ask("s0", "userDataStream.subscribe.signature", {"apiKey": owner.user.api_key})
        assert unsigned["error"]["code"] == -1102
        subscribed = await ask("s1", "userDataStream.subscribe.signature", signed(owner, {}))
        assert subscribed["status"] == 200 and subscribed["result"] == {"subscriptionId": 0}
        again = await ask("s2", "userDataStream.subscribe.signature", signed(owner, {}))
        assert again["result"] == {"subscriptionId": 0}
        assert (await ask("l1", "session.subscriptions", {}))["result"] == [{"subscriptionId": 0}]

        # someone else's order: nothing for this connection
        other.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", price="15000",
                    quantity="0.01")  # fmt: skip
        placed = await ask("o1", "order.place", signed(owner, {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "price": "15000", "quantity": "0.02", "newClientOrderId": "watched",
        }))  # fmt: skip
        assert placed["status"] == 200

        async def until(predicate: Any) -> None:
            while not predicate():
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
                if "event" in message:
                    events.append(message)

        wanted = {"executionReport", "outboundAccountPosition"}
        await until(lambda: {e["event"]["e"] for e in events} >= wanted)
        assert all(e["subscriptionId"] == 0 for e in events)
        report = next(e["event"] for e in events if e["event"]["e"] == "executionReport")
        assert (report["c"], report["X"], report["q"]) == ("watched", "NEW", "0.02")
        position = next(e["event"] for e in events if e["event"]["e"] == "outboundAccountPosition")
        assert {"a": "USDT", "f": "999700", "l": "300"} in position["B"]

        missing = await ask("u0", "userDataStream.unsubscribe", {"subscriptionId": 7})
        assert missing["error"]["code"] == -2035
        assert (await ask("u1", "userDataStream.unsubscribe", {"subscriptionId": 0}))["result"] == {}
        assert (await ask("l2", "session.subscriptions", {}))["result"] == []
        events.clear()
        quiet = await ask("o2", "order.place", signed(owner, {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "price": "15000", "quantity": "0.01",
        }))  # fmt: skip
        assert quiet["status"] == 200
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.0)
        assert events == []


async def test_ccxt_watch_orders_and_balance_follow_the_account(api_exchange: Exchange) -> None:
    async with ccxt_pro(api_exchange) as (trader, client):
        watching = asyncio.ensure_future(client.watch_orders("ETH/USDT"))
        balances = asyncio.ensure_future(client.watch_balance())
        await asyncio.sleep(1.0)  # both subscribed (one subscription on the WebSocket API connection)
        placed = trader.order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", price="1000",
                              quantity="3", newClientOrderId="ccxt-watched").json()  # fmt: skip
        orders = await asyncio.wait_for(watching, 15)
        assert [(o["id"], o["clientOrderId"], o["status"]) for o in orders] == [
            (str(placed["orderId"]), "ccxt-watched", "open")
        ]
        balance = await asyncio.wait_for(balances, 15)
        assert balance["USDT"]["used"] == 3000


async def test_clients_behind_the_proxy_are_charged_weight_each_by_their_own_address(
    api_exchange: Exchange,
) -> None:
    # the tests connect from 127.0.0.1, a trusted proxy by default (as for REST): X-Forwarded-For counts
    counts = []
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
        async with connect(
            f"{api_exchange.ws_url}/ws-api/v3", additional_headers={"X-Forwarded-For": address}
        ) as conn:
            answer = await call(conn, "exchangeInfo", {"symbol": "BTCUSDT"})
            counts.append(answer["rateLimits"][0]["count"])
    assert counts[0] == counts[1] == 20 and counts[2] == 40  # exchangeInfo weighs 20


async def test_more_requests_than_the_in_flight_limit_are_all_answered(api_exchange: Exchange) -> None:
    trader = new_trader(api_exchange)
    count = 1_100  # past the 1,024 a connection may have unanswered: reading pauses, nothing is refused
    order = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "price": "1000", "quantity": "0.1", "newOrderRespType": "ACK"}  # fmt: skip
    frames = [orjson.dumps({"id": i, "method": "order.place", "params": signed(trader, order)})
              for i in range(count)]  # fmt: skip
    async with connect(f"{api_exchange.ws_url}/ws-api/v3", max_queue=None) as conn:
        for frame in frames:
            await conn.send(frame)
        answers = [orjson.loads(await asyncio.wait_for(conn.recv(), 60)) for _ in range(count)]
    assert sorted(a["id"] for a in answers) == list(range(count))
    assert all(a["status"] == 200 for a in answers), next(a for a in answers if a["status"] != 200)
    assert len(trader.get("/api/v3/openOrders", symbol="ETHUSDT").json()) == count


class RawClient:
    """A WebSocket client that can put several frames in one TCP write (the websockets library
    writes each frame on its own), to reach the gateway as one read."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send_together(self, *messages: Any) -> None:
        frames = b""
        for message in messages:
            payload = orjson.dumps(message)
            assert len(payload) < 65536
            size = len(payload)
            length = bytes([0x80 | size]) if size < 126 else b"\xfe" + size.to_bytes(2, "big")
            frames += b"\x81" + length + b"\0\0\0\0" + payload  # masked with a zero key
        self.writer.write(frames)

    async def recv(self, timeout: float = 15) -> Any:
        while True:
            opcode, size = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            length = size & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(length)
            if opcode & 0x0F == 0x1:
                return orjson.loads(payload)

    def close(self) -> None:
        self.writer.close()


async def test_unsubscribe_then_subscribe_in_one_write_still_delivers_events(api_exchange: Exchange) -> None:
    owner = new_trader(api_exchange)
    client = await RawClient.open(api_exchange.ports[0], "/ws-api/v3")
    try:
        subscribe = {"method": "userDataStream.subscribe.signature", "params": signed(owner, {})}
        client.send_together({"id": "a", **subscribe})
        assert (await client.recv())["result"] == {"subscriptionId": 0}
        # one read: the unsubscribe's deferred Redis UNSUBSCRIBE must not undo the new subscription
        client.send_together(
            {"id": "b", "method": "userDataStream.unsubscribe", "params": {}},
            {"id": "c", "method": "userDataStream.subscribe.signature", "params": signed(owner, {})},
        )
        answers = {}
        while len(answers) < 2:
            message = await client.recv()
            answers[message["id"]] = message
        assert answers["c"]["result"] == {"subscriptionId": 1}
        await asyncio.sleep(0.3)  # the deferred unsubscribe has had its turn
        owner.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", price="14000",
                    quantity="0.01", newClientOrderId="after-resubscribe")  # fmt: skip
        while True:
            message = await client.recv()
            if message.get("event", {}).get("c") == "after-resubscribe":
                assert message["subscriptionId"] == 1
                break
    finally:
        client.close()


async def test_a_request_that_cannot_reach_redis_is_a_503_on_both_transports(tmp_path: Path) -> None:
    with Exchange(tmp_path / "exchange") as ex:
        trader = new_trader(ex)  # its key is not in the gateway's cache yet: reading it needs Redis
        async with connect(f"{ex.ws_url}/ws-api/v3") as conn:
            ex.redis.kill()
            try:
                rest = await asyncio.to_thread(trader.get, "/api/v3/account")
                assert (rest.status_code, rest.json()["code"]) == (503, -1001)
                answer = await call(conn, "account.status", signed(trader, {}))
                assert (answer["status"], answer["error"]["code"]) == (503, -1001)
            finally:
                ex.redis.restart()
            for _ in range(100):  # the gateway's clients reconnect
                answer = await call(conn, "account.status", signed(trader, {}))
                if answer["status"] == 200:
                    break
                await asyncio.sleep(0.1)
            assert answer["status"] == 200 and answer["result"]["balances"]


async def test_ccxt_fetch_trades_ws_reads_trades_historical(api_exchange: Exchange) -> None:
    """ccxt's ``fetch_trades_ws`` asks for ``trades.historical`` (``GET /historicalTrades``)."""
    maker = new_trader(api_exchange)
    sold = maker.order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2",
                       price="3333")  # fmt: skip
    assert sold.status_code == 200, sold.text
    async with ccxt_pro(api_exchange) as (taker, client):
        bought = taker.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.2").json()
        trades = await client.fetch_trades_ws("ETH/USDT", None, 5)
        trade_id = bought["fills"][0]["tradeId"]
        assert trades[-1]["id"] == str(trade_id) and trades[-1]["price"] == 3333
        assert trades[-1]["amount"] == 0.2 and trades[-1]["side"] == "buy"
        older = await client.fetch_trades_ws("ETH/USDT", None, 1, {"fromId": trade_id})
        assert [t["id"] for t in older] == [str(trade_id)]


async def test_ccxt_edit_order_ws_is_order_cancel_replace(api_exchange: Exchange) -> None:
    async with ccxt_pro(api_exchange) as (_, client):
        old = await client.create_order_ws("BTC/USDT", "limit", "buy", 0.02, 21311)
        new = await client.edit_order_ws(old["id"], "BTC/USDT", "limit", "buy", 0.03, 21312)
        assert new["id"] != old["id"] and (new["price"], new["amount"]) == (21312, 0.03)
        assert (await client.fetch_order_ws(old["id"], "BTC/USDT"))["status"] == "canceled"
        assert [o["id"] for o in await client.fetch_open_orders_ws("BTC/USDT")] == [new["id"]]
