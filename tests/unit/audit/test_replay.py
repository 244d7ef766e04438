"""The audit's proof without Redis: journal entries and recorded events in, the first divergence out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from tests.unit.audit.support import CONFIG
from tradewire.audit.replay import Divergence, JournalAudit, entry_order
from tradewire.audit.source import JournalEntry, RecordedEvents
from tradewire.engine import Engine, EventCodec, decode
from tradewire.engine.decimals import to_text

COMMANDS: list[dict[str, Any]] = [
    {"type": "deposit", "user": "ann", "asset": "USDT", "amount": "1000"},
    {"type": "deposit", "user": "ben", "asset": "BTC", "amount": "1"},
    {"type": "new_order", "user": "ben", "market": "BTC-USDT", "side": "sell", "kind": "limit", "qty": "0.5",
     "price": "100"},
    {"type": "new_order", "user": "ann", "market": "BTC-USDT", "side": "buy", "kind": "limit", "qty": "0.2",
     "price": "100"},
]  # fmt: skip


def _record(commands: list[dict[str, Any]]) -> list[tuple[JournalEntry, RecordedEvents]]:
    """What a faithful engine would have recorded for ``commands``."""
    engine, codec = Engine(CONFIG), EventCodec(CONFIG)
    pairs = []
    for i, command in enumerate(commands):
        line = orjson.dumps(command)
        entry = JournalEntry(f"{100 + i}-0", line, 100 + i, f"{i:032x}", "gw", "k", "-")
        events = orjson.dumps([codec.render(e) for e in engine.apply(decode(line))])
        pairs.append((entry, RecordedEvents(entry.id, entry.id, entry.ts, entry.rid, events)))
    return pairs


def _balances(engine: Engine) -> dict[str, dict[str, bytes]]:
    """The balances views a faithful engine would have written."""
    places = {"BTC": 8, "USDT": 6}
    return {
        user: {
            asset: orjson.dumps(
                {"free": to_text(free, places[asset]), "locked": to_text(locked, places[asset])}
            )
            for asset, (free, locked) in assets.items()
        }
        for user, assets in engine.balances.items()
    }


def _run(
    pairs: Sequence[tuple[JournalEntry, RecordedEvents | None]],
) -> tuple[JournalAudit, Divergence | None]:
    audit = JournalAudit(CONFIG)
    for entry, recorded in pairs:
        _, divergence = audit.step(entry, recorded)
        if divergence is not None:
            return audit, divergence
    return audit, None


def test_journal_audit_with_faithful_record_counts_entries_and_trades() -> None:
    audit, divergence = _run(list(_record(COMMANDS)))
    assert divergence is None
    summary = audit.finish()
    assert (summary.entries, summary.trades, summary.last_entry) == (4, 1, "103-0")
    assert (summary.first_ts, summary.last_ts) == (100, 103)
    assert len(summary.digest) == 64


def test_journal_audit_digest_with_different_request_id_differs() -> None:
    pairs = _record(COMMANDS)
    first, _ = _run(list(pairs))
    entry, recorded = pairs[0]
    changed = [
        (
            JournalEntry(entry.id, entry.command, entry.ts, "f" * 32, entry.src, entry.who, entry.ip),
            RecordedEvents(recorded.id, recorded.cmd, recorded.ts, "f" * 32, recorded.events),
        ),
        *pairs[1:],
    ]
    second, divergence = _run(changed)
    assert divergence is None
    assert first.finish().digest != second.finish().digest


def test_journal_audit_with_missing_record_names_the_command() -> None:
    pairs: list[tuple[JournalEntry, RecordedEvents | None]] = list(_record(COMMANDS))
    pairs[2] = (pairs[2][0], None)
    _, divergence = _run(pairs)
    assert divergence is not None
    assert (divergence.entry, divergence.what, divergence.recorded) == (
        "102-0",
        "no recorded events for this command",
        None,
    )


def test_journal_audit_with_events_for_another_command_names_both() -> None:
    pairs = _record(COMMANDS)
    swapped: list[tuple[JournalEntry, RecordedEvents | None]] = [
        pairs[0],
        (pairs[1][0], pairs[2][1]),
    ]
    _, divergence = _run(swapped)
    assert divergence is not None
    assert divergence.entry == "101-0"
    assert divergence.recorded == {"cmd": "102-0", "id": "102-0"}


def test_journal_audit_with_changed_exchange_time_names_it() -> None:
    pairs = _record(COMMANDS)
    entry, recorded = pairs[1]
    late = RecordedEvents(recorded.id, recorded.cmd, recorded.ts + 1, recorded.rid, recorded.events)
    _, divergence = _run([pairs[0], (entry, late)])
    assert divergence is not None
    assert divergence.expected == {"ts": 101, "rid": entry.rid}
    assert divergence.recorded == {"ts": 102, "rid": entry.rid}


def test_journal_audit_with_unparsable_events_shows_the_raw_record() -> None:
    pairs = _record(COMMANDS)
    entry, recorded = pairs[0]
    broken = RecordedEvents(recorded.id, recorded.cmd, recorded.ts, recorded.rid, b"[{not json")
    _, divergence = _run([(entry, broken)])
    assert divergence is not None
    assert divergence.what == "events differ"
    assert divergence.recorded == "[{not json"


def test_journal_audit_with_a_changed_fee_reports_expected_and_recorded_events() -> None:
    pairs = _record(COMMANDS)
    entry, recorded = pairs[3]
    events = orjson.loads(recorded.events)
    events[-1]["taker_fee"] = "0"
    forged = RecordedEvents(recorded.id, recorded.cmd, recorded.ts, recorded.rid, orjson.dumps(events))
    _, divergence = _run([*pairs[:3], (entry, forged)])
    assert divergence is not None
    assert divergence.entry == "103-0"
    assert divergence.expected[-1]["taker_fee"] == "0.0004"
    assert divergence.recorded[-1]["taker_fee"] == "0"
    text = divergence.describe()
    assert text.startswith("divergence at 103-0: events differ\n")
    assert '"taker_fee":"0.0004"' in text


def test_check_balances_with_matching_views_passes_and_counts_users() -> None:
    audit, _ = _run(list(_record(COMMANDS)))
    assert audit.check_balances(_balances(audit.engine), complete=True) is None
    assert audit.summary.users == 3  # ann, ben and the fee account


def test_check_balances_with_zero_asset_missing_from_view_passes() -> None:
    audit, _ = _run(list(_record(COMMANDS[:1])))
    views = _balances(audit.engine)
    views["ann"]["BTC"] = orjson.dumps({"free": "0", "locked": "0.00"})
    assert audit.check_balances(views, complete=True) is None


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b'{"free": "999", "locked": "0"}', {"free": "999", "locked": "0"}),
        (b'{"free": "1000"}', {"free": "1000"}),
        (b'{"free": "1000.0000001", "locked": "0"}', {"free": "1000.0000001", "locked": "0"}),
        (b"garbage", "garbage"),
    ],
)
def test_check_balances_with_wrong_or_malformed_view_names_user_and_asset(raw: bytes, shown: Any) -> None:
    audit, _ = _run(list(_record(COMMANDS[:1])))
    divergence = audit.check_balances({"ann": {"USDT": raw}}, complete=True)
    assert divergence is not None
    assert (divergence.entry, divergence.what) == ("balances:ann", "USDT: balance differs")
    assert divergence.expected == {"free": "1000", "locked": "0"}
    assert divergence.recorded == shown


def test_check_balances_with_view_in_unknown_asset_says_so() -> None:
    audit, _ = _run(list(_record(COMMANDS[:1])))
    views = _balances(audit.engine)
    views["ann"]["DOGE"] = b'{"free": "0", "locked": "0"}'
    divergence = audit.check_balances(views, complete=True)
    assert divergence is not None
    assert divergence.what == "DOGE: not an asset of the config"


def test_check_balances_with_user_missing_from_complete_views_fails() -> None:
    audit, _ = _run(list(_record(COMMANDS[:2])))
    views = _balances(audit.engine)
    del views["ben"]
    divergence = audit.check_balances(views, complete=True)
    assert divergence is not None
    assert divergence.entry == "balances:ben"


def test_check_balances_with_user_missing_from_incomplete_views_counts_it_unchecked() -> None:
    audit, _ = _run(list(_record(COMMANDS[:2])))
    views = _balances(audit.engine)
    del views["ben"]
    assert audit.check_balances(views, complete=False) is None
    assert audit.summary.unchecked_users == ["ben"]
    assert audit.summary.users == 1


def test_extra_with_events_beyond_the_journal_names_the_command() -> None:
    audit = JournalAudit(CONFIG)
    divergence = audit.extra(RecordedEvents("9-0", "9-0", 9, "r", b"[]"))
    assert (divergence.entry, divergence.what) == ("9-0", "events recorded for no journal entry")


def test_entry_order_with_stream_ids_sorts_numerically() -> None:
    assert entry_order("1700000000000-10") > entry_order("1700000000000-9")
    assert entry_order("999-0") < entry_order("1000-0")
    assert entry_order("5") == (5, 0)
