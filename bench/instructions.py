"""The engine's cost per command counted in instructions and cache misses, not timed.

    .venv/bin/python bench/instructions.py --commands 30000                  # the pure engine
    .venv/bin/python bench/instructions.py --commands 30000 --engine native  # its native core
    .venv/bin/python bench/instructions.py --tree /path/to/another/checkout   # the same count there
    .venv/bin/python bench/instructions.py --service --commands 20000        # the engine service's core

Wall-clock figures on a shared virtual machine move by 1.5x from one minute to the next; the number
of instructions a run executes does not. Under ``valgrind --tool=callgrind`` (and ``cachegrind`` for
the level-1 data-cache misses, with ``--cache``), the workload of ``workload.py`` runs twice in a
child process: once with its setup phase only, once with the setup and the first ``--commands``
commands of its main phase. The difference, divided by ``--commands``, is what one command costs,
whatever the machine does meanwhile. ``--tree`` runs the child against another checkout of tradewire
(``PYTHONPATH``), for an A/B of two versions or of a compiled build. ``--service`` counts the engine
service's pure core instead, what the ``tradewire engine`` process does per command without I/O:
``Core.batch`` (decoding, the engine, market data, the account views, events and replies) and the
packing of each batch's transaction, in batches of ``--batch`` commands, nobody listening for user
data, as in ``bench/pipeline.py``'s throughput run. Needs Debian's ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent


def _child(workload_file: str, count: int) -> None:
    """What runs under valgrind: the setup, then ``count`` commands of the main phase."""
    from tradewire.engine import ExchangeConfig
    from tradewire.engine.native import fastest_engine

    with open(workload_file, "rb") as f:
        config, setup, main = pickle.load(f)
    engine = fastest_engine(ExchangeConfig.from_dict(config))
    if type(engine).__name__ != os.environ["TRADEWIRE_COUNTED"]:
        raise SystemExit(f"asked to count {os.environ['TRADEWIRE_COUNTED']}, got {type(engine).__name__}")
    apply = engine.apply
    for command in setup:
        apply(command)
    for command in main[:count]:
        apply(command)


T0 = 1_700_000_000_000


def _service_child(workload_file: str, count: int) -> None:
    """What runs under valgrind with ``--service``: the setup's batches, then ``count`` commands'."""
    from tradewire.engine import ExchangeConfig
    from tradewire.journal.core import Core
    from tradewire.journal.entries import CommandEntry
    from tradewire.journal.wire import pack_commands

    with open(workload_file, "rb") as f:
        config, setup, main, batch = pickle.load(f)
    core = Core(ExchangeConfig.from_dict(config))
    core.accounts.listening(frozenset())

    def entries(lines: list[bytes], first: int, src: bytes) -> list[CommandEntry]:
        return [
            CommandEntry(b"%d-%d" % (T0 + n // 10, n % 10), line, T0 + n // 10, b"%032x" % n, src)
            for n, line in enumerate(lines, first)
        ]

    for phase in (entries(setup, 0, b""), entries(main[:count], len(setup), b"bench")):
        for start in range(0, len(phase), batch):
            pack_commands(core.batch(phase[start : start + batch], b"e1"), b"", b"")


def _counted(tool: list[str], pattern: str, workload_file: str, count: int, tree: Path, engine: str) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [*tool, f"--{tool[1].split('=')[1]}-out-file={scratch}/out", sys.executable, __file__,
             "--service-child" if engine == "service" else "--child", workload_file, str(count)],
            env={
                **os.environ,
                "PYTHONPATH": str(tree),
                "TRADEWIRE_ENGINE": "native" if engine == "service" else engine,
                "TRADEWIRE_COUNTED": "Engine" if engine == "pure" else "NativeEngine",
                # str hashes are salted per process: dicts and sets lay out, and so probe,
                # differently from run to run (1-2 % of the count); one seed makes it repeat
                "PYTHONHASHSEED": "0",
            },
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
    found = re.search(pattern, done.stderr)
    if found is None:
        raise SystemExit(f"no count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Count the engine's instructions per command.")
    parser.add_argument("--commands", type=int, default=30_000, help="commands of the main phase counted")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the tradewire checkout to count")
    parser.add_argument("--cache", action="store_true", help="also count level-1 data-cache misses")
    parser.add_argument("--engine", choices=("pure", "native"), default="pure", help="which engine to count")
    parser.add_argument("--service", action="store_true", help="count the engine service's core instead")
    parser.add_argument("--batch", type=int, default=2_000, help="commands per batch, with --service")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--service-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return 0
    if args.service_child:
        _service_child(args.service_child[0], int(args.service_child[1]))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")

    import orjson
    from adapters import TradewireAdapter
    from workload import command_dict, generate

    workload = generate(commands=args.commands, seed=args.seed)
    if args.service:
        args.engine = "service"
        setup, main = (
            [orjson.dumps(command_dict(op, workload.markets)) for op in ops]
            for ops in (workload.setup, workload.main)
        )
        counted = (workload.config(), setup, main, args.batch)
    else:
        adapter = TradewireAdapter()
        adapter.prepare(workload)
        counted = (workload.config(), adapter.setup, adapter.commands)
    with tempfile.NamedTemporaryFile(suffix=".pickle") as f:
        pickle.dump(counted, f)
        f.flush()
        callgrind = ["valgrind", "--tool=callgrind"]
        instructions = [
            _counted(callgrind, r"Collected : (\d+)", f.name, n, args.tree, args.engine)
            for n in (0, args.commands)
        ]
        per_command = (instructions[1] - instructions[0]) / args.commands
        what = f"the service's core (batches of {args.batch:,})" if args.service else f"{args.engine} engine"
        print(f"tree {args.tree}, {what}: {per_command:,.0f} instructions per command")
        if args.cache:
            cachegrind = ["valgrind", "--tool=cachegrind", "--cache-sim=yes"]
            misses = [
                _counted(cachegrind, r"D1  misses:\s+([\d,]+)", f.name, n, args.tree, args.engine)
                for n in (0, args.commands)
            ]
            per_command = (misses[1] - misses[0]) / args.commands
            what = "level-1 data-cache misses per command"
            print(f"tree {args.tree}, {args.engine}: {per_command:,.0f} {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
