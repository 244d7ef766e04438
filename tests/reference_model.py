"""A slow, independent reference implementation of the replay spec, for differential testing.

It was written from the spec text alone, without looking at the engine, so that the two implementations
only agree where they both read the spec the same way. Everything is exact rational arithmetic
(`fractions.Fraction`) with explicit quantisation, books are plain lists scanned in priority order, and
state is plain dicts. Speed is not a goal; being easy to check against the spec is.

Readings of points the spec leaves open (also listed in the differential test's report):

- JSON parsing is strict: `NaN`/`Infinity` literals and invalid UTF-8 are "not JSON". `null` is a value
  of the wrong JSON type, not an absent field. An `order_id` must be a JSON integer (`true` and `1.0` are
  not). Fields that the command's type does not use are ignored, whatever their value.
- "finer than the asset's precision" (deposit/withdraw `amount`, `quote_qty`) is judged on the value, so
  `"1.0000000"` for a 6-decimal asset is fine; multiples of `tick_size`/`lot_size` are judged on the
  value too.
- A post-only market order "would match" whenever the opposite side of the book is non-empty (a market
  order has no price limit); with an empty opposite side it is accepted and simply expires.
- An FOK market buy by `quote_qty` is fillable only when the dry run spends all of the `quote_qty`
  (otherwise an `expired` with a `remaining_quote_qty` would follow, i.e. something remains unfilled).
- A JSON object that names `type` twice is not a command (which one would it be?); any other
  repeated key: the last one wins, as in most JSON parsers.
- A cancel by `order_id` or `client_id` only finds the user's open orders in the market it names.
- An amount, quantity or price with more than 30 significant digits (leading zeros of the whole part
  and trailing zeros of the fraction do not count) is refused as that field's invalid value: the issue
  asks for it and the spec does not bound the digits.
- The affordability test for market buys is done per resting order; since every resting quantity is a
  multiple of `lot_size`, that is the same as taking "the largest multiple of `lot_size`" per level.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

NUMBER_FORM = re.compile(r"-?[0-9]+(\.[0-9]+)?")
MAX_DIGITS = 30
SIDES = ("buy", "sell")
KINDS = ("limit", "market")
TIFS = ("GTC", "IOC", "FOK")
STPS = ("expire_maker", "expire_taker", "expire_both", "none")
FEES_USER = "fees"

# The JSON type each field must have, per command type; fields not listed for a type are ignored.
STR, NUM, BOOL, INT = "string", "number", "bool", "integer"
FIELDS: dict[str, dict[str, str]] = {
    "deposit": {"user": STR, "asset": STR, "amount": NUM},
    "withdraw": {"user": STR, "asset": STR, "amount": NUM},
    "new_order": {
        "user": STR,
        "market": STR,
        "side": STR,
        "kind": STR,
        "qty": NUM,
        "quote_qty": NUM,
        "price": NUM,
        "tif": STR,
        "post_only": BOOL,
        "stp": STR,
        "client_id": STR,
    },
    "cancel": {"user": STR, "market": STR, "order_id": INT, "client_id": STR},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "deposit": ("user", "asset", "amount"),
    "withdraw": ("user", "asset", "amount"),
    "new_order": ("user", "market", "side", "kind"),
    "cancel": ("user", "market"),
}
ENUMS: dict[str, tuple[str, ...]] = {"side": SIDES, "kind": KINDS, "tif": TIFS, "stp": STPS}


TOO_BIG = Fraction(-1)
"""Stands for a number with more than ``MAX_DIGITS`` significant digits: invalid wherever it appears,
as a negative value is (each field's check refuses values that are not positive)."""


class BadCommand(Exception):
    """Raised while parsing a line that is not a valid command."""


def _reject_constant(name: str) -> Any:
    raise BadCommand(f"non-standard JSON constant {name}")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if sum(1 for key, _ in pairs if key == "type") > 1:
        raise BadCommand("type given twice")
    return dict(pairs)


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Return the command object with its number fields as Fractions, or raise BadCommand."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadCommand("not UTF-8") from exc
    try:
        obj = json.loads(line, parse_constant=_reject_constant, object_pairs_hook=_object)
    except (ValueError, RecursionError) as exc:
        raise BadCommand("not JSON") from exc
    if not isinstance(obj, dict):
        raise BadCommand("not an object")
    ctype = obj.get("type")
    if not isinstance(ctype, str) or ctype not in FIELDS:
        raise BadCommand("unknown type")
    for name in REQUIRED[ctype]:
        if name not in obj:
            raise BadCommand(f"missing {name}")
    cmd: dict[str, Any] = {"type": ctype}
    for name, kind in FIELDS[ctype].items():
        if name not in obj:
            continue
        value = obj[name]
        if kind == STR:
            if not isinstance(value, str):
                raise BadCommand(f"{name} is not a string")
            if name in ENUMS and value not in ENUMS[name]:
                raise BadCommand(f"{name} is not one of {ENUMS[name]}")
            cmd[name] = value
        elif kind == NUM:
            if not isinstance(value, str) or NUMBER_FORM.fullmatch(value) is None:
                raise BadCommand(f"{name} is not a decimal string")
            whole, _, frac = value.lstrip("-").partition(".")
            if len(whole.lstrip("0")) + len(frac.rstrip("0")) > MAX_DIGITS:
                cmd[name] = TOO_BIG
            else:
                cmd[name] = Fraction(value)
        elif kind == BOOL:
            if not isinstance(value, bool):
                raise BadCommand(f"{name} is not a bool")
            cmd[name] = value
        else:
            # bool is a subclass of int in Python, but not a JSON integer.
            if type(value) is not int:
                raise BadCommand(f"{name} is not an integer")
            cmd[name] = value
    if ctype == "cancel" and (("order_id" in cmd) == ("client_id" in cmd)):
        raise BadCommand("cancel needs exactly one of order_id and client_id")
    return cmd


def is_multiple(value: Fraction, step: Fraction) -> bool:
    return (value / step).denominator == 1


def unit(precision: int) -> Fraction:
    return Fraction(1, 10**precision)


def ceil_to(value: Fraction, precision: int) -> Fraction:
    """Round up to the asset's precision: the spec's fee rounding."""
    scale = 10**precision
    return Fraction(math.ceil(value * scale), scale)


def fmt(value: Fraction) -> str:
    """Canonical decimal string: no exponent, no trailing zeros, no trailing point."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
        if places > 60:
            raise ValueError(f"{value} is not a finite decimal")
    digits = str(value.numerator * (10**places // value.denominator))
    if places == 0:
        return sign + digits
    digits = digits.rjust(places + 1, "0")
    whole, frac = digits[:-places], digits[-places:].rstrip("0")
    return sign + whole + ("." + frac if frac else "")


@dataclass
class Market:
    name: str
    base: str
    quote: str
    tick: Fraction
    lot: Fraction
    min_notional: Fraction
    maker_fee: Fraction
    taker_fee: Fraction


@dataclass
class Order:
    order_id: int
    user: str
    market: str
    side: str
    price: Fraction
    remaining: Fraction
    client_id: str | None


@dataclass
class Taker:
    """An incoming order while it walks the book."""

    order_id: int
    user: str
    market: Market
    side: str
    kind: str
    price: Fraction | None  # limit price; None for market orders
    qty: Fraction | None  # None for a market buy by quote_qty
    budget: Fraction | None  # quote a market buy may spend; None otherwise
    stp: str


@dataclass
class Plan:
    """The outcome of walking the book, computed before anything is changed."""

    steps: list[tuple[str, Order, Fraction]]  # ("trade", maker, qty) or ("stp", maker, 0)
    remaining_qty: Fraction | None
    remaining_quote: Fraction | None
    taker_ended_by_stp: bool

    def unfilled(self) -> bool:
        if self.remaining_qty is not None:
            return self.remaining_qty > 0
        assert self.remaining_quote is not None
        return self.remaining_quote > 0


class Reference:
    def __init__(self, config: dict[str, Any]) -> None:
        self.precision: dict[str, int] = {a: int(v["precision"]) for a, v in config["assets"].items()}
        self.markets: dict[str, Market] = {
            name: Market(
                name=name,
                base=m["base"],
                quote=m["quote"],
                tick=Fraction(m["tick_size"]),
                lot=Fraction(m["lot_size"]),
                min_notional=Fraction(m["min_notional"]),
                maker_fee=Fraction(m["maker_fee"]),
                taker_fee=Fraction(m["taker_fee"]),
            )
            for name, m in config["markets"].items()
        }
        self.available: dict[tuple[str, str], Fraction] = {}
        self.locked: dict[tuple[str, str], Fraction] = {}
        self.listed: set[tuple[str, str]] = set()
        self.orders: list[Order] = []  # every open (resting) order, in arrival order
        self.next_order_id = 1
        self.next_trade_id: dict[str, int] = {name: 1 for name in self.markets}
        self.events: list[dict[str, Any]] = []

    # --- balances -------------------------------------------------------------------------------------

    def avail(self, user: str, asset: str) -> Fraction:
        return self.available.get((user, asset), Fraction(0))

    def add_available(self, user: str, asset: str, amount: Fraction) -> None:
        self.available[(user, asset)] = self.avail(user, asset) + amount
        assert self.available[(user, asset)] >= 0, (user, asset)

    def credit(self, user: str, asset: str, amount: Fraction) -> None:
        """A deposit or a trade credit: the (user, asset) pair is listed in the state from now on."""
        self.add_available(user, asset, amount)
        self.listed.add((user, asset))

    def lock(self, user: str, asset: str, amount: Fraction) -> None:
        self.add_available(user, asset, -amount)
        self.locked[(user, asset)] = self.locked.get((user, asset), Fraction(0)) + amount

    def unlock(self, user: str, asset: str, amount: Fraction) -> None:
        self.spend_locked(user, asset, amount)
        self.add_available(user, asset, amount)

    def spend_locked(self, user: str, asset: str, amount: Fraction) -> None:
        self.locked[(user, asset)] = self.locked.get((user, asset), Fraction(0)) - amount
        assert self.locked[(user, asset)] >= 0, (user, asset)

    # --- commands -------------------------------------------------------------------------------------

    def run(self, lines: list[str] | list[bytes]) -> list[dict[str, Any]]:
        for line in lines:
            try:
                cmd = parse_line(line)
            except BadCommand:
                self.events.append({"type": "rejected", "reason": "bad_command"})
                continue
            getattr(self, "do_" + cmd["type"])(cmd)
        self.events.append(self.state())
        return self.events

    def amount_error(self, cmd: dict[str, Any]) -> str | None:
        asset = cmd["asset"]
        if asset not in self.precision:
            return "unknown_asset"
        amount: Fraction = cmd["amount"]
        if amount <= 0 or not is_multiple(amount, unit(self.precision[asset])):
            return "invalid_amount"
        return None

    def do_deposit(self, cmd: dict[str, Any]) -> None:
        error = self.amount_error(cmd)
        if error is not None:
            self.events.append({"type": "rejected", "user": cmd["user"], "reason": error})
            return
        self.credit(cmd["user"], cmd["asset"], cmd["amount"])
        self.events.append(
            {"type": "deposit", "user": cmd["user"], "asset": cmd["asset"], "amount": fmt(cmd["amount"])}
        )

    def do_withdraw(self, cmd: dict[str, Any]) -> None:
        error = self.amount_error(cmd)
        if error is None and cmd["amount"] > self.avail(cmd["user"], cmd["asset"]):
            error = "insufficient_balance"
        if error is not None:
            self.events.append({"type": "rejected", "user": cmd["user"], "reason": error})
            return
        self.add_available(cmd["user"], cmd["asset"], -cmd["amount"])
        self.events.append(
            {"type": "withdraw", "user": cmd["user"], "asset": cmd["asset"], "amount": fmt(cmd["amount"])}
        )

    def do_cancel(self, cmd: dict[str, Any]) -> None:
        found = None
        for order in self.orders:
            if order.user != cmd["user"] or order.market != cmd["market"]:
                continue
            if ("order_id" in cmd and order.order_id == cmd["order_id"]) or (
                "client_id" in cmd and order.client_id == cmd["client_id"]
            ):
                found = order
                break
        if found is None:
            event: dict[str, Any] = {"type": "rejected", "user": cmd["user"], "reason": "unknown_order"}
            if "order_id" in cmd:
                event["order_id"] = cmd["order_id"]
            self.events.append(event)
            return
        self.remove_resting(found)
        self.events.append({"type": "canceled", "order_id": found.order_id, "reason": "user"})

    def remove_resting(self, order: Order) -> None:
        """Take an open order off the book and give back what it still reserves."""
        self.orders.remove(order)
        market = self.markets[order.market]
        if order.side == "buy":
            self.unlock(order.user, market.quote, order.price * order.remaining)
        else:
            self.unlock(order.user, market.base, order.remaining)

    def validate(self, cmd: dict[str, Any]) -> str | None:
        """The spec's validation list, in its order; the first failure wins."""
        market = self.markets.get(cmd["market"])
        if market is None:
            return "unknown_market"
        kind, side = cmd["kind"], cmd["side"]
        qty: Fraction | None = cmd.get("qty")
        quote_qty: Fraction | None = cmd.get("quote_qty")
        price: Fraction | None = cmd.get("price")
        if kind == "market" and side == "buy":
            if (qty is None) == (quote_qty is None):
                return "invalid_qty"
            if quote_qty is not None and (
                quote_qty <= 0 or not is_multiple(quote_qty, unit(self.precision[market.quote]))
            ):
                return "invalid_qty"
        elif quote_qty is not None or qty is None:
            return "invalid_qty"
        if qty is not None and (qty <= 0 or not is_multiple(qty, market.lot)):
            return "invalid_qty"
        if kind == "limit":
            if price is None or price <= 0 or not is_multiple(price, market.tick):
                return "invalid_price"
            assert qty is not None
            if price * qty < market.min_notional:
                return "min_notional"
        elif price is not None:
            return "invalid_price"
        client_id = cmd.get("client_id")
        if client_id is not None and any(
            o.user == cmd["user"] and o.client_id == client_id for o in self.orders
        ):
            return "duplicate_client_id"
        if side == "sell":
            assert qty is not None
            if qty > self.avail(cmd["user"], market.base):
                return "insufficient_balance"
        elif kind == "limit":
            assert qty is not None and price is not None
            if price * qty > self.avail(cmd["user"], market.quote):
                return "insufficient_balance"
        elif quote_qty is not None:
            if quote_qty > self.avail(cmd["user"], market.quote):
                return "insufficient_balance"
        elif self.avail(cmd["user"], market.quote) <= 0:
            return "insufficient_balance"
        if cmd.get("post_only", False) and self.crossing(market, side, price):
            return "would_cross"
        return None

    def opposite(self, market: Market, side: str) -> list[Order]:
        """Resting orders a taker on `side` meets, best first, oldest first within a price."""
        book_side = "sell" if side == "buy" else "buy"
        orders = [o for o in self.orders if o.market == market.name and o.side == book_side]
        if book_side == "sell":
            return sorted(orders, key=lambda o: (o.price, o.order_id))
        return sorted(orders, key=lambda o: (-o.price, o.order_id))

    @staticmethod
    def price_ok(side: str, limit: Fraction | None, maker_price: Fraction) -> bool:
        if limit is None:
            return True
        return maker_price <= limit if side == "buy" else maker_price >= limit

    def crossing(self, market: Market, side: str, price: Fraction | None) -> bool:
        return any(self.price_ok(side, price, o.price) for o in self.opposite(market, side))

    def plan(self, taker: Taker) -> Plan:
        """Walk the book without changing anything: used both as the FOK dry run and for the real run."""
        steps: list[tuple[str, Order, Fraction]] = []
        remaining = taker.qty
        spent = Fraction(0)
        ended_by_stp = False
        lot = taker.market.lot
        for maker in self.opposite(taker.market, taker.side):
            if remaining is not None and remaining == 0:
                break
            if not self.price_ok(taker.side, taker.price, maker.price):
                break
            affordable_lots: int | None = None
            if taker.budget is not None:
                affordable_lots = math.floor((taker.budget - spent) / (maker.price * lot))
                if affordable_lots < 1:
                    break  # cannot pay one lot of this order: checked before self-trade prevention
            if maker.user == taker.user and taker.stp != "none":
                if taker.stp in ("expire_maker", "expire_both"):
                    steps.append(("stp", maker, Fraction(0)))
                if taker.stp in ("expire_taker", "expire_both"):
                    ended_by_stp = True
                    break
                continue
            qty = maker.remaining
            if remaining is not None:
                qty = min(qty, remaining)
            if affordable_lots is not None:
                qty = min(qty, affordable_lots * lot)
            assert qty > 0 and is_multiple(qty, lot)
            steps.append(("trade", maker, qty))
            spent += qty * maker.price
            if remaining is not None:
                remaining -= qty
        if taker.qty is None:
            assert taker.budget is not None
            return Plan(steps, None, taker.budget - spent, ended_by_stp)
        return Plan(steps, remaining, None, ended_by_stp)

    def do_new_order(self, cmd: dict[str, Any]) -> None:
        order_id = self.next_order_id
        self.next_order_id += 1
        user = cmd["user"]
        error = self.validate(cmd)
        market = self.markets.get(cmd["market"])
        taker: Taker | None = None
        if error is None:
            assert market is not None
            budget: Fraction | None = None
            if cmd["kind"] == "market" and cmd["side"] == "buy":
                budget = cmd.get("quote_qty", self.avail(user, market.quote))
            taker = Taker(
                order_id=order_id,
                user=user,
                market=market,
                side=cmd["side"],
                kind=cmd["kind"],
                price=cmd.get("price"),
                qty=cmd.get("qty"),
                budget=budget,
                stp=cmd.get("stp", "expire_maker"),
            )
            if cmd.get("tif", "GTC") == "FOK" and self.plan(taker).unfilled():
                error = "fok_unfillable"
        if error is not None:
            self.events.append({"type": "rejected", "order_id": order_id, "user": user, "reason": error})
            return
        assert taker is not None and market is not None
        accepted: dict[str, Any] = {
            "type": "accepted",
            "order_id": order_id,
            "user": user,
            "market": market.name,
        }
        if "client_id" in cmd:
            accepted["client_id"] = cmd["client_id"]
        self.events.append(accepted)
        self.execute(taker, cmd.get("tif", "GTC"), cmd.get("client_id"))

    def execute(self, taker: Taker, tif: str, client_id: str | None) -> None:
        market = taker.market
        if taker.kind == "limit":
            assert taker.price is not None and taker.qty is not None
            if taker.side == "buy":
                self.lock(taker.user, market.quote, taker.price * taker.qty)
            else:
                self.lock(taker.user, market.base, taker.qty)
        plan = self.plan(taker)
        for what, maker, qty in plan.steps:
            if what == "stp":
                self.remove_resting(maker)
                self.events.append({"type": "canceled", "order_id": maker.order_id, "reason": "stp"})
            else:
                self.trade(taker, maker, qty)
        if taker.qty is None:
            assert plan.remaining_quote is not None
            if plan.remaining_quote > 0:
                self.events.append(
                    {
                        "type": "expired",
                        "order_id": taker.order_id,
                        "remaining_quote_qty": fmt(plan.remaining_quote),
                    }
                )
            return
        remaining = plan.remaining_qty
        assert remaining is not None
        if remaining == 0:
            return
        if taker.kind == "limit" and tif == "GTC" and not plan.taker_ended_by_stp:
            assert taker.price is not None
            self.orders.append(
                Order(taker.order_id, taker.user, market.name, taker.side, taker.price, remaining, client_id)
            )
            return
        if taker.kind == "limit":
            assert taker.price is not None
            if taker.side == "buy":
                self.unlock(taker.user, market.quote, taker.price * remaining)
            else:
                self.unlock(taker.user, market.base, remaining)
        self.events.append({"type": "expired", "order_id": taker.order_id, "remaining_qty": fmt(remaining)})

    def trade(self, taker: Taker, maker: Order, qty: Fraction) -> None:
        market = taker.market
        price = maker.price
        notional = price * qty
        buyer, seller = (taker.user, maker.user) if taker.side == "buy" else (maker.user, taker.user)
        buyer_rate, seller_rate = (
            (market.taker_fee, market.maker_fee)
            if taker.side == "buy"
            else (market.maker_fee, market.taker_fee)
        )
        buyer_fee = ceil_to(qty * buyer_rate, self.precision[market.base])
        seller_fee = ceil_to(notional * seller_rate, self.precision[market.quote])
        # What the buyer pays and the seller delivers comes from reservations or, for market orders,
        # straight from available.
        if taker.side == "buy":
            if taker.kind == "limit":
                assert taker.price is not None
                self.spend_locked(buyer, market.quote, taker.price * qty)
                self.add_available(buyer, market.quote, (taker.price - price) * qty)
            else:
                self.add_available(buyer, market.quote, -notional)
            self.spend_locked(seller, market.base, qty)
        else:
            if taker.kind == "limit":
                self.spend_locked(seller, market.base, qty)
            else:
                self.add_available(seller, market.base, -qty)
            self.spend_locked(buyer, market.quote, notional)
        self.credit(buyer, market.base, qty - buyer_fee)
        self.credit(seller, market.quote, notional - seller_fee)
        self.credit(FEES_USER, market.base, buyer_fee)
        self.credit(FEES_USER, market.quote, seller_fee)
        maker.remaining -= qty
        if maker.remaining == 0:
            self.orders.remove(maker)
        trade_id = self.next_trade_id[market.name]
        self.next_trade_id[market.name] += 1
        maker_fee, taker_fee = (seller_fee, buyer_fee) if taker.side == "buy" else (buyer_fee, seller_fee)
        self.events.append(
            {
                "type": "trade",
                "market": market.name,
                "trade_id": trade_id,
                "price": fmt(price),
                "qty": fmt(qty),
                "maker_order_id": maker.order_id,
                "taker_order_id": taker.order_id,
                "maker_user": maker.user,
                "taker_user": taker.user,
                "taker_side": taker.side,
                "maker_fee": fmt(maker_fee),
                "taker_fee": fmt(taker_fee),
            }
        )

    def state(self) -> dict[str, Any]:
        balances: dict[str, dict[str, dict[str, str]]] = {}
        for user, asset in sorted(self.listed):
            balances.setdefault(user, {})[asset] = {
                "available": fmt(self.avail(user, asset)),
                "locked": fmt(self.locked.get((user, asset), Fraction(0))),
            }
        books: dict[str, dict[str, list[list[str]]]] = {}
        for name in sorted(self.markets):
            market = self.markets[name]
            books[name] = {
                "bids": self.levels(self.opposite(market, "sell")),
                "asks": self.levels(self.opposite(market, "buy")),
            }
        return {"type": "state", "balances": balances, "books": books}

    @staticmethod
    def levels(orders: list[Order]) -> list[list[str]]:
        totals: dict[Fraction, Fraction] = {}
        for order in orders:  # already best first, so dict insertion order is level order
            totals[order.price] = totals.get(order.price, Fraction(0)) + order.remaining
        return [[fmt(price), fmt(qty)] for price, qty in totals.items()]


def reference_replay(config: dict[str, Any], lines: list[str] | list[bytes]) -> list[dict[str, Any]]:
    """The events of a command stream, then the final state object, as JSON-compatible dicts."""
    return Reference(config).run(lines)
