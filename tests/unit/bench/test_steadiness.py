"""bench/steadiness.py's window finding on synthetic slice timings: no probe is run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[3] / "bench"))

import steadiness

SLICE = 0.0002


def slices(durations: list[float]) -> list[tuple[float, float]]:
    """Back-to-back slices of the given durations, starting at 0."""
    out, at = [], 0.0
    for duration in durations:
        out.append((at, duration))
        at += duration
    return out


def test_a_steady_run_has_no_window_and_reports_no_slowdown() -> None:
    report = steadiness.report(slices([SLICE] * 5000))
    assert report.windows == []
    assert report.slowed_share == 0
    assert report.median_slowdown == 1.0
    assert report.median_slice_us == pytest.approx(200.0)


def test_a_stretch_four_times_slower_is_one_window_with_its_length_and_slowdown() -> None:
    durations = [SLICE] * 1000 + [4 * SLICE] * 50 + [SLICE] * 1000  # 40 ms at x4
    (window,) = steadiness.slow_windows(slices(durations), SLICE)
    assert window.start == pytest.approx(1000 * SLICE)
    assert window.length == pytest.approx(50 * 4 * SLICE)
    assert window.slowdown == pytest.approx(4.0)
    report = steadiness.report(slices(durations))
    assert report.longest_window_ms == pytest.approx(40.0)
    assert report.slowed_share == pytest.approx(0.04 / (2000 * SLICE + 0.04), abs=1e-4)


def test_slowed_slices_close_together_join_and_far_apart_do_not() -> None:
    slow = [4 * SLICE] * 10  # 8 ms
    near = [SLICE] * 10  # 2 ms apart: joined
    far = [SLICE] * 100  # 20 ms apart: separate
    windows = steadiness.slow_windows(slices(slow + near + slow + far + slow), SLICE)
    assert [round(w.length * 1e3, 1) for w in windows] == [18.0, 8.0]


def test_a_lone_preemption_shorter_than_the_minimum_is_not_a_window() -> None:
    durations = [SLICE] * 100 + [0.002] + [SLICE] * 100  # one 2 ms slice: under MIN_WINDOW_S
    assert steadiness.slow_windows(slices(durations), SLICE) == []
    assert len(steadiness.slow_windows(slices(durations), SLICE, min_length=0.001)) == 1


def test_the_summary_takes_the_worst_core() -> None:
    steady = steadiness.report(slices([SLICE] * 2000))
    shaky = steadiness.report(slices([SLICE] * 1000 + [3 * SLICE] * 100 + [SLICE] * 1000))
    figures = steadiness.summary([steady, shaky])
    assert figures["steadiness_longest_window_ms"] == pytest.approx(60.0)
    assert figures["steadiness_median_slowdown"] == pytest.approx(3.0)
    assert figures["steadiness_windows_per_s"] == shaky.windows_per_s > 0
