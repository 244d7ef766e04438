"""``tradewire audit verify`` against a real Redis holding a recorded exchange."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import RedisServer
from tests.integration.audit.recorder import (
    CONFIG,
    entry_id,
    group_events,
    record,
    remove,
    rewrite,
    stream,
    workload,
)
from tradewire import keys
from tradewire.cli import app


def _verify(server: RedisServer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["audit", "verify", *args], env={"REDIS_URL": server.url})
    return result.exit_code, result.stdout, result.stderr


def _first_trade_entry(client: redis.Redis) -> str:
    for eid, fields in stream(client, keys.EVENTS):
        if any(event["type"] == "trade" for event in orjson.loads(fields[b"e"])):
            return eid
    raise AssertionError("the workload made no trade")


@pytest.fixture
def recorded(redis_server: RedisServer, redis_client: redis.Redis) -> redis.Redis:
    record(redis_client, workload(seed=7, n=300))
    return redis_client


def test_verify_with_faithful_record_exits_0_with_summary_and_stable_digest(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    status, out, _ = _verify(redis_server)
    assert status == 0, out
    assert f"verified: 312 journal entries, up to {entry_id(311)}" in out
    assert "pending: 0 entries" in out
    trades = int(re.search(r"trades: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert trades > 10
    assert "balances: 5 users match the replay" in out  # four users and the fee account
    digest = re.search(r"digest: sha256:([0-9a-f]{64})", out)
    assert digest is not None
    assert _verify(redis_server)[1] == out


def test_verify_with_tampered_trade_price_exits_1_naming_the_entry(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    target = _first_trade_entry(recorded)

    def raise_price(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
        events = orjson.loads(fields[b"e"])
        for event in events:
            if event["type"] == "trade":
                event["price"] = "1"
        return {**fields, b"e": orjson.dumps(events)}

    rewrite(recorded, keys.EVENTS, target, raise_price)
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert f"divergence at {target}: events differ" in out
    assert '"price":"1"' in out.split("recorded:")[1]
    assert '"price":"1"' not in out.split("recorded:")[0]


def test_verify_with_tampered_command_exits_1_naming_the_entry(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    target = entry_id(1)  # ann's BTC deposit of 10

    def bigger(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
        return {**fields, b"c": fields[b"c"].replace(b'"10"', b'"11"')}

    rewrite(recorded, keys.COMMANDS, target, bigger)
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert f"divergence at {target}: events differ" in out
    assert '"amount":"11"' in out
    assert "entries verified before it: 1" in out


def test_verify_with_missing_events_entry_exits_1_naming_the_command(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    remove(recorded, keys.EVENTS, entry_id(40))
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert f"divergence at {entry_id(40)}: the events entry answers another command" in out


def test_verify_with_changed_request_id_exits_1(redis_server: RedisServer, recorded: redis.Redis) -> None:
    rewrite(recorded, keys.EVENTS, entry_id(5), lambda f: {**f, b"rid": b"f" * 32})
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert f"divergence at {entry_id(5)}: the events entry's exchange time or request id differs" in out


def test_verify_with_tampered_balance_exits_1_naming_user_and_asset(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    stored = orjson.loads(recorded.hget(keys.balances("cat"), "ETH"))  # type: ignore[arg-type]
    recorded.hset(keys.balances("cat"), "ETH", orjson.dumps({**stored, "free": "1000000"}))
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert "divergence at balances:cat: ETH: balance differs" in out
    assert '"free":"1000000"' in out


def test_verify_with_balance_for_unknown_user_exits_1(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    recorded.hset(keys.balances("mallory"), "BTC", orjson.dumps({"free": "5", "locked": "0"}))
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert "divergence at balances:mallory: BTC: balance differs" in out


def test_verify_with_unapplied_tail_checks_up_to_applied_and_counts_pending(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    record(redis_client, workload(seed=3, n=50), apply=40)
    status, out, _ = _verify(redis_server)
    assert status == 0, out
    assert f"verified: 40 journal entries, up to {entry_id(39)}" in out
    assert "pending: 22 entries" in out


def test_verify_with_empty_journal_exits_0(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    redis_client.set(keys.CONFIG, orjson.dumps(CONFIG))
    status, out, _ = _verify(redis_server)
    assert status == 0, out
    assert "verified: 0 journal entries" in out


def test_verify_without_config_exits_2_saying_so(redis_server: RedisServer) -> None:
    status, _, err = _verify(redis_server)
    assert status == 2
    assert "no exchange config in Redis (tw:config); pass --config" in err


def test_verify_with_config_file_uses_it(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    record(redis_client, workload(seed=5, n=20))
    redis_client.delete(keys.CONFIG)
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps(CONFIG))
    status, out, _ = _verify(redis_server, "--config", str(path))
    assert status == 0, out


def test_verify_with_unreachable_redis_exits_2() -> None:
    result = CliRunner().invoke(app, ["audit", "verify"], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 2
    assert "cannot reach Redis" in result.stderr


def test_verify_of_the_grouped_layout_gives_the_digest_of_one_entry_per_command(
    redis_server: RedisServer, recorded: redis.Redis
) -> None:
    """The engine's layout: a hundred outcomes per events entry, under the last command's id."""
    faithful = _verify(redis_server)
    group_events(recorded)
    assert recorded.xlen(keys.EVENTS) == 4
    assert faithful[0] == 0 and _verify(redis_server) == faithful


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("damaged", "the events entry's exchange time or request id differs"),
        ("misfiled", "the events entry answers another command"),
    ],
)
def test_verify_of_the_grouped_layout_names_a_damaged_or_misfiled_outcome(
    redis_server: RedisServer, recorded: redis.Redis, how: str, said: str
) -> None:
    """A value that is no reply message, or the reply of the command before filed under a command's
    id: a divergence at that command, never a crash."""
    target = entry_id(150).encode()
    before: list[bytes] = []

    def tamper(cmd: bytes, value: bytes) -> bytes:
        before.append(value)
        if cmd != target:
            return value
        return value[:-7] if how == "damaged" else before[-2]

    group_events(recorded, tamper)
    status, out, _ = _verify(redis_server)
    assert status == 1
    assert f"divergence at {target.decode()}: {said}" in out
