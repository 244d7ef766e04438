"""Pure account views: order records, fills, balances and user-data payloads from engine events."""

from tradewire.accounts.errors import REJECT_REASONS, BinanceError, binance_error
from tradewire.accounts.responses import OrderRejected, binance_order_response, cancel_response, rejection
from tradewire.accounts.views import Accounts, BalanceOf

__all__ = [
    "REJECT_REASONS",
    "Accounts",
    "BalanceOf",
    "BinanceError",
    "OrderRejected",
    "binance_error",
    "binance_order_response",
    "cancel_response",
    "rejection",
]
