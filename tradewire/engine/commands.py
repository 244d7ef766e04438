"""Commands: what the engine is asked to do, decoded strictly from JSON.

Decoding is the first line of validation. A line that is not a well-formed command (not JSON, not an
object, unknown ``type``, a missing required field, a field of the wrong JSON type, an enum value out
of its list, a number not written ``-?digits(.digits)?``) never reaches the engine: it becomes the
single event ``rejected / bad_command``. Amounts stay decimal strings here; only the engine knows the
precision of the market or asset they belong to.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import msgspec
from msgspec import UNSET, UnsetType

Number = str
"""A decimal amount as text, ``-?digits(.digits)?``: checked by :func:`decode` after msgspec, through
a memo of the texts already seen valid (a ``Meta(pattern=...)`` costs a regex search per field, two
thirds of the time of decoding an order; a set lookup is 30 times cheaper and prices repeat)."""

_NUMBER: Final = re.compile(r"\A-?[0-9]+(\.[0-9]+)?\Z")
_NUMBERS_KEPT: Final = 1 << 16
_valid_numbers: set[str] = set()
Side = Literal["buy", "sell"]
Kind = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
SelfTradePrevention = Literal["expire_maker", "expire_taker", "expire_both", "none"]


class Deposit(msgspec.Struct, tag="deposit", tag_field="type", frozen=True, gc=False):
    user: str
    asset: str
    amount: Number


class Withdraw(msgspec.Struct, tag="withdraw", tag_field="type", frozen=True, gc=False):
    user: str
    asset: str
    amount: Number


class NewOrder(msgspec.Struct, tag="new_order", tag_field="type", frozen=True, gc=False, omit_defaults=True):
    user: str
    market: str
    side: Side
    kind: Kind
    qty: Number | UnsetType = UNSET
    quote_qty: Number | UnsetType = UNSET
    price: Number | UnsetType = UNSET
    tif: TimeInForce = "GTC"
    post_only: bool = False
    stp: SelfTradePrevention = "expire_maker"
    client_id: str | UnsetType = UNSET


class Cancel(msgspec.Struct, tag="cancel", tag_field="type", frozen=True, gc=False, omit_defaults=True):
    user: str
    market: str
    order_id: int | UnsetType = UNSET
    client_id: str | UnsetType = UNSET


Command = Deposit | Withdraw | NewOrder | Cancel

_decoder = msgspec.json.Decoder(Command)
_encoder = msgspec.json.Encoder()


def _is_number(text: str) -> bool:
    if _NUMBER.search(text) is None:
        return False
    if len(_valid_numbers) >= _NUMBERS_KEPT:  # bounded, whatever texts clients send
        _valid_numbers.clear()
    _valid_numbers.add(text)
    return True


MAX_NESTING = 128
"""Arrays and objects deeper than this make a line ``bad_command`` (a command is one level deep).
A fixed bound, checked on the bytes of the rare line longer than twice as many bytes: msgspec's
own limit is the interpreter's recursion limit, which depends on how deep the caller's stack is,
so a line near it could be valid live and invalid in recovery (``decode`` called from elsewhere)."""


def _nesting(line: bytes) -> int:
    """How deep the line's arrays and objects go (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x5B or byte == 0x7B:  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte == 0x5D or byte == 0x7D:  # ] }
            depth -= 1
    return deepest


def decode(line: bytes | str) -> Command | None:
    """The command on one JSON line, or ``None`` when it is not a valid command."""
    if len(line) > 2 * MAX_NESTING:  # nesting deeper than MAX_NESTING takes that many brackets
        raw = line.encode(errors="surrogatepass") if isinstance(line, str) else line
        if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and _nesting(raw) > MAX_NESTING:
            return None
    if type(line) is bytes and not line.isascii():
        try:  # msgspec skips unknown fields unread: invalid UTF-8 there would pass for JSON
            line.decode()
        except UnicodeDecodeError:
            return None
    try:
        command: Command = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # the last: a backstop
        return None
    kind = type(command)
    valid = _valid_numbers
    if kind is NewOrder:
        qty, price, quote_qty = command.qty, command.price, command.quote_qty  # type: ignore[union-attr]
        if (
            (qty is not UNSET and qty not in valid and not _is_number(qty))
            or (price is not UNSET and price not in valid and not _is_number(price))
            or (quote_qty is not UNSET and quote_qty not in valid and not _is_number(quote_qty))
        ):
            return None
    elif kind is Cancel:
        if (command.order_id is UNSET) == (command.client_id is UNSET):  # type: ignore[union-attr]
            return None
    elif command.amount not in valid and not _is_number(command.amount):  # type: ignore[union-attr]
        return None
    return command


def encode(command: Command) -> bytes:
    return _encoder.encode(command)
