"""What the audit unit tests share."""

from __future__ import annotations

from tradewire.engine import ExchangeConfig

CONFIG = ExchangeConfig.from_dict(
    {
        "assets": {"BTC": {"precision": 8}, "USDT": {"precision": 6}},
        "markets": {
            "BTC-USDT": {
                "base": "BTC",
                "quote": "USDT",
                "tick_size": "0.01",
                "lot_size": "0.0001",
                "min_notional": "1",
                "maker_fee": "0.001",
                "taker_fee": "0.002",
            }
        },
    }
)
