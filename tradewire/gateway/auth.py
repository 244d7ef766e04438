"""Binance request signing: which bytes are signed, and whether a request's signature and time hold.

A signed request carries ``X-MBX-APIKEY`` (the key id), ``timestamp`` (client ms), optionally
``recvWindow`` (ms, at most 60,000, default 5,000) and ``signature``: the hex HMAC-SHA256, keyed
with the API secret, of *totalParams*, which Binance defines as the query string followed directly
by the request body, without the ``signature`` parameter. The checks are pure functions of the
request bytes, the secret and the server's time; :class:`KeyCache` is the shell that finds a key's
owner and secret in Redis (``tw:apikey:<key>``), decrypting the secret with the master key, and keeps
them for a short while so that a busy trader's every order does not cost a Redis round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import redis.asyncio

from tradewire import keys
from tradewire.gateway import errors
from tradewire.gateway.errors import ApiError
from tradewire.gateway.params import parse_int
from tradewire.gateway.secrets import SecretError, decrypt_secret

DEFAULT_RECV_WINDOW: Final = 5000
MAX_RECV_WINDOW: Final = 60000
FUTURE_TOLERANCE_MS: Final = 1000
KEY_CACHE_SECONDS: Final = 30.0


def strip_signature(raw: bytes) -> tuple[bytes, str | None]:
    """``raw`` without its ``signature=...`` pair, and the signature's value if there was one."""
    if not raw:
        return raw, None
    parts = raw.split(b"&")
    kept: list[bytes] = []
    signature: str | None = None
    for part in parts:
        name, equals, value = part.partition(b"=")
        # the name as the parameters are read (``%73ignature`` is ``signature`` there too)
        if equals and (name == b"signature" or (b"%" in name and unquote_to_bytes(name) == b"signature")):
            signature = value.decode("ascii", "replace")
        else:
            kept.append(part)
    return b"&".join(kept), signature


def signed_payload(query: bytes, body: bytes) -> tuple[bytes, str | None]:
    """totalParams (query then body, signature left out) and the signature found in either."""
    q, sig_q = strip_signature(query)
    b, sig_b = strip_signature(body)
    return q + b, sig_q or sig_b


def sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def check_signature(secret: str, payload: bytes, signature: str | None) -> None:
    if not signature:
        raise errors.mandatory("signature")
    # as bytes: compare_digest refuses a str with non-ASCII characters (a 500 instead of -1022)
    if not hmac.compare_digest(sign(secret, payload).encode(), signature.lower().encode()):
        raise errors.error(errors.BAD_SIGNATURE)


_RECV_WINDOW: Final = re.compile(r"\A[0-9]{1,20}(\.[0-9]{1,3})?\Z")
RECV_WINDOW_RANGE: Final = "more than 0 and at most 60000 (ms, up to 3 decimal places)"


def recv_window(text: str) -> float:
    """``recvWindow`` in ms: Binance takes up to three decimals (microseconds); too large is its
    -1131, zero or anything not a plain decimal says what is legal."""
    if _RECV_WINDOW.match(text) is None or float(text) <= 0:
        raise errors.out_of_range("recvWindow", RECV_WINDOW_RANGE)
    window = float(text)
    if window > MAX_RECV_WINDOW:
        raise ApiError(-1131, "recvWindow must be less than 60000")
    return window


def check_time(params: dict[str, str], now_ms: int) -> None:
    """The ``timestamp``/``recvWindow`` rule: not from the future, not older than the window."""
    raw = params.get("timestamp")
    if not raw:
        raise errors.mandatory("timestamp")
    timestamp = parse_int(raw, "timestamp")
    window_raw = params.get("recvWindow")
    window: float = DEFAULT_RECV_WINDOW
    if window_raw:
        window = recv_window(window_raw)
    if timestamp >= now_ms + FUTURE_TOLERANCE_MS:
        raise errors.error(errors.AHEAD_OF_SERVER)
    if now_ms - timestamp > window:
        raise errors.error(errors.OUTSIDE_RECV_WINDOW)


DUPLICATE_PARAMETER: Final = (-1101, "Duplicate values for a parameter detected.")


def _form_text(part: bytes, name: bytes | None = None) -> str:
    """One name or value of a form: ``+`` and percent-escapes decoded, then UTF-8 (an invalid
    sequence is refused, not turned into other characters)."""
    try:
        return unquote_to_bytes(part.replace(b"+", b" ")).decode()
    except UnicodeDecodeError:
        shown = unquote_to_bytes(name if name is not None else part).decode(errors="replace")[:64]
        raise errors.out_of_range(shown, "UTF-8 text") from None


def _form_pairs(raw: bytes) -> list[tuple[str, str]]:
    if b"%" not in raw and b"+" not in raw:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            pass  # the careful way below names the parameter
        else:
            return [(name, value) for name, _, value in (p.partition("=") for p in text.split("&") if p)]
    pairs = []
    for pair in raw.split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            pairs.append((_form_text(name), _form_text(value, name)))
    return pairs


def _parse_form(raw: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in _form_pairs(raw):
        if name in params:
            raise errors.error(DUPLICATE_PARAMETER)
        params[name] = value
    return params


def parse_params(query: bytes, body: bytes) -> dict[str, str]:
    """All parameters of a request, query and form body together, as Binance reads them: a name
    twice in either is refused; one in both is the query's."""
    params = _parse_form(query) if query else {}
    if body:
        for name, value in _parse_form(body).items():
            params.setdefault(name, value)
    return params


@dataclass(frozen=True, slots=True)
class ApiKey:
    key: str
    user: str
    secret: str
    can_trade: bool


def valid_key_format(key: str) -> bool:
    return 0 < len(key) <= 128 and key.isascii() and key.isalnum()


class KeyCache:
    """API keys by id, read from Redis and decrypted once per ``KEY_CACHE_SECONDS``.

    Concurrent requests with a key not in the cache share one read: a client that opens with a
    burst (a WebSocket API connection sends hundreds of orders at once) costs one Redis round trip,
    not one pool connection per request."""

    def __init__(self, client: redis.asyncio.Redis, master_key: bytes | None) -> None:
        self._client = client
        self._master = master_key
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._loading: dict[str, asyncio.Future[ApiKey | None]] = {}
        self._forgotten: dict[str, int] = {}
        """How many times each revoked key was forgotten: a read that began before is not trusted."""

    async def get(self, key: str) -> ApiKey:
        """The key's record; raises the Binance error for a malformed or unknown key."""
        if not valid_key_format(key):
            raise errors.error(errors.BAD_API_KEY_FORMAT, 401)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            record = cached[1]
        else:
            while True:
                forgotten = self._forgotten.get(key, 0)
                loading = self._loading.get(key)
                if loading is None:
                    loading = self._loading[key] = asyncio.ensure_future(self._load(key))
                    loading.add_done_callback(lambda done: self._done_loading(key, done))
                record = await asyncio.shield(loading)  # one waiter cancelled does not cancel the read
                if self._forgotten.get(key, 0) == forgotten:
                    break  # else the key was revoked while it was read: read it again
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = (now, record)
        if record is None:
            raise errors.error(errors.REJECTED_API_KEY, 401)
        return record

    def _done_loading(self, key: str, done: asyncio.Future[ApiKey | None]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]

    def forget(self, key: str) -> None:
        """Drop a revoked key: the next request reads Redis again and finds it gone; a request whose
        read of it was under way reads it again too."""
        self._cache.pop(key, None)
        self._loading.pop(key, None)
        self._forgotten[key] = self._forgotten.get(key, 0) + 1

    async def _load(self, key: str) -> ApiKey | None:
        raw: Any = await self._client.hgetall(keys.api_key(key))
        if not raw or self._master is None:
            return None
        user = raw.get(b"user", b"").decode()
        stored = raw.get(b"secret", b"").decode()
        permissions = raw.get(b"permissions", b"TRADE").decode().upper()
        try:
            secret = decrypt_secret(self._master, key, stored)
        except SecretError:
            return None
        return ApiKey(key=key, user=user, secret=secret, can_trade="TRADE" in permissions)
