"""The engine service end to end: journal -> engine -> published market data, on a real redis-server.

Three measurements, each repeated ``--runs`` times on a fresh redis-server (AOF on, ``appendfsync
always`` unless ``--fsync everysec``) with ``tradewire engine`` as its own process:

* **throughput**: the journal is filled with the workload of ``bench/workload.py`` (setup phase,
  then ``--commands`` main-phase commands) before the engine starts; the clock runs from the moment
  the engine has applied the setup to the moment it has committed the last command, so the figure
  is sustained commands per second through decode, matching, market data, accounts, events, replies
  and publications, each batch committed in one MULTI/EXEC. Main-phase commands name a reply
  channel (``src`` ``bench``), so a reply is published per command as for a gateway's. Each run
  also times the pure engine (decode + match) over the same commands in the bench's process and
  prints the ratio.
* **concurrent**: the same commands appended by ``--producers`` connections (pipelined 100 at a
  time, each waiting for its ``XADD`` replies) while the engine drains the journal; the clock runs
  from the first append to the commit of the last command.
* **latency**: with the setup applied, commands are appended at ``--rate`` per second for
  ``--seconds``; the latency of a command is the time from just before its ``XADD`` is written to
  the arrival of its reply on ``tw:reply:<src>``. The reply is published in the same MULTI/EXEC as
  the command's market data, so this is journal-to-publish latency plus one ``XADD`` round trip.
  The bench's own heap is frozen for the run (a full collection of it would delay the replies it
  receives), and its longest collection meanwhile is printed with the run.
  Redis rewrites its AOF as the embedded Redis does, once it passed 1 GB and doubled (``--aof-rewrite
  SIZE``; ``64mb`` is Redis's own default, a rewrite every few seconds at this rate since each
  command appends about 2.4 KB; ``off``: never), and the run says how often and how long its last
  fork took. The files a rewrite replaced are shrunk slowly as beside the embedded Redis
  (``--aof-history delete``: Redis deletes them at once, its default, a stall of its fsyncs). The
  engine snapshots as by default (every 60 s at this rate): a run of a minute, the default, meets
  about one of each.
  Each run is preceded by ``--steadiness`` seconds of ``bench/steadiness.py`` (how much of the time
  the machine's cores ran slowed, and how long its slow windows were), printed with the run: on a
  shared machine those windows, not the engine, can set the p99.
* **recovery**: a snapshot is written after the setup, then the engine applies ``--tail``
  main-phase commands and is killed (``SIGKILL``) before it takes another snapshot; the time is
  :func:`tradewire.journal.recovery.recover` loading the snapshot, silently re-applying the whole
  tail and reading the open orders' records (wall clock, and the bench process's CPU time, which
  other work on a shared machine inflates less).

Run from the repository root::

    python bench/pipeline.py                      # all three, 3 runs each
    python bench/pipeline.py --only recovery --tail 1000000 --runs 3

Prints one line per run and the medians; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import steadiness
from workload import Workload, command_dict, generate

from tradewire import keys
from tradewire.engine import Engine, ExchangeConfig, decode
from tradewire.journal.recovery import recover
from tradewire.journal.wire import Connection, pack
from tradewire.ops.aofhistory import AUTO_GC, AofHistorySweeper, forget_history, may_sweep
from tradewire.redisconn import AOF_REWRITE_MIN_SIZE
from tradewire.runtime import tune_gc

ROOT = Path(__file__).resolve().parents[1]
FILL_CHUNK = 5_000


# -- processes -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(fsync: str, aof_rewrite: str | None = None, aof_history: str = "sweep") -> Iterator[str]:
    """A private redis-server (AOF on) in a temporary directory; yields its URL. It rewrites its AOF
    once it passed ``aof_rewrite`` and doubled (tradewire's embedded Redis: ``AOF_REWRITE_MIN_SIZE``),
    never when that is None. The files a rewrite replaced are shrunk slowly by a sweeper in this
    process as the embedded Redis's (``aof_history`` ``sweep``), or deleted by Redis at once
    (``delete``, Redis's default)."""
    directory = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    port = _free_port()
    sweep = aof_history == "sweep"
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
            *(("--auto-aof-rewrite-percentage", "0") if aof_rewrite is None
              else ("--auto-aof-rewrite-percentage", "100", "--auto-aof-rewrite-min-size", aof_rewrite)),
            *((f"--{AUTO_GC}", "yes") if sweep else ()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    stack = ExitStack()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        if sweep:
            client = redis.Redis(port=port)
            sweeper = AofHistorySweeper(
                directory / "appendonlydir", lambda: forget_history(client), lambda: may_sweep(client)
            )
            stack.callback(client.close)
            sweeper.start()
            stack.callback(sweeper.stop)
        yield url
    finally:
        stack.close()
        process.terminate()
        process.wait(30)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def engine(url: str, config_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``tradewire engine`` as a child process; stopped with SIGTERM at the end."""
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tradewire.cli", "engine", "--config", str(config_path), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the journal -----------------------------------------------------------------------------------


def command_lines(workload: Workload, ops: Sequence[Any]) -> list[bytes]:
    """Each op as its journal line, copied to its own size: ``orjson.dumps`` keeps a 4 KiB buffer
    behind every result it returns (orjson 3.12+), which made a minute's lines 2.5 GB."""
    return [bytes(memoryview(orjson.dumps(command_dict(op, workload.markets)))) for op in ops]


async def fill(conn: Connection, lines: Sequence[bytes], src: bytes = b"") -> bytes:
    """Append ``lines`` to the journal (pipelined), stamped with the wall clock as a gateway stamps
    them; return the last entry id."""
    last = b""
    for start in range(0, len(lines), FILL_CHUNK):
        chunk = lines[start : start + FILL_CHUNK]
        ts = time.time_ns() // 1_000_000
        data = b"".join(
            pack((b"XADD", keys.COMMANDS, b"*", b"c", line, b"ts", b"%d" % ts, b"rid", b"%032x" % i,
                  b"src", src, b"who", b"bench", b"ip", b"-"))
            for i, line in enumerate(chunk, start)
        )  # fmt: skip
        replies = await conn.raw(data, len(chunk), timeout=120)
        last = replies[-1]
    return last


async def wait_applied(conn: Connection, target: bytes, timeout: float = 600, poll: float = 0.005) -> float:
    """Poll ``applied`` until it is ``target``; return the monotonic time it was first seen."""
    deadline = time.monotonic() + timeout
    while True:
        if await conn.call(b"GET", keys.APPLIED) == target:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine did not reach {target!r}")
        await asyncio.sleep(poll)


# -- the three measurements ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def redis_info(conn: Connection, section: bytes, field: bytes) -> int:
    info: bytes = await conn.call(b"INFO", section)
    [line] = [line for line in info.splitlines() if line.startswith(field + b":")]
    return int(line.split(b":")[1])


async def redis_pid(conn: Connection) -> int:
    return await redis_info(conn, b"server", b"process_id")


async def throughput(
    url: str, config_path: Path, setup: list[bytes], main: list[bytes]
) -> tuple[float, float, float]:
    """Commands/s, and the CPU microseconds per command the engine process and redis-server spent
    (steadier than the rate on a shared machine: what the work costs, not what the core was lent)."""
    conn = await Connection.open(url, timeout=120)
    try:
        setup_last = await fill(conn, setup)
        main_last = await fill(conn, main, b"bench")
        redis = await redis_pid(conn)
        no_snapshots = ("--snapshot-every", "1000000000", "--snapshot-seconds", "100000")
        with engine(url, config_path, *no_snapshots) as process:
            started = await wait_applied(conn, setup_last, poll=0.001)
            engine_cpu, redis_cpu = cpu_seconds(process.pid), cpu_seconds(redis)
            finished = await wait_applied(conn, main_last, poll=0.002)
            engine_cpu, redis_cpu = cpu_seconds(process.pid) - engine_cpu, cpu_seconds(redis) - redis_cpu
        per_command = 1e6 / len(main)
        return len(main) / (finished - started), engine_cpu * per_command, redis_cpu * per_command
    finally:
        await conn.close()


async def concurrent(
    url: str, config_path: Path, setup: list[bytes], main: list[bytes], producers: int, chunk: int = 100
) -> float:
    """Commands/s with ``producers`` connections appending ``main`` (pipelined ``chunk`` at a time,
    each waiting for its ``XADD`` replies) while the engine drains the journal."""
    conn = await Connection.open(url, timeout=120)
    writers = [await Connection.open(url, timeout=120) for _ in range(producers)]
    try:
        setup_last = await fill(conn, setup)
        with engine(url, config_path, "--snapshot-every", "1000000000", "--snapshot-seconds", "100000"):
            await wait_applied(conn, setup_last, poll=0.001)
            started = time.monotonic()

            async def produce(writer: Connection, share: Sequence[bytes]) -> None:
                for start in range(0, len(share), chunk):
                    await fill(writer, share[start : start + chunk], b"bench")

            await asyncio.gather(*(produce(w, main[i::producers]) for i, w in enumerate(writers)))
            [[last, _]] = await conn.call(b"XREVRANGE", keys.COMMANDS, b"+", b"-", b"COUNT", 1)
            finished = await wait_applied(conn, last, poll=0.002)
        return len(main) / (finished - started)
    finally:
        for c in (conn, *writers):
            await c.close()


def engine_alone(config: ExchangeConfig, setup: list[bytes], main: list[bytes]) -> float:
    """Commands/s of the pure engine (decode + match, nothing else) over ``main`` after ``setup``,
    in this process: the ceiling the service is compared with."""
    pure = Engine(config)
    for line in setup:
        pure.apply(decode(line))
    started = time.perf_counter()
    for line in main:
        pure.apply(decode(line))
    return len(main) / (time.perf_counter() - started)


@contextmanager
def own_collections() -> Iterator[list[float]]:
    """The load generator's own garbage collections, timed: its heap (the journal lines, the latency
    lists) is frozen first, else a full collection of it, 50-100 ms, lands in the middle of a run
    and delays the replies it receives as if the engine had been slow."""
    gc.collect()
    gc.freeze()
    pauses: list[float] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timed)
        gc.unfreeze()


async def latency(
    url: str, config_path: Path, setup: list[bytes], main: list[bytes], rate: float, seconds: float
) -> dict[str, float]:
    conn = await Connection.open(url, timeout=120)
    subscriber = await Connection.open(url, timeout=120)
    try:
        setup_last = await fill(conn, setup)
        with engine(url, config_path):
            await wait_applied(conn, setup_last)
            await subscriber.call(b"SUBSCRIBE", b"tw:reply:bench")
            count = min(len(main), int(rate * seconds))
            sent_at: list[int] = [0] * count
            received: list[int] = []

            async def listen() -> None:
                while len(received) < count:
                    message = await subscriber.reply(timeout=30)
                    at = time.perf_counter_ns()
                    for line in message[2].split(b"\n"):  # one message per batch, a reply per line
                        rid = orjson.loads(line)["rid"]
                        received.append(at - sent_at[int(rid, 16)])

            with own_collections() as pauses:
                await _paced(conn, main, sent_at, count, rate, listen)
        received.sort()
        return {
            "p50_ms": received[len(received) // 2] / 1e6,
            "p99_ms": received[int(len(received) * 0.99)] / 1e6,
            "max_ms": received[-1] / 1e6,
            "commands": len(received),
            "own_gc_max_ms": max(pauses, default=0.0) * 1000,
            "aof_rewrites": await redis_info(conn, b"persistence", b"aof_rewrites"),
            "redis_fork_ms": await redis_info(conn, b"stats", b"latest_fork_usec") / 1000,
        }
    finally:
        await conn.close()
        await subscriber.close()


async def _paced(
    writer: Connection,
    main: list[bytes],
    sent_at: list[int],
    count: int,
    rate: float,
    listen: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """Append ``count`` commands at ``rate`` per second, noting when each was sent, while ``listen``
    collects their replies; return once all came."""
    listener = asyncio.create_task(listen())
    started = time.perf_counter()
    position = 0
    while position < count:
        due = min(count, int((time.perf_counter() - started) * rate) + 1)
        if due > position:
            parts = []
            now_ns = time.perf_counter_ns()
            ts = time.time_ns() // 1_000_000
            for i in range(position, due):
                sent_at[i] = now_ns
                parts.append(
                    pack((b"XADD", keys.COMMANDS, b"*", b"c", main[i], b"ts", b"%d" % ts,
                          b"rid", b"%032x" % i, b"src", b"bench", b"who", b"bench", b"ip", b"-"))
                )  # fmt: skip
            await writer.raw(b"".join(parts), due - position)
            position = due
        await asyncio.sleep(0.0005)
    await asyncio.wait_for(listener, 60)


async def recovery(
    url: str, config_path: Path, config: ExchangeConfig, setup: list[bytes], tail: list[bytes], runs: int
) -> tuple[list[float], list[float]]:
    conn = await Connection.open(url, timeout=300)
    try:
        setup_last = await fill(conn, setup)
        with engine(url, config_path, "--snapshot-every", "1"):
            await wait_applied(conn, setup_last)
            while await conn.call(b"HGET", keys.SNAPSHOT, b"pos") != setup_last:
                await asyncio.sleep(0.05)
        # The engine applies the tail for real (its effects, order records included, must be in
        # Redis as after any crash) and is killed before it takes another snapshot.
        with engine(
            url, config_path, "--snapshot-every", "1000000000", "--snapshot-seconds", "1000000"
        ) as proc:
            tail_last = await fill(conn, tail)
            await wait_applied(conn, tail_last)
            proc.kill()
            proc.wait()
        assert await conn.call(b"HGET", keys.SNAPSHOT, b"pos") == setup_last
        # The workload's millions of objects are the bench's, not the engine's: keep the collector
        # from walking them while recover() runs (the engine process does not hold them), and
        # collect as seldom as ``tradewire engine`` does while it recovers.
        gc.collect()
        tune_gc(freeze=True)
        times, cpu = [], []
        for _ in range(runs):
            cpu_started = time.process_time()
            recovered = await recover(conn, config)
            cpu.append(time.process_time() - cpu_started)
            assert recovered.replayed == len(tail) and recovered.applied == tail_last
            times.append(recovered.seconds)
            print(
                f"  recovery: snapshot + {recovered.replayed:,} commands in {recovered.seconds:.2f} s "
                f"({cpu[-1]:.2f} s of this process's CPU)",
                flush=True,
            )
        return times, cpu
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", choices=["throughput", "concurrent", "latency", "recovery"], action="append"
    )
    parser.add_argument("--producers", type=int, default=4, help="appending connections (concurrent)")
    parser.add_argument("--commands", type=int, default=200_000, help="main-phase commands for throughput")
    parser.add_argument("--rate", type=float, default=10_000, help="commands/s for the latency run")
    parser.add_argument(
        "--seconds", type=float, default=60,
        help="length of the latency run (a minute: the snapshot and AOF rewrite that come once in it)",
    )  # fmt: skip
    parser.add_argument("--tail", type=int, default=1_000_000, help="commands after the snapshot")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fsync", choices=["always", "everysec"], default="always")
    parser.add_argument(
        "--aof-rewrite", default=AOF_REWRITE_MIN_SIZE, metavar="SIZE|off",
        help=f"redis-server rewrites its AOF once past SIZE and doubled ({AOF_REWRITE_MIN_SIZE}, as the "
        "embedded Redis; Redis's own default is 64mb); off: never",
    )  # fmt: skip
    parser.add_argument(
        "--aof-history", choices=["sweep", "delete"], default="sweep",
        help="the AOF files a rewrite replaced: shrunk slowly as the embedded Redis's (sweep), or "
        "deleted by Redis at once (delete, Redis's default)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--steadiness", type=float, default=3.0,
        help="seconds of bench/steadiness.py before each latency run (0: none)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    rewrite = None if args.aof_rewrite == "off" else args.aof_rewrite
    only = set(args.only or ["throughput", "concurrent", "latency", "recovery"])

    needed = max(args.commands, int(args.rate * args.seconds), args.tail if "recovery" in only else 0)
    print(f"generating the workload ({needed:,} main-phase commands) ...", flush=True)
    workload = generate(needed, args.seed)
    exchange = workload.config()
    config = ExchangeConfig.from_dict(exchange)
    setup = command_lines(workload, workload.setup)
    main_lines = command_lines(workload, workload.main)
    # Only the lines are sent, kept at their own size (command_lines): a load generator of
    # gigabytes beside the engine made the copies of the engine's pages after a snapshot's fork
    # ~1.7x slower on this virtual machine (a run's p99 9.9 ms against 4.3).
    del workload
    gc.collect()
    work = Path(tempfile.mkdtemp(prefix="tw-bench-config-"))
    config_path = work / "config.json"
    config_path.write_bytes(orjson.dumps(exchange))
    results: dict[str, Any] = {
        "fsync": args.fsync, "aof_rewrite": rewrite or "off", "aof_history": args.aof_history,
        "cpus": os.cpu_count(), "load": os.getloadavg()[0],
    }  # fmt: skip
    print(
        f"setup {len(setup):,} commands; appendfsync {args.fsync}; replaced AOF files: {args.aof_history}; "
        f"load average {results['load']:.1f}"
    )

    total_runs = args.runs * len(only - {"recovery"}) + (1 if "recovery" in only else 0)
    progress = Progress(
        TextColumn("pipeline bench"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(), transient=True,
    )  # fmt: skip
    bar = progress.add_task("runs", total=total_runs)
    progress.start()

    if "throughput" in only:
        rates, pure, ratios, engine_us, redis_us = [], [], [], [], []
        for run in range(args.runs):
            with redis_server(args.fsync, rewrite, args.aof_history) as url:
                rate, engine_cpu, redis_cpu = asyncio.run(
                    throughput(url, config_path, setup, main_lines[: args.commands])
                )
            alone = engine_alone(config, setup, main_lines[: args.commands])
            rates.append(rate)
            pure.append(alone)
            ratios.append(rate / alone)
            engine_us.append(engine_cpu)
            redis_us.append(redis_cpu)
            print(
                f"  throughput run {run + 1}: {rate:,.0f} commands/s over {args.commands:,} "
                f"(pure engine in this run: {alone:,.0f}/s, ratio {rate / alone:.2f}); CPU per command: "
                f"engine process {engine_cpu:.1f} us, redis-server {redis_cpu:.1f} us",
                flush=True,
            )
            progress.advance(bar)
        results["throughput_per_s"] = {"runs": rates, "median": statistics.median(rates)}
        results["engine_alone_per_s"] = {"runs": pure, "median": statistics.median(pure)}
        results["service_to_engine"] = {"runs": ratios, "median": statistics.median(ratios)}
        engine_median, redis_median = statistics.median(engine_us), statistics.median(redis_us)
        results["engine_process_cpu_us_per_command"] = {"runs": engine_us, "median": engine_median}
        results["redis_cpu_us_per_command"] = {"runs": redis_us, "median": redis_median}
        print(
            f"throughput: median {statistics.median(rates):,.0f} commands/s; pure engine median "
            f"{statistics.median(pure):,.0f}/s; ratio median {statistics.median(ratios):.2f}; CPU per "
            f"command median: engine process {engine_median:.1f} us, redis-server {redis_median:.1f} us"
        )

    if "concurrent" in only:
        rates = []
        for run in range(args.runs):
            with redis_server(args.fsync, rewrite, args.aof_history) as url:
                rate = asyncio.run(
                    concurrent(url, config_path, setup, main_lines[: args.commands], args.producers)
                )
            rates.append(rate)
            print(
                f"  concurrent run {run + 1}: {rate:,.0f} commands/s over {args.commands:,} "
                f"with {args.producers} producers",
                flush=True,
            )
            progress.advance(bar)
        results["concurrent_per_s"] = {
            "runs": rates,
            "median": statistics.median(rates),
            "producers": args.producers,
        }
        print(f"concurrent producers: median {statistics.median(rates):,.0f} commands/s")

    if "latency" in only:
        runs = []
        for run in range(args.runs):
            machine = steadiness.probe(args.steadiness) if args.steadiness > 0 else []
            with redis_server(args.fsync, rewrite, args.aof_history) as url:
                figures = asyncio.run(latency(url, config_path, setup, main_lines, args.rate, args.seconds))
            if machine:
                figures.update(steadiness.summary(machine))
            runs.append(figures)
            print(
                f"  latency run {run + 1} at {args.rate:,.0f}/s: p50 {figures['p50_ms']:.2f} ms, "
                f"p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms (this process's own "
                f"longest collection meanwhile: {figures['own_gc_max_ms']:.1f} ms)"
                + (
                    f"; Redis rewrote its AOF {figures['aof_rewrites']} times (setup included), its "
                    f"last fork took {figures['redis_fork_ms']:.1f} ms"
                    if rewrite is not None
                    else ""
                ),
                flush=True,
            )
            if machine:
                print(f"    just before it, {steadiness.describe(machine)}", flush=True)
            progress.advance(bar)
        results["latency"] = {
            "runs": runs,
            "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
        }
        print(
            f"latency at {args.rate:,.0f}/s: median p50 {results['latency']['p50_ms_median']:.2f} ms, "
            f"median p99 {results['latency']['p99_ms_median']:.2f} ms"
        )

    if "recovery" in only:
        with redis_server(args.fsync, rewrite, args.aof_history) as url:
            times, cpu = asyncio.run(
                recovery(url, config_path, config, setup, main_lines[: args.tail], args.runs)
            )
        results["recovery_s"] = {"runs": times, "median": statistics.median(times), "tail": args.tail}
        results["recovery_cpu_s"] = {"runs": cpu, "median": statistics.median(cpu)}
        progress.advance(bar)
        print(
            f"recovery from snapshot + {args.tail:,} commands: median {statistics.median(times):.2f} s, "
            f"CPU median {statistics.median(cpu):.2f} s"
        )

    progress.stop()
    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def print_summary(results: dict[str, Any]) -> None:
    """The medians (and the runs) of every figure measured, as one table."""
    table = Table(
        title=f"bench/pipeline.py, appendfsync {results['fsync']}, load average {results['load']:.1f}"
    )
    table.add_column("figure")
    table.add_column("median", justify="right")
    table.add_column("runs", justify="right")
    for key, value in results.items():
        if isinstance(value, dict) and "median" in value:
            runs = " / ".join(f"{run:,.2f}" for run in value["runs"])
            table.add_row(key, f"{value['median']:,.2f}", runs)
    latency = results.get("latency")
    if latency:
        for q in ("p50", "p99"):
            runs = " / ".join(f"{run[q + '_ms']:.2f}" for run in latency["runs"])
            table.add_row(f"latency {q} ms", f"{latency[q + '_ms_median']:.2f}", runs)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
