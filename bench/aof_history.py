"""What deleting the AOF files a rewrite replaced costs the writes of that moment, and what sweeping
them (shrinking a few megabytes at a time, as beside the embedded Redis) costs instead.

    python bench/aof_history.py --runs 3 [--aof-mb 1500]

Each run starts a fresh ``redis-server`` (AOF on, ``appendfsync always``, no automatic rewrite),
grows its AOF to ``--aof-mb`` megabytes (one key written over and over, so the data stays small,
as a journal trimmed behind the engine), and then appends 2.4 KB stream entries (about what a journal
command costs the AOF) one at a time from a thread, timing each round trip. Two seconds in, it asks
for a rewrite (``BGREWRITEAOF``), and times the appends until ``--after`` seconds past its end: with
``delete`` Redis deletes the replaced files as it does by default; with ``sweep`` it keeps them
(``aof-disable-auto-gc yes``) and ``tradewire.ops.aofhistory`` shrinks them meanwhile. The two are
alternated, run by run, and the medians compared: the figure is the worst append and the number over
5 ms, the time from the rewrite's start being the one a latency percentile would feel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import redis_server

from tradewire.ops.aofhistory import SPREAD_SECONDS, SWEEP_EVERY

MIB = 1 << 20
ENTRY = b"x" * 2_400
SLOW_MS = 5.0


def one_run(history: str, aof_mb: int, after: float, pause: float) -> dict[str, Any]:
    with redis_server("always", None, history) as url:
        client = redis.Redis.from_url(url)
        value = b"v" * MIB
        for start in range(0, aof_mb, 50):
            with client.pipeline(transaction=False) as pipe:
                for _ in range(min(50, aof_mb - start)):
                    pipe.set("filler", value)
                pipe.execute()
        timings: list[tuple[float, float]] = []
        stop = threading.Event()

        def append() -> None:
            writer = redis.Redis.from_url(url)
            while not stop.is_set():
                began = time.perf_counter()
                writer.xadd("journal", {"c": ENTRY}, maxlen=10_000, approximate=True)
                timings.append((began, time.perf_counter() - began))
                time.sleep(pause)
            writer.close()

        thread = threading.Thread(target=append)
        thread.start()
        time.sleep(2)
        rewrite_at = time.perf_counter()
        client.bgrewriteaof()
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.01)
        rewritten_in = time.perf_counter() - rewrite_at
        time.sleep(after)
        stop.set()
        thread.join()
        client.close()
    before = sorted(ms * 1000 for at, ms in timings if at < rewrite_at)
    since = sorted(ms * 1000 for at, ms in timings if at >= rewrite_at)
    return {
        "history": history,
        "rewrite_s": rewritten_in,
        "appends": len(since),
        "max_ms": since[-1],
        "p999_ms": since[int(len(since) * 0.999)],
        "over_5ms": sum(1 for ms in since if ms > SLOW_MS),
        "max_before_ms": before[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each, alternated")
    parser.add_argument("--aof-mb", type=int, default=1500, help="AOF megabytes before the rewrite")
    parser.add_argument(
        "--after", type=float, default=SPREAD_SECONDS + SWEEP_EVERY + 3,
        help="seconds timed after the rewrite's end (by default the sweep's whole round and more)",
    )  # fmt: skip
    parser.add_argument("--pause", type=float, default=0.0003, help="seconds between appends")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    runs: list[dict[str, Any]] = []
    for run in range(args.runs):
        for history in ("delete", "sweep"):
            figures = one_run(history, args.aof_mb, args.after, args.pause)
            runs.append(figures)
            print(
                f"  run {run + 1} {history:6}: rewrite {figures['rewrite_s']:.2f} s; from its start "
                f"{figures['appends']:,} appends, max {figures['max_ms']:.1f} ms, p99.9 "
                f"{figures['p999_ms']:.2f} ms, {figures['over_5ms']} over {SLOW_MS:.0f} ms "
                f"(max before it {figures['max_before_ms']:.1f} ms)",
                flush=True,
            )
    table = Table(title=f"appends around an AOF rewrite of {args.aof_mb:,} MB (medians of {args.runs})")
    table.add_column("replaced files")
    for name in ("max ms", "p99.9 ms", f"over {SLOW_MS:.0f} ms"):
        table.add_column(name, justify="right")
    medians: dict[str, dict[str, float]] = {}
    columns = ("max_ms", "p999_ms", "over_5ms")
    for history in ("delete", "sweep"):
        mine = [r for r in runs if r["history"] == history]
        medians[history] = {k: statistics.median(r[k] for r in mine) for k in columns}
        table.add_row(history, *(f"{medians[history][k]:.1f}" for k in columns))
    Console().print(table)
    ratio = medians["delete"]["max_ms"] / medians["sweep"]["max_ms"]
    print(f"worst append, delete / sweep: {ratio:.1f}x")
    if args.json:
        args.json.write_bytes(orjson.dumps({"runs": runs, "medians": medians}, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
