"""The demo exchange: what ``tradewire up`` runs when no ``--config`` is given."""

from __future__ import annotations

from typing import Any, Final

DEMO_CONFIG: Final[dict[str, Any]] = {
    "assets": {"BTC": {"precision": 8}, "ETH": {"precision": 8}, "USDT": {"precision": 8}},
    "markets": {
        "BTC-USDT": {
            "base": "BTC",
            "quote": "USDT",
            "tick_size": "0.01",
            "lot_size": "0.00001",
            "min_notional": "5",
            "maker_fee": "0.001",
            "taker_fee": "0.001",
        },
        "ETH-USDT": {
            "base": "ETH",
            "quote": "USDT",
            "tick_size": "0.01",
            "lot_size": "0.0001",
            "min_notional": "5",
            "maker_fee": "0.001",
            "taker_fee": "0.001",
        },
    },
}
