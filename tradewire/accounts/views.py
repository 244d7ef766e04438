"""The account views: engine events in, Redis ops for order queries, balances and user streams out.

``Accounts`` is pure like the engine: no I/O, no clock. The engine service hands it each command with
the events it produced, the command's exchange time and a way to read the ledger after it; at the end
of a batch, ``flush`` returns the Redis commands to run in the batch's MULTI/EXEC (the layout is
``docs/internals.md``, "Accounts"). The same inputs always give the same ops.

Two kinds of output, and why they are produced at different times:

* *Per-command* publications and fills (``executionReport``, ``outboundAccountPosition``,
  ``balanceUpdate``, ``myTrades`` entries) are rendered inside ``apply``: they describe the state right
  after that command, and the ledger shows that state only then. Publications are made only for the
  users who listen (``Accounts.listening``).
* *Cached state* (order records, open-order sets, client ids, balances) is written once per batch in
  ``flush``, with the final value of every key the batch touched: an order that was accepted, filled
  and closed within one batch costs one ``HSET``, and is rendered once. The balances of users who do
  not listen are not even read per command: ``apply`` notes which ones a command touched, and
  ``flush`` reads them from the ledger as the batch left it and writes those that changed.

Only open orders stay in memory; a closed order leaves after the flush that writes its last record.
Everything in memory goes into ``to_state``, so a restored view continues exactly as the original.

Self-trade prevention and ``EXPIRED_IN_MATCH``: an ``expired`` event does not say why the taker
stopped. A good-till-canceled limit order expires only through self-trade prevention; an
``expire_both`` taker expires right after the ``stp`` cancel of the maker it met. For an
``expire_taker`` taker the views look at what the walk stopped in front of, the best opposite order
they hold after the command's fills: the taker met its own order if that order crosses its limit and
(for a market buy, which stops when its budget cannot pay one lot) it could still afford a lot there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import msgspec

from tradewire import keys, statebytes
from tradewire.accounts.history import LOAD_OP, ORDER_HISTORY, closed_member, trim_op
from tradewire.accounts.payloads import (
    account_position,
    balance_record,
    balance_update,
    balance_value,
    execution_report,
    my_trade,
    order_from_record,
    order_record,
    report_frame,
    trade_fields,
)
from tradewire.accounts.records import (
    CANCELED,
    EXECUTION_TYPE,
    EXPIRED,
    EXPIRED_IN_MATCH,
    FILLED,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    SIDES,
    STP_MODES,
    TEXTS,
    UNFILLABLE_FOK,
    OrderState,
    Symbol,
    json_text,
    order_type,
    spent_to_the_lot,
    symbols,
)
from tradewire.engine.commands import Command, NewOrder
from tradewire.engine.config import ExchangeConfig
from tradewire.engine.decimals import Texts, positive_units, to_text
from tradewire.engine.engine import FEES_USER
from tradewire.engine.events import (
    Accepted,
    Canceled,
    Deposited,
    Event,
    Expired,
    Rejected,
    Trade,
    Withdrawn,
)
from tradewire.keys import RedisOp

BalanceOf = Callable[[str, str], tuple[int, int]]
"""``(user, asset) -> (available, locked)`` read from the engine's ledger after the command."""

MY_TRADES_MAXLEN = 10_000
_ZERO = (0, 0)


class _State(msgspec.Struct, array_like=True):
    """What ``to_state`` writes: every order in memory, the unflushed work, the balances last written."""

    orders: list[OrderState]
    dirty: list[int]
    cids: list[tuple[str, str, int]]
    balances: list[tuple[str, str, int, int]]
    dirty_balances: list[tuple[str, str, str, str]]
    stream: list[tuple[Any, ...]]
    """Ops rendered but not flushed (``str`` and ``int`` only, so that JSON keeps them too)."""
    closed_kept: list[tuple[str, int]] = []
    """Closed orders each user has in Redis (``tw:closed:<user>``), as the flushes left them."""
    outbox: list[tuple[str, list[str]]] = []
    """User-data payloads rendered but not flushed, per user in order of first payload."""


class Accounts:
    """Order records, fills, balances and user-data payloads of every user, kept from events.

    The engine service drives it like this::

        accounts = Accounts(config)  # or Accounts.from_state(config, state) after a snapshot
        for command, ts in batch:
            events = engine.apply(command)
            accounts.apply(command, events, ts, balance_of)  # (user, asset) -> (available, locked)
        for op in accounts.flush():  # inside the batch's MULTI/EXEC
            pipe.execute_command(*op)

    Op arguments are ``str`` (JSON payloads included) and ``int``. During recovery, commands that are
    already in Redis are applied and their flush is dropped. ``to_state`` is best taken right after a
    flush, but holds the unflushed work too.

    Listeners: Binance user-data streams are live only (nothing is replayed to a late subscriber), so
    ``executionReport``, ``outboundAccountPosition`` and ``balanceUpdate`` are rendered and published
    only for the users given to ``listening`` before the batch (``None``, the default, is everyone).
    The engine service passes the users whose ``tw:user:<user>`` channel has subscribers (read
    again whenever gateways say they changed, ``tw:listeners:version``, which they bump before they
    acknowledge a user-data connection), so a stream open when its batch was read gets all of the
    batch's payloads. Order records, open-order sets, client ids, fills and balances are written for
    every user. The set is not part of ``to_state``: the service sets it for every batch.
    """

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self._symbols: dict[str, Symbol] = symbols(config)
        self._texts: dict[str, Texts] = {name: TEXTS[a.precision] for name, a in config.assets.items()}
        self._asset_json = {name: json_text(name) for name in config.assets}
        self._places = {name: asset.precision for name, asset in config.assets.items()}
        self._channels: dict[str, str] = {}
        self._trade_keys: dict[tuple[str, str], str] = {}
        self._frames: dict[int, str] = {}
        """The fixed tail of the ``executionReport`` of the orders this batch reported on."""
        self._listening: frozenset[str] | None = None
        self.open: dict[int, OrderState] = {}
        """Open orders of all users by order id."""
        self._balances: dict[tuple[str, str], tuple[int, int]] = {}
        """Each balance as last published or written, to tell which ones changed."""
        self._dirty: dict[int, OrderState] = {}
        self._cids: list[tuple[str, str, int]] = []
        self._dirty_balances: dict[tuple[str, str], tuple[str, str, str] | None] = {}
        """Balances to write at the flush (values in ``_balances``), with the ``(asset JSON, free, locked)``
        texts last published, or ``None`` when nothing published them."""
        self._pending: list[tuple[str, str]] = []
        """Balances of users not listening that the batch may have changed, repeats and all (one
        ``extend`` per command; the flush reads each once)."""
        self._ledger: BalanceOf | None = None
        """The last ``balance_of`` given: the flush reads ``_pending`` through it."""
        self._stream: list[RedisOp] = []
        self._outbox: dict[str, list[str]] = {}
        """The batch's user-data payloads per user: one ``PUBLISH`` each at the flush (:meth:`_publish`)."""
        self.history = ORDER_HISTORY
        """Closed orders kept per user (``tradewire/accounts/history.py``); open ones always stay."""
        self._closed_kept: dict[str, int] = {}
        """Closed orders each user has in Redis after the last flush (never 0): a user's trim runs
        only in a batch that takes it past :attr:`history`, not at every closure."""
        self._first_fills: dict[str, int] = {}
        """Orders per user that traded for the first time since the last flush."""

    # -- the whole interface -------------------------------------------------------------------

    def listening(self, users: frozenset[str] | None) -> None:
        """Say whose user-data streams are open: ``None`` (the default) means everyone's.

        From the next ``apply`` on, ``executionReport``, ``outboundAccountPosition`` and
        ``balanceUpdate`` payloads are rendered and published only for these users. Order records,
        open-order sets, client ids, fills and balances are written for every user whatever the set.
        Set it between batches (before the batch's first ``apply``).
        """
        self._listening = users

    def apply(
        self,
        command: Command | None,
        events: Sequence[Event],
        ts: int,
        balance_of: BalanceOf,
    ) -> None:
        """Take in one command's events, at exchange time ``ts``."""
        touched: list[tuple[str, str]] = []
        last_fill = -1  # a market buy by quote is FILLED at its last trade unless it then expires
        for index, event in enumerate(events):
            kind = type(event)
            if kind is Trade:
                self._trade(event, ts, touched, index == last_fill)  # type: ignore[arg-type]
            elif kind is Accepted:
                last_fill = self._accepted(command, event, ts, touched, events)  # type: ignore[arg-type]
            elif kind is Canceled:
                self._canceled(event, ts, touched)  # type: ignore[arg-type]
            elif kind is Expired:
                self._expired(event, ts, touched, events, index, balance_of)  # type: ignore[arg-type]
            elif kind is Deposited or kind is Withdrawn:
                self._transfer(event, ts, touched)  # type: ignore[arg-type]
            elif kind is Rejected and type(command) is NewOrder:
                self._rejected(command, event, ts)  # type: ignore[arg-type]
        if touched:
            self._ledger = balance_of
            self._balances_changed(touched, ts, balance_of)

    def first_fills(self) -> dict[str, int]:
        """Orders per user that traded for the first time (as taker or maker) since the last flush:
        what comes off the users' unfilled-order counts (``tradewire/journal/quota.py``). Read it
        before the flush, which forgets it with the rest of the batch."""
        return self._first_fills

    def flush(self) -> list[RedisOp]:
        """The Redis ops of everything applied since the last flush, and forget the closed orders.

        Balances of users not listening are read here, through the last ``apply``'s ``balance_of``:
        call it before the ledger moves on (the engine service flushes right after a batch).
        """
        ops: list[RedisOp] = []
        records: dict[str, list[str | bytes | int]] = {}
        added: dict[str, list[str | bytes | int]] = {}
        removed: dict[str, list[str | bytes | int]] = {}
        closed: dict[str, list[str | bytes | int]] = {}
        symbols_ = self._symbols
        for order_id, order in self._dirty.items():
            user = order.user
            fields = records.get(user)
            if fields is None:
                fields = records[user] = [keys.orders(user)]
            sym = symbols_[order.market]
            fields.append(order_id)
            fields.append(order_record(order, sym))
            if order.status in OPEN_STATUSES:
                if not order.listed:
                    order.listed = True
                    members = added.get(user)
                    if members is None:
                        members = added[user] = [keys.open_orders(user)]
                    members += (order_id, order_id)
                continue
            if order.listed:
                members = removed.get(user)
                if members is None:
                    members = removed[user] = [keys.open_orders(user)]
                members.append(order_id)
            members = closed.get(user)
            if members is None:
                members = closed[user] = [keys.closed_orders(user)]
            members += (order_id, closed_member(order_id, sym.symbol, order.client_id))
        for fields in records.values():
            ops.append(("HSET", *fields))
        for members in added.values():
            ops.append(("ZADD", *members))
        for members in removed.values():
            ops.append(("ZREM", *members))
        if closed:
            trims: list[RedisOp] = []
            for user, members in closed.items():
                ops.append(("ZADD", *members))
                if self._count_closed(user, (len(members) - 1) // 2):
                    trims.append(trim_op(user, self.history))
            if trims:
                ops.append(LOAD_OP)
                ops += trims
        if self._cids:
            cids: dict[str, list[str | bytes | int]] = {}
            for user, client_id, order_id in self._cids:
                cids.setdefault(user, [keys.client_ids(user)]).extend((client_id, order_id))
            for fields in cids.values():
                ops.append(("HSET", *fields))
        if self._pending:
            self._read_pending()
        by_user: dict[str, list[str | bytes | int]] = {}
        known = self._balances
        places = self._places
        for key, texts in self._dirty_balances.items():
            user, asset = key
            fields = by_user.get(user)
            if fields is None:
                fields = by_user[user] = [keys.balances(user)]
            fields.append(asset)
            if texts is None:
                free, locked = known[key]
                fields.append(balance_record(free, locked, places[asset]))
            else:
                fields.append(balance_value(texts[1], texts[2]))
        for fields in by_user.values():
            ops.append(("HSET", *fields))
        ops += self._stream
        if self._outbox:
            channels = self._channels
            for user, payloads in self._outbox.items():
                channel = channels.get(user)
                if channel is None:
                    channel = channels[user] = keys.user_channel(user)
                ops.append(("PUBLISH", channel, payloads[0] if len(payloads) == 1 else "\n".join(payloads)))
            self._outbox = {}
        self._dirty = {}
        self._frames = {}
        self._cids = []
        self._dirty_balances = {}
        self._stream = []
        self._first_fills = {}
        return ops

    def to_state(self) -> bytes:
        if self._pending:
            self._read_pending()
        places = self._places
        closed = [order for order in self._dirty.values() if not order.is_open]
        dirty_balances = []
        for user, asset in self._dirty_balances:
            free, locked = self._balances[user, asset]
            precision = places[asset]
            dirty_balances.append((user, asset, to_text(free, precision), to_text(locked, precision)))
        state = _State(
            orders=[*self.open.values(), *closed],
            dirty=list(self._dirty),
            cids=list(self._cids),
            # sorted: the same balances give the same bytes, whichever path (live or silent) set them
            balances=sorted((*key, *value) for key, value in self._balances.items()),
            dirty_balances=dirty_balances,
            stream=list(self._stream),
            closed_kept=sorted(self._closed_kept.items()),
            outbox=[(user, list(payloads)) for user, payloads in self._outbox.items()],
        )
        return statebytes.encode(state)

    @classmethod
    def from_state(cls, config: ExchangeConfig, data: bytes) -> Accounts:
        state = statebytes.decode(data, _State)
        accounts = cls(config)
        by_id = {order.order_id: order for order in state.orders}
        accounts.open = {order.order_id: order for order in state.orders if order.is_open}
        accounts._dirty = {order_id: by_id[order_id] for order_id in state.dirty}
        accounts._cids = [tuple(item) for item in state.cids]  # type: ignore[misc]
        accounts._balances = {(user, asset): (free, locked) for user, asset, free, locked in state.balances}
        asset_json = accounts._asset_json
        accounts._dirty_balances = {
            (user, asset): (asset_json[asset], free, locked)
            for user, asset, free, locked in state.dirty_balances
        }
        accounts._stream = [tuple(op) for op in state.stream]
        accounts._closed_kept = dict(state.closed_kept)
        accounts._outbox = {user: list(payloads) for user, payloads in state.outbox}
        return accounts

    # -- recovery ------------------------------------------------------------------------------

    def replay(self, command: Command | None, events: Sequence[Event], ts: int) -> None:
        """:meth:`apply` for a command whose ops are already in Redis (recovery's silent replay):
        only the open orders move; nothing is rendered and no balance is read. End with :meth:`settle`.

        Only a good-till-canceled limit order can stay open after its command, so only those are
        kept; the others' records are in Redis already and leave memory at their command's flush.
        """
        open_ = self.open
        for event in cast("Sequence[Any]", events):
            kind = type(event)
            if kind is Trade:
                qty, notional = event.qty, event.notional
                for order_id in (event.taker_order_id, event.maker_order_id):
                    order = open_.get(order_id)
                    if order is None:
                        continue
                    order.executed += qty
                    order.cum_quote += notional
                    order.update_time = ts
                    if order.executed >= order.qty:
                        order.status = FILLED
                        del open_[order_id]
                        self._closed_in_replay(order)
                    else:
                        order.status = PARTIALLY_FILLED
            elif kind is Accepted:
                e: Accepted = event
                if e.tif != "GTC" or e.kind == "market":
                    self._count_closed(e.user)  # it ends within its command
                    continue
                stp = STP_MODES[command.stp] if type(command) is NewOrder else "NONE"
                open_[e.order_id] = OrderState(
                    e.order_id,
                    e.user,
                    e.market,
                    e.client_id or "",
                    SIDES[e.side],
                    order_type(e.kind, e.post_only),
                    e.tif,
                    stp,
                    e.price,
                    e.qty,
                    e.quote_qty,
                    ts,
                    ts,
                    listed=True,  # the flush of its batch listed it, if it stayed open
                )
            elif kind is Canceled or kind is Expired:
                order = open_.pop(event.order_id, None)
                if order is not None:
                    self._closed_in_replay(order)
            elif kind is Rejected and event.reason == UNFILLABLE_FOK and type(command) is NewOrder:
                self._count_closed(command.user)  # recorded as an expired order (_rejected)

    def _closed_in_replay(self, order: OrderState) -> None:
        """An order the silent replay saw close: counted here, so not again by the flush of
        :meth:`settle` when a snapshot held it unflushed (its record is in Redis already)."""
        self._dirty.pop(order.order_id, None)
        self._count_closed(order.user)

    def _count_closed(self, user: str, closed: int = 1) -> bool:
        """``closed`` more closed orders of ``user`` kept, at most ``history``: whether that took the
        user past it (the flush then trims the user's history down to it)."""
        count = self._closed_kept.get(user, 0) + closed
        over = count > self.history
        if over:
            count = self.history
        if count:
            self._closed_kept[user] = count
        else:
            self._closed_kept.pop(user, None)
        return over

    def restore_closed_counts(self, counts: Mapping[str, int]) -> None:
        """Take the number of closed orders each user has in Redis (``ZCARD tw:closed:<user>``)
        instead of as a silent replay would have counted them (recovery without following orders)."""
        self._closed_kept = {user: count for user, count in sorted(counts.items()) if count}

    def order_from_record(self, record: bytes, user: str, market: str) -> OrderState:
        """An open order read back from its record in ``tw:orders:<user>`` (``ValueError`` if it is
        not one)."""
        return order_from_record(record, user, market, self._symbols[market])

    def open_records_ops(self) -> list[RedisOp]:
        """``HSET`` of every open order's record as it stands (what the flushes that changed them
        wrote): recovery writes them back when some were found missing or spoiled."""
        by_user: dict[str, list[str | bytes | int]] = {}
        symbols_ = self._symbols
        for order_id, order in self.open.items():
            fields = by_user.setdefault(order.user, [keys.orders(order.user)])
            fields += (order_id, order_record(order, symbols_[order.market]))
        return [("HSET", *fields) for fields in by_user.values()]

    def restore_open(self, orders: Mapping[int, OrderState]) -> None:
        """Take the open orders as given instead of as a silent replay would have followed them (see
        :meth:`replay`; recovery reads them from their records). Call it after :meth:`settle`."""
        self.open = dict(sorted(orders.items()))

    def settle(self, ledger: Mapping[str, Mapping[str, Sequence[int]]]) -> None:
        """End a silent replay: the state the flushes of the replayed batches left, without rendering.

        ``ledger`` is the engine's ``balances`` (user -> asset -> ``[available, locked]``) after the
        replay: the balances written by those flushes, which later batches compare with.
        """
        self.flush()  # whatever the snapshot held unflushed (nothing when taken after a flush)
        known = self._balances
        for user, assets in ledger.items():
            for asset, value in assets.items():
                key = (user, asset)
                if known.get(key) != (value[0], value[1]):  # a balance back at zero too, as live
                    known[key] = (value[0], value[1])
        for key, value in known.items():
            if value != _ZERO and key[1] not in ledger.get(key[0], {}):
                known[key] = _ZERO

    # -- events --------------------------------------------------------------------------------

    def _publish(self, user: str, payload: str) -> None:
        """Queue a payload for the user's channel. A batch's payloads for one user leave in one
        message, one JSON text per line (JSON texts hold no raw newline): a command that trades
        sends its taker three (``NEW``, ``TRADE``, the balances) and a batch of many commands a
        busy account dozens; one ``PUBLISH`` each cost the engine a packed command, Redis a
        command and the gateways a message."""
        payloads = self._outbox.get(user)
        if payloads is None:
            self._outbox[user] = [payload]
        else:
            payloads.append(payload)

    def _frame_of(self, order: OrderState, sym: Symbol) -> str:
        frame = self._frames.get(order.order_id)
        if frame is None:
            frame = self._frames[order.order_id] = report_frame(order, sym)
        return frame

    def _accepted(
        self,
        command: Command | None,
        e: Accepted,
        ts: int,
        touched: list[tuple[str, str]],
        events: Sequence[Event],
    ) -> int:
        order_id, user, market, client_id, side, quote_qty = (
            e.order_id,
            e.user,
            e.market,
            e.client_id,
            e.side,
            e.quote_qty,
        )
        sym = self._symbols[market]
        stp = STP_MODES[command.stp] if type(command) is NewOrder else "NONE"
        order = OrderState(
            order_id,
            user,
            market,
            client_id or "",
            SIDES[side],
            order_type(e.kind, e.post_only),
            e.tif,
            stp,
            e.price,
            e.qty,
            quote_qty,
            ts,
            ts,
        )
        self.open[order_id] = order
        self._dirty[order_id] = order
        if client_id is not None:
            self._cids.append((user, client_id, order_id))
        listening = self._listening
        if listening is None or user in listening:
            self._publish(user, execution_report(order, sym, self._frame_of(order, sym), "NEW", ts))
        touched.append((user, sym.quote if side == "buy" else sym.base))
        if not quote_qty:
            return -1
        last_fill = -1
        for index, event in enumerate(events):
            if type(event) is Trade:
                last_fill = index
            elif type(event) is Expired:
                left = event.remaining_quote_qty
                if last_fill < 0 or left is None:
                    return -1
                last_price = events[last_fill].price  # type: ignore[union-attr]
                return last_fill if spent_to_the_lot(left, last_price, sym.lot, sym.base_scale) else -1
        return last_fill

    def _rejected(self, command: NewOrder, e: Rejected, ts: int) -> None:
        """An FOK that could not fill: the engine refuses it (the spec's ``fok_unfillable``, nothing
        happens but its order id), Binance has it as an order that expired at once: ``NEW`` then
        ``EXPIRED`` on the user-data stream, and a closed order in ``allOrders``. Other refused
        orders leave no trace, as on Binance."""
        if e.reason != UNFILLABLE_FOK or e.order_id is None:
            return
        market = self.config.markets[command.market]
        order = OrderState(
            e.order_id,
            command.user,
            command.market,
            command.client_id if isinstance(command.client_id, str) else "",
            SIDES[command.side],
            order_type(command.kind, command.post_only),
            command.tif,
            STP_MODES[command.stp],
            market.price_units(command.price) if isinstance(command.price, str) else 0,
            market.qty_units(command.qty) if isinstance(command.qty, str) else 0,
            positive_units(command.quote_qty, market.quote.precision)
            if isinstance(command.quote_qty, str)
            else 0,
            ts,
            ts,
        )
        self._dirty[order.order_id] = order
        if order.client_id:
            self._cids.append((order.user, order.client_id, order.order_id))
        sym = self._symbols[order.market]
        listening = self._listening
        if listening is None or order.user in listening:
            self._publish(order.user, execution_report(order, sym, self._frame_of(order, sym), "NEW", ts))
        self._close(order, sym, EXPIRED, ts)

    def _trade(self, e: Trade, ts: int, touched: list[tuple[str, str]], last_fill: bool) -> None:
        """Both sides of a fill. The notional and the fees are new amounts at nearly every fill, so
        they are written by ``to_text`` itself, not through the memo of the repeated ones (a miss
        costs more than the writing); the attributes both sides use are looked up once."""
        market, trade_id, qty, price, notional = e.market, e.trade_id, e.qty, e.price, e.notional
        sym = self._symbols[market]
        base_text, quote_text = sym.base_text, sym.quote_text
        base_places, quote_places = sym.base_places, sym.quote_places
        shared = trade_fields(quote_text[price], base_text[qty], to_text(notional, quote_places))
        base_json, quote_json = self._asset_json[sym.base], self._asset_json[sym.quote]
        taker_buys = e.taker_side == "buy"
        taker_user = e.taker_user
        listening = self._listening
        open_orders, dirty, first_fills = self.open, self._dirty, self._first_fills
        trade_keys, stream = self._trade_keys, self._stream
        for order_id, user, is_maker, fee in (
            (e.taker_order_id, taker_user, False, e.taker_fee),
            (e.maker_order_id, e.maker_user, True, e.maker_fee),
        ):
            is_buyer = taker_buys is not is_maker
            if is_buyer:
                commission, asset = to_text(fee, base_places), base_json
            else:
                commission, asset = to_text(fee, quote_places), quote_json
            order = open_orders.get(order_id)
            if order is not None:
                if not order.executed:
                    first_fills[user] = first_fills.get(user, 0) + 1
                order.executed += qty
                order.cum_quote += notional
                order.update_time = ts
                if order.qty:
                    order.status = FILLED if order.executed >= order.qty else PARTIALLY_FILLED
                else:
                    order.status = FILLED if last_fill and not is_maker else PARTIALLY_FILLED
                dirty[order_id] = order
                if order.status == FILLED:
                    del open_orders[order_id]
                if listening is None or user in listening:
                    report = execution_report(
                        order,
                        sym,
                        self._frame_of(order, sym),
                        "TRADE",
                        ts,
                        qty,
                        price,
                        commission,
                        asset,
                        trade_id,
                        is_maker,
                    )
                    self._publish(user, report)
            trade = my_trade(sym, trade_id, order_id, shared, commission, asset, is_buyer, is_maker, ts)
            trades_key = trade_keys.get((user, market))
            if trades_key is None:
                if len(trade_keys) >= 1 << 16:
                    trade_keys.clear()
                trades_key = trade_keys[user, market] = keys.user_trades(user, sym.symbol)
            # the maker's side of a self-trade is the second entry with this trade id in the stream
            entry_id = f"{trade_id}-1" if is_maker and user == taker_user else f"{trade_id}-0"
            stream.append(("XADD", trades_key, "MAXLEN", "~", MY_TRADES_MAXLEN, entry_id, "t", trade))
            touched.append((user, sym.base))
            touched.append((user, sym.quote))
        if e.maker_fee or e.taker_fee:
            touched.append((FEES_USER, sym.base))
            touched.append((FEES_USER, sym.quote))

    def _canceled(self, e: Canceled, ts: int, touched: list[tuple[str, str]]) -> None:
        sym = self._symbols[e.market]
        touched.append((e.user, sym.quote if e.side == "buy" else sym.base))
        order = self.open.pop(e.order_id, None)
        if order is None:
            return
        self._close(order, sym, CANCELED if e.reason == "user" else EXPIRED_IN_MATCH, ts)

    def _expired(
        self,
        e: Expired,
        ts: int,
        touched: list[tuple[str, str]],
        events: Sequence[Event],
        index: int,
        balance_of: BalanceOf,
    ) -> None:
        sym = self._symbols[e.market]
        touched.append((e.user, sym.quote if e.side == "buy" else sym.base))
        order = self.open.pop(e.order_id, None)
        if order is None:
            return
        status = EXPIRED_IN_MATCH if self._met_itself(order, e, sym, events, index, balance_of) else EXPIRED
        self._close(order, sym, status, ts)

    def _close(self, order: OrderState, sym: Symbol, status: str, ts: int) -> None:
        order.status = status
        order.update_time = ts
        self._dirty[order.order_id] = order
        listening = self._listening
        if listening is None or order.user in listening:
            frame = self._frame_of(order, sym)
            self._publish(order.user, execution_report(order, sym, frame, EXECUTION_TYPE[status], ts))

    def _met_itself(
        self,
        order: OrderState,
        e: Expired,
        sym: Symbol,
        events: Sequence[Event],
        index: int,
        balance_of: BalanceOf,
    ) -> bool:
        """Whether the taker expired by self-trade prevention (see the module's docstring)."""
        if order.rests:
            return True
        if order.stp == "EXPIRE_BOTH":
            before = events[index - 1] if index else None
            return type(before) is Canceled and before.reason == "stp"
        if order.stp != "EXPIRE_TAKER":
            return False
        # Without anything locked on the other side the user has no order there to meet: skip the scan.
        if not balance_of(order.user, sym.base if order.side == "BUY" else sym.quote)[1]:
            return False
        front = self._front(order)
        if front is None or front.user != order.user:
            return False
        buys = order.side == "BUY"
        if order.type != "MARKET":
            return front.price <= order.price if buys else front.price >= order.price
        if not buys:
            return True
        budget = e.remaining_quote_qty if order.quote_qty else balance_of(order.user, sym.quote)[0]
        return bool((budget or 0) * sym.base_scale // front.price // sym.lot)

    def _front(self, taker: OrderState) -> OrderState | None:
        """The first order a taker would meet: best opposite price, then earliest.

        A scan of the open orders, run only for an ``expire_taker`` taker that expired while its user
        has something locked on the other side.
        """
        best: OrderState | None = None
        asks = taker.side == "BUY"
        for order in self.open.values():
            if order.market != taker.market or order.side == taker.side:
                continue
            if best is None:
                best = order
                continue
            better = order.price < best.price if asks else order.price > best.price
            if better or (order.price == best.price and order.order_id < best.order_id):
                best = order
        return best

    def _transfer(self, e: Deposited | Withdrawn, ts: int, touched: list[tuple[str, str]]) -> None:
        touched.append((e.user, e.asset))
        listening = self._listening
        if listening is not None and e.user not in listening:
            return
        delta = e.amount if type(e) is Deposited else -e.amount
        self._publish(e.user, balance_update(ts, self._asset_json[e.asset], self._texts[e.asset][delta]))

    def _balances_changed(self, touched: list[tuple[str, str]], ts: int, balance_of: BalanceOf) -> None:
        """Publish each listening user's changed balances; leave the others' for the flush to read."""
        listening = self._listening
        if listening is not None:
            heard = [key for key in touched if key[0] in listening] if listening else None
            if not heard:
                self._pending += touched
                return
            if len(heard) < len(touched):
                self._pending += [key for key in touched if key[0] not in listening]
            touched = heard
        known = self._balances
        dirty = self._dirty_balances
        positions: dict[str, list[tuple[str, str, str]]] = {}
        places = self._places
        asset_json = self._asset_json
        for key in dict.fromkeys(touched) if len(touched) > 1 else touched:
            value = balance_of(*key)
            if known.get(key, _ZERO) == value:
                continue
            free, locked = known[key] = (value[0], value[1])
            user, asset = key
            # balances are too varied to memoize: render them afresh, once
            precision = places[asset]
            item = dirty[key] = (
                asset_json[asset],
                to_text(free, precision),
                to_text(locked, precision) if locked else "0",
            )
            changed = positions.get(user)
            if changed is None:
                positions[user] = [item]
            else:
                changed.append(item)
        for user, changed in positions.items():
            self._publish(user, account_position(ts, changed))

    def _read_pending(self) -> None:
        """Read the balances of users not listening that the batch touched; mark the changed ones."""
        ledger = self._ledger
        assert ledger is not None, "balances touched without a balance_of"
        known = self._balances
        dirty = self._dirty_balances
        for key in dict.fromkeys(self._pending):
            value = ledger(*key)
            if known.get(key, _ZERO) != value:
                known[key] = (value[0], value[1])
                dirty[key] = None
        self._pending = []


__all__ = ["Accounts", "BalanceOf"]
