"""A slow connection's backlog: diffs merge into one that gives the same book, snapshots replace."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewire.gateway.backlog import Backlog


def _diff(first: int, last: int, bids: list[list[str]], asks: list[list[str]], cs: int = 0) -> bytes:
    return orjson.dumps(
        {"e": "depthUpdate", "E": last, "s": "BTCUSDT", "U": first, "u": last, "pu": first - 1,
         "b": bids, "a": asks, "cs": cs}
    )  # fmt: skip


def _apply(book: dict[str, str], levels: list[list[str]]) -> None:
    for price, qty in levels:
        if Decimal(qty) == 0:
            book.pop(price, None)
        else:
            book[price] = qty


def test_backlog_with_consecutive_diffs_merges_ids_and_keeps_newest_levels() -> None:
    backlog = Backlog(10_000)
    assert backlog.add("s", "diff", _diff(5, 6, [["100", "1"]], [["101", "2"]]))
    assert backlog.add("s", "diff", _diff(7, 9, [["100", "0"], ["99", "3"]], [], cs=42))
    [merged] = backlog.drain(lambda stream, payload: payload)
    out = orjson.loads(merged)
    assert (out["U"], out["u"], out["pu"], out["cs"]) == (5, 9, 4, 42)
    assert out["b"] == [["100", "0"], ["99", "3"]]
    assert out["a"] == [["101", "2"]]
    assert backlog.conflated == 1 and len(backlog) == 0


level = st.tuples(st.sampled_from(["99", "99.5", "100", "100.5", "101"]), st.sampled_from(["0", "1", "2.5"]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.lists(level, max_size=4), st.lists(level, max_size=4)), min_size=1, max_size=8))
def test_merged_diff_with_any_sequence_builds_the_same_book(diffs: list[tuple[list, list]]) -> None:  # type: ignore[type-arg]
    one_by_one: tuple[dict[str, str], dict[str, str]] = ({}, {})
    backlog = Backlog(1_000_000)
    for index, (bids, asks) in enumerate(diffs):
        b = [list(x) for x in bids]
        a = [list(x) for x in asks]
        _apply(one_by_one[0], b)
        _apply(one_by_one[1], a)
        backlog.add("s", "diff", _diff(index + 1, index + 1, b, a))
    [merged] = backlog.drain(lambda stream, payload: payload)
    out = orjson.loads(merged)
    merged_book: tuple[dict[str, str], dict[str, str]] = ({}, {})
    _apply(merged_book[0], out["b"])
    _apply(merged_book[1], out["a"])
    assert merged_book == one_by_one


def test_backlog_with_latest_values_keeps_only_the_newest_in_place() -> None:
    backlog = Backlog(10_000)
    backlog.add("t", "plain", b"trade1")
    backlog.add("b", "latest", b"book1")
    backlog.add("t", "plain", b"trade2")
    backlog.add("b", "latest", b"book2")
    assert backlog.drain(lambda stream, payload: stream.encode() + b":" + payload) == [
        b"t:trade1", b"b:book2", b"t:trade2"
    ]  # fmt: skip


def test_backlog_over_its_byte_limit_says_so() -> None:
    backlog = Backlog(10)
    assert backlog.add("t", "plain", b"12345")
    assert not backlog.add("t", "plain", b"123456")
