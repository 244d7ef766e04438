"""The Binance JSON the account views write, rendered as text straight from integer units.

Every command produces a handful of these payloads, so they are the views' hot path. Building a dict
and encoding it costs several times more than splicing the few values that change into text that
does not: an order's symbol, client id, side, type, price and times are fixed from its acceptance, so
``report_frame`` renders them once per order and batch (only for a user whose stream is open), and
each ``executionReport`` only fills in the status and amounts before it. An order record is rendered
whole, once per order and flush. The changing fields therefore come first, the fixed ones
after them (JSON objects have no order; Binance clients read them into maps). Decimals are canonical
strings (``Texts``); strings that come from users or the config (client ids, symbols, assets) are
escaped with a JSON encoder, everything else spliced in is digits or a fixed word.

The shapes:

* ``tw:orders:<user>`` record: Binance ``GET /api/v3/order``;
* ``executionReport``, ``outboundAccountPosition``, ``balanceUpdate``: Binance user data stream;
* ``tw:mytrades:<user>:<symbol>`` item: Binance ``GET /api/v3/myTrades``;
* ``tw:bal:<user>`` value: ``{"free": ..., "locked": ...}``.
"""

from __future__ import annotations

from typing import cast

import msgspec

from tradewire.accounts.records import OPEN_STATUSES, OrderState, Symbol, json_text
from tradewire.engine.decimals import to_text, to_units

_EMPTY = '""'


def report_frame(order: OrderState, sym: Symbol) -> str:
    """The fixed tail of an order's ``executionReport``: every field that never changes."""
    cid = json_text(order.client_id) if order.client_id else _EMPTY
    time = order.time
    return (
        f'"s":{sym.symbol_json},"c":{cid},"S":"{order.side}","o":"{order.type}","f":"{order.tif}",'
        f'"p":"{sym.quote_text[order.price]}","P":"0","F":"0","g":-1,"r":"NONE","i":{order.order_id},"I":0,'
        f'"M":false,"O":{time},"Q":"{sym.quote_text[order.quote_qty]}","W":{time},"V":"{order.stp}"}}'
    )


def order_record_python(order: OrderState, sym: Symbol) -> str:
    """The ``GET /api/v3/order`` object. A market buy by quote shows what it bought as ``origQty``.

    Rendered once per order and flush, with the final values of the batch: :data:`order_record`,
    in C when built (``_render.pyx``), this function being the reference.
    """
    base, quote = sym.base_text, sym.quote_text
    cid = json_text(order.client_id) if order.client_id else _EMPTY
    time = order.time
    return (
        f'{{"status":"{order.status}","origQty":"{base[order.qty or order.executed]}",'
        f'"executedQty":"{base[order.executed]}","cummulativeQuoteQty":"{quote[order.cum_quote]}",'
        f'"updateTime":{order.update_time},"symbol":{sym.symbol_json},"orderId":{order.order_id},'
        f'"orderListId":-1,"clientOrderId":{cid},"price":"{quote[order.price]}","timeInForce":"{order.tif}",'
        f'"type":"{order.type}","side":"{order.side}","stopPrice":"0","icebergQty":"0","time":{time},'
        f'"isWorking":true,"workingTime":{time},"origQuoteOrderQty":"{quote[order.quote_qty]}",'
        f'"selfTradePreventionMode":"{order.stp}"}}'
    )


class _Record(msgspec.Struct, rename="camel"):
    """The fields of an :func:`order_record` that an order is read back from, with their types."""

    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    self_trade_prevention_mode: str
    status: str
    price: str
    orig_qty: str
    orig_quote_order_qty: str
    executed_qty: str
    cummulative_quote_qty: str
    time: int
    update_time: int


_record_decoder = msgspec.json.Decoder(_Record)


def order_from_record(record: bytes, user: str, market: str, sym: Symbol) -> OrderState:
    """The order an :func:`order_record` of an open order was rendered from (``listed``: an open
    order's record is written by the flush that lists it). Raises ``ValueError`` for anything else."""
    try:
        data = _record_decoder.decode(record)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not an order record: {exc}") from exc
    base, quote = sym.base_places, sym.quote_places
    units = [
        to_units(text, places)
        for text, places in ((data.price, quote), (data.orig_qty, base), (data.orig_quote_order_qty, quote),
                             (data.executed_qty, base), (data.cummulative_quote_qty, quote))
    ]  # fmt: skip
    if data.status not in OPEN_STATUSES or any(value is None or value < 0 for value in units):
        raise ValueError(f"not the record of an open order: {record[:200]!r}")
    price, qty, quote_qty, executed, cum_quote = cast("list[int]", units)
    return OrderState(
        data.order_id, user, market, data.client_order_id, data.side, data.type, data.time_in_force,
        data.self_trade_prevention_mode, price, qty, quote_qty, data.time, data.update_time, executed,
        cum_quote, data.status, listed=True,
    )  # fmt: skip


def execution_report(
    order: OrderState,
    sym: Symbol,
    frame: str,
    execution: str,
    ts: int,
    last_qty: int = 0,
    last_price: int = 0,
    commission: str = "0",
    commission_asset: str = "null",
    trade_id: int = -1,
    maker: bool = False,
) -> str:
    """The ``executionReport`` after ``order`` changed by ``execution`` (``NEW``, ``TRADE``, ...).

    ``commission`` is canonical text and ``commission_asset`` a JSON literal (``null`` without a fill).
    ``C`` (the original client id) is set on a cancel, as Binance does.
    """
    base, quote = sym.base_text, sym.quote_text
    status = order.status
    working = status in OPEN_STATUSES and order.tif == "GTC" and order.type != "MARKET"
    canceled = order.client_id and execution == "CANCELED"
    return (
        f'{{"e":"executionReport","E":{ts},"x":"{execution}","X":"{status}",'
        f'"q":"{base[order.qty or order.executed]}","C":{json_text(order.client_id) if canceled else _EMPTY},'
        f'"l":"{base[last_qty]}","z":"{base[order.executed]}","L":"{quote[last_price]}","n":"{commission}",'
        f'"N":{commission_asset},"T":{ts},"t":{trade_id},"w":{"true" if working else "false"},'
        f'"m":{"true" if maker else "false"},"Z":"{quote[order.cum_quote]}",'
        f'"Y":"{quote[last_price * last_qty // sym.base_scale] if last_qty else "0"}",{frame}'
    )


def trade_fields(price: str, qty: str, quote_qty: str) -> str:
    """The ``myTrades`` fields both sides of a trade share: ``price``, ``qty`` and ``quoteQty``."""
    return f'"price":"{price}","qty":"{qty}","quoteQty":"{quote_qty}",'


def my_trade(
    sym: Symbol,
    trade_id: int,
    order_id: int,
    shared: str,
    commission: str,
    commission_asset: str,
    is_buyer: bool,
    is_maker: bool,
    ts: int,
) -> str:
    """A ``GET /api/v3/myTrades`` item; the commission is in the asset the side received (a JSON literal).

    ``shared`` is the trade's ``trade_fields``.
    """
    return (
        f'{{"symbol":{sym.symbol_json},"id":{trade_id},"orderId":{order_id},"orderListId":-1,{shared}'
        f'"commission":"{commission}","commissionAsset":{commission_asset},"time":{ts},'
        f'"isBuyer":{"true" if is_buyer else "false"},"isMaker":{"true" if is_maker else "false"},'
        f'"isBestMatch":true}}'
    )


def account_position(ts: int, balances: list[tuple[str, str, str]]) -> str:
    """``outboundAccountPosition`` of the changed ``(asset JSON literal, free, locked)``."""
    if len(balances) == 1:
        (asset, free, locked) = balances[0]
        items = f'{{"a":{asset},"f":"{free}","l":"{locked}"}}'
    else:
        items = ",".join([f'{{"a":{asset},"f":"{free}","l":"{locked}"}}' for asset, free, locked in balances])
    return f'{{"e":"outboundAccountPosition","E":{ts},"u":{ts},"B":[{items}]}}'


def balance_update(ts: int, asset: str, delta: str) -> str:
    """``balanceUpdate`` of a deposit (positive ``delta``) or withdrawal; ``asset`` a JSON literal."""
    return f'{{"e":"balanceUpdate","E":{ts},"a":{asset},"d":"{delta}","T":{ts}}}'


def balance_value(free: str, locked: str) -> str:
    """A ``tw:bal:<user>`` hash value, from the texts last published."""
    return f'{{"free":"{free}","locked":"{locked}"}}'


def balance_record_python(free: int, locked: int, places: int) -> str:
    """A ``tw:bal:<user>`` hash value, from units at ``places`` decimals: :data:`balance_record`, in
    C when built (``_render.pyx``), this function being the reference."""
    return balance_value(to_text(free, places), to_text(locked, places))


order_record = order_record_python
balance_record = balance_record_python
try:
    from tradewire.accounts import _render
except ImportError:  # not built (no C compiler at install): the reference renders
    RENDERER = "python"
else:
    order_record = _render.order_record
    balance_record = _render.balance_record
    RENDERER = "native"


__all__ = [
    "account_position",
    "balance_record",
    "balance_update",
    "balance_value",
    "execution_report",
    "my_trade",
    "order_record",
    "report_frame",
    "trade_fields",
]
