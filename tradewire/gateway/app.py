"""The gateway's HTTP application: the route table, signing, limits, errors, static files.

uvicorn (httptools) serves HTTP; WebSocket upgrades never reach this app, uvicorn hands them to
``tradewire.gateway.connection.Connection``. ``/api/v3`` requests are answered by :class:`ApiFront`
(a dict lookup, no middleware: these are the hot routes); Starlette serves the rest (the page,
``/metrics``, ``/healthz``, ``/readyz``, ``/openapi.json``) and runs the lifespan. Every REST request
goes through :func:`serve`, which parses the parameters (query and form body together, as Binance
does) and hands them to :func:`run`: it charges the request's weight to the caller's IP, checks the
key, signature and time window of signed routes, and turns an
:class:`~tradewire.gateway.errors.ApiError` into Binance's ``{"code", "msg"}`` with its status. The
WebSocket API (``tradewire.gateway.wsapi``) runs the same endpoints through :func:`run`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import structlog
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tradewire.gateway import errors, public, trading
from tradewire.gateway.auth import ApiKey, check_signature, check_time, parse_params, signed_payload
from tradewire.gateway.errors import ApiError
from tradewire.gateway.openapi import openapi_document
from tradewire.gateway.params import limit_param
from tradewire.gateway.service import Gateway
from tradewire.gateway.trading import ORDER_COUNTS
from tradewire.journal.quota import OrderCounts
from tradewire.ops import http as ops_http
from tradewire.ops.logging import AUTH_FAILED, REQUEST_REJECTED, audit_log
from tradewire.ops.metrics import HTTP_REQUESTS, RATE_LIMIT_HITS, REDIS_ERRORS

log = structlog.get_logger(__name__)

JSON: Final = "application/json"
MAX_REQUEST_BYTES: Final = 65536
"""The most a REST request's query string and body may hold together: Binance requests are a few
hundred bytes, and what a parameter holds may end up in the journal, which keeps it for good."""
WEB_ROOT: Final = Path(__file__).resolve().parent.parent / "web"
Security = Literal["none", "key", "signed"]
Handler = Callable[[Gateway, dict[str, str], ApiKey | None, str], Awaitable[bytes]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    weight: int | Callable[[dict[str, str]], int]
    security: Security
    summary: str


def _public(fn: Callable[[Gateway, dict[str, str]], Awaitable[bytes]]) -> Handler:
    async def run(gateway: Gateway, params: dict[str, str], _: ApiKey | None, __: str) -> bytes:
        return await fn(gateway, params)

    return run


def _signed(fn: Callable[[Gateway, dict[str, str], ApiKey], Awaitable[bytes]]) -> Handler:
    async def run(gateway: Gateway, params: dict[str, str], key: ApiKey | None, __: str) -> bytes:
        assert key is not None
        return await fn(gateway, params, key)

    return run


def _with_ip(fn: Callable[[Gateway, dict[str, str], ApiKey, str], Awaitable[bytes]]) -> Handler:
    async def run(gateway: Gateway, params: dict[str, str], key: ApiKey | None, ip: str) -> bytes:
        assert key is not None
        return await fn(gateway, params, key, ip)

    return run


async def _system_status(_: Gateway, __: dict[str, str]) -> bytes:
    return b'{"status":0,"msg":"normal"}'


async def _ping(_: Gateway, __: dict[str, str]) -> bytes:
    return b"{}"


async def _time(_: Gateway, __: dict[str, str]) -> bytes:
    return orjson.dumps({"serverTime": public.now_ms()})


async def _order_test(gateway: Gateway, params: dict[str, str], key: ApiKey, ip: str) -> bytes:
    return await trading.new_order(gateway, params, key, ip, test=True)


async def _create_listen_key(gateway: Gateway, _: dict[str, str], key: ApiKey) -> bytes:
    return orjson.dumps({"listenKey": await gateway.create_listen_key(key.user, key.key)})


async def _keep_alive_listen_key(gateway: Gateway, params: dict[str, str], key: ApiKey) -> bytes:
    listen_key = params.get("listenKey", "")
    if not listen_key:
        raise errors.mandatory("listenKey")
    if not await gateway.keep_alive_listen_key(listen_key, key.user):
        raise ApiError(-1125, "This listenKey does not exist.")
    return b"{}"


async def _close_listen_key(gateway: Gateway, params: dict[str, str], key: ApiKey) -> bytes:
    listen_key = params.get("listenKey", "")
    if not listen_key:
        raise errors.mandatory("listenKey")
    if not await gateway.close_listen_key(listen_key, key.user):
        raise ApiError(-1125, "This listenKey does not exist.")
    return b"{}"


def _depth_weight(params: dict[str, str]) -> int:
    try:
        return public.depth_weight(limit_param(params, 100, 5000))
    except ApiError:
        return 5  # the request is refused for its limit, at the smallest weight


def _all_or_one(one: int, every: int) -> Callable[[dict[str, str]], int]:
    return lambda params: one if params.get("symbol") else every


API: Final = "/api/v3"
SAPI: Final = "/sapi/v1"
ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint("GET", f"{API}/ping", _public(_ping), 1, "none", "Test connectivity."),
    Endpoint("GET", f"{API}/time", _public(_time), 1, "none", "Server time (Unix ms)."),
    Endpoint("GET", f"{API}/exchangeInfo", _public(public.exchange_info), 20, "none",
             "Markets with their PRICE_FILTER, LOT_SIZE and NOTIONAL filters."),
    Endpoint("GET", f"{API}/depth", _public(public.depth), _depth_weight, "none",
             "Order book snapshot with lastUpdateId (limit up to 5000)."),
    Endpoint("GET", f"{API}/trades", _public(public.trades), 25, "none", "Recent trades (up to 1000)."),
    Endpoint("GET", f"{API}/historicalTrades", _public(public.historical_trades), 25, "none",
             "Trades from fromId on (of the last 1000)."),
    Endpoint("GET", f"{API}/aggTrades", _public(public.agg_trades), 4, "none",
             "Recent trades in the aggregate shape (one trade per item)."),
    Endpoint("GET", f"{API}/klines", _public(public.klines), 2, "none",
             "Candlesticks (1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)."),
    Endpoint("GET", f"{API}/uiKlines", _public(public.klines), 2, "none", "Candlesticks, as klines."),
    Endpoint("GET", f"{API}/avgPrice", _public(public.avg_price), 2, "none",
             "Volume-weighted average price of the last 5 minutes."),
    Endpoint("GET", f"{API}/ticker", _public(public.ticker_window), public.ticker_window_weight, "none",
             "Rolling-window statistics (windowSize 1m..59m, 1h..23h, 1d..7d; type FULL or MINI)."),
    Endpoint("GET", f"{API}/ticker/tradingDay", _public(public.ticker_trading_day),
             public.ticker_window_weight, "none", "Statistics of the trading day (UTC)."),
    Endpoint("GET", f"{API}/ticker/24hr", _public(public.ticker_24hr), _all_or_one(2, 80), "none",
             "Rolling 24-hour statistics."),
    Endpoint("GET", f"{API}/ticker/price", _public(public.ticker_price), _all_or_one(2, 4), "none",
             "Last price."),
    Endpoint("GET", f"{API}/ticker/bookTicker", _public(public.book_ticker), _all_or_one(2, 4), "none",
             "Best bid and ask."),
    Endpoint("POST", f"{API}/order", _with_ip(trading.new_order), 1, "signed",
             "New order: LIMIT, MARKET (quantity or quoteOrderQty), LIMIT_MAKER; GTC/IOC/FOK."),
    Endpoint("POST", f"{API}/order/test", _with_ip(_order_test), 1, "signed",
             "Validate a new order without sending it to the engine."),
    Endpoint("POST", f"{API}/order/cancelReplace", _with_ip(trading.cancel_replace), 1, "signed",
             "Cancel an order and place a new one (cancelReplaceMode STOP_ON_FAILURE or ALLOW_FAILURE)."),
    Endpoint("DELETE", f"{API}/order", _with_ip(trading.cancel_order), 1, "signed",
             "Cancel an order by orderId or origClientOrderId."),
    Endpoint("GET", f"{API}/order", _signed(trading.query_order), 4, "signed", "Query one of your orders."),
    Endpoint("DELETE", f"{API}/openOrders", _with_ip(trading.cancel_open_orders), 1, "signed",
             "Cancel all your open orders of a symbol."),
    Endpoint("GET", f"{API}/openOrders", _signed(trading.open_orders), _all_or_one(6, 80), "signed",
             "Your open orders."),
    Endpoint("GET", f"{API}/allOrders", _signed(trading.all_orders), 20, "signed",
             "All your orders of a symbol."),
    Endpoint("GET", f"{API}/myTrades", _signed(trading.my_trades), 20, "signed", "Your fills of a symbol."),
    Endpoint("GET", f"{API}/account", _signed(trading.account), 20, "signed", "Your balances."),
    Endpoint("GET", f"{API}/account/commission", _signed(trading.commission), 20, "signed",
             "A symbol's fee rates."),
    Endpoint("GET", f"{SAPI}/asset/tradeFee", _signed(trading.trade_fee), 1, "signed",
             "Every symbol's fee rates, or one's."),
    Endpoint("GET", f"{SAPI}/system/status", _public(_system_status), 1, "none",
             "Whether the exchange is up: always normal while this answers."),
    Endpoint("GET", f"{API}/rateLimit/order", _signed(trading.order_rate_limits), 40, "signed",
             "Your unfilled-order counts in the current ORDERS rate-limit windows."),
    Endpoint("POST", f"{API}/userDataStream", _signed(_create_listen_key), 2, "key",
             "Create a listenKey for the user data stream (valid 60 minutes)."),
    Endpoint("PUT", f"{API}/userDataStream", _signed(_keep_alive_listen_key), 2, "key",
             "Keep a listenKey alive for another 60 minutes."),
    Endpoint("DELETE", f"{API}/userDataStream", _signed(_close_listen_key), 2, "key", "Close a listenKey."),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request to an endpoint came to, before a transport wraps it: the status, the body
    (the result, or Binance's ``{"code", "msg"}``), the weight used this minute by the caller's IP,
    and the seconds to wait after a 429."""

    status: int
    body: bytes
    used: int
    retry_after: int | None = None
    orders: OrderCounts | None = None
    """The account's order counts when the request placed (or was refused) a new order."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Signing:
    """What a signed request's signature covers (``payload``) and what it claims, per transport:
    REST signs the query string and body as sent, the WebSocket API its sorted parameters."""

    params: dict[str, str]
    payload: bytes
    signature: str | None
    encoded: Callable[[], bytes | None] | None = None
    """The payload with its values percent-encoded, when that differs (``None``): some clients sign
    that form (python-binance's WebSocket API calls), others the raw one (ccxt); either signature
    is accepted. Asked only when the raw form does not match: encoding costs more than the rest of
    the signature check together."""


async def _authenticate(gateway: Gateway, api_key: str | None, signing: Signing | None) -> ApiKey:
    if not api_key:
        raise ApiError(-2014, "API-key format invalid.", 401)
    key = await gateway.key_cache.get(api_key)
    if signing is not None:
        try:
            check_signature(key.secret, signing.payload, signing.signature)
        except ApiError:
            encoded = signing.encoded() if signing.encoded is not None else None
            if encoded is None:
                raise
            check_signature(key.secret, encoded, signing.signature)
        check_time(signing.params, public.now_ms())
    return key


async def run(
    gateway: Gateway,
    endpoint: Endpoint,
    ip: str,
    params: dict[str, str],
    api_key: str | None,
    signing: Callable[[], Signing],
    refusal: ApiError | None = None,
) -> Outcome:
    """One request to ``endpoint``, whichever transport carried it: its weight charged to ``ip``,
    the key, signature and time window checked, the handler run, a refusal turned into Binance's
    error body with its status. ``signing`` is asked only for signed endpoints. A request whose
    parameters could not be read comes with its ``refusal``: charged weight 1, and answered so."""
    name = endpoint.path
    used = 0
    key: ApiKey | None = None
    ORDER_COUNTS.set(None)  # set by the handler of a new order (several requests share a task)
    try:
        if refusal is not None:
            used = gateway.weights.spend(ip, 1, public.now_ms())
            raise refusal
        weight = endpoint.weight if isinstance(endpoint.weight, int) else endpoint.weight(params)
        used = gateway.weights.spend(ip, weight, public.now_ms())
        if endpoint.security != "none":
            try:
                key = await _authenticate(
                    gateway, api_key, signing() if endpoint.security == "signed" else None
                )
            except ApiError as exc:
                audit_log(AUTH_FAILED, level="warning", ip=ip, endpoint=name, code=exc.code, reason=exc.msg,
                          who=(api_key or "-")[:8])  # fmt: skip
                raise
        content = await endpoint.handler(gateway, params, key, ip)
    except RedisError as exc:  # a read the request needed (key, order, book) failed: say so, keep serving
        REDIS_ERRORS.labels("gateway", type(exc).__name__).inc()
        log.warning("redis unavailable for a request", endpoint=name, error=str(exc))
        error = errors.error(errors.DISCONNECTED, 503)
        HTTP_REQUESTS.labels(name, "503").inc()
        return Outcome(503, error.body(), used)
    except ApiError as exc:
        if exc.status == 429 and exc.code != -1015:  # (orders over the account's limit: counted apart)
            RATE_LIMIT_HITS.labels("rest_weight").inc()
            used = gateway.weights.used(ip, public.now_ms())
        audit_log(REQUEST_REJECTED, ip=ip, endpoint=name, code=exc.code, reason=exc.msg,
                  who=key.key[:8] if key is not None else "-", status=exc.status)  # fmt: skip
        HTTP_REQUESTS.labels(name, str(exc.status)).inc()
        return Outcome(exc.status, exc.body(), used, exc.retry_after, ORDER_COUNTS.get())
    ok = _ANSWERED.get(name)
    if ok is None:
        ok = _ANSWERED[name] = HTTP_REQUESTS.labels(name, "200")
    ok.inc()
    return Outcome(200, content, used, None, ORDER_COUNTS.get())


REQUEST_TOO_LARGE: Final = ApiError(
    -1101,
    f"Too many parameters sent for this endpoint: the query string and body may hold {MAX_REQUEST_BYTES} "
    "bytes together.",
    413,
)


async def serve(
    gateway: Gateway,
    endpoint: Endpoint,
    ip: str,
    query: bytes,
    body: bytes,
    api_key: str | None,
    refusal: ApiError | None = None,
) -> Answer:
    """One REST request: parameters from the query and the form body together (as Binance reads
    them), the signature over both as sent; :func:`run`, then the answer's headers. ``refusal``:
    the request is refused before its parameters are read (too large)."""
    params: dict[str, str] = {}
    if refusal is None:
        try:
            params = parse_params(query, body)
        except ApiError as exc:
            refusal = exc

    def signing() -> Signing:
        return Signing(params, *signed_payload(query, body))

    outcome = await run(gateway, endpoint, ip, params, api_key, signing, refusal)
    headers = _headers(outcome.body, outcome.used)
    if outcome.retry_after is not None:
        headers.append((b"retry-after", str(outcome.retry_after).encode()))
    if outcome.orders is not None:
        headers.append((b"x-mbx-order-count-10s", b"%d" % outcome.orders.ten_seconds))
        headers.append((b"x-mbx-order-count-1d", b"%d" % outcome.orders.day))
    return Answer(outcome.status, outcome.body, headers)


API_PREFIXES: Final = ("/api/", "/sapi/")
UNSUPPORTED: Final = ApiError(-1020, "This operation is not supported.", 404)
"""Binance's UNSUPPORTED_OPERATION, for paths it would not serve either (Binance itself answers
those with an empty or HTML 404 page, which its clients cannot parse)."""

_ANSWERED: Final[dict[str, Any]] = {}
"""The ``200`` child of ``HTTP_REQUESTS`` per endpoint, looked up once rather than per request."""


def _headers(body: bytes, used: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"x-mbx-used-weight-1m", b"%d" % used),
    ]


class ApiFront:
    """The ASGI app uvicorn runs: ``/api/v3`` requests are dispatched by a dict lookup and answered
    directly; everything else (static page, metrics, OpenAPI, lifespan) goes to Starlette."""

    def __init__(self, inner: Starlette, gateway: Gateway) -> None:
        self.inner = inner
        self.gateway = gateway
        self.routes: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS}
        self.state = inner.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            path = scope["path"]
            endpoint = self.routes.get((method, path))
            if endpoint is not None:
                await self._api(endpoint, scope, receive, send)
                return
            if path.startswith(API_PREFIXES) or path in ("/api", "/sapi"):
                await self._unsupported(path, scope, send)
                return
        await self.inner(scope, receive, send)

    async def _unsupported(self, path: str, scope: Any, send: Any) -> None:
        """A path under ``/api`` or ``/sapi`` that no endpoint serves: Binance's ``-1020`` as JSON,
        which Binance clients read as an API error (a plain-text 404 made python-binance report
        "invalid JSON"); 405 when the path is served for another method."""
        known = any(route_path == path for _, route_path in self.routes)
        status = 405 if known else 404
        HTTP_REQUESTS.labels("unsupported", str(status)).inc()
        body = UNSUPPORTED.body()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})

    async def _api(self, endpoint: Endpoint, scope: Any, receive: Any, send: Any) -> None:
        query: bytes = scope.get("query_string", b"")
        body = b""
        refusal: ApiError | None = None
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(query) + len(body) > MAX_REQUEST_BYTES:
                refusal, body = REQUEST_TOO_LARGE, b""  # the rest is not read
                break
        api_key: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-mbx-apikey":
                api_key = value.decode("latin-1")
                break
        client = scope.get("client")
        ip = client[0] if client else "-"
        answer = await serve(self.gateway, endpoint, ip, query, body, api_key, refusal)
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body if scope["method"] != "HEAD" else b""})


def _ops(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        answer = ops_http.route("GET", f"/{kind}", request.headers.get("accept"), gateway.ready)
        return Response(answer.body, answer.status, media_type=answer.content_type)

    return handle


async def _openapi(_: Request) -> Response:
    return Response(openapi_document(ENDPOINTS), media_type=JSON)


def routes(web_root: Path = WEB_ROOT) -> list[BaseRoute]:
    """Starlette's routes: everything but ``/api/v3`` (which :class:`ApiFront` answers)."""
    table: list[BaseRoute] = []
    table += [
        Route("/metrics", _ops("metrics")),
        Route("/healthz", _ops("healthz")),
        Route("/readyz", _ops("readyz")),
        Route("/openapi.json", _openapi),
    ]
    vendor = web_root / "node_modules" / "lightweight-charts" / "dist"
    if vendor.is_dir():
        table.append(Mount("/vendor/lightweight-charts", StaticFiles(directory=vendor), name="vendor"))
    static = web_root / "static"
    if static.is_dir():
        table.append(Mount("/", StaticFiles(directory=static, html=True), name="web"))
    return table


def create_app(gateway: Gateway, web_root: Path = WEB_ROOT) -> ApiFront:
    """The Starlette app; its lifespan starts and stops ``gateway`` and hands it to the WS protocol."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        app.state.gateway = gateway
        await gateway.start()
        try:
            yield {"gateway": gateway}
        finally:
            await gateway.stop()

    app = Starlette(routes=routes(web_root), lifespan=lifespan)
    app.state.gateway = gateway
    app.state.started = time.time()
    return ApiFront(app, gateway)
