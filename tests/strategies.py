"""Generators of realistic replay command streams, shared by property and differential tests.

One generator serves two drivers: hypothesis (`command_streams()`, which shrinks failures to short
streams) and a seeded `random.Random` (`random_stream()`, for long streams that build deep books). The
streams use the markets of the spec's worked-example config: a few users deposit, trade near a mid price
with tick-aligned prices and lot-aligned quantities, cancel and withdraw, and now and then send a line
that is malformed in one of the ways the spec names.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from tests.reference_model import BadCommand, parse_line

VECTORS_CONFIG: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "vectors" / "config.json").read_text()
)

T = TypeVar("T")

USERS = ("alice", "bob", "carol", "dave")
CLIENT_IDS = ("a", "b", "c", "d", "e")
UNKNOWN_MARKETS = ("DOGE-USDT", "btc-usdt", "")
UNKNOWN_ASSETS = ("DOGE", "usdt", "")
ASSET_SCALE: dict[str, tuple[int, int]] = {
    # (smallest, largest) deposit in whole units: enough to trade, little enough to run out now and then.
    "BTC": (1, 10),
    "ETH": (5, 100),
    "USDT": (20, 2000),
}


@dataclass(frozen=True)
class MarketShape:
    name: str
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    mid_ticks: int


SHAPES = (
    MarketShape("BTC-USDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.0001"), 10_000),  # mid 100.00
    MarketShape("ETH-USDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.001"), 2_000),  # mid 20.00
)

JUNK_LINES = (
    "not json",
    "",
    "{",
    "[]",
    "null",
    "42",
    '"deposit"',
    "{}",
    "NaN",
    '{"type": "nope", "user": "alice"}',
    '{"type": "deposit"}',
    '{"type": "new_order", "user": "alice"}',
    '{"type": "cancel", "user": "alice", "market": "BTC-USDT"}',
    '{"type": "cancel", "user": "alice", "market": "BTC-USDT", "order_id": 1, "client_id": "a"}',
    '{"type": "deposit", "user": "alice", "asset": "USDT", "amount": NaN}',
    '{"type": "deposit", "user": "alice", "asset": "USDT", "amount": 5}',
    '{"type": "DEPOSIT", "user": "alice", "asset": "USDT", "amount": "5"}',
    '{"type": "deposit", "user": "alice", "asset": "USDT", "amount": "5"} trailing',
)
BAD_NUMBERS = (
    "1e2",
    "+1",
    ".5",
    "5.",
    "NaN",
    "Infinity",
    "1_000",
    " 1",
    "1 ",
    "0x1A",
    "--1",
    "1.2.3",
    "",
    "1,5",
)
WRONG_TYPED_VALUES: tuple[Any, ...] = (7, 1.5, True, None, [], {})
BAD_ENUMS: dict[str, tuple[str, ...]] = {
    "side": ("BUY", "bid", ""),
    "kind": ("LIMIT", "stop", ""),
    "tif": ("gtc", "DAY", "Ioc"),
    "stp": ("EXPIRE_MAKER", "expire", "cancel_both"),
}
HUGE = "9" * 31
"""More than 30 significant digits: refused as an invalid value."""
PADDED_ONE = "0" * 40 + "1." + "0" * 40
"""The value 1 written with 82 digits, of which only one is significant: a valid number."""
NUMBER_FIELDS = ("amount", "qty", "quote_qty", "price")


class Picker(Protocol):
    """The source of choices: hypothesis draws or a seeded random generator."""

    def integer(self, lo: int, hi: int) -> int: ...


def choice(pick: Picker, options: Sequence[T]) -> T:
    """Pick an option; hypothesis shrinks towards the first, so list the plainest option first."""
    return options[pick.integer(0, len(options) - 1)]


def chance(pick: Picker, percent: int) -> bool:
    """True with the given probability; hypothesis shrinks towards False."""
    return pick.integer(0, 99) >= 100 - percent


class RandomPicker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class DrawPicker:
    def __init__(self, draw: Callable[[st.SearchStrategy[int]], int]) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))


def decimal_text(value: Decimal, pick: Picker) -> str:
    """A plain decimal string, sometimes with redundant zeros, which the spec allows in input."""
    text = f"{value:f}"
    if chance(pick, 10):
        text = text + ("0" if "." in text else ".0")
    if chance(pick, 3):
        text = "0" + text
    return text


@dataclass
class StreamState:
    """What the generator remembers so that cancels can name real orders and client ids repeat."""

    orders: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # id, user, market, cid
    likely_open: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # passive GTC limits
    next_order_id: int = 1


def deposit_amount(pick: Picker, asset: str) -> Decimal:
    lo, hi = ASSET_SCALE[asset]
    whole = Decimal(pick.integer(lo, hi))
    if chance(pick, 30):
        # An odd amount with all the asset's decimals.
        precision = VECTORS_CONFIG["assets"][asset]["precision"]
        return whole + Decimal(pick.integer(1, 10**precision - 1)).scaleb(-precision)
    return whole


def gen_deposit(pick: Picker, kind: str) -> dict[str, Any]:
    asset = choice(pick, ("USDT", "BTC", "ETH"))
    amount = deposit_amount(pick, asset)
    if kind == "withdraw":
        amount = amount / 4 if chance(pick, 60) else amount
        amount = amount.quantize(Decimal(1).scaleb(-VECTORS_CONFIG["assets"][asset]["precision"]))
    text = decimal_text(amount, pick)
    if chance(pick, 5):
        text = choice(pick, ("0", "-1", "-0.5", "0.000000001", "1.0000001", HUGE, PADDED_ONE, "-0"))
    if chance(pick, 3):
        asset = choice(pick, UNKNOWN_ASSETS)
    return {"type": kind, "user": choice(pick, USERS), "asset": asset, "amount": text}


def gen_qty(pick: Picker, shape: MarketShape) -> str:
    lots = pick.integer(1, 300) * choice(pick, (100, 10, 1000, 1))
    if chance(pick, 4):
        return choice(pick, ("0", "-1", f"{shape.lot / 2:f}", f"{shape.lot * 3 / 2:f}", HUGE, PADDED_ONE))
    return decimal_text(shape.lot * lots, pick)


def gen_price(pick: Picker, shape: MarketShape, side: str) -> tuple[str, bool]:
    """A limit price, and whether it is on the passive side of the mid."""
    # Mostly passive prices that build depth on both sides; about one in four crosses the mid.
    offset = pick.integer(0, 20) * choice(pick, (1, 5, 25))
    passive = chance(pick, 75)
    if passive:
        offset = -offset
    ticks = shape.mid_ticks + (offset if side == "buy" else -offset)
    if chance(pick, 4):
        return choice(pick, ("0", "-1", f"{shape.tick / 2 + 1:f}", HUGE, PADDED_ONE)), False
    return decimal_text(shape.tick * ticks, pick), passive


def gen_new_order(pick: Picker, kind: str) -> tuple[dict[str, Any], bool]:
    """A new_order, and whether it is a passive GTC limit that will probably rest."""
    shape = choice(pick, SHAPES)
    side = choice(pick, ("buy", "sell"))
    user = choice(pick, USERS)
    cmd: dict[str, Any] = {
        "type": "new_order",
        "user": user,
        "market": shape.name,
        "side": side,
        "kind": kind,
    }
    passive = False
    if kind == "limit":
        cmd["qty"] = gen_qty(pick, shape)
        cmd["price"], passive = gen_price(pick, shape, side)
        if chance(pick, 3):
            cmd["quote_qty"] = "10"
    else:
        by_quote = side == "buy" and chance(pick, 40)
        if by_quote:
            cmd["quote_qty"] = decimal_text(Decimal(pick.integer(1, 50_000_000)).scaleb(-6), pick)
            if chance(pick, 4):
                cmd["quote_qty"] = choice(pick, ("0", "-5", "1.0000001", HUGE, PADDED_ONE))
        else:
            cmd["qty"] = gen_qty(pick, shape)
        if chance(pick, 4):
            cmd["quote_qty" if "qty" in cmd else "qty"] = "1"
        if chance(pick, 3):
            cmd.pop("qty", None)
            cmd.pop("quote_qty", None)
        if chance(pick, 3):
            cmd["price"] = gen_price(pick, shape, side)[0]
    tif_pick = pick.integer(0, 9)
    if tif_pick >= 5:
        cmd["tif"] = ("GTC", "IOC", "IOC", "FOK", "FOK")[tif_pick - 5]
    if chance(pick, 12):
        cmd["post_only"] = chance(pick, 80)
    if chance(pick, 40):
        cmd["stp"] = choice(pick, ("expire_maker", "expire_taker", "expire_both", "none"))
    if chance(pick, 35):
        cmd["client_id"] = choice(pick, CLIENT_IDS)
    if chance(pick, 3):
        cmd["market"] = choice(pick, UNKNOWN_MARKETS)
    return cmd, passive and cmd.get("tif", "GTC") == "GTC"


def remember(state: StreamState, line: str, likely_open: bool) -> None:
    """Track order ids exactly: every new_order that parses takes one, whatever happens to it next."""
    try:
        cmd = parse_line(line)
    except BadCommand:
        return
    if cmd["type"] != "new_order":
        return
    entry = (state.next_order_id, cmd["user"], cmd["market"], cmd.get("client_id"))
    state.next_order_id += 1
    state.orders.append(entry)
    if likely_open:
        state.likely_open.append(entry)


def gen_cancel(pick: Picker, state: StreamState) -> dict[str, Any]:
    cmd: dict[str, Any] = {"type": "cancel", "user": choice(pick, USERS), "market": choice(pick, SHAPES).name}
    known = state.likely_open if state.likely_open and chance(pick, 70) else state.orders
    if known and chance(pick, 80):
        order_id, user, market, client_id = known[-1 - pick.integer(0, min(len(known), 12) - 1)]
        if chance(pick, 85):
            cmd["user"] = user
        if chance(pick, 90):
            cmd["market"] = market
        if client_id is not None and chance(pick, 40):
            cmd["client_id"] = client_id
        else:
            cmd["order_id"] = order_id
    elif chance(pick, 50):
        cmd["client_id"] = choice(pick, CLIENT_IDS)
    else:
        cmd["order_id"] = choice(pick, (state.next_order_id + 5, 0, -1, 10**6))
    if chance(pick, 3):
        cmd["market"] = choice(pick, UNKNOWN_MARKETS)
    return cmd


def mutate(pick: Picker, cmd: dict[str, Any]) -> dict[str, Any]:
    """Break one thing the spec says makes a line `bad_command` (or, for numbers, a later reason)."""
    cmd = dict(cmd)
    names = sorted(cmd)
    how = pick.integer(0, 3)
    name = choice(pick, names)
    if how == 0:
        cmd[name] = choice(pick, WRONG_TYPED_VALUES)
    elif how == 1:
        number_fields = [n for n in names if n in NUMBER_FIELDS]
        if number_fields:
            cmd[choice(pick, number_fields)] = choice(pick, BAD_NUMBERS)
        else:
            cmd[name] = 1
    elif how == 2:
        del cmd[name]
    else:
        enums = [n for n in names if n in BAD_ENUMS]
        if enums:
            enum = choice(pick, enums)
            cmd[enum] = choice(pick, BAD_ENUMS[enum])
        elif "order_id" in cmd:
            cmd["order_id"] = choice(pick, ("1", 1.0, True))
        else:
            cmd["post_only"] = choice(pick, ("true", 1, None))
    return cmd


def gen_line(pick: Picker, state: StreamState) -> str:
    roll = pick.integer(0, 99)
    cmd: dict[str, Any]
    likely_open = False
    if roll < 14:
        cmd = gen_deposit(pick, "deposit")
    elif roll < 58:
        cmd, likely_open = gen_new_order(pick, "limit")
    elif roll < 70:
        cmd, likely_open = gen_new_order(pick, "market")
    elif roll < 84:
        cmd = gen_cancel(pick, state)
    elif roll < 92:
        cmd = gen_deposit(pick, "withdraw")
    elif roll < 96:
        return choice(pick, JUNK_LINES)
    else:
        cmd = mutate(pick, gen_new_order(pick, choice(pick, ("limit", "market")))[0])
    if roll < 92 and chance(pick, 3):
        cmd = mutate(pick, cmd)
    line = json.dumps(cmd)
    remember(state, line, likely_open)
    return line


def gen_stream(pick: Picker, length: int) -> list[str]:
    state = StreamState()
    lines = [
        json.dumps({"type": "deposit", "user": user, "asset": asset, "amount": str(ASSET_SCALE[asset][1])})
        for user in USERS[: pick.integer(0, len(USERS))]
        for asset in ("USDT", "BTC", "ETH")
    ]
    lines.extend(gen_line(pick, state) for _ in range(length))
    return lines


@st.composite
def command_streams(draw: st.DrawFn, max_commands: int = 60) -> list[str]:
    """A command stream (JSON lines) for the worked-example config, `VECTORS_CONFIG`."""
    pick = DrawPicker(draw)
    return gen_stream(pick, pick.integer(1, max_commands))


def random_stream(seed: int, length: int) -> list[str]:
    """A long reproducible stream, for depth that hypothesis's short examples do not reach."""
    return gen_stream(RandomPicker(random.Random(seed)), length)
