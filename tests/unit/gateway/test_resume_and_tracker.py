"""Resuming after a reconnect, and judging channel offsets: pure decisions."""

from __future__ import annotations

import orjson
import pytest

from tradewire.bus.subscribe import ChannelTracker, Publication, Verdict, split_publication
from tradewire.gateway.resume import resume_plan


def _history(first_u: int, count: int) -> list[tuple[int, Publication]]:
    out = []
    for i in range(count):
        u = first_u + i
        payload = orjson.dumps({"e": "depthUpdate", "U": u, "u": u, "pu": u - 1})
        out.append((100 + i, Publication(100 + i, b"ep", payload)))
    return out


def test_resume_plan_with_recent_id_sends_exactly_the_later_diffs() -> None:
    plan = resume_plan(_history(10, 5), since=12, key="u")
    assert [orjson.loads(m)["u"] for m in plan.messages] == [13, 14]
    assert plan.last_offset == 104 and not plan.resnapshot


def test_resume_plan_with_up_to_date_id_sends_nothing() -> None:
    plan = resume_plan(_history(10, 5), since=14, key="u")
    assert plan.messages == [] and not plan.resnapshot


def test_resume_plan_with_id_older_than_history_asks_for_resnapshot() -> None:
    plan = resume_plan(_history(10, 5), since=8, key="u")
    assert plan.resnapshot and plan.too_old
    assert not resume_plan(_history(10, 5), since=9, key="u").resnapshot


def test_resume_plan_with_unknown_future_id_or_empty_history_asks_for_resnapshot() -> None:
    assert resume_plan(_history(10, 5), since=99, key="u").resnapshot
    assert resume_plan([], since=1, key="u").resnapshot


def test_resume_plan_for_trades_uses_trade_ids() -> None:
    history = [(i, Publication(i, b"e", orjson.dumps({"e": "trade", "t": i}))) for i in range(5, 9)]
    plan = resume_plan(history, since=6, key="t")
    assert [orjson.loads(m)["t"] for m in plan.messages] == [7, 8]
    assert resume_plan(history, since=3, key="t").too_old


@pytest.mark.parametrize(
    ("offset", "epoch", "verdict"),
    [(6, b"a", Verdict.DELIVER), (5, b"a", Verdict.DUPLICATE), (3, b"a", Verdict.DUPLICATE),
     (8, b"a", Verdict.GAP), (6, b"b", Verdict.NEW_EPOCH), (1, b"b", Verdict.NEW_EPOCH)],
)  # fmt: skip
def test_tracker_at_offset_five_judges_the_next_message(offset: int, epoch: bytes, verdict: Verdict) -> None:
    assert ChannelTracker(5, b"a").judge(offset, epoch) is verdict


def test_tracker_before_any_message_delivers_the_first() -> None:
    assert ChannelTracker().judge(42, b"x") is Verdict.DELIVER


def test_split_publication_with_payload_containing_spaces_keeps_it_whole() -> None:
    assert split_publication(b'12 ab12 {"a": 1}') == Publication(12, b"ab12", b'{"a": 1}')
    for bad in (b"x ab {}", b"12", b"12 ab", b" ab {}"):
        with pytest.raises(ValueError):
            split_publication(bad)
