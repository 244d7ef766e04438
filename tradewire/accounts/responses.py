"""Binance REST responses built from a reply's events, for the gateway.

A gateway learns the outcome of an order from the engine's reply (``docs/internals.md``, "Replies"):
the spec's JSON events of that command, as ``tradewire replay`` prints them. These functions turn them
into Binance's ``POST /api/v3/order`` answer (``newOrderRespType`` ``ACK``, ``RESULT`` or ``FULL``) and
its ``DELETE /api/v3/order`` answer, with the same values the account views write to Redis.

One thing the reply cannot tell: whether an ``expire_taker`` IOC, FOK or market order expired because
it met its own order (``EXPIRED_IN_MATCH``) or ran out of liquidity (``EXPIRED``); the reply does not
show the book. Such an order answers ``EXPIRED`` here, while its record in ``tw:orders:<user>``
(written in the same transaction as the reply) has the exact status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from msgspec import UNSET

from tradewire.accounts.errors import BinanceError, binance_error
from tradewire.accounts.records import (
    CANCELED,
    EXPIRED,
    EXPIRED_IN_MATCH,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    SIDES,
    STP_MODES,
    UNFILLABLE_FOK,
    order_type,
    spent_to_the_lot,
)
from tradewire.engine.commands import NewOrder
from tradewire.engine.config import ExchangeConfig
from tradewire.engine.decimals import to_text, to_units

ResponseType = Literal["ACK", "RESULT", "FULL"]
SpecEvent = Mapping[str, Any]


class OrderRejected(Exception):
    """The reply holds no ``accepted`` event: the order was refused with ``error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error: BinanceError = binance_error(reason)


def rejection(events: Sequence[SpecEvent]) -> BinanceError | None:
    """The Binance error of a refused command, or ``None`` when it was not refused."""
    for event in events:
        if event.get("type") == "rejected":
            return binance_error(str(event.get("reason", "")))
    return None


def binance_order_response(
    command: NewOrder,
    events: Sequence[SpecEvent],
    ts: int,
    config: ExchangeConfig,
    response_type: ResponseType = "FULL",
) -> dict[str, Any]:
    """``POST /api/v3/order``'s answer; raises ``OrderRejected`` when the order was refused."""
    accepted = next((e for e in events if e.get("type") == "accepted"), None)
    status: str | None = None
    if accepted is None:
        refused = next((e for e in events if e.get("type") == "rejected"), {})
        reason = str(refused.get("reason", "bad_command"))
        if reason != UNFILLABLE_FOK or "order_id" not in refused:
            raise OrderRejected(reason)
        # Binance answers an FOK it cannot fill as an order that expired, not as an error
        accepted, status = refused, EXPIRED
    market = config.markets[command.market]
    bp, qp = market.base.precision, market.quote.precision
    order_id = int(accepted["order_id"])
    symbol = market.base.name + market.quote.name
    client_id = command.client_id if command.client_id is not UNSET else ""
    response: dict[str, Any] = {
        "symbol": symbol,
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": client_id,
        "transactTime": ts,
    }
    if response_type == "ACK":
        return response

    executed = cum_quote = 0
    fills: list[dict[str, Any]] = []
    buys = command.side == "buy"
    fee_asset, fee_places = (market.base.name, bp) if buys else (market.quote.name, qp)
    previous: SpecEvent | None = None
    last_price = 0
    for event in events:
        kind = event.get("type")
        if kind == "trade" and event.get("taker_order_id") == order_id:
            price = last_price = _units(event["price"], qp)
            qty = _units(event["qty"], bp)
            executed += qty
            cum_quote += price * qty // market.base_scale
            fills.append(
                {
                    "price": to_text(price, qp),
                    "qty": to_text(qty, bp),
                    "commission": to_text(_units(event["taker_fee"], fee_places), fee_places),
                    "commissionAsset": fee_asset,
                    "tradeId": event["trade_id"],
                }
            )
        elif kind == "expired" and event.get("order_id") == order_id:
            left = event.get("remaining_quote_qty")
            spent = last_price and left is not None
            if spent and spent_to_the_lot(_units(left, qp), last_price, market.lot, market.base_scale):
                status = FILLED
            else:
                status = EXPIRED_IN_MATCH if _met_itself(command, previous) else EXPIRED
        previous = event

    qty = _units(command.qty, bp) if command.qty is not UNSET else 0
    quote_qty = _units(command.quote_qty, qp) if command.quote_qty is not UNSET else 0
    if status is None and not qty:
        status = FILLED  # a market buy by quote that did not expire spent it all
    elif status is None:
        status = FILLED if executed >= qty else (PARTIALLY_FILLED if executed else NEW)
    price = _units(command.price, qp) if command.kind == "limit" and command.price is not UNSET else 0
    response.update(
        {
            "price": to_text(price, qp),
            "origQty": to_text(qty or executed, bp),
            "executedQty": to_text(executed, bp),
            "origQuoteOrderQty": to_text(quote_qty, qp),
            "cummulativeQuoteQty": to_text(cum_quote, qp),
            "status": status,
            "timeInForce": command.tif,
            "type": order_type(command.kind, command.post_only),
            "side": SIDES[command.side],
            "workingTime": ts,
            "selfTradePreventionMode": STP_MODES[command.stp],
        }
    )
    if response_type == "FULL":
        response["fills"] = fills
    return response


def cancel_response(record: Mapping[str, Any], ts: int, cancel_id: str) -> dict[str, Any]:
    """``DELETE /api/v3/order``'s answer from the order's record after the cancel: the order's own
    client id is ``origClientOrderId``, ``clientOrderId`` is the cancel's (``newClientOrderId``)."""
    return {
        "symbol": record["symbol"],
        "origClientOrderId": record["clientOrderId"],
        "orderId": record["orderId"],
        "orderListId": -1,
        "clientOrderId": cancel_id,
        "transactTime": ts,
        "price": record["price"],
        "origQty": record["origQty"],
        "executedQty": record["executedQty"],
        "origQuoteOrderQty": record["origQuoteOrderQty"],
        "cummulativeQuoteQty": record["cummulativeQuoteQty"],
        "status": CANCELED,
        "timeInForce": record["timeInForce"],
        "type": record["type"],
        "side": record["side"],
        "selfTradePreventionMode": record["selfTradePreventionMode"],
    }


def _met_itself(command: NewOrder, previous: SpecEvent | None) -> bool:
    if command.kind == "limit" and command.tif == "GTC":
        return True  # a resting limit order expires only by self-trade prevention
    return (
        command.stp == "expire_both"
        and previous is not None
        and previous.get("type") == "canceled"
        and previous.get("reason") == "stp"
    )


def _units(text: Any, places: int) -> int:
    units = to_units(str(text), places)
    if units is None:
        raise ValueError(f"{text!r} is not an amount at {places} decimals")
    return units
