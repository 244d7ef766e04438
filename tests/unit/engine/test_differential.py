"""The engine against the slow reference model written separately from the spec: same events, same state."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from hypothesis import given

from tests.reference_model import reference_replay
from tests.strategies import VECTORS_CONFIG, command_streams, random_stream
from tests.unit.engine.profile import ENGINE_SETTINGS
from tradewire.engine import ExchangeConfig
from tradewire.replay import replay_lines

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)


def first_difference(expected: Sequence[object], got: Sequence[object]) -> str:
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want != have:
            return f"line {index}: reference {want} != engine {have}"
    return f"{len(expected)} reference lines != {len(got)} engine lines"


def assert_same_as_reference(lines: list[str]) -> None:
    expected = reference_replay(VECTORS_CONFIG, lines)
    got = [json.loads(line) for line in replay_lines(CONFIG, lines)]
    assert got == expected, first_difference(expected, got)


@ENGINE_SETTINGS
@given(command_streams())
def test_engine_with_any_command_stream_matches_the_reference_model(lines: list[str]) -> None:
    assert_same_as_reference(lines)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_engine_with_a_long_seeded_stream_matches_the_reference_model(seed: int) -> None:
    assert_same_as_reference(random_stream(seed, length=600))


def test_engine_with_a_worked_example_matches_the_reference_model() -> None:
    """The reference model is itself held to the spec's examples, so both cannot share a misreading."""
    from tests.unit.engine.test_replay_examples import CASES, VECTORS

    for case in CASES:
        lines = (VECTORS / f"{case}.commands.jsonl").read_bytes().splitlines()
        expected = [
            json.loads(line) for line in (VECTORS / f"{case}.expected.jsonl").read_text().splitlines()
        ]
        assert reference_replay(VECTORS_CONFIG, lines) == expected, case
