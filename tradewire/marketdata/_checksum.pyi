from collections.abc import Sequence

from tradewire.marketdata.updates import PriceLevel

def book_checksum(
    bids: Sequence[PriceLevel], asks: Sequence[PriceLevel], base_precision: int, quote_precision: int
) -> int: ...
