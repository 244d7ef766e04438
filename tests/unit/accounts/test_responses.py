"""Binance order responses built from a reply's spec events, and reject reasons as Binance errors."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tests.strategies import random_stream
from tests.unit.accounts.harness import CONFIG, Exchange, records, trades
from tradewire.accounts import (
    REJECT_REASONS,
    OrderRejected,
    binance_error,
    binance_order_response,
    cancel_response,
    rejection,
)
from tradewire.accounts.errors import UNKNOWN_REASON
from tradewire.engine import EventCodec, NewOrder, decode
from tradewire.engine import engine as engine_module

CODEC = EventCodec(CONFIG)


def spec_events(ex: Exchange) -> list[dict[str, object]]:
    """The reply's events as the gateway gets them: spec JSON, through a JSON round trip."""
    rendered: list[dict[str, object]] = orjson.loads(orjson.dumps([CODEC.render(e) for e in ex.events]))
    return rendered


def test_order_response_with_random_streams_matches_the_record_the_views_wrote() -> None:
    """Every order the views record, a refused FOK included (Binance has it as an order that
    expired), is answered as the views wrote it."""
    compared = expired_fok = 0
    for seed in range(3):
        ex = Exchange()
        for line in random_stream(seed, 1200):
            ex.apply(line)
            ops = ex.accounts.flush()
            command = decode(line)
            if type(command) is not NewOrder:
                continue
            events = spec_events(ex)
            if rejection(events) is not None and events[0].get("reason") != "fok_unfillable":
                with pytest.raises(OrderRejected):
                    binance_order_response(command, events, ex.ts, CONFIG)
                continue
            response = binance_order_response(command, events, ex.ts, CONFIG)
            record = records(ops, command.user)[response["orderId"]]
            for field in (
                "symbol",
                "clientOrderId",
                "price",
                "origQty",
                "executedQty",
                "cummulativeQuoteQty",
                "origQuoteOrderQty",
                "timeInForce",
                "type",
                "side",
                "workingTime",
                "selfTradePreventionMode",
            ):
                assert response[field] == record[field], field
            if record["status"] == "EXPIRED_IN_MATCH" and command.stp == "expire_taker":
                assert response["status"] in ("EXPIRED", "EXPIRED_IN_MATCH")
            else:
                assert response["status"] == record["status"]
            fills = response["fills"]
            mine = [t for t in trades(ops, command.user) if t["orderId"] == response["orderId"]]
            assert [
                (f["tradeId"], f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in fills
            ] == [
                (t["id"], t["price"], t["qty"], t["commission"], t["commissionAsset"])
                for t in mine
                if not t["isMaker"]
            ]
            compared += 1
            expired_fok += response["status"] == "EXPIRED" and rejection(events) is not None
    assert compared > 500
    assert expired_fok > 5, "no FOK that could not fill: the case went untested"


def test_order_response_with_ack_and_result_types_leaves_out_fields() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    line = (
        '{"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",'
        ' "qty": "1", "price": "100.50", "client_id": "c1"}'
    )
    ex.apply(line)
    command = decode(line)
    assert type(command) is NewOrder
    events = spec_events(ex)
    ack = binance_order_response(command, events, ex.ts, CONFIG, "ACK")
    assert ack == {
        "symbol": "BTCUSDT",
        "orderId": 1,
        "orderListId": -1,
        "clientOrderId": "c1",
        "transactTime": ex.ts,
    }
    result = binance_order_response(command, events, ex.ts, CONFIG, "RESULT")
    assert "fills" not in result
    assert (result["price"], result["status"], result["executedQty"]) == ("100.5", "NEW", "0")
    assert binance_order_response(command, events, ex.ts, CONFIG)["fills"] == []


def test_order_response_with_refused_order_raises_binance_error() -> None:
    ex = Exchange()
    line = (
        '{"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",'
        ' "qty": "1", "price": "100"}'
    )
    ex.apply(line)
    command = decode(line)
    assert type(command) is NewOrder
    with pytest.raises(OrderRejected) as raised:
        binance_order_response(command, spec_events(ex), ex.ts, CONFIG)
    assert raised.value.reason == "insufficient_balance"
    assert raised.value.error.body() == {
        "code": -2010,
        "msg": "Account has insufficient balance for requested action.",
    }


def test_cancel_response_with_open_record_reports_canceled_and_original_client_id() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ops = ex.limit("alice", "buy", "1", "100", client_id="keep")
    response = cancel_response(records(ops, "alice")[1], 123, "the-cancel")
    assert (response["status"], response["origClientOrderId"], response["transactTime"]) == (
        "CANCELED",
        "keep",
        123,
    )
    assert response["clientOrderId"] == "the-cancel"
    assert (response["orderId"], response["origQty"], response["price"]) == (1, "1", "100")


@pytest.mark.parametrize(
    ("reason", "code", "msg"),
    [
        ("insufficient_balance", -2010, "Account has insufficient balance for requested action."),
        ("unknown_order", -2011, "Unknown order sent."),
        ("duplicate_client_id", -2010, "Duplicate order sent."),
        ("invalid_price", -1013, "Filter failure: PRICE_FILTER"),
        ("invalid_qty", -1013, "Filter failure: LOT_SIZE"),
        ("min_notional", -1013, "Filter failure: NOTIONAL"),
        ("would_cross", -2010, "Order would immediately match and take."),
        ("unknown_market", -1121, "Invalid symbol."),
    ],
)
def test_binance_error_with_engine_reason_gives_binance_code_and_message(
    reason: str, code: int, msg: str
) -> None:
    assert binance_error(reason).body() == {"code": code, "msg": msg}


def test_binance_error_with_every_reason_the_engine_uses_is_a_known_error() -> None:
    source = Path(engine_module.__file__).read_text()
    reasons = set(re.findall(r'Rejected\("([a-z_]+)"', source))
    assert len(reasons) >= 10
    assert reasons <= REJECT_REASONS.keys()
    assert binance_error("no_such_reason") == UNKNOWN_REASON


def test_rejection_with_accepted_order_is_none() -> None:
    assert rejection([{"type": "accepted", "order_id": 1, "user": "a", "market": "BTC-USDT"}]) is None
    error = rejection([{"type": "rejected", "order_id": 1, "user": "a", "reason": "fok_unfillable"}])
    assert error is not None and error.code == -2010
