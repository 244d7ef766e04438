"""Journal entries as the engine reads them: live and in recovery's replay, the same fields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradewire.journal.entries import command_and_ts, parse_flat_entry

_NAMES = st.sampled_from([b"c", b"ts", b"rid", b"src", b"who", b"ip", b"x"])
_VALUES = st.one_of(
    st.sampled_from([b"", b"{}", b"1700000000000", b" 17 ", b"+5", b"-3", b"soon", b"1_000"]),
    st.binary(max_size=8),
)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=10))
def test_replay_reads_command_and_ts_as_the_live_reader_does(pairs: list[tuple[bytes, bytes]]) -> None:
    flat = [part for pair in pairs for part in pair]
    entry = parse_flat_entry(b"1-0", flat)
    assert command_and_ts(flat) == (entry.command, entry.ts)


def test_the_submitters_order_takes_the_first_fields_and_any_other_the_last() -> None:
    submitted = [b"c", b"A", b"ts", b"5", b"rid", b"r", b"src", b"s", b"c", b"B"]
    assert command_and_ts(submitted) == (b"A", 5)
    other = [b"c", b"A", b"ts", b"5", b"c", b"B"]
    assert command_and_ts(other) == (b"B", 5)
    assert command_and_ts([b"ts", b"soon"]) == (b"", 0)
