"""Journal entries as the engine reads them: live, in recovery's replay and in the audit (fields by
name), the same command and time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradewire.journal.entries import (
    EVENTS_PER_ENTRY,
    CommandEntry,
    Reply,
    command_and_ts,
    command_outcomes,
    entry_int,
    events_ops,
    exchange_time,
    outcome_in,
    parse_flat_entry,
    parse_reply,
    reply_payload,
    unclamped,
)
from tradewire.journal.streams import id_order

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


def _recorded(count: int, first: int = 1) -> list[tuple[bytes, bytes]]:
    """``count`` consecutive commands' ``(id, reply message)``, as a batch records them."""
    out = []
    for seq in range(first, first + count):
        entry = CommandEntry(b"1700000000000-%d" % seq, b"{}", 1_700_000_000_000 + seq, b"r%d" % seq, b"gw")
        out.append((entry.entry_id, reply_payload(entry, b'[{"type":"rejected","reason":"bad_command"}]')))
    return out


def _as_stream(ops: list[tuple[bytes, ...]]) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries the ``XADD``s would leave in the stream, as ``XRANGE`` reads them."""
    return [(op[2], dict(zip(op[3::2], op[4::2], strict=True))) for op in ops]


def test_a_batchs_outcomes_are_recorded_in_entries_of_consecutive_commands_under_the_last_id() -> None:
    outcomes = _recorded(2 * EVENTS_PER_ENTRY + 7)
    stream = _as_stream(events_ops(outcomes))
    assert [len(fields) for _, fields in stream] == [EVENTS_PER_ENTRY, EVENTS_PER_ENTRY, 7]
    assert [entry_id for entry_id, _ in stream] == [list(fields)[-1] for _, fields in stream]
    read = [pair for entry in stream for pair in command_outcomes(*entry)]
    assert [cmd for cmd, _ in read] == [cmd for cmd, _ in outcomes]
    for (cmd, fields), (_, payload) in zip(read, outcomes, strict=True):
        reply = parse_reply(payload)
        assert fields[b"cmd"] == cmd and fields[b"rid"] == reply.rid.encode()
        assert fields[b"ts"] == b"%d" % reply.ts
        assert fields[b"e"] == b'[{"type":"rejected","reason":"bad_command"}]', (
            "the events' bytes as rendered"
        )
    assert events_ops([]) == []


def test_a_commands_outcome_is_the_first_entry_at_or_after_its_id_when_it_holds_it() -> None:
    outcomes = _recorded(250)
    stream = _as_stream(events_ops(outcomes))

    def lookup(cmd: bytes) -> Reply | None:  # XRANGE tw:{0}:events <cmd> + COUNT 1
        return outcome_in([entry for entry in stream if id_order(entry[0]) >= id_order(cmd)][:1], cmd)

    for cmd, payload in outcomes[::7] + outcomes[-1:]:
        assert lookup(cmd) == parse_reply(payload)
    assert lookup(b"1700000000000-0") is None, "a command the journal does not hold (lost in a failover)"
    assert lookup(b"1700000000000-251") is None, "a command not applied yet"
    assert outcome_in([], b"1700000000000-1") is None


def test_an_entry_of_one_command_written_before_the_grouping_is_still_read() -> None:
    fields = {b"cmd": b"5-0", b"ts": b"7", b"rid": b"abc", b"e": b'[{"type":"rejected","reason":"x"}]'}
    assert command_outcomes(b"5-0", fields) == [(b"5-0", fields)]
    reply = outcome_in([(b"5-0", fields)], b"5-0")
    assert reply is not None and (reply.cmd, reply.ts, reply.rid) == ("5-0", 7, "abc")
    assert outcome_in([(b"6-0", {**fields, b"cmd": b"6-0"})], b"5-0") is None


def test_a_damaged_value_of_a_grouped_entry_is_kept_whole_for_the_audit_and_is_no_outcome() -> None:
    [(cmd, good)] = _recorded(1)
    for damaged in (good[:-5], b'{"rid":5,"cmd":"x","ts":1,"events":[]}', b"[]", b'{"rid":"a"}'):
        [(got, fields)] = command_outcomes(cmd, {cmd: damaged})
        assert (got, fields) == (cmd, {b"cmd": cmd, b"ts": b"", b"rid": b"", b"e": damaged})
        assert outcome_in([(cmd, {cmd: damaged})], cmd) is None


def test_a_reply_filed_under_another_commands_id_reads_as_that_commands() -> None:
    [(cmd, _), (other, payload)] = _recorded(2)
    [(got, fields)] = command_outcomes(cmd, {cmd: payload})
    assert got == cmd and fields[b"cmd"] == other, "the audit then says it answers another command"
    assert outcome_in([(cmd, {cmd: payload})], cmd) is None
