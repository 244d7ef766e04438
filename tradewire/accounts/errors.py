"""Engine reject reasons as Binance errors: the ``{"code": ..., "msg": ...}`` a client gets back.

The codes and messages are Binance's own where Binance has one for the same refusal, so that client
libraries raise the exception their users already handle (ccxt maps ``-2010`` to ``InsufficientFunds``
or ``InvalidOrder`` by message, ``-2011`` to ``OrderNotFound``, ``-1013`` to ``InvalidOrder``).
"""

from __future__ import annotations

from typing import Final, NamedTuple


class BinanceError(NamedTuple):
    code: int
    msg: str
    http_status: int = 400

    def body(self) -> dict[str, int | str]:
        return {"code": self.code, "msg": self.msg}


INSUFFICIENT_BALANCE: Final = BinanceError(-2010, "Account has insufficient balance for requested action.")
UNKNOWN_ORDER: Final = BinanceError(-2011, "Unknown order sent.")
DUPLICATE_ORDER: Final = BinanceError(-2010, "Duplicate order sent.")
PRICE_FILTER: Final = BinanceError(-1013, "Filter failure: PRICE_FILTER")
LOT_SIZE: Final = BinanceError(-1013, "Filter failure: LOT_SIZE")
NOTIONAL: Final = BinanceError(-1013, "Filter failure: NOTIONAL")
WOULD_TAKE: Final = BinanceError(-2010, "Order would immediately match and take.")
FOK_UNFILLABLE: Final = BinanceError(-2010, "Order would not be filled in full immediately (FOK).")
INVALID_SYMBOL: Final = BinanceError(-1121, "Invalid symbol.")
INVALID_ASSET: Final = BinanceError(-1100, "Illegal characters found in parameter 'asset'; unknown asset.")
INVALID_AMOUNT: Final = BinanceError(-1100, "Illegal characters found in parameter 'amount'.")
MALFORMED: Final = BinanceError(-1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
UNKNOWN_REASON: Final = BinanceError(-1000, "An unknown error occurred while processing the request.", 500)

REJECT_REASONS: Final[dict[str, BinanceError]] = {
    "insufficient_balance": INSUFFICIENT_BALANCE,
    "unknown_order": UNKNOWN_ORDER,
    "duplicate_client_id": DUPLICATE_ORDER,
    "invalid_price": PRICE_FILTER,
    "invalid_qty": LOT_SIZE,
    "min_notional": NOTIONAL,
    "would_cross": WOULD_TAKE,
    "fok_unfillable": FOK_UNFILLABLE,
    "unknown_market": INVALID_SYMBOL,
    "unknown_asset": INVALID_ASSET,
    "invalid_amount": INVALID_AMOUNT,
    "bad_command": MALFORMED,
}
"""Every reason the engine rejects with (``tradewire.engine.engine``), as a Binance error."""


def binance_error(reason: str) -> BinanceError:
    """The Binance error for an engine reject reason; an unknown reason is an internal error."""
    return REJECT_REASONS.get(reason, UNKNOWN_REASON)
