"""The account views, path by path: what each order status, fill and balance change writes and publishes."""

from __future__ import annotations

from tests.unit.accounts.harness import (
    Exchange,
    balances,
    ops_on,
    published,
    records,
    reports,
    trades,
)


def test_limit_order_with_no_match_is_recorded_new_and_listed_open() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ops = ex.limit("alice", "buy", "1", "100", client_id="mine")

    record = records(ops, "alice")[1]
    assert record["status"] == "NEW"
    assert record["type"] == "LIMIT"
    assert record["timeInForce"] == "GTC"
    assert record["clientOrderId"] == "mine"
    assert record["price"] == "100"
    assert record["origQty"] == "1"
    assert record["executedQty"] == "0"
    assert record["selfTradePreventionMode"] == "EXPIRE_MAKER"
    assert record["symbol"] == "BTCUSDT"
    assert record["time"] == record["updateTime"] == ex.ts
    assert ops_on(ops, "ZADD", "tw:open:alice") == [("ZADD", "tw:open:alice", 1, 1)]
    assert ops_on(ops, "HSET", "tw:cid:alice") == [("HSET", "tw:cid:alice", "mine", 1)]
    (report,) = reports(ops, "alice")
    assert (report["x"], report["X"], report["i"], report["c"], report["w"]) == (
        "NEW",
        "NEW",
        1,
        "mine",
        True,
    )
    assert balances(ops, "alice") == {"USDT": {"free": "900", "locked": "100"}}
    (position,) = published(ops, "alice", "outboundAccountPosition")
    assert position["B"] == [{"a": "USDT", "f": "900", "l": "100"}]


def test_order_with_no_client_id_has_empty_client_order_id_and_no_cid_entry() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ops = ex.limit("alice", "buy", "1", "100")
    assert records(ops, "alice")[1]["clientOrderId"] == ""
    assert ops_on(ops, "HSET", "tw:cid:alice") == []


def test_orders_with_full_fill_close_with_fills_commissions_and_balances() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("alice", "buy", "1", "100")
    ops = ex.limit("bob", "sell", "1", "100")

    maker, taker = records(ops, "alice")[1], records(ops, "bob")[2]
    for record in (maker, taker):
        assert record["status"] == "FILLED"
        assert record["executedQty"] == "1"
        assert record["cummulativeQuoteQty"] == "100"
    assert ops_on(ops, "ZREM", "tw:open:alice") == [("ZREM", "tw:open:alice", 1)]
    assert ops_on(ops, "ZADD", "tw:open:bob") == ops_on(ops, "ZREM", "tw:open:bob") == []

    (alice_fill,) = trades(ops, "alice")
    assert alice_fill["isBuyer"] is True and alice_fill["isMaker"] is True
    assert (alice_fill["commission"], alice_fill["commissionAsset"]) == ("0.001", "BTC")
    (bob_fill,) = trades(ops, "bob")
    assert bob_fill["isBuyer"] is False and bob_fill["isMaker"] is False
    assert (bob_fill["commission"], bob_fill["commissionAsset"]) == ("0.2", "USDT")
    assert (
        bob_fill["id"],
        bob_fill["orderId"],
        bob_fill["price"],
        bob_fill["qty"],
        bob_fill["quoteQty"],
    ) == (
        1,
        2,
        "100",
        "1",
        "100",
    )

    new, trade = reports(ops, "bob")
    assert (new["x"], new["X"]) == ("NEW", "NEW")
    assert (trade["x"], trade["X"], trade["l"], trade["z"], trade["L"]) == (
        "TRADE",
        "FILLED",
        "1",
        "1",
        "100",
    )
    assert (trade["n"], trade["N"], trade["t"], trade["m"], trade["Z"], trade["Y"]) == (
        "0.2",
        "USDT",
        1,
        False,
        "100",
        "100",
    )
    (maker_trade,) = reports(ops, "alice")
    assert (maker_trade["X"], maker_trade["m"], maker_trade["n"], maker_trade["N"]) == (
        "FILLED",
        True,
        "0.001",
        "BTC",
    )

    assert balances(ops, "alice") == {
        "BTC": {"free": "0.999", "locked": "0"},
        "USDT": {"free": "900", "locked": "0"},
    }
    assert balances(ops, "bob") == {
        "BTC": {"free": "0", "locked": "0"},
        "USDT": {"free": "99.8", "locked": "0"},
    }
    assert balances(ops, "fees") == {
        "BTC": {"free": "0.001", "locked": "0"},
        "USDT": {"free": "0.2", "locked": "0"},
    }
    (position,) = published(ops, "bob", "outboundAccountPosition")
    assert position["B"] == [{"a": "BTC", "f": "0", "l": "0"}, {"a": "USDT", "f": "99.8", "l": "0"}]


def test_order_with_partial_fills_accumulates_quantity_and_quote_at_maker_price() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("alice", "buy", "2", "100", client_id="big")
    first = ex.limit("bob", "sell", "0.5", "100")
    second = ex.limit("bob", "sell", "0.25", "99")

    after_first = records(first, "alice")[1]
    assert (after_first["status"], after_first["executedQty"], after_first["cummulativeQuoteQty"]) == (
        "PARTIALLY_FILLED",
        "0.5",
        "50",
    )
    assert ops_on(first, "ZREM", "tw:open:alice") == []
    after_second = records(second, "alice")[1]
    assert (after_second["status"], after_second["executedQty"], after_second["cummulativeQuoteQty"]) == (
        "PARTIALLY_FILLED",
        "0.75",
        "75",
    )
    (report,) = reports(second, "alice")
    assert (report["l"], report["z"], report["L"], report["X"], report["w"]) == (
        "0.25",
        "0.75",
        "100",
        "PARTIALLY_FILLED",
        True,
    )
    assert ex.accounts.open.keys() == {1}


def test_cancel_with_partly_filled_order_records_canceled_and_unlists_it() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("alice", "buy", "2", "100", client_id="big")
    ex.limit("bob", "sell", "0.5", "100")
    ops = ex.send(type="cancel", user="alice", market="BTC-USDT", client_id="big")

    record = records(ops, "alice")[1]
    assert (record["status"], record["executedQty"]) == ("CANCELED", "0.5")
    assert ops_on(ops, "ZREM", "tw:open:alice") == [("ZREM", "tw:open:alice", 1)]
    (report,) = reports(ops, "alice")
    assert (report["x"], report["X"], report["C"], report["c"], report["w"]) == (
        "CANCELED",
        "CANCELED",
        "big",
        "big",
        False,
    )
    assert balances(ops, "alice") == {"USDT": {"free": "950", "locked": "0"}}
    assert ex.accounts.open == {}


def test_cancel_with_unknown_order_produces_no_ops() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    assert ex.send(type="cancel", user="alice", market="BTC-USDT", order_id=7) == []
    assert ex.send(type="cancel", user="alice", market="BTC-USDT", client_id="nope") == []


def test_order_with_reject_gets_no_record_and_no_ops() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="10")
    assert ex.limit("alice", "buy", "1", "100") == []
    assert ex.send(type="withdraw", user="alice", asset="USDT", amount="11") == []
    assert ex.accounts.open == {}


def test_ioc_with_remainder_after_partial_fill_is_expired_and_unlocked() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("alice", "buy", "0.5", "100")
    ops = ex.limit("bob", "sell", "1", "100", tif="IOC")

    record = records(ops, "bob")[2]
    assert (record["status"], record["executedQty"], record["timeInForce"]) == ("EXPIRED", "0.5", "IOC")
    new, trade, expired = reports(ops, "bob")
    assert new["X"] == "NEW"
    assert (trade["X"], expired["x"], expired["X"], expired["w"]) == (
        "PARTIALLY_FILLED",
        "EXPIRED",
        "EXPIRED",
        False,
    )
    assert balances(ops, "bob")["BTC"] == {"free": "0.5", "locked": "0"}


def test_orders_with_fok_and_post_only_record_their_types() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    maker = ex.limit("alice", "buy", "0.5", "100", post_only=True)
    assert records(maker, "alice")[1]["type"] == "LIMIT_MAKER"
    ops = ex.limit("bob", "sell", "0.5", "100", tif="FOK")
    assert (records(ops, "bob")[2]["status"], records(ops, "bob")[2]["timeInForce"]) == ("FILLED", "FOK")


def test_fok_that_cannot_fill_is_an_order_that_expired_at_once_as_on_binance() -> None:
    """The engine refuses it (``fok_unfillable``: nothing happens but its order id); Binance has it
    as an order: ``NEW`` then ``EXPIRED`` on the user-data stream, closed in ``allOrders``."""
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("alice", "buy", "0.5", "100")
    ops = ex.limit("bob", "sell", "0.6", "100", tif="FOK", client_id="all-or-none")
    (record,) = records(ops, "bob").values()
    assert (record["orderId"], record["status"], record["timeInForce"], record["clientOrderId"]) == (
        2, "EXPIRED", "FOK", "all-or-none"
    )  # fmt: skip
    assert (record["origQty"], record["executedQty"], record["price"]) == ("0.6", "0", "100")
    assert [(r["x"], r["X"], r["i"]) for r in reports(ops, "bob")] == [
        ("NEW", "NEW", 2),
        ("EXPIRED", "EXPIRED", 2),
    ]
    assert ops_on(ops, "HSET", "tw:cid:bob") == [("HSET", "tw:cid:bob", "all-or-none", 2)]
    assert ops_on(ops, "ZADD", "tw:open:bob") == []
    assert balances(ops, "bob") == {}, "nothing happened to its balances"
    assert records(ops, "alice") == {}, "nor to the order it would have met"


def test_stp_with_expire_maker_ends_own_resting_order_in_match_and_taker_rests() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.limit("alice", "sell", "1", "100")
    ops = ex.limit("alice", "buy", "1", "100")

    recs = records(ops, "alice")
    assert recs[1]["status"] == "EXPIRED_IN_MATCH"
    assert recs[2]["status"] == "NEW"
    assert ops_on(ops, "ZREM", "tw:open:alice") == [("ZREM", "tw:open:alice", 1)]
    assert ops_on(ops, "ZADD", "tw:open:alice") == [("ZADD", "tw:open:alice", 2, 2)]
    kinds = [(r["i"], r["x"], r["X"]) for r in reports(ops, "alice")]
    assert kinds == [(2, "NEW", "NEW"), (1, "TRADE_PREVENTION", "EXPIRED_IN_MATCH")]


def test_stp_with_expire_taker_on_gtc_taker_ends_taker_in_match() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.limit("alice", "sell", "1", "100")
    ops = ex.limit("alice", "buy", "1", "100", stp="expire_taker")
    recs = records(ops, "alice")
    assert recs == {2: recs[2]}
    assert recs[2]["status"] == "EXPIRED_IN_MATCH"
    assert recs[2]["selfTradePreventionMode"] == "EXPIRE_TAKER"
    assert ex.accounts.open.keys() == {1}


def test_stp_with_expire_taker_ioc_meeting_own_order_after_a_fill_ends_in_match() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.fund("bob", BTC="1")
    ex.limit("bob", "sell", "0.5", "100")
    ex.limit("alice", "sell", "0.5", "101")
    ops = ex.limit("alice", "buy", "1", "102", tif="IOC", stp="expire_taker")
    record = records(ops, "alice")[3]
    assert (record["status"], record["executedQty"]) == ("EXPIRED_IN_MATCH", "0.5")
    assert reports(ops, "alice")[-1]["x"] == "TRADE_PREVENTION"


def test_stp_with_expire_taker_ioc_stopped_by_its_limit_is_plainly_expired() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.fund("bob", BTC="1")
    ex.limit("bob", "sell", "0.5", "100")
    ex.limit("alice", "sell", "0.5", "101")
    ops = ex.limit("alice", "buy", "1", "100.5", tif="IOC", stp="expire_taker")
    assert records(ops, "alice")[3]["status"] == "EXPIRED"


def test_stp_with_expire_taker_ioc_and_other_users_order_in_front_is_plainly_expired() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.fund("bob", BTC="1")
    ex.limit("bob", "sell", "0.5", "100")
    ex.limit("alice", "sell", "0.5", "100")
    ops = ex.limit("alice", "buy", "0.25", "100", tif="IOC", stp="expire_taker")
    assert records(ops, "alice")[3]["status"] == "FILLED"
    ops = ex.limit("alice", "buy", "1", "99", tif="IOC", stp="expire_taker")
    assert records(ops, "alice")[4]["status"] == "EXPIRED"


def test_stp_with_expire_both_ends_maker_and_taker_in_match() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.limit("alice", "sell", "1", "100")
    ops = ex.send(
        type="new_order",
        user="alice",
        market="BTC-USDT",
        side="buy",
        kind="market",
        qty="1",
        stp="expire_both",
    )
    recs = records(ops, "alice")
    assert (recs[1]["status"], recs[2]["status"], recs[2]["type"]) == (
        "EXPIRED_IN_MATCH",
        "EXPIRED_IN_MATCH",
        "MARKET",
    )


def test_stp_with_market_sell_expire_taker_meeting_own_bid_ends_in_match() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.limit("alice", "buy", "1", "100")
    ops = ex.send(
        type="new_order",
        user="alice",
        market="BTC-USDT",
        side="sell",
        kind="market",
        qty="1",
        stp="expire_taker",
    )
    assert records(ops, "alice")[2]["status"] == "EXPIRED_IN_MATCH"


def test_market_buy_with_quote_spent_is_filled_with_bought_qty_as_orig_qty() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("bob", "sell", "1", "100")
    ops = ex.send(
        type="new_order", user="alice", market="BTC-USDT", side="buy", kind="market", quote_qty="50"
    )
    record = records(ops, "alice")[2]
    assert (record["status"], record["origQty"], record["executedQty"]) == ("FILLED", "0.5", "0.5")
    assert (record["origQuoteOrderQty"], record["cummulativeQuoteQty"], record["price"]) == ("50", "50", "0")
    assert reports(ops, "alice")[-1]["X"] == "FILLED"
    assert reports(ops, "alice")[-1]["Q"] == "50"
    assert records(ops, "bob")[1]["status"] == "PARTIALLY_FILLED"


def test_market_buy_with_quote_left_below_one_lot_is_filled_not_expired() -> None:
    """Binance answers FILLED to a market buy by quote whose leftover cannot pay one more lot (the
    engine expires that dust): origQty is what it bought, and no EXPIRED report follows its fill."""
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("bob", "sell", "1", "100")
    ops = ex.send(
        type="new_order", user="alice", market="BTC-USDT", side="buy", kind="market", quote_qty="50.009999"
    )
    record = records(ops, "alice")[2]
    assert (record["status"], record["origQty"], record["executedQty"]) == ("FILLED", "0.5", "0.5")
    assert (record["origQuoteOrderQty"], record["cummulativeQuoteQty"]) == ("50.009999", "50")
    assert [r["X"] for r in reports(ops, "alice")] == ["NEW", "FILLED"]
    assert balances(ops, "alice")["USDT"] == {"free": "950", "locked": "0"}


def test_market_buy_with_quote_beyond_the_book_is_expired_after_its_fills() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.limit("bob", "sell", "0.5", "100")
    ex.limit("bob", "sell", "0.25", "102")
    ops = ex.send(
        type="new_order", user="alice", market="BTC-USDT", side="buy", kind="market", quote_qty="150"
    )
    record = records(ops, "alice")[3]
    assert (record["status"], record["executedQty"], record["cummulativeQuoteQty"]) == (
        "EXPIRED",
        "0.75",
        "75.5",
    )
    assert [r["X"] for r in reports(ops, "alice")] == [
        "NEW",
        "PARTIALLY_FILLED",
        "PARTIALLY_FILLED",
        "EXPIRED",
    ]
    assert balances(ops, "alice") == {
        "BTC": {"free": "0.7485", "locked": "0"},
        "USDT": {"free": "924.5", "locked": "0"},
    }


def test_transfers_with_deposit_and_withdraw_publish_balance_update_then_account_position() -> None:
    ex = Exchange()
    ops = ex.send(type="deposit", user="alice", asset="BTC", amount="1.5")
    update, position = published(ops, "alice")
    assert (update["e"], update["a"], update["d"], update["E"], update["T"]) == (
        "balanceUpdate",
        "BTC",
        "1.5",
        ex.ts,
        ex.ts,
    )
    assert position == {
        "e": "outboundAccountPosition",
        "E": ex.ts,
        "u": ex.ts,
        "B": [{"a": "BTC", "f": "1.5", "l": "0"}],
    }
    ops = ex.send(type="withdraw", user="alice", asset="BTC", amount="0.25")
    assert published(ops, "alice", "balanceUpdate")[0]["d"] == "-0.25"
    assert balances(ops, "alice") == {"BTC": {"free": "1.25", "locked": "0"}}


def test_market_order_with_no_balance_change_publishes_no_account_position() -> None:
    ex = Exchange()
    ex.fund("alice", BTC="1")
    ops = ex.send(type="new_order", user="alice", market="BTC-USDT", side="sell", kind="market", qty="1")
    assert records(ops, "alice")[1]["status"] == "EXPIRED"
    assert published(ops, "alice", "outboundAccountPosition") == []
    assert balances(ops, "alice") == {}


def test_self_trade_with_stp_none_appends_both_sides_to_the_users_trades() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000", BTC="1")
    ex.limit("alice", "sell", "1", "100")
    ops = ex.limit("alice", "buy", "1", "100", stp="none")
    fills = trades(ops, "alice")
    assert [(f["orderId"], f["isBuyer"], f["isMaker"]) for f in fills] == [(2, True, False), (1, False, True)]
    taker, maker = ops_on(ops, "XADD", "tw:mytrades:alice:BTCUSDT")
    assert taker[2:7] == ("MAXLEN", "~", 10_000, f"{fills[0]['id']}-0", "t")
    assert maker[2:7] == ("MAXLEN", "~", 10_000, f"{fills[0]['id']}-1", "t")


def test_flush_with_batch_of_commands_writes_each_orders_final_record_once() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.apply(
        '{"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit", '
        '"qty": "1", "price": "100", "client_id": "x"}'
    )
    ex.apply(
        '{"type": "new_order", "user": "bob", "market": "BTC-USDT", "side": "sell", "kind": "limit", '
        '"qty": "1", "price": "100"}'
    )
    ops = ex.accounts.flush()
    assert len(ops_on(ops, "HSET", "tw:orders:alice")) == 1
    assert records(ops, "alice")[1]["status"] == "FILLED"
    assert ops_on(ops, "ZADD", "tw:open:alice") == ops_on(ops, "ZREM", "tw:open:alice") == []
    assert [r["X"] for r in reports(ops, "alice")] == ["NEW", "FILLED"]
    assert len(published(ops, "alice", "outboundAccountPosition")) == 2
    assert ex.accounts.flush() == []


def test_a_batch_sends_each_user_one_message_with_its_payloads_in_order() -> None:
    ex = Exchange()
    ex.fund("alice", USDT="1000")
    ex.fund("bob", BTC="1")
    ex.apply(
        '{"type":"new_order","user":"bob","market":"BTC-USDT","side":"sell","kind":"limit","qty":"1","price":"100"}'
    )
    ex.apply('{"type":"deposit","user":"alice","asset":"USDT","amount":"5"}')
    ex.apply(
        '{"type":"new_order","user":"alice","market":"BTC-USDT","side":"buy","kind":"limit","qty":"1","price":"100"}'
    )
    ops = ex.accounts.flush()  # three commands in one batch
    messages = ops_on(ops, "PUBLISH", "tw:user:alice")
    assert len(messages) == 1 and len(ops_on(ops, "PUBLISH", "tw:user:bob")) == 1
    kinds = [(p["e"], p.get("x")) for p in published(ops, "alice")]
    assert kinds == [
        ("balanceUpdate", None),
        ("outboundAccountPosition", None),
        ("executionReport", "NEW"),
        ("executionReport", "TRADE"),
        ("outboundAccountPosition", None),
    ]
    assert str(messages[0][2]).count("\n") == len(kinds) - 1  # one JSON text per line
