"""Options that a float type lets through although no process can run with them (nan, inf)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _tradewire(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1"}  # never reached: refused before
    return subprocess.run(
        [sys.executable, "-m", "tradewire.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("value", ["inf", "nan", "0.1"])
def test_engine_refuses_a_lease_that_is_not_a_finite_number_of_seconds(value: str) -> None:
    """The engine crashed in the lease's TTL (ValueError for nan, OverflowError for inf) with a traceback."""
    done = _tradewire("engine", "--lease-seconds", value)
    assert done.returncode == 2, done.stderr
    assert f"engine: --lease-seconds must be a number >= 0.5, not {float(value)}" in done.stderr
    assert "Traceback" not in done.stderr


def test_engine_refuses_snapshot_seconds_of_infinity() -> None:
    done = _tradewire("engine", "--snapshot-seconds", "inf")
    assert done.returncode == 2, done.stderr
    assert "--snapshot-seconds > 0" in done.stderr


def test_up_refuses_an_infinite_lease_before_starting_anything(tmp_path: Path) -> None:
    done = _tradewire("up", "--lease-seconds", "inf", "--data-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "up: --lease-seconds must be a number >= 0.5, not inf" in done.stderr
