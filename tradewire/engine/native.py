"""Which engine runs a stream: the native core when it is built and the config fits it, else the pure one.

Both give the same events for the same commands (``tests/unit/engine/test_native.py`` holds them to
it); the native core keeps its state in flat C arrays and is several times faster. Set
``TRADEWIRE_ENGINE=pure`` to run the pure engine anyway, for instance to compare the two.
"""

from __future__ import annotations

import os

from tradewire.engine.config import ExchangeConfig
from tradewire.engine.engine import Engine

try:
    from tradewire.engine._native import NativeEngine, supports
except ImportError:  # not built (no C compiler when installed): the pure engine runs everything
    NativeEngine = None  # type: ignore[assignment,misc]

    def supports(config: ExchangeConfig) -> bool:
        return False


AnyEngine = Engine | NativeEngine
"""What both engines share: ``apply``, ``apply_all`` and ``pure()``, the pure engine with the state."""


def built() -> bool:
    return NativeEngine is not None


def _wanted(config: ExchangeConfig) -> bool:
    return NativeEngine is not None and os.environ.get("TRADEWIRE_ENGINE", "") != "pure" and supports(config)


def fastest_engine(config: ExchangeConfig) -> AnyEngine:
    """A fresh engine for ``config``: native unless it is not built, not wanted or the config exceeds it."""
    return NativeEngine(config) if _wanted(config) else Engine(config)


def fastest_from(engine: Engine) -> AnyEngine:
    """An engine that carries on from the state of ``engine`` (a restored snapshot), native if it can."""
    native = NativeEngine.from_pure(engine) if _wanted(engine.config) else None
    return native if native is not None else engine


def runs_natively(engine: AnyEngine) -> bool:
    """Whether ``engine`` applies commands in its native core (not built, not wanted, a config beyond
    it, or a value beyond its bounds since: the pure engine does)."""
    return NativeEngine is not None and type(engine) is NativeEngine and not engine.handed_over
