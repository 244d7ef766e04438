"""Snapshot round trip at any cut: restore after command k, apply the rest, equals the straight run."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import VECTORS_CONFIG, command_streams
from tests.unit.engine.profile import ENGINE_SETTINGS
from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.engine.snapshot import dump, load

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)
CODEC = EventCodec(CONFIG)


def run(engine: Engine, lines: list[str]) -> list[dict[str, object]]:
    return [CODEC.render(event) for line in lines for event in engine.apply(decode(line))]


@ENGINE_SETTINGS
@given(command_streams(), st.data())
def test_snapshot_restored_after_any_command_then_the_rest_equals_the_straight_run(
    lines: list[str], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(lines)), label="k")
    straight = Engine(CONFIG)
    expected = run(straight, lines)

    head = Engine(CONFIG)
    events = run(head, lines[:cut])
    restored = load(dump(head), CONFIG)
    events += run(restored, lines[cut:])

    assert events == expected
    assert CODEC.state(restored) == CODEC.state(straight)
    assert dump(restored) == dump(straight)
