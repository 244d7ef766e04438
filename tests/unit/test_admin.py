"""The operator commands' pure rules: which asset a deposit names, which user names are valid."""

from __future__ import annotations

import pytest

from tradewire.admin import AdminError, amount_problem, configured_asset, deposit_command, valid_user_name
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


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("1e3", "invalid amount '1e3': a plain decimal number"),
        ("+5", "invalid amount '+5'"), (" 1", "invalid amount ' 1'"), ("1,5", "invalid amount '1,5'"),
        (".5", "invalid amount '.5'"), ("5.", "invalid amount '5.'"), ("NaN", "invalid amount 'NaN'"),
        ("", "invalid amount ''"), ("\u0661", "invalid amount"),  # an Arabic-Indic 1
        ("1.000000001", "amount 1.000000001 has 9 decimals, more than the precision 8 of USDT"),
        ("9" * 31, "more than 30 significant digits"),
        ("0", "amount 0 must be positive"), ("0.000", "amount 0.000 must be positive"),
    ],
)  # fmt: skip
def test_deposit_amounts_the_engine_would_refuse_are_refused_naming_what_is_wrong(
    amount: str, says: str
) -> None:
    problem = amount_problem(amount, "USDT", 8)
    assert problem is not None and says in problem


@pytest.mark.parametrize("amount", ["1", "250.5", "0.00000001", "1.500000000", "007", "9" * 30])
def test_deposit_amounts_the_engine_takes_pass(amount: str) -> None:
    assert amount_problem(amount, "USDT", 8) is None
