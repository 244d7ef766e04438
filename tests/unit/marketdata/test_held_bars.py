"""The bars' cache writes wait for a flush with ``slow`` (a new 100-ms slot of exchange time, or
the engine's tick): whatever the flushes in between, and across an engine that stops and recovers,
the cache ends as if every batch had been flushed with ``slow``."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.marketdata.harness import CONFIG, DAY0, Cache, Exchange, limit, market_order
from tradewire.engine import Event
from tradewire.marketdata.builder import SLOW_STREAMS_MS, MarketData

STEPS = st.lists(
    st.tuples(
        st.sampled_from(["rest_sell", "rest_buy", "take_buy", "take_sell"]),
        st.sampled_from(["99", "100", "101", "102"]),
        st.sampled_from(["0.1", "0.3", "1"]),
        st.sampled_from([0, 1, 30, 99, 100, 250, 999, 1_000, 61_000, 3_600_000]),
        st.integers(1, 3),  # commands in the batch
    ),
    min_size=1,
    max_size=40,
)


def _command(kind: str, price: str, qty: str) -> dict[str, Any]:
    if kind == "rest_sell":
        return limit("alice", "sell", price, qty)
    if kind == "rest_buy":
        return limit("bob", "buy", price, qty)
    return market_order("carol", "buy" if kind == "take_buy" else "sell", qty)


def _kept(cache: Cache) -> dict[str, Any]:
    """The caches a slot may hold back (bars) and those it may not (ticker, depth, trades)."""
    return {
        "bars": {key: dict(zset) for key, zset in cache.zsets.items() if zset},
        "ticker": {key: value for key, value in cache.strings.items() if key.endswith(":ticker")},
        "depth": {key: dict(fields) for key, fields in cache.hashes.items()},
        "trades": dict(cache.lists),
    }


@settings(max_examples=150, deadline=None)
@given(steps=STEPS, stop=st.integers(0, 40), snapshot=st.integers(0, 40))
def test_bars_held_to_the_slot_end_in_the_cache_every_batch_would_have_written(
    steps: list[tuple[str, str, str, int, int]], stop: int, snapshot: int
) -> None:
    ex = Exchange()  # flushed as the engine service does: slow when exchange time enters a new slot
    ex.fund()
    ex.flush()
    eager = MarketData(CONFIG)  # flushed with slow after every batch
    eager_ex = Exchange(eager)
    eager_ex.fund()
    eager_ex.flush()
    snapshot, stop = min(snapshot, stop), min(stop, len(steps))
    saved: bytes | None = None
    since_snapshot: list[tuple[list[Event], int]] = []
    ts = previous = DAY0
    for index, (kind, price, qty, dt, count) in enumerate(steps):
        if index == snapshot:
            saved = ex.md.to_state()  # right after a batch, as the service takes it
            since_snapshot = []
        ts += dt
        for _ in range(count):
            events = ex.send(_command(kind, price, qty), ts)
            eager_ex.md.apply(events, ts)
            since_snapshot.append((events, ts))
        ex.flush(slow=ts // SLOW_STREAMS_MS != previous // SLOW_STREAMS_MS)
        eager_ex.flush(slow=True)
        previous = ts
        if index + 1 == stop and saved is not None:
            # the engine stops here: recovery restores the snapshot, replays the tail silently,
            # settles with the engine's books and asks for what may have been held back
            ex.md = ex.recovered(saved, since_snapshot)
    ex.flush(slow=True)  # the tick when commands stop
    eager_ex.flush(slow=True)
    assert not ex.md.holds()
    assert _kept(ex.cache) == _kept(eager_ex.cache)
