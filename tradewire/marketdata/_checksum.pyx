# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The depth checksum's string, written in C (``tradewire.marketdata.checksum`` has the rule).

Every depth diff carries the checksum of the book after it, so a market's checksum is taken once per
engine batch that changed its best levels: with batches of a few commands (a thousand or ten
thousand commands a second) that was a sixth of the engine service's CPU, rendering up to fifty
levels' texts in Python. This writes the same string into a stack buffer and hands it to
``zlib.crc32``. ``checksum.book_checksum`` stays the reference (the unit tests hold the two equal)
and answers whatever leaves the fast path: a level that is not a pair of ints within 64 bits, an
asset past 18 decimals.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize

from tradewire._text cimport amount, fits

from zlib import crc32

from tradewire.marketdata import checksum as _reference

cdef enum:
    DEPTH = 25  # checksum.CHECKSUM_DEPTH, checked at import
    LEVEL = 96  # a level's "price:qty:" at most: two amounts of 40 characters and two colons

if _reference.CHECKSUM_DEPTH != DEPTH:
    raise ImportError("the C checksum covers another depth than tradewire.marketdata.checksum")

class _Off(Exception):
    """A level off the fast path: the reference answers."""


cdef char *_amount(char *at, object value, int places) except NULL:
    """``decimals.to_text(value, places)`` for a non-negative int within 64 bits."""
    cdef long long units = 0
    if not fits(value, &units) or units < 0:
        raise _Off()
    return amount(at, units, places)


cdef char *_level(char *at, object level, int base, int quote) except NULL:
    """``price:qty:`` of one ``(price, qty)`` level."""
    if type(level) is not tuple or len(<tuple>level) != 2:
        raise _Off()
    at = _amount(at, (<tuple>level)[0], quote)
    at[0] = b':'
    at = _amount(at + 1, (<tuple>level)[1], base)
    at[0] = b':'
    return at + 1


def book_checksum(bids, asks, base_precision, quote_precision):
    """:func:`tradewire.marketdata.checksum.book_checksum`, the same number."""
    cdef char buffer[4 * DEPTH * LEVEL]
    cdef char *at = buffer
    cdef Py_ssize_t nbids, nasks, i
    cdef int base, quote
    if (
        type(bids) is not list or type(asks) is not list or type(base_precision) is not int
        or type(quote_precision) is not int or not 0 <= base_precision <= 18
        or not 0 <= quote_precision <= 18
    ):
        return _reference.book_checksum(bids, asks, base_precision, quote_precision)
    base, quote = base_precision, quote_precision
    nbids, nasks = min(len(bids), DEPTH), min(len(asks), DEPTH)
    try:
        for i in range(max(nbids, nasks)):
            if i < nbids:
                at = _level(at, (<list>bids)[i], base, quote)
            if i < nasks:
                at = _level(at, (<list>asks)[i], base, quote)
    except _Off:
        return _reference.book_checksum(bids, asks, base_precision, quote_precision)
    return crc32(PyBytes_FromStringAndSize(buffer, at - buffer - 1 if at > buffer else 0))
