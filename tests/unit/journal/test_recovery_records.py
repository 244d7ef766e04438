"""The premise of recovery's fast path, over many random runs: the order records the live batches
write (``tw:orders:<user>``) are, at any batch end, exactly the open orders a silent replay that
follows them would hold. Live batches of random sizes, with random listeners and snapshots, are
"crashed" at random batch ends and recovered both ways, in memory: each must equal the live state
byte for byte, and produce the same ops for the next batch. (The Redis side of the fast path,
``recover()``, is tested on a real server in ``tests/integration/journal/test_service.py``.)"""

from __future__ import annotations

import random

import pytest

from tests.strategies import VECTORS_CONFIG, random_stream
from tradewire.accounts.records import OrderState
from tradewire.engine import ExchangeConfig
from tradewire.journal.core import Core, Op
from tradewire.journal.entries import CommandEntry
from tradewire.journal.recovery import _agrees

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)
EPOCH = b"0123456789abcdef"
Records = dict[str, dict[str, bytes]]


def _keep_order_records(records: Records, ops: list[Op]) -> None:
    """What Redis keeps of a batch's order records (``HSET tw:orders:<user> id record ...``) and
    closed orders (``ZADD tw:closed:<user> id member ...``; nothing is trimmed at the default
    history of 10,000)."""
    for op in ops:
        if op[0] == "HSET" and str(op[1]).startswith("tw:orders:"):
            fields = records.setdefault(str(op[1]), {})
            for name, value in zip(op[2::2], op[3::2], strict=True):
                fields[str(name)] = value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        elif op[0] == "ZADD" and str(op[1]).startswith("tw:closed:"):
            members = records.setdefault(str(op[1]), {})
            for name, value in zip(op[2::2], op[3::2], strict=True):
                members[str(value)] = b"%d" % int(name)  # type: ignore[call-overload]


def _recovered(entries: list[CommandEntry], snapshot: tuple[int, bytes] | None, applied: int,
               records: Records, from_records: bool) -> Core:  # fmt: skip
    """The core ``recover()`` builds, its Redis reads answered from ``records``."""
    position, state = snapshot if snapshot is not None else (0, None)
    core = Core.from_state(CONFIG, state) if state is not None else Core(CONFIG)
    tail = entries[position:applied]
    core.replay_raw(
        [(e.entry_id, [b"c", e.command, b"ts", b"%d" % e.ts]) for e in tail], accounts=not from_records
    )
    core.settle()
    if from_records and tail:
        orders: dict[int, OrderState] = {}
        for order_id, order in core.engine.as_pure().orders.items():
            state_now = core.accounts.open.get(order_id)
            if state_now is None or not _agrees(state_now, order):
                record = records[f"tw:orders:{order.user}"][str(order_id)]
                state_now = core.accounts.order_from_record(record, order.user, order.market)
                assert _agrees(state_now, order), (order, state_now)
            orders[order_id] = state_now
        core.accounts.restore_open(orders)
        users = core.engine.as_pure().balances
        core.accounts.restore_closed_counts({u: len(records.get(f"tw:closed:{u}", {})) for u in users})
    return core


@pytest.mark.parametrize("seed", range(12))
def test_order_records_are_what_following_the_orders_gives_at_every_crash_point(seed: int) -> None:
    rng = random.Random(seed)
    step = rng.choice([0, 7, 1000])
    entries = [
        CommandEntry(
            b"%d-%d" % (1_700_000_000_000 + i * step, i),
            line.encode(),
            1_700_000_000_000 + i * step,
            b"r",
            b"s",
        )
        for i, line in enumerate(random_stream(seed=seed, length=rng.choice([400, 900])))
    ]
    batch, every = rng.choice([1, 3, 9, 40]), rng.choice([60, 250, 10**9])
    live, records = Core(CONFIG), {}
    snapshot: tuple[int, bytes] | None = None
    done = since = crashes = 0
    while done < len(entries):
        live.accounts.listening(
            rng.choice([None, frozenset(), frozenset(rng.sample(["alice", "bob", "carol"], 2))])
        )
        chunk = entries[done : done + batch]
        _keep_order_records(records, live.batch(chunk, EPOCH))
        done += len(chunk)
        since += len(chunk)
        if since >= every:
            snapshot, since = (done, live.to_state()), 0
        if rng.random() < 0.1 or done == len(entries) or (crashes == 0 and done >= len(entries) // 2):
            crashes += 1
            live.tick(EPOCH)  # what its last batch held back of klines and tickers (recovery renders anew)
            expected = live.to_state()
            following = _recovered(entries, snapshot, done, records, from_records=False)
            reading = _recovered(entries, snapshot, done, records, from_records=True)
            assert following.to_state() == expected
            assert reading.to_state() == expected
            after = entries[done : done + 30]
            if after:
                twin = Core.from_state(CONFIG, expected)
                assert reading.batch(after, EPOCH) == twin.batch(after, EPOCH)
    assert crashes > 1
