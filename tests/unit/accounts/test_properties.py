"""The account views over long random command streams, checked against the engine that produced them."""

from __future__ import annotations

from collections import defaultdict

import orjson
from hypothesis import HealthCheck, given, settings

from tests.reference_model import Plan, Reference, Taker
from tests.strategies import VECTORS_CONFIG, command_streams, random_stream
from tests.unit.accounts.harness import CONFIG, Cache, Exchange
from tradewire.accounts import Accounts
from tradewire.engine import Engine, decode
from tradewire.engine.decimals import to_text, to_units
from tradewire.engine.events import Event, Expired, Trade
from tradewire.keys import RedisOp

SYMBOL_MARKETS = {market.base.name + market.quote.name: market for market in CONFIG.markets.values()}


def run(lines: list[str], batch: int = 1) -> tuple[Exchange, list[RedisOp], dict[int, int]]:
    """Apply the lines, flushing every ``batch`` commands; also sum each order's traded quantity."""
    ex = Exchange()
    ops: list[RedisOp] = []
    traded: dict[int, int] = defaultdict(int)
    for count, line in enumerate(lines, 1):
        ex.apply(line)
        for event in ex.events:
            if type(event) is Trade:
                traded[event.maker_order_id] += event.qty
                traded[event.taker_order_id] += event.qty
        if count % batch == 0:
            ops += ex.accounts.flush()
    ops += ex.accounts.flush()
    return ex, ops, traded


def check_against_engine(ex: Exchange, ops: list[RedisOp], traded: dict[int, int]) -> None:
    cache = Cache()
    cache.run(ops)
    open_ids = {order_id for key, ids in cache.sets.items() for order_id in ids}
    assert open_ids == set(ex.engine.orders) == set(ex.accounts.open)
    for key, fields in cache.hashes.items():
        if not key.startswith("tw:orders:"):
            continue
        user = key.removeprefix("tw:orders:")
        for field, value in fields.items():
            record = orjson.loads(value)
            market = SYMBOL_MARKETS[record["symbol"]]
            bp, qp = market.base.precision, market.quote.precision
            order_id = int(field)
            executed = to_units(record["executedQty"], bp)
            assert executed == traded.get(order_id, 0)
            assert to_units(record["cummulativeQuoteQty"], qp) is not None
            engine_order = ex.engine.orders.get(order_id)
            if engine_order is None:
                assert record["status"] not in ("NEW", "PARTIALLY_FILLED")
                assert order_id not in cache.sets.get(f"tw:open:{user}", set())
            else:
                assert record["status"] == ("PARTIALLY_FILLED" if executed else "NEW")
                assert engine_order.user == user
                assert to_units(record["origQty"], bp) == engine_order.qty + executed
                assert to_units(record["price"], qp) == engine_order.price
                assert order_id in cache.sets[f"tw:open:{user}"]
    for (user, client_id), order in ex.engine.client_ids.items():
        assert cache.hashes[f"tw:cid:{user}"][client_id] == str(order.order_id).encode()
    # the closed orders (nothing trimmed here): each in the closed set with its symbol and client id
    closed: dict[str, set[str]] = {}
    for key, fields in cache.hashes.items():
        if key.startswith("tw:orders:"):
            user = key.removeprefix("tw:orders:")
            for field, value in fields.items():
                record = orjson.loads(value)
                if record["status"] not in ("NEW", "PARTIALLY_FILLED"):
                    member = f"{field} {record['symbol']} {record['clientOrderId']}"
                    closed.setdefault(f"tw:closed:{user}", set()).add(member)
    assert cache.zsets == closed
    for user, assets in ex.engine.balances.items():
        for asset, (free, locked) in assets.items():
            places = CONFIG.assets[asset].precision
            written = cache.hashes.get(f"tw:bal:{user}", {}).get(asset)
            expected = {"free": to_text(free, places), "locked": to_text(locked, places)}
            assert (orjson.loads(written) if written else {"free": "0", "locked": "0"}) == expected


def test_views_with_random_streams_agree_with_engine_orders_trades_and_balances() -> None:
    for seed in range(4):
        ex, ops, traded = run(random_stream(seed, 1500))
        check_against_engine(ex, ops, traded)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_streams())
def test_views_with_generated_streams_agree_with_engine(lines: list[str]) -> None:
    ex, ops, traded = run(lines)
    check_against_engine(ex, ops, traded)


def test_views_with_batched_flushes_leave_the_same_cache_and_publications() -> None:
    lines = random_stream(11, 1500)
    _, single_ops, _ = run(lines, batch=1)
    ex, batched_ops, traded = run(lines, batch=37)
    single, batched = Cache(), Cache()
    single.run(single_ops)
    batched.run(batched_ops)
    assert single.hashes == batched.hashes
    # an order opened and closed within one batch never enters the open set: compare non-empty sets
    assert {k: v for k, v in single.sets.items() if v} == {k: v for k, v in batched.sets.items() if v}
    assert single.zsets == batched.zsets
    assert single.streams == batched.streams
    # each user's payloads, in the same order, however many of them share a batch's message
    assert payloads_by_channel(single_ops) == payloads_by_channel(batched_ops)
    assert sum(op[0] == "PUBLISH" for op in batched_ops) < sum(op[0] == "PUBLISH" for op in single_ops)
    check_against_engine(ex, batched_ops, traded)


def payloads_by_channel(ops: list[RedisOp]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for op in ops:
        if op[0] == "PUBLISH":
            out.setdefault(str(op[1]), []).extend(str(op[2]).split("\n"))
    return out


def test_views_with_same_input_give_identical_ops() -> None:
    lines = random_stream(5, 1000)
    assert run(lines)[1] == run(lines)[1]
    assert run(lines, batch=10)[1] == run(lines, batch=10)[1]


def test_views_with_restored_state_continue_exactly_as_the_original() -> None:
    lines = random_stream(7, 1600)
    for cut, flushed in ((800, True), (801, False)):
        original = Exchange()
        for line in lines[:cut]:
            original.apply(line)
        if flushed:
            original.accounts.flush()
        state = original.accounts.to_state()
        restored = Accounts.from_state(CONFIG, state)
        assert restored.to_state() == state
        assert restored.open == original.accounts.open
        ops_a: list[RedisOp] = []
        ops_b: list[RedisOp] = []
        for number, line in enumerate(lines[cut:]):
            original.apply(line)
            restored.apply(decode(line), original.events, original.ts, original.balance_of)
            if number % 5 == 0:
                ops_a += original.accounts.flush()
                ops_b += restored.flush()
        assert ops_a + original.accounts.flush() == ops_b + restored.flush()
        assert ops_a


class _StpWatchingReference(Reference):
    """The spec's reference model, noting for each taker whether its walk ended by self-trade prevention."""

    def __init__(self) -> None:
        super().__init__(VECTORS_CONFIG)
        self.ended_by_stp: dict[int, bool] = {}
        self.spent_to_the_lot: dict[int, bool] = {}

    def plan(self, taker: Taker) -> Plan:
        plan = super().plan(taker)
        self.ended_by_stp[taker.order_id] = plan.taker_ended_by_stp  # the real walk comes last
        # a market buy by quote whose leftover cannot pay one lot at its last fill's price spent all
        # it could: Binance's FILLED, not EXPIRED
        prices = [maker.price for step, maker, _ in plan.steps if step == "trade"]
        left = plan.remaining_quote
        self.spent_to_the_lot[taker.order_id] = bool(
            prices and left is not None and left < prices[-1] * taker.market.lot
        )
        return plan


def test_views_with_expired_takers_tell_self_trade_expiry_as_the_reference_model_does() -> None:
    checked = {"EXPIRED": 0, "EXPIRED_IN_MATCH": 0, "FILLED": 0}
    for seed in range(4):
        lines = random_stream(100 + seed, 1000)
        reference = _StpWatchingReference()
        reference.run(lines)
        _, ops, _ = run(lines)
        expired_takers = {e.order_id for e in _all_events(lines) if type(e) is Expired}
        cache = Cache()
        cache.run(ops)
        for key, fields in cache.hashes.items():
            if key.startswith("tw:orders:"):
                for field, value in fields.items():
                    order_id = int(field)
                    if order_id in expired_takers:
                        status = orjson.loads(value)["status"]
                        expected = "EXPIRED_IN_MATCH" if reference.ended_by_stp[order_id] else "EXPIRED"
                        if reference.spent_to_the_lot[order_id]:
                            expected = "FILLED"
                        assert status == expected, order_id
                        checked[status] += 1
    assert checked["EXPIRED"] > 50 and checked["EXPIRED_IN_MATCH"] > 10 and checked["FILLED"] > 5, checked


def _all_events(lines: list[str]) -> list[Event]:
    engine = Engine(CONFIG)
    return engine.apply_all(decode(line) for line in lines)
