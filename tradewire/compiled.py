"""The engine service's hot pure-Python modules, compiled unchanged by Cython when the package is built.

The engine process spends most of each batch in these modules' Python: the account views, market
data, the core's loop, decoding and decimal text. Compiled as they are, they run 7.6 % fewer
instructions per command (``bench/instructions.py --service``, batches of 2,000): no bytecode to
dispatch, the same calls into CPython (attribute and dict lookups, allocation), which are most of
the rest. The ``.py`` file stays the source, the reference and the fallback: without a compiler the
build skips them and Python runs the source, with the same results.

A compiled module shadows its source (Python prefers an extension module), so an edit to the
source does nothing until the next build: :func:`stale` names the modules whose source is newer
than their build, and the test suite and ``tradewire engine`` refuse or warn on them. (Newer by
more than :data:`INSTALL_SKEW` seconds: an installer writes a wheel's files one after another,
the build before its source, in the same second. Switching commits with builds left in the tree
makes the sources newer too; ``git clean -fX tradewire`` removes the builds.)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

MODULES = (
    "tradewire.accounts.history",
    "tradewire.accounts.payloads",
    "tradewire.accounts.records",
    "tradewire.accounts.views",
    "tradewire.bus.publish",
    "tradewire.engine.commands",
    "tradewire.engine.config",
    "tradewire.engine.decimals",
    "tradewire.journal.core",
    "tradewire.journal.entries",
    "tradewire.journal.quota",
    "tradewire.marketdata.binance",
    "tradewire.marketdata.builder",
    "tradewire.marketdata.depth",
    "tradewire.marketdata.klines",
    "tradewire.marketdata.ticker",
)


INSTALL_SKEW = 2.0
SWITCH = "TRADEWIRE_COMPILED"
"""Set to ``0``, the process imports these modules from their source even where they are built
(:func:`prefer_sources`, called by the package's ``__init__``): to debug them, and for the tests
that hold the two equal."""


class _Sources(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`MODULES` as their ``.py`` source, before the usual finders
    (which would take the build beside it)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        for entry in path or ():
            source = Path(entry) / (fullname.rpartition(".")[2] + ".py")
            if source.is_file():
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def prefer_sources() -> None:
    """Import the modules of :data:`MODULES` from their source from now on."""
    if not any(isinstance(finder, _Sources) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Sources())


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
        if source.exists() and source.stat().st_mtime > build.stat().st_mtime + INSTALL_SKEW:
            found.append(name)
    return found


def compiled() -> list[str]:
    """The modules of :data:`MODULES` that run compiled in this installation."""
    return [name for name, _ in _builds()]
