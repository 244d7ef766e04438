"""The gateway's metrics move with traffic: a known sequence of orders shows up as exact counter deltas."""

from __future__ import annotations

import re

import httpx

from tests.fixtures.exchange import Exchange
from tests.integration.gateway.conftest import new_trader


def _sample(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_metrics_with_known_orders_count_each_answer_and_each_rejection(module_exchange: Exchange) -> None:
    trader = new_trader(module_exchange)
    base = module_exchange.http_url
    before = httpx.get(f"{base}/metrics").text
    accepted = 5
    for i in range(accepted):
        response = trader.order(
            symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price=f"{100 + i}"
        )
        assert response.status_code == 200, response.text
    refused = trader.order(
        symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="0.001"
    )
    assert refused.status_code == 400
    after = httpx.get(f"{base}/metrics").text

    acks = _sample(after, "tradewire_order_ack_seconds_count") - _sample(
        before, "tradewire_order_ack_seconds_count"
    )
    assert acks >= accepted
    http_ok = re.findall(
        r'tradewire_http_requests_total\{endpoint="([^"]*order[^"]*)",status="200"\} ([0-9.]+)', after
    )
    http_ok_before = dict(
        re.findall(
            r'tradewire_http_requests_total\{endpoint="([^"]*order[^"]*)",status="200"\} ([0-9.]+)', before
        )
    )
    moved = {name: float(v) - float(http_ok_before.get(name, 0)) for name, v in http_ok}
    assert accepted in moved.values(), moved
    assert re.search(r'tradewire_http_requests_total\{endpoint="[^"]*order[^"]*",status="400"\} [1-9]', after)


def test_metrics_show_the_gateway_clock_measured_against_redis(module_exchange: Exchange) -> None:
    """Measured at start (then every 10 s): on one machine both clocks agree to well under a second;
    exactly 0.0 would be the gauge's default, never measured."""
    text = httpx.get(f"{module_exchange.http_url}/metrics").text
    found = re.search(r"^tradewire_clock_skew_seconds ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found is not None
    skew = float(found.group(1))
    assert skew != 0.0 and abs(skew) < 0.5
