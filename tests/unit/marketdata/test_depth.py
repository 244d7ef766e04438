"""DepthBook and the checksum: levels from changes, diffs with gap-free ids, and the documented CRC."""

from __future__ import annotations

import zlib

import msgspec
import pytest

from tradewire.marketdata.checksum import CHECKSUM_DEPTH, book_checksum, checksum_text
from tradewire.marketdata.depth import BookSide, DepthBook, DepthState, InconsistentEvents

BASE, QUOTE = 8, 6
P = 10**QUOTE
"""One whole quote unit per base unit: a price of 1."""
Q = 10**BASE
"""One whole base unit."""


def test_checksum_of_the_documented_example_matches_the_docstring() -> None:
    bids = [(100_500_000, 30_000_000), (100_000_000, 125_000_000)]
    asks = [(101_000_000, 50_000_000)]
    assert checksum_text(bids, asks, BASE, QUOTE) == "100.5:0.3:101:0.5:100:1.25"
    assert book_checksum(bids, asks, BASE, QUOTE) == 3836157906


def test_checksum_of_an_empty_book_is_zero() -> None:
    assert checksum_text([], [], BASE, QUOTE) == ""
    assert book_checksum([], [], BASE, QUOTE) == 0


def test_checksum_with_one_side_longer_carries_on_with_that_side_alone() -> None:
    asks = [(101 * P, Q), (102 * P, 2 * Q), (103 * P, 3 * Q)]
    assert checksum_text([(99 * P, Q)], asks, BASE, QUOTE) == "99:1:101:1:102:2:103:3"


def test_checksum_covers_only_the_best_25_levels_of_each_side() -> None:
    bids = [((1000 - i) * P, Q) for i in range(30)]
    text = checksum_text(bids, [], BASE, QUOTE)
    assert text.count(":") == 2 * CHECKSUM_DEPTH - 1
    assert text.endswith("976:1")


def test_book_side_keeps_levels_sorted_best_last_and_drops_emptied_ones() -> None:
    asks = BookSide(is_bid=False)
    for price in (103, 101, 102):
        asks.change(price * P, Q)
    asks.change(102 * P, -Q)  # not the best level
    asks.change(101 * P, -Q)  # the best level
    assert asks.top() == [(103 * P, Q)]
    assert asks.best() == (103 * P, Q)
    asks.change(103 * P, -Q)
    assert asks.best() == (0, 0)
    assert asks.top(5) == []


def test_book_side_top_with_a_limit_longer_than_the_side_returns_every_level() -> None:
    bids = BookSide(is_bid=True, levels={99 * P: Q, 98 * P: 2 * Q, 97 * P: 3 * Q})
    assert bids.top(25) == [(99 * P, Q), (98 * P, 2 * Q), (97 * P, 3 * Q)]
    assert bids.top(2) == [(99 * P, Q), (98 * P, 2 * Q)]
    assert bids.top(0) == []


def test_reduction_below_zero_raises_inconsistent_events_and_names_the_level() -> None:
    book = DepthBook("BTC-USDT", BASE, QUOTE)
    book.change(True, 99 * P, Q)
    with pytest.raises(InconsistentEvents, match="bid level 99000000 would fall to -100000000"):
        book.change(True, 99 * P, -2 * Q)
    with pytest.raises(InconsistentEvents, match="ask level"):
        book.change(False, 101 * P, -Q)


def test_command_without_changes_takes_no_update_id_and_gives_no_diff() -> None:
    book = DepthBook("BTC-USDT", BASE, QUOTE)
    book.change(True, 99 * P, 0)
    assert book.end_command(5) is False
    assert not book.pending
    assert book.take_diff() is None


def test_diffs_chain_their_update_ids_and_carry_the_checksum_after_them() -> None:
    book = DepthBook("BTC-USDT", BASE, QUOTE)
    book.change(True, 99 * P, Q)
    assert book.end_command(10)
    book.change(False, 101 * P, 2 * Q)
    book.end_command(11)
    first = book.take_diff()
    assert first is not None
    assert (first.first_update_id, first.last_update_id, first.prev_update_id, first.event_time) == (
        1,
        2,
        0,
        11,
    )
    assert (first.bids, first.asks) == ([(99 * P, Q)], [(101 * P, 2 * Q)])
    assert first.checksum == zlib.crc32(b"99:1:101:2")
    book.change(False, 101 * P, -2 * Q)
    book.change(False, 102 * P, Q)
    book.change(False, 100 * P, Q)
    book.end_command(12)
    second = book.take_diff()
    assert second is not None
    assert (second.first_update_id, second.last_update_id, second.prev_update_id) == (3, 3, 2)
    assert second.asks == [(100 * P, Q), (101 * P, 0), (102 * P, Q)]  # best first, 0 = gone
    assert book.take_diff() is None


def test_snapshot_is_at_the_last_command_and_state_round_trip_keeps_pending_levels() -> None:
    book = DepthBook("BTC-USDT", BASE, QUOTE)
    book.change(True, 99 * P, Q)
    book.end_command(1)
    book.take_diff()
    book.change(True, 98 * P, Q)
    book.end_command(2)
    assert book.snapshot(1) == (2, [(99 * P, Q)], [])
    data = msgspec.msgpack.encode(book.to_state())
    restored = DepthBook.from_state("BTC-USDT", BASE, QUOTE, msgspec.msgpack.decode(data, type=DepthState))
    assert restored.snapshot() == book.snapshot()
    assert restored.take_diff() == book.take_diff()
    restored.change(True, 97 * P, Q)
    assert restored.bids.top() == [(99 * P, Q), (98 * P, Q), (97 * P, Q)]
