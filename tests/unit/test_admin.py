"""The operator commands' pure rules: which asset a deposit names."""

from __future__ import annotations

import pytest

from tradewire.admin import AdminError, configured_asset, deposit_command


def test_deposit_names_the_asset_as_the_config_does_matching_letter_case_when_unambiguous() -> None:
    assets = ["BTC", "usdc", "Eth"]
    assert configured_asset("usdc", assets) == "usdc"
    assert configured_asset("USDC", assets) == "usdc"
    assert configured_asset("btc", assets) == "BTC"
    assert configured_asset("ETH", assets) == "Eth"
    command = deposit_command("ann", "usdc", "1")
    assert command == {"type": "deposit", "user": "ann", "asset": "usdc", "amount": "1"}


def test_deposit_of_an_asset_the_config_lacks_or_names_twice_by_case_is_refused_naming_the_assets() -> None:
    with pytest.raises(AdminError, match=r"unknown asset 'DOGE': the exchange's config has BTC, USDT$"):
        configured_asset("DOGE", ["USDT", "BTC"])
    with pytest.raises(AdminError, match=r"'usdt' matches several assets of the config: USDT, Usdt"):
        configured_asset("usdt", ["USDT", "Usdt", "BTC"])
    assert configured_asset("Usdt", ["USDT", "Usdt"]) == "Usdt"  # an exact name is never ambiguous
