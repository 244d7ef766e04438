"""The spec's worked examples, compared event by event as JSON values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradewire.engine import ExchangeConfig
from tradewire.replay import replay_lines

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
CASES = sorted(p.name.removesuffix(".commands.jsonl") for p in VECTORS.glob("*.commands.jsonl"))


@pytest.mark.parametrize("case", CASES)
def test_replay_of_worked_example_matches_expected_events(case: str) -> None:
    config = ExchangeConfig.from_dict(json.loads((VECTORS / "config.json").read_text()))
    commands = (VECTORS / f"{case}.commands.jsonl").read_bytes().splitlines()
    expected = [json.loads(line) for line in (VECTORS / f"{case}.expected.jsonl").read_text().splitlines()]
    got = [json.loads(line) for line in replay_lines(config, commands)]
    assert got == expected


def test_there_are_worked_examples() -> None:
    assert len(CASES) >= 5
