"""The replay spec's JSON view of events and state.

Events hold integer units; this module writes them as canonical decimal strings at the precision of
the asset each amount is in, with exactly the keys the spec prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradewire.engine.config import MAX_PRECISION, ExchangeConfig
from tradewire.engine.decimals import to_text
from tradewire.engine.engine import Engine
from tradewire.engine.events import (
    Accepted,
    Canceled,
    Deposited,
    Event,
    Expired,
    Rejected,
    Trade,
    Withdrawn,
)

JsonObject = dict[str, Any]


class EventCodec:
    """Renders events of one exchange config as spec JSON objects."""

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self._assets = {name: asset.precision for name, asset in config.assets.items()}
        self._markets = {name: (m.base.precision, m.quote.precision) for name, m in config.markets.items()}
        self._texts: list[dict[int, str]] = [{} for _ in range(MAX_PRECISION + 1)]
        """Canonical text per amount, per precision: prices and sizes repeat all the time."""
        self._render: dict[type[Any], Callable[[Any], JsonObject]] = {
            Accepted: self._accepted,
            Rejected: self._rejected,
            Trade: self._trade,
            Canceled: self._canceled,
            Expired: self._expired,
            Deposited: self._deposited,
            Withdrawn: self._withdrawn,
        }

    def _text(self, units: int, places: int) -> str:
        """``to_text``, memoized (a pure function's table: it cannot change a result)."""
        cache = self._texts[places]
        text = cache.get(units)
        if text is None:
            if len(cache) >= 1 << 16:
                cache.clear()
            text = cache[units] = to_text(units, places)
        return text

    def render(self, event: Event) -> JsonObject:
        return self._render[type(event)](event)

    @staticmethod
    def _accepted(e: Accepted) -> JsonObject:
        out: JsonObject = {"type": "accepted", "order_id": e.order_id, "user": e.user, "market": e.market}
        if e.client_id is not None:
            out["client_id"] = e.client_id
        return out

    @staticmethod
    def _rejected(e: Rejected) -> JsonObject:
        out: JsonObject = {"type": "rejected"}
        if e.order_id is not None:
            out["order_id"] = e.order_id
        if e.user is not None:
            out["user"] = e.user
        out["reason"] = e.reason
        return out

    def _trade(self, e: Trade) -> JsonObject:
        bp, qp = self._markets[e.market]
        maker_fp, taker_fp = (qp, bp) if e.taker_side == "buy" else (bp, qp)
        text = self._text
        return {
            "type": "trade",
            "market": e.market,
            "trade_id": e.trade_id,
            "price": text(e.price, qp),
            "qty": text(e.qty, bp),
            "maker_order_id": e.maker_order_id,
            "taker_order_id": e.taker_order_id,
            "maker_user": e.maker_user,
            "taker_user": e.taker_user,
            "taker_side": e.taker_side,
            "maker_fee": text(e.maker_fee, maker_fp),
            "taker_fee": text(e.taker_fee, taker_fp),
        }

    @staticmethod
    def _canceled(e: Canceled) -> JsonObject:
        return {"type": "canceled", "order_id": e.order_id, "reason": e.reason}

    def _expired(self, e: Expired) -> JsonObject:
        bp, qp = self._markets[e.market]
        if e.remaining_quote_qty is not None:
            return {
                "type": "expired",
                "order_id": e.order_id,
                "remaining_quote_qty": self._text(e.remaining_quote_qty, qp),
            }
        return {
            "type": "expired",
            "order_id": e.order_id,
            "remaining_qty": self._text(e.remaining_qty or 0, bp),
        }

    def _deposited(self, e: Deposited) -> JsonObject:
        return {
            "type": "deposit",
            "user": e.user,
            "asset": e.asset,
            "amount": to_text(e.amount, self._assets[e.asset]),
        }

    def _withdrawn(self, e: Withdrawn) -> JsonObject:
        return {
            "type": "withdraw",
            "user": e.user,
            "asset": e.asset,
            "amount": to_text(e.amount, self._assets[e.asset]),
        }

    def state(self, engine: Engine) -> JsonObject:
        """The spec's final ``state`` line: balances and aggregated books."""
        places = self._assets
        balances = {
            user: {
                asset: {"available": to_text(b[0], places[asset]), "locked": to_text(b[1], places[asset])}
                for asset, b in sorted(assets.items())
            }
            for user, assets in sorted(engine.balances.items())
        }
        books: JsonObject = {}
        for name, book in sorted(engine.books.items()):
            bp, qp = self._markets[name]
            books[name] = {
                "bids": [[to_text(p, qp), to_text(q, bp)] for p, q in book.bids.depth()],
                "asks": [[to_text(p, qp), to_text(q, bp)] for p, q in book.asks.depth()],
            }
        return {"type": "state", "balances": balances, "books": books}
