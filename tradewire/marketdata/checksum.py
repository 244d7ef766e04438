"""The depth checksum: how a client proves that the book it rebuilt from diffs is the exchange's.

A client that keeps a local book (a snapshot, then every diff applied in sequence) can drift when a
diff is lost or misapplied without noticing from the update ids alone. Each depth diff therefore
carries the checksum of the exchange's book after that diff; the client computes the same number
over its own book and resubscribes when they differ. The rule follows OKX's, with CRC32 taken as an
unsigned 32-bit integer and tradewire's canonical decimals:

1. Take the best ``CHECKSUM_DEPTH`` (25) levels of each side: bids highest price first, asks lowest
   price first.
2. Write each price and quantity in canonical decimal text: the value at the asset's precision with
   no exponent, no trailing zeros after the point and no trailing point (``"100.5"``, ``"0.3"``,
   ``"101"``); the same text the depth payloads carry.
3. Interleave the sides level by level: ``bid1price:bid1qty:ask1price:ask1qty:bid2price:...``. When
   one side has fewer levels, carry on with the other side's entries alone.
4. Join everything with ``:`` into one ASCII string; the checksum is ``zlib.crc32`` of its bytes,
   an integer in ``0 .. 2**32 - 1``. An empty book gives the empty string, whose CRC32 is 0.

Worked example: bids ``100.5 x 0.3`` and ``100 x 1.25``, asks ``101 x 0.5``. The string is

    100.5:0.3:101:0.5:100:1.25

and its checksum is ``3836157906``. In Python a client checks it with::

    zlib.crc32(b"100.5:0.3:101:0.5:100:1.25") == 3836157906
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from tradewire.engine.decimals import texts
from tradewire.marketdata.updates import PriceLevel

CHECKSUM_DEPTH = 25
"""Levels per side that the checksum covers."""


def level_parts(levels: Sequence[PriceLevel], base_precision: int, quote_precision: int) -> list[str]:
    """``"price:qty"`` of each of one side's best ``CHECKSUM_DEPTH`` levels (rule, step 2).

    Split from :func:`join_parts` so that a book can keep the parts of a side that did not change.
    """
    price_text, qty_text = texts(quote_precision), texts(base_precision)
    return [f"{price_text[price]}:{qty_text[qty]}" for price, qty in levels[:CHECKSUM_DEPTH]]


def join_parts(bid_parts: list[str], ask_parts: list[str]) -> str:
    """The checksum string from each side's :func:`level_parts` (rule, steps 3 and 4)."""
    both = min(len(bid_parts), len(ask_parts))
    parts: list[str] = [""] * (2 * both)
    parts[::2] = bid_parts[:both]
    parts[1::2] = ask_parts[:both]
    parts += bid_parts[both:]
    parts += ask_parts[both:]
    return ":".join(parts)


def checksum_text(
    bids: Sequence[PriceLevel], asks: Sequence[PriceLevel], base_precision: int, quote_precision: int
) -> str:
    """The string the checksum is taken over, from each side's levels best first (rule above)."""
    return join_parts(
        level_parts(bids, base_precision, quote_precision),
        level_parts(asks, base_precision, quote_precision),
    )


def book_checksum(
    bids: Sequence[PriceLevel], asks: Sequence[PriceLevel], base_precision: int, quote_precision: int
) -> int:
    """CRC32 (unsigned) of ``checksum_text``."""
    return zlib.crc32(checksum_text(bids, asks, base_precision, quote_precision).encode("ascii"))
