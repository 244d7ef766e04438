"""The native core against the pure engine: the same events for every stream, the same state after it.

The pure engine is the definition (it is itself held to the spec's examples and to a separate
reference model); the native core must match it event for event, and its state, handed over to a
pure engine, must be the pure engine's own: balances (which entries exist, not only their values),
every order in queue order, client ids and id counters.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from tests.strategies import VECTORS_CONFIG, command_streams, random_stream
from tests.unit.engine.profile import ENGINE_SETTINGS
from tradewire.engine import Engine, ExchangeConfig, decode
from tradewire.engine._native import LIMIT, NativeEngine, supports
from tradewire.engine.native import built, fastest_engine
from tradewire.replay import replay_lines

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)


def state_of(engine: Engine) -> dict[str, Any]:
    """Everything an engine holds, in a form that compares by value."""
    return {
        "next_order_id": engine.next_order_id,
        "balances": engine.balances,
        "books": {
            name: {
                "next_trade_id": book.next_trade_id,
                "bids": [(o.order_id, o.user, o.price, o.qty, o.client_id) for o in book.bids.orders()],
                "asks": [(o.order_id, o.user, o.price, o.qty, o.client_id) for o in book.asks.orders()],
                "depth": (book.bids.depth(), book.asks.depth()),
            }
            for name, book in engine.books.items()
        },
        "orders": {k: (o.user, o.market, o.is_buy, o.price, o.qty) for k, o in engine.orders.items()},
        "client_ids": {k: o.order_id for k, o in engine.client_ids.items()},
    }


def run_both(lines: list[str]) -> bool:
    """Apply ``lines`` to both engines, asserting equal events at every command and equal state at the
    end; returns whether the native core handed its state over on the way."""
    pure, native = Engine(CONFIG), NativeEngine(CONFIG)
    for index, line in enumerate(lines):
        command = decode(line)
        want, got = pure.apply(command), native.apply(command)
        assert got == want, f"command {index} {line}: native {got} != pure {want}"
    handed_over = native.handed_over
    assert state_of(native.pure()) == state_of(pure)
    assert native.handed_over  # pure() hands over for good
    return handed_over


def deposit(user: str, asset: str, amount: str) -> str:
    return json.dumps({"type": "deposit", "user": user, "asset": asset, "amount": amount})


def order(user: str, side: str, price: str, qty: str, **extra: Any) -> str:
    command = {"type": "new_order", "user": user, "market": "BTC-USDT", "side": side, "kind": "limit"}
    return json.dumps({**command, "price": price, "qty": qty, **extra})


BOOK = [
    deposit("alice", "USDT", "1000000"),
    deposit("alice", "BTC", "100"),
    deposit("bob", "USDT", "1000000"),
    deposit("bob", "BTC", "100"),
    order("alice", "buy", "99.5", "2", client_id="a"),
    order("alice", "buy", "99.5", "1"),
    order("bob", "buy", "98", "3", client_id="b"),
    order("alice", "sell", "101", "2", client_id="c"),
    order("bob", "sell", "101", "1.5"),
    order("bob", "sell", "103", "4"),
]
"""Both sides of BTC-USDT, several orders a level, some named by client id."""

AFTER = [
    json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", "client_id": "a"}),
    order("bob", "sell", "99", "1.2", stp="expire_both"),
    order("alice", "buy", "102", "5", tif="IOC"),
    order("carol", "buy", "100", "1"),
]
"""What must still come out the same after a hand-over: a cancel by client id, fills, an IOC."""


def test_the_native_core_is_built_here() -> None:
    """The project's install builds it; a silent fall-back to the pure engine would pass every other test."""
    assert built()
    assert isinstance(fastest_engine(CONFIG), NativeEngine)


@ENGINE_SETTINGS
@given(command_streams(max_commands=120))
def test_native_core_with_any_command_stream_matches_the_pure_engine(lines: list[str]) -> None:
    run_both(lines)


@pytest.mark.parametrize("seed", [21, 22, 23, 24])
def test_native_core_with_a_long_seeded_stream_matches_the_pure_engine(seed: int) -> None:
    run_both(random_stream(seed, length=3000))


def test_a_book_traded_through_stays_native_and_matches() -> None:
    assert not run_both(BOOK + AFTER)


@pytest.mark.parametrize(
    "beyond",
    [
        deposit("carol", "BTC", "50000000000"),  # 5e18 units: above 2**62 on its own
        order("alice", "buy", "99999999999999", "1"),  # a price of 1e20 units
        order("alice", "sell", "101", "50000000000"),  # a quantity of 5e18 units
        json.dumps(
            {"type": "new_order", "user": "bob", "market": "BTC-USDT", "side": "buy", "kind": "market"}
            | {"quote_qty": "9999999999999"}
        ),
    ],
    ids=["deposit", "price", "qty", "quote_qty"],
)
def test_a_value_beyond_the_native_bounds_hands_the_state_to_the_pure_engine(beyond: str) -> None:
    assert run_both([*BOOK, beyond, *AFTER])


def test_circulation_beyond_the_bound_hands_over_before_any_balance_could_overflow() -> None:
    half = str((LIMIT // 2 + 1) // 10**8 + 1)  # two of these in BTC pass 2**62 units together
    assert run_both([*BOOK, deposit("carol", "BTC", half), *AFTER[:2], deposit("dave", "BTC", half), *AFTER])


def test_values_that_are_refused_anyway_stay_native() -> None:
    lines = [
        *BOOK,
        json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", "order_id": 10**30}),
        json.dumps({"type": "withdraw", "user": "alice", "asset": "BTC", "amount": "50000000000"}),
        *AFTER,
    ]
    assert not run_both(lines)


def test_a_config_beyond_the_native_bounds_runs_the_pure_engine() -> None:
    raw = json.loads(json.dumps(VECTORS_CONFIG))
    raw["assets"]["BTC"]["precision"] = 30  # a base scale of 10**30
    config = ExchangeConfig.from_dict(raw)
    assert not supports(config)
    assert type(fastest_engine(config)) is Engine
    with pytest.raises(ValueError, match="bounds"):
        NativeEngine(config)


def test_the_pure_engine_runs_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIRE_ENGINE", "pure")
    assert type(fastest_engine(CONFIG)) is Engine


def test_replay_output_is_the_same_byte_for_byte_with_either_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = random_stream(31, length=2000)
    native = list(replay_lines(CONFIG, lines))
    monkeypatch.setenv("TRADEWIRE_ENGINE", "pure")
    assert list(replay_lines(CONFIG, lines)) == native


def test_a_restored_state_carries_on_natively_as_the_pure_engine_does() -> None:
    """The service restores a snapshot into a pure engine and carries on from it with the native core."""
    first, then = random_stream(41, length=1500), random_stream(42, length=1500)[8:]  # then: no deposits
    pure = Engine(CONFIG)
    pure.apply_all(decode(line) for line in first)
    restored = NativeEngine.from_pure(_copy(pure))
    assert restored is not None
    assert state_of(restored.as_pure()) == state_of(pure)
    for line in then:
        command = decode(line)
        assert restored.apply(command) == pure.apply(command), line
    assert not restored.handed_over
    assert state_of(restored.as_pure()) == state_of(pure)
    for user, assets in pure.balances.items():
        for asset, (available, locked) in assets.items():
            assert restored.balance(user, asset) == (available, locked)
    assert restored.balance("nobody", "BTC") == (0, 0) == pure.balance("nobody", "BTC")


def test_order_ids_reaching_the_bound_hand_over_so_that_every_order_stays_cancellable() -> None:
    """The native core finds an order by id only below the bound: the order that would take the
    bound as its id goes to the pure engine, and with it the cancel that names it."""
    pure = Engine(CONFIG)
    pure.apply_all(decode(line) for line in BOOK)
    pure.next_order_id = LIMIT - 1
    native = NativeEngine.from_pure(_copy(pure))
    assert native is not None
    lines = [
        order("alice", "sell", "110", "0.1"),  # id LIMIT - 1: still native
        order("alice", "sell", "111", "0.1"),  # id LIMIT: handed over
        json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", "order_id": LIMIT}),
        json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", "order_id": LIMIT - 1}),
    ]
    for index, line in enumerate(lines):
        command = decode(line)
        assert native.apply(command) == pure.apply(command), line
        assert native.handed_over == (index >= 1)
    assert state_of(native.pure()) == state_of(pure)


@pytest.mark.parametrize(("below", "hands_over"), [(7, False), (6, True)])
def test_trade_ids_near_the_bound_hand_over_before_a_walk_could_reach_it(
    below: int, hands_over: bool
) -> None:
    """A walk makes one trade per resting order at most: the native core takes a new order only when
    the next trade id plus the resting orders (six here) stays below the bound."""
    pure = Engine(CONFIG)
    pure.apply_all(decode(line) for line in BOOK)
    pure.books["BTC-USDT"].next_trade_id = LIMIT - below
    native = NativeEngine.from_pure(_copy(pure))
    assert native is not None
    command = decode(AFTER[2])  # an IOC buy that trades
    assert native.apply(command) == pure.apply(command)
    assert native.handed_over is hands_over
    assert state_of(native.pure()) == state_of(pure)


def test_a_level_of_bids_whose_quantities_sum_past_a_machine_word_matches() -> None:
    """Bids at a tiny price reserve little quote, so a level may hold more than 2**63 units of base
    in all: nothing native sums a level's quantity."""
    huge = order("alice", "buy", "0.01", "40000000000")  # 4e18 units each, three of them
    cancel = json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", "order_id": 3})
    assert not run_both([deposit("alice", "USDT", "2000000000"), huge, huge, huge, cancel, *AFTER])


def test_a_state_beyond_the_native_bounds_is_not_taken() -> None:
    pure = Engine(CONFIG)
    pure.apply_all(decode(line) for line in [*BOOK, deposit("carol", "BTC", "50000000000")])
    assert NativeEngine.from_pure(pure) is None


def _copy(engine: Engine) -> Engine:
    from tradewire.engine import snapshot

    return snapshot.load(snapshot.dump(engine), CONFIG)


def test_a_snapshot_of_the_same_state_is_the_same_bytes_from_either_engine() -> None:
    """The native core's balances come out in its own table order, the pure engine's in the order
    users were first credited: the snapshot writes both sorted."""
    from tradewire.engine import snapshot

    lines = random_stream(51, length=2000)
    pure, native = Engine(CONFIG), NativeEngine(CONFIG)
    for line in lines:
        command = decode(line)
        assert native.apply(command) == pure.apply(command), line
    assert not native.handed_over
    exported = native.as_pure()
    assert list(exported.balances) != list(pure.balances) or any(
        list(exported.balances[user]) != list(pure.balances[user]) for user in pure.balances
    ), "the stream should credit users and assets out of table order, or the test shows nothing"
    assert snapshot.dump(exported) == snapshot.dump(pure)
    assert snapshot.dump(snapshot.load(snapshot.dump(pure), CONFIG)) == snapshot.dump(pure)
