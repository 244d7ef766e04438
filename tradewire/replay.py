"""The batch interface: a journal of JSON commands in, JSON events and the final state out.

It is the engine with the thinnest possible shell, so that anyone can re-run a journal offline and
get the same trades, rejections, balances and books byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from tradewire.engine import EventCodec, ExchangeConfig, decode
from tradewire.engine.native import fastest_engine


def replay_lines(config: ExchangeConfig, lines: Iterable[bytes | str]) -> Iterator[bytes]:
    """Yield one JSON line (without newline) per event, then the ``state`` line."""
    engine = fastest_engine(config)
    codec = EventCodec(config)
    render, dumps, apply = codec.render, orjson.dumps, engine.apply
    for line in lines:
        for event in apply(decode(line)):
            obj = render(event)
            try:
                yield dumps(obj)
            except TypeError:  # an integer beyond 64 bits, such as a cancel naming order_id 10**30
                yield _dumps_big(obj)
    yield dumps(codec.state(engine.pure()))


def _dumps_big(obj: Any) -> bytes:
    """What ``orjson.dumps`` writes, for the values it cannot hold (integers beyond 64 bits)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
