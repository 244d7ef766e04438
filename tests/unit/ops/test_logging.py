"""Log lines: JSON with time, level, event and role; secrets never written."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
import structlog

from tradewire.ops.logging import (
    AUTH_FAILED,
    REDACTED,
    audit_log,
    configure_logging,
    is_secret_name,
    redact,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("gateway", level="info", stream=out)
    yield out
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tradewire_handler", False):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_line_with_fields_is_one_json_object_with_time_level_event_role(
    stream: io.StringIO,
) -> None:
    structlog.get_logger("tradewire.gateway").info("started", port=8080)
    (line,) = _lines(stream)
    assert line["event"] == "started"
    assert line["level"] == "info"
    assert line["role"] == "gateway"
    assert line["port"] == 8080
    assert line["logger"] == "tradewire.gateway"
    assert datetime.fromisoformat(line["time"]).utcoffset() is not None


def test_stdlib_logger_with_configured_logging_writes_the_same_json_shape(stream: io.StringIO) -> None:
    logging.getLogger("redis.example").warning("reconnecting to %s", "redis://u:pw@host:6379")
    (line,) = _lines(stream)
    assert line["event"] == "reconnecting to redis://u:***@host:6379"
    assert line["level"] == "warning"
    assert line["role"] == "gateway"


def test_debug_line_with_info_threshold_is_not_written(stream: io.StringIO) -> None:
    structlog.get_logger().debug("noise")
    logging.getLogger("x").debug("noise")
    assert stream.getvalue() == ""


def test_exception_with_configured_logging_is_rendered_into_the_line(stream: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger().exception("failed")
    (line,) = _lines(stream)
    assert "ValueError: boom" in line["exception"]


def test_audit_log_with_secret_looking_fields_redacts_them_everywhere(stream: io.StringIO) -> None:
    audit_log(
        AUTH_FAILED,
        level="warning",
        who="k-1",
        ip="10.0.0.7",
        reason="bad_signature",
        signature="c0ffee" * 10,
        api_secret="s3cr3t-value",
        params={"symbol": "BTCUSDT", "listenKey": "lk-value", "nested": [{"password": "pw-value"}]},
        redis="redis://admin:pw-value@10.0.0.2:6379/0",
    )
    text = stream.getvalue()
    for secret in ("c0ffee", "s3cr3t-value", "lk-value", "pw-value"):
        assert secret not in text
    (line,) = _lines(stream)
    assert line["event"] == "auth_failed"
    assert line["audit"] is True
    assert line["level"] == "warning"
    assert line["who"] == "k-1"
    assert line["signature"] == REDACTED
    assert line["api_secret"] == REDACTED
    assert line["params"] == {
        "symbol": "BTCUSDT",
        "listenKey": REDACTED,
        "nested": [{"password": REDACTED}],
    }
    assert line["redis"] == "redis://admin:***@10.0.0.2:6379/0"


def test_plain_log_with_secret_field_is_redacted_too(stream: io.StringIO) -> None:
    structlog.get_logger().info("created key", user="ann", secret="very-secret")
    (line,) = _lines(stream)
    assert line["secret"] == REDACTED
    assert line["user"] == "ann"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_secret", True),
        ("X-MBX-SIGNATURE", True),
        ("listenKey", True),
        ("Authorization", True),
        ("master_key", True),
        ("who", False),
        ("api_key_id", False),
        ("ip", False),
    ],
)
def test_is_secret_name_with_field_name_says_whether_to_redact(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redact_with_plain_values_leaves_them_unchanged() -> None:
    value = {"user": "ann", "qty": 3, "url": "http://example.com/x", "list": (1, "a")}
    assert redact(value) == {"user": "ann", "qty": 3, "url": "http://example.com/x", "list": [1, "a"]}


def test_configure_logging_with_unknown_level_names_the_choices() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        configure_logging("engine", level="loud", stream=io.StringIO())


def test_audit_log_without_configured_logging_still_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    structlog.reset_defaults()
    audit_log("admin_action", action="create_user", user="ann", api_secret="fresh-secret")
    out = capsys.readouterr()
    assert "create_user" in out.out + out.err
    assert "fresh-secret" not in out.out + out.err
