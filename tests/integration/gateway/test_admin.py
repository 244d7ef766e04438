"""``tradewire admin create-user`` and ``deposit`` against a running exchange, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.fixtures.exchange import Exchange, User
from tests.integration.gateway.conftest import Trader


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
    refused = admin(module_exchange, "deposit", "dan", "DOGE", "1")
    assert refused.returncode == 1 and orjson.loads(refused.stdout)["reason"] == "unknown_asset"
    unknown = admin(module_exchange, "deposit", "nobody", "USDT", "1")
    assert unknown.returncode == 2 and "unknown user" in unknown.stderr


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
