"""Journal entries as the engine reads them: live, in recovery's replay and in the audit (fields by
name), the same command and time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradewire.journal.entries import command_and_ts, entry_int, exchange_time, parse_flat_entry, unclamped

_NAMES = st.sampled_from([b"c", b"ts", b"rid", b"src", b"who", b"ip", b"x"])
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"",
            b"{}",
            b"1700000000000",
            b" 17 ",
            b"+5",
            b"-3",
            b"soon",
            b"1_000",
            b"9223372036854775807",
            b"9223372036854775808",
            b"1" * 30,
            b"-9223372036854775809",
        ]
    ),
    st.binary(max_size=8),
)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=10))
def test_replay_reads_command_and_ts_as_the_live_reader_does(pairs: list[tuple[bytes, bytes]]) -> None:
    flat = [part for pair in pairs for part in pair]
    entry = parse_flat_entry(b"1-0", flat)
    assert command_and_ts(flat) == (entry.command, entry.ts)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=10))
def test_reading_by_position_gives_what_reading_by_name_gives(pairs: list[tuple[bytes, bytes]]) -> None:
    named = dict(pairs)  # the last of a repeated field, as redis-py's XRANGE reply reads it (the audit)
    flat = [part for pair in pairs for part in pair]
    assert command_and_ts(flat) == (named.get(b"c", b""), entry_int(named.get(b"ts")))


_SIX = [b"c", b"ts", b"rid", b"src", b"who", b"ip"]


@given(st.permutations(_SIX), st.lists(_VALUES, min_size=6, max_size=6))
def test_six_fields_in_any_order_read_the_same(names: list[bytes], values: list[bytes]) -> None:
    flat = [part for pair in zip(names, values, strict=True) for part in pair]
    named = dict(zip(names, values, strict=True))
    assert command_and_ts(flat) == (named[b"c"], entry_int(named[b"ts"]))


def test_every_reader_takes_the_last_of_a_repeated_field() -> None:
    submitted = [b"c", b"A", b"ts", b"5", b"rid", b"r", b"src", b"s", b"who", b"w", b"ip", b"-"]
    assert command_and_ts(submitted) == (b"A", 5)  # the submitters' six fields, read by position
    longer = [*submitted, b"c", b"B"]
    assert command_and_ts(longer) == (b"B", 5)  # one more: by name, as redis-py's dict reads it
    assert command_and_ts([b"c", b"A", b"ts", b"5", b"c", b"B"]) == (b"B", 5)
    assert command_and_ts([b"ts", b"soon"]) == (b"", 0)


def test_a_time_outside_64_bits_reads_as_malformed() -> None:
    """No event, snapshot or JSON payload could carry it (it stopped the engine's batches for good)."""
    for value, read in ((b"9223372036854775807", 2**63 - 1), (b"9223372036854775808", 0), (b"1" * 30, 0)):
        submitted = [b"c", b"A", b"ts", value, b"rid", b"r", b"src", b"s", b"who", b"w", b"ip", b"-"]
        assert command_and_ts(submitted) == (b"A", read)
        assert parse_flat_entry(b"1-0", submitted).ts == read == entry_int(value)


def test_exchange_time_is_the_stamp_within_a_second_of_the_entry_id_and_held_at_a_second_beyond() -> None:
    appended = b"1700000000000-3"
    assert exchange_time(appended, 1_700_000_000_400) == 1_700_000_000_400
    assert exchange_time(appended, 1_699_999_999_000) == 1_699_999_999_000
    assert exchange_time(appended, 1_700_000_001_000) == 1_700_000_001_000
    assert exchange_time(appended, 1_700_000_001_001) == 1_700_000_001_000
    assert exchange_time(appended, 1_800_000_000_000) == 1_700_000_001_000
    assert exchange_time(appended, 0) == 1_699_999_999_000
    assert exchange_time(b"1700000000000", 5) == 1_699_999_999_000
    assert exchange_time(b"junk", 5) == 5


@given(
    st.lists(st.integers(0, 5_000), min_size=1, max_size=30),
    st.lists(st.integers(-4_000, 9_000), min_size=30, max_size=30),
)
def test_stamps_between_a_batchs_unclamped_bounds_are_what_exchange_time_gives_each_entry(
    gaps: list[int], offsets: list[int]
) -> None:
    """The shortcut of a batch (no id parsed for a stamp within ``unclamped``) changes nothing."""
    times = [1_700_000_000_000 + sum(gaps[: i + 1]) for i in range(len(gaps))]
    ids = [b"%d-%d" % (ms, i) for i, ms in enumerate(times)]
    lo, hi = unclamped(ids[0], ids[-1])
    for entry_id, ms, offset in zip(ids, times, offsets, strict=False):
        stamp = times[0] + offset
        if lo <= stamp <= hi:
            assert exchange_time(entry_id, stamp) == stamp, (entry_id, ms, stamp)
    assert unclamped(b"junk", ids[-1]) == (1, 0)
    lo, hi = unclamped(b"5000", b"5000")  # an id without a sequence (none that Redis makes)
    assert all(exchange_time(b"5000", stamp) == stamp for stamp in (lo, hi, 4500))
