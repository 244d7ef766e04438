# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The account views' two hottest renderings, in C: an order record and a balance value.

Every order the engine touches gets its ``GET /api/v3/order`` record rendered at the batch's flush,
and every balance it changes a ``{"free", "locked"}`` value: about a tenth of the engine process's
CPU per command in Python, most of it formatting integers and decimals. These write the same text
(``tradewire.accounts.payloads``, whose functions stay the reference: the unit tests hold the two
equal) into a stack buffer. Anything outside the fast path (an amount past 64 bits, a client id that
JSON must escape, a record longer than the buffer) is rendered by the Python function instead.
"""

from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.string cimport memcpy

from tradewire._slots cimport offset, slot
from tradewire._text cimport amount, fits, integer, json_plain

from tradewire.accounts.records import OrderState, Symbol

cdef enum:
    BUFFER = 1536
    AMOUNT = 48  # 20 digits, a sign, a point and 18 places, with room to spare
    TEXT = 256  # the longest string field taken as is (client ids are at most 36 on Binance)

cdef inline char *_put(char *at, const char *text, Py_ssize_t size) noexcept:
    memcpy(at, text, size)
    return at + size


cdef inline const char *_utf8(object text, Py_ssize_t *size):
    """``text``'s UTF-8, or NULL (with no exception set) when it is not a ``str`` that has one."""
    if type(text) is not str:
        return NULL
    try:
        return PyUnicode_AsUTF8AndSize(text, size)
    except UnicodeError:  # a lone surrogate: the Python renderer says what is wrong
        return NULL


cdef Py_ssize_t ORDER_ID = offset(OrderState, "order_id"), CLIENT_ID = offset(OrderState, "client_id")
cdef Py_ssize_t SIDE = offset(OrderState, "side"), TYPE = offset(OrderState, "type")
cdef Py_ssize_t TIF = offset(OrderState, "tif"), STP = offset(OrderState, "stp")
cdef Py_ssize_t PRICE = offset(OrderState, "price"), QTY = offset(OrderState, "qty")
cdef Py_ssize_t QUOTE_QTY = offset(OrderState, "quote_qty"), TIME = offset(OrderState, "time")
cdef Py_ssize_t UPDATE_TIME = offset(OrderState, "update_time"), EXECUTED = offset(OrderState, "executed")
cdef Py_ssize_t CUM_QUOTE = offset(OrderState, "cum_quote"), STATUS = offset(OrderState, "status")
cdef Py_ssize_t BASE_PLACES = offset(Symbol, "base_places"), QUOTE_PLACES = offset(Symbol, "quote_places")
cdef Py_ssize_t SYMBOL_JSON = offset(Symbol, "symbol_json")


def _python():
    from tradewire.accounts import payloads  # here: payloads imports this module

    return payloads


def order_record(order, sym):
    """:func:`tradewire.accounts.payloads.order_record`, the same text."""
    cdef char buffer[BUFFER]
    cdef char *at = buffer
    cdef long long qty, executed, cum_quote, update_time, order_id, price, time, quote_qty, orig
    cdef int base, quote
    cdef Py_ssize_t status_size, symbol_size, cid_size, tif_size, type_size, side_size, stp_size
    cdef const char *status
    cdef const char *symbol
    cdef const char *cid
    cdef const char *tif
    cdef const char *type_
    cdef const char *side
    cdef const char *stp
    if type(order) is not OrderState or type(sym) is not Symbol:
        return _python().order_record_python(order, sym)
    base_places, quote_places = slot(sym, BASE_PLACES), slot(sym, QUOTE_PLACES)
    if not (
        fits(slot(order, QTY), &qty) and fits(slot(order, EXECUTED), &executed)
        and fits(slot(order, CUM_QUOTE), &cum_quote) and fits(slot(order, UPDATE_TIME), &update_time)
        and fits(slot(order, ORDER_ID), &order_id) and fits(slot(order, PRICE), &price)
        and fits(slot(order, TIME), &time) and fits(slot(order, QUOTE_QTY), &quote_qty)
        and type(base_places) is int and type(quote_places) is int
        and 0 <= base_places <= 18 and 0 <= quote_places <= 18
    ):
        return _python().order_record_python(order, sym)
    base, quote = base_places, quote_places
    status = _utf8(slot(order, STATUS), &status_size)
    symbol = _utf8(slot(sym, SYMBOL_JSON), &symbol_size)
    cid = _utf8(slot(order, CLIENT_ID), &cid_size)
    tif = _utf8(slot(order, TIF), &tif_size)
    type_ = _utf8(slot(order, TYPE), &type_size)
    side = _utf8(slot(order, SIDE), &side_size)
    stp = _utf8(slot(order, STP), &stp_size)
    if (
        status == NULL or symbol == NULL or cid == NULL or tif == NULL or type_ == NULL or side == NULL
        or stp == NULL
        or status_size + symbol_size + cid_size + tif_size + type_size + side_size + stp_size > TEXT
        or not json_plain(cid, cid_size)
    ):
        return _python().order_record_python(order, sym)
    orig = qty if qty else executed
    at = _put(at, b'{"status":"', 11)
    at = _put(at, status, status_size)
    at = _put(at, b'","origQty":"', 13)
    at = amount(at, orig, base)
    at = _put(at, b'","executedQty":"', 17)
    at = amount(at, executed, base)
    at = _put(at, b'","cummulativeQuoteQty":"', 25)
    at = amount(at, cum_quote, quote)
    at = _put(at, b'","updateTime":', 15)
    at = integer(at, update_time)
    at = _put(at, b',"symbol":', 10)
    at = _put(at, symbol, symbol_size)
    at = _put(at, b',"orderId":', 11)
    at = integer(at, order_id)
    at = _put(at, b',"orderListId":-1,"clientOrderId":"', 35)
    at = _put(at, cid, cid_size)
    at = _put(at, b'","price":"', 11)
    at = amount(at, price, quote)
    at = _put(at, b'","timeInForce":"', 17)
    at = _put(at, tif, tif_size)
    at = _put(at, b'","type":"', 10)
    at = _put(at, type_, type_size)
    at = _put(at, b'","side":"', 10)
    at = _put(at, side, side_size)
    at = _put(at, b'","stopPrice":"0","icebergQty":"0","time":', 42)
    at = integer(at, time)
    at = _put(at, b',"isWorking":true,"workingTime":', 32)
    at = integer(at, time)
    at = _put(at, b',"origQuoteOrderQty":"', 22)
    at = amount(at, quote_qty, quote)
    at = _put(at, b'","selfTradePreventionMode":"', 29)
    at = _put(at, stp, stp_size)
    at = _put(at, b'"}', 2)
    return PyUnicode_DecodeUTF8(buffer, at - buffer, NULL)


def balance_record(free, locked, places):
    """:func:`tradewire.accounts.payloads.balance_record`, the same text."""
    cdef char buffer[2 * AMOUNT + 32]
    cdef char *at = buffer
    cdef long long free_units, locked_units
    if not (fits(free, &free_units) and fits(locked, &locked_units) and type(places) is int and 0 <= places <= 18):
        return _python().balance_record_python(free, locked, places)
    at = _put(at, b'{"free":"', 9)
    at = amount(at, free_units, <int>places)
    at = _put(at, b'","locked":"', 12)
    at = amount(at, locked_units, <int>places)
    at = _put(at, b'"}', 2)
    return PyUnicode_DecodeUTF8(buffer, at - buffer, NULL)
