"""Adapters: the neutral workload ops translated for each engine under test.

Every adapter does the same three things: ``prepare`` translates the ops into whatever the engine
takes (untimed), ``reset`` builds a fresh engine and feeds it the setup phase (untimed), and
``run(start, stop)`` feeds it main-phase ops ``start:stop`` (timed by the caller) and returns the
number of fills the engine reported (``None`` when it reports none).

Only tradewire implements the full replay spec (balances, fees, post-only, FOK, self-trade
prevention, rejections). Each other adapter maps the ops to the closest thing its engine has; what
differs is in its ``notes``, and is printed with the results.
"""

from __future__ import annotations

import logging
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from workload import K_CANCEL, K_DEPOSIT, K_LIMIT, K_MARKET, Op, Workload

# Competitors log at INFO/ERROR on their hot paths (pyorderbook even configures the root logger at
# import); logging is silenced for every engine alike so that no engine pays for console output.
logging.disable(logging.CRITICAL)

CHUNK = 65_536


class Adapter:
    name = ""
    package = ""
    """PyPI distribution name (for the version)."""
    module = ""
    """Module to import to check that the engine is installed."""
    fills = True
    """Whether the engine reports fills (trades) to its caller."""
    notes: tuple[str, ...] = ()

    def available(self) -> str | None:
        """``None`` when installed, else why not."""
        try:
            import_module(self.module)
        except Exception as exc:  # ImportError, or a broken binary wheel
            return f"{type(exc).__name__}: {exc}"
        return None

    def version(self) -> str:
        try:
            return version(self.package)
        except PackageNotFoundError:
            return "?"

    def prepare(self, workload: Workload) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def run(self, start: int, stop: int) -> int | None:
        raise NotImplementedError

    def main_ops(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Stop whatever the engine runs besides the caller (threads)."""


class TradewireAdapter(Adapter):
    name = "tradewire"
    package = "tradewire"
    module = "tradewire.engine"
    notes = ("full replay spec: balances, reservations, fees, STP, post-only, FOK, rejections",)

    def prepare(self, workload: Workload) -> None:
        from tradewire.engine import Cancel, Deposit, Engine, ExchangeConfig, NewOrder
        from tradewire.engine.native import fastest_engine

        self.config = ExchangeConfig.from_dict(workload.config())
        if not self.pure:
            native = not isinstance(fastest_engine(self.config), Engine)
            core = "the native core (pure engine's rules over flat C arrays)" if native else "the pure engine"
            self.notes = (core, *self.notes)
        markets = workload.markets
        names = [m.name for m in markets]

        def command(op: Op) -> Any:
            kind = op[0]
            if kind == K_LIMIT:
                _, _, user, mi, is_buy, price, qty, tif, post_only = op
                spec = markets[mi]
                return NewOrder(
                    user=user,
                    market=names[mi],
                    side="buy" if is_buy else "sell",
                    kind="limit",
                    qty=spec.qty_text(qty),
                    price=spec.price_text(price),
                    tif=tif,
                    post_only=post_only,
                )
            if kind == K_MARKET:
                _, _, user, mi, is_buy, qty = op
                return NewOrder(
                    user=user,
                    market=names[mi],
                    side="buy" if is_buy else "sell",
                    kind="market",
                    qty=markets[mi].qty_text(qty),
                )
            if kind == K_CANCEL:
                return Cancel(user=op[2], market=names[op[3]], order_id=op[1])
            if kind == K_DEPOSIT:
                return Deposit(user=op[1], asset=op[2], amount=op[3])
            raise ValueError(op)

        self.setup = [command(op) for op in workload.setup]
        self.commands = [command(op) for op in workload.main]

    pure = False
    """Run the pure engine even where the native core is built (the in-run baseline)."""

    def reset(self) -> None:
        from tradewire.engine import Engine
        from tradewire.engine.native import fastest_engine

        self.engine = Engine(self.config) if self.pure else fastest_engine(self.config)
        apply = self.engine.apply
        for command in self.setup:
            apply(command)

    def trades(self) -> int:
        """Trades so far, read without handing the native core's state over."""
        engine = self.engine
        if hasattr(engine, "next_trade_ids"):
            return sum(engine.next_trade_ids().values())
        return sum(book.next_trade_id for book in engine.books.values())

    def resting_orders(self) -> int:
        return len(self.engine.pure().orders)

    def main_ops(self) -> int:
        return len(self.commands)

    def run(self, start: int, stop: int) -> int | None:
        trades_before = self.trades()
        apply = self.engine.apply
        for command in self.commands[start:stop]:
            apply(command)
        return self.trades() - trades_before


class TradewirePureAdapter(TradewireAdapter):
    name = "tradewire-pure"
    notes = ("the same engine without its native core: pure Python objects, the rules' definition",)
    pure = True


class _NeutralAdapter(Adapter):
    """Competitors that take the neutral ops nearly as they are (prices in ticks, sizes in lots)."""

    def prepare(self, workload: Workload) -> None:
        self.markets = [m.name for m in workload.markets]
        self.setup = [op for op in workload.setup if op[0] != K_DEPOSIT]
        self.ops = workload.main

    def main_ops(self) -> int:
        return len(self.ops)

    def reset(self) -> None:
        self.fresh()
        self.feed(self.setup)

    def run(self, start: int, stop: int) -> int | None:
        return self.feed(self.ops[start:stop])

    def fresh(self) -> None:
        raise NotImplementedError

    def feed(self, ops: list[Op]) -> int | None:
        raise NotImplementedError


MARKET_BUY_PRICE = 10**15
"""Ticks that cross any ask: how a market buy is sent to an engine without market orders."""


class PyOrderBookAdapter(_NeutralAdapter):
    name = "pyorderbook"
    package = "pyorderbook"
    module = "pyorderbook"
    notes = (
        "no market orders: sent as limit at an extreme price, then the rest canceled",
        "no IOC/FOK: the rest is canceled after matching (FOK treated as IOC)",
        "no post-only, no STP, no balances/fees; prices are Decimal, ids uuid4",
    )

    def fresh(self) -> None:
        self.lib = import_module("pyorderbook")
        self.book = self.lib.Book()
        self.live: dict[int, Any] = {}

    def feed(self, ops: list[Op]) -> int | None:
        book, live, markets = self.book, self.live, self.markets
        Order, bid, ask = self.lib.Order, self.lib.Side.BID, self.lib.Side.ASK
        fills = 0
        for op in ops:
            kind = op[0]
            if kind == K_CANCEL:
                order = live.pop(op[1], None)
                if order is not None and order.quantity and book.get_order(order.id) is not None:
                    book.cancel(order)
                continue
            if kind == K_LIMIT:
                _, oid, _, mi, is_buy, price, qty, tif, _ = op
            else:
                _, oid, _, mi, is_buy, qty = op
                price, tif = (MARKET_BUY_PRICE if is_buy else 1), "IOC"
            order = Order(bid if is_buy else ask, markets[mi], price, qty)
            fills += len(book.match(order).trades)
            if order.quantity:
                if tif == "GTC":
                    live[oid] = order
                else:
                    book.cancel(order)
        return fills


class LightMatchingEngineAdapter(_NeutralAdapter):
    name = "lightmatchingengine"
    package = "lightmatchingengine"
    module = "lightmatchingengine.lightmatchingengine"
    notes = (
        "market orders native (price 0) but their rest stays on the book: canceled by the adapter",
        "no IOC/FOK: the rest is canceled after matching (FOK treated as IOC)",
        "no post-only, no STP, no balances/fees; cancel scans the price level's list",
        "filled makers are never dropped from its id map (cancel_order then asserts): adapter checks",
    )

    def fresh(self) -> None:
        lib = import_module("lightmatchingengine.lightmatchingengine")
        self.engine = lib.LightMatchingEngine()
        self.live: dict[int, Any] = {}

    def feed(self, ops: list[Op]) -> int | None:
        engine, live, markets = self.engine, self.live, self.markets
        add, cancel = engine.add_order, engine.cancel_order
        fills = 0
        for op in ops:
            kind = op[0]
            if kind == K_CANCEL:
                # A maker that was filled stays in the engine's id map while its level is gone, and
                # cancel_order then fails an assertion: only cancel what is still open.
                order = live.pop(op[1], None)
                if order is not None and order.leaves_qty > 0:
                    cancel(order.order_id, markets[op[3]])
                continue
            if kind == K_LIMIT:
                _, oid, _, mi, is_buy, price, qty, tif, _ = op
            else:
                _, oid, _, mi, is_buy, qty = op
                price, tif = 0, "IOC"
            symbol = markets[mi]
            order, trades = add(symbol, price, qty, 1 if is_buy else 2)
            # Each trade list has one aggressor execution per level and one passive per maker.
            theirs = order.order_id
            fills += sum(1 for trade in trades if trade.order_id != theirs)
            if order.leaves_qty > 0:
                if tif == "GTC":
                    live[oid] = order
                else:
                    cancel(theirs, symbol)
        return fills


class ManticoreAdapter(_NeutralAdapter):
    name = "manticore-orderbook"
    package = "manticore-orderbook"
    module = "manticore_orderbook"
    notes = (
        "native market/IOC/FOK/post-only (POST_ONLY order type); prices and sizes are floats",
        "fills come as TRADE_EXECUTED events; runs an expiry thread per book; no STP, no balances",
    )

    def fresh(self) -> None:
        lib = import_module("manticore_orderbook")
        self.fill_count = 0

        def on_trade(_event: Any, _data: Any) -> None:
            self.fill_count += 1

        self.books = []
        for name in self.markets:
            events = lib.EventManager()
            events.subscribe(lib.EventType.TRADE_EXECUTED, on_trade)
            self.books.append(
                lib.OrderBook(name, enable_logging=False, log_level=logging.CRITICAL, event_manager=events)
            )

    def close(self) -> None:
        for book in getattr(self, "books", []):
            book.expiry_manager.stop()

    def feed(self, ops: list[Op]) -> int | None:
        books = self.books
        before = self.fill_count
        for op in ops:
            kind = op[0]
            if kind == K_CANCEL:
                books[op[3]].cancel_order(str(op[1]))
                continue
            if kind == K_LIMIT:
                _, oid, _, mi, is_buy, price, qty, tif, post_only = op
                books[mi].add_order(
                    "buy" if is_buy else "sell",
                    float(price),
                    float(qty),
                    order_id=str(oid),
                    time_in_force=tif,
                    order_type="POST_ONLY" if post_only else "LIMIT",
                )
            else:
                _, oid, _, mi, is_buy, qty = op
                books[mi].add_order(
                    "buy" if is_buy else "sell", None, float(qty), order_id=str(oid), order_type="MARKET"
                )
        return self.fill_count - before


class LimitOrderBookAdapter(_NeutralAdapter):
    name = "limit-order-book"
    package = "limit-order-book"
    module = "limit_order_book"
    fills = False
    notes = (
        "C++ via ctypes; reports no fills (only book queries)",
        "no IOC/FOK: the rest is canceled after matching, found with has(); no post-only, no STP",
    )

    def fresh(self) -> None:
        lib = import_module("limit_order_book")
        self.books = [lib.LimitOrderBook() for _ in self.markets]

    def feed(self, ops: list[Op]) -> int | None:
        books = self.books
        for op in ops:
            kind = op[0]
            book = books[op[3]]
            if kind == K_CANCEL:
                if book.has(op[1]):
                    book.cancel(op[1])
            elif kind == K_LIMIT:
                _, oid, _, _, is_buy, price, qty, tif, _ = op
                book.limit(is_buy, oid, qty, price)
                if tif != "GTC" and book.has(oid):
                    book.cancel(oid)
            else:
                book.market(op[4], op[1], op[5])
        return None


class LiquibookAdapter(_NeutralAdapter):
    name = "liquibook"
    package = "liquibook"
    module = "liquibook"
    notes = (
        "C++ (SWIG); DepthOrderBook, fills through a Python OrderListener callback",
        "IOC/FOK/market native, but in 2.0.1 an unfilled rest stays on the book: the adapter cancels it",
        "no post-only, no STP, no balances/fees",
    )

    def fresh(self) -> None:
        liquibook = import_module("liquibook")
        self.lib = liquibook
        adapter = self

        def ignore(*_args: Any) -> None:
            pass

        def on_fill(_self: Any, *_args: Any) -> None:
            adapter.fill_count += 1

        # Built with type() because the base class comes from a module imported at run time.
        callbacks = (
            "on_accept",
            "on_reject",
            "on_cancel",
            "on_cancel_reject",
            "on_replace",
            "on_replace_reject",
        )
        methods: dict[str, Any] = {name: ignore for name in callbacks}
        methods["on_fill"] = on_fill
        listener_class = type("Listener", (liquibook.OrderListener,), methods)

        self.fill_count = 0
        self.listener = listener_class()
        self.books = []
        for name in self.markets:
            book = liquibook.DepthOrderBook()
            book.set_symbol(name)
            book.set_order_listener(self.listener)
            self.books.append(book)
        # The book keeps raw pointers to resting orders: hold a reference to every order that may rest.
        self.live: dict[int, Any] = {}

    def feed(self, ops: list[Op]) -> int | None:
        liquibook = self.lib
        books, live = self.books, self.live
        simple = liquibook.SimpleOrder
        ioc, fok = liquibook.oc_immediate_or_cancel, liquibook.oc_fill_or_kill
        before = self.fill_count
        for op in ops:
            kind = op[0]
            if kind == K_CANCEL:
                order = live.pop(op[1], None)
                if order is not None:
                    books[op[3]].cancel(order)
                continue
            if kind == K_LIMIT:
                _, oid, _, mi, is_buy, price, qty, tif, _ = op
                if tif == "GTC":
                    order = simple(is_buy, price, qty)
                    books[mi].add(order)
                    live[oid] = order
                    continue
                order = simple(is_buy, price, qty, 0, ioc if tif == "IOC" else fok)
            else:
                _, oid, _, mi, is_buy, qty = op
                order = simple(is_buy, 0, qty, 0, ioc)
            book = books[mi]
            book.add(order)
            book.cancel(order)
        return self.fill_count - before


ADAPTERS: dict[str, type[Adapter]] = {
    cls.name: cls
    for cls in (
        TradewireAdapter,
        TradewirePureAdapter,
        PyOrderBookAdapter,
        LiquibookAdapter,
        LightMatchingEngineAdapter,
        ManticoreAdapter,
        LimitOrderBookAdapter,
    )
}
