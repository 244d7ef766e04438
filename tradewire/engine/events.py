"""Events: what the engine says happened, in integer units.

Each event carries the fields the replay spec prints, plus a few fields that the spec does not print
but that every consumer downstream needs (the side, price and size of an accepted order; where a
canceled order rested), so that market data and user streams are derived from events alone, never by
peeking into the engine. ``tradewire.engine.codec`` renders the spec's JSON view of them.
"""

from __future__ import annotations

import msgspec


class Deposited(msgspec.Struct, frozen=True, gc=False):
    user: str
    asset: str
    amount: int


class Withdrawn(msgspec.Struct, frozen=True, gc=False):
    user: str
    asset: str
    amount: int


class Accepted(msgspec.Struct, frozen=True, gc=False):
    order_id: int
    user: str
    market: str
    client_id: str | None
    side: str
    kind: str
    tif: str
    price: int
    """Limit price in quote units; 0 for a market order."""
    qty: int
    """Base quantity; 0 for a market buy by ``quote_qty``."""
    quote_qty: int
    """Quote to spend for a market buy by ``quote_qty``; else 0."""
    post_only: bool


class Rejected(msgspec.Struct, frozen=True, gc=False):
    reason: str
    user: str | None = None
    order_id: int | None = None
    command: str = ""
    """Which command was refused (``new_order``, ``cancel``, ...); not printed by the spec."""


class Trade(msgspec.Struct, frozen=True, gc=False):
    market: str
    trade_id: int
    price: int
    qty: int
    maker_order_id: int
    taker_order_id: int
    maker_user: str
    taker_user: str
    taker_side: str
    maker_fee: int
    """In the asset the maker receives: quote when the taker buys, base when it sells."""
    taker_fee: int
    """In the asset the taker receives."""
    notional: int
    """``price * qty`` in quote units."""


class Canceled(msgspec.Struct, frozen=True, gc=False):
    order_id: int
    reason: str
    """``user`` or ``stp``."""
    user: str
    market: str
    side: str
    price: int
    remaining_qty: int


class Expired(msgspec.Struct, frozen=True, gc=False):
    order_id: int
    user: str
    market: str
    side: str
    remaining_qty: int | None
    remaining_quote_qty: int | None


Event = Deposited | Withdrawn | Accepted | Rejected | Trade | Canceled | Expired
