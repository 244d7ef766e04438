"""The kept best levels (``BookSide.head``) and everything reused from them must equal a computation
from scratch: every diff's checksum and ``top``, across snapshots and recovery's ``settle``, and the
builder's ``depth20`` payloads.

The books are driven by random level changes on a price grid wide enough for deep books (more than
``CHECKSUM_DEPTH`` levels a side), with changes aimed at the 25th level and its neighbours, where a
wrong invalidation rule shows first.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.marketdata.harness import CONFIG
from tradewire.keys import MDPUB, RedisOp
from tradewire.marketdata.builder import PARTIAL_DEPTH, MarketData
from tradewire.marketdata.checksum import CHECKSUM_DEPTH, book_checksum
from tradewire.marketdata.depth import BookSide, DepthBook, DepthState
from tradewire.marketdata.updates import PriceLevel

MARKET = "BTC-USDT"
BASE = CONFIG.markets[MARKET].base.precision
QUOTE = CONFIG.markets[MARKET].quote.precision
TICK: int = 10**QUOTE // 100
LOT: int = 10**BASE // 1000
GRID = 90
"""Price steps a side spans: room for 45 levels on the even steps and new levels between them."""
BID0: int = 50_000 * 10**QUOTE
ASK0: int = 50_001 * 10**QUOTE
"""The best possible bid and ask; bids go down from ``BID0``, asks up from ``ASK0``."""

Op = tuple[Any, ...]

qtys = st.sampled_from([0, 1, 2, 7, 1000]).map(lambda lots: lots * LOT)
# set the level at ``rank`` (0: the best) of the book now, or a price one step from it
rank_strategy = st.tuples(
    st.just("rank"),
    st.booleans(),
    st.sampled_from([0, 1, 19, 20, 23, 24, 24, 24, 25, 26, 40]),
    st.sampled_from([-1, 0, 0, 0, 1]),
    qtys,
)
ops_strategy: st.SearchStrategy[list[Op]] = st.lists(
    st.one_of(
        # set the level ``step`` steps away from the best possible price to ``qty`` (0: remove it)
        st.tuples(st.just("set"), st.booleans(), st.integers(0, GRID - 1), qtys),
        rank_strategy,
        rank_strategy,
        st.tuples(st.just("end")),
        st.tuples(st.just("diff")),
        st.tuples(st.just("restore")),
        st.tuples(st.just("settle")),
    ),
    max_size=120,
)
side_strategy = st.sampled_from([0, 1, 5, 24, 25, 26, 30, 45]).flatmap(
    lambda n: st.lists(st.integers(1, 5), min_size=n, max_size=n)
)
initial_strategy = st.tuples(side_strategy, side_strategy)
"""Each side's initial levels in lots, best first, on every other price step: empty to 45 levels
(around ``CHECKSUM_DEPTH`` more often than a uniform draw would give)."""


def examples(test: Any) -> Any:
    """The cases a wrong invalidation rule fails first, whatever the random draws find."""
    deep = [1] * 30
    cases: list[tuple[tuple[list[int], list[int]], list[Op]]] = [
        ((deep, deep), [("rank", True, 24, 0, 2 * LOT), ("diff",)]),  # the 25th level's qty
        ((deep, [1] * 25), [("rank", False, 24, 0, 0), ("diff",)]),  # the 25th level removed
        ((deep, deep), [("rank", False, 24, 1, LOT), ("diff",), ("rank", False, 24, -1, LOT), ("diff",)]),
        (([1] * 24, []), [("rank", True, 40, 0, LOT), ("diff",)]),  # a 25th level added below
        (([], []), [("set", False, 3, LOT), ("diff",), ("set", False, 3, 0), ("diff",)]),
        ((deep, deep), [("restore",), ("rank", True, 24, 0, 0), ("settle",), ("rank", True, 24, 0, 0)]),
    ]
    for initial, ops in cases:
        test = example(initial=initial, ops=ops)(test)
    return test


def price_of(is_bid: bool, step: int) -> int:
    return BID0 - step * TICK if is_bid else ASK0 + step * TICK


def ranked(levels: dict[int, int], is_bid: bool) -> list[PriceLevel]:
    """All the levels, best first, from the plain dict the test keeps."""
    return sorted(levels.items(), reverse=is_bid)


class Driver:
    """Turns ops into level changes, keeping a plain model of the book (``price -> qty`` per side)."""

    def __init__(self, initial: tuple[list[int], list[int]]) -> None:
        self.model: dict[bool, dict[int, int]] = {True: {}, False: {}}
        self.initial = [
            (is_bid, price_of(is_bid, 2 * step), lots * LOT)
            for is_bid, side in ((True, initial[0]), (False, initial[1]))
            for step, lots in enumerate(side)
        ]

    def target(self, op: Op) -> tuple[bool, int, int]:
        """``(is_bid, price, qty)`` that an op sets."""
        if op[0] == "set":
            _, is_bid, step, qty = op
            return is_bid, price_of(is_bid, step), qty
        _, is_bid, rank, offset, qty = op
        levels = ranked(self.model[is_bid], is_bid)
        price = levels[rank][0] if rank < len(levels) else price_of(is_bid, GRID - 1)
        return is_bid, price - offset * TICK if is_bid else price + offset * TICK, qty

    def delta(self, is_bid: bool, price: int, qty: int) -> int:
        """The change that takes the level at ``price`` to ``qty``, applied to the model."""
        side = self.model[is_bid]
        delta = qty - side.get(price, 0)
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        return delta

    def expected_top(self, limit: int) -> tuple[list[PriceLevel], list[PriceLevel]]:
        return ranked(self.model[True], True)[:limit], ranked(self.model[False], False)[:limit]


def published_on(ops: list[RedisOp], stream: str) -> list[Any]:
    """The payloads that ``ops`` publish on one of the market's streams, decoded."""
    payloads = []
    for op in ops:
        if op[:3] == (MDPUB, MARKET, stream):
            payload = op[3]
            assert isinstance(payload, bytes)
            payloads.append(orjson.loads(payload))
    return payloads


def check_book(book: DepthBook, driver: Driver) -> None:
    """``top`` and a fresh checksum equal the model's, and the sides' own ``top`` agrees."""
    bids, asks = driver.expected_top(CHECKSUM_DEPTH)
    assert book.top == (bids, asks)
    assert (book.bids.top(CHECKSUM_DEPTH), book.asks.top(CHECKSUM_DEPTH)) == (bids, asks)
    assert book.checksum() == book_checksum(bids, asks, BASE, QUOTE)


@settings(max_examples=400, deadline=None)
@given(initial=initial_strategy, ops=ops_strategy)
@examples
def test_depth_book_heads_and_checksums_equal_a_computation_from_scratch(
    initial: tuple[list[int], list[int]], ops: list[Op]
) -> None:
    driver = Driver(initial)
    book = DepthBook(MARKET, BASE, QUOTE)
    for is_bid, price, qty in driver.initial:
        book.change(is_bid, price, driver.delta(is_bid, price, qty))
    book.end_command(1)
    book.take_diff()  # the heads are kept from the first diff on
    check_book(book, driver)
    for ts, op in enumerate([*ops, ("diff",)], 2):
        if op[0] in ("set", "rank"):
            is_bid, price, qty = driver.target(op)
            book.change(is_bid, price, driver.delta(is_bid, price, qty))
        elif op[0] == "end":
            book.end_command(ts)
        elif op[0] == "diff":
            book.end_command(ts)
            diff = book.take_diff()
            if diff is not None:
                bids, asks = driver.expected_top(CHECKSUM_DEPTH)
                assert diff.checksum == book_checksum(bids, asks, BASE, QUOTE)
                check_book(book, driver)
        elif op[0] == "restore":  # between commands, as snapshots are taken
            book.end_command(ts)
            data = msgspec.msgpack.encode(book.to_state())
            state = msgspec.msgpack.decode(data, type=DepthState)
            book = DepthBook.from_state(MARKET, BASE, QUOTE, state)
            assert msgspec.msgpack.encode(book.to_state()) == data
        else:  # recovery: the sides from the engine's levels, then the state a diff leaves
            book.end_command(ts)
            book.bids = BookSide(is_bid=True, levels=driver.model[True])
            book.asks = BookSide(is_bid=False, levels=driver.model[False])
            book.settle()
            check_book(book, driver)


@settings(max_examples=200, deadline=None)
@given(initial=initial_strategy, ops=ops_strategy)
@examples
def test_builder_depth20_and_checksums_equal_a_computation_from_scratch(
    initial: tuple[list[int], list[int]], ops: list[Op]
) -> None:
    """Every flush publishes ``depth20`` exactly when the best 20 levels moved since the last one,
    with the levels from scratch, and every diff carries the checksum from scratch."""
    driver = Driver(initial)
    md = MarketData(CONFIG)
    published: tuple[list[PriceLevel], list[PriceLevel]] = ([], [])
    """What a ``depth20`` subscriber holds."""
    ts = 0

    def change(is_bid: bool, price: int, qty: int) -> None:
        delta = driver.delta(is_bid, price, qty)
        if delta:  # what MarketData.apply does for an event that moves a level
            view = md._views[MARKET]
            view.depth.change(is_bid, price, delta)
            view.dirty = True

    def flush() -> None:
        nonlocal published
        md._views[MARKET].depth.end_command(ts)
        ops = md.flush()
        bids, asks = driver.expected_top(CHECKSUM_DEPTH)
        diffs = published_on(ops, "depth")
        for diff in diffs:
            assert diff["cs"] == book_checksum(bids, asks, BASE, QUOTE)
        depth20 = published_on(ops, "depth20")
        expected = driver.expected_top(PARTIAL_DEPTH)
        render = md._views[MARKET].render
        if depth20:
            (payload,) = depth20
            assert expected != published
            assert (payload["bids"], payload["asks"]) == (
                render.levels(expected[0]),
                render.levels(expected[1]),
            )
            published = expected
        elif diffs:
            assert expected == published

    for is_bid, price, qty in driver.initial:
        change(is_bid, price, qty)
    flush()
    for op in ops:
        ts += 1
        if op[0] in ("set", "rank"):
            change(*driver.target(op))
        elif op[0] in ("end", "diff"):
            md._views[MARKET].depth.end_command(ts)
            if op[0] == "diff":
                flush()
        elif op[0] == "restore":  # between commands, flushed or not
            md._views[MARKET].depth.end_command(ts)
            md = MarketData.from_state(CONFIG, md.to_state())
        else:  # recovery ends with the engine's levels, and the state a flush leaves
            md._views[MARKET].depth.end_command(ts)
            md.settle({MARKET: (ranked(driver.model[True], True), ranked(driver.model[False], False))})
            published = driver.expected_top(PARTIAL_DEPTH)
    flush()


held_ops_strategy: st.SearchStrategy[list[Op]] = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.booleans(), st.integers(0, GRID - 1), qtys),
        rank_strategy,
        st.tuples(st.just("diff")),  # a batch that enters a new slot: publishes what waits
        st.tuples(st.just("hold")),  # a batch in the same slot: holds depth20
        st.tuples(st.just("lost")),  # a batch that holds, then a tick that fails, then refresh()
        st.tuples(st.just("restore")),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(initial=initial_strategy, ops=held_ops_strategy)
@example(initial=([1], []), ops=[("rank", True, 0, 0, 0), ("lost",)])  # the book emptied, lost
@example(initial=([1], []), ops=[("rank", True, 0, 0, 0), ("hold",), ("restore",), ("lost",)])
def test_held_depth20_carries_the_last_diff_id_and_subscribers_end_with_the_book(
    initial: tuple[list[int], list[int]], ops: list[Op]
) -> None:
    """A flush without ``slow`` publishes no ``depth20``; one with it publishes the book as of the
    last diff, with that diff's ``u`` as ``lastUpdateId``. A tick whose transaction failed, followed
    by ``refresh()`` (as the engine service does), loses nothing: after a last flush with ``slow``
    a ``depth20`` subscriber holds the book, an empty one too."""
    driver = Driver(initial)
    md = MarketData(CONFIG)
    published: tuple[list[PriceLevel], list[PriceLevel]] = ([], [])
    last_u = 0
    ts = 0

    def change(is_bid: bool, price: int, qty: int) -> None:
        delta = driver.delta(is_bid, price, qty)
        if delta:
            view = md._views[MARKET]
            view.depth.change(is_bid, price, delta)
            view.dirty = True

    def flush(slow: bool) -> None:
        nonlocal published, last_u, ts
        ts += 1
        md._views[MARKET].depth.end_command(ts)
        ops = md.flush(slow)
        for diff in published_on(ops, "depth"):
            assert diff["pu"] == last_u
            last_u = diff["u"]
        depth20 = published_on(ops, "depth20")
        assert slow or not depth20, "held"
        expected = driver.expected_top(PARTIAL_DEPTH)
        render = md._views[MARKET].render
        for payload in depth20:
            assert payload["lastUpdateId"] == last_u
            assert (payload["bids"], payload["asks"]) == (
                render.levels(expected[0]),
                render.levels(expected[1]),
            )
            published = expected

    for is_bid, price, qty in driver.initial:
        change(is_bid, price, qty)
    flush(True)
    for op in ops:
        if op[0] in ("set", "rank"):
            change(*driver.target(op))
        elif op[0] == "diff":
            flush(True)
        elif op[0] == "hold":
            flush(False)
        elif op[0] == "lost":
            flush(False)
            md.flush(True)  # the tick's transaction fails: nobody sees it
            md.refresh()
        else:  # a snapshot, flushed or not
            ts += 1
            md._views[MARKET].depth.end_command(ts)
            md = MarketData.from_state(CONFIG, md.to_state())
    flush(True)
    assert published == driver.expected_top(PARTIAL_DEPTH)
    assert not md.holds()
