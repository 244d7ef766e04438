"""The market-data and account views' state as bytes: MessagePack, or JSON past 64-bit integers.

Amounts are integers in an asset's smallest unit, and an asset may have up to 30 decimals: 20 units of
an 18-decimal token are 2 * 10**19 units, past what MessagePack can carry (2**64 - 1), and a day's
quote volume gets there sooner. A state holding such a number is written as JSON, whose integers have
no bound; every other state stays MessagePack, so its bytes do not change. Both are a function of the
state alone, so the same state still gives the same bytes. Reading tells them apart by the first
byte: these states are arrays, ``[`` in JSON and ``0x90``-``0x9f`` or ``0xdc`` in MessagePack.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_msgpack = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()
_decoders: dict[Any, tuple[msgspec.msgpack.Decoder[Any], msgspec.json.Decoder[Any]]] = {}


def encode(state: msgspec.Struct) -> bytes:
    """MessagePack, unless an integer of ``state`` is out of its range: then JSON."""
    try:
        return _msgpack.encode(state)
    except OverflowError:
        return _json.encode(state)


def decode(data: bytes, kind: type[T]) -> T:
    """What :func:`encode` wrote, as ``kind`` (raises ``msgspec.DecodeError`` or ``ValidationError``)."""
    decoders = _decoders.get(kind)
    if decoders is None:
        decoders = _decoders[kind] = (msgspec.msgpack.Decoder(kind), msgspec.json.Decoder(kind))
    if data[:1] == b"[":
        return decoders[1].decode(data)  # type: ignore[no-any-return]
    return decoders[0].decode(data)  # type: ignore[no-any-return]


__all__ = ["decode", "encode"]
