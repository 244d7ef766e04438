"""promtool validates the alert rules and the example config, and runs the rules' unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def _binary() -> str:
    """promtool, which the test command installs (Debian's prometheus package); missing is a failure."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (Debian: apt-get install prometheus, or run ./scripts/test)")
    return binary


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = _binary()
    return subprocess.run(
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules_with_shipped_alerts_succeeds() -> None:
    done = _promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 19 rules found" in done.stdout


def test_promtool_test_rules_with_shipped_tests_fire_and_stay_quiet_as_written() -> None:
    done = _promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_check_config_with_example_scrape_config_succeeds() -> None:
    done = _promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_rules_with_wrong_expectation_fails(tmp_path: Path) -> None:
    wrong = (
        (PROMETHEUS / "alerts_test.yml")
        .read_text()
        .replace("exp_labels: {severity: critical}", "exp_labels: {severity: page}", 1)
    )
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "alerts_test.yml").write_text(wrong)
    binary = _binary()
    done = subprocess.run(
        [binary, "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "TradewireEngineDown" in done.stdout + done.stderr
