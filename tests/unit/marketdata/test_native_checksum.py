"""The depth checksum taken in C is the reference's number, whatever the book."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tradewire.marketdata import _checksum
from tradewire.marketdata.checksum import book_checksum
from tradewire.marketdata.depth import native_checksum

_UNITS = st.one_of(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=2**63 - 1),
    st.sampled_from([1, 10, 10**18, 2**63 - 1, 2**63, 2**70]),  # past 64 bits: the reference answers
)
_SIDE = st.lists(st.tuples(_UNITS, _UNITS), max_size=40)


@given(_SIDE, _SIDE, st.integers(min_value=0, max_value=18), st.integers(min_value=0, max_value=18))
@example([(10050, 30)], [(10100, 50)], 2, 2)  # the documented example's levels, two decimals each
@example([], [], 8, 2)
@example([(1, 1)] * 30, [], 0, 0)
def test_the_c_checksum_is_the_reference_one(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]], base: int, quote: int
) -> None:
    assert _checksum.book_checksum(bids, asks, base, quote) == book_checksum(bids, asks, base, quote)


def test_the_documented_example_in_c() -> None:
    assert _checksum.book_checksum([(1005, 30), (1000, 125)], [(1010, 50)], 2, 1) == 3836157906


def test_the_c_checksum_is_built_and_used_here() -> None:
    """The project's install builds it; a silent fall-back to Python would pass the rest."""
    assert native_checksum is _checksum.book_checksum
