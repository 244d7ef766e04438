"""Commands: what the engine is asked to do, decoded strictly from JSON.

Decoding is the first line of validation. A line that is not a well-formed command (not JSON, not an
object, unknown ``type``, a missing required field, a field of the wrong JSON type, an enum value out
of its list, a number not written ``-?digits(.digits)?``) never reaches the engine: it becomes the
single event ``rejected / bad_command``. Amounts stay decimal strings here; only the engine knows the
precision of the market or asset they belong to.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

Number = Annotated[str, Meta(pattern=r"\A-?[0-9]+(\.[0-9]+)?\Z")]
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


def decode(line: bytes | str) -> Command | None:
    """The command on one JSON line, or ``None`` when it is not a valid command."""
    try:
        command: Command = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if type(command) is Cancel and (command.order_id is UNSET) == (command.client_id is UNSET):
        return None
    return command


def encode(command: Command) -> bytes:
    return _encoder.encode(command)
