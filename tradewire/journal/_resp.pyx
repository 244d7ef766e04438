# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""RESP of a whole batch in one pass, in C: the engine's transaction is about 8,000 commands a batch.

The same bytes as hiredis's packer called per op between ``head`` and ``tail`` (argument for
argument), written straight into one ``bytes`` of the exact size: the Python packer spent about
5-10 us per journal command building a string per command and joining them, a fifth of the engine
process. Arguments other than ``bytes``, ``str`` and ``int`` go through hiredis, so every type packs
(or is refused) exactly as there; a ``str`` is copied from the UTF-8 it keeps and an ``int`` within
64 bits written in place, without a ``bytes`` made for either.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_AsUTF8String
from libc.string cimport memcpy

import hiredis


cdef inline Py_ssize_t _digits(Py_ssize_t n) noexcept:
    cdef Py_ssize_t count = 1
    while n >= 10:
        n = n // 10
        count += 1
    return count


cdef inline char *_number(char *at, Py_ssize_t n) noexcept:
    """Write ``n`` (not negative) in decimal at ``at``; return the end."""
    cdef Py_ssize_t width = _digits(n)
    cdef Py_ssize_t i = width
    while i > 0:
        i -= 1
        at[i] = <char>(48 + n % 10)
        n = n // 10
    return at + width


cdef enum Kind:
    TEXT  # bytes, or a str: its UTF-8, which the str keeps (no copy)
    INTEGER  # an int within 64 bits: its digits written in place
    CONVERTED  # anything else: made bytes by _as_bytes, once


cdef inline Kind _kind(object arg, const char **data, Py_ssize_t *size, long long *number):
    cdef int overflow = 0
    if type(arg) is bytes:
        data[0] = PyBytes_AS_STRING(arg)
        size[0] = PyBytes_GET_SIZE(arg)
        return TEXT
    if type(arg) is str:
        try:
            data[0] = PyUnicode_AsUTF8AndSize(arg, size)
        except UnicodeError:  # a lone surrogate: refused by _as_bytes as by hiredis
            return CONVERTED
        return TEXT
    if type(arg) is int:
        number[0] = PyLong_AsLongLongAndOverflow(arg, &overflow)
        if not overflow and number[0] > -0x7FFFFFFFFFFFFFFF:
            size[0] = _digits(-number[0]) + 1 if number[0] < 0 else _digits(number[0])
            return INTEGER
    return CONVERTED


cdef bytes _as_bytes(object arg):
    if type(arg) is str:
        return PyUnicode_AsUTF8String(arg)
    if type(arg) is int:
        return str(arg).encode()
    packed = hiredis.pack_command((arg,))  # b"*1\r\n$<n>\r\n<data>\r\n", or hiredis's TypeError
    return packed[packed.index(b"\r\n", 4) + 2 : len(packed) - 2]


def pack_commands(ops, bytes head=b"", bytes tail=b""):
    """``head``, every op of ``ops`` as a RESP array of bulk strings, then ``tail``, as one bytes."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(tail)
    cdef Py_ssize_t count, length
    cdef const char *data = NULL
    cdef long long number = 0
    cdef Kind kind
    cdef list converted = []
    """The arguments made bytes by _as_bytes, in the order they come."""
    cdef object arg
    for op in ops:
        count = len(op)
        size += 3 + _digits(count)
        for arg in op:
            kind = _kind(arg, &data, &length, &number)
            if kind == CONVERTED:
                arg = _as_bytes(arg)
                converted.append(arg)
                length = PyBytes_GET_SIZE(arg)
            size += 5 + _digits(length) + length
    # no Python code runs from here on (the ops are only iterated), so they are as measured above
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef char *at = PyBytes_AS_STRING(out)
    cdef Py_ssize_t next_converted = 0
    length = PyBytes_GET_SIZE(head)
    memcpy(at, PyBytes_AS_STRING(head), length)
    at += length
    for op in ops:
        at[0] = b"*"
        at = _number(at + 1, len(op))
        at[0] = b"\r"
        at[1] = b"\n"
        at += 2
        for arg in op:
            kind = _kind(arg, &data, &length, &number)
            if kind == CONVERTED:
                arg = converted[next_converted]
                next_converted += 1
                data = PyBytes_AS_STRING(arg)
                length = PyBytes_GET_SIZE(arg)
            at[0] = b"$"
            at = _number(at + 1, length)
            at[0] = b"\r"
            at[1] = b"\n"
            if kind == INTEGER:
                if number < 0:
                    at[2] = b"-"
                    _number(at + 3, -number)
                else:
                    _number(at + 2, number)
            else:
                memcpy(at + 2, data, length)
            at += length + 2
            at[0] = b"\r"
            at[1] = b"\n"
            at += 2
    length = PyBytes_GET_SIZE(tail)
    memcpy(at, PyBytes_AS_STRING(tail), length)
    return out
