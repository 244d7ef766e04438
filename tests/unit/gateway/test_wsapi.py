"""The WebSocket API's pure pieces: request frames, the signature payload, the answer envelope."""

from __future__ import annotations

import hashlib
import hmac
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradewire.gateway.app import Outcome
from tradewire.gateway.auth import check_signature
from tradewire.gateway.errors import ApiError
from tradewire.gateway.wsapi import (
    ROUTES,
    BadRequest,
    envelope,
    internal_error,
    parse_request,
    signing,
)

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_a_request_keeps_its_id_as_sent_and_its_params_as_text() -> None:
    request = parse_request(
        b'{"id":"e2a8-07","method":"order.place","params":{"symbol":"BTCUSDT","timestamp":1655716096498,'
        b'"recvWindow":5000,"price":"0.1","returnRateLimits":false,"newClientOrderId":null}}'
    )
    assert request.id == b'"e2a8-07"' and request.method == "order.place"
    assert request.params == {
        "symbol": "BTCUSDT",
        "timestamp": "1655716096498",
        "recvWindow": "5000",
        "price": "0.1",
        "returnRateLimits": "false",
    }
    assert request.rate_limits is False
    assert parse_request(b'{"id":7,"method":"ping"}').id == b"7"
    assert parse_request(b'{"id":null,"method":"ping","params":null}').params == {}
    assert parse_request(b'{"id":1,"method":"time"}').rate_limits is True


@pytest.mark.parametrize(
    ("frame", "code", "words", "echo"),
    [
        (b"{nope", -1100, "not valid JSON", b"null"),
        (b"[1,2]", -1100, "expected a JSON object", b"null"),
        (b'{"method":"ping"}', -1102, "'id'", b"null"),
        (b'{"id":true,"method":"ping"}', -1100, "'id'", b"null"),
        (b'{"id":[1],"method":"ping"}', -1100, "'id'", b"null"),
        (b'{"id":3}', -1102, "'method'", b"3"),
        (b'{"id":3,"method":""}', -1102, "'method'", b"3"),
        (b'{"id":"x","method":"depth","params":["BTCUSDT"]}', -1100, "'params'", b'"x"'),
        (b'{"id":"x","method":"depth","params":{"symbol":{"a":1}}}', -1100, "'symbol'", b'"x"'),
        (b'{"id":"' + b"i" * 37 + b'","method":"ping"}', -1100, "'id'", b"null"),
        (b'{"id":9223372036854775808,"method":"ping"}', -1100, "'id'", b"null"),
        # one signature must not fit two parameter sets: no '&', '=', '%' or '+' in names or values
        (
            b'{"id":1,"method":"order.place","params":{"newClientOrderId=a&type":"LIMIT"}}',
            -1100,
            "names are letters",
            b"1",
        ),
        (
            b'{"id":1,"method":"order.place","params":{"newClientOrderId":"a&type=LIMIT"}}',
            -1100,
            "'newClientOrderId'",
            b"1",
        ),
        (b'{"id":1,"method":"order.place","params":{"newClientOrderId":"a%3Ab"}}', -1100, "'%'", b"1"),
        (b'{"id":1,"method":"order.place","params":{"price":"1+1"}}', -1100, "'price'", b"1"),
    ],
)
def test_a_frame_that_is_not_a_request_is_refused_with_the_id_when_readable(
    frame: bytes, code: int, words: str, echo: bytes
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request(frame)
    assert caught.value.error.code == code and words in caught.value.error.msg
    assert caught.value.request_id == echo


@pytest.mark.parametrize(
    "frame",
    [
        b'{"id":5,"method":"order.place","params":{"side":"BUY","side":"SELL"}}',
        b'{"id":5,"method":"order.place","params":{"side" : "BUY", "quantity":1, "side" :"SELL"}}',
        b'{"id":5,"method":"order.place","params":{"side":"BUY","s\\u0069de":"SELL"}}',  # escaped name
        b'{"id":5,"method":"order.place","params":{"price":1.5,"price":2.5}}',  # numbers, re-read for text
        b'{"id":5,"method":"order.place","params":{"newClientOrderId":null,"newClientOrderId":"x"}}',
        b'{"id":5,"method":"order.place","params":{"a":"\\"","a":"b"}}',  # a backslash in a value
        '{"id":5,"method":"order.place","params":{"symbol":"\u00e9","symbol":"BTCUSDT"}}',  # a str frame
    ],
)
def test_a_parameter_named_twice_is_refused_as_rest_refuses_it(frame: bytes | str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request(frame)
    error = caught.value.error
    assert (error.code, error.msg, error.status) == (-1101, "Duplicate values for a parameter detected.", 400)
    assert caught.value.request_id == b"5"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [990, 1_010])
def test_a_frame_nested_deeper_than_the_checks_read_is_refused_never_let_through(depth: int) -> None:
    """orjson reads 1,024 levels; the stdlib parser that finds a repeated name or a number's text
    stops at Python's recursion limit. A frame between the two is refused with its id echoed, not
    left unanswered (a float to read again) or let through unchecked (a name sent twice)."""
    frames = [
        b'{"id":7,"method":"ping","params":{"a":1.5,"b":' + nested(depth) + b"}}",
        b'{"id":7,"x":' + nested(depth) + b',"method":"order.place","params":{"side":"BUY","side":"SELL"}}',
    ]
    for frame in frames:
        with pytest.raises(BadRequest) as caught:
            parse_request(frame)
        assert caught.value.request_id == b"7"
        assert caught.value.error.code == -1100 and "nests deeper" in caught.value.error.msg
        assert b'"id":7' in internal_error(frame)


@pytest.mark.parametrize(
    ("frame", "params"),
    [
        (b'{"id":5,"method":"ping","params":{"a":"x\\"y","b":"\\u0041"}}', {"a": 'x"y', "b": "A"}),
        (b'{"id":5,"method":"ping","params":{"a":"a","b":"a"},"x":{"k":[1,{"k":2}]}}', {"a": "a", "b": "a"}),
        (b'{"id":5,"method":"ping","params":{"a":"1"},"x":{"k":1,"k":2}}', {"a": "1"}),  # not params
        (b'{"id":5,"method":"ping","params":{"params":"1"},"x":"params"}', {"params": "1"}),
    ],
)
def test_frames_that_only_look_like_repeats_are_read_as_usual(frame: bytes, params: dict[str, str]) -> None:
    assert parse_request(frame).params == params


def test_numbers_are_signed_as_the_client_wrote_them() -> None:
    request = parse_request(
        b'{"id":1,"method":"order.place","params":{"price":10000.50,"quantity":1e-05,"timestamp":1700000000000,'
        b'"stopPrice":1E2,"recvWindow":5000}}'
    )
    assert request.params == {"price": "10000.50", "quantity": "1e-05", "timestamp": "1700000000000",
                              "stopPrice": "1E2", "recvWindow": "5000"}  # fmt: skip


def test_the_signature_covers_the_sorted_pairs_without_the_signature() -> None:
    params = {"symbol": "BTCUSDT", "timestamp": "1645423376532", "apiKey": "vmPUZE6mv9", "side": "SELL",
              "price": "52000.00", "signature": "ignored"}  # fmt: skip
    signed = signing(params)
    assert signed.payload == (
        b"apiKey=vmPUZE6mv9&price=52000.00&side=SELL&symbol=BTCUSDT&timestamp=1645423376532"
    )
    assert signed.signature == "ignored" and signed.params is params
    good = hmac.new(SECRET.encode(), signed.payload, hashlib.sha256).hexdigest()
    check_signature(SECRET, signed.payload, good.upper())  # HMAC signatures are not case-sensitive
    with pytest.raises(ApiError) as caught:
        check_signature(SECRET, signing({**params, "side": "BUY"}).payload, good)
    assert caught.value.code == -1022


def test_a_signature_over_the_percent_encoded_pairs_is_accepted_too() -> None:
    params = {"apiKey": "k", "newClientOrderId": "a:b/c d", "timestamp": "1"}
    signed = signing(params)
    assert signed.payload == b"apiKey=k&newClientOrderId=a:b/c d&timestamp=1"
    assert signed.encoded is not None
    assert signed.encoded() == b"apiKey=k&newClientOrderId=a%3Ab%2Fc+d&timestamp=1"
    plain = signing({"apiKey": "k", "timestamp": "1"}).encoded
    assert plain is not None and plain() is None  # nothing to encode: one form


def test_the_envelope_carries_the_result_or_the_error_and_the_weight_used() -> None:
    ok = orjson.loads(envelope(b'"a"', Outcome(200, b'{"serverTime":1}', 12), 6000))
    assert ok == {
        "id": "a",
        "status": 200,
        "result": {"serverTime": 1},
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 12,
            }
        ],
    }
    refused = Outcome(429, b'{"code":-1003,"msg":"slow down"}', 6000, 30)
    limited = orjson.loads(envelope(b"5", refused, 6000, rate_limits=False, now_ms=1_700_000_000_000))
    data = {"serverTime": 1_700_000_000_000, "retryAfter": 1_700_000_030_000}  # Binance's shape: Unix ms
    assert limited == {"id": 5, "status": 429, "error": {"code": -1003, "msg": "slow down", "data": data}}
    failed = orjson.loads(internal_error(b'{"id":"q","method":"order.place"}'))
    assert failed["id"] == "q" and failed["status"] == 500 and failed["error"]["code"] == -1001
    assert orjson.loads(internal_error(b"garbage"))["id"] is None


def test_methods_run_the_rest_endpoints_with_their_security() -> None:
    assert (ROUTES["order.place"].method, ROUTES["order.place"].path) == ("POST", "/api/v3/order")
    assert (ROUTES["order.cancel"].method, ROUTES["order.status"].method) == ("DELETE", "GET")
    assert ROUTES["order.place"].security == "signed" and ROUTES["account.status"].security == "signed"
    assert ROUTES["userDataStream.start"].security == "key" and ROUTES["depth"].security == "none"


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # integers of any size, as a client may send them


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FRAMES = st.one_of(
    st.binary(max_size=64),
    _JSON.map(_dumps),
    st.fixed_dictionaries(
        {"id": _JSON, "method": _JSON},
        optional={"params": st.dictionaries(st.text(max_size=12), _JSON, max_size=6) | _JSON},
    ).map(_dumps),
)


@given(_FRAMES)
def test_any_frame_is_a_request_or_a_precise_refusal(frame: bytes) -> None:
    try:
        request = parse_request(frame)
    except BadRequest as refused:
        assert refused.error.code in (-1100, -1102) and refused.error.status == 400
        assert refused.error.msg
        orjson.loads(refused.request_id)  # the echoed id is JSON
        return
    assert isinstance(request.method, str) and request.method
    assert all(isinstance(v, str) and not set(v) & set("&=%+") for v in request.params.values())
    assert all(name.isascii() and name.isalnum() for name in request.params)
    orjson.loads(request.id)


def test_symbols_as_a_json_array_reach_rest_as_its_json_text() -> None:
    """Binance's WebSocket API takes ``symbols`` as an array (``ticker.price``, ``ticker.24hr``...)."""
    request = parse_request(b'{"id":1,"method":"ticker.price","params":{"symbols":["BTCUSDT","ETHUSDT"]}}')
    assert request.params == {"symbols": '["BTCUSDT","ETHUSDT"]'}
    with pytest.raises(BadRequest):
        parse_request(b'{"id":1,"method":"ticker.price","params":{"symbols":["BTCUSDT",1]}}')
    with pytest.raises(BadRequest):
        parse_request(b'{"id":1,"method":"order.place","params":{"symbol":["BTCUSDT"]}}')
