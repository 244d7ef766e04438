"""Amounts written as text in C are exactly the Python reference's text."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tradewire.engine import _decimals, decimals

_BIG = 2**64
_UNITS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # the C path's whole range
    st.integers(min_value=-(_BIG**2), max_value=_BIG**2),  # past it: the reference answers
    st.sampled_from([0, 1, -1, 10, 10**18, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1]),
)


@given(_UNITS, st.integers(min_value=0, max_value=30))
@example(-(2**63), 18)
@example(2**63 - 1, 0)
@example(100, 2)
@example(-5, 1)
def test_an_amount_in_c_is_the_reference_text(units: int, precision: int) -> None:
    text = _decimals.to_text(units, precision)
    assert text == decimals.to_text_python(units, precision)
    whole, point, frac = text.partition(".")
    assert int(whole + frac) * 10 ** (precision - len(frac)) == units  # the value, exactly
    assert not frac.endswith("0") and (frac or not point)  # canonical: no trailing zero or point


def test_an_amount_that_is_not_a_plain_int_takes_the_reference() -> None:
    assert _decimals.to_text(True, 2) == decimals.to_text_python(True, 2)


def test_the_c_writer_is_built_and_used_here() -> None:
    """The project's install builds it; a silent fall-back to Python would pass the rest."""
    assert decimals.to_text is _decimals.to_text
