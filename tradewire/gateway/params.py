"""Binance request parameters turned into engine commands, pure, with Binance's errors.

``POST /api/v3/order`` speaks Binance (``side=BUY``, ``type=LIMIT_MAKER``, ``timeInForce=IOC``,
``quoteOrderQty``, ``selfTradePreventionMode=EXPIRE_BOTH``); the engine speaks the replay spec
(``side: buy``, ``post_only: true``, ``tif: IOC``, ``quote_qty``, ``stp: expire_both``). Everything
the gateway can refuse without the engine (a missing or malformed parameter, an order type tradewire
does not have) is refused here, with the code a Binance client expects; what needs the book or the
balances (filters, funds, self-trade prevention) is the engine's to judge.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

from msgspec import UNSET

from tradewire.engine.commands import Cancel, NewOrder
from tradewire.engine.config import Market
from tradewire.engine.decimals import positive_units
from tradewire.gateway import errors
from tradewire.gateway.errors import ApiError
from tradewire.gateway.markets import MAX_NOTIONAL, MAX_PRICE, MAX_QTY, ORDER_TYPES

_MAX_PRICE: Final = Decimal(MAX_PRICE)
_MAX_QTY: Final = Decimal(MAX_QTY)
_MAX_NOTIONAL: Final = Decimal(MAX_NOTIONAL)

_NUMBER: Final = re.compile(r"\A[0-9]+(\.[0-9]+)?\Z")
_DECIMAL_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
"""Binance's legal range for quantities and prices: a kilobyte of digits is refused here, before it
reaches the journal (the engine would refuse it too, but only after it was journalled for good)."""
_DECIMAL: Final = re.compile(_DECIMAL_RANGE.replace("^", "\\A").replace("$", "\\Z"))
_CLIENT_ID: Final = re.compile(r"\A[.A-Za-z0-9:/_-]{1,36}\Z")
CLIENT_ID_RANGE: Final = "^[.A-Za-z0-9:/_-]{1,36}$"
_INTEGER: Final = re.compile(r"\A-?[0-9]{1,20}\Z")
INT64_MAX: Final = 2**63 - 1
INT32_MAX: Final = 2**31 - 1
SIDES: Final = {"BUY": "buy", "SELL": "sell"}
TIFS: Final = ("GTC", "IOC", "FOK")
STP: Final = {"NONE": "none", "EXPIRE_TAKER": "expire_taker", "EXPIRE_MAKER": "expire_maker",
              "EXPIRE_BOTH": "expire_both"}  # fmt: skip
RESPONSE_TYPES: Final = ("ACK", "RESULT", "FULL")
ResponseType = Literal["ACK", "RESULT", "FULL"]


_ORDER_ID_PREFIX: Final = "tw" + secrets.token_hex(5)
_order_id_counter = itertools.count(1)


def new_client_order_id() -> str:
    """A client order id for an order that came without one (Binance generates 22 characters):
    a random prefix per process and a counter, unique without a system call per order."""
    return f"{_ORDER_ID_PREFIX}{next(_order_id_counter):010x}"


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise errors.mandatory(name)
    return value


def decimal_param(params: Mapping[str, str], name: str) -> str | None:
    """A positive decimal parameter as the engine wants it, or None when absent."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _NUMBER.match(value):
        raise errors.bad_param(name, f"{value!r} is not a decimal number.")
    if not _DECIMAL.match(value):
        raise errors.out_of_range(name, _DECIMAL_RANGE)
    return value


def parse_int(text: str, name: str, low: int = 0, high: int = INT64_MAX) -> int:
    """``text`` as an integer from ``low`` to ``high``: ASCII digits only, a minus sign only where a
    negative value is legal (``int()`` also takes ``+1``, `` 1 ``, ``1_000`` and other scripts'
    digits, and any size: a 20-digit order id must be refused here, not crash the journal)."""
    if _INTEGER.match(text) is None or (text[0] == "-" and low >= 0) or not low <= int(text) <= high:
        raise errors.out_of_range(name, f"{low} to {high}")
    return int(text)


def int_param(
    params: Mapping[str, str], name: str, default: int | None = None, low: int = 0, high: int = INT64_MAX
) -> int | None:
    """An integer parameter within ``low``..``high`` (by default an int64 id or time that cannot
    be negative), or ``default`` when absent."""
    value = params.get(name)
    if value is None or value == "":
        return default
    return parse_int(value, name, low, high)


def limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit``: 0 is the default, more than ``maximum`` is ``maximum`` (as Binance's depth)."""
    value = int_param(params, "limit", default, high=INT32_MAX)
    assert value is not None
    if value == 0:
        return default
    return min(value, maximum)


_TIME_ZONE: Final = re.compile(r"([+-]?)([0-9]{1,2})(?::([0-9]{2}))?")


def check_time_zone(params: Mapping[str, str], length: int = 0) -> None:
    """Binance's ``timeZone`` (``klines``, ``ticker/tradingDay``): hours or ``hh:mm``, -12:00 to
    +14:00, bars aligned in that time zone. The bars here are UTC's: an offset that is a whole
    number of the interval's ``length`` gives the same bars (``timeZone=8`` for 1h, ``5:30`` for
    30m) and is served; one that would move them (any, for a day and longer; ``length`` 0: calendar
    months or the trading day) is refused with ``-1020`` rather than answered with UTC bars a client
    would take for its time zone's."""
    text = params.get("timeZone", "")
    if not text:
        return
    match = _TIME_ZONE.fullmatch(text)
    offset = -1
    if match is not None and int(match[3] or 0) < 60:
        offset = int(match[2]) * 60 + int(match[3] or 0)
        if offset > (12 if match[1] == "-" else 14) * 60:
            offset = -1
    if offset < 0:
        raise errors.out_of_range("timeZone", "-12:00 to +14:00, as hours or hh:mm")
    if offset and (not length or offset * 60_000 % length):
        raise ApiError(
            -1020, f"This operation is not supported: bars in timeZone {text} (they are UTC's here)."
        )


def time_range(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    """``startTime`` and ``endTime``, refused when the window is upside down."""
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    if start is not None and end is not None and start > end:
        raise ApiError(-1023, "Start time is greater than end time.")
    return start, end


def client_id_param(params: Mapping[str, str], name: str) -> str | None:
    """A client order id (new or original): Binance's characters, at most 36, before it reaches a
    Redis lookup or the journal."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _CLIENT_ID.match(value):
        raise errors.out_of_range(name, CLIENT_ID_RANGE)
    return value


def response_type(params: Mapping[str, str], order_type: str) -> ResponseType:
    value = params.get("newOrderRespType") or ("FULL" if order_type in ("LIMIT", "MARKET") else "ACK")
    if value == "ACK":
        return "ACK"
    if value == "RESULT":
        return "RESULT"
    if value == "FULL":
        return "FULL"
    raise ApiError(
        -1100, "Illegal characters found in parameter 'newOrderRespType'; legal range is ACK, RESULT, FULL."
    )


UNSUPPORTED_ORDER_PARAMS: Final = (
    "stopPrice", "icebergQty", "trailingDelta", "pegPriceType", "pegOffsetValue", "pegOffsetType",
)  # fmt: skip
"""Binance order parameters of what the engine does not do (stop, iceberg, trailing and pegged
orders): refused with ``-1106``, where ignoring them would place a plain order the client did not ask for."""


def folded(value: str) -> str:
    """``value`` in upper case when it is ASCII, as it is otherwise: ``str.upper`` maps U+017F (long
    s) to ``S`` and U+0131 (dotless i) to ``I``, so "\u017fell" would be a sell; left alone, it
    matches none of the words it is checked against and is refused as Binance refuses it."""
    return value.upper() if value.isascii() else value


def new_order(params: Mapping[str, str], user: str, market: str) -> NewOrder:
    """The engine's ``new_order`` for Binance order parameters; raises :class:`ApiError`."""
    side: Any = SIDES.get(folded(required(params, "side")))
    if side is None:
        raise ApiError(-1100, "Illegal characters found in parameter 'side'; legal range is BUY, SELL.")
    order_type = folded(required(params, "type"))
    quantity = decimal_param(params, "quantity")
    quote_qty = decimal_param(params, "quoteOrderQty")
    price = decimal_param(params, "price")
    tif_raw = folded(params.get("timeInForce", ""))
    stp_raw = folded(params.get("selfTradePreventionMode", "EXPIRE_MAKER"))
    stp = STP.get(stp_raw)
    if stp is None:
        raise ApiError(-1100, "Illegal characters found in parameter 'selfTradePreventionMode'.")
    client_id = client_id_param(params, "newClientOrderId") or new_client_order_id()
    if order_type not in ORDER_TYPES:  # before the parameters: a stop order's stopPrice is not the fault
        raise ApiError(-1116, "Invalid orderType.")
    for unsupported in UNSUPPORTED_ORDER_PARAMS:
        if params.get(unsupported):
            raise ApiError(-1106, f"Parameter '{unsupported}' sent when not required.")
    if order_type == "LIMIT":
        if not tif_raw:
            raise errors.mandatory("timeInForce")
        if tif_raw not in TIFS:
            raise ApiError(-1115, "Invalid timeInForce.")
        if quantity is None:
            raise errors.mandatory("quantity")
        if price is None:
            raise errors.mandatory("price")
        if quote_qty is not None:
            raise ApiError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        return NewOrder(user=user, market=market, side=side, kind="limit", qty=quantity, price=price,
                        tif=tif_raw, stp=stp, client_id=client_id)  # type: ignore[arg-type]  # fmt: skip
    if order_type == "LIMIT_MAKER":
        if quantity is None:
            raise errors.mandatory("quantity")
        if price is None:
            raise errors.mandatory("price")
        if tif_raw:
            raise ApiError(-1106, "Parameter 'timeInForce' sent when not required.")
        return NewOrder(user=user, market=market, side=side, kind="limit", qty=quantity, price=price,
                        post_only=True, stp=stp, client_id=client_id)  # type: ignore[arg-type]  # fmt: skip
    if order_type == "MARKET":
        for name, value in (("price", price), ("timeInForce", tif_raw)):
            if value:
                raise ApiError(-1106, f"Parameter '{name}' sent when not required.")
        if quantity is None and quote_qty is None:
            raise ApiError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if quantity is not None and quote_qty is not None:
            raise ApiError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        if quote_qty is not None and side == "sell":
            raise ApiError(-1013, "quoteOrderQty is only supported for MARKET BUY orders on this exchange.")
        return NewOrder(user=user, market=market, side=side, kind="market", stp=stp,  # type: ignore[arg-type]
                        qty=quantity if quantity is not None else UNSET,
                        quote_qty=quote_qty if quote_qty is not None else UNSET,
                        client_id=client_id)  # fmt: skip
    raise ApiError(-1116, "Invalid orderType.")


def past_maximum(order: NewOrder) -> ApiError | None:
    """The filter failure of an order past the upper bounds ``exchangeInfo`` gives (``maxPrice``,
    ``maxQty``, ``maxNotional`` for limit orders), as Binance answers it; ``None`` if within."""
    price = Decimal(order.price) if isinstance(order.price, str) else None
    qty = Decimal(order.qty) if isinstance(order.qty, str) else None
    if price is not None and price > _MAX_PRICE:
        return ApiError(-1013, "Filter failure: PRICE_FILTER")
    if qty is not None and qty > _MAX_QTY:
        return ApiError(-1013, "Filter failure: " + ("LOT_SIZE" if price is not None else "MARKET_LOT_SIZE"))
    if price is not None and qty is not None and price * qty > _MAX_NOTIONAL:
        return ApiError(-1013, "Filter failure: NOTIONAL")
    return None


def order_reference(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The ``orderId`` and ``origClientOrderId`` naming an order to cancel or query, at least one."""
    order_id = int_param(params, "orderId")
    client_id = client_id_param(params, "origClientOrderId")
    if order_id is None and client_id is None:
        raise ApiError(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


CANCEL_RESTRICTIONS: Final = ("ONLY_NEW", "ONLY_PARTIALLY_FILLED")


def cancel_restrictions(params: Mapping[str, str]) -> None:
    """Binance's ``cancelRestrictions`` (cancel only a NEW, or only a PARTIALLY_FILLED order) is
    refused, valid or not: the engine's cancel cannot be made conditional on the order's state at
    the moment it applies, and a check before it could race a fill. Ignored, it would cancel the
    very order a bot asked to keep."""
    restriction = params.get("cancelRestrictions")
    if restriction is None or restriction == "":
        return
    if folded(restriction) not in CANCEL_RESTRICTIONS:
        raise ApiError(-1145, "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED.")
    raise ApiError(-1145, "cancelRestrictions is not supported on this exchange; nothing was canceled.")


def cancel(params: Mapping[str, str], user: str, market: str) -> Cancel:
    """The engine's ``cancel``, by ``orderId`` when given (the caller checks that an
    ``origClientOrderId`` sent with it names the same order)."""
    cancel_restrictions(params)
    order_id, client_id = order_reference(params)
    if order_id is not None:
        return Cancel(user=user, market=market, order_id=order_id)
    return Cancel(user=user, market=market, client_id=client_id)  # type: ignore[arg-type]


def filter_failure(order: NewOrder, market: Market) -> str | None:
    """The engine's reject reason for an order that breaks a filter known without the book or the
    balances (LOT_SIZE, PRICE_FILTER, NOTIONAL), by the engine's own rules (``Market.qty_units``,
    ``Market.price_units``, the notional as ``Engine._new_order`` takes it), so
    that ``POST /api/v3/order/test`` refuses what ``POST /api/v3/order`` would; ``None`` if none."""
    qty = 0
    if isinstance(order.quote_qty, str):
        if not positive_units(order.quote_qty, market.quote.precision):
            return "invalid_qty"
    else:
        qty = market.qty_units(order.qty) if isinstance(order.qty, str) else 0
        if not qty:
            return "invalid_qty"
    if order.kind == "limit":
        price = market.price_units(order.price) if isinstance(order.price, str) else 0
        if not price:
            return "invalid_price"
        if price * qty // market.base_scale < market.min_notional_units:
            return "min_notional"
    return None
