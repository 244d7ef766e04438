# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The matching engine's rules over a native data layout: the same commands give the same events.

The pure engine (``engine.py``) is the definition; this is the same walk, branch for branch, with
its state in flat C arrays instead of Python objects. Measured with callgrind, the pure engine
spends about a third of its time on L1 misses among scattered objects (an order, its ints, its
deque block, its level, dict entries), and compiling that code as it is changes nothing. Here an
order is one 64-byte record in a pool, a level an intrusive FIFO of pool indices, a balance two
machine words; only commands and events are Python objects.

Machine words bound the amounts: every value and every asset's circulating total must stay below
``LIMIT`` (2**62), so that no sum overflows and every product fits in 128 bits. A command that
would break the bound is not applied here: ``apply`` moves the whole state into a pure ``Engine``
and that engine applies it and every later command, so the bound changes speed, never results.
"""

from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF, Py_XINCREF
from cpython.mem cimport PyMem_Free as free, PyMem_Malloc as malloc, PyMem_Realloc as realloc
from libc.string cimport memmove, memset

from msgspec import UNSET

from tradewire.engine.book import Order
from tradewire.engine.commands import Cancel, Deposit, NewOrder, Withdraw
from tradewire.engine.decimals import positive_units, to_units
from tradewire.engine.engine import BAD_COMMAND, FEES_USER, Engine
from tradewire.engine.events import Accepted, Canceled, Deposited, Expired, Rejected, Trade, Withdrawn

LIMIT = 1 << 62
"""Every amount, price, quantity, fee term and circulating total stays below this."""

cdef extern from *:
    """
    #include <limits.h>
    typedef struct { long long *keys; int *vals; size_t mask; size_t len; } tw_map;
    #define TW_EMPTY LLONG_MIN

    static inline size_t tw_slot(long long key, size_t mask) {
        unsigned long long h = (unsigned long long)key * 0x9E3779B97F4A7C15ULL;
        return (size_t)(h ^ (h >> 29)) & mask;
    }
    static int tw_map_init(tw_map *m, size_t cap) {
        m->keys = (long long *)PyMem_Malloc(cap * sizeof(long long));
        m->vals = (int *)PyMem_Malloc(cap * sizeof(int));
        if (!m->keys || !m->vals) return -1;
        for (size_t i = 0; i < cap; i++) m->keys[i] = TW_EMPTY;
        m->mask = cap - 1; m->len = 0;
        return 0;
    }
    static void tw_map_free(tw_map *m) { PyMem_Free(m->keys); PyMem_Free(m->vals); m->keys = NULL; m->vals = NULL; }
    static int tw_map_get(const tw_map *m, long long key) {
        size_t i = tw_slot(key, m->mask);
        for (;;) {
            long long k = m->keys[i];
            if (k == key) return m->vals[i];
            if (k == TW_EMPTY) return -1;
            i = (i + 1) & m->mask;
        }
    }
    static int tw_map_put(tw_map *m, long long key, int val);
    static int tw_map_grow(tw_map *m) {
        tw_map old = *m;
        if (tw_map_init(m, (old.mask + 1) * 2) < 0) { *m = old; return -1; }
        for (size_t i = 0; i <= old.mask; i++)
            if (old.keys[i] != TW_EMPTY) tw_map_put(m, old.keys[i], old.vals[i]);
        tw_map_free(&old);
        return 0;
    }
    static int tw_map_put(tw_map *m, long long key, int val) {
        if ((m->len + 1) * 4 > (m->mask + 1) * 3 && tw_map_grow(m) < 0) return -1;
        size_t i = tw_slot(key, m->mask);
        while (m->keys[i] != TW_EMPTY && m->keys[i] != key) i = (i + 1) & m->mask;
        if (m->keys[i] == TW_EMPTY) m->len++;
        m->keys[i] = key; m->vals[i] = val;
        return 0;
    }
    /* linear probing with backward-shift deletion: no tombstones to slow later probes */
    static void tw_map_del(tw_map *m, long long key) {
        size_t i = tw_slot(key, m->mask);
        while (m->keys[i] != key) { if (m->keys[i] == TW_EMPTY) return; i = (i + 1) & m->mask; }
        size_t j = i;
        for (;;) {
            j = (j + 1) & m->mask;
            if (m->keys[j] == TW_EMPTY) break;
            size_t home = tw_slot(m->keys[j], m->mask);
            /* move j back to i unless its home lies cyclically in (i, j] */
            if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
                m->keys[i] = m->keys[j]; m->vals[i] = m->vals[j]; i = j;
            }
        }
        m->keys[i] = TW_EMPTY; m->len--;
    }
    /* a * b / d for non-negative operands, saturated at LLONG_MAX */
    static inline long long tw_muldiv(long long a, long long b, long long d) {
        __int128 r = (__int128)a * b / d;
        return r > LLONG_MAX ? LLONG_MAX : (long long)r;
    }
    /* the fee on an amount: a * num / den rounded up, as the pure engine's -((-a * num) // den) */
    static inline long long tw_fee(long long a, long long num, long long den) {
        return (long long)(((__int128)a * num + den - 1) / den);
    }
    """
    ctypedef struct tw_map:
        size_t len
    int tw_map_init(tw_map *m, size_t cap)
    void tw_map_free(tw_map *m)
    int tw_map_get(const tw_map *m, long long key)
    int tw_map_put(tw_map *m, long long key, int val)
    void tw_map_del(tw_map *m, long long key)
    long long tw_muldiv(long long a, long long b, long long d)
    long long tw_fee(long long a, long long num, long long den)
    long long LLONG_MIN
    long long LLONG_MAX

cdef long long C_LIMIT = (<long long>1) << 62
cdef long long UNBOUNDED = LLONG_MAX
cdef long long NO_LIMIT = LLONG_MIN

cdef enum:
    STP_EXPIRE_MAKER = 0
    STP_EXPIRE_TAKER = 1
    STP_EXPIRE_BOTH = 2
    STP_NONE = 3

cdef struct COrder:
    long long order_id
    long long price
    long long qty
    int uid
    int market
    int level
    int prev
    int next
    int is_buy
    PyObject *client_id  # a strong reference, or NULL

cdef struct CLevel:
    long long price
    long long index
    int live
    int head
    int tail
    int next_free

cdef struct CSide:
    long long *keys  # level keys ascending, best last: bids index, asks -index
    int nkeys
    int capkeys
    int sign
    tw_map levels  # tick index -> level slot

cdef struct CMarket:
    int base
    int quote
    long long tick
    long long lot
    long long scale
    long long min_notional
    long long maker_num
    long long maker_den
    long long taker_num
    long long taker_den
    long long next_trade_id
    CSide bids
    CSide asks


def supports(config):
    """Whether every constant of ``config`` fits the native bounds (else the pure engine runs)."""
    for market in config.markets.values():
        for value in (
            market.tick, market.lot, market.base_scale, market.min_notional_units,
            market.maker_fee.num, market.maker_fee.den, market.taker_fee.num, market.taker_fee.den,
        ):
            if not 0 <= value < LIMIT:
                return False
        if market.tick <= 0 or market.lot <= 0 or market.base_scale <= 0:
            return False
        if market.maker_fee.den <= 0 or market.taker_fee.den <= 0:
            return False
    return 0 < len(config.markets) < 1 << 20 and len(config.assets) < 1 << 20


cdef class NativeEngine:
    """``Engine.apply`` over the native layout; ``pure()`` hands the state over to an ``Engine``."""

    cdef readonly object config
    cdef object _pure
    cdef long long next_order_id
    # markets
    cdef CMarket *markets
    cdef int nmarkets
    cdef dict market_index  # name -> index
    cdef list market_names
    cdef list market_objects
    cdef list qty_caches
    cdef list price_caches
    # assets and the ledger
    cdef Py_ssize_t nassets  # wide, so that uid * nassets + asset never overflows an int
    cdef dict asset_index  # name -> index
    cdef list asset_names
    cdef long long *circulating
    cdef dict uids  # user -> uid
    cdef list user_names
    cdef int nusers
    cdef Py_ssize_t capusers
    cdef long long *balances  # [(uid * nassets + asset) * 2]: available, locked
    cdef unsigned char *exists  # [uid * nassets + asset]: the pure engine holds this balance
    cdef int fees_uid
    # orders
    cdef COrder *orders
    cdef int caporders
    cdef int free_order
    cdef tw_map order_slots  # order id -> order slot
    cdef dict client_ids  # (user, client id) -> order id
    cdef CLevel *levels
    cdef int caplevels
    cdef int free_level

    def __cinit__(self, config):
        self.markets = NULL
        self.circulating = NULL
        self.balances = NULL
        self.exists = NULL
        self.orders = NULL
        self.levels = NULL

    def __init__(self, config):
        if not supports(config):
            raise ValueError("this config's constants exceed the native engine's bounds")
        cdef int i
        cdef CMarket *m
        self.config = config
        self._pure = None
        self.next_order_id = 1
        self.asset_names = list(config.assets)
        self.asset_index = {name: i for i, name in enumerate(self.asset_names)}
        self.nassets = len(self.asset_names)
        self.circulating = <long long *>_alloc(self.nassets * sizeof(long long))
        memset(self.circulating, 0, self.nassets * sizeof(long long))
        self.market_names = list(config.markets)
        self.market_objects = [config.markets[name] for name in self.market_names]
        self.market_index = {name: i for i, name in enumerate(self.market_names)}
        self.nmarkets = len(self.market_names)
        self.qty_caches = [{} for _ in range(self.nmarkets)]
        self.price_caches = [{} for _ in range(self.nmarkets)]
        self.markets = <CMarket *>_alloc(self.nmarkets * sizeof(CMarket))
        memset(self.markets, 0, self.nmarkets * sizeof(CMarket))
        for i in range(self.nmarkets):
            market = self.market_objects[i]
            m = &self.markets[i]
            m.base = self.asset_index[market.base.name]
            m.quote = self.asset_index[market.quote.name]
            m.tick = market.tick
            m.lot = market.lot
            m.scale = market.base_scale
            m.min_notional = market.min_notional_units
            m.maker_num = market.maker_fee.num
            m.maker_den = market.maker_fee.den
            m.taker_num = market.taker_fee.num
            m.taker_den = market.taker_fee.den
            m.next_trade_id = 1
            _side_init(&m.bids, 1)
            _side_init(&m.asks, -1)
        self.uids = {}
        self.user_names = []
        self.nusers = 0
        self.capusers = 0
        self.fees_uid = self._uid(FEES_USER)
        self.caporders = 0
        self.free_order = -1
        if tw_map_init(&self.order_slots, 1024) < 0:
            raise MemoryError()
        self.client_ids = {}
        self.caplevels = 0
        self.free_level = -1

    def __dealloc__(self):
        cdef int i
        if self.orders != NULL:
            for i in range(self.caporders):
                Py_XDECREF(self.orders[i].client_id)
                self.orders[i].client_id = NULL
        free(self.orders)
        free(self.levels)
        free(self.balances)
        free(self.exists)
        free(self.circulating)
        if self.markets != NULL:
            for i in range(self.nmarkets):
                free(self.markets[i].bids.keys)
                free(self.markets[i].asks.keys)
                tw_map_free(&self.markets[i].bids.levels)
                tw_map_free(&self.markets[i].asks.levels)
        free(self.markets)
        tw_map_free(&self.order_slots)

    # -- the whole interface -------------------------------------------------------------------

    def apply(self, command):
        """As ``Engine.apply``."""
        if self._pure is not None:
            return self._pure.apply(command)
        kind = type(command)
        if kind is NewOrder:
            events = self._new_order(command)
        elif kind is Cancel:
            events = self._cancel(command)
        elif command is None:
            return [BAD_COMMAND]
        elif kind is Deposit:
            events = self._deposit(command)
        else:
            events = self._withdraw(command)
        if events is None:  # beyond the native bounds: the pure engine takes over from here
            return self.pure().apply(command)
        return events

    def apply_all(self, commands):
        events = []
        apply = self.apply
        for command in commands:
            events += apply(command)
        return events

    @property
    def handed_over(self):
        """Whether the pure engine holds the state (a command went beyond the native bounds)."""
        return self._pure is not None

    def next_trade_ids(self):
        """``{market: next trade id}``, without handing over."""
        if self._pure is not None:
            return {name: book.next_trade_id for name, book in self._pure.books.items()}
        return {self.market_names[i]: self.markets[i].next_trade_id for i in range(self.nmarkets)}

    def pure(self):
        """The pure ``Engine`` holding this state; every later command goes to it."""
        if self._pure is None:
            self._pure = self._export()
        return self._pure

    def as_pure(self):
        """A pure ``Engine`` in this state, to read (a snapshot, a check); this engine runs on."""
        return self._pure if self._pure is not None else self._export()

    def balance(self, user, asset):
        """``(available, locked)`` of ``user`` in ``asset``; ``(0, 0)`` where no balance exists."""
        if self._pure is not None:
            return self._pure.balance(user, asset)
        found = self.uids.get(user)
        index = self.asset_index.get(asset)
        if found is None or index is None:
            return (0, 0)
        cdef Py_ssize_t at = <int>found * self.nassets + <int>index
        if not self.exists[at]:
            return (0, 0)
        return (self.balances[at * 2], self.balances[at * 2 + 1])

    @staticmethod
    def from_pure(engine):
        """A native engine in the state of the pure ``engine``, or ``None`` when that state exceeds the
        native bounds (the pure engine then carries on)."""
        if not supports(engine.config):
            return None
        native = NativeEngine(engine.config)
        return native if native._load(engine) else None

    cdef bint _load(self, engine) except -1:
        """Take the state of a fresh pure engine's; nothing is taken unless all of it fits."""
        cdef int i
        cdef long long *balance
        totals = [0] * self.nassets
        for assets in engine.balances.values():
            for asset, (available, locked) in assets.items():
                if not (0 <= available < LIMIT and 0 <= locked < LIMIT):
                    return False
                totals[self.asset_index[asset]] += available + locked
        if any(total >= LIMIT for total in totals) or not 0 < engine.next_order_id < LIMIT:
            return False
        for book in engine.books.values():
            if not 0 < book.next_trade_id < LIMIT:
                return False
        for order in engine.orders.values():
            if not (0 < order.order_id < LIMIT and 0 < order.price < LIMIT and 0 < order.qty < LIMIT):
                return False
        self.next_order_id = engine.next_order_id
        for name, book in engine.books.items():
            self.markets[<int>self.market_index[name]].next_trade_id = book.next_trade_id
        for user, assets in engine.balances.items():
            uid = self._uid(user)
            for asset, (available, locked) in assets.items():
                balance = self._account(uid, self.asset_index[asset])
                balance[0] = available
                balance[1] = locked
        for i in range(self.nassets):
            self.circulating[i] = totals[i]
        for name, book in engine.books.items():
            for side in (book.bids, book.asks):
                for order in side.orders():
                    self._rest(self.market_index[name], order.order_id, self._uid(order.user), order.is_buy,
                               order.price, order.qty, order.client_id)
        return True

    # -- ledger --------------------------------------------------------------------------------

    cdef int _uid(self, user) except -1:
        """The user's slot, created (with no balance yet) on first need."""
        found = self.uids.get(user)
        if found is not None:
            return found
        cdef int uid = self.nusers
        cdef Py_ssize_t cap
        if uid == self.capusers:
            cap = self.capusers * 2 if self.capusers else 64
            self.balances = <long long *>_grow(self.balances, cap * self.nassets * 2 * sizeof(long long))
            self.exists = <unsigned char *>_grow(self.exists, cap * self.nassets)
            memset(self.balances + self.capusers * self.nassets * 2, 0,
                   (cap - self.capusers) * self.nassets * 2 * sizeof(long long))
            memset(self.exists + self.capusers * self.nassets, 0, (cap - self.capusers) * self.nassets)
            self.capusers = cap
        self.uids[user] = uid
        self.user_names.append(user)
        self.nusers = uid + 1
        return uid

    cdef inline long long *_account(self, int uid, int asset):
        """The balance to credit, which the pure engine creates on first credit."""
        cdef Py_ssize_t at = uid * self.nassets + asset
        self.exists[at] = 1
        return self.balances + at * 2

    cdef object _deposit(self, command):
        user = command.user
        found = self.asset_index.get(command.asset)
        if found is None:
            return [Rejected("unknown_asset", user, None, "deposit")]
        cdef int asset = found
        name = self.asset_names[asset]
        amount = to_units(command.amount, self.config.assets[name].precision)
        if amount is None or amount <= 0:
            return [Rejected("invalid_amount", user, None, "deposit")]
        if amount >= LIMIT or self.circulating[asset] + <long long>amount >= C_LIMIT:
            return None
        cdef long long units = amount
        cdef int uid = self._uid(user)
        self._account(uid, asset)[0] += units
        self.circulating[asset] += units
        return [Deposited(user, name, amount)]

    cdef object _withdraw(self, command):
        user = command.user
        found = self.asset_index.get(command.asset)
        if found is None:
            return [Rejected("unknown_asset", user, None, "withdraw")]
        cdef int asset = found
        name = self.asset_names[asset]
        amount = to_units(command.amount, self.config.assets[name].precision)
        if amount is None or amount <= 0:
            return [Rejected("invalid_amount", user, None, "withdraw")]
        found = self.uids.get(user)
        cdef Py_ssize_t at
        if amount >= LIMIT or found is None or not self.exists[<int>found * self.nassets + asset]:
            return [Rejected("insufficient_balance", user, None, "withdraw")]
        at = (<int>found * self.nassets + asset) * 2
        cdef long long units = amount
        if self.balances[at] < units:
            return [Rejected("insufficient_balance", user, None, "withdraw")]
        self.balances[at] -= units
        self.circulating[asset] -= units
        return [Withdrawn(user, name, amount)]

    # -- orders and levels -----------------------------------------------------------------------

    cdef int _new_slot(self) except -1:
        cdef int slot, cap, i
        if self.free_order < 0:
            cap = self.caporders * 2 if self.caporders else 4096
            self.orders = <COrder *>_grow(self.orders, cap * sizeof(COrder))
            memset(self.orders + self.caporders, 0, (cap - self.caporders) * sizeof(COrder))
            for i in range(self.caporders, cap):
                self.orders[i].next = i + 1 if i + 1 < cap else -1
            self.free_order = self.caporders
            self.caporders = cap
        slot = self.free_order
        self.free_order = self.orders[slot].next
        return slot

    cdef int _new_level(self) except -1:
        cdef int slot, cap, i
        if self.free_level < 0:
            cap = self.caplevels * 2 if self.caplevels else 1024
            self.levels = <CLevel *>_grow(self.levels, cap * sizeof(CLevel))
            for i in range(self.caplevels, cap):
                self.levels[i].next_free = i + 1 if i + 1 < cap else -1
            self.free_level = self.caplevels
            self.caplevels = cap
        slot = self.free_level
        self.free_level = self.levels[slot].next_free
        return slot

    cdef int _rest(self, int mi, long long order_id, int uid, bint is_buy, long long price, long long qty,
                   object client_id) except -1:
        """Queue an order at the back of its level, creating the level if it is new."""
        cdef CMarket *m = &self.markets[mi]
        cdef CSide *side = &m.bids if is_buy else &m.asks
        cdef long long index = price // m.tick
        cdef int lv = tw_map_get(&side.levels, index)
        cdef int slot
        cdef CLevel *level
        if lv < 0:
            lv = self._new_level()
            level = &self.levels[lv]
            level.price = price
            level.index = index
            level.live = 0
            level.head = -1
            level.tail = -1
            if tw_map_put(&side.levels, index, lv) < 0:
                raise MemoryError()
            _insert_key(side, index * side.sign)
        slot = self._new_slot()
        m = &self.markets[mi]
        level = &self.levels[lv]
        cdef COrder *order = &self.orders[slot]
        order.order_id = order_id
        order.price = price
        order.qty = qty
        order.uid = uid
        order.market = mi
        order.level = lv
        order.is_buy = is_buy
        order.next = -1
        order.prev = level.tail
        if client_id is None:
            order.client_id = NULL
        else:
            order.client_id = <PyObject *>client_id
            Py_XINCREF(order.client_id)
            self.client_ids[(self.user_names[uid], client_id)] = order_id
        if level.tail >= 0:
            self.orders[level.tail].next = slot
        else:
            level.head = slot
        level.tail = slot
        level.live += 1
        if tw_map_put(&self.order_slots, order_id, slot) < 0:
            raise MemoryError()
        return slot

    cdef void _unlink(self, int slot):
        """Take an order out of its level's queue and forget it (its level's counts are the caller's)."""
        cdef COrder *order = &self.orders[slot]
        cdef CLevel *level = &self.levels[order.level]
        if order.prev >= 0:
            self.orders[order.prev].next = order.next
        else:
            level.head = order.next
        if order.next >= 0:
            self.orders[order.next].prev = order.prev
        else:
            level.tail = order.prev
        tw_map_del(&self.order_slots, order.order_id)
        if order.client_id != NULL:
            del self.client_ids[(self.user_names[order.uid], <object>order.client_id)]
            Py_XDECREF(order.client_id)
            order.client_id = NULL
        order.next = self.free_order
        self.free_order = slot

    cdef void _drop_level(self, CSide *side, int lv):
        cdef CLevel *level = &self.levels[lv]
        tw_map_del(&side.levels, level.index)
        _remove_key(side, level.index * side.sign)
        level.next_free = self.free_level
        self.free_level = lv

    cdef inline void _release(self, COrder *order, long long remaining, CMarket *m):
        """Give back what a resting order still reserves."""
        cdef long long *balance
        cdef long long amount
        if order.is_buy:
            balance = self.balances + (order.uid * self.nassets + m.quote) * 2
            amount = tw_muldiv(order.price, remaining, m.scale)
        else:
            balance = self.balances + (order.uid * self.nassets + m.base) * 2
            amount = remaining
        balance[0] += amount
        balance[1] -= amount

    # -- cancel --------------------------------------------------------------------------------

    cdef object _cancel(self, command):
        user = command.user
        named = command.order_id
        cdef int slot = -1
        cdef long long wanted
        if named is not UNSET:
            if -C_LIMIT < named < C_LIMIT:
                wanted = named
                slot = tw_map_get(&self.order_slots, wanted)
        else:
            found = self.client_ids.get((user, command.client_id))
            named = None
            if found is not None:
                slot = tw_map_get(&self.order_slots, <long long>found)
        cdef COrder *order
        if slot >= 0:
            order = &self.orders[slot]
            if self.user_names[order.uid] != user or self.market_names[order.market] != command.market:
                slot = -1
        if slot < 0:
            return [Rejected("unknown_order", user, named, "cancel")]
        cdef CMarket *m = &self.markets[order.market]
        cdef CSide *side = &m.bids if order.is_buy else &m.asks
        cdef int lv = order.level
        cdef CLevel *level = &self.levels[lv]
        cdef long long remaining = order.qty
        level.live -= 1
        self._release(order, remaining, m)
        event = Canceled(
            order.order_id,
            "user",
            user,
            self.market_names[order.market],
            "buy" if order.is_buy else "sell",
            order.price,
            remaining,
        )
        self._unlink(slot)
        if not level.live:
            self._drop_level(side, lv)
        return [event]

    # -- new order -----------------------------------------------------------------------------

    cdef object _new_order(self, command):
        cdef long long order_id = self.next_order_id
        if order_id >= C_LIMIT:  # an id the native lookups (cancel by id) could not hold
            return None
        self.next_order_id = order_id + 1
        user = command.user
        cdef long long qty = 0, quote_qty = 0, price = 0, available = 0, reserve = 0, budget = 0
        cdef long long index, limit_key, remaining, unlock
        cdef long long *paying = NULL
        cdef int uid = -1, stp
        cdef Py_ssize_t at
        cdef bint is_buy, is_limit, crosses, taker_expired
        cdef CMarket *m
        cdef CSide *opposite
        found = self.market_index.get(command.market)
        if found is None:
            return [Rejected("unknown_market", user, order_id, "new_order")]
        cdef int mi = found
        m = &self.markets[mi]
        if m.next_trade_id + <long long>self.order_slots.len >= C_LIMIT:
            # the walk could give a trade id at the bound (one trade per resting order at most)
            self.next_order_id = order_id
            return None
        side_text = command.side
        is_buy = side_text == "buy"
        kind_text = command.kind
        is_limit = kind_text == "limit"

        # invalid_qty
        text = command.qty
        quote_text = command.quote_qty
        if quote_text is not UNSET:
            if is_limit or not is_buy or text is not UNSET:
                return [Rejected("invalid_qty", user, order_id, "new_order")]
            units = positive_units(quote_text, self.config.assets[self.asset_names[m.quote]].precision)
            if not units:
                return [Rejected("invalid_qty", user, order_id, "new_order")]
            if units >= LIMIT:
                self.next_order_id = order_id
                return None
            quote_qty = units
        elif text is UNSET:
            return [Rejected("invalid_qty", user, order_id, "new_order")]
        else:
            cache = <dict>self.qty_caches[mi]
            units = cache.get(text)
            if units is None:
                units = _remember(cache, text, self.market_objects[mi].qty_units(text))
            if not units:
                return [Rejected("invalid_qty", user, order_id, "new_order")]
            if units >= LIMIT:
                self.next_order_id = order_id
                return None
            qty = units

        # invalid_price, min_notional
        text = command.price
        if is_limit:
            if text is UNSET:
                return [Rejected("invalid_price", user, order_id, "new_order")]
            cache = <dict>self.price_caches[mi]
            units = cache.get(text)
            if units is None:
                units = _remember(cache, text, self.market_objects[mi].price_units(text))
            if not units:
                return [Rejected("invalid_price", user, order_id, "new_order")]
            if units >= LIMIT:
                self.next_order_id = order_id
                return None
            price = units
            if tw_muldiv(price, qty, m.scale) < m.min_notional:
                return [Rejected("min_notional", user, order_id, "new_order")]
        elif text is not UNSET:
            return [Rejected("invalid_price", user, order_id, "new_order")]

        client_id = None if command.client_id is UNSET else command.client_id
        if client_id is not None and (user, client_id) in self.client_ids:
            return [Rejected("duplicate_client_id", user, order_id, "new_order")]

        # insufficient_balance; a market buy by qty may spend what is available on arrival
        found = self.uids.get(user)
        if found is not None:
            uid = found
            at = uid * self.nassets + (m.quote if is_buy else m.base)
            if self.exists[at]:
                paying = self.balances + at * 2
                available = paying[0]
        if is_limit:
            reserve = tw_muldiv(price, qty, m.scale) if is_buy else qty
            if available < reserve:
                return [Rejected("insufficient_balance", user, order_id, "new_order")]
            if paying == NULL:  # a reservation of nothing from no balance: the pure engine's affair
                self.next_order_id = order_id
                return None
        elif not is_buy:
            if available < qty:
                return [Rejected("insufficient_balance", user, order_id, "new_order")]
        elif quote_qty:
            if available < quote_qty:
                return [Rejected("insufficient_balance", user, order_id, "new_order")]
            budget = quote_qty
        else:
            if available <= 0:
                return [Rejected("insufficient_balance", user, order_id, "new_order")]
            budget = available

        opposite = &m.asks if is_buy else &m.bids
        index = price // m.tick
        limit_key = index * opposite.sign if is_limit else NO_LIMIT
        crosses = opposite.nkeys > 0 and opposite.keys[opposite.nkeys - 1] >= limit_key
        if crosses and command.post_only:
            return [Rejected("would_cross", user, order_id, "new_order")]
        remaining = qty if qty else UNBOUNDED
        stp_text = command.stp
        if stp_text == "expire_maker":
            stp = STP_EXPIRE_MAKER
        elif stp_text == "expire_taker":
            stp = STP_EXPIRE_TAKER
        elif stp_text == "expire_both":
            stp = STP_EXPIRE_BOTH
        else:
            stp = STP_NONE
        tif = command.tif
        if tif == "FOK" and not self._fillable(m, opposite, limit_key, uid, stp, remaining, budget):
            return [Rejected("fok_unfillable", user, order_id, "new_order")]

        if is_limit:
            paying[0] -= reserve
            paying[1] += reserve
        market_name = self.market_names[mi]
        events = [
            Accepted(
                order_id,
                user,
                market_name,
                client_id,
                side_text,
                kind_text,
                tif,
                price,
                qty,
                quote_qty,
                command.post_only,
            )
        ]
        is_gtc = tif == "GTC"
        if not crosses and is_gtc and is_limit:  # the commonest command of all: it rests at once
            self._rest(mi, order_id, uid, is_buy, price, qty, client_id)
            return events
        taker_expired = False
        if crosses:
            taker_expired = self._take(
                events, mi, opposite, order_id, user, uid, is_buy, is_limit, price, limit_key,
                &remaining, &budget, stp,
            )
            m = &self.markets[mi]
            if paying != NULL:  # the ledger may have grown
                paying = self.balances + (uid * self.nassets + (m.quote if is_buy else m.base)) * 2
        if is_limit and is_gtc and not taker_expired:
            if remaining:
                self._rest(mi, order_id, uid, is_buy, price, remaining, client_id)
            return events
        if quote_qty:
            if budget:
                events.append(Expired(order_id, user, market_name, side_text, None, budget))
        elif remaining:
            if is_limit:
                unlock = tw_muldiv(price, remaining, m.scale) if is_buy else remaining
                paying[0] += unlock
                paying[1] -= unlock
            events.append(Expired(order_id, user, market_name, side_text, remaining, None))
        return events

    cdef bint _take(self, list events, int mi, CSide *opposite, long long order_id, object user, int uid,
                    bint is_buy, bint is_limit, long long limit, long long limit_key,
                    long long *remaining_io, long long *budget_io, int stp) except -1:
        """Walk the opposite side from its best price; returns whether the taker expired (STP)."""
        cdef CMarket *m = &self.markets[mi]
        cdef long long remaining = remaining_io[0], budget = budget_io[0]
        cdef long long scale = m.scale, lot = m.lot
        cdef long long maker_num = m.maker_num, maker_den = m.maker_den
        cdef long long taker_num = m.taker_num, taker_den = m.taker_den
        cdef bint by_budget = not is_limit and is_buy
        cdef bint taker_expired = False
        cdef bint first = True
        cdef long long afford = 0, fill, maker_qty, notional, mfee, tfee, reserved, price, trade_id
        cdef long long *taker_got = NULL
        cdef long long *taker_pays = NULL
        cdef long long *fee_base = NULL
        cdef long long *fee_quote = NULL
        cdef long long *maker_base
        cdef long long *maker_quote
        cdef int lv, slot, maker_uid
        cdef CLevel *level
        cdef COrder *maker
        cdef Py_ssize_t nassets = self.nassets
        cdef int base = m.base, quote = m.quote
        side = "buy" if is_buy else "sell"
        market_name = self.market_names[mi]
        while opposite.nkeys:
            if opposite.keys[opposite.nkeys - 1] < limit_key:
                break
            lv = tw_map_get(&opposite.levels, opposite.keys[opposite.nkeys - 1] * opposite.sign)
            level = &self.levels[lv]
            price = level.price
            while level.head >= 0:
                slot = level.head
                maker = &self.orders[slot]
                maker_qty = maker.qty
                if by_budget:
                    afford = tw_muldiv(budget, scale, price) // lot * lot
                    if not afford:
                        taker_expired = True
                        break
                if stp != STP_NONE and maker.uid == uid:
                    if stp != STP_EXPIRE_TAKER:
                        events.append(self._cancel_in_walk(slot, level, m))
                    if stp != STP_EXPIRE_MAKER:
                        taker_expired = True
                        break
                    continue
                fill = maker_qty if maker_qty < remaining else remaining
                if by_budget and afford < fill:
                    fill = afford
                notional = tw_muldiv(price, fill, scale)
                if first:
                    first = False
                    taker_got = self._account(uid, base if is_buy else quote)
                    taker_pays = self.balances + (uid * nassets + (quote if is_buy else base)) * 2
                    fee_base = self._account(self.fees_uid, base)
                    fee_quote = self._account(self.fees_uid, quote)
                maker_uid = maker.uid
                if is_buy:
                    mfee = tw_fee(notional, maker_num, maker_den)
                    tfee = tw_fee(fill, taker_num, taker_den)
                    taker_got[0] += fill - tfee
                    if is_limit:
                        reserved = tw_muldiv(limit, fill, scale)
                        taker_pays[1] -= reserved
                        taker_pays[0] += reserved - notional
                    else:
                        taker_pays[0] -= notional
                        budget -= notional
                    maker_base = self.balances + (maker_uid * nassets + base) * 2
                    maker_base[1] -= fill
                    maker_quote = self._account(maker_uid, quote)
                    maker_quote[0] += notional - mfee
                    fee_base[0] += tfee
                    fee_quote[0] += mfee
                else:
                    mfee = tw_fee(fill, maker_num, maker_den)
                    tfee = tw_fee(notional, taker_num, taker_den)
                    taker_got[0] += notional - tfee
                    taker_pays[1 if is_limit else 0] -= fill
                    maker_quote = self.balances + (maker_uid * nassets + quote) * 2
                    maker_quote[1] -= notional
                    maker_base = self._account(maker_uid, base)
                    maker_base[0] += fill - mfee
                    fee_base[0] += mfee
                    fee_quote[0] += tfee
                trade_id = m.next_trade_id
                m.next_trade_id = trade_id + 1
                events.append(
                    Trade(
                        market_name,
                        trade_id,
                        price,
                        fill,
                        maker.order_id,
                        order_id,
                        self.user_names[maker_uid],
                        user,
                        side,
                        mfee,
                        tfee,
                        notional,
                    )
                )
                remaining -= fill
                if fill == maker_qty:
                    level.live -= 1
                    self._unlink(slot)
                else:
                    maker.qty = maker_qty - fill
                if not remaining:
                    break
            if not level.live:
                self._drop_level(opposite, lv)
            if taker_expired or not remaining:
                break
        remaining_io[0] = remaining
        budget_io[0] = budget
        return taker_expired

    cdef object _cancel_in_walk(self, int slot, CLevel *level, CMarket *m):
        """Self-trade prevention cancels the maker at the front of the level being walked."""
        cdef COrder *maker = &self.orders[slot]
        cdef long long remaining = maker.qty
        level.live -= 1
        self._release(maker, remaining, m)
        event = Canceled(
            maker.order_id,
            "stp",
            self.user_names[maker.uid],
            self.market_names[maker.market],
            "buy" if maker.is_buy else "sell",
            maker.price,
            remaining,
        )
        self._unlink(slot)
        return event

    cdef bint _fillable(self, CMarket *m, CSide *opposite, long long limit_key, int uid, int stp,
                        long long remaining, long long budget):
        """Dry run of the walk for FOK: would the whole order fill at once? Nothing is changed."""
        cdef long long scale = m.scale, lot = m.lot, price, fill, afford, maker_qty
        cdef bint by_budget = budget > 0
        cdef bint by_quote = remaining == UNBOUNDED
        cdef int k, slot
        cdef CLevel *level
        cdef COrder *maker
        for k in range(opposite.nkeys - 1, -1, -1):
            if opposite.keys[k] < limit_key:
                return False
            level = &self.levels[tw_map_get(&opposite.levels, opposite.keys[k] * opposite.sign)]
            price = level.price
            slot = level.head
            while slot >= 0:
                maker = &self.orders[slot]
                slot = maker.next
                maker_qty = maker.qty
                fill = maker_qty if maker_qty < remaining else remaining
                if by_budget:
                    afford = tw_muldiv(budget, scale, price) // lot * lot
                    if not afford:
                        return False
                    if afford < fill:
                        fill = afford
                if maker.uid == uid and stp != STP_NONE:
                    if stp == STP_EXPIRE_MAKER:
                        continue
                    return False
                remaining -= fill
                if by_budget:
                    budget -= tw_muldiv(price, fill, scale)
                    if by_quote and not budget:
                        return True
                if not remaining:
                    return True
        return False

    # -- hand-over -------------------------------------------------------------------------------

    cdef object _export(self):
        """A pure ``Engine`` in exactly this state."""
        engine = Engine(self.config)
        engine.next_order_id = self.next_order_id
        cdef int i, a, k, slot
        cdef Py_ssize_t at
        cdef CMarket *m
        cdef CSide *side
        cdef CLevel *level
        cdef COrder *o
        for i in range(self.nmarkets):
            engine.books[self.market_names[i]].next_trade_id = self.markets[i].next_trade_id
        balances = engine.balances
        for i in range(self.nusers):
            for a in range(self.nassets):
                at = i * self.nassets + a
                if self.exists[at]:
                    balances.setdefault(self.user_names[i], {})[self.asset_names[a]] = [
                        self.balances[at * 2],
                        self.balances[at * 2 + 1],
                    ]
        for i in range(self.nmarkets):
            m = &self.markets[i]
            book = engine.books[self.market_names[i]]
            for side_index in range(2):
                side = &m.bids if side_index == 0 else &m.asks
                pure_side = book.bids if side_index == 0 else book.asks
                for k in range(side.nkeys - 1, -1, -1):
                    level = &self.levels[tw_map_get(&side.levels, side.keys[k] * side.sign)]
                    slot = level.head
                    while slot >= 0:
                        o = &self.orders[slot]
                        slot = o.next
                        client_id = None if o.client_id == NULL else <object>o.client_id
                        user = self.user_names[o.uid]
                        order = Order(o.order_id, user, self.market_names[i], bool(o.is_buy), o.price, o.qty,
                                      client_id)
                        pure_side.add(order)
                        engine.orders[o.order_id] = order
                        if client_id is not None:
                            engine.client_ids[(user, client_id)] = order
        return engine


cdef object _remember(dict cache, object text, object units):
    if len(cache) >= 1 << 16:
        cache.clear()
    cache[text] = units
    return units


cdef void *_alloc(size_t size) except NULL:
    cdef void *p = malloc(size if size else 1)
    if p == NULL:
        raise MemoryError()
    return p


cdef void *_grow(void *p, size_t size) except NULL:
    cdef void *q = realloc(p, size if size else 1)
    if q == NULL:
        raise MemoryError()
    return q


cdef int _side_init(CSide *side, int sign) except -1:
    side.sign = sign
    side.nkeys = 0
    side.capkeys = 64
    side.keys = <long long *>_alloc(64 * sizeof(long long))
    if tw_map_init(&side.levels, 256) < 0:
        raise MemoryError()
    return 0


cdef int _bisect(CSide *side, long long key) noexcept:
    cdef int lo = 0, hi = side.nkeys, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if side.keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _insert_key(CSide *side, long long key) except -1:
    if side.nkeys == side.capkeys:
        side.capkeys *= 2
        side.keys = <long long *>_grow(side.keys, side.capkeys * sizeof(long long))
    cdef int at = _bisect(side, key)
    memmove(side.keys + at + 1, side.keys + at, (side.nkeys - at) * sizeof(long long))
    side.keys[at] = key
    side.nkeys += 1
    return 0


cdef void _remove_key(CSide *side, long long key) noexcept:
    if side.keys[side.nkeys - 1] == key:
        side.nkeys -= 1
        return
    cdef int at = _bisect(side, key)
    memmove(side.keys + at, side.keys + at + 1, (side.nkeys - at - 1) * sizeof(long long))
    side.nkeys -= 1
