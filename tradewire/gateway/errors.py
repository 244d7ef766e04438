"""Binance error answers: ``{"code": -1121, "msg": "Invalid symbol."}`` with the HTTP status to use.

Every refusal the gateway makes goes through :class:`ApiError`, so the codes and messages are those
Binance clients already handle (ccxt maps ``code`` to its exception classes, python-binance raises
``BinanceAPIException`` with it). 4xx statuses are the client's fault, 429 is a rate limit (with
``Retry-After``), 5xx is the exchange's.
"""

from __future__ import annotations

from typing import Any, Final

import orjson


class ApiError(Exception):
    """A refusal with Binance's code and message and the HTTP status to answer with; ``data`` is
    what Binance adds to some refusals (a cancel-replace's two outcomes)."""

    def __init__(
        self,
        code: int,
        msg: str,
        status: int = 400,
        retry_after: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after = retry_after
        self.data = data

    def body(self) -> bytes:
        if self.data is not None:
            return orjson.dumps({"code": self.code, "msg": self.msg, "data": self.data})
        return orjson.dumps({"code": self.code, "msg": self.msg})


def mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str, detail: str = "") -> ApiError:
    extra = f" {detail}" if detail else ""
    return ApiError(-1100, f"Illegal characters found in parameter '{name}';{extra}".rstrip(";"))


def out_of_range(name: str, legal: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def bad_param(name: str, detail: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{name}'; {detail}")


INVALID_SYMBOL: Final = (-1121, "Invalid symbol.")
INVALID_INTERVAL: Final = (-1120, "Invalid interval.")
UNKNOWN_ORDER: Final = (-2013, "Order does not exist.")
CANCEL_REJECTED: Final = (-2011, "Unknown order sent.")
BAD_API_KEY_FORMAT: Final = (-2014, "API-key format invalid.")
REJECTED_API_KEY: Final = (-2015, "Invalid API-key, IP, or permissions for action.")
BAD_SIGNATURE: Final = (-1022, "Signature for this request is not valid.")
OUTSIDE_RECV_WINDOW: Final = (-1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD_OF_SERVER: Final = (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
TOO_MANY_REQUESTS: Final = -1003
TIMEOUT: Final = (
    -1007,
    "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
)
DISCONNECTED: Final = (-1001, "Internal error; unable to process your request. Please try again.")


def error(pair: tuple[int, str], status: int = 400) -> ApiError:
    return ApiError(pair[0], pair[1], status)
