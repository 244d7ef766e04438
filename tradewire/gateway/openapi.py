"""The OpenAPI description of the REST endpoints, generated from the gateway's route table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from tradewire import __version__

PARAMETERS: dict[str, list[str]] = {
    "/api/v3/depth": ["symbol", "limit"],
    "/api/v3/trades": ["symbol", "limit"],
    "/api/v3/aggTrades": ["symbol", "fromId", "startTime", "endTime", "limit"],
    "/api/v3/klines": ["symbol", "interval", "startTime", "endTime", "limit", "timeZone"],
    "/api/v3/uiKlines": ["symbol", "interval", "startTime", "endTime", "limit", "timeZone"],
    "/api/v3/avgPrice": ["symbol"],
    "/api/v3/ticker": ["symbol", "symbols", "windowSize", "type"],
    "/api/v3/ticker/tradingDay": ["symbol", "symbols", "timeZone", "type"],
    "/api/v3/ticker/24hr": ["symbol", "symbols"],
    "/api/v3/ticker/price": ["symbol", "symbols"],
    "/api/v3/ticker/bookTicker": ["symbol", "symbols"],
    "/api/v3/exchangeInfo": ["symbol", "symbols", "symbolStatus"],
    "POST /api/v3/order": ["symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
                           "newClientOrderId", "newOrderRespType", "selfTradePreventionMode"],
    "POST /api/v3/order/test": ["symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty",
                                "price"],
    "DELETE /api/v3/order": ["symbol", "orderId", "origClientOrderId"],
    "GET /api/v3/order": ["symbol", "orderId", "origClientOrderId"],
    "/api/v3/openOrders": ["symbol"],
    "/api/v3/allOrders": ["symbol", "orderId", "startTime", "endTime", "limit"],
    "/api/v3/myTrades": ["symbol", "orderId", "fromId", "startTime", "endTime", "limit"],
    "/api/v3/account": ["omitZeroBalances"],
    "PUT /api/v3/userDataStream": ["listenKey"],
    "DELETE /api/v3/userDataStream": ["listenKey"],
}  # fmt: skip
SIGNED = ["timestamp", "recvWindow", "signature"]
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
    "required": ["code", "msg"],
}


class Described(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def security(self) -> str: ...
    @property
    def summary(self) -> str: ...


def _parameters(method: str, path: str, security: str) -> list[dict[str, Any]]:
    names = PARAMETERS.get(f"{method} {path}", PARAMETERS.get(path, []))
    if security == "signed":
        names = [*names, *SIGNED]
    where = "query"
    return [{"name": n, "in": where, "required": n in ("symbol", "timestamp", "signature") and
             not (n == "symbol" and ("ticker" in path or "exchangeInfo" in path or "openOrders" in path)),
             "schema": {"type": "string"}} for n in names]  # fmt: skip


def openapi_document(endpoints: Iterable[Described]) -> bytes:
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation: dict[str, Any] = {
            "summary": e.summary,
            "parameters": _parameters(e.method, e.path, e.security),
            "responses": {
                "200": {"description": "Binance-shaped JSON"},
                "4XX": {
                    "description": "Binance error",
                    "content": {"application/json": {"schema": ERROR_SCHEMA}},
                },
            },
        }
        if e.security != "none":
            operation["security"] = [{"apiKey": []}]
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return orjson.dumps(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "tradewire gateway",
                "version": __version__,
                "description": "Binance-compatible spot REST API. Signed endpoints take timestamp, "
                "recvWindow and signature (hex HMAC-SHA256 of the query string followed by the body) and the "
                "X-MBX-APIKEY header. WebSocket streams are described in docs/protocol.md.",
            },
            "components": {
                "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-MBX-APIKEY"}}
            },
            "paths": paths,
        }
    )
