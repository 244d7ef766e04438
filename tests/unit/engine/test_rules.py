"""One focused test per rule of the replay spec, written as JSON commands in and spec JSON events out.

The examples next to the spec show the rules working together; these tests pin each rule on its own so
that a regression names the rule it broke.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.replay import replay_lines

Json = dict[str, Any]

BASE_CONFIG: Json = {
    "assets": {"BTC": {"precision": 8}, "ETH": {"precision": 8}, "USDT": {"precision": 6}},
    "markets": {
        "BTC-USDT": {
            "base": "BTC",
            "quote": "USDT",
            "tick_size": "0.01",
            "lot_size": "0.0001",
            "min_notional": "1",
            "maker_fee": "0.001",
            "taker_fee": "0.002",
        },
        "ETH-USDT": {
            "base": "ETH",
            "quote": "USDT",
            "tick_size": "0.01",
            "lot_size": "0.001",
            "min_notional": "1",
            "maker_fee": "0.001",
            "taker_fee": "0.002",
        },
    },
}
CONFIG = ExchangeConfig.from_dict(BASE_CONFIG)


def config_with(market: Json, assets: Json | None = None) -> ExchangeConfig:
    """The base config with BTC-USDT's fields overridden (and assets added), for one rule's needs."""
    raw = json.loads(json.dumps(BASE_CONFIG))
    raw["markets"]["BTC-USDT"].update(market)
    raw["assets"].update(assets or {})
    return ExchangeConfig.from_dict(raw)


# -- command builders ----------------------------------------------------------------------------------


def deposit(user: str, asset: str, amount: str) -> Json:
    return {"type": "deposit", "user": user, "asset": asset, "amount": amount}


def withdraw(user: str, asset: str, amount: str) -> Json:
    return {"type": "withdraw", "user": user, "asset": asset, "amount": amount}


def limit(user: str, side: str, qty: str, price: str, market: str = "BTC-USDT", **extra: Any) -> Json:
    return {
        "type": "new_order",
        "user": user,
        "market": market,
        "side": side,
        "kind": "limit",
        "qty": qty,
        "price": price,
        **extra,
    }


def market_order(user: str, side: str, market: str = "BTC-USDT", **extra: Any) -> Json:
    return {"type": "new_order", "user": user, "market": market, "side": side, "kind": "market", **extra}


def cancel(user: str, market: str = "BTC-USDT", **extra: Any) -> Json:
    return {"type": "cancel", "user": user, "market": market, **extra}


# -- expected events ----------------------------------------------------------------------------------


def accepted(order_id: int, user: str, market: str = "BTC-USDT", client_id: str | None = None) -> Json:
    event: Json = {"type": "accepted", "order_id": order_id, "user": user, "market": market}
    if client_id is not None:
        event["client_id"] = client_id
    return event


def rejected(reason: str, user: str | None = None, order_id: int | None = None) -> Json:
    event: Json = {"type": "rejected"}
    if order_id is not None:
        event["order_id"] = order_id
    if user is not None:
        event["user"] = user
    event["reason"] = reason
    return event


def trade(
    trade_id: int,
    price: str,
    qty: str,
    maker: tuple[int, str],
    taker: tuple[int, str],
    taker_side: str,
    fees: tuple[str, str],
    market: str = "BTC-USDT",
) -> Json:
    return {
        "type": "trade",
        "market": market,
        "trade_id": trade_id,
        "price": price,
        "qty": qty,
        "maker_order_id": maker[0],
        "taker_order_id": taker[0],
        "maker_user": maker[1],
        "taker_user": taker[1],
        "taker_side": taker_side,
        "maker_fee": fees[0],
        "taker_fee": fees[1],
    }


def canceled(order_id: int, reason: str) -> Json:
    return {"type": "canceled", "order_id": order_id, "reason": reason}


def expired(order_id: int, remaining_qty: str) -> Json:
    return {"type": "expired", "order_id": order_id, "remaining_qty": remaining_qty}


def expired_quote(order_id: int, remaining_quote_qty: str) -> Json:
    return {"type": "expired", "order_id": order_id, "remaining_quote_qty": remaining_quote_qty}


def money(available: str, locked: str = "0") -> Json:
    return {"available": available, "locked": locked}


class Exchange:
    """An engine fed JSON lines one at a time, answering with the spec JSON of each command's events."""

    def __init__(self, config: ExchangeConfig = CONFIG) -> None:
        self.engine = Engine(config)
        self.codec = EventCodec(config)

    def send(self, command: Json | str) -> list[Json]:
        line = command if isinstance(command, str) else json.dumps(command)
        return [orjson.loads(orjson.dumps(self.codec.render(e))) for e in self.engine.apply(decode(line))]

    def run(self, *commands: Json | str) -> list[Json]:
        return [event for command in commands for event in self.send(command)]

    def state(self) -> Json:
        loaded: Json = orjson.loads(orjson.dumps(self.codec.state(self.engine)))
        return loaded

    def balance(self, user: str, asset: str) -> Json:
        found: Json = self.state()["balances"][user][asset]
        return found

    def book(self, market: str = "BTC-USDT") -> Json:
        found: Json = self.state()["books"][market]
        return found


def funded(*deposits: tuple[str, str, str], config: ExchangeConfig = CONFIG) -> Exchange:
    exchange = Exchange(config)
    for user, asset, amount in deposits:
        assert exchange.send(deposit(user, asset, amount))[0]["type"] == "deposit"
    return exchange


# -- order ids ----------------------------------------------------------------------------------------


def test_order_ids_with_every_valid_new_order_including_rejected_ones_count_up_by_one() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    events = exchange.run(
        limit("alice", "buy", "1", "100", market="NOPE"),
        limit("alice", "buy", "0", "100"),
        limit("alice", "buy", "0.1", "100"),
        market_order("alice", "buy", quote_qty="1", qty="1"),
    )
    assert [e.get("order_id") for e in events] == [1, 2, 3, 4]


def test_order_ids_with_bad_commands_deposits_and_cancels_in_between_are_not_taken() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    events = exchange.run(
        limit("alice", "buy", "0.1", "100"),
        "not json",
        {**limit("alice", "buy", "1", "100"), "qty": 1},  # a JSON number: bad_command
        deposit("alice", "USDT", "1"),
        withdraw("alice", "USDT", "1"),
        cancel("alice", order_id=99),
        limit("alice", "buy", "0.1", "100"),
    )
    assert [e["order_id"] for e in events if e["type"] == "accepted"] == [1, 2]


# -- validation order ---------------------------------------------------------------------------------

FIRST_FAILURE_WINS = [
    pytest.param(
        limit("alice", "buy", "-1", "0.001", market="NOPE"), "unknown_market", id="market-before-qty"
    ),
    pytest.param(limit("alice", "buy", "0.00005", "1.001"), "invalid_qty", id="qty-before-price"),
    pytest.param(
        market_order("alice", "buy", quote_qty="5", qty="1", price="100"),
        "invalid_qty",
        id="qty-before-price-mkt",
    ),
    pytest.param(limit("alice", "buy", "0.0001", "1.001"), "invalid_price", id="price-before-min-notional"),
    pytest.param(
        limit("alice", "buy", "0.0001", "100", client_id="x"),
        "min_notional",
        id="min-notional-before-client-id",
    ),
    pytest.param(
        limit("alice", "buy", "1000", "100", client_id="x"),
        "duplicate_client_id",
        id="client-id-before-balance",
    ),
    pytest.param(
        limit("alice", "buy", "1000", "101", post_only=True),
        "insufficient_balance",
        id="balance-before-cross",
    ),
    pytest.param(
        limit("alice", "buy", "0.5", "101", post_only=True, tif="FOK"), "would_cross", id="cross-before-fok"
    ),
]


@pytest.mark.parametrize(("command", "reason"), FIRST_FAILURE_WINS)
def test_validation_with_two_failures_reports_the_first_in_spec_order(command: Json, reason: str) -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "buy", "0.02", "99", client_id="x"), limit("bob", "sell", "0.1", "101"))
    assert exchange.send(command) == [rejected(reason, "alice", 3)]


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        pytest.param(
            limit("alice", "buy", "1", "100", market="BTC-EUR"), "unknown_market", id="unknown-market"
        ),
        pytest.param({**limit("alice", "buy", "1", "100"), "qty": "0"}, "invalid_qty", id="zero-qty"),
        pytest.param(limit("alice", "buy", "-0.1", "100"), "invalid_qty", id="negative-qty"),
        pytest.param(limit("alice", "buy", "0.00015", "100"), "invalid_qty", id="qty-off-lot"),
        pytest.param(limit("alice", "buy", "0.000000001", "100"), "invalid_qty", id="qty-finer-than-base"),
        pytest.param(
            {k: v for k, v in limit("alice", "buy", "1", "100").items() if k != "qty"},
            "invalid_qty",
            id="limit-without-qty",
        ),
        pytest.param(
            {**limit("alice", "buy", "1", "100"), "quote_qty": "10"}, "invalid_qty", id="limit-with-quote-qty"
        ),
        pytest.param(
            {k: v for k, v in limit("alice", "buy", "1", "100").items() if k != "qty"} | {"quote_qty": "10"},
            "invalid_qty",
            id="limit-with-only-quote-qty",
        ),
        pytest.param(
            market_order("alice", "sell", quote_qty="10"), "invalid_qty", id="market-sell-quote-qty"
        ),
        pytest.param(
            market_order("alice", "buy", qty="1", quote_qty="10"), "invalid_qty", id="market-buy-both"
        ),
        pytest.param(market_order("alice", "buy"), "invalid_qty", id="market-buy-neither"),
        pytest.param(market_order("alice", "sell"), "invalid_qty", id="market-sell-no-qty"),
        pytest.param(
            market_order("alice", "buy", quote_qty="0.0000001"),
            "invalid_qty",
            id="quote-qty-finer-than-quote",
        ),
        pytest.param(market_order("alice", "buy", quote_qty="0"), "invalid_qty", id="zero-quote-qty"),
        pytest.param(
            {k: v for k, v in limit("alice", "buy", "1", "100").items() if k != "price"},
            "invalid_price",
            id="limit-without-price",
        ),
        pytest.param(limit("alice", "buy", "1", "0"), "invalid_price", id="zero-price"),
        pytest.param(limit("alice", "buy", "1", "-100"), "invalid_price", id="negative-price"),
        pytest.param(limit("alice", "buy", "1", "100.005"), "invalid_price", id="price-off-tick"),
        pytest.param(
            market_order("alice", "buy", qty="1", price="100"), "invalid_price", id="market-with-price"
        ),
        pytest.param(limit("alice", "buy", "0.0099", "100"), "min_notional", id="below-min-notional"),
        pytest.param(limit("alice", "buy", "20", "100"), "insufficient_balance", id="limit-buy-over-balance"),
        pytest.param(limit("alice", "sell", "0.0100", "100"), "insufficient_balance", id="sell-without-base"),
        pytest.param(
            market_order("alice", "sell", qty="0.1"), "insufficient_balance", id="market-sell-no-base"
        ),
        pytest.param(
            market_order("alice", "buy", quote_qty="1000.000001"), "insufficient_balance", id="quote-qty-over"
        ),
    ],
)
def test_new_order_with_one_failure_is_rejected_with_that_reason(command: Json, reason: str) -> None:
    exchange = funded(("alice", "USDT", "1000"))
    assert exchange.send(command) == [rejected(reason, "alice", 1)]
    assert exchange.balance("alice", "USDT") == money("1000")


def test_min_notional_with_price_times_qty_exactly_at_it_is_accepted() -> None:
    exchange = funded(("alice", "USDT", "10"))
    assert exchange.send(limit("alice", "buy", "0.01", "100")) == [accepted(1, "alice")]


def test_min_notional_finer_than_quote_precision_with_notional_just_below_is_rejected() -> None:
    exchange = funded(("alice", "USDT", "10"), config=config_with({"min_notional": "1.0000005"}))
    assert exchange.send(limit("alice", "buy", "0.01", "100")) == [rejected("min_notional", "alice", 1)]
    assert exchange.send(limit("alice", "buy", "0.01", "100.01")) == [accepted(2, "alice")]


def test_market_order_with_any_notional_skips_the_min_notional_check() -> None:
    exchange = funded(("alice", "USDT", "10"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.5", "100"))
    events = exchange.send(market_order("alice", "buy", qty="0.0001"))
    assert events[0] == accepted(2, "alice")
    assert events[1]["qty"] == "0.0001"


# -- reservation --------------------------------------------------------------------------------------


def test_limit_buy_with_resting_quantity_locks_price_times_qty_of_quote() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100.25"))
    assert exchange.balance("alice", "USDT") == money("949.875", "50.125")
    assert exchange.book() == {"bids": [["100.25", "0.5"]], "asks": []}


def test_limit_sell_with_resting_quantity_locks_qty_of_base() -> None:
    exchange = funded(("bob", "BTC", "2"))
    exchange.send(limit("bob", "sell", "0.3", "200"))
    assert exchange.balance("bob", "BTC") == money("1.7", "0.3")


def test_limit_buy_with_exactly_the_balance_needed_is_accepted() -> None:
    exchange = funded(("alice", "USDT", "50.125"))
    assert exchange.send(limit("alice", "buy", "0.5", "100.25")) == [accepted(1, "alice")]
    assert exchange.balance("alice", "USDT") == money("0", "50.125")


def test_limit_buy_with_locked_funds_only_counts_the_available_part() -> None:
    exchange = funded(("alice", "USDT", "100"))
    exchange.send(limit("alice", "buy", "0.6", "100"))
    assert exchange.send(limit("alice", "buy", "0.5", "100")) == [
        rejected("insufficient_balance", "alice", 2)
    ]


def test_limit_buy_filling_below_its_price_gets_the_difference_unlocked() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "2"))
    exchange.send(limit("bob", "sell", "0.5", "100"))
    events = exchange.send(limit("alice", "buy", "0.5", "101"))
    assert events == [
        accepted(2, "alice"),
        trade(1, "100", "0.5", (1, "bob"), (2, "alice"), "buy", ("0.05", "0.001")),
    ]
    assert exchange.balance("alice", "USDT") == money("950")
    assert exchange.balance("alice", "BTC") == money("0.499")
    assert exchange.balance("bob", "BTC") == money("1.5")
    assert exchange.balance("bob", "USDT") == money("49.95")


def test_limit_buy_partly_filled_below_its_price_keeps_exactly_the_rest_locked() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "2"))
    exchange.send(limit("bob", "sell", "0.2", "100"))
    exchange.send(limit("alice", "buy", "0.5", "101"))
    assert exchange.balance("alice", "USDT") == money("949.7", "30.3")
    assert exchange.book() == {"bids": [["101", "0.3"]], "asks": []}


def test_limit_sell_taking_a_higher_bid_trades_at_the_bid_price() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "2"))
    exchange.send(limit("alice", "buy", "0.5", "101"))
    events = exchange.send(limit("bob", "sell", "0.5", "100"))
    assert events[1] == trade(1, "101", "0.5", (1, "alice"), (2, "bob"), "sell", ("0.0005", "0.101"))
    assert exchange.balance("bob", "USDT") == money("50.399")
    assert exchange.balance("alice", "USDT") == money("949.5")


# -- matching -----------------------------------------------------------------------------------------


def test_matching_with_several_levels_goes_best_price_first_then_time_priority() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "2"), ("carol", "BTC", "2"))
    exchange.run(
        limit("bob", "sell", "0.1", "101"),
        limit("carol", "sell", "0.1", "100"),
        limit("bob", "sell", "0.1", "100"),
    )
    events = exchange.send(limit("alice", "buy", "0.25", "101", tif="IOC"))
    assert [(e["maker_order_id"], e["price"], e["qty"]) for e in events if e["type"] == "trade"] == [
        (2, "100", "0.1"),
        (3, "100", "0.1"),
        (1, "101", "0.05"),
    ]


def test_matching_with_a_limit_below_the_next_level_stops_there_and_rests() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "2"))
    exchange.run(limit("bob", "sell", "0.1", "100"), limit("bob", "sell", "0.1", "100.01"))
    events = exchange.send(limit("alice", "buy", "0.3", "100"))
    assert [e["type"] for e in events] == ["accepted", "trade"]
    assert exchange.book() == {"bids": [["100", "0.2"]], "asks": [["100.01", "0.1"]]}


def test_trade_ids_with_two_markets_count_per_market() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"), ("bob", "ETH", "1"))
    exchange.run(
        limit("bob", "sell", "0.2", "100"),
        limit("bob", "sell", "0.1", "100", market="ETH-USDT"),
        limit("alice", "buy", "0.05", "100"),
        limit("alice", "buy", "0.05", "100"),
    )
    events = exchange.send(limit("alice", "buy", "0.05", "100", market="ETH-USDT"))
    assert events[1]["market"] == "ETH-USDT"
    assert events[1]["trade_id"] == 1
    events = exchange.send(limit("alice", "buy", "0.01", "100"))
    assert events[1]["trade_id"] == 3


# -- fees ---------------------------------------------------------------------------------------------


def test_fees_with_a_fraction_of_a_quote_unit_are_rounded_up() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.0101", "100.01"))
    events = exchange.send(limit("alice", "buy", "0.0101", "100.01"))
    # notional 1.010101: the maker pays 0.001010101 -> 0.001011; the taker 0.002 x 0.0101 BTC exactly
    assert events[1]["maker_fee"] == "0.001011"
    assert events[1]["taker_fee"] == "0.0000202"
    assert exchange.balance("bob", "USDT") == money("1.00909")
    assert exchange.balance("fees", "USDT") == money("0.001011")


def test_fees_of_a_selling_taker_are_taken_in_quote_and_rounded_up() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("alice", "buy", "0.0101", "100.01"))
    events = exchange.send(limit("bob", "sell", "0.0101", "100.01"))
    assert events[1]["maker_fee"] == "0.0000101"
    assert events[1]["taker_fee"] == "0.002021"
    assert exchange.balance("bob", "USDT") == money("1.00808")
    assert exchange.balance("alice", "BTC") == money("0.0100899")


def test_fees_with_a_fraction_of_a_base_unit_are_rounded_up_in_base() -> None:
    config = config_with(
        {"base": "XYZ", "tick_size": "0.01", "lot_size": "0.01", "min_notional": "0", "maker_fee": "0"},
        assets={"XYZ": {"precision": 2}},
    )
    exchange = funded(("alice", "USDT", "1000"), ("bob", "XYZ", "5"), config=config)
    exchange.send(limit("bob", "sell", "1.01", "2"))
    events = exchange.send(limit("alice", "buy", "1.01", "2"))
    assert events[1]["taker_fee"] == "0.01"  # 0.002 x 1.01 = 0.00202, rounded up to 0.01
    assert exchange.balance("alice", "XYZ") == money("1")
    assert exchange.balance("fees", "XYZ") == money("0.01")


def test_fees_with_zero_rates_still_appear_in_trades_and_in_the_fees_account() -> None:
    exchange = funded(
        ("alice", "USDT", "1000"),
        ("bob", "BTC", "1"),
        config=config_with({"maker_fee": "0", "taker_fee": "0"}),
    )
    exchange.send(limit("bob", "sell", "0.1", "100"))
    events = exchange.send(limit("alice", "buy", "0.1", "100"))
    assert (events[1]["maker_fee"], events[1]["taker_fee"]) == ("0", "0")
    assert exchange.state()["balances"]["fees"] == {"BTC": money("0"), "USDT": money("0")}


def test_fees_with_a_trade_are_credited_to_the_fees_user_in_the_asset_each_side_receives() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.5", "100"))
    exchange.send(limit("alice", "buy", "0.5", "100"))
    assert exchange.state()["balances"]["fees"] == {"BTC": money("0.001"), "USDT": money("0.05")}


# -- self-trade prevention ----------------------------------------------------------------------------

STP_BOOK = (
    limit("bob", "sell", "0.2", "100"),
    limit("alice", "sell", "0.5", "100"),
    limit("bob", "sell", "0.5", "100"),
)


def stp_exchange() -> Exchange:
    exchange = funded(("alice", "USDT", "1000"), ("alice", "BTC", "1"), ("bob", "BTC", "2"))
    exchange.run(*STP_BOOK)
    return exchange


def test_stp_expire_maker_cancels_the_own_resting_order_and_matching_goes_on() -> None:
    exchange = stp_exchange()
    events = exchange.send(limit("alice", "buy", "1", "100"))
    assert events == [
        accepted(4, "alice"),
        trade(1, "100", "0.2", (1, "bob"), (4, "alice"), "buy", ("0.02", "0.0004")),
        canceled(2, "stp"),
        trade(2, "100", "0.5", (3, "bob"), (4, "alice"), "buy", ("0.05", "0.001")),
    ]
    assert exchange.book() == {"bids": [["100", "0.3"]], "asks": []}
    assert exchange.balance("alice", "BTC") == money("1.6986")
    assert exchange.balance("alice", "USDT") == money("900", "30")


def test_stp_expire_taker_expires_the_incoming_rest_and_keeps_the_own_order() -> None:
    exchange = stp_exchange()
    events = exchange.send(limit("alice", "buy", "1", "100", stp="expire_taker"))
    assert events == [
        accepted(4, "alice"),
        trade(1, "100", "0.2", (1, "bob"), (4, "alice"), "buy", ("0.02", "0.0004")),
        expired(4, "0.8"),
    ]
    assert exchange.book() == {"bids": [], "asks": [["100", "1"]]}
    assert exchange.balance("alice", "USDT") == money("980")
    assert exchange.balance("alice", "BTC") == money("0.6996", "0.5")


def test_stp_expire_both_cancels_the_maker_before_expiring_the_taker() -> None:
    exchange = stp_exchange()
    events = exchange.send(limit("alice", "buy", "1", "100", stp="expire_both"))
    assert events == [
        accepted(4, "alice"),
        trade(1, "100", "0.2", (1, "bob"), (4, "alice"), "buy", ("0.02", "0.0004")),
        canceled(2, "stp"),
        expired(4, "0.8"),
    ]
    assert exchange.book() == {"bids": [], "asks": [["100", "0.5"]]}
    assert exchange.balance("alice", "BTC") == money("1.1996")
    assert exchange.balance("alice", "USDT") == money("980")


def test_stp_none_lets_a_user_trade_with_itself_and_pay_both_fees() -> None:
    exchange = stp_exchange()
    events = exchange.send(limit("alice", "buy", "0.7", "100", stp="none"))
    assert events == [
        accepted(4, "alice"),
        trade(1, "100", "0.2", (1, "bob"), (4, "alice"), "buy", ("0.02", "0.0004")),
        trade(2, "100", "0.5", (2, "alice"), (4, "alice"), "buy", ("0.05", "0.001")),
    ]
    # alice paid 70, got 49.95 back as maker; sold 0.5 and bought 0.7 less 0.0014 of taker fees
    assert exchange.balance("alice", "USDT") == money("979.95")
    assert exchange.balance("alice", "BTC") == money("1.1986")


def test_stp_with_a_market_sell_cancels_own_bids_and_releases_their_quote() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("alice", "BTC", "1"), ("bob", "USDT", "1000"))
    exchange.run(limit("alice", "buy", "0.5", "100"), limit("bob", "buy", "0.5", "99"))
    events = exchange.send(market_order("alice", "sell", qty="0.2"))
    assert events == [
        accepted(3, "alice"),
        canceled(1, "stp"),
        trade(1, "99", "0.2", (2, "bob"), (3, "alice"), "sell", ("0.0002", "0.0396")),
    ]
    assert exchange.balance("alice", "USDT") == money("1019.7604")


# -- time in force ------------------------------------------------------------------------------------


def test_ioc_with_a_partial_fill_expires_the_rest_and_unlocks_its_reservation() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.2", "100"))
    assert exchange.send(limit("alice", "buy", "0.5", "100", tif="IOC")) == [
        accepted(2, "alice"),
        trade(1, "100", "0.2", (1, "bob"), (2, "alice"), "buy", ("0.02", "0.0004")),
        expired(2, "0.3"),
    ]
    assert exchange.send(limit("alice", "buy", "0.5", "100", tif="IOC")) == [
        accepted(3, "alice"),
        expired(3, "0.5"),
    ]
    assert exchange.balance("alice", "USDT") == money("980")
    assert exchange.book() == {"bids": [], "asks": []}


def test_ioc_with_nothing_to_match_expires_whole_and_never_rests() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    assert exchange.send(limit("alice", "buy", "0.5", "100", tif="IOC")) == [
        accepted(1, "alice"),
        expired(1, "0.5"),
    ]
    assert exchange.balance("alice", "USDT") == money("1000")
    assert exchange.engine.orders == {}


def test_gtc_with_a_partial_fill_rests_the_rest_on_the_book() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.2", "100"))
    events = exchange.send(limit("alice", "buy", "0.5", "100", tif="GTC"))
    assert [e["type"] for e in events] == ["accepted", "trade"]
    assert exchange.book() == {"bids": [["100", "0.3"]], "asks": []}
    assert list(exchange.engine.orders) == [2]


def test_fok_with_enough_liquidity_over_two_levels_fills_completely_without_expiry() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("bob", "sell", "0.2", "100"), limit("bob", "sell", "0.3", "101"))
    events = exchange.send(limit("alice", "buy", "0.5", "101", tif="FOK"))
    assert [(e["type"], e.get("qty")) for e in events] == [
        ("accepted", None),
        ("trade", "0.2"),
        ("trade", "0.3"),
    ]
    assert exchange.balance("alice", "USDT") == money("949.7")


def test_fok_without_enough_liquidity_is_rejected_and_nothing_happens() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("bob", "sell", "0.2", "100"), limit("bob", "sell", "0.3", "101.01"))
    before = exchange.state()
    assert exchange.send(limit("alice", "buy", "0.5", "101", tif="FOK")) == [
        rejected("fok_unfillable", "alice", 3)
    ]
    assert exchange.state() == before
    assert exchange.send(limit("alice", "buy", "0.1", "100"))[1]["trade_id"] == 1


def test_fok_whose_fill_needs_own_liquidity_under_expire_maker_is_rejected_without_canceling_it() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("alice", "BTC", "1"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "sell", "0.3", "100"), limit("bob", "sell", "0.3", "100"))
    before = exchange.state()
    assert exchange.send(limit("alice", "buy", "0.5", "100", tif="FOK")) == [
        rejected("fok_unfillable", "alice", 3)
    ]
    assert exchange.state() == before
    assert set(exchange.engine.orders) == {1, 2}


def test_fok_meeting_own_order_first_under_expire_taker_is_rejected_despite_liquidity_behind() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("alice", "BTC", "1"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "sell", "0.3", "100"), limit("bob", "sell", "0.9", "100"))
    assert exchange.send(limit("alice", "buy", "0.5", "100", tif="FOK", stp="expire_taker")) == [
        rejected("fok_unfillable", "alice", 3)
    ]
    assert exchange.book()["asks"] == [["100", "1.2"]]


def test_fok_with_stp_none_counts_own_liquidity_and_self_trades() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("alice", "BTC", "1"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "sell", "0.3", "100"), limit("bob", "sell", "0.2", "100"))
    events = exchange.send(limit("alice", "buy", "0.5", "100", tif="FOK", stp="none"))
    assert [(e["type"], e.get("maker_user")) for e in events] == [
        ("accepted", None),
        ("trade", "alice"),
        ("trade", "bob"),
    ]


def test_fok_market_buy_by_qty_beyond_the_quote_available_is_rejected() -> None:
    exchange = funded(("alice", "USDT", "10"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "1", "100"))
    assert exchange.send(market_order("alice", "buy", qty="0.2", tif="FOK")) == [
        rejected("fok_unfillable", "alice", 2)
    ]
    events = exchange.send(market_order("alice", "buy", qty="0.1", tif="FOK"))
    assert [e["type"] for e in events] == ["accepted", "trade"]
    assert exchange.balance("alice", "USDT") == money("0")


# -- post-only ----------------------------------------------------------------------------------------


def test_post_only_at_the_best_opposite_price_would_cross() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.1", "100"))
    assert exchange.send(limit("alice", "buy", "0.1", "100", post_only=True)) == [
        rejected("would_cross", "alice", 2)
    ]
    assert exchange.balance("alice", "USDT") == money("1000")


def test_post_only_against_only_the_users_own_order_would_cross() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("alice", "BTC", "1"))
    exchange.send(limit("alice", "buy", "0.1", "100"))
    assert exchange.send(limit("alice", "sell", "0.1", "99", post_only=True)) == [
        rejected("would_cross", "alice", 2)
    ]
    assert set(exchange.engine.orders) == {1}


def test_post_only_below_the_best_ask_rests_without_trading() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.1", "100"))
    assert exchange.send(limit("alice", "buy", "0.1", "99.99", post_only=True)) == [accepted(2, "alice")]
    assert exchange.book() == {"bids": [["99.99", "0.1"]], "asks": [["100", "0.1"]]}


# -- market orders ------------------------------------------------------------------------------------


def test_market_buy_by_qty_takes_the_largest_affordable_multiple_of_the_lot() -> None:
    exchange = funded(("alice", "USDT", "10"), ("bob", "BTC", "2"))
    exchange.send(limit("bob", "sell", "1", "300"))
    events = exchange.send(market_order("alice", "buy", qty="1"))
    # 10 / 300 = 0.0333...: 0.0333 costs 9.99 and 0.0334 would cost 10.02
    assert events == [
        accepted(2, "alice"),
        trade(1, "300", "0.0333", (1, "bob"), (2, "alice"), "buy", ("0.00999", "0.0000666")),
        expired(2, "0.9667"),
    ]
    assert exchange.balance("alice", "USDT") == money("0.01")


def test_market_buy_by_qty_with_budget_left_for_a_cheaper_level_spends_it_level_by_level() -> None:
    exchange = funded(("alice", "USDT", "10"), ("bob", "BTC", "2"))
    exchange.run(limit("bob", "sell", "0.05", "100"), limit("bob", "sell", "1", "200"))
    events = exchange.send(market_order("alice", "buy", qty="1"))
    assert [(e["price"], e["qty"]) for e in events if e["type"] == "trade"] == [
        ("100", "0.05"),
        ("200", "0.025"),
    ]
    assert events[-1] == expired(3, "0.925")


def test_market_buy_by_qty_stops_at_an_unaffordable_own_order_before_the_stp_check() -> None:
    exchange = funded(("alice", "USDT", "0.005"), ("alice", "BTC", "1"))
    exchange.send(limit("alice", "sell", "0.01", "100"))
    events = exchange.send(market_order("alice", "buy", qty="0.01"))
    assert events == [accepted(2, "alice"), expired(2, "0.01")]
    assert set(exchange.engine.orders) == {1}
    assert exchange.balance("alice", "BTC") == money("0.99", "0.01")


def test_market_buy_by_qty_with_no_quote_available_is_rejected() -> None:
    exchange = funded(("alice", "BTC", "1"), ("bob", "BTC", "1"))
    exchange.send(limit("bob", "sell", "0.1", "100"))
    assert exchange.send(market_order("alice", "buy", qty="0.1")) == [
        rejected("insufficient_balance", "alice", 2)
    ]


def test_market_buy_by_qty_into_an_empty_book_expires_whole() -> None:
    exchange = funded(("alice", "USDT", "10"))
    assert exchange.send(market_order("alice", "buy", qty="0.1")) == [accepted(1, "alice"), expired(1, "0.1")]


def test_market_buy_by_quote_qty_reports_the_unspent_quote_as_remaining_quote_qty() -> None:
    exchange = funded(("alice", "USDT", "10"), ("bob", "BTC", "2"))
    exchange.send(limit("bob", "sell", "1", "300"))
    events = exchange.send(market_order("alice", "buy", quote_qty="5"))
    assert events == [
        accepted(2, "alice"),
        trade(1, "300", "0.0166", (1, "bob"), (2, "alice"), "buy", ("0.00498", "0.0000332")),
        expired_quote(2, "0.02"),
    ]
    assert exchange.balance("alice", "USDT") == money("5.02")


def test_market_buy_by_quote_qty_spent_exactly_has_no_expiry() -> None:
    exchange = funded(("alice", "USDT", "10"), ("bob", "BTC", "2"))
    exchange.send(limit("bob", "sell", "1", "100"))
    events = exchange.send(market_order("alice", "buy", quote_qty="1"))
    assert [e["type"] for e in events] == ["accepted", "trade"]
    assert events[1]["qty"] == "0.01"
    assert exchange.balance("alice", "USDT") == money("9")


def test_market_buy_by_quote_qty_into_an_empty_book_expires_all_of_it() -> None:
    exchange = funded(("alice", "USDT", "10"))
    assert exchange.send(market_order("alice", "buy", quote_qty="2.5")) == [
        accepted(1, "alice"),
        expired_quote(1, "2.5"),
    ]
    assert exchange.balance("alice", "USDT") == money("10")


def test_market_sell_walks_the_bids_and_expires_what_is_left() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "buy", "0.2", "100"), limit("alice", "buy", "0.1", "99"))
    events = exchange.send(market_order("bob", "sell", qty="0.5"))
    assert events == [
        accepted(3, "bob"),
        trade(1, "100", "0.2", (1, "alice"), (3, "bob"), "sell", ("0.0002", "0.04")),
        trade(2, "99", "0.1", (2, "alice"), (3, "bob"), "sell", ("0.0001", "0.0198")),
        expired(3, "0.2"),
    ]
    assert exchange.balance("bob", "BTC") == money("0.7")
    assert exchange.balance("bob", "USDT") == money("29.8402")


def test_market_sell_beyond_the_base_available_is_rejected() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "buy", "0.2", "100"), limit("bob", "sell", "0.5", "200"))
    assert exchange.send(market_order("bob", "sell", qty="0.6")) == [
        rejected("insufficient_balance", "bob", 3)
    ]


# -- cancel -------------------------------------------------------------------------------------------


def test_cancel_by_order_id_removes_the_order_and_releases_its_reservation() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100"))
    assert exchange.send(cancel("alice", order_id=1)) == [canceled(1, "user")]
    assert exchange.balance("alice", "USDT") == money("1000")
    assert exchange.book() == {"bids": [], "asks": []}
    assert exchange.send(cancel("alice", order_id=1)) == [rejected("unknown_order", "alice", 1)]


def test_cancel_by_client_id_cancels_that_users_order() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "USDT", "1000"))
    exchange.run(
        limit("alice", "buy", "0.5", "100", client_id="k"), limit("bob", "buy", "0.5", "100", client_id="k")
    )
    assert exchange.send(cancel("bob", client_id="k")) == [canceled(2, "user")]
    assert list(exchange.engine.orders) == [1]


def test_cancel_of_another_users_order_is_unknown_order() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100", client_id="k"))
    assert exchange.send(cancel("bob", order_id=1)) == [rejected("unknown_order", "bob", 1)]
    assert exchange.send(cancel("bob", client_id="k")) == [rejected("unknown_order", "bob")]
    assert list(exchange.engine.orders) == [1]


def test_cancel_naming_the_wrong_market_is_unknown_order() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100", client_id="k"))
    assert exchange.send(cancel("alice", "ETH-USDT", order_id=1)) == [rejected("unknown_order", "alice", 1)]
    assert exchange.send(cancel("alice", "ETH-USDT", client_id="k")) == [rejected("unknown_order", "alice")]
    assert list(exchange.engine.orders) == [1]


def test_cancel_in_an_unknown_market_is_unknown_order() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100"))
    assert exchange.send(cancel("alice", "DOGE-USDT", order_id=1)) == [rejected("unknown_order", "alice", 1)]


def test_cancel_of_a_filled_order_is_unknown_order() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "buy", "0.5", "100"), limit("bob", "sell", "0.5", "100"))
    assert exchange.send(cancel("alice", order_id=1)) == [rejected("unknown_order", "alice", 1)]


def test_cancel_of_a_partly_filled_order_releases_only_the_rest() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "buy", "0.5", "100"), limit("bob", "sell", "0.2", "100"))
    assert exchange.send(cancel("alice", order_id=1)) == [canceled(1, "user")]
    assert exchange.balance("alice", "USDT") == money("980")


# -- client ids ---------------------------------------------------------------------------------------


def test_client_id_with_an_open_order_in_another_market_is_a_duplicate() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100", client_id="x"))
    assert exchange.send(limit("alice", "buy", "0.5", "10", market="ETH-USDT", client_id="x")) == [
        rejected("duplicate_client_id", "alice", 2)
    ]


def test_client_id_of_another_user_is_not_a_duplicate() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100", client_id="x"))
    assert exchange.send(limit("bob", "buy", "0.5", "100", client_id="x")) == [
        accepted(2, "bob", client_id="x")
    ]


def test_client_id_with_its_order_canceled_can_be_used_again() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.run(limit("alice", "buy", "0.5", "100", client_id="x"), cancel("alice", client_id="x"))
    assert exchange.send(limit("alice", "buy", "0.5", "100", client_id="x")) == [
        accepted(2, "alice", client_id="x")
    ]
    assert exchange.send(cancel("alice", client_id="x")) == [canceled(2, "user")]


def test_client_id_with_its_order_filled_can_be_used_again_but_not_while_partly_filled() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("alice", "buy", "0.5", "100", client_id="x"), limit("bob", "sell", "0.2", "100"))
    assert exchange.send(limit("alice", "buy", "0.1", "90", client_id="x")) == [
        rejected("duplicate_client_id", "alice", 3)
    ]
    exchange.send(limit("bob", "sell", "0.3", "100"))
    assert exchange.send(limit("alice", "buy", "0.1", "90", client_id="x")) == [
        accepted(5, "alice", client_id="x")
    ]


def test_client_id_of_an_ioc_order_is_free_again_after_its_command() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    exchange.send(limit("alice", "buy", "0.5", "100", client_id="x", tif="IOC"))
    assert exchange.send(limit("alice", "buy", "0.5", "100", client_id="x")) == [
        accepted(2, "alice", client_id="x")
    ]


def test_accepted_with_no_client_id_carries_no_client_id_key() -> None:
    exchange = funded(("alice", "USDT", "1000"))
    assert "client_id" not in exchange.send(limit("alice", "buy", "0.5", "100"))[0]
    assert exchange.send(limit("alice", "buy", "0.5", "100", client_id=""))[0]["client_id"] == ""


# -- deposits and withdrawals -------------------------------------------------------------------------


def test_withdraw_within_the_available_balance_debits_it() -> None:
    exchange = funded(("alice", "USDT", "100"))
    assert exchange.send(withdraw("alice", "USDT", "40.50")) == [
        {"type": "withdraw", "user": "alice", "asset": "USDT", "amount": "40.5"}
    ]
    assert exchange.balance("alice", "USDT") == money("59.5")


def test_withdraw_of_the_whole_balance_leaves_a_zero_entry_in_the_state() -> None:
    exchange = funded(("alice", "USDT", "100"))
    exchange.send(withdraw("alice", "USDT", "100"))
    assert exchange.state()["balances"] == {"alice": {"USDT": money("0")}}


def test_withdraw_of_locked_funds_is_insufficient_balance() -> None:
    exchange = funded(("alice", "USDT", "100"))
    exchange.send(limit("alice", "buy", "0.5", "100"))
    assert exchange.send(withdraw("alice", "USDT", "50.000001")) == [
        rejected("insufficient_balance", "alice")
    ]
    assert exchange.send(withdraw("alice", "USDT", "50"))[0]["type"] == "withdraw"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (withdraw("alice", "DOGE", "1"), "unknown_asset"),
        (withdraw("alice", "USDT", "0"), "invalid_amount"),
        (withdraw("alice", "USDT", "-1"), "invalid_amount"),
        (withdraw("alice", "USDT", "0.0000001"), "invalid_amount"),
        (withdraw("alice", "USDT", "100.000001"), "insufficient_balance"),
        (withdraw("zoe", "USDT", "1"), "insufficient_balance"),
        (withdraw("alice", "BTC", "1"), "insufficient_balance"),
        (withdraw("alice", "DOGE", "-1"), "unknown_asset"),
        (withdraw("alice", "USDT", "-1000"), "invalid_amount"),
    ],
)
def test_withdraw_with_a_broken_rule_is_rejected_with_user_and_reason_only(
    command: Json, reason: str
) -> None:
    exchange = funded(("alice", "USDT", "100"))
    assert exchange.send(command) == [rejected(reason, command["user"])]
    assert exchange.state()["balances"] == {"alice": {"USDT": money("100")}}


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (deposit("alice", "DOGE", "1"), "unknown_asset"),
        (deposit("alice", "usdt", "1"), "unknown_asset"),
        (deposit("alice", "DOGE", "0"), "unknown_asset"),
        (deposit("alice", "USDT", "0"), "invalid_amount"),
        (deposit("alice", "USDT", "-5"), "invalid_amount"),
        (deposit("alice", "USDT", "1.0000001"), "invalid_amount"),
    ],
)
def test_deposit_with_a_broken_rule_is_rejected_and_credits_nothing(command: Json, reason: str) -> None:
    exchange = Exchange()
    assert exchange.send(command) == [rejected(reason, "alice")]
    assert exchange.state()["balances"] == {}


def test_deposit_with_trailing_zeros_beyond_the_precision_is_accepted() -> None:
    exchange = Exchange()
    assert exchange.send(deposit("alice", "USDT", "1.50000000000")) == [
        {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "1.5"}
    ]


CANONICAL = re.compile(r"\A(0|[1-9][0-9]*)(\.[0-9]*[1-9])?\Z")


def decimal_strings(value: Any) -> Iterator[str]:
    """Every amount string of a state line (its names are keys, its amounts are values)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "type":
                yield from decimal_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from decimal_strings(item)
    elif isinstance(value, str):
        yield value


# -- the state line -----------------------------------------------------------------------------------


def test_state_lists_users_and_assets_sorted_and_only_those_ever_credited() -> None:
    commands = [
        deposit("zed", "USDT", "1"),
        deposit("amy", "USDT", "1000"),
        deposit("amy", "BTC", "1"),
        deposit("bob", "DOGE", "1"),
        withdraw("carl", "USDT", "1"),
        limit("dan", "buy", "0.1", "100"),
    ]
    lines = list(replay_lines(CONFIG, [json.dumps(c) for c in commands]))
    state = json.loads(lines[-1])
    assert list(state["balances"]) == ["amy", "zed"]
    assert list(state["balances"]["amy"]) == ["BTC", "USDT"]
    assert list(state["books"]) == ["BTC-USDT", "ETH-USDT"]
    assert state["type"] == "state"
    assert len(lines) == len(commands) + 1


def test_state_with_a_trade_lists_the_fees_user_and_new_assets_of_both_sides() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "1"))
    exchange.run(limit("bob", "sell", "0.1", "100"), limit("alice", "buy", "0.1", "100"))
    balances = exchange.state()["balances"]
    assert list(balances) == ["alice", "bob", "fees"]
    assert list(balances["alice"]) == ["BTC", "USDT"]
    assert list(balances["bob"]) == ["BTC", "USDT"]


def test_state_books_list_bids_highest_first_and_asks_lowest_first_with_level_totals() -> None:
    exchange = funded(("alice", "USDT", "1000"), ("bob", "BTC", "2"))
    exchange.run(
        limit("alice", "buy", "0.1", "99"),
        limit("alice", "buy", "0.2", "99.5"),
        limit("alice", "buy", "0.3", "99"),
        limit("bob", "sell", "0.4", "101"),
        limit("bob", "sell", "0.5", "100.5"),
        limit("bob", "sell", "0.6", "101"),
    )
    assert exchange.book() == {
        "bids": [["99.5", "0.2"], ["99", "0.4"]],
        "asks": [["100.5", "0.5"], ["101", "1"]],
    }


def test_state_decimals_are_canonical_without_exponent_or_trailing_zeros() -> None:
    commands = [
        deposit("alice", "USDT", "0001000.500000"),
        deposit("alice", "BTC", "0.00000001"),
        deposit("bob", "BTC", "100000000000.0"),
        limit("alice", "buy", "0.1000", "100.10"),
    ]
    raw = list(replay_lines(CONFIG, [json.dumps(c) for c in commands]))
    events = [json.loads(line) for line in raw]
    assert [e["amount"] for e in events[:3]] == ["1000.5", "0.00000001", "100000000000"]
    state = events[-1]
    assert state["balances"]["alice"]["USDT"] == money("990.49", "10.01")
    assert state["balances"]["alice"]["BTC"] == money("0.00000001")
    assert state["books"]["BTC-USDT"]["bids"] == [["100.1", "0.1"]]
    assert all(CANONICAL.match(text) for text in decimal_strings(state)), list(decimal_strings(state))


def test_replay_lines_with_the_same_commands_twice_is_byte_identical() -> None:
    commands = [
        json.dumps(c)
        for c in (
            deposit("alice", "USDT", "1000"),
            deposit("bob", "BTC", "1"),
            limit("bob", "sell", "0.3", "100"),
            limit("alice", "buy", "0.5", "101"),
            market_order("bob", "sell", qty="0.1"),
        )
    ]
    assert list(replay_lines(CONFIG, commands)) == list(replay_lines(CONFIG, commands))
