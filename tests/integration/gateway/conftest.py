"""Fixtures for the gateway's integration tests: a real exchange and a signing REST client."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from itertools import count
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.fixtures.exchange import Exchange, User, exchange, module_exchange

__all__ = ["Trader", "check_bar_bounds", "exchange", "module_exchange", "new_trader"]

_names = count(1)


class Trader:
    """A user with an API key and an httpx client that signs requests the Binance way."""

    def __init__(self, base_url: str, user: User) -> None:
        self.user = user
        self.http = httpx.Client(base_url=base_url, headers={"X-MBX-APIKEY": user.api_key}, timeout=15.0)

    def sign(self, params: Mapping[str, Any], timestamp: int | None = None, secret: str | None = None) -> str:
        stamped = {**params, "timestamp": timestamp if timestamp is not None else int(time.time() * 1000)}
        query = urlencode(stamped)
        key = (secret or self.user.api_secret).encode()
        return query + "&signature=" + hmac.new(key, query.encode(), hashlib.sha256).hexdigest()

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"{path}?{self.sign(params)}")

    def delete(self, path: str, **params: Any) -> httpx.Response:
        return self.http.delete(f"{path}?{self.sign(params)}")

    def post(self, path: str, **params: Any) -> httpx.Response:
        return self.http.post(
            path, content=self.sign(params), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )

    def order(self, **params: Any) -> httpx.Response:
        return self.post("/api/v3/order", **params)


def new_trader(ex: Exchange, funds: Mapping[str, str] | None = None, name: str | None = None) -> Trader:
    """A fresh user on ``ex`` with ``funds`` deposited through the journal."""
    user = ex.create_user(name or f"trader{next(_names)}")
    for asset, amount in (funds or {"USDT": "1000000", "BTC": "100", "ETH": "1000"}).items():
        ex.deposit(user.name, asset, amount)
    return Trader(ex.http_url, user)


@pytest.fixture
def trader(module_exchange: Exchange) -> Iterator[Trader]:
    t = new_trader(module_exchange)
    try:
        yield t
    finally:
        t.http.close()


def check_bar_bounds(interval: str, start: int, end: int) -> None:
    """Binance's bucket rules, written out with the calendar: 1w from Monday 00:00 UTC, 1M calendar
    months, the rest a fixed length from the epoch."""
    opened = datetime.fromtimestamp(start / 1000, UTC)
    if interval == "1w":
        assert opened.weekday() == 0 and (opened.hour, opened.minute, opened.second) == (0, 0, 0)
        assert end == start + 7 * 86_400_000 - 1
    elif interval == "1M":
        assert (opened.day, opened.hour, opened.minute, opened.second) == (1, 0, 0, 0)
        after = datetime.fromtimestamp((end + 1) / 1000, UTC)
        assert (after.day, after.hour) == (1, 0) and (after.month - opened.month) % 12 == 1
    else:
        length = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[interval[-1]] * int(interval[:-1])
        assert start % length == 0 and end == start + length - 1
