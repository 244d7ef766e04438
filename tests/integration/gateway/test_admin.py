"""``tradewire admin create-user`` and ``deposit`` against a running exchange, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.fixtures.exchange import Exchange, User
from tests.integration.gateway.conftest import Trader
from tradewire import keys
from tradewire.demo import DEMO_CONFIG


def admin(ex: Exchange, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradewire.cli", "admin", *args],
        capture_output=True, text=True, timeout=60, env=env or ex.env(), check=False,
    )  # fmt: skip


def test_create_user_then_deposit_gives_a_working_key_and_a_balance(module_exchange: Exchange) -> None:
    created = admin(module_exchange, "create-user", "carol")
    assert created.returncode == 0, created.stderr
    line = orjson.loads(created.stdout)
    assert set(line) == {"user", "api_key", "api_secret"} and line["user"] == "carol"
    assert line["api_secret"] not in (module_exchange.directory / "engine.log").read_text()
    deposited = admin(module_exchange, "deposit", "carol", "USDT", "250.5")
    assert deposited.returncode == 0, deposited.stderr
    outcome = orjson.loads(deposited.stdout)
    assert outcome["type"] == "deposit" and outcome["amount"] == "250.5"
    trader = Trader(module_exchange.http_url, User("carol", line["api_key"], line["api_secret"]))
    balances = {b["asset"]: b["free"] for b in trader.get("/api/v3/account").json()["balances"]}
    assert balances["USDT"] == "250.5"


def test_deposit_refused_by_the_engine_or_for_an_unknown_user_exits_non_zero(
    module_exchange: Exchange,
) -> None:
    assert admin(module_exchange, "create-user", "dan").returncode == 0
    refused = admin(module_exchange, "withdraw", "dan", "USDT", "1")  # more than dan has
    assert refused.returncode == 1 and orjson.loads(refused.stdout)["reason"] == "insufficient_balance"
    unknown = admin(module_exchange, "deposit", "nobody", "USDT", "1")
    assert unknown.returncode == 2 and "unknown user" in unknown.stderr


def test_deposit_of_an_amount_the_engine_would_refuse_is_refused_saying_why_before_the_journal(
    module_exchange: Exchange,
) -> None:
    """A malformed amount reached the journal as ``bad_command`` (the alert for writers breaking the
    journal's contract), and the operator read only that word."""
    assert admin(module_exchange, "create-user", "dee").returncode == 0
    client = module_exchange.redis.client()
    try:
        before = client.xlen(keys.COMMANDS)
        for kind, amount, says in (
            ("deposit", "0.000000001", "has 9 decimals, more than the precision 8 of USDT"),
            ("deposit", "1e3", "invalid amount '1e3': a plain decimal number"),
            ("withdraw", "0", "amount 0 must be positive"),
        ):
            refused = admin(module_exchange, kind, "dee", "USDT", amount)
            assert refused.returncode == 2 and refused.stdout == "", refused.stderr
            assert says in refused.stderr and "Traceback" not in refused.stderr
        assert client.xlen(keys.COMMANDS) == before
    finally:
        client.close()


def test_deposit_of_an_asset_the_config_lacks_is_refused_naming_the_assets_before_the_journal(
    module_exchange: Exchange,
) -> None:
    assert admin(module_exchange, "create-user", "dot").returncode == 0
    client = module_exchange.redis.client()
    try:
        before = client.xlen(keys.COMMANDS)
        for kind in ("deposit", "withdraw"):
            refused = admin(module_exchange, kind, "dot", "DOGE", "1")
            assert refused.returncode == 2 and refused.stdout == ""
            assert "unknown asset 'DOGE': the exchange's config has BTC, ETH, USDT" in refused.stderr
        assert client.xlen(keys.COMMANDS) == before
    finally:
        client.close()


def test_deposit_and_withdraw_take_the_asset_in_any_letter_case_when_it_is_unambiguous(
    module_exchange: Exchange,
) -> None:
    line = orjson.loads(admin(module_exchange, "create-user", "uma").stdout)
    deposited = admin(module_exchange, "deposit", "uma", "usdt", "10")
    assert deposited.returncode == 0, deposited.stderr
    assert orjson.loads(deposited.stdout)["asset"] == "USDT"
    withdrawn = admin(module_exchange, "withdraw", "uma", "Usdt", "4")
    assert withdrawn.returncode == 0, withdrawn.stderr
    trader = Trader(module_exchange.http_url, User("uma", line["api_key"], line["api_secret"]))
    balances = {b["asset"]: b["free"] for b in trader.get("/api/v3/account").json()["balances"]}
    assert balances["USDT"] == "6"


@pytest.fixture(scope="module")
def lower_case_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """An exchange whose config names an asset in lower case (beside the demo's)."""
    config = {**DEMO_CONFIG, "assets": {**DEMO_CONFIG["assets"], "usdc": {"precision": 6}}}
    with Exchange(tmp_path_factory.mktemp("lower"), config=config) as ex:
        yield ex


def test_deposit_credits_an_asset_the_config_names_in_lower_case(lower_case_exchange: Exchange) -> None:
    line = orjson.loads(admin(lower_case_exchange, "create-user", "lou").stdout)
    for typed in ("usdc", "USDC"):
        deposited = admin(lower_case_exchange, "deposit", "lou", typed, "2.5")
        assert deposited.returncode == 0, deposited.stderr
        assert orjson.loads(deposited.stdout) | {"cmd": "", "ts": 0} == {
            "cmd": "", "ts": 0, "type": "deposit", "user": "lou", "asset": "usdc", "amount": "2.5",
        }  # fmt: skip
    trader = Trader(lower_case_exchange.http_url, User("lou", line["api_key"], line["api_secret"]))
    balances = {b["asset"]: b["free"] for b in trader.get("/api/v3/account").json()["balances"]}
    assert balances["usdc"] == "5"


def test_create_user_with_data_dir_keeps_the_master_key_there_with_mode_0600(
    module_exchange: Exchange, tmp_path: Path
) -> None:
    env = module_exchange.env()
    env.pop("TRADEWIRE_MASTER_KEY")
    created = admin(module_exchange, "create-user", "erin", "--data-dir", str(tmp_path), env=env)
    assert created.returncode == 0, created.stderr
    key_file = tmp_path / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert orjson.loads(created.stdout)["api_secret"] not in key_file.read_text()


def test_create_key_gives_a_second_key_and_read_only_keys_cannot_trade(module_exchange: Exchange) -> None:
    assert admin(module_exchange, "create-user", "fay").returncode == 0
    unknown = admin(module_exchange, "create-key", "nobody")
    assert unknown.returncode == 2 and "unknown user" in unknown.stderr
    for flags, can_trade in (((), True), (("--read-only",), False)):
        created = admin(module_exchange, "create-key", "fay", *flags)
        assert created.returncode == 0, created.stderr
        line = orjson.loads(created.stdout)
        trader = Trader(module_exchange.http_url, User("fay", line["api_key"], line["api_secret"]))
        assert trader.get("/api/v3/account").json()["canTrade"] is can_trade
        placed = trader.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                              quantity="0.001", price="20000")  # fmt: skip
        # fay has no USDT: a key that may trade reaches the engine, a read-only one is refused before
        assert placed.json()["code"] == (-2010 if can_trade else -2015), placed.text


def test_withdraw_debits_the_available_balance_or_is_refused(module_exchange: Exchange) -> None:
    created = admin(module_exchange, "create-user", "gus")
    line = orjson.loads(created.stdout)
    assert admin(module_exchange, "deposit", "gus", "ETH", "3").returncode == 0
    withdrawn = admin(module_exchange, "withdraw", "gus", "ETH", "1.25")
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert orjson.loads(withdrawn.stdout)["type"] == "withdraw"
    refused = admin(module_exchange, "withdraw", "gus", "ETH", "2")
    assert refused.returncode == 1 and orjson.loads(refused.stdout)["reason"] == "insufficient_balance"
    trader = Trader(module_exchange.http_url, User("gus", line["api_key"], line["api_secret"]))
    balances = {b["asset"]: b["free"] for b in trader.get("/api/v3/account").json()["balances"]}
    assert balances["ETH"] == "1.75"


def test_list_keys_shows_a_users_keys_without_secrets_and_forgets_a_revoked_one(
    module_exchange: Exchange,
) -> None:
    first = orjson.loads(admin(module_exchange, "create-user", "hal").stdout)
    second = orjson.loads(admin(module_exchange, "create-key", "hal", "--read-only").stdout)
    assert admin(module_exchange, "create-user", "ivy").returncode == 0  # someone else's key
    listed = admin(module_exchange, "list-keys", "hal")
    assert listed.returncode == 0, listed.stderr
    lines = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(line["api_key"], line["permissions"]) for line in lines] == [
        (first["api_key"], ["TRADE"]), (second["api_key"], []),
    ]  # fmt: skip
    assert all(line["user"] == "hal" and line["created"] > 0 for line in lines)
    assert first["api_secret"] not in listed.stdout and second["api_secret"] not in listed.stdout
    assert admin(module_exchange, "revoke-key", first["api_key"]).returncode == 0
    after = [
        orjson.loads(line)["api_key"]
        for line in admin(module_exchange, "list-keys", "hal").stdout.splitlines()
    ]
    assert after == [second["api_key"]]
    unknown = admin(module_exchange, "list-keys", "nobody")
    assert unknown.returncode == 2 and "unknown user" in unknown.stderr


def test_create_user_refuses_names_outside_the_rule_saying_it_and_writes_nothing(
    module_exchange: Exchange,
) -> None:
    client = module_exchange.redis.client()
    try:
        for name in ("..", "-x", "FEES", "jos\u00e9", "\u0430lice"):  # "-x" after "--", as typer wants
            refused = admin(module_exchange, "create-user", "--", name)
            assert refused.returncode == 2 and refused.stdout == "", (name, refused.stderr)
            assert f"invalid user name {name!r}: 1-64 ASCII letters, digits" in refused.stderr
            assert "starting with a letter or digit" in refused.stderr
            assert not client.hexists(keys.USERS, name)
        # a user created under the old rule keeps getting keys
        client.hset(keys.USERS, "zo\u00eb", orjson.dumps({"created": 1}))
        created = admin(module_exchange, "create-key", "zo\u00eb")
        assert created.returncode == 0, created.stderr
        assert orjson.loads(created.stdout)["user"] == "zo\u00eb"
    finally:
        client.close()


def test_create_user_refuses_a_name_that_differs_from_a_user_only_in_letter_case(
    module_exchange: Exchange,
) -> None:
    assert admin(module_exchange, "create-user", "CaseTwin").returncode == 0
    refused = admin(module_exchange, "create-user", "casetwin")
    assert refused.returncode == 2 and refused.stdout == "", refused.stderr
    assert "user 'CaseTwin' exists already: names may not differ only in letter case" in refused.stderr
    client = module_exchange.redis.client()
    try:
        assert not client.hexists(keys.USERS, "casetwin")
    finally:
        client.close()


def test_create_user_refuses_the_demo_bots_accounts(module_exchange: Exchange) -> None:
    """``--demo`` deposits into and trades on these journal-only accounts: a key to one would trade
    the bots' funds, and a user created by that name would be funded by them on the next demo."""
    client = module_exchange.redis.client()
    try:
        for name in ("demo-maker", "Demo-Taker"):
            refused = admin(module_exchange, "create-user", name)
            assert refused.returncode == 2 and refused.stdout == "", refused.stderr
            assert f"user name {name!r} is the account of the demo bots" in refused.stderr
            assert not client.hexists(keys.USERS, name)
        assert admin(module_exchange, "create-user", "demo-maker2").returncode == 0
    finally:
        client.close()
