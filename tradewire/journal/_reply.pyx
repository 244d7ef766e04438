# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A command's reply message, its events included, rendered in C.

Every applied command's reply (``entries.reply_payload`` around ``render.EventsRenderer``'s JSON list
of its events) is published to its submitter and recorded in ``tw:{0}:events``: in Python, the two
took about a fifth of the engine service's instructions per command (``bench/instructions.py
--service``). This writes the same bytes into one growing buffer. The Python functions stay the
reference (the unit tests hold the two equal) and render whatever leaves the fast path: an amount or
id past 64 bits, a string JSON must escape, a request id that is not plain letters and digits, an
asset past 18 decimals.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.string cimport memcpy

from tradewire._slots cimport offset, slot
from tradewire._text cimport amount, fits, integer, json_plain

from tradewire.engine.events import Accepted, Canceled, Deposited, Expired, Rejected, Trade, Withdrawn
from tradewire.journal.entries import CommandEntry

cdef Py_ssize_t ENTRY_ID = offset(CommandEntry, "entry_id"), ENTRY_TS = offset(CommandEntry, "ts")
cdef Py_ssize_t ENTRY_RID = offset(CommandEntry, "rid")
cdef Py_ssize_t A_ORDER_ID = offset(Accepted, "order_id"), A_USER = offset(Accepted, "user")
cdef Py_ssize_t A_MARKET = offset(Accepted, "market"), A_CLIENT_ID = offset(Accepted, "client_id")
cdef Py_ssize_t T_MARKET = offset(Trade, "market"), T_TRADE_ID = offset(Trade, "trade_id")
cdef Py_ssize_t T_PRICE = offset(Trade, "price"), T_QTY = offset(Trade, "qty")
cdef Py_ssize_t T_MAKER_ORDER_ID = offset(Trade, "maker_order_id")
cdef Py_ssize_t T_TAKER_ORDER_ID = offset(Trade, "taker_order_id")
cdef Py_ssize_t T_MAKER_USER = offset(Trade, "maker_user"), T_TAKER_USER = offset(Trade, "taker_user")
cdef Py_ssize_t T_TAKER_SIDE = offset(Trade, "taker_side"), T_MAKER_FEE = offset(Trade, "maker_fee")
cdef Py_ssize_t T_TAKER_FEE = offset(Trade, "taker_fee")
cdef Py_ssize_t C_ORDER_ID = offset(Canceled, "order_id"), C_REASON = offset(Canceled, "reason")
cdef Py_ssize_t R_ORDER_ID = offset(Rejected, "order_id"), R_USER = offset(Rejected, "user")
cdef Py_ssize_t R_REASON = offset(Rejected, "reason")
cdef Py_ssize_t X_ORDER_ID = offset(Expired, "order_id"), X_MARKET = offset(Expired, "market")
cdef Py_ssize_t X_REMAINING_QTY = offset(Expired, "remaining_qty")
cdef Py_ssize_t X_REMAINING_QUOTE_QTY = offset(Expired, "remaining_quote_qty")
cdef Py_ssize_t D_USER = offset(Deposited, "user"), D_ASSET = offset(Deposited, "asset")
cdef Py_ssize_t D_AMOUNT = offset(Deposited, "amount")
cdef Py_ssize_t W_USER = offset(Withdrawn, "user"), W_ASSET = offset(Withdrawn, "asset")
cdef Py_ssize_t W_AMOUNT = offset(Withdrawn, "amount")

cdef struct Writer:
    char *data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _room(Writer *w, Py_ssize_t more) except -1:
    """Room for ``more`` bytes after the written ones."""
    cdef Py_ssize_t wanted = w.size + more
    cdef char *grown
    if wanted <= w.capacity:
        return 0
    wanted = max(wanted, 2 * w.capacity)
    grown = <char *>PyMem_Realloc(w.data, wanted)
    if grown == NULL:
        raise MemoryError()
    w.data = grown
    w.capacity = wanted
    return 0


cdef inline void _put(Writer *w, const char *text, Py_ssize_t size) noexcept:
    memcpy(w.data + w.size, text, size)
    w.size += size


cdef inline void _integer(Writer *w, long long n) noexcept:
    w.size = integer(w.data + w.size, n) - w.data


cdef inline void _amount(Writer *w, long long units, int places) noexcept:
    """``"<decimals.to_text(units, places)>"``, quotes included."""
    cdef char *end
    w.data[w.size] = b'"'
    end = amount(w.data + w.size + 1, units, places)
    end[0] = b'"'
    w.size = end + 1 - w.data


cdef enum:
    NUMBER = 48  # room for any rendered integer or amount, quotes included
    FIXED = 256  # room for any event's fixed text


class _Off(Exception):
    """A value off the fast path: the Python renderers answer for the whole reply."""


cdef inline long long _int(object value) except? -1:
    cdef long long out = 0
    if not fits(value, &out):
        raise _Off()
    return out


cdef int _string(Writer *w, object text) except -1:
    """``text`` as a JSON string, when JSON needs no escape in it (as ``orjson.dumps`` writes it)."""
    cdef Py_ssize_t size
    cdef const char *utf8
    if type(text) is not str:
        raise _Off()
    try:
        utf8 = PyUnicode_AsUTF8AndSize(text, &size)
    except UnicodeError:
        raise _Off()
    if not json_plain(utf8, size):
        raise _Off()
    _room(w, size + 2 + FIXED)
    w.data[w.size] = b'"'
    memcpy(w.data + w.size + 1, utf8, size)
    w.data[w.size + 1 + size] = b'"'
    w.size += size + 2
    return 0


cdef class ReplyRenderer:
    """``render(entry, events)``: ``entries.reply_payload(entry, EventsRenderer(config).render(events))``."""

    cdef dict _markets  # name -> (base places, quote places)
    cdef dict _assets  # name -> places
    cdef object _python

    def __init__(self, config, python):
        """``python(entry, events)`` renders what the C path does not take."""
        self._markets = {
            name: (market.base.precision, market.quote.precision) for name, market in config.markets.items()
        }
        self._assets = {name: asset.precision for name, asset in config.assets.items()}
        self._python = python

    def __call__(self, entry, events):
        cdef Writer w
        w.data = <char *>PyMem_Malloc(1024)
        if w.data == NULL:
            raise MemoryError()
        w.size = 0
        w.capacity = 1024
        try:
            self._reply(&w, entry, events)
            return PyBytes_FromStringAndSize(w.data, w.size)
        except _Off:
            return self._python(entry, events)
        finally:
            PyMem_Free(w.data)

    cdef int _reply(self, Writer *w, object entry, object events) except -1:
        if type(entry) is not CommandEntry:
            raise _Off()
        rid_object, id_object = slot(entry, ENTRY_RID), slot(entry, ENTRY_ID)
        if type(rid_object) is not bytes or type(id_object) is not bytes:
            raise _Off()
        cdef bytes rid = rid_object
        cdef bytes entry_id = id_object
        cdef Py_ssize_t rid_size = PyBytes_GET_SIZE(rid), id_size = PyBytes_GET_SIZE(entry_id)
        cdef const char *rid_text = PyBytes_AS_STRING(rid)
        cdef Py_ssize_t i
        cdef unsigned char c
        cdef long long ts = _int(slot(entry, ENTRY_TS))
        if rid_size == 0:
            raise _Off()
        for i in range(rid_size):  # bytes.isalnum(): ASCII letters and digits, not empty
            c = <unsigned char>rid_text[i]
            if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122):
                raise _Off()
        _room(w, rid_size + id_size + FIXED)
        _put(w, b'{"rid":"', 8)
        _put(w, rid_text, rid_size)
        _put(w, b'","cmd":"', 9)
        _put(w, PyBytes_AS_STRING(entry_id), id_size)
        _put(w, b'","ts":', 7)
        _integer(w, ts)
        _put(w, b',"events":[', 11)
        first = True
        for event in events:
            if not first:
                _room(w, 1)
                _put(w, b',', 1)
            first = False
            self._event(w, event)
        _room(w, 2)
        _put(w, b']}', 2)
        return 0

    cdef int _places(self, object market, int *base, int *quote) except -1:
        found = self._markets.get(market)
        if found is None:
            raise _Off()
        base[0] = found[0]
        quote[0] = found[1]
        if not (0 <= base[0] <= 18 and 0 <= quote[0] <= 18):
            raise _Off()
        return 0

    cdef int _event(self, Writer *w, object e) except -1:
        cdef type kind = type(e)
        cdef int base = 0, quote = 0, places
        cdef long long a, b, c, d, f, g
        cdef bint taker_buys, deposit
        _room(w, FIXED)
        if kind is Accepted:
            a = _int(slot(e, A_ORDER_ID))
            _put(w, b'{"type":"accepted","order_id":', 30)
            _integer(w, a)
            _put(w, b',"user":', 8)
            _string(w, slot(e, A_USER))
            _put(w, b',"market":', 10)
            _string(w, slot(e, A_MARKET))
            if slot(e, A_CLIENT_ID) is not None:
                _put(w, b',"client_id":', 13)
                _string(w, slot(e, A_CLIENT_ID))
            _put(w, b'}', 1)
        elif kind is Trade:
            self._places(slot(e, T_MARKET), &base, &quote)
            a, b, c = _int(slot(e, T_TRADE_ID)), _int(slot(e, T_PRICE)), _int(slot(e, T_QTY))
            d, f, g = _int(slot(e, T_MAKER_ORDER_ID)), _int(slot(e, T_TAKER_ORDER_ID)), _int(slot(e, T_MAKER_FEE))
            taker_buys = slot(e, T_TAKER_SIDE) == "buy"
            _put(w, b'{"type":"trade","market":', 25)
            _string(w, slot(e, T_MARKET))
            _put(w, b',"trade_id":', 12)
            _integer(w, a)
            _put(w, b',"price":', 9)
            _amount(w, b, quote)
            _put(w, b',"qty":', 7)
            _amount(w, c, base)
            _put(w, b',"maker_order_id":', 18)
            _integer(w, d)
            _put(w, b',"taker_order_id":', 18)
            _integer(w, f)
            _put(w, b',"maker_user":', 14)
            _string(w, slot(e, T_MAKER_USER))
            _put(w, b',"taker_user":', 14)
            _string(w, slot(e, T_TAKER_USER))
            _put(w, b',"taker_side":', 14)
            _string(w, slot(e, T_TAKER_SIDE))
            _put(w, b',"maker_fee":', 13)
            _amount(w, g, quote if taker_buys else base)
            g = _int(slot(e, T_TAKER_FEE))
            _put(w, b',"taker_fee":', 13)
            _amount(w, g, base if taker_buys else quote)
            _put(w, b'}', 1)
        elif kind is Canceled:
            a = _int(slot(e, C_ORDER_ID))
            _put(w, b'{"type":"canceled","order_id":', 30)
            _integer(w, a)
            _put(w, b',"reason":', 10)
            _string(w, slot(e, C_REASON))
            _put(w, b'}', 1)
        elif kind is Rejected:
            _put(w, b'{"type":"rejected"', 18)
            if slot(e, R_ORDER_ID) is not None:
                a = _int(slot(e, R_ORDER_ID))
                _put(w, b',"order_id":', 12)
                _integer(w, a)
            if slot(e, R_USER) is not None:
                _put(w, b',"user":', 8)
                _string(w, slot(e, R_USER))
            _put(w, b',"reason":', 10)
            _string(w, slot(e, R_REASON))
            _put(w, b'}', 1)
        elif kind is Expired:
            self._places(slot(e, X_MARKET), &base, &quote)
            a = _int(slot(e, X_ORDER_ID))
            _put(w, b'{"type":"expired","order_id":', 29)
            _integer(w, a)
            if slot(e, X_REMAINING_QUOTE_QTY) is not None:
                b = _int(slot(e, X_REMAINING_QUOTE_QTY))
                _put(w, b',"remaining_quote_qty":', 23)
                _amount(w, b, quote)
            else:
                b = _int(slot(e, X_REMAINING_QTY) or 0)
                _put(w, b',"remaining_qty":', 17)
                _amount(w, b, base)
            _put(w, b'}', 1)
        elif kind is Deposited or kind is Withdrawn:
            deposit = kind is Deposited
            user = slot(e, D_USER if deposit else W_USER)
            asset = slot(e, D_ASSET if deposit else W_ASSET)
            found = self._assets.get(asset)
            if found is None or not 0 <= <int>found <= 18:
                raise _Off()
            places = found
            a = _int(slot(e, D_AMOUNT if deposit else W_AMOUNT))
            if deposit:
                _put(w, b'{"type":"deposit","user":', 25)
            else:
                _put(w, b'{"type":"withdraw","user":', 26)
            _string(w, user)
            _put(w, b',"asset":', 9)
            _string(w, asset)
            _put(w, b',"amount":', 10)
            _amount(w, a, places)
            _put(w, b'}', 1)
        else:
            raise _Off()
        return 0
