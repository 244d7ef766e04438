"""An open order's record in Redis reads back as the order it was rendered from (recovery relies on it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import VECTORS_CONFIG
from tradewire.accounts.payloads import order_from_record, order_record
from tradewire.accounts.records import CANCELED, NEW, PARTIALLY_FILLED, OrderState, symbols
from tradewire.engine import ExchangeConfig

SYMBOLS = symbols(ExchangeConfig.from_dict(VECTORS_CONFIG))
units = st.integers(min_value=0, max_value=10**20)


@st.composite
def open_orders(draw: st.DrawFn) -> OrderState:
    market = draw(st.sampled_from(sorted(SYMBOLS)))
    time = draw(st.integers(min_value=0, max_value=2**45))
    return OrderState(
        draw(st.integers(min_value=1, max_value=2**53)), draw(st.sampled_from(["ann", "bo-b", "c.d_e"])),
        market, draw(st.text(max_size=36)), draw(st.sampled_from(["BUY", "SELL"])),
        draw(st.sampled_from(["LIMIT", "LIMIT_MAKER"])), "GTC",
        draw(st.sampled_from(["NONE", "EXPIRE_MAKER", "EXPIRE_TAKER", "EXPIRE_BOTH"])),
        draw(units.filter(bool)), draw(units.filter(bool)), draw(units), time,
        time + draw(st.integers(min_value=0, max_value=10**9)), draw(units), draw(units),
        draw(st.sampled_from([NEW, PARTIALLY_FILLED])), listed=True,
    )  # fmt: skip


@given(open_orders())
def test_an_open_orders_record_reads_back_as_the_order(order: OrderState) -> None:
    record = order_record(order, SYMBOLS[order.market]).encode()
    assert order_from_record(record, order.user, order.market, SYMBOLS[order.market]) == order


@pytest.mark.parametrize(
    "record",
    [b"", b"[]", b"{}", b'{"status":"NEW"}', b"not json"],
)
def test_anything_else_is_refused(record: bytes) -> None:
    with pytest.raises(ValueError):
        order_from_record(record, "ann", "BTC-USDT", next(iter(SYMBOLS.values())))


def test_a_closed_orders_record_is_refused() -> None:
    sym = next(iter(SYMBOLS.values()))
    order = OrderState(
        1, "ann", sym.market, "", "BUY", "LIMIT", "GTC", "NONE", 1, 1, 0, 5, 5, status=CANCELED
    )
    with pytest.raises(ValueError, match="open order"):
        order_from_record(order_record(order, sym).encode(), "ann", sym.market, sym)


@pytest.mark.parametrize("value", [b"1", b"null", b'"-1"', b'"1e5"', b'"0.000000001"', b"[]"])
def test_an_amount_that_is_not_a_canonical_decimal_string_is_refused(value: bytes) -> None:
    sym = SYMBOLS["BTC-USDT"] if "BTC-USDT" in SYMBOLS else next(iter(SYMBOLS.values()))
    order = OrderState(1, "ann", sym.market, "", "BUY", "LIMIT", "GTC", "NONE", 1, 2, 0, 5, 5, executed=1,
                       status=PARTIALLY_FILLED, listed=True)  # fmt: skip
    record = order_record(order, sym).encode()
    assert order_from_record(record, "ann", sym.market, sym) == order
    spoiled = record.replace(b'"executedQty":"' + sym.base_text[1].encode() + b'"', b'"executedQty":' + value)
    assert spoiled != record
    with pytest.raises(ValueError):
        order_from_record(spoiled, "ann", sym.market, sym)
