"""Binance's WebSocket API (``/ws-api/v3``): the REST endpoints as request and response frames.

A trading program that keeps one connection open (ccxt's ``create_order_ws`` and friends,
python-binance's ``ws_*`` calls) sends ``{"id", "method", "params"}`` and gets back
``{"id", "status", "result" | "error", "rateLimits"}``. It saves what a REST order costs on both
sides: no HTTP request to parse, no connection taken from a pool, no header to build.

Each method is one REST endpoint of :data:`tradewire.gateway.app.ENDPOINTS`, run by the same code
(:func:`tradewire.gateway.app.run`: weight, key, signature, time window, handler, errors), so the
two APIs cannot drift apart. What differs is only the transport:

- the API key is the ``apiKey`` parameter, not a header;
- the signature covers the parameters sorted by name, each as ``name=value``, joined with ``&``,
  ``signature`` itself left out (JSON numbers and booleans as their JSON text: ``1700000000000``,
  ``true``);
- ``rateLimits`` in every answer holds the IP's request weight this minute, unless the request sets
  ``returnRateLimits`` to false.

Requests on one connection run concurrently and are answered as they finish; the ``id`` tells the
answers apart (Binance's rule too).

Three methods belong to the connection rather than to REST: ``userDataStream.subscribe.signature``
(a signed request; the key owner's ``executionReport`` and ``outboundAccountPosition`` events then
come on this connection as ``{"subscriptionId": n, "event": {...}}``, which is how ccxt's
``watch_orders``/``watch_balance``/``watch_my_trades`` follow a spot account today),
``userDataStream.unsubscribe`` and ``session.subscriptions``. The connection does the following
(:class:`Session`); everything here but :func:`answer` and those handlers is pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import orjson

from tradewire.gateway import errors, public
from tradewire.gateway.app import API, ENDPOINTS, Endpoint, Outcome, Signing, run
from tradewire.gateway.auth import DUPLICATE_PARAMETER, ApiKey
from tradewire.gateway.errors import ApiError, bad_param, mandatory
from tradewire.gateway.service import Gateway

METHODS: Final[dict[str, tuple[str, str]]] = {
    "ping": ("GET", "ping"),
    "time": ("GET", "time"),
    "exchangeInfo": ("GET", "exchangeInfo"),
    "depth": ("GET", "depth"),
    "trades.recent": ("GET", "trades"),
    "trades.historical": ("GET", "historicalTrades"),
    "trades.aggregate": ("GET", "aggTrades"),
    "klines": ("GET", "klines"),
    "uiKlines": ("GET", "uiKlines"),
    "avgPrice": ("GET", "avgPrice"),
    "ticker": ("GET", "ticker"),
    "ticker.24hr": ("GET", "ticker/24hr"),
    "ticker.tradingDay": ("GET", "ticker/tradingDay"),
    "ticker.price": ("GET", "ticker/price"),
    "ticker.book": ("GET", "ticker/bookTicker"),
    "order.place": ("POST", "order"),
    "order.test": ("POST", "order/test"),
    "order.status": ("GET", "order"),
    "order.cancel": ("DELETE", "order"),
    "order.cancelReplace": ("POST", "order/cancelReplace"),
    "openOrders.status": ("GET", "openOrders"),
    "openOrders.cancelAll": ("DELETE", "openOrders"),
    "allOrders": ("GET", "allOrders"),
    "myTrades": ("GET", "myTrades"),
    "account.status": ("GET", "account"),
    "account.commission": ("GET", "account/commission"),
    "account.rateLimits.orders": ("GET", "rateLimit/order"),
    "userDataStream.start": ("POST", "userDataStream"),
    "userDataStream.ping": ("PUT", "userDataStream"),
    "userDataStream.stop": ("DELETE", "userDataStream"),
}
"""Binance's method names and the REST endpoint (method, path under ``/api/v3``) each one runs."""

_BY_ROUTE: Final = {(e.method, e.path): e for e in ENDPOINTS}
ROUTES: Final[dict[str, Endpoint]] = {
    name: _BY_ROUTE[(method, f"{API}/{path}")] for name, (method, path) in METHODS.items()
}


class Session(Protocol):
    """The connection a request came on, for the methods that act on it."""

    async def subscribe_user(self, user: str, api_key: str) -> int | None:
        """Follow ``user``'s data on this connection until ``api_key`` (and every other key that
        asked for it) is revoked; the subscription's id (the same id again for a user already
        followed), ``None`` when the key was revoked before the subscription took effect. One that
        the client stopped while it was being made was made: it gets its id."""
        ...

    def unsubscribe_user(self, subscription: int | None) -> bool:
        """Stop one subscription (``None``: all); whether there was one to stop."""
        ...

    def user_subscriptions(self) -> list[int]: ...


SUBSCRIPTION_NOT_FOUND: Final = (-2035, "User Data Stream subscription not active.")


def session_routes(session: Session) -> dict[str, Endpoint]:
    """The connection's own methods, as endpoints that :func:`run` checks like any other."""

    async def subscribe(_: Gateway, __: dict[str, str], key: ApiKey | None, ___: str) -> bytes:
        assert key is not None
        subscription = await session.subscribe_user(key.user, key.key)
        if subscription is None:
            raise errors.error(errors.REJECTED_API_KEY, 401)
        return orjson.dumps({"subscriptionId": subscription})

    async def unsubscribe(_: Gateway, params: dict[str, str], __: ApiKey | None, ___: str) -> bytes:
        raw = params.get("subscriptionId")
        if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise bad_param("subscriptionId", "expected an integer.")
        if not session.unsubscribe_user(int(raw) if raw is not None else None) and raw is not None:
            raise errors.error(SUBSCRIPTION_NOT_FOUND)
        return b"{}"

    async def listed(_: Gateway, __: dict[str, str], ___: ApiKey | None, ____: str) -> bytes:
        return orjson.dumps([{"subscriptionId": n} for n in session.user_subscriptions()])

    return {
        "userDataStream.subscribe.signature": Endpoint(
            "WS", "userDataStream.subscribe.signature", subscribe, 2, "signed", "Follow the key owner's data."
        ),
        "userDataStream.unsubscribe": Endpoint(
            "WS", "userDataStream.unsubscribe", unsubscribe, 2, "none", "Stop one or every subscription."
        ),
        "session.subscriptions": Endpoint(
            "WS", "session.subscriptions", listed, 2, "none", "The connection's user data subscriptions."
        ),
    }


def subscription_event(subscription: int, payload: bytes) -> bytes:
    """A user data event as it comes on a WebSocket API connection."""
    return b'{"subscriptionId":%d,"event":%s}' % (subscription, payload)


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request frame; ``id`` is kept as the JSON text the client sent, to echo it."""

    id: bytes
    method: str
    params: dict[str, str]
    rate_limits: bool


class BadRequest(ValueError):
    """A frame that is not a request; the answer carries the ``id`` when one could be read."""

    def __init__(self, error: ApiError, request_id: bytes = b"null") -> None:
        super().__init__(error.msg)
        self.error = error
        self.request_id = request_id


_NAME: Final = re.compile(r"\A[A-Za-z][A-Za-z0-9]{0,63}\Z")
_UNSAFE: Final = re.compile(r"[&=%+\x00-\x1f\x7f]")
"""Characters no Binance parameter value has, and that could make two different parameter sets
sign the same text (``&`` and ``=`` re-split the pairs; ``%`` and ``+`` mimic the percent-encoded
form that is accepted too)."""
_MAX_ID_TEXT: Final = 36
_ID_RANGE: Final = range(-(2**63), 2**63)


def valid_request_id(request_id: Any) -> bool:
    """Binance's request ids, on the WebSocket API and stream connections alike: null, a string
    of up to 36 characters or a 64-bit integer (not a float, a bool or a number past 64 bits,
    which JSON libraries would echo changed)."""
    return (
        request_id is None
        or (isinstance(request_id, str) and len(request_id) <= _MAX_ID_TEXT)
        or (type(request_id) is int and request_id in _ID_RANGE)
    )


_ARRAYS: Final = frozenset({"symbols", "permissions"})
"""Parameters that Binance's WebSocket API takes as JSON arrays of strings (REST: their JSON text)."""


def _text(name: str, value: Any, floats: dict[str, Any] | None) -> str:
    """A parameter's value as the text the signature covers (and the REST handlers read): a JSON
    number as the client wrote it (``floats`` holds the frame's params as text, read again when a
    number is not an integer: ``10000.50`` and ``1e-05`` must not turn into ``10000.5`` and ``1e-5``)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float) and floats is not None and isinstance(floats.get(name), str):
        text = floats[name]
    elif name in _ARRAYS and isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = orjson.dumps(value).decode()  # the JSON text REST's ``symbols=["A","B"]`` holds
    else:
        raise BadRequest(bad_param(name, "expected a string, number or boolean."))
    if _UNSAFE.search(text):
        raise BadRequest(bad_param(name, "a value may not hold '&', '=', '%', '+' or control characters."))
    return text


TOO_DEEP: Final = ApiError(-1100, "Illegal request: the frame nests deeper than the server reads it again.")
"""A frame that orjson parsed (1,024 levels) but the stdlib parser, which the checks below need, cannot
(Python's recursion limit): refused, rather than let through unchecked."""


def _reread(data: bytes | str, **hooks: Any) -> Any:
    """The frame parsed again by the stdlib parser, whose hooks see what orjson does not show."""
    try:
        return json.loads(data, **hooks)
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None


def _float_texts(data: bytes | str) -> dict[str, Any] | None:
    """The frame's params with every number as its text (only asked when one is not an integer)."""
    message = _reread(data, parse_float=str, parse_int=str)
    params = message.get("params") if isinstance(message, dict) else None
    return params if isinstance(params, dict) else None


class _Repeated(dict[str, Any]):
    """A JSON object in which a name came twice (what the stdlib parser makes of one)."""


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(items)
    return _Repeated(found) if len(found) != len(items) else found


def _may_repeat_a_name(data: bytes | str, message: dict[str, Any]) -> bool:
    """Whether the frame may name something twice in one object (orjson keeps the last value,
    silently): about what orjson takes to parse the frame, a sixth of what the stdlib parser that
    can tell takes (an order frame: 1.5 against 10 us, on a busy small machine).

    Never wrong in the direction that matters: in a frame without a backslash every ``"`` opens or
    closes a string and no string holds a ``"``, so the frame has as many ``"`` as the parsed
    message written again, unless parsing dropped a string: a name given twice drops at least
    itself. A frame with a backslash is always read again (:func:`_repeats_a_param`)."""
    if isinstance(data, bytes):
        if b"\\" in data:
            return True
        quotes = data.count(b'"')
    else:
        if "\\" in data:
            return True
        quotes = data.count('"')
    try:
        return quotes != orjson.dumps(message).count(b'"')
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: read it again
        return True


def _repeats_a_param(data: bytes | str) -> bool:
    """Whether the frame's ``params`` object names a parameter twice (the stdlib parser hands every
    object's pairs over, duplicates included; orjson and msgspec do not)."""
    message = _reread(data, object_pairs_hook=_pairs)
    return isinstance(message, dict) and isinstance(message.get("params"), _Repeated)


def parse_request(data: bytes | str) -> Request:
    """The request in one text frame; raises :class:`BadRequest` saying what is wrong."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadRequest(ApiError(-1100, "Illegal request: the frame is not valid JSON.")) from None
    if not isinstance(message, dict):
        raise BadRequest(ApiError(-1100, "Illegal request: expected a JSON object with id, method, params."))
    if "id" not in message:
        raise BadRequest(mandatory("id"))
    request_id = message["id"]
    if not valid_request_id(request_id):
        raise BadRequest(bad_param("id", "expected a string of 36 characters at most, an int64 or null."))
    echo = orjson.dumps(request_id)
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise BadRequest(mandatory("method"), echo)
    raw = message.get("params", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadRequest(bad_param("params", "expected an object."), echo)
    params: dict[str, str] = {}
    try:
        if _may_repeat_a_name(data, message) and _repeats_a_param(data):
            raise BadRequest(errors.error(DUPLICATE_PARAMETER))  # as REST answers a name sent twice
        floats = _float_texts(data) if any(type(v) is float for v in raw.values()) else None
        for name, value in raw.items():
            if not _NAME.match(name):
                raise BadRequest(bad_param(name[:64], "parameter names are letters and digits."))
            if value is not None:
                params[name] = _text(name, value, floats)
    except BadRequest as exc:
        raise BadRequest(exc.error, echo) from None
    return Request(echo, method, params, params.get("returnRateLimits", "true") != "false")


def signing(params: dict[str, str]) -> Signing:
    """The WebSocket API's signature rule (see the module): sorted ``name=value`` pairs; and the
    same pairs percent-encoded when that differs (see ``Signing.encoded``)."""
    names = [name for name in sorted(params) if name != "signature"]
    payload = "&".join(f"{name}={params[name]}" for name in names).encode()

    def encoded() -> bytes | None:
        text = urlencode([(name, params[name]) for name in names]).encode()
        return text if text != payload else None

    return Signing(params, payload, params.get("signature"), encoded)


def envelope(
    request_id: bytes,
    outcome: Outcome,
    limit: int,
    rate_limits: bool = True,
    now_ms: int = 0,
    order_limits: tuple[int, int] | None = None,
) -> bytes:
    """The answer frame: ``result`` for a 200, ``error`` (Binance's ``{"code", "msg"}``) otherwise;
    a 429's error says, as Binance's does, when to come back (``data.retryAfter``, Unix ms). A new
    order's answer also counts the account's orders against ``order_limits`` (10 s, 1 day)."""
    body = outcome.body
    if outcome.retry_after is not None and body.endswith(b"}"):
        body = body[:-1] + b',"data":{"serverTime":%d,"retryAfter":%d}}' % (
            now_ms,
            now_ms + outcome.retry_after * 1000,
        )
    field = b"result" if outcome.status == 200 else b"error"
    out = b'{"id":%s,"status":%d,"%s":%s' % (request_id, outcome.status, field, body)
    if rate_limits:
        out += (
            b',"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,'
            b'"limit":%d,"count":%d}' % (limit, outcome.used)
        )
        if outcome.orders is not None and order_limits is not None:
            per_10s, per_day = order_limits
            if per_10s:
                out += (
                    b',{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":%d,'
                    b'"count":%d}' % (per_10s, outcome.orders.ten_seconds)
                )
            if per_day:
                out += (
                    b',{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":%d,'
                    b'"count":%d}' % (per_day, outcome.orders.day)
                )
        out += b"]"
    return out + b"}"


def internal_error(data: bytes | str) -> bytes:
    """The answer to a request that failed inside the gateway (its ``id`` echoed when readable)."""
    try:
        request_id = parse_request(data).id
    except BadRequest as exc:
        request_id = exc.request_id
    except Exception:  # the answer of last resort must not fail as the request did
        request_id = b"null"
    error = errors.error(errors.DISCONNECTED, 500)
    return envelope(request_id, Outcome(500, error.body(), 0), 0, rate_limits=False)


def _refused(gateway: Gateway, ip: str, request_id: bytes, error: ApiError) -> bytes:
    """The answer to a frame that is not a request (or names no method): charged weight 1, so that
    a flood of them is limited like any other request."""
    now = public.now_ms()
    try:
        used = gateway.weights.spend(ip, 1, now)
    except ApiError as limited:
        error, used = limited, gateway.weights.used(ip, now)
    outcome = Outcome(error.status, error.body(), used, error.retry_after)
    return envelope(request_id, outcome, gateway.limits.weight_per_minute, now_ms=now)


async def answer(
    gateway: Gateway, ip: str, data: bytes | str, session_methods: dict[str, Endpoint] | None = None
) -> bytes:
    """The answer frame to one request frame from ``ip`` (``session_methods``: from
    :func:`session_routes` for the connection it came on)."""
    try:
        request = parse_request(data)
    except BadRequest as exc:
        return _refused(gateway, ip, exc.request_id, exc.error)
    endpoint = ROUTES.get(request.method)
    if endpoint is None and session_methods is not None:
        endpoint = session_methods.get(request.method)
    if endpoint is None:
        unknown = ApiError(-1100, f"Illegal request: unknown method '{request.method[:64]}'.")
        return _refused(gateway, ip, request.id, unknown)
    params = request.params
    outcome = await run(gateway, endpoint, ip, params, params.get("apiKey"), lambda: signing(params))
    limits = gateway.limits
    now = public.now_ms() if outcome.retry_after is not None else 0
    orders = (limits.orders_per_10s, limits.orders_per_day)
    return envelope(request.id, outcome, limits.weight_per_minute, request.rate_limits, now, orders)
