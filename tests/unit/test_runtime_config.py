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


def _refused(tmp_path: Path, raw: dict[str, object]) -> str:
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps(raw))
    with pytest.raises(RuntimeSetupError) as refused:
        load_config(path)
    return str(refused.value)


@pytest.mark.parametrize("name", ["", "B T", "BTC\n", "bt{c}", "BTC:USD", "B\u00e9", "X" * 21])
def test_load_config_refuses_an_asset_name_outside_the_rule(tmp_path: Path, name: str) -> None:
    """The replay spec takes any name; the exchange shows assets in Binance's replies and symbols."""
    raw = copy.deepcopy(VECTORS_CONFIG)
    raw["assets"][name] = {"precision": 2}
    said = _refused(tmp_path, raw)
    assert said == f"config: assets.{name!r}: an asset's name is 1-20 ASCII letters or digits"


@pytest.mark.parametrize(
    "name", ["", "{BTC}-USDT", "BTC}", "BTC USDT", "BTC/USDT", "-BTC", "BTC:USDT", "B" * 41]
)
def test_load_config_refuses_a_market_name_that_would_break_keys_or_stream_paths(
    tmp_path: Path, name: str
) -> None:
    raw = copy.deepcopy(VECTORS_CONFIG)
    market = raw["markets"].pop("BTC-USDT")
    raw["markets"][name] = market
    said = _refused(tmp_path, raw)
    assert said.startswith(f"config: markets.{name!r}: a market's name is 1-40 ASCII letters, digits")


def test_load_config_refuses_two_markets_with_one_stream_name(tmp_path: Path) -> None:
    raw = copy.deepcopy(VECTORS_CONFIG)
    raw["assets"]["SOL"] = {"precision": 4}
    raw["markets"]["btcusdt"] = {**raw["markets"]["BTC-USDT"], "base": "SOL"}
    said = _refused(tmp_path, raw)
    assert "its stream name btcusdt (the name without '-', in lower case) is also markets.BTC-USDT's" in said
