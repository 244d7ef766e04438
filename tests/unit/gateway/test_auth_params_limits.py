"""Signing, time windows, parameters to engine commands, limits and secrets: pure pieces."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from msgspec import UNSET

from tradewire.gateway.auth import check_signature, check_time, parse_params, signed_payload, strip_signature
from tradewire.gateway.errors import ApiError
from tradewire.gateway.limits import MessageRate, WeightWindow
from tradewire.gateway.params import (
    cancel,
    cancel_restrictions,
    int_param,
    limit_param,
    new_order,
    past_maximum,
    response_type,
    time_range,
)
from tradewire.gateway.secrets import SecretError, decrypt_secret, encrypt_secret, load_master_key

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def _sig(payload: bytes) -> str:
    return hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()


def test_signed_payload_with_binance_documented_example_verifies() -> None:
    # Binance's documentation example: query string only.
    query = (
        b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
        b"&timestamp=1499827319559"
    )
    expected = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    payload, signature = signed_payload(query + b"&signature=" + expected.encode(), b"")
    assert payload == query and signature == expected
    check_signature(SECRET, payload, signature)


def test_signed_payload_with_query_and_body_concatenates_them_without_separator() -> None:
    payload, signature = signed_payload(b"symbol=LTCBTC&side=BUY", b"quantity=1&timestamp=1&signature=ab")
    assert payload == b"symbol=LTCBTC&side=BUYquantity=1&timestamp=1" and signature == "ab"


def test_a_signature_whose_name_is_percent_encoded_is_the_signature_as_the_parameters_read_it() -> None:
    """``parse_params`` decodes ``%73ignature`` to ``signature``: left in the payload, the request
    had a signature parameter and was answered that it had none."""
    assert strip_signature(b"a=1&%73ignature=ab") == (b"a=1", "ab")
    assert strip_signature(b"a=1&%73ig=ab&signatures=cd") == (b"a=1&%73ig=ab&signatures=cd", None)


def test_check_signature_with_wrong_or_missing_signature_raises_binance_codes() -> None:
    with pytest.raises(ApiError) as wrong:
        check_signature(SECRET, b"a=1", _sig(b"a=2"))
    assert wrong.value.code == -1022
    with pytest.raises(ApiError) as missing:
        check_signature(SECRET, b"a=1", None)
    assert missing.value.code == -1102


@pytest.mark.parametrize("raw", [b"\xc3\xa9", b"\xff" * 64, b"%C3%A9"], ids=["utf-8", "not-utf-8", "escaped"])
def test_check_signature_of_non_ascii_bytes_is_a_bad_signature(raw: bytes) -> None:
    payload, signature = signed_payload(b"a=1&signature=" + raw, b"")
    with pytest.raises(ApiError) as bad:
        check_signature(SECRET, payload, signature)
    assert bad.value.code == -1022


def test_strip_signature_with_no_signature_returns_input() -> None:
    assert strip_signature(b"a=1&b=2") == (b"a=1&b=2", None)


@pytest.mark.parametrize(
    ("timestamp", "window", "ok"),
    [(10_000, None, True), (4_999, None, False), (10_999, None, True), (11_000, None, False),
     (1_000, "9000", True), (999, "9000", False)],
)  # fmt: skip
def test_check_time_with_window_accepts_only_recent_requests(
    timestamp: int, window: str | None, ok: bool
) -> None:
    params = {"timestamp": str(timestamp)} | ({"recvWindow": window} if window else {})
    if ok:
        check_time(params, now_ms=10_000)
    else:
        with pytest.raises(ApiError) as refused:
            check_time(params, now_ms=10_000)
        assert refused.value.code == -1021


def test_check_time_with_oversized_window_or_missing_timestamp_refuses() -> None:
    with pytest.raises(ApiError, match="recvWindow"):
        check_time({"timestamp": "1", "recvWindow": "60001"}, now_ms=1)
    with pytest.raises(ApiError, match="timestamp"):
        check_time({}, now_ms=1)


def test_parse_params_with_query_and_body_merges_them_the_query_first() -> None:
    assert parse_params(b"a=1&b=2", b"b=3&c=%20") == {"a": "1", "b": "2", "c": " "}
    assert parse_params(b"", b"b=3&c=x+y") == {"b": "3", "c": "x y"}


@pytest.mark.parametrize(
    ("query", "body"),
    [(b"side=SELL&side=BUY", b""), (b"", b"side=SELL&side=BUY"), (b"a=1&a=1", b""), (b"a=%31&a=", b"")],
)
def test_parse_params_with_a_name_twice_in_one_part_refuses_with_1101(query: bytes, body: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        parse_params(query, body)
    assert (refused.value.code, refused.value.msg) == (-1101, "Duplicate values for a parameter detected.")


def test_parse_params_decodes_utf8_raw_or_percent_encoded() -> None:
    three = "\u0663"  # ARABIC-INDIC DIGIT THREE
    assert parse_params(b"quantity=\xd9\xa3", b"") == {"quantity": three}
    assert parse_params(b"", b"quantity=%D9%A3&x=1") == {"quantity": three, "x": "1"}
    with pytest.raises(ApiError, match="'quantity'") as refused:
        new_order({"side": "BUY", "type": "MARKET", **parse_params(b"quantity=\xd9\xa3", b"")}, "u", "M")
    assert three in refused.value.msg


@pytest.mark.parametrize(
    "raw", [b"quantity=\xff", b"quantity=%FF", b"quantity=1&quantity2=%C3", b"quantity=\xd9"]
)
def test_parse_params_with_invalid_utf8_refuses_with_1100(raw: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        parse_params(b"", raw)
    assert refused.value.code == -1100 and "legal range is 'UTF-8 text'" in refused.value.msg
    assert "'quantity" in refused.value.msg


def test_new_order_with_limit_maker_is_a_post_only_limit() -> None:
    order = new_order({"side": "SELL", "type": "LIMIT_MAKER", "quantity": "1", "price": "2"}, "u", "BTC-USDT")
    assert order.post_only and order.kind == "limit" and order.side == "sell" and order.tif == "GTC"
    assert isinstance(order.client_id, str) and order.client_id.startswith("tw")


def test_new_order_with_market_quote_qty_and_stp_maps_to_engine_fields() -> None:
    params = {"side": "BUY", "type": "MARKET", "quoteOrderQty": "25.5",
              "selfTradePreventionMode": "EXPIRE_BOTH", "newClientOrderId": "c-1"}  # fmt: skip
    order = new_order(params, "u", "BTC-USDT")
    assert order.kind == "market" and order.quote_qty == "25.5" and order.qty is UNSET
    assert order.stp == "expire_both" and order.client_id == "c-1"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1"}, -1102),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTD", "quantity": "1", "price": "1"}, -1115),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1e3", "price": "1"}, -1100),
        ({"side": "HOLD", "type": "LIMIT"}, -1100),
        ({"side": "BUY", "type": "MARKET"}, -1102),
        ({"side": "BUY", "type": "MARKET", "quantity": "1", "price": "1"}, -1106),
        ({"side": "SELL", "type": "MARKET", "quoteOrderQty": "1"}, -1013),
        ({"side": "BUY", "type": "STOP_LOSS_LIMIT", "quantity": "1"}, -1116),
        ({"side": "BUY", "type": "STOP_LOSS_LIMIT", "quantity": "1", "price": "1", "stopPrice": "1"}, -1116),
        ({"side": "BUY", "type": "LIMIT_MAKER", "quantity": "1", "price": "1", "timeInForce": "GTC"}, -1106),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1",
          "pegPriceType": "PRIMARY_PEG"}, -1106),  # a pegged order is not a plain one
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1",
          "icebergQty": "0.1"}, -1106),
        ({"side": "\u017fell", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1"}, -1100),
        ({"side": "SELL", "type": "l\u0131m\u0131t", "timeInForce": "GTC", "quantity": "1", "price": "1"},
         -1116),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1",
          "newClientOrderId": "x" * 40}, -1100),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1",
          "newClientOrderId": "a#b"}, -1100),
    ],
)  # fmt: skip
def test_new_order_with_bad_parameters_raises_binance_code(params: dict[str, str], code: int) -> None:
    with pytest.raises(ApiError) as refused:
        new_order(params, "u", "BTC-USDT")
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1000000000.01"}, "PRICE_FILTER"),
        ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "1000000001", "price": "1"}, "LOT_SIZE"),
        ({"type": "MARKET", "quantity": "1000000001"}, "MARKET_LOT_SIZE"),
        ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "9001", "price": "1000000000"}, "NOTIONAL"),
        ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "9000", "price": "1000000000"}, None),
        ({"type": "MARKET", "quoteOrderQty": "10000000000000"}, None),  # applyMaxToMarket is false
    ],
)  # fmt: skip
def test_past_maximum_refuses_what_exchange_info_says_is_too_large(
    params: dict[str, str], msg: str | None
) -> None:
    failure = past_maximum(new_order({"side": "BUY", **params}, "u", "BTC-USDT"))
    assert (failure.code, failure.msg) == (-1013, f"Filter failure: {msg}") if msg else failure is None


@pytest.mark.parametrize(
    ("extra", "msg"),
    [
        ({"quantity": "1", "timeInForce": "GTC"}, "Parameter 'timeInForce' sent when not required."),
        ({"quoteOrderQty": "1", "timeInForce": "IOC"}, "Parameter 'timeInForce' sent when not required."),
        ({"quantity": "1", "quoteOrderQty": "1"}, "Parameter 'quoteOrderQty' sent when not required."),
    ],
)
def test_market_order_with_a_parameter_it_does_not_take_refuses_with_1106(
    extra: dict[str, str], msg: str
) -> None:
    with pytest.raises(ApiError) as refused:
        new_order({"side": "BUY", "type": "MARKET", **extra}, "u", "BTC-USDT")
    assert (refused.value.code, refused.value.msg) == (-1106, msg)


def test_client_order_ids_take_binance_characters() -> None:
    base = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1"}
    for client_id in ("web:1/2", "x-TKT5PX2F.a_b-c", "Z" * 36):
        order = new_order({**base, "newClientOrderId": client_id}, "u", "BTC-USDT")
        assert order.client_id == client_id


def test_cancel_with_order_id_or_client_id_or_neither() -> None:
    assert cancel({"orderId": "7", "origClientOrderId": "x"}, "u", "M").order_id == 7
    assert cancel({"origClientOrderId": "x"}, "u", "M").client_id == "x"
    with pytest.raises(ApiError):
        cancel({}, "u", "M")


def test_response_type_defaults_to_full_for_limit_and_market_else_ack() -> None:
    assert response_type({}, "LIMIT") == "FULL"
    assert response_type({}, "LIMIT_MAKER") == "ACK"
    assert response_type({"newOrderRespType": "RESULT"}, "MARKET") == "RESULT"
    with pytest.raises(ApiError):
        response_type({"newOrderRespType": "ALL"}, "MARKET")


def test_weight_window_over_limit_refuses_with_429_until_next_minute() -> None:
    window = WeightWindow(10)
    assert window.spend("ip", 6, now_ms=60_000) == 6
    with pytest.raises(ApiError) as refused:
        window.spend("ip", 5, now_ms=90_000)
    assert refused.value.status == 429 and refused.value.retry_after == 30
    assert window.spend("other", 10, now_ms=90_000) == 10
    assert window.spend("ip", 5, now_ms=120_000) == 5


def test_message_rate_counts_per_second() -> None:
    rate = MessageRate(2)
    assert [rate.allow(5.1), rate.allow(5.5), rate.allow(5.9), rate.allow(6.0)] == [True, True, False, True]


def test_secret_encrypted_under_one_key_decrypts_only_with_that_key_and_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADEWIRE_MASTER_KEY", raising=False)
    master = load_master_key(tmp_path, create=True)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert load_master_key(tmp_path) == master
    stored = encrypt_secret(master, "key1", "s3cret")
    assert "s3cret" not in stored
    assert decrypt_secret(master, "key1", stored) == "s3cret"
    with pytest.raises(SecretError):
        decrypt_secret(master, "key2", stored)
    with pytest.raises(SecretError):
        decrypt_secret(bytes(32), "key1", stored)


def test_load_master_key_without_file_or_env_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEWIRE_MASTER_KEY", raising=False)
    with pytest.raises(SecretError, match="master key"):
        load_master_key(tmp_path)
    monkeypatch.setenv("TRADEWIRE_MASTER_KEY", "ab" * 32)
    assert load_master_key(None) == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize(
    "text", ["+1490", " 1490 ", "1490\n", "177_000", "\u0661\u0664\u0669\u0660", "1.0", "0x10", "-1", "", "-"]
)
def test_int_param_takes_only_ascii_digits(text: str) -> None:
    with pytest.raises(ApiError) as refused:
        int_param({"orderId": text or "-0-"}, "orderId")
    assert refused.value.code == -1100
    assert refused.value.msg == (
        "Illegal characters found in parameter 'orderId'; legal range is '0 to 9223372036854775807'."
    )


def test_int_param_refuses_values_beyond_its_range_and_signs_only_where_negatives_are_legal() -> None:
    assert int_param({"orderId": "9223372036854775807"}, "orderId") == 2**63 - 1
    assert int_param({"orderId": "0001490"}, "orderId") == 1490
    for text in ("9223372036854775808", "99999999999999999999", "1" * 5000):
        with pytest.raises(ApiError, match="legal range is '0 to 9223372036854775807'"):
            int_param({"orderId": text}, "orderId")
    assert int_param({"offset": "-5"}, "offset", low=-10, high=10) == -5
    with pytest.raises(ApiError, match="legal range is '-10 to 10'"):
        int_param({"offset": "11"}, "offset", low=-10, high=10)


@pytest.mark.parametrize("text", ["+5", " 5", "5_0", "-5", "2147483648"])
def test_limit_param_with_a_malformed_or_huge_limit_refuses(text: str) -> None:
    with pytest.raises(ApiError) as refused:
        limit_param({"limit": text}, 100, 5000)
    assert refused.value.code == -1100 and "'limit'" in refused.value.msg
    assert limit_param({"limit": "0"}, 100, 5000) == 100
    assert limit_param({"limit": "2147483647"}, 100, 5000) == 5000


@pytest.mark.parametrize(
    "timestamp", ["+10000", " 10000", "10_000", "\u0661\u0660\u0660\u0660\u0660", "-10000", "1" * 30]
)
def test_check_time_with_a_timestamp_not_in_ascii_digits_refuses(timestamp: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_time({"timestamp": timestamp}, now_ms=10_000)
    assert refused.value.code == -1100 and "'timestamp'" in refused.value.msg


@pytest.mark.parametrize(
    "client_id", ["x" * 1_000_000, "x" * 37, "\x00\xff\"'<>", "a b", "ab\n", "\uff41\uff42"]
)
def test_cancel_and_new_order_with_a_client_id_beyond_binance_characters_refuse(client_id: str) -> None:
    with pytest.raises(ApiError) as refused:
        cancel({"origClientOrderId": client_id}, "u", "M")
    assert refused.value.code == -1100
    assert refused.value.msg == (
        "Illegal characters found in parameter 'origClientOrderId'; "
        "legal range is '^[.A-Za-z0-9:/_-]{1,36}$'."
    )
    base = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1"}
    with pytest.raises(ApiError, match="'newClientOrderId'"):
        new_order({**base, "newClientOrderId": client_id}, "u", "BTC-USDT")


def test_cancel_with_an_order_id_over_64_bits_refuses() -> None:
    with pytest.raises(ApiError) as refused:
        cancel({"orderId": "99999999999999999999"}, "u", "M")
    assert refused.value.code == -1100 and "'orderId'" in refused.value.msg


def test_time_range_upside_down_refuses_with_1023() -> None:
    assert time_range({"startTime": "5", "endTime": "5"}) == (5, 5)
    assert time_range({"endTime": "5"}) == (None, 5)
    with pytest.raises(ApiError) as refused:
        time_range({"startTime": "6", "endTime": "5"})
    assert (refused.value.code, refused.value.msg) == (-1023, "Start time is greater than end time.")


@pytest.mark.parametrize("window", ["0", "-5", "0.000", "abc", "1e3", "nan", "5000.1234", " 5000", "+5000"])
def test_check_time_with_a_recv_window_too_small_or_malformed_says_what_is_legal(window: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_time({"timestamp": "10000", "recvWindow": window}, now_ms=10_000)
    assert (refused.value.code, refused.value.msg) == (
        -1100,
        "Illegal characters found in parameter 'recvWindow'; "
        "legal range is 'more than 0 and at most 60000 (ms, up to 3 decimal places)'.",
    )


def test_check_time_with_a_fractional_recv_window_keeps_its_fraction() -> None:
    check_time({"timestamp": "10000", "recvWindow": "0.5"}, now_ms=10_000)
    check_time({"timestamp": "1000", "recvWindow": "9000.001"}, now_ms=10_000)
    with pytest.raises(ApiError, match="outside of the recvWindow"):
        check_time({"timestamp": "1000", "recvWindow": "8999.999"}, now_ms=10_000)
    with pytest.raises(ApiError, match="recvWindow must be less than 60000") as refused:
        check_time({"timestamp": "1000", "recvWindow": "60000.001"}, now_ms=10_000)
    assert refused.value.code == -1131


@pytest.mark.parametrize(
    ("restriction", "msg"),
    [
        ("ONLY_NEW", "cancelRestrictions is not supported on this exchange; nothing was canceled."),
        (
            "only_partially_filled",
            "cancelRestrictions is not supported on this exchange; nothing was canceled.",
        ),
        ("BOGUS", "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED."),
    ],
)
def test_cancel_with_cancel_restrictions_is_refused_rather_than_ignored(restriction: str, msg: str) -> None:
    with pytest.raises(ApiError) as refused:
        cancel({"orderId": "7", "cancelRestrictions": restriction}, "u", "BTC-USDT")
    assert (refused.value.code, refused.value.msg) == (-1145, msg)
    cancel_restrictions({"cancelRestrictions": ""})  # empty: as if absent
    assert cancel({"orderId": "7"}, "u", "BTC-USDT").order_id == 7
