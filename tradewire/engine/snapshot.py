"""The engine's whole state as bytes, and back.

A snapshot taken after command *k*, restored, then fed commands *k+1..n* gives exactly the events and
state of feeding *1..n*: it holds everything that influences the future (balances, every resting order
in queue order, the order-id and trade-id counters; the client-id index is rebuilt from the orders).
JSON via msgspec because amounts are unbounded integers, which msgpack cannot carry.

The bytes depend on the state alone, not on how the engine got there: maps are written with their
keys sorted (users, assets, markets). The pure engine's balances are in the order users were first
credited, the native core's in the order its tables hold them; a snapshot of the same state taken
from either, or from a restored engine, is the same bytes, so snapshots compare and hash as states.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tradewire.engine.book import Order
from tradewire.engine.config import ExchangeConfig
from tradewire.engine.engine import Engine

FORMAT = 1


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of this format, or of another exchange config."""


class _OrderRecord(msgspec.Struct, array_like=True):
    order_id: int
    user: str
    market: str
    is_buy: bool
    price: int
    qty: int
    client_id: str | None


class _Snapshot(msgspec.Struct):
    format: int
    config: dict[str, Any]
    next_order_id: int
    next_trade_ids: dict[str, int]
    balances: dict[str, dict[str, list[int]]]
    orders: list[_OrderRecord]
    """Every open order, each book side from its best level outwards, each level in queue order."""


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(_Snapshot)


def dump(engine: Engine) -> bytes:
    orders = [
        _OrderRecord(o.order_id, o.user, o.market, o.is_buy, o.price, o.qty, o.client_id)
        for book in engine.books.values()
        for side in (book.bids, book.asks)
        for o in side.orders()
    ]
    return _encoder.encode(
        _Snapshot(
            format=FORMAT,
            config=engine.config.to_dict(),
            next_order_id=engine.next_order_id,
            next_trade_ids={name: book.next_trade_id for name, book in engine.books.items()},
            balances=engine.balances,
            orders=orders,
        )
    )


def load(data: bytes, config: ExchangeConfig | None = None) -> Engine:
    """Rebuild an engine; with ``config``, refuse a snapshot taken under a different one."""
    try:
        snap = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"not an engine snapshot: {exc}") from exc
    if snap.format != FORMAT:
        raise SnapshotError(f"snapshot format {snap.format}, this engine reads {FORMAT}")
    if config is None:
        config = ExchangeConfig.from_dict(snap.config)
    elif config.to_dict() != snap.config:
        raise SnapshotError("snapshot was taken under a different exchange config")
    engine = Engine(config)
    engine.next_order_id = snap.next_order_id
    for name, next_trade_id in snap.next_trade_ids.items():
        engine.books[name].next_trade_id = next_trade_id
    engine.balances = snap.balances
    for r in snap.orders:
        order = Order(r.order_id, r.user, r.market, r.is_buy, r.price, r.qty, r.client_id)
        book = engine.books[r.market]
        (book.bids if r.is_buy else book.asks).add(order)
        engine.orders[r.order_id] = order
        if r.client_id is not None:
            engine.client_ids[(r.user, r.client_id)] = order
    return engine
