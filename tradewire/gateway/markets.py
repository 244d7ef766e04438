"""The markets a gateway serves, from the engine's config: symbols and ``exchangeInfo``.

The engine writes the config it runs with to ``tw:config``; a gateway reads it at start (and while
it is absent says "not ready"), so that every gateway of an exchange describes the same markets
without a config file of its own. Everything here is pure: ``exchangeInfo`` is rendered once into
bytes and served as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from tradewire.engine.config import ExchangeConfig, Market
from tradewire.gateway.streams import symbol_of
from tradewire.journal.quota import ORDERS_PER_10S, ORDERS_PER_DAY

ORDER_TYPES: Final = ["LIMIT", "LIMIT_MAKER", "MARKET"]
STP_MODES: Final = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
MAX_PRICE: Final = "1000000000"
MAX_QTY: Final = "1000000000"
MAX_NOTIONAL: Final = "9000000000000"
"""The filters' upper bounds, the same for every market; the gateway refuses orders past them
(``params.past_maximum``): the engine's rules know no upper bound but its integers'."""

RATE_LIMITS_PER_MINUTE: Final = 6000


def symbol_filters(market: Market) -> list[dict[str, Any]]:
    """PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE and NOTIONAL from the market's tick, lot and minimum."""
    return [
        {"filterType": "PRICE_FILTER", "minPrice": market.tick_size, "maxPrice": MAX_PRICE,
         "tickSize": market.tick_size},
        {"filterType": "LOT_SIZE", "minQty": market.lot_size, "maxQty": MAX_QTY, "stepSize": market.lot_size},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0", "maxQty": MAX_QTY, "stepSize": market.lot_size},
        {"filterType": "NOTIONAL", "minNotional": market.min_notional, "applyMinToMarket": False,
         "maxNotional": MAX_NOTIONAL, "applyMaxToMarket": False, "avgPriceMins": 0},
    ]  # fmt: skip


def symbol_info(market: Market) -> dict[str, Any]:
    return {
        "symbol": symbol_of(market.name),
        "status": "TRADING",
        "baseAsset": market.base.name,
        "baseAssetPrecision": market.base.precision,
        "quoteAsset": market.quote.name,
        "quotePrecision": market.quote.precision,
        "quoteAssetPrecision": market.quote.precision,
        "baseCommissionPrecision": market.base.precision,
        "quoteCommissionPrecision": market.quote.precision,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": symbol_filters(market),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": STP_MODES,
    }


def rate_limits(
    weight_per_minute: int = RATE_LIMITS_PER_MINUTE,
    orders_per_10s: int = ORDERS_PER_10S,
    orders_per_day: int = ORDERS_PER_DAY,
) -> list[dict[str, Any]]:
    """``exchangeInfo``'s ``rateLimits``: the request weight per IP and minute, the new orders per
    account and 10 seconds and per day."""
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": weight_per_minute},
        *order_limits(orders_per_10s, orders_per_day),
    ]  # fmt: skip


def order_limits(per_10s: int, per_day: int) -> list[dict[str, Any]]:
    """The ``ORDERS`` rate limits in force (a limit of 0 is none, and not listed)."""
    return [
        {"rateLimitType": "ORDERS", "interval": interval, "intervalNum": number, "limit": limit}
        for interval, number, limit in (("SECOND", 10, per_10s), ("DAY", 1, per_day))
        if limit
    ]


@dataclass
class Markets:
    """The config a gateway serves and the lookups derived from it."""

    config: ExchangeConfig
    symbols: dict[str, str] = field(init=False)
    """Lower-case symbol -> market name (stream names, which Binance writes in lower case)."""
    exact: dict[str, str] = field(init=False)
    """Symbol as ``exchangeInfo`` lists it -> market name (``symbol`` parameters, which Binance
    takes only so: ``btcusdt`` is ``-1100``)."""
    infos: dict[str, dict[str, Any]] = field(init=False)
    """Symbol -> its ``exchangeInfo`` entry."""

    def __post_init__(self) -> None:
        self.symbols = {symbol_of(name).lower(): name for name in self.config.markets}
        self.exact = {symbol_of(name): name for name in self.config.markets}
        self.infos = {symbol_of(name): symbol_info(m) for name, m in self.config.markets.items()}

    @classmethod
    def from_json(cls, raw: bytes) -> Markets:
        return cls(ExchangeConfig.from_dict(orjson.loads(raw)))

    def market(self, symbol: str) -> Market | None:
        name = self.exact.get(symbol)
        return None if name is None else self.config.markets[name]

    def exchange_info(
        self, server_time: int, only: list[str] | None = None, limits: list[dict[str, Any]] | None = None
    ) -> bytes:
        symbols = list(self.infos.values()) if only is None else [self.infos[s] for s in only]
        return orjson.dumps(
            {
                "timezone": "UTC",
                "serverTime": server_time,
                "rateLimits": rate_limits() if limits is None else limits,
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )
