"""The engine service's hot pure-Python modules, compiled unchanged by Cython when the package is built.

The engine process spends most of each batch in these modules' Python: the account views, market
data, the core's loop, decoding and decimal text. Compiled as they are, they run 7.6 % fewer
instructions per command (``bench/instructions.py --service``, batches of 2,000): no bytecode to
dispatch, the same calls into CPython (attribute and dict lookups, allocation), which are most of
the rest. The ``.py`` file stays the source, the reference and the fallback: without a compiler the
build skips them and Python runs the source, with the same results.

A compiled module shadows its source (Python prefers an extension module), so an edit to the
source does nothing until the next build: :func:`stale` names the modules whose source is newer
than their build, and the test suite and ``tradewire engine`` refuse or warn on them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODULES = (
    "tradewire.accounts.payloads",
    "tradewire.accounts.views",
    "tradewire.engine.commands",
    "tradewire.engine.decimals",
    "tradewire.journal.core",
    "tradewire.marketdata.binance",
    "tradewire.marketdata.builder",
    "tradewire.marketdata.depth",
    "tradewire.marketdata.klines",
    "tradewire.marketdata.ticker",
)


def _builds() -> list[tuple[str, Path]]:
    """Each module of :data:`MODULES` that runs compiled here, with its build's file."""
    found = []
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None and not spec.origin.endswith(".py"):
            found.append((name, Path(spec.origin)))
    return found


def stale() -> list[str]:
    """The compiled modules whose ``.py`` changed after they were built (rebuild with
    ``python setup.py build_ext --inplace``, or ``pip install -e .``)."""
    found = []
    for name, build in _builds():
        source = build.parent / (name.rpartition(".")[2] + ".py")
        if source.exists() and source.stat().st_mtime > build.stat().st_mtime:
            found.append(name)
    return found


def compiled() -> list[str]:
    """The modules of :data:`MODULES` that run compiled in this installation."""
    return [name for name, _ in _builds()]
