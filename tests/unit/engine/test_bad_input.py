"""Bad input of every kind the issue names: a precise ``rejected`` event, and nothing else changes.

Each case runs against an engine that already holds balances and a resting order, and compares the
whole snapshot before and after, so a rejection that leaks a reservation or a book change fails.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from tests.unit.engine.test_rules import BASE_CONFIG
from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.engine.snapshot import dump
from tradewire.replay import replay_lines

CONFIG = ExchangeConfig.from_dict(BASE_CONFIG)
CODEC = EventCodec(CONFIG)
SETUP = [
    {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "1000"},
    {"type": "deposit", "user": "alice", "asset": "BTC", "amount": "1"},
    {"type": "deposit", "user": "bob", "asset": "USDT", "amount": "100"},
    {
        "type": "new_order",
        "user": "alice",
        "market": "BTC-USDT",
        "side": "sell",
        "kind": "limit",
        "qty": "0.5",
        "price": "100",
        "client_id": "x",
    },
]
NEXT_ORDER_ID = 2
BIG = "1" * 31
"""31 significant digits: more than an amount may have."""


def order(**fields: Any) -> str:
    command = {
        "type": "new_order",
        "user": "bob",
        "market": "BTC-USDT",
        "side": "buy",
        "kind": "limit",
        "qty": "0.1",
        "price": "100",
    }
    command.update(fields)
    return json.dumps({k: v for k, v in command.items() if v is not None})


def money(kind: str, **fields: Any) -> str:
    command = {"type": kind, "user": "alice", "asset": "USDT", "amount": "1"}
    command.update(fields)
    return json.dumps(command)


def cancel(**fields: Any) -> str:
    return json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", **fields})


BAD_COMMAND = {"type": "rejected", "reason": "bad_command"}


def order_rejected(reason: str, user: str = "bob") -> dict[str, Any]:
    return {"type": "rejected", "order_id": NEXT_ORDER_ID, "user": user, "reason": reason}


def user_rejected(reason: str, user: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"type": "rejected", "user": user, "reason": reason, **extra}


CASES: list[tuple[str, str, dict[str, Any]]] = [
    # malformed JSON and non-objects
    ("not json", "not json", BAD_COMMAND),
    ("truncated object", '{"type": "deposit", "user": "alice"', BAD_COMMAND),
    ("empty line", "", BAD_COMMAND),
    ("array", "[]", BAD_COMMAND),
    ("trailing garbage", money("deposit") + " x", BAD_COMMAND),
    ("unknown type", json.dumps({"type": "transfer", "user": "alice"}), BAD_COMMAND),
    ("invalid utf-8", '{"type": "deposit", "user": "\udc80"}', BAD_COMMAND),
    # wrong JSON types
    ("amount as a JSON number", money("deposit", amount=5), BAD_COMMAND),
    ("user as a number", money("deposit", user=7), BAD_COMMAND),
    ("qty as null", order(qty=None).replace('"price"', '"qty": null, "price"'), BAD_COMMAND),
    ("post_only as a string", order(post_only="true"), BAD_COMMAND),
    ("order_id as a string", cancel(order_id="1"), BAD_COMMAND),
    ("order_id as a bool", cancel(order_id=True), BAD_COMMAND),
    ("side in upper case", order(side="BUY"), BAD_COMMAND),
    ("tif in lower case", order(tif="ioc"), BAD_COMMAND),
    (
        "missing side",
        json.dumps({"type": "new_order", "user": "bob", "market": "BTC-USDT", "kind": "limit"}),
        BAD_COMMAND,
    ),
    ("cancel naming both ids", cancel(order_id=1, client_id="x"), BAD_COMMAND),
    ("cancel naming neither id", cancel(), BAD_COMMAND),
    # numbers not of the form -?digits(.digits)?
    ("NaN string", money("deposit", amount="NaN"), BAD_COMMAND),
    ("NaN literal", '{"type": "deposit", "user": "alice", "asset": "USDT", "amount": NaN}', BAD_COMMAND),
    ("exponent", order(price="1e2"), BAD_COMMAND),
    ("leading plus", order(qty="+0.1"), BAD_COMMAND),
    ("leading point", money("deposit", amount=".5"), BAD_COMMAND),
    ("infinity", order(price="Infinity"), BAD_COMMAND),
    # zero, negative, too many decimals, too many digits
    ("deposit of zero", money("deposit", amount="0"), user_rejected("invalid_amount")),
    ("negative deposit", money("deposit", amount="-5"), user_rejected("invalid_amount")),
    ("deposit finer than precision", money("deposit", amount="0.0000001"), user_rejected("invalid_amount")),
    ("deposit over 30 digits", money("deposit", amount=BIG), user_rejected("invalid_amount")),
    ("withdraw of zero", money("withdraw", amount="0.000"), user_rejected("invalid_amount")),
    ("withdraw over 30 digits", money("withdraw", amount=BIG), user_rejected("invalid_amount")),
    ("qty of zero", order(qty="0"), order_rejected("invalid_qty")),
    ("negative qty", order(qty="-0.1"), order_rejected("invalid_qty")),
    ("qty finer than the lot", order(qty="0.00001"), order_rejected("invalid_qty")),
    ("qty finer than precision", order(qty="0.000000001"), order_rejected("invalid_qty")),
    ("qty over 30 digits", order(qty=BIG), order_rejected("invalid_qty")),
    (
        "quote_qty finer than precision",
        order(kind="market", price=None, qty=None, quote_qty="1.0000001"),
        order_rejected("invalid_qty"),
    ),
    ("price of zero", order(price="0"), order_rejected("invalid_price")),
    ("negative price", order(price="-100"), order_rejected("invalid_price")),
    ("price finer than the tick", order(price="100.001"), order_rejected("invalid_price")),
    ("price over 30 digits", order(price=BIG), order_rejected("invalid_price")),
    # unknown assets, users, markets and orders
    ("unknown asset", money("deposit", asset="DOGE"), user_rejected("unknown_asset")),
    (
        "withdraw by an unknown user",
        money("withdraw", user="zed"),
        user_rejected("insufficient_balance", "zed"),
    ),
    (
        "withdraw of more than available",
        money("withdraw", amount="1000.000001"),
        user_rejected("insufficient_balance"),
    ),
    ("order by an unknown user", order(user="zed"), order_rejected("insufficient_balance", "zed")),
    ("order in an unknown market", order(market="DOGE-USDT"), order_rejected("unknown_market")),
    ("cancel of an unknown order id", cancel(order_id=99), user_rejected("unknown_order", order_id=99)),
    ("cancel of an unknown client id", cancel(client_id="nope"), user_rejected("unknown_order")),
    (
        "cancel of another user's order",
        cancel(user="bob", order_id=1),
        user_rejected("unknown_order", "bob", order_id=1),
    ),
    ("cancel by an unknown user", cancel(user="zed", client_id="x"), user_rejected("unknown_order", "zed")),
    (
        "cancel in the wrong market",
        cancel(market="ETH-USDT", order_id=1),
        user_rejected("unknown_order", order_id=1),
    ),
    (
        "cancel in an unknown market",
        cancel(market="DOGE-USDT", order_id=1),
        user_rejected("unknown_order", order_id=1),
    ),
]


def funded_engine() -> Engine:
    engine = Engine(CONFIG)
    for command in SETUP:
        engine.apply(decode(orjson.dumps(command)))
    assert engine.next_order_id == NEXT_ORDER_ID and len(engine.orders) == 1
    return engine


@pytest.mark.parametrize(("line", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_with_each_kind_of_error_is_rejected_with_its_reason_and_changes_nothing(
    line: str, expected: dict[str, Any]
) -> None:
    engine = funded_engine()
    before = dump(engine)
    events = [CODEC.render(event) for event in engine.apply(decode(line.encode("utf-8", "surrogateescape")))]
    assert events == [expected]
    if "order_id" in expected and expected.get("reason") not in ("unknown_order",):
        engine.next_order_id -= 1  # a valid new_order takes an id even when it is rejected
    assert dump(engine) == before


def test_replay_with_a_cancel_naming_an_order_id_beyond_64_bits_echoes_it_in_the_rejection() -> None:
    huge = 10**30
    line = json.dumps({"type": "cancel", "user": "alice", "market": "BTC-USDT", "order_id": huge})
    out = list(replay_lines(CONFIG, [line]))
    assert json.loads(out[0]) == {
        "type": "rejected",
        "user": "alice",
        "order_id": huge,
        "reason": "unknown_order",
    }
    assert (
        out[0]
        == b'{"type":"rejected","order_id":'
        + str(huge).encode()
        + b',"user":"alice","reason":"unknown_order"}'
    )


def test_amount_with_many_leading_and_trailing_zeros_but_few_digits_is_accepted() -> None:
    engine = funded_engine()
    padded = "0" * 70 + "2." + "0" * 70
    events = [CODEC.render(e) for e in engine.apply(decode(money("deposit", amount=padded)))]
    assert events == [{"type": "deposit", "user": "alice", "asset": "USDT", "amount": "2"}]


def test_number_texts_are_checked_every_time_whatever_the_memo_of_valid_ones_holds() -> None:
    """decode() remembers number texts it found valid; a malformed one is refused before and after
    the memo is full and cleared, and a valid one is accepted again after the clearing."""
    from tradewire.engine import commands

    def order(qty: str, price: str = "100") -> bytes:
        return orjson.dumps(
            {"type": "new_order", "user": "u", "market": "BTC-USDT", "side": "buy", "kind": "limit",
             "qty": qty, "price": price}
        )  # fmt: skip

    malformed = ["1e5", "-.5", ".5", "1.", "1\n", " 1", "1_000", "0x10", "\u0661", "NaN", "+1", ""]
    assert decode(order("0.5")) is not None
    for text in malformed:
        assert decode(order(text)) is None, text
        assert decode(order("0.5", price=text)) is None, text
        assert decode(orjson.dumps({"type": "deposit", "user": "u", "asset": "BTC", "amount": text})) is None
    for i in range(commands._NUMBERS_KEPT + 10):  # fills the memo past its bound: it is cleared
        assert decode(order(f"{i}.5")) is not None
    assert len(commands._valid_numbers) <= commands._NUMBERS_KEPT
    for text in malformed:
        assert decode(order(text)) is None, text
    assert decode(order("0.5")) is not None


@pytest.mark.parametrize("field", ["amount", "qty", "price", "quote_qty"])
def test_thousands_of_leading_zeros_are_a_valid_number_not_a_crash(field: str) -> None:
    """``int()`` refuses texts of more than 4,300 digits: an amount padded with 5,000 zeros (one
    request from any trader) raised out of the engine, and the command, journalled, raised again at
    every restart. The zeros are not significant digits; the value is valid."""
    engine = funded_engine()
    padded = "0" * 5000 + "2"
    if field == "amount":
        events = [CODEC.render(e) for e in engine.apply(decode(money("deposit", amount=padded)))]
        assert events == [{"type": "deposit", "user": "alice", "asset": "USDT", "amount": "2"}]
        return
    fields = {"side": "buy", "kind": "limit", "qty": "0.5", "price": "90"}
    if field == "quote_qty":
        fields = {"side": "buy", "kind": "market", "quote_qty": padded}
    else:
        fields[field] = padded if field == "price" else "0" * 5000 + "0.5"
    line = orjson.dumps({"type": "new_order", "user": "alice", "market": "BTC-USDT", **fields})
    first = CODEC.render(engine.apply(decode(line))[0])
    assert first["type"] == "accepted", first
    assert first.get("price", "0") in ("0", "90", "2") and first.get("qty", "0.5") == "0.5"


def test_json_nested_a_thousand_deep_is_a_bad_command_and_processing_goes_on() -> None:
    deep = b'{"type":"deposit","user":"a","asset":"BTC","amount":"1","x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    out = list(replay_lines(CONFIG, [deep, money("deposit", amount="1").encode()]))
    assert orjson.loads(out[0]) == {"type": "rejected", "reason": "bad_command"}
    assert orjson.loads(out[1])["type"] == "deposit"


def test_invalid_utf8_anywhere_on_the_line_is_a_bad_command_even_in_a_field_no_one_reads() -> None:
    """Not UTF-8 is not JSON; msgspec skips an unknown field's value without reading it."""
    line = b'{"type":"deposit","user":"alice","asset":"USDT","amount":"1","x":"\xff\xfe"}'
    assert decode(line) is None
    accented = '{"type":"deposit","user":"\u00e9l\u00e8ve","asset":"USDT","amount":"1"}'.encode()
    assert decode(accented) is not None


def _nested(depth: int) -> bytes:
    """A deposit with an unknown field nested ``depth`` arrays deep (the line: one more)."""
    head = b'{"type":"deposit","user":"a","asset":"BTC","amount":"1","x":'
    return head + b"[" * depth + b"]" * depth + b"}"


def _at_depth(frames: int, line: bytes) -> object:
    """``decode(line)`` called ``frames`` Python frames deeper than here."""
    if frames:
        return _at_depth(frames - 1, line)
    return decode(line)


@pytest.mark.parametrize("depth", [900, 128])
def test_a_line_nested_past_the_bound_is_a_bad_command_whatever_the_callers_stack(depth: int) -> None:
    """msgspec's own limit is the interpreter's recursion limit, which counts the caller's frames: a
    line 900 deep decoded from a shallow stack and not from a deep one (live vs recovery)."""
    assert decode(_nested(depth)) is None
    assert _at_depth(300, _nested(depth)) is None


def test_a_line_nested_to_the_bound_or_with_brackets_inside_strings_stays_a_command() -> None:
    assert _at_depth(300, _nested(127)) is not None and decode(_nested(127)) is not None
    in_text = b'{"type":"deposit","user":"a","asset":"BTC","amount":"1","x":"' + b"[{" * 600 + b'\\""}'
    assert decode(in_text) is not None
