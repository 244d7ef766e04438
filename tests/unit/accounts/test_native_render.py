"""The C renderers of order records and balance values write exactly what the Python ones write."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tradewire.accounts import _render, payloads
from tradewire.accounts.records import TEXTS, OrderState, Symbol

_BIG = 2**64
_AMOUNTS = st.one_of(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # the C path's whole range, and its edges
    st.integers(min_value=-_BIG, max_value=_BIG),  # past it: the Python renderer answers
    st.sampled_from([0, 1, 10, 10**18, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1]),
)
_WORDS = st.sampled_from(["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "LIMIT", "BUY", "GTC"])
_CLIENT_IDS = st.one_of(
    st.sampled_from(
        ["", "web_5f1", "a" * 36, 'quo"te', "back\\slash", "tab\there", "é-ü", "\u2028", "x" * 300, "\ud800"]
    ),
    st.text(max_size=40),
)


def _symbol(base: int, quote: int, symbol: str) -> Symbol:
    """What the renderers read of a market: its symbol and its assets' decimals."""
    return Symbol(
        "BTC-USDT", symbol, "BTC", "USDT", base, quote, 10**base, 1, TEXTS[base], TEXTS[quote],
        orjson.dumps(symbol).decode(),
    )  # fmt: skip


@given(
    st.integers(min_value=0, max_value=18),
    st.integers(min_value=0, max_value=18),
    st.lists(_AMOUNTS, min_size=8, max_size=8),
    _CLIENT_IDS,
    st.lists(_WORDS, min_size=5, max_size=5),
    st.sampled_from(["BTCUSDT", "ÉTHUSDT", 'A"B']),
)
@example(8, 2, [0, 0, 0, 0, 1, 0, 0, 0], "", ["NEW", "LIMIT", "BUY", "GTC", "NONE"], "BTCUSDT")
def test_an_order_record_in_c_is_the_python_one(
    base: int, quote: int, numbers: list[int], client_id: str, words: list[str], symbol: str
) -> None:
    price, qty, quote_qty, time, update_time, executed, cum_quote, order_id = numbers
    status, kind, side, tif, stp = words
    order = OrderState(
        order_id, "alice", "BTC-USDT", client_id, side, kind, tif, stp, price, qty, quote_qty,
        time, update_time, executed, cum_quote, status,
    )  # fmt: skip
    sym = _symbol(base, quote, symbol)
    try:
        expected = payloads.order_record_python(order, sym)
    except TypeError:  # a lone surrogate: no JSON for it, whichever renders
        with pytest.raises(TypeError):
            _render.order_record(order, sym)
        return
    assert _render.order_record(order, sym) == expected
    assert orjson.loads(expected)["clientOrderId"] == client_id


@given(_AMOUNTS, _AMOUNTS, st.integers(min_value=0, max_value=18))
@example(123456789, 0, 8)
@example(-(2**63), 2**63 - 1, 18)
def test_a_balance_value_in_c_is_the_python_one(free: int, locked: int, places: int) -> None:
    assert _render.balance_record(free, locked, places) == payloads.balance_record_python(
        free, locked, places
    )


def test_the_c_renderers_are_built_and_used_here() -> None:
    """The project's install builds them; a silent fall-back to Python would pass the rest."""
    assert payloads.RENDERER == "native"
    assert payloads.order_record is _render.order_record
    assert payloads.balance_record is _render.balance_record
