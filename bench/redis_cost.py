"""What the engine's transactions cost Redis, per journal command, and which kind of op costs what.

    python bench/redis_cost.py --commands 60000 --runs 3 [--fsync always|everysec]

The engine service's core (``Core.batch``, nobody listening for user data) turns the workload of
``workload.py`` into its batches' transactions in this process, once, untimed. Each run then starts a
fresh ``redis-server`` (AOF on) and sends it those transactions, one ``MULTI/EXEC`` at a time as the
engine does, waiting for each answer; the figure is redis-server's CPU time (``/proc``) per journal
command, which a shared machine moves far less than a rate. The same transactions are sent again
with one kind of op left out (the events ``XADD``, the users' trade-stream ``XADD``s, the order
record and balance ``HSET``s, the open and closed order sets, the bus script): the difference is
what that kind costs Redis, queueing, executing and appending to the AOF included. The journal's own
``XADD``s and the engine's ``XREAD`` are not in it (``bench/pipeline.py`` measures the whole).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import hiredis
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import redis_server
from workload import command_dict, generate

from tradewire.engine import ExchangeConfig
from tradewire.journal.core import Core, Op
from tradewire.journal.entries import CommandEntry
from tradewire.journal.wire import pack, pack_commands

T0 = 1_700_000_000_000
BATCH = 2_000
_MULTI, _EXEC = pack((b"MULTI",)), pack((b"EXEC",))


def _text(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def kind(op: Op) -> str:
    """The op's command, with the two streams the engine appends to told apart."""
    name = _text(op[0]).decode().upper()
    if name == "XADD":
        return "XADD events" if b":events" in _text(op[1]) else "XADD trades"
    return name


VARIANTS: dict[str, Callable[[str], bool]] = {
    "everything": lambda k: True,
    "without the events XADD": lambda k: k != "XADD events",
    "without the users' trade XADDs": lambda k: k != "XADD trades",
    "without the HSETs (orders, balances)": lambda k: k != "HSET",
    "without ZADD / ZREM (order sets)": lambda k: k not in ("ZADD", "ZREM"),
    "without the bus script (EVALSHA)": lambda k: k != "EVALSHA",
}


def transactions(commands: int, seed: int) -> tuple[list[list[Op]], int]:
    """The main phase's transactions (after an untimed setup), and how many commands they carry."""
    workload = generate(commands, seed)
    config = ExchangeConfig.from_dict(workload.config())
    core = Core(config)
    core.accounts.listening(frozenset())

    def entries(ops: Sequence[object], start: int, src: bytes) -> list[CommandEntry]:
        out = []
        for number, op in enumerate(ops, start):
            line = orjson.dumps(command_dict(op, workload.markets))
            ms = T0 + number // 10
            out.append(CommandEntry(b"%d-%d" % (ms, number % 10), line, ms, b"%032x" % number, src))
        return out

    setup = entries(workload.setup, 0, b"")
    main = entries(workload.main, len(setup), b"bench")
    for start in range(0, len(setup), BATCH):
        core.batch(setup[start : start + BATCH], b"e1")
    return [core.batch(main[start : start + BATCH], b"e1") for start in range(0, len(main), BATCH)], len(main)


def redis_cpu(url: str, batches: list[list[Op]], keep: Callable[[str], bool]) -> float:
    """redis-server's CPU seconds for running ``batches`` (ops of the kinds ``keep`` says)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(pack((b"INFO", b"server")))
        reader = hiredis.Reader()
        info: object = False
        while info is False:
            reader.feed(sock.recv(1 << 16))
            info = reader.gets()
        assert isinstance(info, bytes)
        pid = int(info.split(b"process_id:")[1].split(b"\r\n")[0])
        before = _cpu(pid)
        for ops in batches:
            kept = [op for op in ops if kind(op) == "SCRIPT" or keep(kind(op))]
            sock.sendall(pack_commands(kept, _MULTI, _EXEC))
            answered = 0
            while answered < len(kept) + 2:
                reader.feed(sock.recv(1 << 20))
                while reader.gets() is not False:
                    answered += 1
        return _cpu(pid) - before


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fsync", choices=["always", "everysec"], default="always")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"building the transactions of {args.commands:,} commands ...", flush=True)
    batches, commands = transactions(args.commands, args.seed)
    counts: dict[str, int] = {}
    for ops in batches:
        for op in ops:
            counts[kind(op)] = counts.get(kind(op), 0) + 1
    print("Redis commands per journal command: " + ", ".join(
        f"{name} {count / commands:.2f}" for name, count in sorted(counts.items(), key=lambda kv: -kv[1])
    ))  # fmt: skip
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.runs):  # the variants alternate within each run: the hour moves them alike
        for name, keep in VARIANTS.items():
            with redis_server(args.fsync) as url:
                results[name].append(redis_cpu(url, batches, keep) / commands * 1e6)
    full = statistics.median(results["everything"])
    table = Table(
        title=f"redis-server CPU per journal command, appendfsync {args.fsync}, median of {args.runs}"
    )
    table.add_column("transactions")
    table.add_column("us per command", justify="right")
    table.add_column("that kind costs", justify="right")
    table.add_column("runs", justify="right")
    for name, values in results.items():
        median = statistics.median(values)
        cost = "" if name == "everything" else f"{full - median:.1f}"
        table.add_row(name, f"{median:.1f}", cost, " / ".join(f"{v:.1f}" for v in values))
    Console(width=120).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
