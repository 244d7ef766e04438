"""Signed endpoints: orders, cancels, order queries, trades and balances of the key's owner.

An order is answered only after the engine's reply (``Submitter.submit``), so even an ``ACK``
carries the ``orderId`` the engine gave it, and an acknowledged order is in the journal on disk.
Reads come from the engine's account views (``tw:orders:<user>``, ``tw:open:<user>``,
``tw:cid:<user>``, ``tw:closed:<user>``, ``tw:mytrades:<user>:<symbol>``, ``tw:bal:<user>``), always
under the user of the API key: no parameter can name another user, so nobody sees or touches
another's orders.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import msgspec
import orjson

from tradewire import keys
from tradewire.accounts.errors import binance_error
from tradewire.accounts.responses import OrderRejected, binance_order_response, cancel_response, rejection
from tradewire.engine.config import Fee, Market
from tradewire.gateway import errors
from tradewire.gateway import params as p
from tradewire.gateway.auth import ApiKey
from tradewire.gateway.errors import ApiError
from tradewire.gateway.markets import order_limits
from tradewire.gateway.public import market_of
from tradewire.gateway.service import Gateway
from tradewire.gateway.streams import symbol_of
from tradewire.journal.entries import Reply
from tradewire.journal.quota import (
    COUNT_FIELDS,
    OrderCounts,
    OrderQuota,
    TooManyOrders,
    counts_at,
    counts_key,
)
from tradewire.journal.submit import SubmitError, SubmitTimeout, SubmitUnknown
from tradewire.ops.metrics import ORDER_ACK_SECONDS, RATE_LIMIT_HITS

Params = Mapping[str, str]


def _require_trade(key: ApiKey) -> None:
    if not key.can_trade:
        raise errors.error(errors.REJECTED_API_KEY, 401)


ORDER_COUNTS: ContextVar[OrderCounts | None] = ContextVar("order_counts", default=None)
"""The account's order counts after the new order this request placed, for the answer's
``X-MBX-ORDER-COUNT-*`` headers or WebSocket ``rateLimits`` (set by :func:`_submit_order`)."""


@contextlib.contextmanager
def _journalling() -> Iterator[None]:
    """A command that could not be journalled, or whose outcome did not come in time, as Binance's
    errors: "try again" (-1001) only when it is known not to be in the journal, else "status
    unknown" (-1007), so that a client looks before it sends an order twice."""
    try:
        yield
    except (SubmitTimeout, SubmitUnknown) as exc:
        raise errors.error(errors.TIMEOUT, 503) from exc
    except SubmitError as exc:
        raise errors.error(errors.DISCONNECTED, 503) from exc


async def _submit(gateway: Gateway, command: Any, key: ApiKey, ip: str) -> Reply:
    with _journalling():
        return await gateway.submitter.submit(msgspec.to_builtins(command), who=key.key, ip=ip)


async def _submit_order(gateway: Gateway, command: Any, key: ApiKey, ip: str) -> Reply:
    """:func:`_submit` of a new order, counted against its account's order limits (a limit of 0 is
    none; both 0: not counted); the counts go to :data:`ORDER_COUNTS` for the answer."""
    limits = gateway.limits
    quota = None
    if limits.orders_per_10s or limits.orders_per_day:
        quota = OrderQuota(key.user, limits.orders_per_10s, limits.orders_per_day)
    try:
        with _journalling():
            reply, counts = await gateway.submitter.submit_order(
                msgspec.to_builtins(command), quota, who=key.key, ip=ip
            )
    except TooManyOrders as exc:
        RATE_LIMIT_HITS.labels("orders").inc()
        ORDER_COUNTS.set(exc.counts)
        raise ApiError(-1015, str(exc), 429) from None
    ORDER_COUNTS.set(counts)
    return reply


async def new_order(gateway: Gateway, params: Params, key: ApiKey, ip: str, test: bool = False) -> bytes:
    started = time.perf_counter()
    _require_trade(key)
    market = market_of(gateway, params)
    command = p.new_order(params, key.user, market.name)
    kind = p.response_type(params, p.folded(params.get("type", "")))
    beyond = p.past_maximum(command)
    if beyond is not None:
        raise beyond
    if test:
        reason = p.filter_failure(command, market)
        if reason is not None:
            error = binance_error(reason)
            raise ApiError(error.code, error.msg, error.http_status)
        return b"{}"
    reply = await _submit_order(gateway, command, key, ip)
    try:
        body = binance_order_response(command, reply.events, reply.ts, gateway.markets.config, kind)
    except OrderRejected as exc:
        raise ApiError(exc.error.code, exc.error.msg, exc.error.http_status) from None
    ORDER_ACK_SECONDS.observe(time.perf_counter() - started)
    return orjson.dumps(body)


async def cancel_order(gateway: Gateway, params: Params, key: ApiKey, ip: str) -> bytes:
    """Cancel by ``orderId`` or ``origClientOrderId``; with both, as Binance, only the order that
    has both (an order's client id never changes, so checking it before the cancel is enough)."""
    _require_trade(key)
    market = market_of(gateway, params)
    command = p.cancel(params, key.user, market.name)
    cancel_id = p.client_id_param(params, "newClientOrderId") or p.new_client_order_id()
    order_id, client_id = p.order_reference(params)
    if order_id is not None and client_id is not None:
        record = await _record(gateway, key.user, order_id)
        if record is None or record.get("clientOrderId") != client_id:
            raise errors.error(errors.CANCEL_REJECTED)
    reply = await _submit(gateway, command, key, ip)
    error = rejection(reply.events)
    if error is not None:
        raise ApiError(error.code, error.msg, error.http_status)
    order_id = next((e.get("order_id") for e in reply.events if e.get("type") == "canceled"), None)
    raw = await gateway.client.hget(keys.orders(key.user), str(order_id)) if order_id is not None else None
    if raw is None:
        raise errors.error(errors.CANCEL_REJECTED)
    return orjson.dumps(cancel_response(orjson.loads(raw), reply.ts, cancel_id))


CANCEL_REPLACE_MODES: Final = ("STOP_ON_FAILURE", "ALLOW_FAILURE")


async def cancel_replace(gateway: Gateway, params: Params, key: ApiKey, ip: str) -> bytes:
    """``POST /api/v3/order/cancelReplace`` (ccxt's ``edit_order``): cancel ``cancelOrderId`` or
    ``cancelOrigClientOrderId``, then place the new order, as two commands (another command may come
    between them; the cancel is done first, so the account never holds both). Both parameter sets are
    checked before anything is sent. ``STOP_ON_FAILURE``: a refused cancel places nothing
    (``-2022``); ``ALLOW_FAILURE`` places it anyway. One outcome refused is ``409`` with ``-2021``,
    both ``400`` with ``-2022``; ``data`` says which, as Binance's does."""
    _require_trade(key)
    market = market_of(gateway, params)
    mode = p.folded(p.required(params, "cancelReplaceMode"))
    if mode not in CANCEL_REPLACE_MODES:
        raise errors.out_of_range("cancelReplaceMode", ", ".join(CANCEL_REPLACE_MODES))
    p.cancel_restrictions(params)
    target = {"symbol": params["symbol"], "orderId": params.get("cancelOrderId", ""),
              "origClientOrderId": params.get("cancelOrigClientOrderId", ""),
              "newClientOrderId": params.get("cancelNewClientOrderId", "")}  # fmt: skip
    try:
        p.order_reference(target)
    except ApiError as exc:
        if exc.code == -1102:
            raise ApiError(
                -1102,
                "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!",
            ) from None
        # a malformed id: the same answer, naming the parameter the client sent
        named = exc.msg.replace("'orderId'", "'cancelOrderId'")
        raise ApiError(exc.code, named.replace("'origClientOrderId'", "'cancelOrigClientOrderId'")) from None
    beyond = p.past_maximum(p.new_order(params, key.user, market.name))
    if beyond is not None:  # refused before the cancel, as every other check of the new order
        raise beyond
    p.client_id_param(params, "cancelNewClientOrderId")
    p.response_type(params, p.folded(params.get("type", "")))
    outcome: dict[str, Any] = {}
    try:
        outcome["cancelResponse"] = orjson.loads(await cancel_order(gateway, target, key, ip))
        outcome["cancelResult"] = "SUCCESS"
    except ApiError as exc:
        if exc.status >= 500:
            raise
        outcome["cancelResult"], outcome["cancelResponse"] = "FAILURE", {"code": exc.code, "msg": exc.msg}
        if mode == "STOP_ON_FAILURE":
            outcome["newOrderResult"], outcome["newOrderResponse"] = "NOT_ATTEMPTED", None
            raise ApiError(-2022, "Order cancel-replace failed.", data=_in_order(outcome)) from None
    try:
        outcome["newOrderResponse"] = orjson.loads(await new_order(gateway, params, key, ip))
        outcome["newOrderResult"] = "SUCCESS"
    except ApiError as exc:
        if exc.status >= 500:  # its outcome is unknown (it may be in the journal): never say FAILURE
            raise
        outcome["newOrderResult"], outcome["newOrderResponse"] = "FAILURE", {"code": exc.code, "msg": exc.msg}
    if outcome["cancelResult"] == outcome["newOrderResult"] == "SUCCESS":
        return orjson.dumps(_in_order(outcome))
    if "SUCCESS" in (outcome["cancelResult"], outcome["newOrderResult"]):
        raise ApiError(-2021, "Order cancel-replace partially failed.", 409, data=_in_order(outcome))
    raise ApiError(-2022, "Order cancel-replace failed.", data=_in_order(outcome))


def _in_order(outcome: dict[str, Any]) -> dict[str, Any]:
    """A cancel-replace's outcome with its keys in Binance's order."""
    names = ("cancelResult", "newOrderResult", "cancelResponse", "newOrderResponse")
    return {name: outcome[name] for name in names}


async def cancel_open_orders(gateway: Gateway, params: Params, key: ApiKey, ip: str) -> bytes:
    _require_trade(key)
    market = market_of(gateway, params)
    records = await _open_records(gateway, key.user, market)
    out = []
    for record in records:
        command = p.cancel({"orderId": str(record["orderId"])}, key.user, market.name)
        reply = await _submit(gateway, command, key, ip)
        if rejection(reply.events) is None:
            # as it was canceled: it may have traded since it was read
            after = await _record(gateway, key.user, record["orderId"]) or record
            out.append(cancel_response(after, reply.ts, p.new_client_order_id()))
    return orjson.dumps(out)


async def _record(gateway: Gateway, user: str, order_id: int) -> dict[str, Any] | None:
    raw: Any = await gateway.client.hget(keys.orders(user), str(order_id))
    return orjson.loads(raw) if raw is not None else None


async def query_order(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """The order named by ``orderId`` or ``origClientOrderId``; with both, only if it has both."""
    market = market_of(gateway, params)
    order_id, client_id = p.order_reference(params)
    if order_id is None:
        found = await gateway.client.hget(keys.client_ids(key.user), client_id)  # type: ignore[arg-type]
        if found is None:
            raise errors.error(errors.UNKNOWN_ORDER)
        order_id = int(found)
    raw: Any = await gateway.client.hget(keys.orders(key.user), str(order_id))
    record = orjson.loads(raw) if raw is not None else None
    if (
        record is None
        or record.get("symbol") != symbol_of(market.name)
        or (client_id is not None and record.get("clientOrderId") != client_id)
    ):
        raise errors.error(errors.UNKNOWN_ORDER)
    return bytes(raw)


async def _open_records(gateway: Gateway, user: str, market: Market | None) -> list[dict[str, Any]]:
    ids: Any = await gateway.client.zrange(keys.open_orders(user), 0, -1)
    if not ids:
        return []
    raws = await gateway.client.hmget(keys.orders(user), ids)
    records = [orjson.loads(raw) for raw in raws if raw is not None]
    if market is not None:
        symbol = symbol_of(market.name)
        records = [r for r in records if r.get("symbol") == symbol]
    return records


async def open_orders(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    market = market_of(gateway, params) if params.get("symbol") else None
    return orjson.dumps(await _open_records(gateway, key.user, market))


async def all_orders(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """The user's orders in one market (:func:`_walk`), chosen as :func:`_select` says."""
    market = market_of(gateway, params)

    def walk(from_id: int | None) -> AsyncIterator[dict[str, Any]]:
        return _walk(gateway, key.user, market, from_id, page=p.limit_param(params, 500, 1000))

    return orjson.dumps(await _select(walk, params, "orderId"))


async def _select(
    walk: Callable[[int | None], AsyncIterator[dict[str, Any]]],
    params: Params,
    from_name: str,
    keep: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> list[dict[str, Any]]:
    """Binance's choice of history items (orders, fills), oldest first: from the id ``from_name``
    on, or within ``startTime``..``endTime`` (the oldest ``limit`` from ``startTime``, the newest
    before ``endTime``), or the newest ``limit``; ``keep`` filters further.

    ``walk(from_id)`` yields the items by id, forwards from ``from_id`` or backwards from the newest
    when it is ``None``: an item's ``time`` never decreases with its id (ids are given in journal
    order, exchange time never runs backwards), so the walk stops where the window ends, and no
    request reads a user's whole history."""
    from_id = p.int_param(params, from_name)
    start, end = p.time_range(params)
    limit = p.limit_param(params, 500, 1000)
    chosen: list[dict[str, Any]] = []
    if from_id is not None:
        async for item in walk(from_id):
            if end is not None and item["time"] > end:
                break
            if (start is None or item["time"] >= start) and keep(item):
                chosen.append(item)
                if len(chosen) == limit:
                    break
        return chosen
    async for item in walk(None):
        if start is not None and item["time"] < start:
            break
        if (end is None or item["time"] <= end) and keep(item):
            chosen.append(item)
            if start is None and len(chosen) == limit:
                break
    chosen.reverse()
    return chosen[:limit]


async def _walk(
    gateway: Gateway, user: str, market: Market, from_id: int | None, *, page: int
) -> AsyncIterator[dict[str, Any]]:
    """The records of the user's orders in ``market`` by id: forwards from ``from_id``, or backwards
    from the newest when it is ``None``. The open ones come from ``tw:open:<user>`` (read whole, as
    ``openOrders`` does); the closed ones a page at a time from ``tw:closed:<user>``, whose members
    name their symbol, so only this market's records are read. An order that closes during the walk
    is given once; one trimmed during it may be missed, as with any paged read of a moving history."""
    forwards = from_id is not None
    symbol = symbol_of(market.name)
    pending = deque(
        sorted(
            (
                r
                for r in await _open_records(gateway, user, market)
                if not forwards or r["orderId"] >= from_id
            ),
            key=lambda r: int(r["orderId"]),
            reverse=not forwards,
        )
    )
    closed, wanted = keys.closed_orders(user), symbol.encode()
    bound: int | str = from_id if from_id is not None else "+inf"
    while True:
        if forwards:
            members: Any = await gateway.client.zrangebyscore(closed, bound, "+inf", start=0, num=page)
        else:
            members = await gateway.client.zrevrangebyscore(closed, bound, "-inf", start=0, num=page)
        mine = []
        for member in members:  # "<id> <symbol> <client id>"
            order_id, member_symbol, _ = member.split(b" ", 2)
            if member_symbol == wanted:
                mine.append(order_id)
        raws: Any = await gateway.client.hmget(keys.orders(user), mine) if mine else []
        records = [orjson.loads(raw) for raw in raws if raw is not None]
        for record in records:  # merged by id with the open orders
            while pending and (pending[0]["orderId"] < record["orderId"]) == forwards:
                yield pending.popleft()
            if pending and pending[0]["orderId"] == record["orderId"]:
                pending.popleft()  # it closed during the walk: once, as it is now
            yield record
        if len(members) < page:
            break
        bound = "(" + members[-1].split(b" ", 1)[0].decode()
    for record in pending:
        yield record


async def my_trades(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """The user's fills in one market, chosen as :func:`_select` says (``fromId``, ``orderId``)."""
    market = market_of(gateway, params)
    stream = keys.user_trades(key.user, symbol_of(market.name))
    page = p.limit_param(params, 500, 1000)
    order_id = p.int_param(params, "orderId")

    async def walk(from_id: int | None) -> AsyncIterator[dict[str, Any]]:
        """The fills by trade id (their entry ids), a page at a time."""
        bound = str(from_id) if from_id is not None else "+"
        while True:
            if from_id is not None:
                entries: Any = await gateway.client.xrange(stream, bound, "+", count=page)
            else:
                entries = await gateway.client.xrevrange(stream, bound, "-", count=page)
            for _, fields in entries:
                yield orjson.loads(fields[b"t"])
            if len(entries) < page:
                return
            bound = "(" + entries[-1][0].decode()

    keep = (lambda trade: trade["orderId"] == order_id) if order_id is not None else (lambda _: True)
    return orjson.dumps(await _select(walk, params, "fromId", keep))


async def order_rate_limits(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """``GET /api/v3/rateLimit/order``: the account's unfilled-order counts in the current windows,
    in Redis's time as the counting script's (an order that traded no longer counts)."""
    pipe = gateway.client.pipeline(transaction=False)
    pipe.time()
    pipe.hmget(counts_key(key.user), COUNT_FIELDS)
    (seconds, micros), held = await pipe.execute()
    counts = counts_at(seconds * 1000 + micros // 1000, held)
    limits = gateway.limits
    answer = []
    for limit in order_limits(limits.orders_per_10s, limits.orders_per_day):
        count = counts.ten_seconds if limit["interval"] == "SECOND" else counts.day
        answer.append({**limit, "count": count})
    return orjson.dumps(answer)


async def account(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """``GET /api/v3/account``. Every asset of the exchange is listed, those the user never held at
    zero, as Binance lists them (python-binance's ``get_asset_balance`` and ccxt's ``fetch_balance``
    look an asset up in the list), unless ``omitZeroBalances=true``."""
    raw: Any = await gateway.client.hgetall(keys.balances(key.user))
    held = {asset.decode(): orjson.loads(value) for asset, value in raw.items()}
    omit_zero = params.get("omitZeroBalances", "").lower() == "true"
    balances = []
    for asset in sorted(held.keys() | gateway.markets.config.assets.keys()):
        value = held.get(asset, {})
        free, locked = value.get("free", "0"), value.get("locked", "0")
        if omit_zero and free == "0" and locked == "0":
            continue
        balances.append({"asset": asset, "free": free, "locked": locked})
    markets = gateway.markets.config.markets.values()
    maker = max((m.maker_fee for m in markets), key=_fraction, default=_NO_FEE)
    taker = max((m.taker_fee for m in markets), key=_fraction, default=_NO_FEE)
    return orjson.dumps(
        {
            "makerCommission": _basis_points(maker), "takerCommission": _basis_points(taker),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": _rates(maker, taker),
            "canTrade": key.can_trade, "canWithdraw": False, "canDeposit": False,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": int(time.time() * 1000), "accountType": "SPOT", "balances": balances,
            "permissions": ["SPOT"], "uid": 0,
        }
    )  # fmt: skip


# -- fee rates ------------------------------------------------------------------------------------
# Fees are per market here; Binance's account answer has one rate for the account: it gets the
# highest of the markets' (what an order may pay), and the per-symbol endpoints the market's own.


_NO_FEE: Final = Fee("0", 0, 1)
"""The account's rates on an exchange with no market."""


def _fraction(fee: Fee) -> Fraction:
    return Fraction(fee.num, fee.den)


def _plain(text: str) -> str:
    """A rate as the config wrote it, without its padding: ``00.0010`` -> ``0.001``."""
    return format(Decimal(text).normalize(), "f")


def _eight_places(text: str) -> str:
    """A rate as Binance writes one, with at least eight decimals: ``0.001`` -> ``0.00100000``."""
    whole, _, decimals = _plain(text).partition(".")
    return f"{whole}.{decimals.ljust(8, '0')}"


def _basis_points(fee: Fee) -> int:
    """Binance's integer ``makerCommission``: the rate in hundredths of a percent, rounded down."""
    return fee.num * 10_000 // fee.den


def _rates(maker: Fee, taker: Fee) -> dict[str, str]:
    return {"maker": _eight_places(maker.text), "taker": _eight_places(taker.text),
            "buyer": "0.00000000", "seller": "0.00000000"}  # fmt: skip


async def commission(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """``GET /api/v3/account/commission``: one symbol's rates, in Binance's shape."""
    market = market_of(gateway, params)
    zero = {"maker": "0.00000000", "taker": "0.00000000", "buyer": "0.00000000", "seller": "0.00000000"}
    return orjson.dumps(
        {
            "symbol": symbol_of(market.name),
            "standardCommission": _rates(market.maker_fee, market.taker_fee),
            "taxCommission": zero,
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": None,
                "discount": "0.00000000",
            },
        }
    )


async def trade_fee(gateway: Gateway, params: Params, key: ApiKey) -> bytes:
    """``GET /sapi/v1/asset/tradeFee``: every market's rates, or the ``symbol``'s (ccxt's
    ``fetch_trading_fee(s)`` for spot, python-binance's ``get_trade_fee``)."""
    markets = (
        [market_of(gateway, params)] if params.get("symbol") else gateway.markets.config.markets.values()
    )
    return orjson.dumps(
        [
            {
                "symbol": symbol_of(m.name),
                "makerCommission": _plain(m.maker_fee.text),
                "takerCommission": _plain(m.taker_fee.text),
            }
            for m in markets
        ]
    )
