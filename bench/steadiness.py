"""How steady the machine's cores are: the probe to read a latency bench's p99 against.

Why: on a shared virtual machine a core does not always run at one speed. On the machine these
benches were written on, a plain loop of Python arithmetic, alone on an idle machine, runs three to
four times slower for 30-90 ms about every 1.5 s (another tenant of the host on the same physical
cores, or the host itself; the guest sees no steal time and its clock never stops). Every process of
the exchange slows down together in those windows, the queues between them fill, and the updates in
flight come out tens of milliseconds late: a p99 over a run of seconds is then the length of those
windows, whatever the exchange does. The latency benches run this probe first and print its figures
next to their own, so that a p99 can be read against the machine it was measured on.

Method: one process per core runs the same slice of pure-Python work (about 0.2 ms) over and over
for ``--seconds``, timing each slice with ``perf_counter``. A slice that takes more than
``FACTOR`` times the median ran slowed (preempted, or on a slower core). Slowed slices less than
``JOIN_S`` apart form one *slow window*; windows shorter than ``MIN_WINDOW_S`` are left out (a
single preemption by the kernel's own work). Per core: the median slice, the share of time spent in
slow windows, windows per second, the longest and the median slowdown inside windows.

The probe measures what a process can get of the cores, so other work on the machine shows as slow
windows too (a test suite running beside it: slowed most of the time, x10 and more); the host's own
windows are what it shows on a machine that is otherwise idle, as before a bench.

    .venv/bin/python bench/steadiness.py --seconds 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson

FACTOR = 2.0
"""A slice slower than this many times the median ran slowed."""
JOIN_S = 0.005
"""Slowed slices less than this apart belong to one window."""
MIN_WINDOW_S = 0.003
"""Windows shorter than this are not counted."""
SLICE_ITERATIONS = 3000
"""Loop turns per slice: about 0.2 ms of CPython on a 2020s core."""


@dataclass(frozen=True)
class Window:
    """A stretch of slowed slices: when it started, how long it lasted, how much slower it ran."""

    start: float
    length: float
    slowdown: float


@dataclass(frozen=True)
class CoreReport:
    slices: int
    median_slice_us: float
    slowed_share: float
    """Share of the probe's time inside slow windows."""
    windows_per_s: float
    longest_window_ms: float
    median_slowdown: float
    """Median over the windows of (time of its slices / what they take at the median)."""
    windows: list[Window]


def slow_windows(
    slices: list[tuple[float, float]],
    median: float,
    factor: float = FACTOR,
    join: float = JOIN_S,
    min_length: float = MIN_WINDOW_S,
) -> list[Window]:
    """The slow windows of ``slices`` (``(start, duration)`` in seconds, in time order)."""
    windows: list[Window] = []
    start = end = spent = 0.0
    count = 0

    def close() -> None:
        if count and end - start >= min_length:
            windows.append(Window(start, end - start, spent / (count * median)))

    for at, duration in slices:
        if duration <= factor * median:
            continue
        if count and at - end < join:
            end, spent, count = at + duration, spent + duration, count + 1
            continue
        close()
        start, end, spent, count = at, at + duration, duration, 1
    close()
    return windows


def report(slices: list[tuple[float, float]]) -> CoreReport:
    """The figures of one core's slices (see the module docstring)."""
    median = statistics.median(duration for _, duration in slices)
    windows = slow_windows(slices, median)
    elapsed = slices[-1][0] + slices[-1][1] - slices[0][0]
    return CoreReport(
        slices=len(slices),
        median_slice_us=round(median * 1e6, 1),
        slowed_share=round(sum(w.length for w in windows) / elapsed, 4),
        windows_per_s=round(len(windows) / elapsed, 2),
        longest_window_ms=round(max((w.length for w in windows), default=0.0) * 1e3, 1),
        median_slowdown=round(statistics.median(w.slowdown for w in windows), 2) if windows else 1.0,
        windows=windows,
    )


def _slice() -> int:
    total = 0
    for i in range(SLICE_ITERATIONS):
        total += i * i
    return total


def time_slices(seconds: float) -> list[tuple[float, float]]:
    """Run slices for ``seconds``: ``(start, duration)`` of each."""
    clock = time.perf_counter
    out: list[tuple[float, float]] = []
    end = clock() + seconds
    while (at := clock()) < end:
        _slice()
        out.append((at, clock() - at))
    return out


def _worker(seconds: float, out: Any) -> None:
    out.put(time_slices(seconds))


def probe(seconds: float, processes: int | None = None) -> list[CoreReport]:
    """Time slices on every core at once (one process each) and report each."""
    count = processes or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_worker, args=(seconds, queue), daemon=True) for _ in range(count)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for worker in workers:
        worker.join(10)
    return [report(slices) for slices in results]


def summary(reports: list[CoreReport]) -> dict[str, float]:
    """The probe in one line's figures: the worst core's share, rate and longest window."""
    return {
        "steadiness_slowed_share": max(r.slowed_share for r in reports),
        "steadiness_windows_per_s": max(r.windows_per_s for r in reports),
        "steadiness_longest_window_ms": max(r.longest_window_ms for r in reports),
        "steadiness_median_slowdown": max(r.median_slowdown for r in reports),
    }


def describe(reports: list[CoreReport]) -> str:
    return describe_summary(summary(reports), len(reports))


def describe_summary(figures: dict[str, float], cores: int | None = None) -> str:
    """:func:`summary`'s figures in one sentence."""
    probed = f" ({cores} cores probed)" if cores else ""
    return (
        f"machine steadiness{probed}: slowed {figures['steadiness_slowed_share']:.1%} "
        f"of the time, {figures['steadiness_windows_per_s']:.2f} slow windows/s, longest "
        f"{figures['steadiness_longest_window_ms']:.0f} ms, x{figures['steadiness_median_slowdown']:.1f} "
        "slower in them (bench/steadiness.py)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=0, help="probing processes (0: one per core)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args()
    reports = probe(args.seconds, args.processes or None)
    if args.json:
        text = orjson.dumps([asdict(r) for r in reports], option=orjson.OPT_INDENT_2)
        sys.stdout.buffer.write(text + b"\n")
        return
    for index, r in enumerate(reports):
        print(
            f"core probe {index}: {r.slices} slices, median {r.median_slice_us} us; slowed "
            f"{r.slowed_share:.1%} of the time in {len(r.windows)} windows ({r.windows_per_s}/s), "
            f"longest {r.longest_window_ms} ms, x{r.median_slowdown} slower in them"
        )
        for w in r.windows[:12]:
            print(f"    at {w.start:.3f} s: {w.length * 1e3:5.1f} ms, x{w.slowdown:.1f}")
    print(describe(reports))


if __name__ == "__main__":
    main()
