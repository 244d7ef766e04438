"""``decimals.to_text`` in C, for amounts within 64 bits at up to 18 places: the account views and
market data write a new amount (a trade's notional, its fee, an order's cumulative quote) for nearly
every fill, each a miss of the ``Texts`` memo, and in Python each took about 2,000 instructions.
Anything else (wider values, more places, a bool) takes the Python function, the reference, which
the tests hold this one equal to."""

from cpython.unicode cimport PyUnicode_DecodeASCII

from tradewire._text cimport amount, fits


def to_text(units, int precision):
    """``decimals.to_text_python(units, precision)``."""
    cdef long long value
    cdef char text[48]
    cdef char *end
    if 0 <= precision <= 18 and fits(units, &value):
        end = amount(text, value, precision)
        return PyUnicode_DecodeASCII(text, end - text, NULL)
    from tradewire.engine.decimals import to_text_python

    return to_text_python(units, precision)
