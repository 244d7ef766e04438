"""Integers, canonical decimals and JSON strings for the C renderers (``cimport``ed, no module of
its own): the text of ``str(n)`` and of ``decimals.to_text(units, places)`` for values within 64
bits and places up to 18, written straight into C buffers (each writer writes at ``at`` and returns
the end; the caller has made room: 20 digits and a sign for an integer, 40 characters for an
amount), and the two checks every renderer makes before taking its fast path.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow


cdef extern from *:
    """
    static const unsigned long long TW_POW10[19] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL};
    """
    const unsigned long long TW_POW10[19]


cdef inline char *digits(char *at, unsigned long long n) noexcept:
    """``n`` in decimal."""
    cdef char reversed_[24]
    cdef int count = 0
    while True:
        reversed_[count] = <char>(48 + n % 10)
        count += 1
        n = n // 10
        if n == 0:
            break
    while count > 0:
        count -= 1
        at[0] = reversed_[count]
        at += 1
    return at


cdef inline unsigned long long magnitude(long long n) noexcept:
    """``abs(n)``, LLONG_MIN included."""
    return <unsigned long long>(-(n + 1)) + 1 if n < 0 else <unsigned long long>n


cdef inline char *integer(char *at, long long n) noexcept:
    """``str(n)``."""
    if n < 0:
        at[0] = b"-"
        at += 1
    return digits(at, magnitude(n))


cdef inline char *amount(char *at, long long units, int places) noexcept:
    """``decimals.to_text(units, places)``: no exponent, no trailing zeros, no trailing point."""
    cdef unsigned long long whole, frac
    cdef int width, i
    if units < 0:
        at[0] = b"-"
        at += 1
    whole = magnitude(units) // TW_POW10[places]
    frac = magnitude(units) % TW_POW10[places]
    at = digits(at, whole)
    if frac == 0:
        return at
    at[0] = b"."
    at += 1
    width = places
    while frac % 10 == 0:  # frac > 0: the loop ends
        frac = frac // 10
        width -= 1
    for i in range(width - 1, -1, -1):
        at[i] = <char>(48 + frac % 10)
        frac = frac // 10
    return at + width


cdef inline bint fits(object value, long long *out) except -1:
    """Whether ``value`` is an ``int`` within 64 bits; if so, stored in ``out``."""
    cdef int overflow = 0
    if type(value) is not int:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef inline bint json_plain(const char *text, Py_ssize_t size) noexcept:
    """Whether JSON quotes this UTF-8 as it is: ``orjson.dumps`` escapes ``"``, ``\\`` and the
    control characters, and leaves the rest of UTF-8 alone."""
    cdef Py_ssize_t i
    cdef unsigned char byte
    for i in range(size):
        byte = <unsigned char>text[i]
        if byte < 0x20 or byte == 0x22 or byte == 0x5C:
            return False
    return True
