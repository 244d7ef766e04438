"""Decimal text of integer amounts, memoized: market data writes the same few prices over and over.

Every payload, cache value and checksum string writes amounts with
``tradewire.engine.decimals.to_text``; a book's prices and the sizes traded at them repeat so much
that a table per precision answers nearly every call with one dict lookup. The table is a pure
function's memo (cleared when it grows past ``LIMIT``), so it cannot change any output.
"""

from __future__ import annotations

from tradewire.engine.decimals import to_text

LIMIT = 1 << 16
"""Entries a table holds before it starts over."""


class Texts(dict[int, str]):
    """``texts[units]`` is ``to_text(units, precision)``."""

    __slots__ = ("precision",)

    def __init__(self, precision: int) -> None:
        super().__init__()
        self.precision = precision

    def __missing__(self, units: int) -> str:
        if len(self) >= LIMIT:
            self.clear()
        text = self[units] = to_text(units, self.precision)
        return text


_tables: dict[int, Texts] = {}


def texts(precision: int) -> Texts:
    """The shared table of one precision."""
    table = _tables.get(precision)
    if table is None:
        table = _tables[precision] = Texts(precision)
    return table
