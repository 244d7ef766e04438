"""Every bench with short settings, one JSON record of the results, and the plots drawn from it.

    .venv/bin/python bench/run_all.py                 # about 2-3 minutes
    .venv/bin/python bench/run_all.py --no-plot       # the record only

Runs, one after another (never two at once, so that they do not measure each other), after
``--steadiness`` seconds of ``bench/steadiness.py`` whose summary goes into the record's ``machine``:

* ``bench/engine.py`` on tradewire alone (``--commands``, one round, no replay timing, ``--doc -`` so
  that ``docs/benchmarks/engine.md`` keeps its reference figures);
* ``bench/pipeline.py --only latency`` once per rate in ``--pipeline-rates``;
* ``bench/gateway.py latency --via journal`` and ``bench/gateway.py fanout``, one message per frame
  and batched (``--batched --burst 10``; ``--no-batched`` to leave it out).

``gateway.py`` prints its results rather than writing JSON, so its output is parsed here: the
``run N: {...}`` lines and, for the fan-out, the line per step of the rising publication rate. The
record goes to ``bench/results/short-<time>.json`` (``"kind": "tradewire-bench"``, read by
``bench/plot.py``), each bench's exact command in it. These are short runs: the reference figures,
from long runs, are in ``docs/benchmarks/*.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import plot  # bench/plot.py: this script's directory is on the path when it runs
import steadiness

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RUN_LINE = re.compile(r"^run \d+: (\{.*\})\s*$")
FANOUT_STEP = re.compile(
    r"publications/s\s+(?P<rate>[\d.]+)\s+delivered msg/s\s+(?P<delivered>[\d.]+)\s+"
    r"all delivered (?P<done>True|False)\s+drain\s+(?P<drain>-?[\d.]+)s"
)


def gateway_runs(output: str) -> list[dict[str, Any]]:
    """The ``run N: {...}`` result lines of ``bench/gateway.py``."""
    return [json.loads(m.group(1)) for line in output.splitlines() if (m := RUN_LINE.match(line.strip()))]


def fanout_steps(output: str, connections: int) -> list[dict[str, Any]]:
    """The fan-out's steps, as ``bench/gateway.py fanout`` prints them, one per publication rate.

    The bench raises the rate while a step is sustained (every client got every message, with at most a
    fifth of the step's time to drain) and stops at the first step that is not: so every step but the
    last is complete. The printed rate is rounded to whole publications per second.
    """
    matches = list(FANOUT_STEP.finditer(output))
    return [
        {
            "publications_per_s": float(match["rate"]),
            "offered_msg_per_s": float(match["rate"]) * connections,
            "delivered_msg_per_s": float(match["delivered"]),
            "all_delivered": match["done"] == "True",
            "drain_s": float(match["drain"]),
            "complete": index < len(matches) - 1,
        }
        for index, match in enumerate(matches)
    ]


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }


def run(command: list[str]) -> str:
    """One bench as a process from the repository root; its output is echoed and returned."""
    print("$ " + " ".join(command[1:] if command[0] == sys.executable else command), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    print(done.stdout[-2000:], end="", flush=True)
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{command[1]} exited {done.returncode}")
    return done.stdout


def shown(command: list[str]) -> str:
    return "python " + " ".join(command[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=200_000, help="engine: measured commands")
    parser.add_argument(
        "--pipeline-rates", default="200,500,1000", help="pipeline: commands/s, comma-separated"
    )
    parser.add_argument("--pipeline-seconds", type=float, default=3)
    parser.add_argument("--conns", type=int, default=2000, help="gateway fan-out: connections")
    parser.add_argument("--fanout-seconds", type=float, default=2)
    parser.add_argument(
        "--batched", action=argparse.BooleanOptionalAction, default=True,
        help="gateway fan-out: also the batched frames (groups of 10)",
    )  # fmt: skip
    parser.add_argument("--rate", type=int, default=200, help="gateway latency: orders/s")
    parser.add_argument("--clients", type=int, default=10, help="gateway latency: WebSocket clients")
    parser.add_argument("--procs", type=int, default=2, help="gateway latency: client processes")
    parser.add_argument("--skip", action="append", default=[], choices=["engine", "pipeline", "gateway"])
    parser.add_argument(
        "--steadiness", type=float, default=5.0, help="seconds of bench/steadiness.py before the benches"
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out", type=Path, default=plot.OUT, help="directory for the PNGs")
    args = parser.parse_args(argv)
    py = sys.executable
    record: dict[str, Any] = {"kind": plot.KIND, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    record["machine"] = machine()
    record["machine"]["steadiness"] = steadiness.summary(steadiness.probe(args.steadiness))
    print(steadiness.describe_summary(record["machine"]["steadiness"]), flush=True)

    if "engine" not in args.skip:
        command = [py, "bench/engine.py", "--commands", str(args.commands), "--rounds", "1",
                   "--engines", "tradewire", "--replay-runs", "0", "--doc", "-"]  # fmt: skip
        before = set(RESULTS.glob("engine-*.json"))
        run(command)
        written = sorted(set(RESULTS.glob("engine-*.json")) - before)
        record["engine"] = json.loads(written[-1].read_text()) if written else None
        record["engine_command"] = shown(command)

    if "pipeline" not in args.skip:
        record["pipeline_latency"] = []
        for rate in [float(r) for r in args.pipeline_rates.split(",") if r.strip()]:
            with tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
                out = Path(tmp, "pipeline.json")
                command = [py, "bench/pipeline.py", "--only", "latency", "--rate", f"{rate:g}",
                           "--seconds", f"{args.pipeline_seconds:g}", "--runs", "1",
                           "--commands", "1000", "--json", str(out)]  # fmt: skip
                run(command)
                result = json.loads(out.read_text())
            shown_command = shown(command[:-2])
            record["pipeline_latency"].append(
                {"rate": rate, "fsync": result.get("fsync"), "command": shown_command, "result": result}
            )

    if "gateway" not in args.skip:
        command = [py, "bench/gateway.py", "latency", "--via", "journal", "--rate", str(args.rate),
                   "--clients", str(args.clients), "--procs", str(args.procs),
                   "--seconds", "3", "--runs", "1"]  # fmt: skip
        output = run(command)
        record["gateway_latency"] = [
            {
                "clients": args.clients,
                "procs": args.procs,
                "command": shown(command),
                "runs": gateway_runs(output),
            }
        ]
        record["gateway_fanout"] = []
        for batched in (False, True) if args.batched else (False,):
            burst = 10 if batched else 1
            command = [py, "bench/gateway.py", "fanout", "--conns", str(args.conns),
                       "--seconds", f"{args.fanout_seconds:g}", "--runs", "1"]  # fmt: skip
            command += ["--batched", "--burst", str(burst)] if batched else []
            output = run(command)
            runs = gateway_runs(output)
            record["gateway_fanout"].append({
                "connections": args.conns, "batched": batched, "burst": burst, "command": shown(command),
                "steps": fanout_steps(output, args.conns),
                "messages_per_s": runs[0]["messages_per_s"] if runs else None,
            })  # fmt: skip

    record["machine"]["load_average_at_end"] = list(os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"short-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"record: {path}")
    if not args.no_plot:
        for png in plot.draw_all(plot.load([path]), args.out):
            print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
