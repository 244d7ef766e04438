"""The account views' cost per command on the benchmark workload: ``apply`` + ``flush``, CPU time.

    .venv/bin/python bench/accounts.py --commands 100000 --runs 5

The engine runs the workload of ``workload.py`` once, untimed, and keeps each main-phase command's
events together with the ledger entries of the users they name, as they stood right after it. Each
run then builds fresh views, feeds them the setup phase (untimed) and times the main phase alone:
``Accounts.apply`` per command, with a ledger that moves on exactly as the engine's did, and
``Accounts.flush`` every ``--batch`` commands, as the engine service does. The clock is this process's
CPU time (``time.process_time``), so that other work on a shared machine counts less than with a wall
clock; the figure is the median over ``--runs`` runs, minus the cost of the same loop driving views
that do nothing (the ledger's replay). The recorded steps are frozen out of the garbage collector's
sight (``gc.freeze``): they are the bench's own millions of objects, which the service does not hold.

Three listener sets (``Accounts.listening``): ``everyone`` (``None``, every user has a user-data stream
open), ``nobody`` (no stream open) and ``top`` (the ``--top`` most active users, the market makers).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters import TradewireAdapter
from workload import generate

from tradewire.accounts import Accounts
from tradewire.engine import Engine, ExchangeConfig
from tradewire.engine.commands import Command
from tradewire.engine.engine import FEES_USER
from tradewire.engine.events import Event, Trade

Ledger = dict[str, dict[str, list[int]]]
Step = tuple[Command, list[Event], int, list[tuple[str, dict[str, list[int]]]]]
"""A command, its events, its exchange time and the ledger entries it left (user -> asset -> amounts)."""

T0 = 1_700_000_000_000


def _users_of(events: Sequence[Event]) -> list[str]:
    users: dict[str, None] = {}
    for event in events:
        if type(event) is Trade:
            users[event.taker_user] = None
            users[event.maker_user] = None
            users[FEES_USER] = None
        else:
            user = getattr(event, "user", None)
            if user is not None:
                users[user] = None
    return list(users)


def record(config: ExchangeConfig, setup: list[Command], main: list[Command]) -> tuple[Ledger, list[Step]]:
    """Run the engine once: the ledger after the setup, and every main-phase step."""
    engine = Engine(config)
    for command in setup:
        engine.apply(command)
    ledger = {
        user: {asset: list(v) for asset, v in assets.items()} for user, assets in engine.balances.items()
    }
    steps: list[Step] = []
    balances = engine.balances
    for number, command in enumerate(main):
        events = engine.apply(command)
        entries = [
            (user, {asset: list(v) for asset, v in balances.get(user, {}).items()})
            for user in _users_of(events)
        ]
        steps.append((command, events, T0 + number, entries))
    return ledger, steps


class _Idle:
    """Views that do nothing: the loop's own cost."""

    def apply(self, command: Any, events: Any, ts: int, balance_of: Any) -> None:
        pass

    def flush(self) -> list[Any]:
        return []


def warm(config: ExchangeConfig, setup: list[Command], listening: frozenset[str] | None) -> Accounts:
    """Fresh views that have seen the setup phase (deposits and the deep book), flushed."""
    engine = Engine(config)
    accounts = Accounts(config)
    accounts.listening(listening)

    def balance_of(user: str, asset: str) -> tuple[int, int]:
        balance = engine.balances.get(user, {}).get(asset)
        return (balance[0], balance[1]) if balance else (0, 0)

    for number, command in enumerate(setup):
        accounts.apply(command, engine.apply(command), T0 - len(setup) + number, balance_of)
        if number % 2000 == 1999:
            accounts.flush()
    accounts.flush()
    return accounts


def timed(views: Accounts | _Idle, start: Ledger, steps: list[Step], batch: int) -> tuple[float, int]:
    """CPU seconds of ``apply`` over every step and ``flush`` every ``batch``; and the ops flushed."""
    ledger = {user: dict(assets) for user, assets in start.items()}
    get = ledger.get
    empty: dict[str, list[int]] = {}

    def balance_of(user: str, asset: str) -> tuple[int, int]:  # as the engine service reads its ledger
        balance = get(user, empty).get(asset)
        return (balance[0], balance[1]) if balance else (0, 0)

    apply, flush = views.apply, views.flush
    ops = 0
    began = time.process_time()
    for first in range(0, len(steps), batch):
        for command, events, ts, entries in steps[first : first + batch]:
            for user, assets in entries:
                ledger[user] = assets
            apply(command, events, ts, balance_of)
        ops += len(flush())
    return time.process_time() - began, ops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the account views per command on the workload.")
    parser.add_argument("--commands", type=int, default=100_000, help="main-phase commands")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000, help="commands per flush")
    parser.add_argument("--top", type=int, default=20, help="listening users in the 'top' set")
    parser.add_argument(
        "--only", choices=("everyone", "nobody", "top"), action="append", help="listener sets to time"
    )
    args = parser.parse_args(argv)

    workload = generate(args.commands, args.seed)
    adapter = TradewireAdapter()
    adapter.prepare(workload)
    config = adapter.config
    setup, main_commands = adapter.setup, adapter.commands
    start, steps = record(config, setup, main_commands)
    gc.collect()
    gc.freeze()  # the recorded steps are the bench's, not the views': keep the collector off them
    activity = Counter(str(getattr(command, "user", "")) for command in main_commands)
    top = frozenset(user for user, _ in activity.most_common(args.top))
    sets: dict[str, frozenset[str] | None] = {"everyone": None, "nobody": frozenset(), "top": top}
    chosen = args.only or list(sets)
    n = len(steps)
    print(f"{n} commands, flush every {args.batch}, {args.runs} runs; CPU microseconds per command")

    idle = [timed(_Idle(), start, steps, args.batch)[0] for _ in range(args.runs)]
    overhead = statistics.median(idle) / n * 1e6
    print(f"  loop and ledger replay (subtracted): {overhead:.2f}")
    for name in chosen:
        listening = sets[name]
        figures: list[float] = []
        ops = 0
        for _ in range(args.runs):
            seconds, ops = timed(warm(config, setup, listening), start, steps, args.batch)
            figures.append(seconds / n * 1e6 - overhead)
        shown = " ".join(f"{figure:.2f}" for figure in figures)
        print(
            f"  {name:9} median {statistics.median(figures):6.2f}  (runs: {shown})  "
            f"{ops / n:.2f} Redis ops per command in the last run"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
