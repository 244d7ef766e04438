"""Plots of the benchmarks' results: latency percentiles per scenario, and throughput against load.

    .venv/bin/python bench/plot.py bench/results/short-20261126T170000.json

Reads one or more JSON files and writes PNGs to ``docs/benchmarks/`` (``--out`` to change it):

* ``engine-latency.png``: per-command latency of the pure engine (``bench/engine.py``);
* ``pipeline-latency.png``: journal-to-publish latency at each measured rate (``bench/pipeline.py
  --only latency``), and ``pipeline-latency-vs-rate.png`` when more than one rate was measured;
* ``gateway-latency.png``: order-to-update latency at the WebSocket clients (``bench/gateway.py latency``);
* ``gateway-fanout.png``: messages per second delivered against the rate offered, step by step, as
  ``bench/gateway.py fanout`` raises the publication rate.

A file is either the record ``bench/run_all.py`` writes (every bench in one file, ``"kind":
"tradewire-bench"``) or ``bench/engine.py``'s own result file, recognised by its shape. The loading and
the series are pure functions of the JSON; only :func:`draw_all` touches matplotlib (Agg backend).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks"
KIND = "tradewire-bench"
CAVEAT = "Short runs on a shared machine; the reference figures are in docs/benchmarks/*.md."
PERCENTILE_KEY = re.compile(r"^p(\d+(?:\.\d+)?)(?:_(ms|us))?$")
# The floors of docs/benchmarks/*.md, drawn on the plots: (percentile, latency) points, or a rate.
ENGINE_FLOORS = ((99.0, 20.0),)  # µs per command
PIPELINE_FLOORS = ((99.0, 5.0),)  # ms, at 10,000 commands/s
PIPELINE_FLOOR_RATE = 10_000.0
GATEWAY_FLOORS = ((50.0, 2.0), (99.0, 10.0))  # ms, order to update
FANOUT_FLOORS = {  # msg/s at 5,000 connections
    False: (100_000.0, "floor, one message per frame (5,000 connections)"),
    True: (500_000.0, "floor, batched frames (5,000 connections)"),
}


@dataclass(frozen=True)
class Percentiles:
    """One latency distribution as the bench reported it: percentile -> latency, plus the maximum."""

    label: str
    unit: str  # "µs" or "ms"
    points: tuple[tuple[float, float], ...]  # (percentile in (0, 100), latency), ascending
    maximum: float | None = None


@dataclass(frozen=True)
class LoadPoint:
    offered: float
    delivered: float
    complete: bool  # every message reached every subscriber in time


@dataclass
class Results:
    """What the plots need, gathered from every file given."""

    machine: str = ""
    when: str = ""  # the record's start time, as run_all.py wrote it
    engine: list[Percentiles] = field(default_factory=list)
    pipeline: list[Percentiles] = field(default_factory=list)
    pipeline_rates: list[tuple[float, float, float]] = field(default_factory=list)  # rate, p50, p99 (ms)
    gateway: list[Percentiles] = field(default_factory=list)
    fanout: dict[str, list[LoadPoint]] = field(default_factory=dict)  # series label -> steps
    fanout_kinds: set[bool] = field(default_factory=set)  # batched or not, of the series above


# -- reading ---------------------------------------------------------------------------------------------


def percentiles(label: str, figures: dict[str, Any], unit: str, prefix: str = "") -> Percentiles | None:
    """The ``p<q>`` keys of ``figures`` (``p50``, ``p99.9``, ``p99_ms``, ``depth_p50_ms`` with a prefix).

    Returns None when there is no percentile at all.
    """
    points: list[tuple[float, float]] = []
    maximum: float | None = None
    for key, value in figures.items():
        if not key.startswith(prefix) or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        name = key[len(prefix) :]
        if name in ("max", "max_ms", "max_us"):
            maximum = float(value)
            continue
        match = PERCENTILE_KEY.match(name)
        if match and 0 < float(match.group(1)) < 100:
            points.append((float(match.group(1)), float(value)))
    if not points:
        return None
    return Percentiles(label, unit, tuple(sorted(points)), maximum)


def machine_note(machine: dict[str, Any]) -> str:
    """A one-line description of where the figures were measured."""
    parts = []
    if machine.get("cpu"):
        parts.append(str(machine["cpu"]))
    if machine.get("cores"):
        parts.append(f"{machine['cores']} cores")
    if machine.get("python"):
        parts.append(f"{machine.get('implementation', 'Python')} {machine['python']}")
    for key, when in (("load_average", " at the start"), ("load_average_at_end", " at the end")):
        load = machine.get(key)
        if isinstance(load, list) and load:
            parts.append(f"load average {float(load[0]):.1f}{when}")
    steady = machine.get("steadiness")
    if isinstance(steady, dict) and "steadiness_slowed_share" in steady:
        parts.append(
            f"cores slowed {float(steady['steadiness_slowed_share']):.0%} of the probe's time "
            f"(longest window {float(steady.get('steadiness_longest_window_ms', 0)):.0f} ms)"
        )
    return ", ".join(parts)


def read_engine(results: Results, summary: dict[str, Any]) -> None:
    latency = percentiles(f"tradewire engine, {summary.get('commands', 0):,} commands", summary.get(
        "latency_us", {}), "µs")  # fmt: skip
    if latency is not None:
        results.engine.append(latency)
    if not results.machine:
        results.machine = machine_note(summary.get("machine", {}))


def read_record(results: Results, record: dict[str, Any]) -> None:
    """The record ``run_all.py`` writes: engine, pipeline_latency, gateway_latency, gateway_fanout."""
    results.machine = machine_note(record.get("machine", {})) or results.machine
    results.when = str(record.get("started", ""))[:16].replace("T", " ") or results.when
    if record.get("engine"):
        read_engine(results, record["engine"])
    for entry in record.get("pipeline_latency", []):
        rate, fsync = float(entry["rate"]), entry.get("fsync", "always")
        for run in entry["result"].get("latency", {}).get("runs", []):
            found = percentiles(f"{rate:,.0f} commands/s, appendfsync {fsync}", run, "ms")
            if found is not None:
                results.pipeline.append(found)
                results.pipeline_rates.append((rate, run["p50_ms"], run["p99_ms"]))
    for entry in record.get("gateway_latency", []):
        for run in entry.get("runs", []):
            procs = f" in {entry['procs']} processes" if entry.get("procs") else ""
            rate, via = run.get("offered_orders_per_s", "?"), run.get("via", "?")
            where = f"{rate} orders/s via {via}, {entry.get('clients', '?')} clients{procs}"
            for stream in ("depth", "trade"):
                found = percentiles(f"{stream} update, {where}", run, "ms", prefix=f"{stream}_")
                if found is not None:
                    results.gateway.append(found)
    for entry in record.get("gateway_fanout", []):
        label = f"{entry['connections']:,} connections" + (
            f", batched frames (groups of {entry['burst']})"
            if entry.get("batched")
            else ", one message per frame"
        )
        results.fanout_kinds.add(bool(entry.get("batched")))
        results.fanout[label] = [
            LoadPoint(
                float(step["offered_msg_per_s"]), float(step["delivered_msg_per_s"]), bool(step["complete"])
            )
            for step in entry.get("steps", [])
        ]


def load(paths: list[Path]) -> Results:
    results = Results()
    for path in paths:
        data = json.loads(path.read_text())
        if data.get("kind") == KIND:
            read_record(results, data)
        elif "latency_us" in data and "engines" in data:
            read_engine(results, data)
        else:
            raise SystemExit(f"{path}: neither a run_all.py record nor a bench/engine.py result")
    results.pipeline_rates.sort()
    return results


# -- drawing ---------------------------------------------------------------------------------------------


def tail_position(percentile: float) -> float:
    """The x of a percentile on the plot: 100 / (100 - p), so p50 -> 2, p99 -> 100, p99.9 -> 1000."""
    return 100 / (100 - percentile)


def percentile_label(percentile: float) -> str:
    return f"p{percentile:g}"


def readable(value: float) -> str:
    """An axis label: 0.5, 20, 300, 20k, 1.5M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def log_axis(axis: Any, decades: float = 0) -> None:
    """Labels at 1, 2 and 5 of every decade (at 1 only over more than 3 decades), as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades > 3 else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: readable(value)))
    axis.set_minor_formatter(NullFormatter())


def draw_percentiles(
    plt: Any,
    series: list[Percentiles],
    floors: tuple[tuple[float, float], ...],
    floor_label: str,
    title: str,
    caption: str,
    out: Path,
) -> Path:
    figure, axes = plt.subplots(figsize=(8, 5))
    ticks: dict[float, str] = {}
    widest = max(tail_position(q) for s in series for q, _ in s.points)
    max_at = 10 ** (math.floor(math.log10(widest)) + 1)
    for one in series:
        xs = [tail_position(q) for q, _ in one.points]
        ys = [value for _, value in one.points]
        ticks.update({tail_position(q): percentile_label(q) for q, _ in one.points})
        (line,) = axes.plot(xs, ys, marker="o", label=one.label)
        if one.maximum is not None:
            axes.plot([xs[-1], max_at], [ys[-1], one.maximum], linestyle=":", color=line.get_color())
            axes.plot([max_at], [one.maximum], marker="^", color=line.get_color())
            ticks[max_at] = "max"
    if floors:
        xs, ys = [tail_position(p) for p, _ in floors], [value for _, value in floors]
        axes.plot(xs, ys, marker="_", markersize=28, markeredgewidth=2, linestyle="none", color="red",
                  label=floor_label)  # fmt: skip
        ticks.update({tail_position(p): percentile_label(p) for p, _ in floors})
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(sorted(ticks), [ticks[x] for x in sorted(ticks)])
    axes.xaxis.set_minor_locator(plt.NullLocator())
    log_axis(axes.yaxis)
    axes.set_xlabel("percentile")
    axes.set_ylabel(f"latency ({series[0].unit}, log scale)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, axes, title, caption, out)


def draw_load(
    plt: Any,
    fanout: dict[str, list[LoadPoint]],
    floors: list[tuple[float, str]],
    title: str,
    caption: str,
    out: Path,
) -> Path:
    figure, axes = plt.subplots(figsize=(8, 5))
    everything = [p for steps in fanout.values() for p in steps]
    low = min(min(p.offered, p.delivered) for p in everything)
    high = max(p.delivered for p in everything) * 2  # the diagonal stops short of asked-for rates far off
    axes.plot(
        [low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="delivered = offered"
    )
    missed = "not every message delivered in time"
    for label, steps in fanout.items():
        (line,) = axes.plot([p.offered for p in steps], [p.delivered for p in steps], marker="o", label=label)
        short = [p for p in steps if not p.complete]
        if short:
            axes.plot([p.offered for p in short], [p.delivered for p in short], marker="x", markersize=12,
                      linestyle="none", color=line.get_color(), label=missed)  # fmt: skip
            missed = "_"  # one legend entry for every series' crosses
    for (value, label), style in zip(floors, (":", "-."), strict=False):
        axes.axhline(value, color="red", linestyle=style, linewidth=1, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    log_axis(axes.xaxis, math.log10(max(p.offered for p in everything) / low))
    log_axis(axes.yaxis, math.log10(high / low))
    axes.set_xlabel("offered load (messages/s: publication rate asked of the publisher x connections)")
    axes.set_ylabel("delivered (messages/s counted by the clients)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, axes, title, caption, out)


def draw_rates(
    plt: Any, rates: list[tuple[float, float, float]], title: str, caption: str, out: Path
) -> Path:
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.plot([r for r, _, _ in rates], [p50 for _, p50, _ in rates], marker="o", label="p50")
    axes.plot([r for r, _, _ in rates], [p99 for _, _, p99 in rates], marker="o", label="p99")
    axes.plot([PIPELINE_FLOOR_RATE], [PIPELINE_FLOORS[0][1]], marker="_", markersize=28, markeredgewidth=2,
              linestyle="none", color="red", label="floor: p99 at 10,000 commands/s")  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    log_axis(axes.xaxis)
    log_axis(axes.yaxis)
    axes.set_xlabel("offered load (commands/s appended to the journal)")
    axes.set_ylabel("journal-to-publish latency (ms, log scale)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, axes, title, caption, out)


def save(figure: Any, axes: Any, title: str, caption: str, out: Path) -> Path:
    axes.set_title(title, fontsize=11)
    figure.text(0.01, 0.01, caption, fontsize=7, wrap=True, va="bottom")
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    figure.savefig(out, dpi=110)
    figure.clf()
    return out


def draw_all(results: Results, out_dir: Path) -> list[Path]:
    """Every plot the results allow; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    when = f" on {results.when}" if results.when else ""
    caption = f"Measured{when} on {results.machine}. {CAVEAT}" if results.machine else CAVEAT
    written = []
    if results.engine:
        title = "Engine alone: per-command latency (apply)"
        out = out_dir / "engine-latency.png"
        written.append(draw_percentiles(plt, results.engine, ENGINE_FLOORS, "floor", title, caption, out))
    if results.pipeline:
        title = "Journal to publish: command latency"
        out = out_dir / "pipeline-latency.png"
        floor = "floor (at 10,000 commands/s)"
        written.append(draw_percentiles(plt, results.pipeline, PIPELINE_FLOORS, floor, title, caption, out))
    if len(results.pipeline_rates) > 1:
        title = "Journal to publish: latency against load"
        out = out_dir / "pipeline-latency-vs-rate.png"
        written.append(draw_rates(plt, results.pipeline_rates, title, caption, out))
    if results.gateway:
        title = "Gateway: order-to-update latency per client"
        out = out_dir / "gateway-latency.png"
        written.append(draw_percentiles(plt, results.gateway, GATEWAY_FLOORS, "floor", title, caption, out))
    fanout = {label: steps for label, steps in results.fanout.items() if steps}
    if fanout:
        title = "Gateway fan-out: delivered against offered messages/s"
        floors = [FANOUT_FLOORS[kind] for kind in sorted(results.fanout_kinds)]
        written.append(draw_load(plt, fanout, floors, title, caption, out_dir / "gateway-fanout.png"))
    plt.close("all")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("files", type=Path, nargs="+", help="run_all.py records or bench/engine.py results")
    parser.add_argument("--out", type=Path, default=OUT, help="directory for the PNGs")
    args = parser.parse_args(argv)
    for path in draw_all(load(args.files), args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
