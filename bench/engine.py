"""The matching-engine benchmark: tradewire against the published Python engines, in one run.

    .venv/bin/python bench/engine.py --commands 1000000

One seeded workload (``workload.py``) is fed to every engine that is installed (``bench/requirements.txt``)
through its adapter (``adapters.py``). The engines take turns within each round, so that every ratio
compares figures measured minutes apart under the same load; the report gives medians over the rounds.
Then ``tradewire replay`` is timed as a process on the same workload as JSON lines, in and out.

Prints a table, writes the figures as JSON to ``bench/results/`` and, after a full run (every engine,
the replay timed), the summary to ``docs/benchmarks/engine.md``: a run of some engines only would
replace the published comparison with a partial one.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters import ADAPTERS, CHUNK, Adapter, TradewireAdapter
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from workload import Workload, generate, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks" / "engine.md"
FLOOR_COMMANDS_PER_S = 300_000
FLOOR_P99_US = 20.0
FLOOR_REPLAY_S = 15.0
NOTES_MARKER = "<!-- hand-written notes below: kept when the figures above are rewritten -->"


@dataclass
class Measure:
    """One engine's figures in one round."""

    seconds: float
    """Wall clock."""
    cpu_seconds: float
    """CPU time of this process: what one core did, less the time other work held the core."""
    fills: int | None
    peak_rss_mib: float
    grew_mib: float


@dataclass
class EngineResult:
    name: str
    version: str
    fills_reported: bool
    notes: tuple[str, ...]
    rounds: list[Measure] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    """tradewire's commands/s over this engine's, per round."""


def _rss_mib(key: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of this process, in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak_rss() -> None:
    """Make ``VmHWM`` start again from the current RSS (Linux), so each engine's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass


def measure(adapter: Adapter) -> Measure:
    """Feed the main phase in chunks; only the feeding is timed (setup and translation are not).

    Memory: the peak RSS while the engine is built and run, and how far it grew over the RSS before
    the engine was built (the process also holds the workload and every adapter's translated ops).
    """
    gc.collect()
    _reset_peak_rss()
    before = _rss_mib("VmRSS")
    adapter.reset()
    gc.collect()
    total = adapter.main_ops()
    fills: int | None = 0
    clock, cpu = time.perf_counter, time.process_time
    cpu_start, start = cpu(), clock()
    for first in range(0, total, CHUNK):
        got = adapter.run(first, min(total, first + CHUNK))
        fills = None if got is None or fills is None else fills + got
    seconds, cpu_seconds = clock() - start, cpu() - cpu_start
    peak = _rss_mib("VmHWM")
    adapter.close()
    return Measure(seconds, cpu_seconds, fills if adapter.fills else None, peak, peak - before)


def latencies_us(adapter: TradewireAdapter) -> dict[str, float]:
    """Each command of the main phase timed on its own (a separate pass: the clock costs ~0.1 us)."""
    adapter.reset()
    gc.collect()
    apply = adapter.engine.apply
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    for command in adapter.commands:
        start = clock()
        apply(command)
        append(clock() - start)
    samples.sort()
    count = len(samples)

    def at(q: float) -> float:
        return float(samples[min(count - 1, int(q * count))]) / 1000

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p99.9": at(0.999), "max": samples[-1] / 1000}


def traced_memory_mib(adapter: TradewireAdapter) -> dict[str, float]:
    """tradewire's own allocations (tracemalloc): the state after setup, after the run, and the peak.

    RSS cannot tell this apart: the process also holds the workload, and freed memory of the engine
    measured before stays mapped. The C++ engines allocate outside Python's view, so this is
    tradewire's figure only.
    """
    gc.collect()
    tracemalloc.start()
    adapter.reset()
    after_setup = tracemalloc.get_traced_memory()[0]
    adapter.run(0, adapter.main_ops())
    gc.collect()
    at_end, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mib = 2**20
    return {"after_setup_mib": after_setup / mib, "at_end_mib": at_end / mib, "peak_mib": peak / mib}


def time_replay(workload: Workload, runs: int, console: Console) -> dict[str, Any]:
    """``tradewire replay`` as a process, JSON lines in and out, on the whole workload."""
    exe = Path(sys.executable).with_name("tradewire")
    with tempfile.TemporaryDirectory() as tmp:
        config, commands, events = Path(tmp, "config.json"), Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl")
        config.write_text(json.dumps(workload.config()))
        lines = write_jsonl(workload, commands)
        seconds: list[float] = []
        cpu_seconds: list[float] = []
        for run in range(runs):
            with commands.open("rb") as stdin, events.open("wb") as stdout:
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                done = subprocess.run(
                    [str(exe), "replay", "--config", str(config)], stdin=stdin, stdout=stdout
                )
                seconds.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu_seconds.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"tradewire replay exited {done.returncode}")
            console.print(f"  replay run {run + 1}: {cpu_seconds[-1]:.2f} s CPU, {seconds[-1]:.2f} s wall")
        with events.open("rb") as out:
            event_lines = sum(1 for _ in out)
        return {
            "command": f"tradewire replay --config config.json < in.jsonl > out.jsonl ({lines} lines)",
            "commands": lines,
            "events": event_lines,
            "input_mib": commands.stat().st_size / 2**20,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "median_s": statistics.median(cpu_seconds),
            "median_wall_s": statistics.median(seconds),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=1_000_000, help="commands in the measured phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every engine (medians reported)")
    parser.add_argument("--engines", default=",".join(ADAPTERS), help="comma-separated adapters to run")
    parser.add_argument("--replay-runs", type=int, default=3, help="timed runs of tradewire replay (0: none)")
    parser.add_argument("--no-latency", action="store_true", help="skip the per-command latency pass")
    parser.add_argument(
        "--doc", type=Path, default=None,
        help=f"where to write the markdown summary ('-': none; default: {DOC.relative_to(ROOT)}, "
        "and only after a full run, every engine and the replay timed)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    console = Console()

    started = time.perf_counter()
    workload = generate(args.commands, args.seed)
    console.print(f"workload: seed {args.seed}, {workload.stats} ({time.perf_counter() - started:.1f} s)")

    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    if "tradewire" not in names:
        names.insert(0, "tradewire")
    adapters: list[Adapter] = []
    skipped: dict[str, str] = {}
    for name in names:
        adapter = ADAPTERS[name]()
        why = adapter.available()
        if why is not None:
            skipped[name] = why
            console.print(f"[yellow]skipped {name}: {why}[/]")
            continue
        adapter.prepare(workload)
        adapters.append(adapter)
    results = {a.name: EngineResult(a.name, a.version(), a.fills, a.notes) for a in adapters}
    # The workload and every adapter's translated commands (hundreds of MiB of objects) are the
    # bench's, not an engine's: freeze them out of the garbage collector's walks, so that no engine
    # pays for the others' inputs. What an engine allocates while it runs is collected as usual.
    gc.collect()
    gc.freeze()

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        bar = progress.add_task("engines x rounds", total=args.rounds * len(adapters))
        for round_no in range(args.rounds):
            for adapter in adapters:
                progress.update(bar, description=f"round {round_no + 1}: {adapter.name}")
                got = measure(adapter)
                results[adapter.name].rounds.append(got)
                console.print(
                    f"round {round_no + 1} {adapter.name:>20}: "
                    f"{args.commands / got.cpu_seconds:>10,.0f} commands/s per CPU second "
                    f"({args.commands / got.seconds:,.0f} wall), "
                    f"{got.fills} fills, peak {got.peak_rss_mib:,.0f} MiB"
                )
                progress.advance(bar)
            ours = results["tradewire"].rounds[-1].cpu_seconds
            for result in results.values():
                result.ratios.append(result.rounds[-1].cpu_seconds / ours)

    tradewire = adapters[0]
    assert isinstance(tradewire, TradewireAdapter)
    memory = traced_memory_mib(tradewire)
    workload.stats["resting_orders_at_end"] = tradewire.resting_orders()
    tradewire.reset()
    workload.stats["resting_orders_after_setup"] = tradewire.resting_orders()
    # Best of the passes per percentile: on a shared machine a slow sample is most often a command
    # that lost its core to other work (a 4 ms scheduler tick), which a quieter pass does not repeat.
    passes = [latencies_us(tradewire) for _ in range(0 if args.no_latency else args.rounds)]
    latency = {key: min(p[key] for p in passes) for key in passes[0]} if passes else {}
    replay = time_replay(workload, args.replay_runs, console) if args.replay_runs else {}

    summary = summarise(args, workload, results, latency, replay, skipped)
    summary["tradewire_memory"] = memory
    print_table(console, summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"engine-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"results: {out}")
    full = set(args.engines.split(",")) >= set(ADAPTERS) and args.replay_runs > 0
    if args.doc is None and not full:
        console.print(f"summary: {DOC.relative_to(ROOT)} kept (a partial run; --doc PATH writes one)")
    elif str(args.doc) != "-":
        args.doc = args.doc or DOC
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        kept = args.doc.read_text() if args.doc.exists() else ""
        notes = kept[kept.index(NOTES_MARKER) :] if NOTES_MARKER in kept else NOTES_MARKER + "\n"
        args.doc.write_text(markdown(summary) + "\n" + notes)
        console.print(f"summary: {args.doc}")
    return 0


def summarise(
    args: argparse.Namespace,
    workload: Workload,
    results: dict[str, EngineResult],
    latency: dict[str, float],
    replay: dict[str, Any],
    skipped: dict[str, str],
) -> dict[str, Any]:
    engines = []
    for result in results.values():
        seconds = statistics.median(m.cpu_seconds for m in result.rounds)
        wall = statistics.median(m.seconds for m in result.rounds)
        fills = result.rounds[-1].fills
        engines.append(
            {
                "name": result.name,
                "version": result.version,
                "fills_reported": result.fills_reported,
                "commands_per_s": args.commands / seconds,
                "commands_per_s_rounds": [args.commands / m.cpu_seconds for m in result.rounds],
                "commands_per_wall_s": args.commands / wall,
                "commands_per_wall_s_rounds": [args.commands / m.seconds for m in result.rounds],
                "trades_per_s": None if fills is None else fills / seconds,
                "fills": fills,
                "peak_rss_mib": statistics.median(m.peak_rss_mib for m in result.rounds),
                "grew_mib": statistics.median(m.grew_mib for m in result.rounds),
                "tradewire_speedup": statistics.median(result.ratios),
                "tradewire_speedup_rounds": result.ratios,
                "notes": list(result.notes),
            }
        )
    return {
        "command": " ".join(["python bench/engine.py", *args.argv]),
        "commands": args.commands,
        "seed": args.seed,
        "rounds": args.rounds,
        "workload": workload.stats,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "engines": engines,
        "skipped": skipped,
        "latency_us": latency,
        "replay": replay,
        "floors": {
            "commands_per_s": FLOOR_COMMANDS_PER_S,
            "p99_us": FLOOR_P99_US,
            "replay_s": FLOOR_REPLAY_S,
        },
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _num(value: float | None, places: int = 0) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def print_table(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['commands']:,} commands, medians of {summary['rounds']} rounds")
    columns = (
        "engine",
        "commands/CPU s",
        "commands/wall s",
        "trades/CPU s",
        "peak RSS MiB",
        "grew MiB",
        "x faster",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "engine" else "right")
    for e in summary["engines"]:
        table.add_row(
            f"{e['name']} {e['version']}",
            _num(e["commands_per_s"]),
            _num(e["commands_per_wall_s"]),
            _num(e["trades_per_s"]) if e["fills_reported"] else "no fills",
            _num(e["peak_rss_mib"]),
            _num(e["grew_mib"]),
            _num(e["tradewire_speedup"], 2),
        )
    console.print(table)
    if summary["latency_us"]:
        lat = summary["latency_us"]
        console.print(
            "tradewire per-command latency (us): " + ", ".join(f"{k} {v:.1f}" for k, v in lat.items())
        )
    mem = summary["tradewire_memory"]
    console.print(
        f"tradewire memory (tracemalloc): {mem['after_setup_mib']:.0f} MiB after setup, "
        f"{mem['at_end_mib']:.0f} MiB at the end, peak {mem['peak_mib']:.0f} MiB"
    )
    if summary["replay"]:
        rep = summary["replay"]
        console.print(
            f"tradewire replay of {rep['commands']:,} commands: median {rep['median_s']:.2f} s CPU "
            f"({', '.join(f'{s:.2f}' for s in rep['cpu_seconds'])}), {rep['median_wall_s']:.2f} s wall"
        )


def markdown(summary: dict[str, Any]) -> str:
    ours = summary["engines"][0]
    lat = summary["latency_us"]
    rep = summary["replay"]
    machine = summary["machine"]
    lines = [
        "# Engine benchmark",
        "",
        "Written by `bench/engine.py`; re-run it to refresh the figures:",
        "",
        "```",
        ".venv/bin/pip install -r bench/requirements.txt   # the other engines (bench only)",
        ".venv/bin/python bench/engine.py --commands 1000000",
        "```",
        "",
        f"Last run: `{summary['command']}` — {summary['commands']:,} measured commands "
        f"(seed {summary['seed']}), "
        f"{summary['rounds']} rounds, every figure the median over the rounds.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores shared with other work (load average at the "
        f"end {', '.join(f'{x:.1f}' for x in machine['load_average_at_end'])}), "
        f"{machine['implementation']} {machine['python']}. The engine runs on one core. Absolute figures "
        "are noisy on a shared machine; the ratios are measured within each round, the engines taking "
        "turns on the same workload, so they are the steadier figure.",
        "",
        "## Workload",
        "",
        "Seeded (`bench/workload.py`): 2,000 users with Zipf-like activity, 4 markets (BTC-USDT, ETH-USDT, "
        "SOL-USDT, ETH-BTC) whose mids drift as mean-reverting random walks; a setup phase (deposits, "
        "12,000 resting orders) that is not timed, then the measured phase: about a third cancels, "
        "resting limits near the mid, post-only at the touch, marketable GTC/IOC/FOK limits and market "
        "orders. The book holds 10k+ resting orders throughout.",
        "",
        "```",
        json.dumps(summary["workload"]),
        "```",
        "",
        "## Results",
        "",
        "Throughput is counted per CPU second of the benchmark process (what one core does while it runs; "
        "the wall-clock figure also counts the time other work held the core). Ratios compare CPU time "
        "within each round.",
        "",
        "| engine | commands/s (CPU) | commands/s (wall) | trades/s (CPU) | RSS growth MiB "
        "| tradewire is x faster |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in summary["engines"]:
        trades = _num(e["trades_per_s"]) if e["fills_reported"] else "no fills returned"
        lines.append(
            f"| {e['name']} {e['version']} | {_num(e['commands_per_s'])} | "
            f"{_num(e['commands_per_wall_s'])} | {trades} | "
            f"{_num(e['grew_mib'])} | {_num(e['tradewire_speedup'], 2)} |"
        )
    for name, why in summary["skipped"].items():
        lines.append(f"| {name} | not run: {why} | | | | |")
    lines += [
        "",
        "Per-round commands/s: "
        + "; ".join(
            f"{e['name']} " + ", ".join(_num(x) for x in e["commands_per_s_rounds"])
            for e in summary["engines"]
        )
        + ".",
    ]
    if lat:
        lines += [
            "",
            "tradewire per-command latency (each command timed alone on the wall clock, best of "
            f"{summary['rounds']} passes per percentile, µs): "
            + ", ".join(f"{k} {v:.1f}" for k, v in lat.items())
            + ".",
        ]
    mem = summary["tradewire_memory"]
    lines += [
        "",
        f"tradewire's own memory (tracemalloc, separate pass): {mem['after_setup_mib']:.0f} MiB after "
        f"the setup phase, {mem['at_end_mib']:.0f} MiB at the end "
        f"({summary['workload']['resting_orders_at_end']:,} resting orders), "
        f"peak {mem['peak_mib']:.0f} MiB. The RSS columns are the process's (workload included).",
    ]
    if rep:
        lines += [
            "",
            f"`tradewire replay` of {rep['commands']:,} commands "
            f"({rep['input_mib']:.0f} MiB of JSON lines in, "
            f"{rep['events']:,} lines out): median {rep['median_s']:.2f} s of CPU time over "
            f"{len(rep['seconds'])} runs ({', '.join(f'{s:.2f}' for s in rep['cpu_seconds'])} s); "
            f"wall clock {', '.join(f'{s:.2f}' for s in rep['seconds'])} s.",
        ]
    floors = summary["floors"]
    p99 = lat.get("p99")
    lines += [
        "",
        "## Floors",
        "",
        "| floor | measured | met |",
        "|---|---:|:---:|",
        f"| engine >= {floors['commands_per_s']:,} commands/s | {_num(ours['commands_per_s'])} | "
        f"{_yes(ours['commands_per_s'] >= floors['commands_per_s'])} |",
        f"| p99 <= {floors['p99_us']:.0f} µs per command | {_num(p99, 1)} | "
        f"{_yes(p99 is not None and p99 <= floors['p99_us'])} |",
        f"| replay of 1M commands <= {floors['replay_s']:.0f} s | {_num(rep.get('median_s'), 2)} | "
        f"{_yes(bool(rep) and rep['median_s'] <= floors['replay_s'])} |",
    ]
    for e in summary["engines"][1:]:
        if e["fills_reported"] and not e["name"].startswith("tradewire"):  # not its own baseline
            speedup = e["tradewire_speedup"]
            lines.append(f"| faster than {e['name']} | x{speedup:.2f} | {_yes(speedup > 1)} |")
    lines += ["", "## What each adapter maps", ""]
    for e in summary["engines"]:
        lines.append(f"- **{e['name']}**: " + "; ".join(e["notes"]) + ".")
    return "\n".join(lines) + "\n"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    sys.exit(main())
