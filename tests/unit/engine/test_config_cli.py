"""``tradewire replay`` as a process: a config that breaks the spec's rules exits 2 naming the field.

Also: the output does not depend on the process's hash seed (set and dict orders), since the spec asks
for byte-identical output for the same config and commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.strategies import VECTORS_CONFIG, random_stream


def tradewire_command() -> list[str]:
    script = Path(sys.executable).with_name("tradewire")
    if script.exists():
        return [str(script)]
    found = shutil.which("tradewire")
    assert found, "the tradewire command should be on PATH after the install"
    return [found]


def run_replay(config: Path, stdin: bytes = b"", hash_seed: str = "0") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [*tradewire_command(), "replay", "--config", str(config)],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def broken(path: list[str], value: Any) -> dict[str, Any]:
    """The worked-example config with the value at ``path`` replaced (``...`` deletes it)."""
    raw: dict[str, Any] = json.loads(json.dumps(VECTORS_CONFIG))
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


BAD_CONFIGS = [
    (
        "tick finer than the quote",
        ["markets", "BTC-USDT", "tick_size"],
        "0.0000001",
        "markets.BTC-USDT.tick_size",
    ),
    (
        "lot finer than the base",
        ["markets", "BTC-USDT", "lot_size"],
        "0.000000001",
        "markets.BTC-USDT.lot_size",
    ),
    (
        "tick plus lot decimals over the quote",
        ["markets", "BTC-USDT", "lot_size"],
        "0.00001",
        "markets.BTC-USDT.lot_size",
    ),
    ("tick of zero", ["markets", "BTC-USDT", "tick_size"], "0", "markets.BTC-USDT.tick_size"),
    ("tick as a number", ["markets", "BTC-USDT", "tick_size"], 0.01, "markets.BTC-USDT.tick_size"),
    ("unknown base asset", ["markets", "BTC-USDT", "base"], "DOGE", "markets.BTC-USDT.base"),
    ("negative precision", ["assets", "USDT", "precision"], -1, "assets.USDT.precision"),
    ("missing markets", ["markets"], ..., "markets"),
    ("precision in superscript digits", ["assets", "USDT", "precision"], "\u00b2", "assets.USDT.precision"),
    ("precision in Arabic-Indic digits", ["assets", "USDT", "precision"], "\u0668", "assets.USDT.precision"),
    ("tick of 31 digits", ["markets", "BTC-USDT", "tick_size"], "1" * 31, "markets.BTC-USDT.tick_size"),
    ("min notional of 31 digits", ["markets", "BTC-USDT", "min_notional"], "1" * 31, "min_notional"),
]


@pytest.mark.parametrize(
    ("path", "value", "field"), [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS]
)
def test_replay_with_a_config_that_breaks_a_rule_exits_2_naming_the_field(
    tmp_path: Path, path: list[str], value: Any, field: str
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(broken(path, value)))
    result = run_replay(config, b'{"type": "deposit", "user": "a", "asset": "USDT", "amount": "1"}\n')
    assert result.returncode == 2
    assert field in result.stderr.decode()
    assert result.stdout == b""


def test_replay_with_a_config_that_is_not_json_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text("{assets:")
    result = run_replay(config)
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr.decode()


def test_replay_with_a_config_nested_past_what_is_read_exits_2_without_a_traceback(tmp_path: Path) -> None:
    """orjson reads 1,024 levels; the parser that finds repeated keys, fewer."""
    config = tmp_path / "deep.json"
    config.write_text(json.dumps(VECTORS_CONFIG)[:-1] + ', "x": ' + "[" * 1_000 + "]" * 1_000 + "}")
    result = run_replay(config)
    assert result.returncode == 2
    assert "nested deeper than a config is read" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_replay_with_a_precision_past_64_bits_says_its_range(tmp_path: Path) -> None:
    config = tmp_path / "huge.json"
    huge = '"precision": 1' + "0" * 30
    config.write_text(json.dumps(VECTORS_CONFIG).replace('"precision": 8', huge, 1))
    result = run_replay(config)
    assert result.returncode == 2
    assert "must be between 0 and 30, got 1000000000000000019884624838656" in result.stderr.decode()


def test_replay_with_a_config_key_given_twice_exits_2_naming_it(tmp_path: Path) -> None:
    """JSON parsers keep the last of two equal keys: a market defined twice would silently be its
    second definition."""
    config = tmp_path / "twice.json"
    text = json.dumps(VECTORS_CONFIG)
    market = json.dumps(VECTORS_CONFIG["markets"]["BTC-USDT"] | {"taker_fee": "0.5"})
    config.write_text(text.replace('"markets": {', '"markets": {"BTC-USDT": ' + market + ", ", 1))
    result = run_replay(config, b'{"type": "deposit", "user": "a", "asset": "USDT", "amount": "1"}\n')
    assert result.returncode == 2, result.stderr
    assert "'BTC-USDT' appears twice" in result.stderr.decode()
    assert result.stdout == b""


def test_replay_warns_of_config_fields_no_rule_reads_and_still_replays(tmp_path: Path) -> None:
    """``takerfee`` for ``taker_fee`` would silently be a fee of 0: the field is named on stderr."""
    config = tmp_path / "typo.json"
    raw = broken(["markets", "BTC-USDT", "takerfee"], "0.002")
    raw["note"] = "staging"
    config.write_text(json.dumps(raw))
    result = run_replay(config, b'{"type": "deposit", "user": "a", "asset": "USDT", "amount": "1"}\n')
    assert result.returncode == 0
    stderr = result.stderr.decode()
    assert "markets.BTC-USDT.takerfee is not a config field" in stderr and "note is not" in stderr
    assert result.stdout.count(b"\n") == 2


def test_replay_process_with_different_hash_seeds_writes_byte_identical_output(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(VECTORS_CONFIG))
    stdin = "\n".join(random_stream(seed=21, length=1500)).encode() + b"\n"
    first, second = run_replay(config, stdin, "1"), run_replay(config, stdin, "2")
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert first.stdout.count(b"\n") > 1500 and first.stdout.splitlines()[-1].startswith(b'{"type":"state"')
