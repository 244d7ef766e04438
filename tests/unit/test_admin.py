"""The operator commands' pure rules: which asset a deposit names, which user names are valid."""

from __future__ import annotations

import pytest

from tradewire.admin import AdminError, configured_asset, deposit_command, valid_user_name
from tradewire.bots import MAKER_USER, TAKER_USER


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


@pytest.mark.parametrize(
    "name", ["a", "Alice", "bob-2", "c_d.e", "0day", "x" * 64, "fee", "fees2", MAKER_USER, TAKER_USER]
)
def test_user_names_of_ascii_letters_digits_dash_underscore_dot_are_valid(name: str) -> None:
    assert valid_user_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "", "x" * 65, ".", "..", ".hidden", "-x", "--data-dir", "_x",  # empty, too long, dots, options
        "fees", "FEES", "Fees",  # the engine's fee account, in any letter case
        "x²", "josé", "\u0430lice", "ab\u0663",  # non-ASCII letters and digits (Cyrillic a, Arabic 3)
        "a b", "a:b", "a/b", "a\\nb", "a\u200bb", "a\n",  # separators, key delimiters, invisible, newline
    ],
)  # fmt: skip
def test_user_names_outside_the_rule_are_invalid(name: str) -> None:
    assert not valid_user_name(name)
