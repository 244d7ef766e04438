"""The config the long-running processes take: the replay spec's rules and the exchange's own."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from tests.strategies import VECTORS_CONFIG
from tradewire.runtime import RuntimeSetupError, load_config


def test_load_config_refuses_two_markets_with_one_binance_symbol(tmp_path: Path) -> None:
    """'BTC-USDT' and 'btcusdt' are both valid for the replay spec, but Binance clients name a market
    by its symbol, and each account's fills of a market are a stream keyed by it (two markets
    numbering trades from 1 in one stream lost fills inside the engine's transaction: found by a
    second reading)."""
    raw = copy.deepcopy(VECTORS_CONFIG)
    raw["markets"]["btcusdt"] = raw["markets"]["BTC-USDT"]
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps(raw))
    with pytest.raises(RuntimeSetupError, match=r"markets\.btcusdt: its Binance symbol BTCUSDT is also"):
        load_config(path)
    path.write_bytes(orjson.dumps(VECTORS_CONFIG))
    config, _ = load_config(path)
    assert set(config.markets) == set(VECTORS_CONFIG["markets"])
