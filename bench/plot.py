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
    engine: list[Percentiles] = field(default_factory=list)
    pipeline: list[Percentiles] = field(default_factory=list)
    pipeline_rates: list[tuple[float, float, float]] = field(default_factory=list)  # rate, p50, p99 (ms)
    gateway: list[Percentiles] = field(default_factory=list)
    fanout: dict[str, list[LoadPoint]] = field(default_factory=dict)  # series label -> steps


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
    load = machine.get("load_average_at_end") or machine.get("load_average")
    if isinstance(load, list) and load:
        parts.append(f"load average {float(load[0]):.1f}")
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
            where = f"{run.get('offered_orders_per_s', '?')} orders/s via {run.get('via', '?')}, " + (
                f"{entry.get('clients', '?')} clients"
            )
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


def draw_percentiles(plt: Any, series: list[Percentiles], title: str, caption: str, out: Path) -> Path:
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
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(sorted(ticks), [ticks[x] for x in sorted(ticks)])
    axes.minorticks_off()
    axes.set_xlabel("percentile")
    axes.set_ylabel(f"latency ({series[0].unit}, log scale)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, axes, title, caption, out)


def draw_load(plt: Any, fanout: dict[str, list[LoadPoint]], title: str, caption: str, out: Path) -> Path:
    figure, axes = plt.subplots(figsize=(8, 5))
    everything = [p for steps in fanout.values() for p in steps]
    low = min(min(p.offered, p.delivered) for p in everything)
    high = max(max(p.offered, p.delivered) for p in everything)
    axes.plot(
        [low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="delivered = offered"
    )
    for label, steps in fanout.items():
        (line,) = axes.plot([p.offered for p in steps], [p.delivered for p in steps], marker="o", label=label)
        short = [p for p in steps if not p.complete]
        if short:
            missed = "not every message delivered in time"
            axes.plot([p.offered for p in short], [p.delivered for p in short], marker="x", markersize=12,
                      linestyle="none", color=line.get_color(), label=missed)  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("offered load (messages/s: publications/s x connections)")
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
    axes.set_xscale("log")
    axes.set_yscale("log")
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
    caption = f"Measured on {results.machine}. {CAVEAT}" if results.machine else CAVEAT
    written = []
    if results.engine:
        written.append(draw_percentiles(plt, results.engine, "Engine alone: per-command latency (apply)",
                                        caption, out_dir / "engine-latency.png"))  # fmt: skip
    if results.pipeline:
        written.append(draw_percentiles(plt, results.pipeline, "Journal to publish: command latency",
                                        caption, out_dir / "pipeline-latency.png"))  # fmt: skip
    if len(results.pipeline_rates) > 1:
        written.append(draw_rates(plt, results.pipeline_rates, "Journal to publish: latency against load",
                                  caption, out_dir / "pipeline-latency-vs-rate.png"))  # fmt: skip
    if results.gateway:
        written.append(draw_percentiles(plt, results.gateway, "Gateway: order-to-update latency per client",
                                        caption, out_dir / "gateway-latency.png"))  # fmt: skip
    if any(results.fanout.values()):
        fanout = {label: steps for label, steps in results.fanout.items() if steps}
        written.append(draw_load(plt, fanout, "Gateway fan-out: delivered against offered messages/s",
                                 caption, out_dir / "gateway-fanout.png"))  # fmt: skip
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
