"""Structured logs: one JSON object per line on stderr, the same shape from every process.

Every process calls :func:`configure_logging` once at start with its role (``engine``, ``gateway``,
``up``, ``admin``, ...). After that both ``structlog.get_logger()`` and the standard library's
``logging`` (redis-py, uvicorn with ``log_config=None``, our own modules) write lines such as::

    {"event":"auth_failed","reason":"bad_signature","ip":"10.0.0.7","who":"k-3f2a","audit":true,
     "role":"gateway","pid":4711,"level":"warning","logger":"tradewire.audit",
     "time":"2026-11-26T15:20:01.123456Z"}

``time`` is the machine's UTC wall clock, for operators; it is never the exchange time (``ts`` in the
journal), which only the gateway stamps.

:func:`audit_log` is how the gateway and the admin commands record what an auditor may ask about:
rejected requests, authentication failures, disconnects and admin actions. It never writes a secret:
any field whose name looks like one (``secret``, ``password``, ``signature``, ``token``,
``listenKey``, ...) is replaced by ``[redacted]`` at any depth, and a password inside a URL becomes
``***``. The same redaction runs on every other log line once logging is configured.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED: Final = "[redacted]"
LEVEL_ENV: Final = "TRADEWIRE_LOG_LEVEL"

# What an auditor asks about; the gateway and admin commands pass these as ``event``.
REQUEST_REJECTED: Final = "request_rejected"
AUTH_FAILED: Final = "auth_failed"
DISCONNECT: Final = "disconnect"
ADMIN_ACTION: Final = "admin_action"

_SECRET_WORDS: Final = (
    "secret",
    "password",
    "passwd",
    "token",
    "signature",
    "authorization",
    "cookie",
    "credential",
    "privatekey",
    "masterkey",
    "listenkey",
)
_URL_PASSWORD: Final = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]+@")
_HANDLER_MARK: Final = "_tradewire_handler"


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` may hold a secret (``api_secret``, ``X-Signature``, ``listenKey``)."""
    folded = name.lower().replace("_", "").replace("-", "")
    return any(word in folded for word in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """``value`` with secret-named fields replaced at any depth and URL passwords masked."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_name(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return _URL_PASSWORD.sub(r"\1:***@", value)
    return value


def _redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, item in event_dict.items():
        if is_secret_name(key):
            event_dict[key] = REDACTED
        elif isinstance(item, Mapping | list | tuple | str):
            event_dict[key] = redact(item)
    return event_dict


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=repr).decode()


def log_level(level: str | None = None) -> int:
    """The threshold: ``level``, else ``$TRADEWIRE_LOG_LEVEL``, else info; ``ValueError`` when unknown."""
    return _level(level)


def _level(level: str | None) -> int:
    name = (level or os.environ.get(LEVEL_ENV) or "info").upper()
    number = logging.getLevelNamesMapping().get(name)
    if number is None:
        raise ValueError(f"log level must be one of debug, info, warning, error, critical, not {name!r}")
    return number


def configure_logging(role: str, *, level: str | None = None, stream: TextIO | None = None) -> None:
    """Send this process's logs, structlog's and the standard library's, as JSON lines to ``stream``.

    ``role`` goes into every line. ``level`` defaults to ``$TRADEWIRE_LOG_LEVEL`` or ``info``;
    ``stream`` to stderr. Calling it again replaces the previous configuration.
    """
    threshold = _level(level)

    def add_role(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("role", role)
        event_dict.setdefault("pid", os.getpid())
        return event_dict

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        add_role,
        _redact_processor,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(threshold)


def audit_log(event: str, *, level: str = "info", **fields: Any) -> None:
    """Record an auditable happening (see the constants above) with its context, secrets redacted.

    Typical fields: ``who`` (API key id or ``admin``), ``ip``, ``rid``, ``user``, ``reason``,
    ``endpoint``. Redaction happens here too, so nothing leaks even before logging is configured.
    """
    clean: MutableMapping[str, Any] = redact(fields)
    logger = structlog.get_logger("tradewire.audit")
    logger.log(_level(level), event, audit=True, **clean)
