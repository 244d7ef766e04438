"""The matching engine: commands in, events out, nothing else.

No I/O, no clock, no randomness, no floats: the same commands in the same order give the same events,
which is what lets a journal rebuild the exchange after a crash and an auditor re-run it offline.
Bad input never raises; it is answered with a ``Rejected`` event and changes nothing.

The rules (validation order, reservation, matching, fees, self-trade prevention) are those of the
replay spec; the comments below name the rule a branch implements rather than restate the code.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from msgspec import UNSET

from tradewire.engine.book import BookSide, Level, Order, OrderBook
from tradewire.engine.commands import Cancel, Command, Deposit, NewOrder, Withdraw
from tradewire.engine.config import ExchangeConfig, Market
from tradewire.engine.decimals import positive_units, to_units
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

FEES_USER = "fees"
"""The account that every fee is credited to."""

_NO_LIMIT = -(10**80)
"""The limit key of a market order: every resting price is at or above it."""
_UNBOUNDED = 10**80
"""The quantity a market buy by ``quote_qty`` may take: only its quote bounds it."""

BAD_COMMAND = Rejected("bad_command")

Balance = list[int]
"""``[available, locked]`` of one user in one asset, mutated in place on the hot path."""


class Engine:
    """All markets of one exchange shard, with the ledger they share."""

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self.markets: dict[str, Market] = config.markets
        self.books: dict[str, OrderBook] = {
            name: OrderBook(name, m.tick) for name, m in config.markets.items()
        }
        self.balances: dict[str, dict[str, Balance]] = {}
        self.orders: dict[int, Order] = {}
        self.client_ids: dict[tuple[str, str], Order] = {}
        self.next_order_id = 1
        self._venues = {name: _Venue(market, self.books[name]) for name, market in config.markets.items()}
        self._handlers: dict[type[Any], Callable[[Any], list[Event]]] = {
            NewOrder: self._new_order,
            Cancel: self._cancel,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
        }

    # -- the whole interface -------------------------------------------------------------------

    def apply(self, command: Command | None) -> list[Event]:
        """Apply one command (``None``: a line that did not decode) and return its events."""
        kind = type(command)
        if kind is NewOrder:
            return self._new_order(command)  # type: ignore[arg-type]
        if kind is Cancel:
            return self._cancel(command)  # type: ignore[arg-type]
        if command is None:
            return [BAD_COMMAND]
        return self._handlers[type(command)](command)

    def apply_all(self, commands: Iterable[Command | None]) -> list[Event]:
        events: list[Event] = []
        apply = self.apply
        for command in commands:
            events += apply(command)
        return events

    def pure(self) -> Engine:
        """This engine (the native one answers with the pure engine it hands its state to)."""
        return self

    def as_pure(self) -> Engine:
        """This engine (the native one answers with a pure copy of its state, to read)."""
        return self

    def balance(self, user: str, asset: str) -> tuple[int, int]:
        """``(available, locked)`` of ``user`` in ``asset``; ``(0, 0)`` where no balance exists."""
        assets = self.balances.get(user)
        balance = assets.get(asset) if assets else None
        return (balance[0], balance[1]) if balance else (0, 0)

    # -- ledger --------------------------------------------------------------------------------

    def _account(self, user: str, asset: str) -> Balance:
        """The balance to credit, created on first credit (only credits make a balance appear)."""
        assets = self.balances.get(user)
        if assets is None:
            assets = self.balances[user] = {}
        balance = assets.get(asset)
        if balance is None:
            balance = assets[asset] = [0, 0]
        return balance

    def available(self, user: str, asset: str) -> int:
        assets = self.balances.get(user)
        balance = assets.get(asset) if assets else None
        return balance[0] if balance else 0

    def _deposit(self, command: Deposit) -> list[Event]:
        asset = self.config.assets.get(command.asset)
        if asset is None:
            return [Rejected("unknown_asset", command.user, None, "deposit")]
        amount = to_units(command.amount, asset.precision)
        if amount is None or amount <= 0:
            return [Rejected("invalid_amount", command.user, None, "deposit")]
        self._account(command.user, asset.name)[0] += amount
        return [Deposited(command.user, asset.name, amount)]

    def _withdraw(self, command: Withdraw) -> list[Event]:
        asset = self.config.assets.get(command.asset)
        if asset is None:
            return [Rejected("unknown_asset", command.user, None, "withdraw")]
        amount = to_units(command.amount, asset.precision)
        if amount is None or amount <= 0:
            return [Rejected("invalid_amount", command.user, None, "withdraw")]
        if self.available(command.user, asset.name) < amount:
            return [Rejected("insufficient_balance", command.user, None, "withdraw")]
        self.balances[command.user][asset.name][0] -= amount
        return [Withdrawn(command.user, asset.name, amount)]

    # -- cancel --------------------------------------------------------------------------------

    def _cancel(self, command: Cancel) -> list[Event]:
        """A user's cancel; inlined (book removal, release, index upkeep) as a third of all flow."""
        user = command.user
        order_id = command.order_id
        if order_id is not UNSET:
            order = self.orders.get(order_id)
            named: int | None = order_id
        else:
            order = self.client_ids.get((user, command.client_id))  # type: ignore[arg-type]
            named = None
        if order is None or order.user != user or order.market != command.market:
            return [Rejected("unknown_order", user, named, "cancel")]
        venue = self._venues[order.market]
        remaining = order.qty
        price = order.price
        is_buy = order.is_buy
        # BookSide.remove, inlined
        side = venue.bids if is_buy else venue.asks
        level = side.levels[price // side.tick]
        level.total -= remaining
        level.live -= 1
        order.qty = 0
        if not level.live:
            side.drop(level)
        elif len(level.orders) > 2 * level.live + 16:
            level.orders = deque(o for o in level.orders if o.qty)
        # release what it reserves
        if is_buy:
            balance = self.balances[user][venue.quote]
            amount = price * remaining // venue.market.base_scale
        else:
            balance = self.balances[user][venue.base]
            amount = remaining
        balance[0] += amount
        balance[1] -= amount
        del self.orders[order.order_id]
        if order.client_id is not None:
            del self.client_ids[(user, order.client_id)]
        return [
            Canceled(
                order.order_id, "user", user, order.market, "buy" if is_buy else "sell", price, remaining
            )
        ]

    def _release(self, order: Order, remaining: int, market: Market) -> None:
        """Give back what a resting order still reserves."""
        if order.is_buy:
            balance = self.balances[order.user][market.quote.name]
            amount = order.price * remaining // market.base_scale
        else:
            balance = self.balances[order.user][market.base.name]
            amount = remaining
        balance[0] += amount
        balance[1] -= amount

    def _forget(self, order: Order) -> None:
        del self.orders[order.order_id]
        if order.client_id is not None:
            del self.client_ids[(order.user, order.client_id)]

    # -- new order -----------------------------------------------------------------------------

    def _new_order(self, command: NewOrder) -> list[Event]:
        order_id = self.next_order_id
        self.next_order_id = order_id + 1
        user = command.user
        # subscripts in try blocks, not .get(): in 3.11 a hit costs nothing extra, and misses are rare
        try:
            venue = self._venues[command.market]
        except KeyError:
            return [Rejected("unknown_market", user, order_id, "new_order")]
        market = venue.market
        is_buy = command.side == "buy"
        is_limit = command.kind == "limit"
        scale = market.base_scale

        # invalid_qty (units caches hold 0 for every invalid text)
        qty = quote_qty = 0
        text = command.qty
        if command.quote_qty is not UNSET:
            if is_limit or not is_buy or text is not UNSET:
                return [Rejected("invalid_qty", user, order_id, "new_order")]
            quote_qty = positive_units(command.quote_qty, market.quote.precision)
            if not quote_qty:
                return [Rejected("invalid_qty", user, order_id, "new_order")]
        elif text is UNSET:
            return [Rejected("invalid_qty", user, order_id, "new_order")]
        else:
            try:
                qty = venue.qty_units[text]
            except KeyError:
                qty = venue.parse_qty(text)
            if not qty:
                return [Rejected("invalid_qty", user, order_id, "new_order")]

        # invalid_price, min_notional
        price = 0
        text = command.price
        if is_limit:
            if text is UNSET:
                return [Rejected("invalid_price", user, order_id, "new_order")]
            try:
                price = venue.price_units[text]
            except KeyError:
                price = venue.parse_price(text)
            if not price:
                return [Rejected("invalid_price", user, order_id, "new_order")]
            if price * qty // scale < market.min_notional_units:
                return [Rejected("min_notional", user, order_id, "new_order")]
        elif text is not UNSET:
            return [Rejected("invalid_price", user, order_id, "new_order")]

        client_id: str | None = None if command.client_id is UNSET else command.client_id
        if client_id is not None and (user, client_id) in self.client_ids:
            return [Rejected("duplicate_client_id", user, order_id, "new_order")]

        # insufficient_balance; a market buy by qty may spend what is available on arrival
        try:
            paying = self.balances[user][venue.quote if is_buy else venue.base]
            available = paying[0]
        except KeyError:
            paying = None
            available = 0
        budget = 0
        if is_limit:
            reserve = price * qty // scale if is_buy else qty
            if available < reserve:
                return [Rejected("insufficient_balance", user, order_id, "new_order")]
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

        opposite = venue.asks if is_buy else venue.bids
        keys = opposite.keys
        index = price // market.tick
        limit_key = index * opposite.sign if is_limit else _NO_LIMIT
        crosses = keys and keys[-1] >= limit_key
        if crosses and command.post_only:
            return [Rejected("would_cross", user, order_id, "new_order")]
        remaining = qty if qty else _UNBOUNDED
        stp = command.stp
        tif = command.tif
        if tif == "FOK" and not _fillable(opposite, limit_key, user, stp, remaining, budget, market):
            return [Rejected("fok_unfillable", user, order_id, "new_order")]

        if is_limit:
            paying[0] -= reserve  # type: ignore[index]
            paying[1] += reserve  # type: ignore[index]
        events: list[Event] = [
            Accepted(
                order_id,
                user,
                market.name,
                client_id,
                command.side,
                command.kind,
                tif,
                price,
                qty,
                quote_qty,
                command.post_only,
            )
        ]
        if not crosses and tif == "GTC" and is_limit:
            # the commonest command of all: a limit order that rests at once (BookSide.add, inlined)
            order = Order(order_id, user, market.name, is_buy, price, qty, client_id)
            own = venue.bids if is_buy else venue.asks
            level = own.levels.get(index)
            if level is None:
                level = own.levels[index] = Level(price, deque())
                insort(own.keys, -limit_key)
            level.orders.append(order)
            level.total += qty
            level.live += 1
            self.orders[order_id] = order
            if client_id is not None:
                self.client_ids[(user, client_id)] = order
            return events
        taker_expired = False
        if crosses:
            remaining, budget, taker_expired = self._take(
                events,
                market,
                opposite,
                order_id,
                user,
                is_buy,
                is_limit,
                price,
                limit_key,
                remaining,
                budget,
                stp,
            )

        if is_limit and tif == "GTC" and not taker_expired:
            if remaining:
                order = Order(order_id, user, market.name, is_buy, price, remaining, client_id)
                (venue.bids if is_buy else venue.asks).add(order)
                self.orders[order_id] = order
                if client_id is not None:
                    self.client_ids[(user, client_id)] = order
            return events
        if quote_qty:
            if budget:
                events.append(Expired(order_id, user, market.name, command.side, None, budget))
        elif remaining:
            if is_limit:
                unlock = price * remaining // scale if is_buy else remaining
                paying[0] += unlock  # type: ignore[index]
                paying[1] -= unlock  # type: ignore[index]
            events.append(Expired(order_id, user, market.name, command.side, remaining, None))
        return events

    def _take(  # the hot loop, kept in one frame on purpose
        self,
        events: list[Event],
        market: Market,
        opposite: BookSide,
        order_id: int,
        user: str,
        is_buy: bool,
        is_limit: bool,
        limit: int,
        limit_key: int,
        remaining: int,
        budget: int,
        stp: str,
    ) -> tuple[int, int, bool]:
        """Walk the opposite side from its best price; returns (remaining, budget, taker expired).

        ``budget`` is the quote a market buy may still spend (0 for any other order).
        """
        keys, levels, sign = opposite.keys, opposite.levels, opposite.sign
        if not keys or keys[-1] < limit_key:
            return remaining, budget, False
        scale, lot = market.base_scale, market.lot
        base, quote = market.base.name, market.quote.name
        # fees rounded up: -((-amount * num) // den), inlined because it runs twice per trade
        maker_num, maker_den = market.maker_fee.num, market.maker_fee.den
        taker_num, taker_den = market.taker_fee.num, market.taker_fee.den
        by_budget = not is_limit and is_buy
        self_trade = stp != "none"
        book = self.books[market.name]
        balances = self.balances
        orders, client_ids = self.orders, self.client_ids
        account = self._account
        taker_got = taker_pays = fee_base = fee_quote = None
        taker_expired = False
        side = "buy" if is_buy else "sell"
        afford = 0
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            level = levels[key * sign]
            price = level.price
            queue = level.orders
            while queue:
                maker = queue[0]
                maker_qty = maker.qty
                if not maker_qty:
                    queue.popleft()
                    continue
                if by_budget:
                    afford = budget * scale // price // lot * lot
                    if not afford:
                        taker_expired = True
                        break
                if self_trade and maker.user == user:
                    if stp != "expire_taker":
                        events.append(self._cancel_in_walk(maker, level, market))
                    if stp != "expire_maker":
                        taker_expired = True
                        break
                    continue
                fill = maker_qty if maker_qty < remaining else remaining
                if by_budget and afford < fill:
                    fill = afford
                notional = price * fill // scale
                if taker_got is None:
                    taker_got = account(user, base if is_buy else quote)
                    taker_pays = balances[user][quote if is_buy else base]
                    fee_base = account(FEES_USER, base)
                    fee_quote = account(FEES_USER, quote)
                maker_assets = balances[maker.user]
                if is_buy:
                    mfee = -((-notional * maker_num) // maker_den)
                    tfee = -((-fill * taker_num) // taker_den)
                    taker_got[0] += fill - tfee
                    if is_limit:
                        reserved = limit * fill // scale
                        taker_pays[1] -= reserved  # type: ignore[index]
                        taker_pays[0] += reserved - notional  # type: ignore[index]
                    else:
                        taker_pays[0] -= notional  # type: ignore[index]
                        budget -= notional
                    maker_assets[base][1] -= fill
                    got = maker_assets.get(quote) or account(maker.user, quote)
                    got[0] += notional - mfee
                    fee_base[0] += tfee  # type: ignore[index]
                    fee_quote[0] += mfee  # type: ignore[index]
                else:
                    mfee = -((-fill * maker_num) // maker_den)
                    tfee = -((-notional * taker_num) // taker_den)
                    taker_got[0] += notional - tfee
                    taker_pays[1 if is_limit else 0] -= fill  # type: ignore[index]
                    maker_assets[quote][1] -= notional
                    got = maker_assets.get(base) or account(maker.user, base)
                    got[0] += fill - mfee
                    fee_base[0] += mfee  # type: ignore[index]
                    fee_quote[0] += tfee  # type: ignore[index]
                trade_id = book.next_trade_id
                book.next_trade_id = trade_id + 1
                events.append(
                    Trade(
                        market.name,
                        trade_id,
                        price,
                        fill,
                        maker.order_id,
                        order_id,
                        maker.user,
                        user,
                        side,
                        mfee,
                        tfee,
                        notional,
                    )
                )
                remaining -= fill
                level.total -= fill
                if fill == maker_qty:
                    maker.qty = 0
                    queue.popleft()
                    level.live -= 1
                    del orders[maker.order_id]
                    if maker.client_id is not None:
                        del client_ids[(maker.user, maker.client_id)]
                else:
                    maker.qty = maker_qty - fill
                if not remaining:
                    break
            if not level.live:
                opposite.drop(level)
            if taker_expired or not remaining:
                break
        return remaining, budget, taker_expired

    def _cancel_in_walk(self, maker: Order, level: Any, market: Market) -> Canceled:
        """Self-trade prevention cancels the maker at the front of the level being walked."""
        remaining = maker.qty
        level.orders.popleft()
        level.total -= remaining
        level.live -= 1
        maker.qty = 0
        self._release(maker, remaining, market)
        self._forget(maker)
        return Canceled(
            maker.order_id,
            "stp",
            maker.user,
            maker.market,
            "buy" if maker.is_buy else "sell",
            maker.price,
            remaining,
        )


class _Venue:
    """One market's config, book and parse caches, fetched with a single lookup per order."""

    __slots__ = ("asks", "base", "bids", "market", "price_units", "qty_units", "quote")

    def __init__(self, market: Market, book: OrderBook) -> None:
        self.market = market
        self.base = market.base.name
        self.quote = market.quote.name
        self.bids = book.bids
        self.asks = book.asks
        self.qty_units: dict[str, int] = {}
        """Parsed quantities: units if positive and a multiple of the lot size, else 0."""
        self.price_units: dict[str, int] = {}
        """Parsed prices: units if positive and a multiple of the tick size, else 0."""

    def parse_qty(self, text: str) -> int:
        return _remember(self.qty_units, text, self.market.qty_units(text))

    def parse_price(self, text: str) -> int:
        return _remember(self.price_units, text, self.market.price_units(text))


def _remember(cache: dict[str, int], text: str, units: int) -> int:
    if len(cache) >= 1 << 16:
        cache.clear()
    cache[text] = units
    return units


def _fillable(
    opposite: BookSide, limit_key: int, user: str, stp: str, remaining: int, budget: int, market: Market
) -> bool:
    """Dry run of the walk for FOK: would the whole order fill at once? Nothing is changed."""
    scale, lot = market.base_scale, market.lot
    by_budget = budget > 0
    by_quote = remaining == _UNBOUNDED
    levels, sign = opposite.levels, opposite.sign
    for key in reversed(opposite.keys):
        if key < limit_key:
            return False
        level = levels[key * sign]
        price = level.price
        for maker in level.orders:
            maker_qty = maker.qty
            if not maker_qty:
                continue
            fill = maker_qty if maker_qty < remaining else remaining
            if by_budget:
                afford = budget * scale // price // lot * lot
                if not afford:
                    return False
                if afford < fill:
                    fill = afford
            if maker.user == user and stp != "none":
                if stp == "expire_maker":
                    continue
                return False
            remaining -= fill
            if by_budget:
                budget -= price * fill // scale
                if by_quote and not budget:
                    return True
            if not remaining:
                return True
    return False
