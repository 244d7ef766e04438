"""Decimal strings <-> integer units.

Money never touches a float: every amount is an ``int`` counted in the smallest unit of its asset
(``precision`` decimal places). These two functions are the only doors between the two worlds.
"""

from __future__ import annotations

MAX_DIGITS = 30
"""Significant digits an amount may have; beyond that it is refused as invalid, not silently rounded."""

POW10 = [10**i for i in range(64)]


def to_units(text: str, precision: int) -> int | None:
    """Parse a well-formed decimal string (``-?digits(.digits)?``) at ``precision`` places.

    Returns ``None`` when the value is finer than the precision or has more than ``MAX_DIGITS``
    significant digits. Trailing zeros are not "finer": ``"1.500"`` is fine at precision 1.
    """
    point = text.find(".")
    if point < 0:
        whole, frac = text, ""
    else:
        whole, frac = text[:point], text[point + 1 :].rstrip("0")
        if len(frac) > precision:
            return None
    sign = ""
    if whole[:1] == "-":
        sign, whole = "-", whole[1:]
    whole = whole.lstrip("0")
    if len(whole) + len(frac) > MAX_DIGITS:  # before int(): a megabyte of digits costs only a scan
        return None
    # the leading zeros go before int() too: it refuses strings of more than 4,300 characters
    units: int = int(sign + (whole + frac or "0")) * POW10[precision - len(frac)]
    return units


_CACHE_LIMIT = 1 << 16
_caches: list[dict[str, int]] = [{} for _ in range(64)]


def positive_units(text: str, precision: int) -> int:
    """``to_units`` for amounts that must be positive: 0 stands for every invalid value.

    Memoized per precision, because order flow repeats the same few prices and sizes over and over;
    the cache is a pure function's table, so it cannot change any result.
    """
    cache = _caches[precision]
    units = cache.get(text)
    if units is None:
        parsed = to_units(text, precision)
        units = parsed if parsed is not None and parsed > 0 else 0
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = units
    return units


def to_text_python(units: int, precision: int) -> str:
    """Canonical form: no exponent, no trailing zeros after the point, no trailing point.

    :data:`to_text` is this function, in C when built (``_decimals.pyx``)."""
    if precision == 0:
        return str(units)
    sign = ""
    if units < 0:
        sign, units = "-", -units
    whole, frac = divmod(units, POW10[precision])
    if frac == 0:
        return f"{sign}{whole}"
    digits = str(frac).rjust(precision, "0").rstrip("0")
    return f"{sign}{whole}.{digits}"


try:
    from tradewire.engine._decimals import to_text as to_text
except ImportError:  # not built: the reference does it
    to_text = to_text_python


def decimals_of(text: str) -> int:
    """Number of decimal places a decimal string needs (trailing zeros do not count)."""
    point = text.find(".")
    return 0 if point < 0 else len(text[point + 1 :].rstrip("0"))


class Texts(dict[int, str]):
    """``texts[units]`` is ``to_text(units, precision)``, memoized.

    Events, market data and account views write the same few prices and sizes over and over, so a
    table per precision answers nearly every call with one dict lookup. It is a pure function's memo
    (cleared when it grows past ``_CACHE_LIMIT``), so it cannot change any output.
    """

    __slots__ = ("precision",)

    def __init__(self, precision: int) -> None:
        super().__init__()
        self.precision = precision

    def __missing__(self, units: int) -> str:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        text = self[units] = to_text(units, self.precision)
        return text


_text_tables: dict[int, Texts] = {}


def texts(precision: int) -> Texts:
    """The process-wide table of one precision."""
    table = _text_tables.get(precision)
    if table is None:
        table = _text_tables[precision] = Texts(precision)
    return table
