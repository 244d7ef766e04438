"""The config's pure helpers: where two configs differ, which fields no rule reads."""

from __future__ import annotations

import copy

from tests.strategies import VECTORS_CONFIG
from tradewire.engine.config import first_difference, unknown_fields


def test_first_difference_names_the_path_of_a_changed_added_or_removed_field() -> None:
    before = copy.deepcopy(VECTORS_CONFIG)
    assert first_difference(before, copy.deepcopy(VECTORS_CONFIG)) is None
    after = copy.deepcopy(VECTORS_CONFIG)
    after["markets"]["BTC-USDT"]["taker_fee"] = "0.003"
    assert first_difference(before, after) == "config.markets.BTC-USDT.taker_fee: '0.002' before, '0.003' now"
    after = copy.deepcopy(VECTORS_CONFIG)
    after["assets"]["DOGE"] = {"precision": 2}
    assert first_difference(before, after) == "config.assets.DOGE: absent before, present now"
    after = copy.deepcopy(VECTORS_CONFIG)
    del after["markets"]["BTC-USDT"]["min_notional"]
    assert (
        first_difference(before, after) == "config.markets.BTC-USDT.min_notional: present before, absent now"
    )
    after = copy.deepcopy(VECTORS_CONFIG)
    after["assets"]["BTC"]["precision"] = str(before["assets"]["BTC"]["precision"])
    assert first_difference(before, after) == "config.assets.BTC.precision: 8 before, '8' now"


def test_unknown_fields_lists_every_field_no_rule_reads() -> None:
    raw = copy.deepcopy(VECTORS_CONFIG)
    assert unknown_fields(raw) == []
    raw["version"] = 2
    raw["assets"]["BTC"]["precison"] = 8
    raw["markets"]["BTC-USDT"]["takerfee"] = "0.002"
    assert unknown_fields(raw) == ["version", "assets.BTC.precison", "markets.BTC-USDT.takerfee"]
