"""Properties that must hold after every single command of any command stream.

Checked after each command, not only at the end, so that a rule broken and then repaired by a later
command (a reservation released twice, then taken again) is still caught where it happens.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given

from tests.strategies import VECTORS_CONFIG, command_streams, random_stream
from tests.unit.engine.profile import ENGINE_SETTINGS
from tradewire.engine import Deposited, Engine, Event, ExchangeConfig, Rejected, Withdrawn, decode
from tradewire.engine.snapshot import dump
from tradewire.replay import replay_lines

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)


class Checker:
    """An engine under observation, with the deposits and withdrawals it has acknowledged."""

    def __init__(self) -> None:
        self.engine = Engine(CONFIG)
        self.net: Counter[str] = Counter()

    def apply(self, line: str) -> list[Event]:
        engine = self.engine
        before = dump(engine)
        next_order_id = engine.next_order_id
        events = engine.apply(decode(line))
        for event in events:
            if type(event) is Deposited:
                self.net[event.asset] += event.amount
            elif type(event) is Withdrawn:
                self.net[event.asset] -= event.amount
        if len(events) == 1 and type(events[0]) is Rejected:
            # A rejection changes nothing but the order-id counter of a new_order.
            taken = 1 if events[0].command == "new_order" else 0
            assert engine.next_order_id == next_order_id + taken
            engine.next_order_id = next_order_id
            assert dump(engine) == before, f"rejected {line} changed the state"
            engine.next_order_id = next_order_id + taken
        self.check()
        return events

    def check(self) -> None:
        self.check_conservation()
        self.check_books_not_crossed()
        self.check_locked_equals_reserved()

    def check_conservation(self) -> None:
        """Each asset's total over all users, fees included, is deposits minus withdrawals."""
        totals: Counter[str] = Counter()
        for assets in self.engine.balances.values():
            for asset, (available, locked) in assets.items():
                assert available >= 0 and locked >= 0, (asset, available, locked)
                totals[asset] += available + locked
        for asset in CONFIG.assets:
            assert totals[asset] == self.net[asset], asset

    def check_books_not_crossed(self) -> None:
        for name, book in self.engine.books.items():
            bids, asks = book.bids.depth(), book.asks.depth()
            assert all(qty > 0 for _, qty in bids + asks), name
            assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True), name
            assert [p for p, _ in asks] == sorted(p for p, _ in asks), name
            if bids and asks:
                assert bids[0][0] < asks[0][0], f"{name} crossed: {bids[0]} >= {asks[0]}"

    def check_locked_equals_reserved(self) -> None:
        """Locked balances are exactly what the open orders still reserve, and the indexes agree."""
        engine = self.engine
        reserved: Counter[tuple[str, str]] = Counter()
        on_books = {}
        for name, book in engine.books.items():
            market = CONFIG.markets[name]
            for side in (book.bids, book.asks):
                for order in side.orders():
                    on_books[order.order_id] = order
                    if order.is_buy:
                        reserved[order.user, market.quote.name] += (
                            order.price * order.qty // market.base_scale
                        )
                    else:
                        reserved[order.user, market.base.name] += order.qty
        assert on_books == engine.orders
        assert {(o.user, o.client_id): o for o in on_books.values() if o.client_id is not None} == (
            engine.client_ids
        )
        for user, assets in engine.balances.items():
            for asset, (_, locked) in assets.items():
                assert locked == reserved.pop((user, asset), 0), (user, asset)
        assert not +reserved, f"orders reserve funds of users with no balance: {reserved}"


@ENGINE_SETTINGS
@given(command_streams())
def test_engine_with_any_command_stream_keeps_every_invariant_after_every_command(lines: list[str]) -> None:
    checker = Checker()
    for line in lines:
        checker.apply(line)


def test_engine_with_a_long_seeded_stream_keeps_every_invariant_after_every_command() -> None:
    checker = Checker()
    for line in random_stream(seed=7, length=1500):
        checker.apply(line)
    assert checker.engine.orders, "the stream should build a book"
    assert any(book.next_trade_id > 20 for book in checker.engine.books.values()), "and trade on it"


@ENGINE_SETTINGS
@given(command_streams())
def test_replay_with_the_same_stream_twice_writes_byte_identical_output(lines: list[str]) -> None:
    first = b"\n".join(replay_lines(CONFIG, lines))
    second = b"\n".join(replay_lines(CONFIG, list(lines)))
    assert first == second
